"""Which windows one convolutional pass scores, and how a frame is cut for it (pure numpy).

A model whose sidecar has ``dense`` (see :mod:`idc_edge.spec`) scores, in one interpreter call
on an image of H × W model pixels, every P × P window whose top-left corner lies on the
**output lattice**: multiples of its output stride S. The detector's windows are those of its
:class:`~idc_edge.tiling.TileGrid`, the same as in patch mode: starts at multiples of
``stride`` plus a last row and column shifted back to end on the frame's edge. So ``stride``
must be a multiple of S (:func:`check_dense_stride`); then every window is on the lattice
except, possibly, that shifted last row and column: each gets a pass of its own over a
P-pixel-wide strip along the frame's edge (and the corner window one of P × P), so the frame's
windows, and what each score means, are exactly those of patch mode.

Large frames are cut into tiles of at most ``tile_px`` × ``tile_px`` model pixels that overlap
by P − S pixels (a window never straddles two tiles), so memory stays bounded; tiles are all
of one size where the frame allows it (the last tile is shifted back, like the last patch), so
a few interpreter sizes serve every frame of a camera. The detector runs a pass only when one of
its windows needs a score (tissue, not reused) and, unless told otherwise, only when the pass costs
fewer multiply-accumulates than those windows as patches.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import OptionError
from .tiling import TileGrid, positions

#: Largest side of one dense pass in model pixels (4 mm at 4 µm/px): a 1080p frame at 1 µm/px
#: (480 × 270) is one pass; an 8K frame at the model's scale is cut into tiles.
DENSE_TILE_PX = 1024


def dense_strides(patch: int, output_stride: int) -> list[int]:
    """The strides (model pixels) a dense model can run at without gaps: multiples of its output
    stride up to one patch."""
    return list(range(output_stride, patch + 1, output_stride))


def default_dense_stride(patch: int, output_stride: int) -> int:
    """The stride used when none is given: one patch (no overlap), or the largest multiple of the
    output stride below it when the output stride does not divide the patch."""
    return (patch // output_stride) * output_stride


def check_dense_stride(stride: int, patch: int, output_stride: int) -> None:
    """Raise :class:`OptionError` unless ``stride`` is a multiple of the model's output stride.

    The dense pass scores windows only at multiples of the output stride, so a stride between
    them cannot be honoured; it is refused rather than rounded so a run never silently uses a
    different stride than asked for.
    """
    if stride % output_stride:
        valid = dense_strides(patch, output_stride)
        shown = ", ".join(str(v) for v in valid[:12]) + (", ..." if len(valid) > 12 else "")
        raise OptionError(f"stride {stride} px is not a multiple of this model's output stride ({output_stride} px): "
                          f"use one of {shown} (or a larger multiple), or run it patch by patch "
                          "(dense=False)", options=["dense=False"])


def lattice_shape(height: int, width: int, patch: int, output_stride: int) -> tuple[int, int]:
    """(rows, cols) of windows a dense pass gives on an image of ``height × width`` pixels."""
    return (height - patch) // output_stride + 1, (width - patch) // output_stride + 1


@dataclass(frozen=True)
class Band:
    """A run of windows along one axis that one dense pass scores.

    Attributes:
        origin_px: start of the band's first window in the rescaled, padded frame (model pixels).
        windows: windows in the band, ``output_stride`` apart: the pass's input is
            ``patch + output_stride * (windows - 1)`` pixels long on this axis.
        grid_index: the grid rows (or columns) this band scores.
        local: for each of them, its index in the band's dense output.
    """

    origin_px: int
    windows: int
    grid_index: np.ndarray
    local: np.ndarray

    def span_px(self, patch: int, output_stride: int) -> int:
        """Length in model pixels of the band's input."""
        return patch + output_stride * (self.windows - 1)


def bands(starts: np.ndarray, length: int, patch: int, output_stride: int, tile_px: int) -> list[Band]:
    """Bands scoring grid ``starts`` (model pixels) on an axis of ``length`` pixels.

    Starts on the lattice (multiples of ``output_stride``) go to lattice bands of at most
    ``tile_px`` pixels, all of one length (the last is shifted back, like the last patch, so it
    may overlap the one before; each start belongs to one band only). A start off the lattice
    (the shifted last row or column of a grid) gets a band of its own, one window wide at that
    start: one more dense pass over a ``patch``-wide strip, sharing work along the strip.
    """
    s = output_stride
    if tile_px < patch:
        raise OptionError(f"dense tile of {tile_px} px is smaller than the {patch} px patch")
    starts = np.asarray(starts, np.int64)
    on = starts % s == 0
    lattice = (length - patch) // s + 1
    n = min((tile_px - patch) // s + 1, lattice)
    tiles = positions(lattice, n, n)
    idx = starts // s
    owner = np.where(on, np.minimum(idx // n, len(tiles) - 1), -1)
    out = []
    for k, first in enumerate(tiles):
        mine = np.flatnonzero(owner == k)
        if mine.size:
            out.append(Band(int(first) * s, n, mine, idx[mine] - int(first)))
    for i in np.flatnonzero(~on):
        out.append(Band(int(starts[i]), 1, np.array([i]), np.zeros(1, np.int64)))
    return out


@dataclass(frozen=True)
class DensePass:
    """One dense pass: a crop of the rescaled, padded frame and the grid windows it scores.

    Attributes:
        ys, xs: slices of the frame (model pixels) the pass takes.
        block: ``np.ix_`` index of its grid windows (rows × cols) in a ``[rows, cols]`` grid array.
        local: ``np.ix_`` index of the same windows in the pass's dense output.
    """

    ys: slice
    xs: slice
    block: tuple[np.ndarray, np.ndarray]
    local: tuple[np.ndarray, np.ndarray]

    @property
    def shape_px(self) -> tuple[int, int]:
        """(height, width) of the pass's input in model pixels."""
        return self.ys.stop - self.ys.start, self.xs.stop - self.xs.start


@dataclass(frozen=True)
class DensePlan:
    """The dense passes that score every window of one :class:`TileGrid`: one per pair of a row
    band and a column band (see :func:`bands`).

    Attributes:
        passes: the passes.
        owner: int ``[rows, cols]``: the index in ``passes`` of the pass that scores each window.
    """

    patch: int
    output_stride: int
    passes: tuple[DensePass, ...]
    owner: np.ndarray

    def shapes_px(self) -> list[tuple[int, int]]:
        """The distinct (height, width) of this plan's passes (one interpreter each)."""
        return sorted({p.shape_px for p in self.passes})


def plan_dense(grid: TileGrid, output_stride: int, tile_px: int = DENSE_TILE_PX) -> DensePlan:
    """The dense passes that score ``grid``'s windows (see the module docstring).

    Raises:
        OptionError: ``tile_px`` is smaller than one patch.
    """
    h, w = grid.padded_shape
    p, s = grid.patch, output_stride
    passes, owner = [], np.full(grid.shape, -1, np.int64)
    for rows in bands(grid.ys, h, p, s, tile_px):
        for cols in bands(grid.xs, w, p, s, tile_px):
            block = np.ix_(rows.grid_index, cols.grid_index)
            owner[block] = len(passes)
            passes.append(DensePass(slice(rows.origin_px, rows.origin_px + rows.span_px(p, s)),
                                    slice(cols.origin_px, cols.origin_px + cols.span_px(p, s)),
                                    block, np.ix_(rows.local, cols.local)))
    return DensePlan(p, s, tuple(passes), owner)
