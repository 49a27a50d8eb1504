"""Motion-aware reuse of patch scores: while the stage is still, unchanged patches skip the model.

A pathologist often holds the stage still to look at a field; the camera keeps sending the
same tissue 30 times a second. Each patch gets a small **signature**: the mean of each colour
channel over each ``cell_px × cell_px`` cell of the patch at the model's scale (10 × 10 cells of
5 px = 20 µm for a 50 px patch, × R, G, B). Averaging over cells cancels most camera noise but
keeps the tissue's structure, so a shift of one model pixel (4 µm) on textured tissue changes it
clearly; keeping the channels apart means a colour change that leaves brightness alone (a new
white balance, auto white balance wandering) changes it too, and the model, which reads colour,
classifies those patches again.

A patch keeps its score when it shows tissue now, had a score, and its signature differs from
the signature **of the frame that score was computed on** by at most ``max_mean_change`` grey
levels on average and ``max_cell_change`` in any one cell. Comparing with that reference (not
with the previous frame) means slow drift adds up and is caught; a moving stage changes almost
every patch, which is then classified afresh in the same frame. Everything here is numpy and
OpenCV on whole arrays; nothing is done per patch in Python.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

from . import validate
from .errors import OptionError
from .tiling import TileGrid


@dataclass(frozen=True)
class ReuseOptions:
    """When a patch counts as unchanged. Levels are on the 0–255 scale of each colour channel.

    Attributes:
        max_mean_change: largest mean absolute change of the cell means (over cells and channels).
        max_cell_change: largest absolute change of any one cell's mean in any channel: catches a
            small object entering part of an otherwise still patch.
        cell_px: cell side in model pixels (5 px = 20 µm at 4 µm/px).
    """

    max_mean_change: float = 2.0
    max_cell_change: float = 12.0
    cell_px: int = 5

    def __post_init__(self):
        for name in ("max_mean_change", "max_cell_change"):
            object.__setattr__(self, name, validate.number(name, getattr(self, name), 0.0, 255.0, "grey levels"))
        object.__setattr__(self, "cell_px", validate.whole_number("cell_px", self.cell_px, unit="model pixels"))


def patch_signatures(rgb: np.ndarray, grid: TileGrid, cell_px: int = 5) -> np.ndarray:
    """uint8 ``[rows, cols, S, S, 3]``: the mean of each channel over each cell of each grid patch.

    Args:
        rgb: the rescaled, padded **RGB** frame of ``grid.padded_shape`` (what the model sees);
            the channels keep their order (R, G, B).
        grid: the patch grid.
        cell_px: cell side in pixels; ``S = grid.patch // cell_px`` cells per side, centred in
            the patch when ``cell_px`` does not divide it.
    """
    if rgb.shape[:2] != grid.padded_shape:
        raise ValueError(f"image is {rgb.shape[:2]}, grid expects {grid.padded_shape}")
    cells = grid.patch // cell_px
    if cells < 1:
        raise OptionError(f"reuse cell of {cell_px} px is larger than the {grid.patch} px patch")
    # box mean with the anchor at the top-left cell pixel: means[y, x] = mean of rgb[y:y+c, x:x+c], per channel
    means = cv2.boxFilter(rgb, -1, (cell_px, cell_px), anchor=(0, 0), normalize=True,
                          borderType=cv2.BORDER_REPLICATE)
    # the top-left pixel of every cell of every patch, along each axis: [rows * S] and [cols * S]
    steps = (grid.patch - cells * cell_px) // 2 + cell_px * np.arange(cells)
    ys = (grid.ys[:, None] + steps[None, :]).ravel()
    xs = (grid.xs[:, None] + steps[None, :]).ravel()
    picked = means.take(ys, axis=0).take(xs, axis=1)  # [rows * S, cols * S, 3]
    r, c = grid.shape
    return np.ascontiguousarray(picked.reshape(r, cells, c, cells, 3).transpose(0, 2, 1, 3, 4))


def signature_change(now: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, max) absolute change per patch, float32 ``[rows, cols]`` each, of two signatures
    ``[rows, cols, ...]`` (over every cell and channel)."""
    rows, cols = now.shape[:2]
    diff = cv2.absdiff(now.reshape(rows * cols, -1), ref.reshape(rows * cols, -1)).reshape(rows, cols, -1)
    return diff.mean(axis=-1, dtype=np.float32), diff.max(axis=-1).astype(np.float32)


class ScoreCache:
    """The scores of one stream and the signatures they were computed on.

    Make one per stream (``Detector.stream`` does): it is the stream's memory, never shared, so
    two streams do not interfere. Not thread-safe.
    """

    def __init__(self, options: ReuseOptions = ReuseOptions()):
        self.options = options
        self._key: Optional[tuple] = None
        self._signatures: Optional[np.ndarray] = None   # [rows, cols, S, S, 3] at scoring time
        self._scores: Optional[np.ndarray] = None       # float32 [rows, cols], NaN = none yet

    def reset(self) -> None:
        """Forget every score (the next frame is classified in full)."""
        self._key = self._signatures = self._scores = None

    def reusable(self, grid: TileGrid, signatures: np.ndarray, tissue: np.ndarray) -> np.ndarray:
        """bool ``[rows, cols]``: tissue patches whose stored score still holds for this frame."""
        key = (grid.frame_shape, grid.padded_shape, len(grid.ys), len(grid.xs), grid.patch, grid.scale)
        if self._key != key or self._signatures is None or self._signatures.shape != signatures.shape:
            self.reset()
            self._key = key
            return np.zeros(tissue.shape, bool)
        mean, peak = signature_change(signatures, self._signatures)
        return (tissue & ~np.isnan(self._scores) & (mean <= self.options.max_mean_change)
                & (peak <= self.options.max_cell_change))

    def scores(self) -> np.ndarray:
        """float32 ``[rows, cols]`` stored scores (NaN where none); read-only view."""
        if self._scores is None:
            raise ValueError("no scores yet: call reusable() and update() first")
        view = self._scores.view()
        view.flags.writeable = False
        return view

    def update(self, signatures: np.ndarray, classified: np.ndarray, scores: np.ndarray) -> None:
        """Store fresh ``scores`` (float32 ``[K]``) of the ``classified`` patches (bool ``[rows, cols]``,
        K of them, row-major) with their signatures; other patches keep theirs."""
        if self._signatures is None or self._signatures.shape != signatures.shape:
            self._signatures = np.array(signatures, copy=True)
            self._scores = np.full(classified.shape, np.nan, np.float32)
        else:
            self._signatures[classified] = signatures[classified]
        self._scores[classified] = scores
