"""Re-evaluate models that are already converted — a conversion folder or the shipped pair — and
write the quantization report for them, without TensorFlow (LiteRT and the data folder only).

Used by ``benchmarks/quantization_report.py``.
"""
from __future__ import annotations

import os
from pathlib import Path

from idc_edge.classifier import MODELS_DIR
from idc_edge.errors import ModelError
from idc_edge.jsonready import utc_now
from idc_edge.machine import machine_line
from idc_edge.spec import read_spec

from . import report
from .data import ConversionData
from .pipeline import evaluate_folder, stderr_log
from .select import choose_int8
from .variants import Variant, check_recorded, read_manifest


def shipped_variants(models_dir: str | os.PathLike = MODELS_DIR) -> tuple[list[Variant], dict]:
    """The shipped ``idc_float32.tflite`` and ``idc_int8.tflite`` as variants ``float32`` and ``int8``.

    Raises:
        ModelError: either file (or its sidecar) is missing.
    """
    d = Path(models_dir)
    f32, i8 = d / "idc_float32.tflite", d / "idc_int8.tflite"
    for p in (f32, i8):
        if not p.is_file():
            raise ModelError(f"shipped model {str(p)!r} is missing; ship one with `python -m convert --ship`")
    s8, s32 = read_spec(i8), read_spec(f32)
    if s8.float_model and s8.float_model != f32.name:
        raise ModelError(f"{str(i8)!r} names {s8.float_model!r} as its float model, not {f32.name!r}")
    variants = [
        Variant("float32", f32, str(s32.provenance.get("conversion", "shipped float32 model")), "float32", False),
        Variant("int8", i8, str(s8.provenance.get("conversion", "shipped int8 model")), "float32", True),
    ]
    info = {k: s8.provenance.get(k) for k in ("source_model", "architecture", "training_command", "input_type")
            if s8.provenance.get(k) is not None}
    info["shipped_from"] = s8.provenance.get("shipped_from")
    info["shipped_variant"] = s8.provenance.get("variant")
    return variants, info


def folder_variants(conversion_dir: str | os.PathLike) -> tuple[list[Variant], dict]:
    """The variants of a ``python -m convert`` output folder and its run info, each file checked to be
    the one ``variants.json`` records, as shipping checks it (:func:`~convert.variants.check_recorded`).

    Raises:
        ModelError: no manifest, or a file or sidecar that is not the one it records.
    """
    variants, info = read_manifest(conversion_dir)
    for v in variants:
        check_recorded(v, conversion_dir)
    return variants, info


def evaluate_and_report(variants: list[Variant], info: dict, data: ConversionData, out_dir: str | os.PathLike, *,
                        latency_rounds: int = 30, charts: bool = True,
                        command: str = "python -m benchmarks.quantization_report") -> dict[str, Path]:
    """Evaluate ``variants`` on the validation patients at their sidecar thresholds and write the report."""
    evals, probs = evaluate_folder(variants, data.val.images, data.val.labels, latency_rounds=latency_rounds)
    selection = choose_int8(evals)
    info = {**info, "date": utc_now(), "data": data.to_dict(), "machine": machine_line(), "command": command,
            "selection": {"chosen": selection.chosen, "reference": selection.reference, "reason": selection.reason}}
    stderr_log(f"evaluated {', '.join(e.name for e in evals)} on {len(data.val.records)} validation patches")
    return report.write(out_dir, evals, selection, info, data.val.labels, probs, with_charts=charts)
