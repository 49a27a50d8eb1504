"""Which int8 variant ships, and whether it meets the quantization targets (pure functions)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .evaluate import VariantEvaluation

PREFERENCE = ("int8_ptq", "int8_qat")
"""Last tie-break: post-training quantization first (simpler to reproduce)."""

TIE_TOLERANCE = 0.001
"""Balanced accuracies closer than this (0.1 percentage point) count as a tie."""


@dataclass(frozen=True)
class Selection:
    """The shipped int8 variant, its float reference (same weights) and why it was chosen."""

    chosen: str
    reference: str
    reason: str


def _own_drop(e: VariantEvaluation, by_name: dict[str, VariantEvaluation]) -> float:
    ref = by_name.get(e.reference, by_name["float32"])
    return ref.metrics.balanced_accuracy - e.metrics.balanced_accuracy


def choose_int8(evals: Sequence[VariantEvaluation], tie_tolerance: float = TIE_TOLERANCE) -> Selection:
    """The full-integer variant with the best validation balanced accuracy.

    Variants within ``tie_tolerance`` of the best are tied; a tie goes to the smaller drop
    against the float model of the same weights, then to post-training quantization (simpler
    to reproduce).

    Raises:
        ValueError: no full-integer variant was evaluated.
    """
    by_name = {e.name: e for e in evals}
    cands = [e for e in evals if e.full_integer]
    if not cands:
        raise ValueError("no full-integer (int8) variant to choose from")
    best = max(e.metrics.balanced_accuracy for e in cands)
    tied = [e for e in cands if best - e.metrics.balanced_accuracy <= tie_tolerance]
    order = {n: i for i, n in enumerate(PREFERENCE)}
    tied.sort(key=lambda e: (round(_own_drop(e, by_name), 6), order.get(e.name, len(order)), e.name))
    win = tied[0]
    others = [e for e in cands if e is not win]
    if not others:
        reason = f"{win.name} is the only int8 variant"
    elif len(tied) == 1:
        o = max(others, key=lambda e: e.metrics.balanced_accuracy)
        reason = (f"{win.name} has the best validation balanced accuracy ({win.metrics.balanced_accuracy:.4f} vs "
                  f"{o.name} {o.metrics.balanced_accuracy:.4f})")
    else:
        reason = (f"balanced accuracies tie within {tie_tolerance * 100:.1f} points "
                  f"({', '.join(f'{e.name} {e.metrics.balanced_accuracy:.4f}' for e in tied)}); {win.name} has the "
                  f"smaller drop against the float model of its weights ({_own_drop(win, by_name) * 100:+.2f} points)")
    ref = win.reference if win.reference in by_name else "float32"
    return Selection(win.name, ref, reason)


@dataclass(frozen=True)
class TargetCheck:
    """One quantization target: the measured value, the limit, and whether it is met."""

    name: str
    value: float
    limit: float
    passed: bool
    against: str


def check_targets(evals: Sequence[VariantEvaluation], chosen: str, against: str = "float32") -> list[TargetCheck]:
    """The quantization targets for the chosen int8 variant against the float32 variant ``against``.

    Balanced-accuracy drop <= 0.5 percentage points (each model at its own sidecar threshold),
    decisions agreeing on >= 99 % of patches with both models at the float model's threshold (so the
    number measures quantization, not two independently chosen thresholds; the report gives the
    agreement at the shipped thresholds too), file >= 3.5x smaller than float32.
    """
    by_name = {e.name: e for e in evals}
    c, f = by_name[chosen], by_name[against]
    agree = c.vs_float if against == "float32" else c.vs_reference
    drop = (f.metrics.balanced_accuracy - c.metrics.balanced_accuracy) * 100
    ratio = f.size_bytes / c.size_bytes
    return [
        TargetCheck("balanced-accuracy drop (points)", drop, 0.5, drop <= 0.5, against),
        TargetCheck("decision agreement (both at the float threshold)", agree.at_reference_threshold, 0.99,
                    agree.at_reference_threshold >= 0.99, against),
        TargetCheck("size ratio float32 / int8", ratio, 3.5, ratio >= 3.5, against),
    ]
