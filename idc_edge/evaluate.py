"""Accuracy of a model on labelled patches in the data set's layout (bounded memory)."""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, replace
from typing import Callable, Optional, Sequence, Union

import numpy as np

from . import validate
from .classifier import PatchClassifier
from .budget import check_buffer
from .context import field_context, neighbour_kernel
from .dataset import Misnamed, PatchRecord, load_patches, scan_files
from .errors import DatasetError, OptionError
from .fileio import name
from .metrics import BinaryMetrics, binary_metrics, per_group_metrics
from .patchnotes import PatchNotes
from .spec import ContextSpec


#: what ``evaluate`` says after a too-small example: every patch is scored, padded as the data set's edge patches are
EVALUATE_SCALE_HINT = "evaluate scores it padded with white, as the data set's edge patches are, and counts it"


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
                    progress: Optional[Callable[[int, int], None]] = None,
                    notes: Optional[PatchNotes] = None) -> Predictions:
    """Read and score patches ``chunk`` at a time; unreadable files are skipped and listed.

    ``notes``, when given, collects the patches whose score means little (no colour, under a
    quarter of a patch), as ``classify`` does for the same images.
    """
    kept: list[PatchRecord] = []
    skipped: list[str] = []
    scores = []
    for start in range(0, len(records), chunk):
        loaded = load_patches(records[start:start + chunk], classifier.spec.patch_size_px)
        kept.extend(loaded.records)
        skipped.extend(loaded.skipped)
        if notes is not None:
            for rec, rgb, (w, h) in zip(loaded.records, loaded.images, loaded.sizes):
                notes.note_size(rec.path, w, h)
                notes.note_colour(rec.path, rgb)
        scores.append(classifier.predict(loaded.images))
        if progress:
            progress(min(start + chunk, len(records)), len(records))
    return Predictions(tuple(kept), np.concatenate(scores) if scores else np.empty(0, np.float32), tuple(skipped))


@dataclass(frozen=True)
class Evaluation:
    """Metrics over all patches, and per patient, at ``metrics.threshold``.

    ``skipped`` lists patch files that could not be read, ``misnamed`` files in the class folders
    that are not patches of the layout (:class:`~idc_edge.dataset.Misnamed`); neither is counted.
    ``in_field`` is the same patches decided with their neighbours' scores, as the detector decides
    windows in a frame (:func:`in_field_scores`), when the model has a field context. ``colourless``
    and ``tiny`` list the patches scored and counted whose score means little (no colour; under a
    quarter of a patch), each also said in one warning as ``classify`` says it.
    """

    metrics: BinaryMetrics
    per_patient: dict[str, BinaryMetrics]
    n_patients: int
    skipped: tuple[str, ...]
    misnamed: tuple[Misnamed, ...] = ()
    in_field: Optional["Evaluation"] = None
    colourless: tuple[str, ...] = ()
    tiny: tuple[str, ...] = ()

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
            **({"in_field": self.in_field.summary()} if self.in_field is not None else {}),
        }


def evaluate_predictions(pred: Predictions, threshold: float) -> Evaluation:
    """:class:`Evaluation` of already computed scores."""
    if not pred.records:
        raise DatasetError("no readable patch to evaluate" + (
            f": all {len(pred.skipped)} are corrupt, not images or larger than a patch, e.g. {name(pred.skipped[0])}"
            if pred.skipped else ""))
    y, s, g = pred.labels, pred.scores, pred.patients
    return Evaluation(binary_metrics(y, s, threshold), per_group_metrics(g, y, s, threshold),
                      len(set(g.tolist())), pred.skipped)


def near_groups(rows: np.ndarray, cols: np.ndarray, reach: int) -> list[np.ndarray]:
    """Indices of ``rows``/``cols`` (grid cells) split into groups no closer than ``reach + 1`` cells
    to one another along rows or columns: cells of two groups never meet in a neighbourhood of
    ``reach`` cells, so each group's field context can be read on its own grid. Pure; groups are cut
    where the sorted rows (or columns) of a group jump by more than ``reach`` (an X-Y cut)."""
    done, todo = [], [np.arange(len(rows))]
    while todo:
        idx = todo.pop()
        for values in (rows[idx], cols[idx]):
            order = np.argsort(values, kind="stable")
            cuts = np.flatnonzero(np.diff(values[order]) > reach) + 1
            if len(cuts):
                todo.extend(idx[order][part] for part in np.split(np.arange(len(idx)), cuts))
                break
        else:
            done.append(idx)
    return done


