"""Learning curves, validation ROC curve and the model card of a training run."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from idc_edge.jsonready import dumps
from idc_edge.metrics import roc_auc, roc_curve


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_learning_curves(rows: Sequence[Mapping[str, float]], best_epoch: int, path: Path) -> Path:
    """Training/validation loss and validation AUC / balanced accuracy per epoch."""
    plt = _plt()
    ep = [r["epoch"] for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.plot(ep, [r["loss"] for r in rows], "o-", label="training loss (class-weighted, augmented)")
    a.plot(ep, [r["val_loss"] for r in rows], "o-", label="validation loss")
    a.set_xlabel("epoch")
    a.set_ylabel("binary cross-entropy")
    a.legend(fontsize=8)
    b.plot(ep, [r["val_auc"] for r in rows], "o-", label="validation ROC AUC")
    b.plot(ep, [r["val_balanced_accuracy"] for r in rows], "o-", label="validation balanced accuracy (best thr.)")
    b.plot(ep, [r["val_balanced_accuracy_at_0.5"] for r in rows], ".--", label="validation balanced accuracy (thr. 0.5)")
    b.axvline(best_epoch, color="grey", ls=":", label=f"chosen epoch {best_epoch}")
    b.set_xlabel("epoch")
    b.legend(fontsize=8)
    for ax in (a, b):
        ax.grid(alpha=0.3)
    fig.suptitle("Learning curves (validation = held-out patients)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_roc(y, scores: Mapping[str, np.ndarray], thresholds: Mapping[str, float | None], path: Path) -> Path:
    """ROC curve(s) on the validation patients, with each model's operating point."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, s in scores.items():
        fpr, tpr, _ = roc_curve(y, s)
        line, = ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc(y, s):.3f})")
        thr = thresholds.get(name)
        if thr is not None:
            pred = np.asarray(s) >= thr
            yy = np.asarray(y)
            ax.plot([np.mean(pred[yy == 0])], [np.mean(pred[yy == 1])], "o", color=line.get_color(),
                    label=f"{name} threshold {thr:.3f}")
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set_xlabel("false positive rate (1 - recall of no IDC)")
    ax.set_ylabel("true positive rate (recall of IDC)")
    ax.set_title("ROC on validation patients")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _f(v: Any, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def _metrics_rows(name: str, m: Mapping[str, Any]) -> str:
    return (f"| {name} | {_f(m['threshold'], 3)} | {_f(m['balanced_accuracy'])} | {_f(m['recall_0'])} | "
            f"{_f(m['recall_1'])} | {_f(m['roc_auc'])} | {_f(m['f1_1'])} | {_f(m['accuracy'])} |")


def model_card_markdown(card: Mapping[str, Any]) -> str:
    """The model card as Markdown."""
    c = card["counts"]
    cfg = card["config"]
    lines = [
        f"# Model card: IDC patch classifier `{card['architecture']}`",
        "",
        "Classifies a 50×50 px RGB patch of H&E breast histology at about 4 µm/px (the Kaggle "
        "\"Breast Histopathology Images\" scale) as invasive ductal carcinoma (IDC) or not. "
        "Input: raw RGB bytes 0–255 (RGB order; `Rescaling` is inside the model). Output: P(IDC).",
        "",
        "## Architecture",
        "",
        f"- `{card['architecture']}`: {card['architecture_description']}",
        f"- parameters: {card['parameters']:,}",
    ]
    if "int8" in card:
        lines.append(f"- int8 TFLite: {card['int8']['kb']:.1f} KB; float32 TFLite: {card['float32_tflite_kb']:.1f} KB")
    if "latency_ms_per_patch" in card:
        lat = card["latency_ms_per_patch"]
        lines.append(f"- LiteRT latency per patch (batch {lat['batch']}, {lat['threads']} thread): "
                     f"int8 {lat['int8']:.4f} ms, float32 {lat['float32']:.4f} ms "
                     f"({lat['float32'] / lat['int8']:.2f}× faster in int8)")
    lines += [
        "",
        "## Data",
        "",
        f"- data folder: `{card['data']}`; split: {card['split_method']} (by patient, no patient in two splits)",
        "",
        "| split | patients | patches | no IDC (0) | IDC (1) |",
        "|---|---|---|---|---|",
    ]
    for name, s in c.items():
        lines.append(f"| {name} | {s['patients']} | {s['patches']} | {s['class_0']} | {s['class_1']} |")
    win = card.get("train_windows")
    if win and win["windows"]:
        rule = win["rule"]
        lines += ["", f"- plus {win['windows']} training windows at random offsets on the rebuilt slides "
                      f"({win['class_1']} IDC): labelled area >= {rule['min_labelled']:.0%} of the window, IDC when "
                      f"the IDC share of it is >= {rule['idc_at_least']:.0%}, no IDC when <= {rule['benign_at_most']:.0%}, "
                      "dropped in between"]
    lines += [
        "",
        f"- unreadable files skipped: {card['skipped_unreadable']['count']}",
        f"- validation patients: {' '.join(card['validation_patients'])}",
        "",
        "## Training",
        "",
        f"- epochs: {card['epochs']}, batch {cfg['batch_size']}, AdamW lr {cfg['learning_rate']} "
        f"(warm-up {cfg['warmup_epochs']} epoch, cosine decay), weight decay {cfg['weight_decay']}, "
        + (f"exponential moving average of the weights (momentum {cfg['ema']}), " if cfg.get("ema") else "")
        + f"seed {cfg['seed']}",
        f"- class imbalance: {cfg['class_balance']} (class weights {', '.join(f'{w:.3f}' for w in card['class_weight'])}) "
        "and a decision threshold chosen on validation patients",
        f"- augmentation: {', '.join(cfg['augment']) or 'none'}",
        f"- epoch chosen by {card['selected_by']}: epoch {card['chosen_epoch']}",
        f"- training time: {card['training_seconds'] / 60:.1f} min ({card['machine']}); "
        f"whole run {card['total_seconds'] / 60:.1f} min",
        f"- command: `{cfg['command']}`",
        "",
        "## Validation metrics (validation patients, threshold chosen on them)",
        "",
        "| model | threshold | balanced acc. | recall no IDC | recall IDC | ROC AUC | F1 IDC | accuracy |",
        "|---|---|---|---|---|---|---|---|",
        _metrics_rows("Keras float32", card["float"]["metrics"]),
    ]
    if "int8" in card:
        lines.append(_metrics_rows("TFLite int8", card["int8"]["metrics"]))
        lines.append(_metrics_rows("TFLite int8 at float thr.", card["int8"]["metrics_at_float_threshold"]))
    pp = card["int8"]["per_patient"] if "int8" in card else card["float"]["per_patient"]
    lines += [
        "",
        f"Per-patient balanced accuracy ({pp['patients_with_both_classes']} validation patients with at least "
        f"{pp.get('min_patches_per_class', 1)} patches of each class): "
        f"min {_f(pp['balanced_accuracy_min'], 3)}, median {_f(pp['balanced_accuracy_median'], 3)}, "
        f"max {_f(pp['balanced_accuracy_max'], 3)}.",
        "",
        "The threshold and epoch were chosen on these validation patients, so these numbers are "
        "slightly optimistic; expect a little less on patients never seen.",
        "",
        "Curves: `learning_curves.png`, `val_roc.png`; per-epoch log: `history.csv`.",
    ]
    if card.get("candidates_markdown"):
        lines += ["", "## Candidate comparison", "", card["candidates_markdown"]]
    return "\n".join(lines) + "\n"


def write_model_card(card: Mapping[str, Any], out: Path) -> tuple[Path, Path]:
    """``model_card.md`` and ``model_card.json`` in ``out``."""
    md = out / "model_card.md"
    js = out / "model_card.json"
    md.write_text(model_card_markdown(card), encoding="utf-8")
    js.write_text(dumps(dict(card), indent=2) + "\n", encoding="utf-8")
    return md, js
