"""PNG charts of the quantization report (matplotlib, Agg backend, no display needed)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from idc_edge.metrics import roc_curve

from .evaluate import VariantEvaluation


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def roc_chart(path: str | os.PathLike, labels: np.ndarray, probs: Mapping[str, np.ndarray],
              evals: Sequence[VariantEvaluation]) -> Path:
    """ROC curves of every variant on one chart, each with its operating point (sidecar threshold)."""
    plt = _plt()
    fig, (ax, zoom) = plt.subplots(1, 2, figsize=(11, 5))
    for e in evals:
        fpr, tpr, _ = roc_curve(labels, probs[e.name])
        style = "-" if "int8" in e.name else "--"
        for a in (ax, zoom):
            line, = a.plot(fpr, tpr, style, lw=1.3, label=f"{e.name} (AUC {e.metrics.roc_auc:.4f})")
            a.plot(1 - e.metrics.recall_0, e.metrics.recall_1, "o", color=line.get_color(), ms=5)
    ax.plot([0, 1], [0, 1], ":", color="grey", lw=0.8)
    ax.set(xlabel="false positive rate (1 - recall no IDC)", ylabel="true positive rate (recall IDC)",
           title="ROC, validation patients")
    ax.legend(loc="lower right", fontsize=8)
    ops = np.array([[1 - e.metrics.recall_0, e.metrics.recall_1] for e in evals])
    cx, cy = ops.mean(axis=0)
    zoom.set(xlim=(max(0, cx - 0.12), min(1, cx + 0.12)), ylim=(max(0, cy - 0.12), min(1, cy + 0.12)),
             xlabel="false positive rate", title="zoom on the operating points (dots: sidecar thresholds)")
    for a in (ax, zoom):
        a.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return Path(path)


def confusion_chart(path: str | os.PathLike, evals: Sequence[VariantEvaluation]) -> Path:
    """A confusion matrix per variant (rows: truth, columns: decision at the sidecar threshold)."""
    plt = _plt()
    n = len(evals)
    cols = min(n, 3)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.3 * rows), squeeze=False)
    for ax, e in zip(axes.ravel(), evals):
        cm = np.array(e.metrics.confusion, dtype=np.int64)
        norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
        ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
        for i in range(2):
            for j in range(2):
                ax.text(j, i, f"{cm[i, j]}\n{norm[i, j]:.1%}", ha="center", va="center",
                        color="white" if norm[i, j] > 0.6 else "black", fontsize=9)
        ax.set(xticks=[0, 1], yticks=[0, 1], xticklabels=["no IDC", "IDC"], yticklabels=["no IDC", "IDC"],
               xlabel="decision", ylabel="truth", title=f"{e.name} (t={e.threshold:.3f})")
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return Path(path)


def tradeoff_chart(path: str | os.PathLike, evals: Sequence[VariantEvaluation]) -> Path:
    """File size, balanced accuracy and latency per patch (batch 1 and 64) side by side."""
    plt = _plt()
    names = [e.name for e in evals]
    x = np.arange(len(names))
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    axes[0].bar(x, [e.size_bytes / 1024 for e in evals], color="tab:blue")
    axes[0].set(ylabel="KB", title="file size")
    bal = np.array([e.metrics.balanced_accuracy for e in evals])
    axes[1].bar(x, bal * 100, color="tab:green")
    lo = max(0.0, bal.min() * 100 - 2)
    axes[1].set(ylabel="%", title="balanced accuracy (validation patients)", ylim=(lo, min(100, bal.max() * 100 + 1)))
    for i, v in enumerate(bal):
        axes[1].text(i, v * 100, f"{v * 100:.2f}", ha="center", va="bottom", fontsize=8)
    if all(e.latency is not None for e in evals):
        w = 0.38
        axes[2].bar(x - w / 2, [e.latency.batch1_ms for e in evals], w, label="batch 1", color="tab:orange")
        axes[2].bar(x + w / 2, [e.latency.batch64_ms for e in evals], w, label="batch 64", color="tab:red")
        axes[2].legend(fontsize=8)
    axes[2].set(ylabel="ms per patch", title="LiteRT latency, 1 thread")
    for ax in axes:
        ax.set_xticks(x)
        ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return Path(path)
