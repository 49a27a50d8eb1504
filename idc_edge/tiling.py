"""Covering a frame with model-sized patches (pure numpy; no model needed).

Coordinates are in pixels. A frame taken at ``frame_um_per_px`` is first rescaled by
``frame_um_per_px / model_um_per_px`` so one pixel covers the same tissue as in training; the
rescaled frame is then covered by ``patch × patch`` windows at ``stride``. The last row and
column are shifted back to end at the frame's edge, so every pixel is covered. Frames smaller
than one patch after rescaling are padded (white, i.e. background) to one patch.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import OptionError


def positions(length: int, patch: int, stride: int) -> np.ndarray:
    """Start offsets of windows covering ``[0, length)``; the last one ends at ``length``.

    ``length < patch`` gives one window at 0 (the caller pads). Offsets are increasing and unique.
    """
    if length <= patch:
        return np.zeros(1, np.int64)
    starts = np.arange(0, length - patch + 1, stride, dtype=np.int64)
    if starts[-1] != length - patch:
        starts = np.append(starts, length - patch)
    return starts


def shares(starts: np.ndarray, patch: int, length: int) -> np.ndarray:
    """The length of ``[0, length)`` each window (``patch`` wide, at ``starts``) stands for along one
    axis: the part nearer its centre than any other window's. They add up to ``length`` however the
    windows overlap (the last one, moved back to end on the edge, overlaps the one before; a stride
    wider than the patch leaves gaps between them; one window on a short axis stands for all of it).
    """
    centres = starts.astype(np.float64) + patch / 2.0
    bounds = np.concatenate(([0.0], (centres[:-1] + centres[1:]) / 2.0, [float(length)]))
    return np.clip(np.diff(bounds), 0.0, None)


def rescaled_size(width: int, height: int, scale: float) -> tuple[int, int]:
    """(width, height) in pixels after scaling by ``scale``, at least 1 each."""
    return max(1, int(round(width * scale))), max(1, int(round(height * scale)))


def tiny_note(width: int, height: int, patch: int) -> str:
    """What to say of an image of ``width`` × ``height`` model pixels that covers less than a quarter
    of one ``patch`` px patch (its one padded patch is mostly padding, so "no tissue" or a score
    means little); "" when it is larger."""
    if width * height * 4 >= patch * patch:
        return ""
    return f"less than a quarter of one {patch} px patch: its result means little"


@dataclass(frozen=True)
class TileGrid:
    """Where the patches of one frame lie.

    Attributes:
        ys, xs: patch top-left offsets in the rescaled (model-scale) frame, pixels.
        patch: patch side in model pixels.
        scale: rescaled pixels per frame pixel (``frame_um_per_px / model_um_per_px``).
        frame_shape: (height, width) of the original frame in pixels.
        padded_shape: (height, width) of the rescaled frame after padding to >= one patch.
        rescaled_shape: (height, width) of the rescaled frame before padding; rounding makes
            its ratio to ``frame_shape`` differ slightly from ``scale``, and boxes use that exact
            ratio per axis so the last row and column end on the frame's edge.
    """

    ys: np.ndarray
    xs: np.ndarray
    patch: int
    scale: float
    frame_shape: tuple[int, int]
    padded_shape: tuple[int, int]
    rescaled_shape: tuple[int, int]

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns) of the patch grid."""
        return len(self.ys), len(self.xs)

    @property
    def size(self) -> int:
        return len(self.ys) * len(self.xs)

    def frame_shares(self) -> np.ndarray:
        """float64 ``[rows, cols]``: the share of the frame each window stands for (see :func:`shares`),
        adding up to 1; times the frame's area it is each window's area."""
        sh, sw = self.rescaled_shape
        return np.outer(shares(self.ys, self.patch, sh) / sh, shares(self.xs, self.patch, sw) / sw)

    def boxes(self) -> np.ndarray:
        """int32 ``[rows, cols, 4]`` boxes (x0, y0, x1, y1) in original-frame pixels, x1/y1 exclusive,
        clipped to the frame."""
        h, w = self.frame_shape
        sy, sx = self.rescaled_shape[0] / h, self.rescaled_shape[1] / w
        x0 = np.floor(self.xs / sx + 1e-9)
        x1 = np.ceil((self.xs + self.patch) / sx - 1e-9)
        y0 = np.floor(self.ys / sy + 1e-9)
        y1 = np.ceil((self.ys + self.patch) / sy - 1e-9)
        r, c = self.shape
        out = np.empty((r, c, 4), np.int32)
        out[..., 0] = np.clip(x0, 0, w)[None, :]
        out[..., 1] = np.clip(y0, 0, h)[:, None]
        out[..., 2] = np.clip(x1, 0, w)[None, :]
        out[..., 3] = np.clip(y1, 0, h)[:, None]
        return out


