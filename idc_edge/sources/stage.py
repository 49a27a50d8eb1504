"""The data set as a moving stage: a patient's patches rebuilt into a slide and swept by a window."""
from __future__ import annotations

import logging
import os
from typing import Iterator, Optional, Sequence, Union

import cv2
import numpy as np

from ..dataset import (PATCH_SIZE_PX, UM_PER_PX, PatchRecord, check_patch_size, patient_ids, scan_files,
                       warn_misnamed)
from ..budget import check_buffer
from .. import validate
from ..errors import DatasetError, MemoryBudgetError, SourceError
from ..fileio import read_image
from .base import Frame, FrameSource

log = logging.getLogger(__name__)


def build_mosaic(records: Sequence[PatchRecord], patch: int = PATCH_SIZE_PX) -> tuple[np.ndarray, np.ndarray, int]:
    """Rebuild one patient's slide from its patches.

    Returns:
        (BGR uint8 mosaic with white where no patch is, int8 label grid per ``patch`` cell with -1
        where no patch is, number of unreadable patches skipped). The mosaic's origin is the
        smallest x/y of the patches; one pixel ≈ 4 µm as in the data set.
    """
    xs = np.array([r.x for r in records])
    ys = np.array([r.y for r in records])
    x0, y0 = xs.min(), ys.min()
    rows, cols = mosaic_cells(records, patch)
    check_buffer((rows * patch, cols * patch, 3), 1, _mosaic_what(records, rows, cols, patch), _MOSAIC_FIX)
    mosaic = np.full((rows * patch, cols * patch, 3), 255, np.uint8)
    labels = np.full((rows, cols), -1, np.int8)
    bad = 0
    for r in records:
        try:
            img = check_patch_size(read_image(r.path, "patch image", flags=cv2.IMREAD_COLOR), patch, r.path)
        except (SourceError, MemoryBudgetError) as e:
            bad += 1
            log.warning("%s; skipped, its cell stays blank", e)
            continue
        top, left = r.y - y0, r.x - x0
        h, w = min(img.shape[0], patch), min(img.shape[1], patch)
        mosaic[top:top + h, left:left + w] = img[:h, :w]
        labels[(r.y - y0) // patch, (r.x - x0) // patch] = r.label
    return mosaic, labels, bad


_MOSAIC_FIX = "a patch file name probably has a mistyped x/y coordinate: rename it or leave that patient out"


def far_patches(records: Sequence[PatchRecord], patch: int = PATCH_SIZE_PX,
                max_share: float = 0.05) -> list[PatchRecord]:
    """Patches cut off from the rest of their slide by an empty band wider than the rest itself and
    than 20 patches, along x or y: a mistyped coordinate (``x99999999``), not tissue.

    Only a minority can be far (the smaller side of the band, at most ``max_share`` of the patches,
    at least one); when the two sides are as large, or too many would go, none is (two real pieces
    of tissue, or coordinates that are all off). Pure; the patches kept are the rest.
    """
    rest, far = list(records), []
    limit = max(1, int(max_share * len(rest)))
    changed = True
    while changed and len(rest) > 1:
        changed = False
        for axis in ("x", "y"):
            values = sorted({getattr(r, axis) for r in rest})
            if len(values) < 2:
                continue
            gaps = np.diff(values)
            k = int(np.argmax(gaps))
            low = [r for r in rest if getattr(r, axis) <= values[k]]
            high = [r for r in rest if getattr(r, axis) > values[k]]
            small, big = (low, high) if len(low) < len(high) else (high, low)
            span = max(getattr(r, axis) for r in big) - min(getattr(r, axis) for r in big) + patch
            if len(small) < len(big) and gaps[k] > max(20 * patch, span) and len(far) + len(small) <= limit:
                far += small
                rest = big
                changed = True
    return far


def mosaic_cells(records: Sequence[PatchRecord], patch: int = PATCH_SIZE_PX) -> tuple[int, int]:
    """(rows, columns) of ``patch``-sized cells the patches of one patient span (no allocation)."""
    xs = [r.x for r in records]
    ys = [r.y for r in records]
    return (max(ys) - min(ys)) // patch + 1, (max(xs) - min(xs)) // patch + 1


def _mosaic_what(records: Sequence[PatchRecord], rows: int, cols: int, patch: int) -> str:
    far = max(records, key=lambda r: max(r.x, r.y))
    return (f"the slide of patient {records[0].patient} ({cols * patch}×{rows * patch} px, up to "
            f"{os.path.basename(far.path)[:80]})")


def sweep_positions(mosaic_hw: tuple[int, int], window_hw: tuple[int, int], step_px: int) -> list[tuple[int, int]]:
    """Top-left (y, x) of a serpentine sweep of a window over a mosaic, like a moving stage.

    Rows are ``window height / 2`` apart; the window moves ``step_px`` along each row and
    reverses direction on the next one. Every position lies inside the mosaic (or at 0 when
    the mosaic is smaller than the window).
    """
    (mh, mw), (wh, ww) = mosaic_hw, window_hw
    def ticks(length, win, step):
        if length <= win:
            return [0]
        t = list(range(0, length - win + 1, step))
        return t if t[-1] == length - win else t + [length - win]
    out = []
    for i, y in enumerate(ticks(mh, wh, max(1, wh // 2))):
        xs = ticks(mw, ww, step_px)
        out.extend((y, x) for x in (xs if i % 2 == 0 else xs[::-1]))
    return out


class MosaicSource(FrameSource):
    """Patients of the data set rebuilt as slides and swept by a camera-sized window.

    Lets anyone with the public data set watch the whole pipeline without a microscope: each
    patient's patches are put back at their slide coordinates (white where none is) and a
    ``width × height`` window moves across in a serpentine, ``step`` frame pixels per frame.

    Args:
        folder: the data set's root (every patient in turn, or ``patients``) or one patient's folder.
        patients: patient ids to show, in this order.
        width, height: frame size in pixels.
        um_per_px: microns per pixel of the emitted frames; 4.0 shows the slide at the data set's
            own scale, smaller values magnify (as a higher objective would).
        step: pixels the window moves per frame, in frame pixels (default: width / 8).
    """

    skipped_what = "unreadable patch image(s)"

    def __init__(self, folder: Union[str, os.PathLike], patients: Optional[Sequence[str]] = None,
                 width: int = 640, height: int = 480, um_per_px: float = UM_PER_PX, step: Optional[int] = None):
        super().__init__(f"data set {str(folder)!r}")
        width = validate.whole_number("width", width, unit="pixels")
        height = validate.whole_number("height", height, unit="pixels")
        um_per_px = validate.um_per_px("um_per_px", um_per_px)
        patients = patient_ids(patients)  # [8867] was no "8867": "sequence item 0: expected str instance, int found"
        try:
            scan = scan_files(folder, patients)
        except DatasetError as e:
            raise SourceError(str(e)) from None
        records = scan.records
        warn_misnamed(scan.misnamed)  # skipped and counted like unreadable patches, never the end of the run
        self.skipped += len(scan.misnamed)
        if scan.misnamed:
            self.skipped_what = "unreadable or misnamed patch file(s)"
        by_patient: dict[str, list[PatchRecord]] = {}
        for r in records:
            by_patient.setdefault(r.patient, []).append(r)
        order = list(patients) if patients else sorted(by_patient)
        missing = [p for p in order if p not in by_patient]
        if missing:
            raise SourceError(f"patient(s) {', '.join(missing)} not found in {str(folder)!r}")
        self.patients = {p: by_patient[p] for p in order}
        self.window = (int(height), int(width))
        self.zoom = UM_PER_PX / float(um_per_px)  # frame pixels per mosaic pixel
        # every buffer the sweep will need, checked now rather than after the run has started
        check_buffer((height / self.zoom, width / self.zoom, 3), 1,
                     f"a {width}×{height} px window at {um_per_px:g} µm/px over the data set's {UM_PER_PX:g} µm/px slide",
                     "check um_per_px (microns per pixel of the frames)")
        for patient, recs in self.patients.items():
            self.patients[patient] = self._without_far_patches(patient, recs)
        self.um_per_px = float(um_per_px)
        self.step = int(step or max(1, width // 8))

    def _without_far_patches(self, patient: str, records: list[PatchRecord]) -> list[PatchRecord]:
        """``records`` whose slide fits the memory budget: when it does not, the patches a mistyped
        coordinate put far from the rest (:func:`far_patches`) are skipped, each named in a warning
        and counted like a misnamed file; when that is not enough, the budget error names the file.

        Raises:
            MemoryBudgetError: the slide is over the budget even without far patches.
        """
        def check(recs):
            rows, cols = mosaic_cells(recs)
            check_buffer((rows * PATCH_SIZE_PX, cols * PATCH_SIZE_PX, 3), 1,
                         _mosaic_what(recs, rows, cols, PATCH_SIZE_PX), _MOSAIC_FIX)

        try:
            check(records)
            return records
        except MemoryBudgetError:
            far = far_patches(records)
            if not far:
                raise
        skip = {id(r) for r in far}
        kept = [r for r in records if id(r) not in skip]
        check(kept)
        for r in far:
            log.warning("%s lies far from the rest of patient %s's slide (x %d, y %d: a mistyped coordinate?); "
                        "skipped", os.path.basename(r.path)[:120], patient, r.x, r.y)
        self.skipped += len(far)
        self.skipped_what = "unreadable or misnamed patch file(s)"
        return kept

    def _iter_frames(self) -> Iterator[Frame]:
        index = 0
        wh, ww = self.window
        # window size in mosaic pixels
        mh_win, mw_win = max(1, int(round(wh / self.zoom))), max(1, int(round(ww / self.zoom)))
        step = max(1, int(round(self.step / self.zoom)))
        for patient, records in self.patients.items():
            mosaic, _, bad = build_mosaic(records)
            self.skipped += bad
            canvas = mosaic
            if canvas.shape[0] < mh_win or canvas.shape[1] < mw_win:
                canvas = np.full((max(canvas.shape[0], mh_win), max(canvas.shape[1], mw_win), 3), 255, np.uint8)
                canvas[: mosaic.shape[0], : mosaic.shape[1]] = mosaic
            for y, x in sweep_positions(canvas.shape[:2], (mh_win, mw_win), step):
                crop = canvas[y:y + mh_win, x:x + mw_win]
                if crop.shape[:2] != (wh, ww):
                    crop = cv2.resize(crop, (ww, wh), interpolation=cv2.INTER_LINEAR if self.zoom > 1 else cv2.INTER_AREA)
                else:
                    crop = crop.copy()
                yield Frame(index, index / 30.0, crop)
                index += 1
