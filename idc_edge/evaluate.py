"""Accuracy of a model on labelled patches in the data set's layout (bounded memory)."""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Callable, Optional, Sequence, Union

import numpy as np

from . import validate
from .classifier import PatchClassifier
from .dataset import Misnamed, PatchRecord, load_patches, scan_files
from .errors import DatasetError
from .metrics import BinaryMetrics, binary_metrics, per_group_metrics


@dataclass(frozen=True)
class Predictions:
    """Scores of labelled patches: ``scores`` float32 probability of IDC, aligned with ``records``."""

    records: tuple[PatchRecord, ...]
    scores: np.ndarray
    skipped: tuple[str, ...]

    @property
    def labels(self) -> np.ndarray:
        return np.array([r.label for r in self.records], np.int64)

    @property
    def patients(self) -> np.ndarray:
        return np.array([r.patient for r in self.records])


def predict_records(classifier: PatchClassifier, records: Sequence[PatchRecord], chunk: int = 2048,
                    progress: Optional[Callable[[int, int], None]] = None) -> Predictions:
    """Read and score patches ``chunk`` at a time; unreadable files are skipped and listed."""
    kept: list[PatchRecord] = []
    skipped: list[str] = []
    scores = []
    for start in range(0, len(records), chunk):
        loaded = load_patches(records[start:start + chunk], classifier.spec.patch_size_px)
        kept.extend(loaded.records)
        skipped.extend(loaded.skipped)
        scores.append(classifier.predict(loaded.images))
        if progress:
            progress(min(start + chunk, len(records)), len(records))
    return Predictions(tuple(kept), np.concatenate(scores) if scores else np.empty(0, np.float32), tuple(skipped))


@dataclass(frozen=True)
class Evaluation:
    """Metrics over all patches, and per patient, at ``metrics.threshold``.

    ``skipped`` lists patch files that could not be read, ``misnamed`` files in the class folders
    that are not patches of the layout (:class:`~idc_edge.dataset.Misnamed`); neither is counted.
    """

    metrics: BinaryMetrics
    per_patient: dict[str, BinaryMetrics]
    n_patients: int
    skipped: tuple[str, ...]
    misnamed: tuple[Misnamed, ...] = ()

    def summary(self) -> dict:
        """The flat JSON summary printed by ``idc-edge evaluate --json``."""
        m = self.metrics
        return {
            "accuracy": m.accuracy, "balanced_accuracy": m.balanced_accuracy, "recall_0": m.recall_0,
            "recall_1": m.recall_1, "precision_1": m.precision_1, "f1_1": m.f1_1, "roc_auc": m.roc_auc,
            "n_patches": m.n_patches, "n_patients": self.n_patients, "threshold": m.threshold,
            "confusion": [list(r) for r in m.confusion], "skipped_files": len(self.skipped),
            "misnamed_files": len(self.misnamed),
            "per_patient": {p: {"n_patches": pm.n_patches, "accuracy": pm.accuracy,
                                "balanced_accuracy": pm.balanced_accuracy, "recall_0": pm.recall_0,
                                "recall_1": pm.recall_1} for p, pm in self.per_patient.items()},
        }


def evaluate_predictions(pred: Predictions, threshold: float) -> Evaluation:
    """:class:`Evaluation` of already computed scores."""
    if not pred.records:
        raise DatasetError("no readable patch to evaluate")
    y, s, g = pred.labels, pred.scores, pred.patients
    return Evaluation(binary_metrics(y, s, threshold), per_group_metrics(g, y, s, threshold),
                      len(set(g.tolist())), pred.skipped)


def evaluate_folder(classifier: PatchClassifier, data_dir: Union[str, os.PathLike], threshold: Optional[float] = None,
                    patients: Optional[Sequence[str]] = None,
                    progress: Optional[Callable[[int, int], None]] = None) -> Evaluation:
    """Evaluate ``classifier`` on every patch under ``data_dir`` (or only ``patients``).

    Metrics that need a class the folder lacks (for example IDC recall on a patient without
    IDC) are NaN.

    Raises:
        DatasetError: the folder is not in the data set's layout.
        OptionError: ``threshold`` is not a probability.
    """
    if threshold is not None:
        threshold = validate.probability("threshold", threshold)
    scan = scan_files(data_dir, patients)  # misnamed files are skipped and listed, not the end of it
    pred = predict_records(classifier, scan.records, progress=progress)
    ev = evaluate_predictions(pred, classifier.spec.threshold if threshold is None else threshold)
    return replace(ev, misnamed=scan.misnamed)