def make_grid(frame_shape: tuple[int, int], patch: int, stride: int, scale: float) -> TileGrid:
    """The patch grid of a frame of ``frame_shape`` (height, width) pixels at ``scale``."""
    h, w = int(frame_shape[0]), int(frame_shape[1])
    if h < 1 or w < 1:
        raise OptionError(f"frame must be at least 1×1 pixels, got {w}×{h}")
    sw, sh = rescaled_size(w, h, scale)
    ph, pw = max(sh, patch), max(sw, patch)
    return TileGrid(positions(ph, patch, stride), positions(pw, patch, stride), patch, float(scale), (h, w), (ph, pw),
                    (sh, sw))


def window_view(image: np.ndarray, patch: int) -> np.ndarray:
    """Read-only view ``[H-patch+1, W-patch+1, patch, patch, C]``: every window of ``image``."""
    h, w = image.shape[:2]
    if h < patch or w < patch:
        raise ValueError(f"image {w}×{h} is smaller than one {patch}×{patch} patch; pad it first")
    sy, sx, sc = image.strides
    return np.lib.stride_tricks.as_strided(
        image, (h - patch + 1, w - patch + 1, patch, patch, image.shape[2]), (sy, sx, sy, sx, sc), writeable=False)


def extract_patches(image: np.ndarray, grid: TileGrid, index: np.ndarray | None = None) -> np.ndarray:
    """Contiguous copy ``[K, patch, patch, C]`` of the grid patches at flat (row-major) ``index``
    (all patches when None), cut from the rescaled, padded ``image`` of ``grid.padded_shape``."""
    if image.shape[:2] != grid.padded_shape:
        raise ValueError(f"image is {image.shape[:2]}, grid expects {grid.padded_shape}")
    if index is None:
        index = np.arange(grid.size)
    rows, cols = np.divmod(np.asarray(index, np.int64), len(grid.xs))
    return window_view(image, grid.patch)[grid.ys[rows], grid.xs[cols]]


def pad_to(image: np.ndarray, shape: tuple[int, int], value: int = 255) -> np.ndarray:
    """``image`` padded at the bottom/right with ``value`` to at least ``shape`` (height, width)."""
    h, w = image.shape[:2]
    th, tw = shape
    if h >= th and w >= tw:
        return image
    out = np.full((max(h, th), max(w, tw), *image.shape[2:]), value, image.dtype)
    out[:h, :w] = image
    return out


def patch_sums(integral: np.ndarray, grid: TileGrid) -> np.ndarray:
    """Per-patch sums of an image read off its integral image (``cv2.integral`` output of the
    ``grid.padded_shape`` image, any number of channels): ``[rows, cols]`` or ``[rows, cols, C]``."""
    y0, x0 = grid.ys[:, None], grid.xs[None, :]
    y1, x1 = y0 + grid.patch, x0 + grid.patch
    return integral[y1, x1] - integral[y0, x1] - integral[y1, x0] + integral[y0, x0]
