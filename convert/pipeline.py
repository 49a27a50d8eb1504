"""One conversion run: a trained Keras model and the data folder → every TFLite variant with its
sidecar, thresholds chosen on validation patients, evaluated through the runtime.

Steps (each a function, called in order by :func:`run`):

1. :func:`convert_variants` writes float32, float16, dynamic-range int8, int8 PTQ and, unless
   disabled, int8 QAT plus the float32 model of the QAT-fine-tuned weights;
2. :func:`calibrate` predicts the validation patients with every variant through
   :class:`~idc_edge.classifier.PatchClassifier`, picks each variant's threshold from its own
   outputs and rewrites its sidecar (threshold, validation metrics, provenance);
3. :func:`convert.evaluate.evaluate_variants` and :func:`convert.select.choose_int8`.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from idc_edge.classifier import PatchClassifier
from idc_edge.dataset import CLASS_NAMES, PATCH_SIZE_PX, UM_PER_PX
from idc_edge.errors import IdcEdgeError, ModelError, OptionError, RecordError
from idc_edge.fileio import read_bytes, write_whole
from idc_edge.jsonready import utc_now
from idc_edge.machine import machine_line
from idc_edge.metrics import binary_metrics
from idc_edge.spec import ModelSpec, file_sha256, read_spec, write_spec

from . import kerasenv, ptq, qat, tflite

#: most --latency-rounds: 10,000 interleaved rounds time every variant far past any use
MAX_LATENCY_ROUNDS = 10000
from .context import CHOSEN_ON as CONTEXT_CHOSEN_ON
from .context import fit_context
from .data import ConversionData
from .evaluate import VariantEvaluation, choose_threshold, evaluate_variants, measure_latency, predict
from .select import Selection, choose_int8
from .variants import Variant, file_name, write_manifest

Log = Callable[[str], None]


def stderr_log(msg: str) -> None:
    print(f"[convert {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def read_train_config(model_path: str | os.PathLike) -> dict:
    """``train_config.json`` next to the trained model, or {} when absent or unreadable."""
    path = Path(model_path).with_name("train_config.json")
    try:  # read_bytes: a FIFO or device there is refused at once, never waited on or read without end
        data = json.loads(read_bytes(path, "train_config.json", ModelError).decode("utf-8"))
    except (IdcEdgeError, ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def resolve_architecture(model, explicit: str | None, train_config: dict) -> str:
    """The architecture name for the tf_keras twin: ``--arch``, else train_config.json, else the model's name.

    Raises:
        OptionError: none of them names an architecture of ``train/architectures.py``.
    """
    from train import architectures

    known = architectures.names()
    for source, name in (("--arch", explicit), ("train_config.json", train_config.get("architecture")),
                         ("the model's name", getattr(model, "name", None))):
        if name is None:
            continue
        if name in known:
            return name
        if source == "--arch":
            raise OptionError(f"--arch: unknown architecture {name!r}; expected one of {', '.join(known)}")
    raise OptionError("cannot tell which architecture the model is (needed to rebuild it in tf_keras for QAT): "
                      f"pass --arch (one of {', '.join(known)}) or --no-qat")


def architecture_builder(name: str) -> Callable:
    """``builder(keras_module)`` for architecture ``name`` of ``train/architectures.py``."""
    from train import architectures

    return lambda k: architectures.build(name, k)


@dataclass(frozen=True)
class RunOptions:
    """Options of a conversion run (the command line maps onto these)."""

    model_path: Path
    out_dir: Path
    arch: str | None = None
    qat: qat.QatConfig | None = field(default_factory=qat.QatConfig)
    input_type: str = "uint8"
    representative_size: int = 300
    qat_train_size: int | None = None
    seed: int = 0
    latency_rounds: int = 30

    def __post_init__(self):
        if self.input_type not in ptq.INPUT_TYPES:
            raise OptionError(f"--input-type must be one of {', '.join(ptq.INPUT_TYPES)}, got {self.input_type!r}")
        if not 0 <= self.latency_rounds <= MAX_LATENCY_ROUNDS:
            # 1e11 rounds timed for ever after every model was converted
            raise OptionError(f"--latency-rounds must be from 0 to {MAX_LATENCY_ROUNDS}, got {self.latency_rounds}")


def _write(path: Path, content: bytes, spec: ModelSpec) -> Path:
    write_whole(path, content, "model", error=RecordError)  # never a cut model over a good one
    write_spec(path, spec)
    return path


def convert_variants(model, data: ConversionData, opts: RunOptions, base_spec: ModelSpec,
                     builder: Callable | None, log: Log = stderr_log) -> tuple[list[Variant], dict]:
    """Write every variant (``.tflite`` + provisional sidecar) into ``opts.out_dir``.

    Returns:
        the variants and facts about the conversion (for the manifest and the report).
    """
    out = opts.out_dir
    out.mkdir(parents=True, exist_ok=True)
    facts: dict = {}
    variants: list[Variant] = []

    def emit(name: str, make: Callable[[], bytes]) -> None:
        t = time.perf_counter()
        content = make()
        path = _write(out / file_name(name), content, base_spec)
        variants.append(Variant.of(name, path))
        facts.setdefault("conversion_seconds", {})[name] = round(time.perf_counter() - t, 2)
        log(f"{name}: {len(content) / 1024:.0f} KB in {time.perf_counter() - t:.1f} s")

    with tempfile.TemporaryDirectory(prefix="idc_convert_") as tmp:
        saved = tflite.export_saved_model(model, Path(tmp) / "saved_model")
        emit("float32", lambda: tflite.float32(saved))
        emit("float16", lambda: tflite.float16(saved))
        emit("dynamic_int8", lambda: tflite.dynamic_range_int8(saved))
        emit("int8_ptq", lambda: ptq.full_integer(tflite.saved_model_converter(saved),
                                                  data.representative.images, opts.input_type))

        if opts.qat is not None:
            if builder is None:
                raise OptionError("quantization-aware training needs the architecture (--arch) or --no-qat")
            t = time.perf_counter()
            twin = qat.keras2_twin(model, builder)
            qmodel = qat.quantize_twin(twin)
            log(f"QAT: fine-tuning on {len(data.train.records)} training-patient patches, {opts.qat}")
            losses = qat.fine_tune(qmodel, data.train.images, data.train.labels, opts.qat)
            facts["qat_losses"] = losses
            facts["qat_seconds"] = round(time.perf_counter() - t, 1)
            log(f"QAT: losses per epoch {', '.join(f'{v:.4f}' for v in losses)} in {time.perf_counter() - t:.0f} s")
            h5 = qat.save_h5(qmodel, out / "qat_model.h5")
            facts["qat_model"] = h5.name
            reloaded = qat.load_h5(h5)  # convert what was saved: proves the .h5 round trip
            emit("int8_qat", lambda: qat.convert(reloaded, data.representative.images, opts.input_type))
            sample = data.representative.images[:64]
            qk = np.asarray(reloaded.predict(sample.astype(np.float32), verbose=0)).reshape(len(sample), -1)[:, -1]
            facts["qat_keras_vs_int8_max_abs_diff"] = float(np.abs(qk - predict(out / file_name("int8_qat"),
                                                                                   sample)).max())
            keras = kerasenv.keras3()
            qat_float = builder(keras)
            qat_float.set_weights(qat.float_weights(qmodel, twin))
            saved_q = tflite.export_saved_model(qat_float, Path(tmp) / "saved_model_qat")
            emit("float32_qat", lambda: tflite.float32(saved_q))

        # The float32 TFLite must compute what Keras computes: check on a few patches.
        sample = data.representative.images[:64]
        keras_p = np.asarray(model.predict(sample.astype(np.float32), verbose=0)).reshape(len(sample), -1)[:, -1]
        tfl_p = predict(out / file_name("float32"), sample)
        facts["keras_vs_float32_tflite_max_abs_diff"] = float(np.abs(keras_p - tfl_p).max())
    return variants, facts


def calibrate(variants: list[Variant], data: ConversionData, provenance: dict,
              log: Log = stderr_log) -> tuple[dict[str, np.ndarray], dict[str, float], dict[str, str]]:
    """Choose each variant's threshold on the validation patients and rewrite its sidecar.

    Returns:
        probabilities, thresholds and input dtypes per variant name.
    """
    labels = data.val.labels
    probs, thresholds, dtypes = {}, {}, {}
    names = {v.name for v in variants}
    for v in variants:
        with PatchClassifier(v.path, num_threads=1, max_batch=64) as clf:
            p = clf.predict(data.val.images)
            dtypes[v.name] = str(clf.input_format.dtype)
        thr = choose_threshold(labels, p)
        m = binary_metrics(labels, p, thr)
        probs[v.name], thresholds[v.name] = p, thr
        ref = v.reference if v.reference in names else "float32"
        spec = read_spec(v.path)
        context, in_field = fit_context(data.val.records, p, spec.patch_size_px)
        prov = {**provenance, "variant": v.name, "conversion": v.method,
                "threshold_chosen_on": "validation patients: best balanced accuracy of this model's own outputs",
                "validation_metrics": m.to_dict(), "context_chosen_on": CONTEXT_CHOSEN_ON,
                "validation_metrics_in_field": in_field.to_dict()}
        write_spec(v.path, replace(spec, threshold=thr, float_model=None if ref == v.name else file_name(ref),
                                   provenance=prov, model_sha256=None, context=context))
        log(f"{v.name}: threshold {thr:.3f}, balanced accuracy {m.balanced_accuracy:.4f}, AUC {m.roc_auc:.4f}; "
            f"in the field {in_field.balanced_accuracy:.4f}, {in_field.roc_auc:.4f} at {context.threshold:.3f}")
    return probs, thresholds, dtypes


def evaluate_folder(variants: list[Variant], images: np.ndarray, labels: np.ndarray, *,
                    latency_rounds: int = 30, probs: dict | None = None,
                    log: Log = stderr_log) -> tuple[list[VariantEvaluation], dict[str, np.ndarray]]:
    """Evaluate converted variants at their sidecar thresholds (predicting unless ``probs`` given).

    Returns:
        the evaluations and the validation probabilities per variant.
    """
    probs = dict(probs or {})
    thresholds, dtypes = {}, {}
    for v in variants:
        with PatchClassifier(v.path, num_threads=1, max_batch=64) as clf:
            if v.name not in probs:
                probs[v.name] = clf.predict(images)
            thresholds[v.name] = clf.spec.threshold
            dtypes[v.name] = str(clf.input_format.dtype)
    latency = None
    if latency_rounds:
        log(f"latency: {latency_rounds} interleaved rounds, batch 1 and 64, 1 thread")
        latency = measure_latency({v.name: v.path for v in variants}, images, rounds=latency_rounds)
    return evaluate_variants(variants, probs, thresholds, labels, dtypes, latency), probs


@dataclass(frozen=True)
class RunResult:
    """What a conversion run made and measured."""

    variants: list[Variant]
    evaluations: list[VariantEvaluation]
    selection: Selection
    probs: dict[str, np.ndarray]
    labels: np.ndarray
    info: dict


def _output_stride(arch: str | None) -> int | None:
    """Output stride of a fully convolutional architecture (its sidecar's ``dense``), else None."""
    from train import architectures

    return architectures.output_stride_px(arch) if arch in architectures.names() else None


def run(opts: RunOptions, data: ConversionData, log: Log = stderr_log, model=None) -> RunResult:
    """Convert, calibrate thresholds, evaluate and choose the int8 default; writes ``variants.json``.

    ``model`` is the loaded (and checked) Keras model of ``opts.model_path``, loaded here when None.
    ``opts.out_dir`` should be a fresh folder (``python -m convert`` stages one beside ``--out``).
    """
    started = utc_now()
    if opts.latency_rounds:
        from .evaluate import check_latency_patches

        check_latency_patches(len(data.val.images))
    model = model if model is not None else kerasenv.load_keras_model(opts.model_path)
    train_config = read_train_config(opts.model_path)
    arch = None
    builder = None
    if opts.qat is not None:
        arch = resolve_architecture(model, opts.arch, train_config)
        builder = architecture_builder(arch)
    elif opts.arch is not None:
        arch = resolve_architecture(model, opts.arch, train_config)
    arch = arch or train_config.get("architecture") or getattr(model, "name", None)
    stride = _output_stride(arch)
    base_spec = ModelSpec(patch_size_px=PATCH_SIZE_PX, um_per_px=UM_PER_PX, channel_order="RGB", threshold=0.5,
                          class_names=tuple(CLASS_NAMES), dense={"output_stride_px": stride} if stride else None)
    variants, facts = convert_variants(model, data, opts, base_spec, builder, log)
    tf = kerasenv.tf()
    info = {
        "date": started,
        "source_model": str(opts.model_path),
        "source_model_sha256": file_sha256(opts.model_path),
        "architecture": arch,
        "training_command": (train_config.get("config") or {}).get("command") or train_config.get("command"),
        "data": data.to_dict(),
        "input_type": opts.input_type,
        "representative": {"patches": len(data.representative.records), "seed": opts.seed,
                           "drawn_from": "training patients only", "range_anchor": "one copy with a 0 and a 255 pixel"},
        "qat": None if opts.qat is None else {**opts.qat.to_dict(), "train_patches": len(data.train.records),
                                              "optimizer": "Adam", "scheme": "tfmot default 8-bit"},
        "tensorflow": tf.__version__,
        "machine": machine_line(),
        "command": " ".join(["python -m convert", *sys.argv[1:]]),
        **facts,
    }
    provenance = {k: info[k] for k in ("date", "source_model", "source_model_sha256", "architecture", "training_command", "data",
                                       "input_type", "tensorflow", "command")}
    provenance["converted_by"] = "python -m convert"
    probs, thresholds, _ = calibrate(variants, data, provenance, log)
    evals, _ = evaluate_folder(variants, data.val.images, data.val.labels, latency_rounds=opts.latency_rounds,
                            probs=probs, log=log)
    selection = choose_int8(evals)
    info["selection"] = {"chosen": selection.chosen, "reference": selection.reference, "reason": selection.reason}
    write_manifest(opts.out_dir, variants, info)
    log(f"chosen int8 variant: {selection.reason}")
    return RunResult(variants, evals, selection, probs, data.val.labels, info)