#: what to change when one patient's field does not fit the memory budget
_FIELD_FIX = ("a patch file name probably has a mistyped x/y coordinate: rename it, leave that patient out, or "
              "evaluate without the field context")


def in_field_scores(pred: Predictions, context: ContextSpec, patch_px: int) -> np.ndarray:
    """Each patch's score read with its neighbours' scores (:func:`~idc_edge.context.field_context`),
    as the detector reads windows in a frame: every patient's patches are placed on their slide's
    patch grid (``x // patch_px``, ``y // patch_px``), ``patch_px`` model pixels apart. Patches not
    in ``pred`` (background, or a patient sampled rather than complete) give no context; two
    patches of one patient at the same position share their cell (its mean score). Patches further
    apart than the context reaches are read on grids of their own (:func:`near_groups`), so one
    mistyped coordinate (``x999999950``) does not ask for a grid the size of a billion-pixel slide.

    Returns float32 scores aligned with ``pred.records``.

    Raises:
        MemoryBudgetError: a group of patches close to one another spans a grid over the memory budget.
    """
    out = np.empty(len(pred.records), np.float32)
    patients = pred.patients
    reach = neighbour_kernel(int(patch_px), float(context.sigma_px)).shape[0] // 2
    cols_all = np.array([r.x // patch_px for r in pred.records], np.int64)
    rows_all = np.array([r.y // patch_px for r in pred.records], np.int64)
    for patient in np.unique(patients):
        pidx = np.flatnonzero(patients == patient)
        for idx in (pidx[g] for g in near_groups(rows_all[pidx], cols_all[pidx], reach)):
            rows, cols = rows_all[idx] - rows_all[idx].min(), cols_all[idx] - cols_all[idx].min()
            shape = (int(rows.max()) + 1, int(cols.max()) + 1)
            check_buffer((*shape, 2), 8, f"the field of patient {patient} ({shape[1]}×{shape[0]} patches, up to "
                         f"{os.path.basename(pred.records[idx[np.argmax(rows + cols)]].path)[:80]})", _FIELD_FIX)
            total = np.zeros(shape, np.float64)
            count = np.zeros(shape, np.int64)
            np.add.at(total, (rows, cols), pred.scores[idx])
            np.add.at(count, (rows, cols), 1)
            grid = np.full(shape, np.nan, np.float32)
            grid[count > 0] = total[count > 0] / count[count > 0]
            out[idx] = field_context(grid, patch_px, context.sigma_px, context.weight)[rows, cols]
    return out


def evaluate_folder(classifier: PatchClassifier, data_dir: Union[str, os.PathLike], threshold: Optional[float] = None,
                    patients: Optional[Sequence[str]] = None,
                    progress: Optional[Callable[[int, int], None]] = None, context: bool = True) -> Evaluation:
    """Evaluate ``classifier`` on every patch under ``data_dir`` (or only ``patients``).

    Every patch is scored alone; when the model's sidecar has a field context (and ``context`` is
    True) the evaluation's ``in_field`` also decides them with their neighbours, at the context's
    threshold. ``threshold``, when given, is used for both. Metrics that need a class the folder
    lacks (for example IDC recall on a patient without IDC) are NaN.

    Raises:
        DatasetError: the folder is not in the data set's layout.
        OptionError: ``threshold`` is not a probability, ``progress`` not a function or ``context``
            not a flag.
    """
    if threshold is not None:
        threshold = validate.probability("threshold", threshold)
    if progress is not None and not callable(progress):  # else a TypeError from deep inside, after the scan
        raise OptionError(f"progress must be a function called with (patches done, patches in all), "
                          f"got {type(progress).__name__}", option="progress")
    context = validate.flag("context", context)
    scan = scan_files(data_dir, patients)  # misnamed files are skipped and listed, not the end of it
    notes = PatchNotes(classifier.spec.patch_size_px)
    pred = predict_records(classifier, scan.records, progress=progress, notes=notes)
    for text in notes.messages("patch(es)", masked=False, scale_hint=EVALUATE_SCALE_HINT):
        warnings.warn(text, stacklevel=2)
    spec = classifier.spec
    ev = evaluate_predictions(pred, spec.threshold if threshold is None else threshold)
    in_field = None
    if context and spec.context is not None and pred.records:
        field_pred = replace(pred, scores=in_field_scores(pred, spec.context, spec.patch_size_px))
        in_field = evaluate_predictions(field_pred, spec.context.threshold if threshold is None else threshold)
    return replace(ev, misnamed=scan.misnamed, in_field=in_field, colourless=tuple(map(str, notes.colourless)),
                   tiny=tuple(str(t[0]) for t in notes.tiny))
