"""Binary classification metrics for IDC (class 1) vs no IDC (class 0), pure numpy.

Shared by training (epoch and threshold selection), conversion reports and ``idc-edge
evaluate`` so every number in the project is computed the same way.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional, Sequence

import numpy as np


def _check(y_true, scores) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true).astype(np.int64).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"labels and scores differ in length: {y.size} vs {s.size}")
    if y.size and not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 (no IDC) or 1 (IDC)")
    return y, s


def confusion(y_true, y_pred) -> np.ndarray:
    """2×2 confusion matrix ``[[tn, fp], [fn, tp]]`` (rows: truth, columns: prediction)."""
    y, p = _check(y_true, y_pred)
    p = p.astype(np.int64)
    return np.array([[np.sum((y == 0) & (p == 0)), np.sum((y == 0) & (p == 1))],
                     [np.sum((y == 1) & (p == 0)), np.sum((y == 1) & (p == 1))]], np.int64)


def roc_auc(y_true, scores) -> float:
    """Area under the ROC curve (Mann–Whitney U, ties count one half); NaN with one class only,
    and NaN when any score is not finite (a diverged model's NaN scores all tie: they rank nothing)."""
    y, s = _check(y_true, scores)
    n1 = int(y.sum())
    n0 = y.size - n1
    if n0 == 0 or n1 == 0 or not np.isfinite(s).all():
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(s.size, np.float64)
    sorted_s = s[order]
    # average ranks of tied groups
    boundaries = np.flatnonzero(np.diff(sorted_s)) + 1
    starts = np.concatenate(([0], boundaries))
    ends = np.concatenate((boundaries, [s.size]))
    avg = (starts + ends + 1) / 2.0  # 1-based average rank of each group
    ranks[order] = np.repeat(avg, ends - starts)
    return float((ranks[y == 1].sum() - n1 * (n1 + 1) / 2.0) / (n0 * n1))


def roc_curve(y_true, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(false positive rate, true positive rate, thresholds), thresholds decreasing.

    A patch is called IDC when its score is >= the threshold; the first point is (0, 0) at +inf.
    """
    y, s = _check(y_true, scores)
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s_sorted)), s.size - 1]
    tps = np.cumsum(y_sorted)[last]
    fps = (last + 1) - tps
    n1, n0 = max(int(y.sum()), 1), max(int(y.size - y.sum()), 1)
    return (np.r_[0.0, fps / n0], np.r_[0.0, tps / n1], np.r_[np.inf, s_sorted[last]])


def best_threshold(y_true, scores) -> float:
    """The threshold that maximises balanced accuracy (Youden's J) on these scores.

    Among equally good thresholds the midpoint between neighbouring scores is returned, so it
    does not sit exactly on a validation score.
    """
    y, s = _check(y_true, scores)
    if y.min(initial=1) == y.max(initial=0):
        raise ValueError("choosing a threshold needs patches of both classes")
    fpr, tpr, thr = roc_curve(y, s)
    i = int(np.argmax(tpr - fpr))
    hi = thr[i] if np.isfinite(thr[i]) else 1.0
    lo = thr[i + 1] if i + 1 < thr.size else 0.0
    return float(np.clip((hi + lo) / 2.0, 0.0, 1.0))


@dataclass(frozen=True)
class BinaryMetrics:
    """Metrics at one decision threshold; recall_0 is specificity, recall_1 sensitivity.

    With patches of one class only, the other class's recall, the balanced accuracy and the ROC
    AUC are NaN (undefined), never one class's figure passed off as both (:meth:`absent_class`).
    """

    accuracy: float
    balanced_accuracy: float
    recall_0: float
    recall_1: float
    precision_1: float
    f1_1: float
    roc_auc: float
    n_patches: int
    threshold: float
    confusion: tuple[tuple[int, int], tuple[int, int]]

    def to_dict(self) -> dict:
        return asdict(self)

    def absent_class(self) -> Optional[int]:
        """The class (0 no IDC, 1 IDC) no patch has, or None when both are there (or neither)."""
        n0, n1 = sum(self.confusion[0]), sum(self.confusion[1])
        return 1 if n0 and not n1 else 0 if n1 and not n0 else None


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b else float("nan")


def binary_metrics(y_true, scores, threshold: float = 0.5) -> BinaryMetrics:
    """Accuracy, balanced accuracy, per-class recall, IDC precision/F1 and ROC AUC (each a fraction
    from 0 to 1; balanced accuracy and ROC AUC NaN when one class has no patch).

    Args:
        y_true: 0/1 labels.
        scores: probability of IDC per patch.
        threshold: a patch is IDC when its score is >= threshold.
    """
    y, s = _check(y_true, scores)
    (tn, fp), (fn, tp) = confusion(y, s >= threshold)
    r0, r1 = _ratio(tn, tn + fp), _ratio(tp, tp + fn)
    p1 = _ratio(tp, tp + fp)
    f1 = _ratio(2 * tp, 2 * tp + fp + fn)
    return BinaryMetrics(
        accuracy=_ratio(tn + tp, y.size), balanced_accuracy=(r0 + r1) / 2, recall_0=r0, recall_1=r1,
        precision_1=p1, f1_1=f1, roc_auc=roc_auc(y, s), n_patches=int(y.size),
        threshold=float(threshold), confusion=((int(tn), int(fp)), (int(fn), int(tp))),
    )


def per_group_metrics(groups: Sequence[str], y_true, scores, threshold: float = 0.5) -> dict[str, BinaryMetrics]:
    """:func:`binary_metrics` for each group (for example each patient), keyed by group."""
    g = np.asarray(groups)
    y, s = _check(y_true, scores)
    if g.shape != y.shape:
        raise ValueError(f"groups and labels differ in length: {g.size} vs {y.size}")
    return {str(k): binary_metrics(y[g == k], s[g == k], threshold) for k in sorted(set(g.tolist()))}
