"""One training run: data → patient split → model → epoch and threshold chosen on validation
patients → Keras model, int8 TFLite model with its sidecar, curves and model card.

Nothing here looks at test patients: the epoch (best validation ROC AUC by default) and the
decision threshold (best validation balanced accuracy) are chosen on the validation patients.
"""
from __future__ import annotations

import csv
import json
import math
import os
import random
import re
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from idc_edge.dataset import (PATCH_SIZE_PX, UM_PER_PX, CLASS_NAMES, class_counts, load_patches,
                              require_both_classes, scan_dataset, split_by_patient)
from idc_edge.classifier import PatchClassifier
from idc_edge.errors import DatasetError, OptionError
from idc_edge.jsonready import utc_now
from idc_edge.machine import machine_line
from idc_edge.metrics import best_threshold, binary_metrics, per_group_metrics, roc_auc
from idc_edge.spec import ModelSpec, write_spec

from . import architectures
from .config import (AUGMENTATIONS, COMBINED_DRAWS, DEFAULT_AUGMENT, DEFAULT_TEACHER, PRESETS, AugmentStrength,  # noqa: F401
                     teacher_paths)
from .windows import WindowRule

SELECT_METRICS = ("auc", "balanced_accuracy")
STRATEGIES = ("default", "mirrored", "multiworker")
CLASS_BALANCE = ("weights", "none")
REPRESENTATIVE_PATCHES = 512
MIN_PER_CLASS = 10
#: largest --batch-size, patches: 65,536 float patches of 50 px are 1.9 GB already, and a size past
#: 2**31 hung TensorFlow's batching for ever without a word
MAX_BATCH_SIZE = 65536
#: most --epochs: 10,000 runs of even a handful of patches is beyond any use (1e14 trained for ever)
MAX_EPOCHS = 10000
#: most --logical-cpus: TensorFlow makes a device of each, and 99,999,999 of them ate the memory
#: until the kernel killed the run (exit 137, no word)
MAX_LOGICAL_CPUS = 256
WORKER_ENTRY = re.compile(r"^\.?worker_\d+(\.partial-.*)?$")  # a multi-worker run's other workers' outputs


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run depends on (written to ``train_config.json``)."""

    data: str
    out: str
    overwrite: bool = False
    arch: str = architectures.DEFAULT_ARCH
    epochs: int = 20
    batch_size: int = 128
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    warmup_epochs: float = 1.0
    ema: float | None = 0.995
    seed: int = 0
    augment: tuple[str, ...] = DEFAULT_AUGMENT
    class_balance: str = "weights"
    select: str = "auc"
    cache: str | None = None
    strategy: str = "default"
    logical_cpus: int | None = None
    val_patients: tuple[str, ...] | None = None
    val_fraction: float = 0.2
    max_patches: int | None = None
    windows_per_patch: float = 1.0
    teacher: str | None = DEFAULT_TEACHER
    teacher_weight: float = 0.5
    teacher_views: int = 1
    glare: float = 0.0
    stain_scale: float = AugmentStrength.stain_scale
    haematoxylin_scale: float | None = None
    grain_with_cast: float = 0.0
    hue_with_cast: float = 0.0
    dim_with_grain: float = 0.0
    weak_haematoxylin: float = 0.0
    export_tflite: bool = True
    latency: bool = True
    verbose: str = "auto"
    command: str = ""

    def validate(self) -> None:
        """Raise :class:`OptionError` naming the first bad option."""
        if self.arch not in architectures.names():
            raise OptionError(f"--arch: unknown architecture {self.arch!r}; expected one of "
                              f"{', '.join(architectures.names())}")
        if not 1 <= self.epochs <= MAX_EPOCHS:
            raise OptionError(f"--epochs must be from 1 to {MAX_EPOCHS}, got {self.epochs}")
        if not 1 <= self.batch_size <= MAX_BATCH_SIZE:
            raise OptionError(f"--batch-size must be from 1 to {MAX_BATCH_SIZE} patches, got {self.batch_size}")
        if not (math.isfinite(self.learning_rate) and 0 < self.learning_rate <= 1):
            raise OptionError(f"--learning-rate must be a number in (0, 1], got {self.learning_rate}")
        if not 0 <= self.seed < 2 ** 32:
            raise OptionError(f"--seed must be between 0 and 2**32 - 1, got {self.seed}")
        if self.ema is not None and not 0 <= self.ema < 1:
            raise OptionError(f"--ema must be 0 (off) or a momentum below 1 (e.g. 0.995), got {self.ema}")
        if not (math.isfinite(self.weight_decay) and 0 <= self.weight_decay <= 1):
            raise OptionError(f"--weight-decay must be a number in [0, 1], got {self.weight_decay}")
        if self.select not in SELECT_METRICS:
            raise OptionError(f"--select must be one of {', '.join(SELECT_METRICS)}, got {self.select!r}")
        if self.strategy not in STRATEGIES:
            raise OptionError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}")
        if self.logical_cpus is not None and not 1 <= self.logical_cpus <= MAX_LOGICAL_CPUS:
            raise OptionError(f"--logical-cpus must be from 1 to {MAX_LOGICAL_CPUS}, got {self.logical_cpus}")
        if self.class_balance not in CLASS_BALANCE:
            raise OptionError(f"--class-balance must be one of {', '.join(CLASS_BALANCE)}, got {self.class_balance!r}")
        if not 0 < self.val_fraction < 1:
            raise OptionError(f"--val-fraction must be between 0 and 1, got {self.val_fraction}")
        for path in teacher_paths(self.teacher) if self.teacher is not None else ():
            if not Path(path).is_file():
                raise OptionError(f"--teacher: no model file {path!r}")
        if not 0 < self.teacher_weight <= 1:
            raise OptionError(f"--teacher-weight must be in (0, 1], got {self.teacher_weight}")
        if self.teacher_views not in (1, 2, 4, 8):
            raise OptionError(f"--teacher-views must be 1, 2, 4 or 8, got {self.teacher_views}")
        if not 0 <= self.windows_per_patch <= 8:
            raise OptionError(f"--windows-per-patch must be between 0 and 8, got {self.windows_per_patch}")
        if self.max_patches is not None and self.max_patches < 8:
            raise OptionError(f"--max-patches must be >= 8, got {self.max_patches}")
        if not 0 <= self.stain_scale < 1:
            raise OptionError(f"--stain-scale must be in [0, 1) (each stain x U(1 - S, 1 + S)), got {self.stain_scale}")
        if self.haematoxylin_scale is not None and not 0 <= self.haematoxylin_scale < 1:
            raise OptionError(f"--haematoxylin-scale must be in [0, 1) (haematoxylin x U(1 - S, 1 + S)), "
                              f"got {self.haematoxylin_scale}")
        for name in COMBINED_DRAWS:
            value = getattr(self, name)
            if not 0 <= value <= 1:  # also refuses NaN
                raise OptionError(f"--{name.replace('_', '-')} must be a probability from 0 to 1, got {value}")
        bad = [a for a in self.augment if a not in AUGMENTATIONS]
        if bad:
            raise OptionError(f"--augment: unknown augmentation(s) {', '.join(bad)}")

    def strength(self) -> AugmentStrength:
        """The augmentations' magnitudes: the defaults with this run's stain jitters and combined camera draws."""
        return AugmentStrength(stain_scale=self.stain_scale, haematoxylin_scale=self.haematoxylin_scale,
                               **{name: getattr(self, name) for name in COMBINED_DRAWS})


@dataclass
class RunResult:
    """What a run produced (paths and headline numbers)."""

    out: Path
    card: dict[str, Any] = field(default_factory=dict)


def _split_summary(records) -> dict[str, int]:
    n0, n1 = class_counts(records)
    return {"patients": len({r.patient for r in records}), "patches": n0 + n1, "class_0": n0, "class_1": n1}


def _seed_everything(seed: int) -> None:
    import keras

    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    random.seed(seed)
    np.random.seed(seed)
    keras.utils.set_random_seed(seed)


def _strategy(name: str, logical_cpus: int | None = None):
    """The tf.distribute strategy; must be made before any other TensorFlow op runs.

    - ``default``: one device.
    - ``mirrored``: synchronous data parallelism over every local GPU (or, with ``logical_cpus``,
      over that many logical CPU devices: how CI exercises it without GPUs).
    - ``multiworker``: the same across machines; each worker reads its role from ``TF_CONFIG``
      (``{"cluster": {"worker": ["host1:port", ...]}, "task": {"type": "worker", "index": i}}``).
    """
    import tensorflow as tf

    if logical_cpus:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * logical_cpus)
    if name == "mirrored":
        devices = None
        if logical_cpus and not tf.config.list_physical_devices("GPU"):
            devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def _non_chief_task() -> str | None:
    """``worker_<i>`` on a multi-worker run's non-chief workers (they write to a subfolder so the
    chief's outputs are not overwritten), None on the chief: the task of type ``chief``, or
    worker 0 when the cluster has no chief."""
    tf_config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task = tf_config.get("task") or {}
    kind, index = task.get("type", "worker"), int(task.get("index", 0))
    has_chief = "chief" in (tf_config.get("cluster") or {})
    if kind == "chief" or (kind == "worker" and index == 0 and not has_chief):
        return None
    return f"{kind}_{index}"


def check_out(out: Path, overwrite: bool, workers: bool = False) -> None:
    """Refuse, before any work, an ``--out`` that is a file, that cannot be made, or that already
    holds files (a finished run is replaced only with ``overwrite``, and only once the new run is complete).
    With ``workers`` (a multi-worker run's chief) the other workers' ``worker_<i>`` folders do not count."""
    if out.exists() and not out.is_dir():
        raise OptionError(f"--out: {str(out)!r} is a file, not a folder")
    held = [e for e in out.iterdir() if not (workers and WORKER_ENTRY.match(e.name))] if out.is_dir() else []
    if held and not overwrite:
        raise OptionError(f"--out: {str(out)!r} already holds files (a finished run?); choose a new folder, "
                          "or pass --overwrite to replace it once this run is complete")
    ancestor = out
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
        raise OptionError(f"--out: cannot write to {str(out)!r} ({str(ancestor)!r} is not a writable folder)")


def staging_dir(out: Path) -> Path:
    """A fresh hidden folder next to ``out`` that the run writes into (so a failed or interrupted
    run never leaves ``out`` holding parts of two runs)."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    except OSError as e:
        raise OptionError(f"--out: cannot write next to {str(out)!r} ({e.strerror or e})") from None


def move_into_place(staging: Path, out: Path, overwrite: bool) -> None:
    """The complete run in ``staging`` becomes ``out``: renamed, replacing an earlier run only with
    ``overwrite``; a folder that appeared meanwhile (a multi-worker run's ``worker_<i>``) is joined."""
    if not out.exists():
        os.rename(staging, out)
    elif overwrite:
        old = out.with_name(f".{out.name}.replaced-{os.getpid()}")
        os.rename(out, old)
        os.rename(staging, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        for entry in staging.iterdir():
            os.replace(entry, out / entry.name)
        staging.rmdir()


def diverged(epoch: int, loss: float, scores: np.ndarray) -> str | None:
    """Why training stopped making sense at ``epoch`` (1-based): a non-finite training loss or
    validation score (None while both are finite)."""
    bad = "training loss" if not math.isfinite(loss) else (
        "validation scores" if not np.isfinite(scores).all() else None)
    if bad is None:
        return None
    return f"training diverged at epoch {epoch} ({bad} not finite); lower --learning-rate or --weight-decay"


def _keras_module(strategy: str):
    """Keras 3, except for ``multiworker``: Keras 3's ``fit`` fails under
    ``MultiWorkerMirroredStrategy`` (keras-team/keras#20585), Keras 2 (``tf_keras``) supports it,
    and every architecture builds with identical weights in both."""
    if strategy == "multiworker":
        import tf_keras

        return tf_keras
    import keras

    return keras


def _learning_rate(optimizer) -> float:
    """The optimizer's current learning rate (NaN where a distributed variable will not say)."""
    lr = optimizer.learning_rate
    if callable(lr) and not hasattr(lr, "numpy"):  # Keras 2 may return the schedule itself
        lr = lr(optimizer.iterations)
    try:
        return float(lr.numpy() if hasattr(lr, "numpy") else lr)
    except (TypeError, ValueError):
        return float("nan")


def _validation_monitor(keras, *args, **kwargs):
    """Keras callback (of module ``keras``: Keras 3 or tf_keras): validation metrics per epoch,
    history CSV, best weights by ``select``.

    Defined inside a function so that importing this module (and failing fast on bad options)
    does not import Keras.
    """

    class Monitor(keras.callbacks.Callback):
        def __init__(self, val_ds, select: str, csv_path: Path, verbose: bool):
            super().__init__()
            self.val_ds, self.select, self.csv_path, self.verbose = val_ds, select, csv_path, verbose
            self.rows: list[dict[str, float]] = []
            self.best_score, self.best_epoch, self.best_weights = -np.inf, 0, None
            self._t0 = time.perf_counter()

        def on_epoch_begin(self, epoch, logs=None):
            self._t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            from .data import predict

            train_s = time.perf_counter() - self._t0
            p, y, _ = predict(self.model, self.val_ds)
            problem = diverged(epoch + 1, float((logs or {}).get("loss", 0.0)), p)
            if problem:
                raise OptionError(problem)
            thr = best_threshold(y, p)
            at_best, at_half = binary_metrics(y, p, thr), binary_metrics(y, p, 0.5)
            eps = 1e-7
            val_loss = float(-np.mean(y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps)))
            row = {
                "epoch": epoch + 1,
                "learning_rate": _learning_rate(self.model.optimizer),
                "loss": float((logs or {}).get("loss", np.nan)),
                "val_loss": val_loss,
                "val_auc": at_best.roc_auc,
                "val_balanced_accuracy": at_best.balanced_accuracy,
                "val_threshold": thr,
                "val_recall_0": at_best.recall_0,
                "val_recall_1": at_best.recall_1,
                "val_balanced_accuracy_at_0.5": at_half.balanced_accuracy,
                "train_seconds": train_s,
                "val_seconds": time.perf_counter() - self._t0 - train_s,
            }
            self.rows.append(row)
            with open(self.csv_path, "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=list(row))
                w.writeheader()
                w.writerows(self.rows)
            score = at_best.roc_auc if self.select == "auc" else at_best.balanced_accuracy
            if score > self.best_score:
                self.best_score, self.best_epoch = score, epoch + 1
                self.best_weights = [np.array(v) for v in self.model.get_weights()]
            if logs is not None:
                logs.update({k: v for k, v in row.items() if k.startswith("val_")})
            if self.verbose:
                print(f"epoch {epoch + 1}: loss {row['loss']:.4f}  val AUC {row['val_auc']:.4f}  "
                      f"val balanced acc {row['val_balanced_accuracy']:.4f} (thr {thr:.2f})  "
                      f"{train_s:.0f}s" + ("  *" if self.best_epoch == epoch + 1 else ""), flush=True)

    return Monitor(*args, **kwargs)


def _representative(records, seed: int) -> np.ndarray:
    rng = random.Random(seed)
    sample = rng.sample(list(records), min(REPRESENTATIVE_PATCHES, len(records)))
    return load_patches(sample).images


def _tflite_predict(path: Path, val_ds) -> np.ndarray:
    """P(IDC) of the validation batches through the runtime's own classifier (its input
    handling and dequantization); validation images are uint8 values carried as float32."""
    with PatchClassifier(path, num_threads=os.cpu_count() or 1, spec=ModelSpec()) as clf:
        return np.concatenate([clf.predict(x.numpy().astype(np.uint8)) for x, _, _ in val_ds])


def _summarise_patients(patients: Sequence[str], y, p, thr) -> dict[str, Any]:
    groups = per_group_metrics(patients, y, p, thr)
    # Patients with a handful of patches of one class give balanced accuracies of 0.5 or 1.0
    # by chance; summarise those with at least MIN_PER_CLASS patches of each class.
    both = {k: m.balanced_accuracy for k, m in groups.items()
            if min(sum(m.confusion[0]), sum(m.confusion[1])) >= MIN_PER_CLASS}
    vals = np.array(list(both.values()), np.float64)
    return {
        "min_patches_per_class": MIN_PER_CLASS,
        "patients_with_both_classes": len(both),
        "balanced_accuracy_min": float(vals.min()) if vals.size else float("nan"),
        "balanced_accuracy_median": float(np.median(vals)) if vals.size else float("nan"),
        "balanced_accuracy_max": float(vals.max()) if vals.size else float("nan"),
        "per_patient": {k: {"n": m.n_patches, "balanced_accuracy": m.balanced_accuracy,
                            "recall_0": m.recall_0, "recall_1": m.recall_1} for k, m in groups.items()},
    }


def run(cfg: TrainConfig) -> RunResult:
    """Train, select, export and document one model as described by ``cfg``.

    Raises:
        DatasetError: bad data folder, or a split leaves a part or class empty.
        OptionError: a bad option.
    """
    cfg.validate()
    t_start = time.perf_counter()
    task = _non_chief_task() if cfg.strategy == "multiworker" else None
    final = Path(cfg.out) / task if task else Path(cfg.out)
    check_out(final, cfg.overwrite and not task, workers=cfg.strategy == "multiworker")

    records = scan_dataset(cfg.data)
    require_both_classes(records, f"the data folder {cfg.data!r}")
    split = split_by_patient(records, cfg.val_patients, cfg.val_fraction, cfg.seed)
    train_recs = split.train
    val_recs = split.val
    if cfg.max_patches is not None:
        from .data import subsample

        train_recs = subsample(train_recs, cfg.max_patches, cfg.seed)
        val_recs = subsample(val_recs, max(8, cfg.max_patches // 2), cfg.seed + 1)
        require_both_classes(train_recs, f"the training set sampled to {cfg.max_patches} patches")
        require_both_classes(val_recs, "the sampled validation set")

    out = staging_dir(final)
    try:
        card = _train(cfg, out, split, train_recs, val_recs, t_start)
        move_into_place(out, final, cfg.overwrite and not task)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise
    return RunResult(final, card)


def _train(cfg: TrainConfig, out: Path, split, train_recs, val_recs, t_start: float) -> dict[str, Any]:
    """Everything of :func:`run` after the data checks, written into ``out``; the model card."""
    # TensorFlow is imported only now so that option and data errors come back fast.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import warnings

    import keras
    import tensorflow as tf

    from .data import SkipLog, assert_patient_disjoint, patch_dataset, predict

    strategy = _strategy(cfg.strategy, cfg.logical_cpus)
    assert_patient_disjoint(train_recs, val_recs)
    _seed_everything(cfg.seed)
    from .windows import patch_samples, random_windows

    samples = patch_samples(train_recs)
    if cfg.windows_per_patch > 0:
        samples = samples.concat(random_windows(train_recs, cfg.windows_per_patch, np.random.default_rng(cfg.seed)))
    stride = architectures.output_stride_px(cfg.arch)
    # Unreadable files are filtered out, so the number of batches is unknown in advance and
    # Keras warns when an epoch ends; shuffling is done by the pipeline itself.
    warnings.filterwarnings("ignore", message=".*input ran out of data.*")
    warnings.filterwarnings("ignore", message=".*`shuffle=True` was passed.*")

    n1 = int(samples.labels.sum())
    n0 = len(samples) - n1
    if cfg.class_balance == "weights":
        class_weight = (len(samples) / (2.0 * n0), len(samples) / (2.0 * n1))
    else:
        class_weight = (1.0, 1.0)

    skips = SkipLog()
    cache_train, cache_val = cfg.cache, cfg.cache
    if cfg.cache not in (None, "memory"):  # named by what they hold: another split never reads them
        from .cache import cache_key, keyed_cache

        cache_train = keyed_cache(cfg.cache, "train-" + cache_key(
            "training", train_recs, (samples.cells, samples.dy, samples.dx, samples.labels), cfg.seed))
        cache_val = keyed_cache(cfg.cache, "val-" + cache_key("validation", val_recs))
    train_ds = patch_dataset(train_recs, skips, cfg.batch_size, training=True, seed=cfg.seed,
                             augment=cfg.augment, strength=cfg.strength(), class_weight=class_weight, cache=cache_train,
                             samples=samples, label_rank=4 if stride else 2,
                             teacher=cfg.teacher, teacher_weight=cfg.teacher_weight, teacher_views=cfg.teacher_views)
    val_ds = patch_dataset(val_recs, skips, max(cfg.batch_size, 256), training=False, cache=cache_val)

    if cfg.strategy != "default":
        # Windows are index tuples, not files: shard the batches' elements across workers.
        opts = tf.data.Options()
        opts.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        train_ds = train_ds.with_options(opts)
    steps = int(np.ceil(len(samples) / cfg.batch_size))
    warmup = int(round(cfg.warmup_epochs * steps)) if cfg.epochs > 1 else 0
    k = _keras_module(cfg.strategy)
    # Keras 2 has no per-epoch swap of averaged weights, so EMA is off there.
    ema = cfg.ema if k is keras else None
    with strategy.scope():
        model = architectures.build(cfg.arch, k)
        schedule = k.optimizers.schedules.CosineDecay(
            cfg.learning_rate * (0.1 if warmup else 1.0), decay_steps=max(1, cfg.epochs * steps - warmup),
            warmup_target=cfg.learning_rate if warmup else None, warmup_steps=warmup)
        optimizer = k.optimizers.AdamW(schedule, weight_decay=cfg.weight_decay, use_ema=bool(ema),
                                       ema_momentum=ema or 0.99)
        model.compile(optimizer=optimizer, loss=k.losses.BinaryCrossentropy())

    verbose = sys.stdout.isatty() if cfg.verbose == "auto" else cfg.verbose == "bar"
    monitor = _validation_monitor(k, val_ds, cfg.select, out / "history.csv", verbose=True)
    t_fit = time.perf_counter()
    # With --ema, the averaged weights are swapped in at each epoch's end, so the monitor
    # evaluates (and keeps) the averaged model.
    callbacks = ([keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if ema else []) + [monitor]
    model.fit(train_ds, epochs=cfg.epochs, callbacks=callbacks, verbose=1 if verbose else 0)
    fit_seconds = time.perf_counter() - t_fit
    if k is not keras:  # everything below (saving, export) works on the Keras 3 twin
        model = architectures.build(cfg.arch, keras)
    model.set_weights(monitor.best_weights)

    p, y, idx = predict(model, val_ds)
    val_kept = [val_recs[i] for i in idx]
    threshold = best_threshold(y, p)
    float_metrics = binary_metrics(y, p, threshold)
    model.save(out / "model.keras")

    skipped = sorted(skips.paths)
    readable = [r for r in train_recs if r.path not in skips.paths]  # what was trained on, as val_kept is validated on
    counts = {"train": _split_summary(readable), "validation": _split_summary(val_kept)}
    windows_info = {"windows": len(samples) - len(train_recs), "class_1": int(samples.labels[len(train_recs):].sum()),
                    "rule": asdict(WindowRule()), "per_patch": cfg.windows_per_patch}
    card: dict[str, Any] = {
        "architecture": cfg.arch,
        "architecture_description": architectures.describe(cfg.arch),
        "parameters": int(model.count_params()),
        "input": {"shape": [PATCH_SIZE_PX, PATCH_SIZE_PX, 3], "channel_order": "RGB", "values": "raw bytes 0-255",
                  "um_per_px": UM_PER_PX},
        "data": str(cfg.data),
        "split_method": split.method,
        "counts": counts,
        "train_windows": windows_info,
        "output_stride_px": stride,
        "validation_patients": sorted({r.patient for r in val_recs}),
        "skipped_unreadable": {"count": len(skipped), "paths": skipped[:50]},
        "class_weight": list(class_weight),
        "chosen_epoch": monitor.best_epoch,
        "selected_by": f"validation {cfg.select}",
        "threshold": threshold,
        "float": {"metrics": float_metrics.to_dict(),
                  "per_patient": _summarise_patients([r.patient for r in val_kept], y, p, threshold)},
        "training_seconds": fit_seconds,
        "epochs": cfg.epochs,
        "config": {**asdict(cfg), "augment": list(cfg.augment)},
        "augment_strength": asdict(cfg.strength()),
        "replicas": int(strategy.num_replicas_in_sync),
        "machine": f"{machine_line()}, TensorFlow {tf.__version__}, Keras {keras.__version__}",
    }
    (out / "train_config.json").write_text(json.dumps(
        {"architecture": cfg.arch, "keras_module": "keras", "build": "train.architectures.build(name, keras)",
         "threshold": threshold, "chosen_epoch": monitor.best_epoch, "class_weight": list(class_weight),
         "config": card["config"], "augment_strength": card["augment_strength"]}, indent=2) + "\n")

    if cfg.export_tflite:
        from .export import latency_ms_per_patch, to_tflite

        f32_path = to_tflite(model, out / "model_float32.tflite")
        int8_path = to_tflite(model, out / "model_int8.tflite", _representative(train_recs, cfg.seed))
        p8 = _tflite_predict(int8_path, val_ds)
        thr8 = best_threshold(y, p8)
        m8 = binary_metrics(y, p8, thr8)
        card["int8"] = {
            "file": int8_path.name, "kb": int8_path.stat().st_size / 1024.0, "threshold": thr8,
            "metrics": m8.to_dict(),
            "metrics_at_float_threshold": binary_metrics(y, p8, threshold).to_dict(),
            "per_patient": _summarise_patients([r.patient for r in val_kept], y, p8, thr8),
        }
        card["float32_tflite_kb"] = f32_path.stat().st_size / 1024.0
        if cfg.latency:
            card["latency_ms_per_patch"] = {
                "batch": 64, "threads": 1,
                "int8": latency_ms_per_patch(int8_path), "float32": latency_ms_per_patch(f32_path)}
        provenance = {
            "trained_by": "python -m train", "command": cfg.command, "data": str(cfg.data),
            "split_method": split.method, "counts": counts,
            "architecture": cfg.arch, "parameters": card["parameters"], "chosen_epoch": monitor.best_epoch,
            "threshold_chosen_on": "validation patients (max balanced accuracy of this int8 model)",
            "validation_metrics": m8.to_dict(), "training_seconds": fit_seconds,
            "augment": list(cfg.augment), "seed": cfg.seed,
            "date": utc_now(),
        }
        spec = ModelSpec(patch_size_px=PATCH_SIZE_PX, um_per_px=UM_PER_PX, channel_order="RGB",
                         threshold=float(thr8), class_names=tuple(CLASS_NAMES),
                         float_model=f32_path.name, provenance=provenance,
                         dense={"output_stride_px": stride} if stride else None)
        write_spec(int8_path, spec)
        write_spec(f32_path, spec.with_threshold(float(threshold)))

    with open(out / "val_predictions.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "patient", "label", "p_float"] + (["p_int8"] if "int8" in card else []))
        for k, r in enumerate(val_kept):
            w.writerow([r.path, r.patient, r.label, f"{p[k]:.6f}"] + ([f"{p8[k]:.6f}"] if "int8" in card else []))

    card["total_seconds"] = time.perf_counter() - t_start
    from .report import write_learning_curves, write_model_card, write_roc

    write_learning_curves(monitor.rows, monitor.best_epoch, out / "learning_curves.png")
    curves = {"float32": p}
    if "int8" in card:
        curves["int8"] = p8
    write_roc(y, curves, {"float32": threshold, "int8": card.get("int8", {}).get("threshold")}, out / "val_roc.png")
    write_model_card(card, out)
    return card
