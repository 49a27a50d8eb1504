"""Field context of a converted model: its threshold, chosen on the validation patients.

The runtime decides each window of a frame with its neighbours' scores when the model's sidecar
has a ``context`` (:mod:`idc_edge.context`). The width and weight of the neighbourhood are fixed
here (one patch, 200 µm, and as much as the window itself: ``train/EXPERIMENTS.md`` section 6 has
the sweep that chose them); the combined score needs its own threshold, chosen like the model's
``threshold`` from its own outputs on the validation patients, every patient's patches placed on
their slide's grid. :func:`convert.pipeline.calibrate` does it for every variant it converts;

    python -m convert.context --model idc_edge/models/idc_int8.tflite --data ../shared/idc_patches

adds it to a model that was converted before (LiteRT only, no TensorFlow).
"""
from __future__ import annotations

import os
import sys
from dataclasses import replace
from typing import Sequence

import numpy as np

from idc_edge.classifier import PatchClassifier
from idc_edge.dataset import PatchRecord
from idc_edge.evaluate import Predictions, in_field_scores
from idc_edge.metrics import BinaryMetrics, best_threshold, binary_metrics
from idc_edge.spec import ContextSpec, read_spec, write_spec

#: σ of the neighbourhood, model pixels: one 50 px patch, 200 µm at the data set's 4 µm/px
CONTEXT_SIGMA_PX = 50.0
#: the neighbourhood counts as much as the window's own score
CONTEXT_WEIGHT = 1.0
CHOSEN_ON = ("validation patients, each patch with its neighbours on the patient's slide grid: best balanced "
             "accuracy of the combined scores")


def fit_context(records: Sequence[PatchRecord], scores: np.ndarray, patch_px: int, sigma_px: float = CONTEXT_SIGMA_PX,
                weight: float = CONTEXT_WEIGHT) -> tuple[ContextSpec, BinaryMetrics]:
    """The field context for a model whose scores of the labelled ``records`` are ``scores``, with
    the threshold of best balanced accuracy, and the metrics of the combined scores at it."""
    pred = Predictions(tuple(records), np.asarray(scores, np.float32), ())
    combined = in_field_scores(pred, ContextSpec(sigma_px, weight, 0.5), patch_px)
    labels = pred.labels
    threshold = best_threshold(labels, combined)
    return ContextSpec(sigma_px, weight, threshold), binary_metrics(labels, combined, threshold)


def with_context(model_path: str | os.PathLike, records: Sequence[PatchRecord], scores: np.ndarray) -> BinaryMetrics:
    """Fit the field context of ``model_path`` from its ``scores`` of ``records`` and write it, with
    its validation metrics, into the model's sidecar."""
    spec = read_spec(model_path)
    context, metrics = fit_context(records, scores, spec.patch_size_px)
    provenance = {**spec.provenance, "context_chosen_on": CHOSEN_ON,
                  "validation_metrics_in_field": metrics.to_dict()}
    write_spec(model_path, replace(spec, context=context, provenance=provenance))
    return metrics


def main(argv: list[str] | None = None) -> int:
    from idc_edge.cli.options import Parser
    from idc_edge.errors import IdcEdgeError

    from .data import load_validation_data

    ap = Parser(prog="python -m convert.context", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", nargs="+", required=True, help="converted .tflite model(s) with their sidecars")
    ap.add_argument("--data", default="../shared/idc_patches", help="the data set (its validation patients are used)")
    try:
        args = ap.parse_args(argv)
        val = load_validation_data(args.data).val
        for model in args.model:
            with PatchClassifier(model) as clf:
                alone = clf.predict(val.images)
                patch_threshold = clf.spec.threshold
            m = with_context(model, val.records, alone)
            a = binary_metrics(val.labels, alone, patch_threshold)
            print(f"{model}: alone AUC {a.roc_auc:.4f}, balanced accuracy {a.balanced_accuracy:.4f}; in the field "
                  f"AUC {m.roc_auc:.4f}, balanced accuracy {m.balanced_accuracy:.4f} (recall {m.recall_0:.3f} / "
                  f"{m.recall_1:.3f}) at threshold {m.threshold:.3f}")
    except IdcEdgeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
