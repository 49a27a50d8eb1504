"""Training windows cut at random offsets from the slides that a patient's patches tile.

A patient's patches sit on a 50-px grid of their slide (4 µm/px). A window at any offset covers
parts of up to four grid cells; its pixels are read from those cells' files (missing cells are
white: background or tissue outside the data set) and its label comes from the cells under it:

- the *labelled area* is the part of the window covered by cells that exist in the data set;
  a window needs at least ``min_labelled`` of its area labelled (else its label is unknown);
- the *IDC fraction* is the IDC cells' share of the labelled area; the window is IDC when it
  is >= ``idc_at_least``, no IDC when it is <= ``benign_at_most``, and dropped in between
  (ambiguous: a boundary between IDC and benign tissue runs through it).

So the model learns scores that do not depend on where the patch grid fell, which is what a
dense pass over a camera frame asks of it. Pure numpy: no pixels are read here, only which
files and offsets make up each window (:class:`Sample`).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from idc_edge.dataset import PATCH_SIZE_PX, PatchRecord

NO_CELL = -1


@dataclass(frozen=True)
class WindowRule:
    """How a window at a random offset gets its label (fractions of the window's area)."""

    min_labelled: float = 0.75
    benign_at_most: float = 0.25
    idc_at_least: float = 0.75

    def __post_init__(self):
        if not (0 < self.min_labelled <= 1 and 0 <= self.benign_at_most < self.idc_at_least <= 1):
            raise ValueError(f"bad window rule {self}: need 0 < min_labelled <= 1 and "
                             "0 <= benign_at_most < idc_at_least <= 1")

    def label(self, labelled_area: float, idc_area: float, window_area: float) -> int | None:
        """1, 0, or None (dropped), for areas in pixels."""
        if labelled_area < self.min_labelled * window_area:
            return None
        f = idc_area / labelled_area
        if f >= self.idc_at_least:
            return 1
        if f <= self.benign_at_most:
            return 0
        return None


@dataclass(frozen=True)
class Samples:
    """Training samples as arrays: each is a 50×50 crop at (``dy``, ``dx``) of the 100×100
    canvas of four cells ``cells[i] = (top-left, top-right, bottom-left, bottom-right)``, given as
    indices into the records (``NO_CELL`` = white). A plain patch is its own top-left cell at
    offset (0, 0)."""

    cells: np.ndarray  # int64 [N, 4]
    dy: np.ndarray  # int32 [N]
    dx: np.ndarray  # int32 [N]
    labels: np.ndarray  # int32 [N]
    patients: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def concat(self, other: "Samples") -> "Samples":
        return Samples(np.concatenate([self.cells, other.cells]), np.concatenate([self.dy, other.dy]),
                       np.concatenate([self.dx, other.dx]), np.concatenate([self.labels, other.labels]),
                       self.patients + other.patients)


def patch_samples(records: Sequence[PatchRecord]) -> Samples:
    """Every record as itself: a sample at offset (0, 0) of its own cell."""
    n = len(records)
    cells = np.full((n, 4), NO_CELL, np.int64)
    cells[:, 0] = np.arange(n)
    return Samples(cells, np.zeros(n, np.int32), np.zeros(n, np.int32),
                   np.array([r.label for r in records], np.int32), tuple(r.patient for r in records))


def random_windows(records: Sequence[PatchRecord], per_patch: float, rng: np.random.Generator,
                   rule: WindowRule = WindowRule(), patch: int = PATCH_SIZE_PX) -> Samples:
    """About ``per_patch`` × len(records) windows at uniform random offsets on each patient's slide,
    labelled by ``rule`` (the dropped ones are not replaced, so fewer may come back).

    Windows are placed so that their top-left cell exists (a window never lies mostly outside the
    patient's patches) and never land exactly on the grid (those are the plain patches).
    """
    by_patient: dict[str, dict[tuple[int, int], int]] = defaultdict(dict)
    for i, r in enumerate(records):
        by_patient[r.patient][(r.x // patch, r.y // patch)] = i
    labels_of = np.array([r.label for r in records], np.int32)
    area = float(patch * patch)
    out_cells, out_dy, out_dx, out_lab, out_pat = [], [], [], [], []
    for patient in sorted(by_patient):
        grid = by_patient[patient]
        keys = list(grid)
        n = int(rng.binomial(len(keys), min(per_patch, 1.0))) + int(max(per_patch - 1.0, 0.0) * len(keys))
        if n == 0:
            continue
        anchor = rng.integers(0, len(keys), n)
        offs = rng.integers(1, patch, (n, 2))  # 1..49 px right/down of the anchor cell's corner
        for a, (dy, dx) in zip(anchor, offs):
            cx, cy = keys[a]
            quad = (grid.get((cx, cy), NO_CELL), grid.get((cx + 1, cy), NO_CELL),
                    grid.get((cx, cy + 1), NO_CELL), grid.get((cx + 1, cy + 1), NO_CELL))
            h0, h1 = patch - dy, dy  # rows of the window in the top / bottom cells
            w0, w1 = patch - dx, dx
            overlap = (h0 * w0, h0 * w1, h1 * w0, h1 * w1)
            labelled = sum(o for c, o in zip(quad, overlap) if c != NO_CELL)
            idc = sum(o for c, o in zip(quad, overlap) if c != NO_CELL and labels_of[c] == 1)
            label = rule.label(labelled, idc, area)
            if label is None:
                continue
            out_cells.append(quad)
            out_dy.append(dy)
            out_dx.append(dx)
            out_lab.append(label)
            out_pat.append(patient)
    return Samples(np.array(out_cells, np.int64).reshape(-1, 4), np.array(out_dy, np.int32),
                   np.array(out_dx, np.int32), np.array(out_lab, np.int32), tuple(out_pat))


def assemble(cells: Sequence[np.ndarray | None], dy: int, dx: int, patch: int = PATCH_SIZE_PX) -> np.ndarray:
    """The window at (``dy``, ``dx``) of the 2×2 canvas of ``cells`` (RGB uint8 [patch, patch, 3]
    each, None = white), as RGB uint8 ``[patch, patch, 3]``."""
    if dy == 0 and dx == 0 and cells[0] is not None:
        return cells[0]
    canvas = np.full((2 * patch, 2 * patch, 3), 255, np.uint8)
    for k, img in enumerate(cells):
        if img is not None:
            r, c = divmod(k, 2)
            canvas[r * patch:(r + 1) * patch, c * patch:(c + 1) * patch] = img
    return canvas[dy:dy + patch, dx:dx + patch].copy()
