"""Evaluating TFLite variants through the runtime (:class:`idc_edge.classifier.PatchClassifier`).

Every number about a converted model is measured through the same class the device uses, so
it covers the runtime's input handling (raw uint8 bytes, int8 offset, float) and output
dequantization, not just the converter's arithmetic.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Mapping, Sequence

import numpy as np

from idc_edge.classifier import PatchClassifier
from idc_edge.errors import OptionError
from idc_edge.metrics import BinaryMetrics, best_threshold, binary_metrics


def predict(model_path: str | os.PathLike, images: np.ndarray, num_threads: int = 1) -> np.ndarray:
    """Probability of IDC for every patch, from the runtime with ``model_path`` and its sidecar."""
    with PatchClassifier(model_path, num_threads=num_threads, max_batch=64) as clf:
        return clf.predict(images)


def choose_threshold(labels: np.ndarray, probs: np.ndarray) -> float:
    """The variant's own decision threshold: best balanced accuracy on these (validation) patches."""
    return best_threshold(labels, probs)


@dataclass(frozen=True)
class Agreement:
    """How a variant's outputs compare with its float reference on the same patches.

    Attributes:
        at_own_thresholds: share of patches with the same decision, each model at its own
            (sidecar) threshold — what two deployed models would do.
        at_reference_threshold: same, both at the reference's threshold — the effect of the
            probabilities alone.
        max_abs_diff / mean_abs_diff: largest and mean absolute probability difference.
    """

    at_own_thresholds: float
    at_reference_threshold: float
    max_abs_diff: float
    mean_abs_diff: float


def agreement(probs: np.ndarray, threshold: float, ref_probs: np.ndarray, ref_threshold: float) -> Agreement:
    """Compare ``probs`` (at ``threshold``) with ``ref_probs`` (at ``ref_threshold``)."""
    p = np.asarray(probs, np.float64)
    r = np.asarray(ref_probs, np.float64)
    if p.shape != r.shape or p.size == 0:
        raise ValueError(f"need two non-empty probability arrays of one shape, got {p.shape} and {r.shape}")
    ref_dec = r >= ref_threshold
    diff = np.abs(p - r)
    return Agreement(
        at_own_thresholds=float(np.mean((p >= threshold) == ref_dec)),
        at_reference_threshold=float(np.mean((p >= ref_threshold) == ref_dec)),
        max_abs_diff=float(diff.max()),
        mean_abs_diff=float(diff.mean()),
    )


@dataclass(frozen=True)
class Latency:
    """Median wall time per patch in ms through ``PatchClassifier.predict`` (LiteRT, given threads)."""

    batch1_ms: float
    batch64_ms: float
    threads: int
    rounds: int


#: patches of the larger batch latency is timed on
LATENCY_BATCH = 64


def check_latency_patches(n: int) -> None:
    """Raise :class:`OptionError` when ``n`` validation patches are too few to time latency on.

    Said before any model is converted (it was said after every variant was made, QAT included)."""
    if n < LATENCY_BATCH:
        raise OptionError(f"latency is timed on batches of {LATENCY_BATCH} patches, but the validation set has {n}; "
                          "use a larger data set, or skip timing with --latency-rounds 0", option="latency_rounds")


def measure_latency(paths: Mapping[str, str | os.PathLike], patches: np.ndarray, *, rounds: int = 30,
                    threads: int = 1) -> dict[str, Latency]:
    """Latency per patch of several models, measured in interleaved rounds.

    Every model's single-patch and 64-patch calls are timed by the runtime's own timer
    (:func:`idc_edge.bench.timing.interleaved`): round by round, in a rotating order, so a change
    in machine load hits all models alike; the median round is reported.

    Args:
        paths: model name → ``.tflite`` path (with sidecar).
        patches: at least 64 RGB uint8 patches.

    Raises:
        OptionError: fewer than 64 patches (a ``ValueError`` too).
    """
    from idc_edge.bench.timing import interleaved

    check_latency_patches(len(patches))
    batch = np.ascontiguousarray(patches[:64])
    one = np.ascontiguousarray(patches[:1])
    clfs = {name: PatchClassifier(p, num_threads=threads, max_batch=64) for name, p in paths.items()}
    try:
        calls = {}
        for name, clf in clfs.items():
            calls[f"{name}@1"] = lambda c=clf: c.predict(one)
            calls[f"{name}@64"] = lambda c=clf: c.predict(batch)
        seconds = interleaved(calls, rounds=rounds)
    finally:
        for clf in clfs.values():
            clf.close()
    return {n: Latency(float(np.median(seconds[f"{n}@1"]) * 1e3), float(np.median(seconds[f"{n}@64"]) * 1e3 / 64),
                       threads, rounds) for n in clfs}


@dataclass(frozen=True)
class VariantEvaluation:
    """Everything the report says about one variant on the validation patients.

    ``metrics`` are at the variant's own sidecar threshold; ``vs_float`` compares with the
    float32 model of the trained weights, ``vs_reference`` with the float32 model of the same
    weights (they differ only for the QAT variant).
    """

    name: str
    method: str
    full_integer: bool
    file: str
    size_bytes: int
    input_dtype: str
    threshold: float
    metrics: BinaryMetrics
    balanced_accuracy_at_float_threshold: float
    vs_float: Agreement
    reference: str
    vs_reference: Agreement
    latency: Latency | None

    def to_dict(self) -> dict:
        return asdict(self)


def delta(a: BinaryMetrics, b: BinaryMetrics) -> dict[str, float]:
    """``a - b`` for the headline metrics (positive: ``a`` is better)."""
    keys = ("balanced_accuracy", "roc_auc", "recall_0", "recall_1", "f1_1", "accuracy")
    return {k: float(getattr(a, k) - getattr(b, k)) for k in keys}


def evaluate_variants(variants: Sequence, probs: Mapping[str, np.ndarray], thresholds: Mapping[str, float],
                      labels: np.ndarray, input_dtypes: Mapping[str, str],
                      latency: Mapping[str, Latency] | None = None) -> list[VariantEvaluation]:
    """One :class:`VariantEvaluation` per variant from already computed probabilities.

    Args:
        variants: :class:`convert.variants.Variant` objects; must include ``float32``.
        probs: variant name → validation probabilities (through the runtime).
        thresholds: variant name → its sidecar threshold.
        labels: validation labels.
        input_dtypes: variant name → the model's input dtype as the runtime sees it.
        latency: variant name → latency, when measured.
    """
    if "float32" not in probs:
        raise ValueError("evaluation needs the float32 variant as the reference")
    out = []
    for v in variants:
        ref = v.reference if v.reference in probs else "float32"
        out.append(VariantEvaluation(
            name=v.name, method=v.method, full_integer=v.full_integer, file=v.path.name, size_bytes=v.size_bytes,
            input_dtype=input_dtypes[v.name], threshold=float(thresholds[v.name]),
            metrics=binary_metrics(labels, probs[v.name], thresholds[v.name]),
            balanced_accuracy_at_float_threshold=binary_metrics(labels, probs[v.name],
                                                                thresholds["float32"]).balanced_accuracy,
            vs_float=agreement(probs[v.name], thresholds[v.name], probs["float32"], thresholds["float32"]),
            reference=ref,
            vs_reference=agreement(probs[v.name], thresholds[v.name], probs[ref], thresholds[ref]),
            latency=(latency or {}).get(v.name),
        ))
    return out
