"""The quantization benchmark report: JSON (every number), Markdown (for people), PNG charts.

:func:`build` gathers the numbers into a JSON-ready dict, :func:`render_markdown` turns that
dict into Markdown (pure, testable without a model), :func:`write` puts both and the charts in a
folder.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from idc_edge.jsonready import dumps

from . import charts
from .evaluate import VariantEvaluation, delta
from .select import TIE_TOLERANCE, Selection, check_targets

THRESHOLD_POLICY = (
    "Each variant ships with its own sidecar threshold, chosen on these validation patients from that variant's "
    "own outputs (best balanced accuracy, `idc_edge.metrics.best_threshold`); its metrics in the table are at that "
    "threshold (slightly optimistic, alike for every variant, as the threshold is chosen on the same patches). "
    "Balanced accuracy is flat near its optimum, so near-identical models can get rather different thresholds; "
    "the table therefore also gives each variant's balanced accuracy at the float model's threshold. Agreement "
    "with float is given at the shipped thresholds (each model at its own: what two deployed models decide) and "
    "with both at the float model's threshold (the effect of quantization alone). **The 99 % agreement target "
    "is checked with both at the float threshold**; the agreement at the shipped thresholds is reported beside it."
)


def _pp(x: float) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x * 100:+.2f}"


def qat_vs_ptq(evals: Sequence[VariantEvaluation]) -> dict | None:
    """Whether QAT is at least as accurate as PTQ and, if not, what the numbers say about why."""
    by = {e.name: e for e in evals}
    if "int8_qat" not in by or "int8_ptq" not in by:
        return None
    q, p, f = by["int8_qat"], by["int8_ptq"], by["float32"]
    qf = by.get("float32_qat")
    qb, pb, fb = q.metrics.balanced_accuracy, p.metrics.balanced_accuracy, f.metrics.balanced_accuracy
    ok = qb >= pb
    out = {"qat_at_least_as_accurate": ok, "qat_balanced_accuracy": qb, "ptq_balanced_accuracy": pb,
           "float_balanced_accuracy": fb, "qat_auc": q.metrics.roc_auc, "ptq_auc": p.metrics.roc_auc}
    if qf is not None:
        out["qat_float_balanced_accuracy"] = qf.metrics.balanced_accuracy
    if ok:
        out["text"] = (f"QAT is at least as accurate as PTQ: balanced accuracy {qb:.4f} vs {pb:.4f} "
                       f"(float {fb:.4f}); AUC {q.metrics.roc_auc:.4f} vs {p.metrics.roc_auc:.4f}.")
        return out
    verdict = (f"QAT ties with PTQ within {TIE_TOLERANCE * 100:.1f} point but is not ahead" if pb - qb <= TIE_TOLERANCE
               else "QAT is less accurate than PTQ")
    parts = [f"{verdict}: balanced accuracy {qb:.5f} vs {pb:.5f} ({(qb - pb) * 100:+.3f} points; float {fb:.4f}), "
             f"AUC {q.metrics.roc_auc:.4f} vs {p.metrics.roc_auc:.4f}."]
    if qf is not None:
        drift = qf.metrics.balanced_accuracy - fb
        quant = q.metrics.balanced_accuracy - qf.metrics.balanced_accuracy
        parts.append(f"Fine-tuning changed the float model's balanced accuracy by {drift * 100:+.2f} points (float32 "
                     f"of the QAT weights {qf.metrics.balanced_accuracy:.4f}, AUC {qf.metrics.roc_auc:.4f}) and "
                     f"quantizing those weights changed it by {quant * 100:+.2f} points (AUC "
                     f"{q.metrics.roc_auc - qf.metrics.roc_auc:+.4f}; decisions agree with that float model on "
                     f"{q.vs_reference.at_reference_threshold:.2%} of patches at its threshold, largest probability "
                     f"difference {q.vs_reference.max_abs_diff:.3f}).")
    parts.append(f"PTQ changes balanced accuracy by {(pb - fb) * 100:+.2f} points and AUC by "
                 f"{p.metrics.roc_auc - f.metrics.roc_auc:+.4f}, and agrees with float on "
                 f"{p.vs_float.at_reference_threshold:.2%} of patches at the float threshold (largest probability "
                 f"difference {p.vs_float.max_abs_diff:.3f}): PTQ is already (nearly) lossless here, so there is "
                 "little quantization error for QAT to recover and what QAT adds is mostly the perturbation of a "
                 "further fine-tuning; differences of a few tenths of a point on these validation patients are "
                 "within their noise.")
    out["text"] = " ".join(parts)
    return out


def build(evals: Sequence[VariantEvaluation], selection: Selection, info: Mapping) -> dict:
    """The report as a JSON-ready dict."""
    by = {e.name: e for e in evals}
    f = by["float32"]
    variants = []
    for e in evals:
        d = e.to_dict()
        d["delta_vs_float"] = delta(e.metrics, f.metrics)
        d["delta_vs_reference"] = delta(e.metrics, by[e.reference].metrics)
        d["size_ratio_vs_float32"] = f.size_bytes / e.size_bytes
        variants.append(d)
    targets = {against: [t.__dict__ for t in check_targets(evals, selection.chosen, against)]
               for against in dict.fromkeys(("float32", selection.reference))}
    return {
        "info": dict(info),
        "threshold_policy": THRESHOLD_POLICY,
        "variants": variants,
        "selection": selection.__dict__,
        "targets": targets,
        "qat_vs_ptq": qat_vs_ptq(evals),
    }


def _fmt_lat(v: dict | None, key: str) -> str:
    return "–" if not v else f"{v[key]:.3f}"


def render_markdown(rep: Mapping, charts_made: Sequence[str] = ()) -> str:
    """Markdown of a report built by :func:`build`."""
    info = rep["info"]
    data = info.get("data", {})
    sel = rep["selection"]
    lines = ["# Quantization report", ""]
    lines += [f"- date: {info.get('date', '?')}; machine: {info.get('machine', '?')}",
              f"- source model: `{info.get('source_model', '?')}` (architecture `{info.get('architecture', '?')}`)"]
    if info.get("training_command"):
        lines.append(f"- training command: `{info['training_command']}`")
    if data:
        lines.append(f"- data: `{data.get('data_dir')}`, split: {data.get('split')}; {data.get('train_patients')} "
                     f"training / {data.get('val_patients')} validation patients; evaluated on "
                     f"{data.get('val_patches')} validation patches ({data.get('val_idc_patches')} IDC)")
    rp = info.get("representative")
    if rp:
        lines.append(f"- PTQ calibration: {rp['patches']} patches {rp['drawn_from']} (seed {rp['seed']}), "
                     f"plus {rp['range_anchor']}; input type {info.get('input_type')}")
    q = info.get("qat")
    if q:
        lines.append(f"- QAT: {q['scheme']} via tf_keras, {q['epochs']} epoch(s) on {q['train_patches']} "
                     f"training-patient patches, {q['optimizer']} lr {q['learning_rate']}, batch {q['batch_size']}, "
                     f"augment {', '.join(q['augment']) or 'none'}, class-balanced {q['balance_classes']}, "
                     f"batch norm {'frozen' if q.get('freeze_batchnorm') else 'trained'}, seed {q['seed']}"
                     + (f"; {info['qat_seconds']} s" if info.get("qat_seconds") else ""))
    if info.get("command"):
        lines.append(f"- command: `{info['command']}`")
    if "keras_vs_float32_tflite_max_abs_diff" in info:
        lines.append(f"- Keras vs float32 TFLite, largest probability difference on 64 patches: "
                     f"{info['keras_vs_float32_tflite_max_abs_diff']:.2e}")
    if "qat_keras_vs_int8_max_abs_diff" in info:
        lines.append(f"- QAT Keras model (fake quantization) vs its int8 TFLite, largest probability difference on "
                     f"64 patches: {info['qat_keras_vs_int8_max_abs_diff']:.4f}")
    lines += ["", "## Thresholds", "", rep["threshold_policy"], ""]

    lines += ["## Variants on the validation patients", "",
              "| variant | input | size KB | ×smaller | threshold | bal. acc. | Δ bal. acc. (pts) | bal. acc. at float thr. "
              "| ROC AUC | Δ AUC | recall no IDC | recall IDC | F1 IDC | Δ F1 | agree (shipped thr.) | agree (float thr.) "
              "| max |Δp| | ms/patch b1 | ms/patch b64 |",
              "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for v in rep["variants"]:
        m, d, a = v["metrics"], v["delta_vs_float"], v["vs_float"]
        lines.append(
            f"| {v['name']} | {v['input_dtype']} | {v['size_bytes'] / 1024:.0f} | {v['size_ratio_vs_float32']:.2f} | "
            f"{v['threshold']:.3f} | {m['balanced_accuracy']:.4f} | {_pp(d['balanced_accuracy'])} | "
            f"{v['balanced_accuracy_at_float_threshold']:.4f} | {m['roc_auc']:.4f} | {d['roc_auc']:+.4f} | {m['recall_0']:.4f} | {m['recall_1']:.4f} | "
            f"{m['f1_1']:.4f} | {_pp(d['f1_1'])} | {a['at_own_thresholds']:.2%} | {a['at_reference_threshold']:.2%} | "
            f"{a['max_abs_diff']:.4f} | {_fmt_lat(v['latency'], 'batch1_ms')} | {_fmt_lat(v['latency'], 'batch64_ms')} |")
    lines += ["", "Δ and agreement are against `float32` (the float32 TFLite of the trained model). Latency: median "
              "per patch through `PatchClassifier.predict` (LiteRT, XNNPACK, 1 thread), input handling included; "
              "the machine may be shared, so compare variants with each other rather than with other runs.", ""]
    refd = [v for v in rep["variants"] if v["reference"] != "float32"]
    if refd:
        lines += ["Against the float32 model of the same weights:", "",
                  "| variant | reference | Δ bal. acc. (pts) | Δ AUC | agree (shipped thr.) | agree (ref. thr.) | max |Δp| |",
                  "|---|---|--:|--:|--:|--:|--:|"]
        for v in refd:
            d, a = v["delta_vs_reference"], v["vs_reference"]
            lines.append(f"| {v['name']} | {v['reference']} | {_pp(d['balanced_accuracy'])} | {d['roc_auc']:+.4f} | "
                         f"{a['at_own_thresholds']:.2%} | {a['at_reference_threshold']:.2%} | {a['max_abs_diff']:.4f} |")
        lines.append("")
    lines += ["## Shipped default", "", f"**{sel['chosen']}**, with `{sel['reference']}` (same weights) as its float "
              f"model: {sel['reason']}.", ""]
    lines += ["## Quantization targets", ""]
    for against, checks in rep["targets"].items():
        lines += [f"Against `{against}`:", "", "| target | measured | limit | met |", "|---|--:|--:|---|"]
        for t in checks:
            val = f"{t['value']:.2%}" if "agreement" in t["name"] else f"{t['value']:.2f}"
            lim = f"{t['limit']:.0%}" if "agreement" in t["name"] else f"{t['limit']:g}"
            lines.append(f"| {t['name']} | {val} | {'≥' if 'drop' not in t['name'] else '≤'} {lim} | "
                         f"{'yes' if t['passed'] else '**no**'} |")
        lines.append("")
    if rep.get("qat_vs_ptq"):
        lines += ["## QAT vs PTQ", "", rep["qat_vs_ptq"]["text"], ""]
    if charts_made:
        lines += ["## Charts", ""] + [f"![{c}]({c})" for c in charts_made] + [""]
    return "\n".join(lines)


def write(out_dir: str | os.PathLike, evals: Sequence[VariantEvaluation], selection: Selection, info: Mapping,
          labels: np.ndarray, probs: Mapping[str, np.ndarray], with_charts: bool = True) -> dict[str, Path]:
    """Write ``report.json``, ``report.md`` and (unless disabled) ``roc.png``, ``confusion.png``,
    ``tradeoff.png`` into ``out_dir``; returns the paths by kind."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rep = build(evals, selection, info)
    paths: dict[str, Path] = {}
    made = []
    if with_charts:
        paths["roc"] = charts.roc_chart(out / "roc.png", labels, probs, evals)
        paths["confusion"] = charts.confusion_chart(out / "confusion.png", evals)
        paths["tradeoff"] = charts.tradeoff_chart(out / "tradeoff.png", evals)
        made = [p.name for p in paths.values()]
    paths["json"] = out / "report.json"
    paths["json"].write_text(dumps(rep, indent=2) + "\n", encoding="utf-8")
    paths["markdown"] = out / "report.md"
    paths["markdown"].write_text(render_markdown(json.loads(paths["json"].read_text()), made), encoding="utf-8")
    return paths
