"""Field context: a window's score read together with its neighbours' scores (pure functions).

A 50×50 px patch shows 200 µm of tissue, but IDC is a region: pathologists delineate it, and the
data set's labels come from those outlines. A camera on a microscope sees the tissue around every
window, so the runtime can weigh a window's own score with the scores of the windows around it.
On the 29 validation patients this lifts the shipped model from 0.951 to 0.967 ROC AUC and from
0.889 to 0.913 balanced accuracy, both recalls higher (``train/EXPERIMENTS.md``, section 6).

The combined score of a window with own score ``s``::

    s' = (s + w · Σ k_j s_j / K) / (1 + w · Σ k_j / K)

over the neighbours ``j`` that have a score (tissue windows that were called), with Gaussian
weights ``k_j = exp(-d_j² / 2σ²)`` of their distance ``d_j`` in model pixels out to 3σ (the window
itself excluded), and ``K`` the sum of ``k`` over the whole neighbourhood. With every neighbour
scored, ``s'`` is ``(s + w·m) / (1 + w)``, ``m`` their weighted mean; with none (an isolated
window, glass all around) ``s' = s``; in between, the neighbours weigh as much as they cover.
Windows without a score (background, no call) neither get nor give context, so a blurred or
clipped region never leaks into its neighbours' calls.

Distances are in model pixels, so the context is the same width of tissue (σ · µm per model
pixel) whatever the camera's scale and whatever the stride between windows: at stride 25 the
neighbourhood is sampled four times as densely as at stride 50, and ``m`` estimates the same mean.
"""
from __future__ import annotations

import functools
import math

import cv2
import numpy as np

#: neighbours further than this many σ are left out (their weight is about 1 % of the nearest's)
REACH_SIGMAS = 3.0


@functools.lru_cache(maxsize=16)
def neighbour_kernel(stride_px: int, sigma_px: float) -> np.ndarray:
    """Gaussian weights of the neighbours on a window grid with ``stride_px`` model pixels between
    windows: float32 ``[2r+1, 2r+1]``, centre 0 (a window is not its own neighbour), ``r`` the
    number of steps within 3σ. A 1×1 zero kernel when no neighbour is that close. Read-only (cached:
    a detector asks for the same one every frame)."""
    if stride_px < 1 or not sigma_px > 0:
        raise ValueError(f"stride_px must be >= 1 and sigma_px > 0, got {stride_px} and {sigma_px}")
    reach = int(math.floor(REACH_SIGMAS * sigma_px / stride_px))
    steps = np.arange(-reach, reach + 1, dtype=np.float64) * stride_px
    d2 = steps[:, None] ** 2 + steps[None, :] ** 2
    kernel = np.exp(-d2 / (2.0 * sigma_px * sigma_px))
    kernel[d2 > (REACH_SIGMAS * sigma_px) ** 2] = 0.0
    kernel[reach, reach] = 0.0
    kernel = kernel.astype(np.float32)
    kernel.flags.writeable = False
    return kernel


def field_context(scores: np.ndarray, stride_px: int, sigma_px: float, weight: float) -> np.ndarray:
    """Each window's score combined with its neighbours' (see the module docstring).

    Args:
        scores: float ``[rows, cols]`` probability of IDC per window, NaN where a window has no
            score (background, no call).
        stride_px: model pixels between neighbouring windows of the grid.
        sigma_px: width of the neighbourhood, model pixels (σ of the Gaussian weights).
        weight: how much the neighbourhood counts against the window's own score (``w``); 0 leaves
            the scores as they are.

    Returns:
        float32 ``[rows, cols]``, NaN exactly where ``scores`` is NaN.
    """
    scores = np.asarray(scores, np.float32)
    if scores.ndim != 2:
        raise ValueError(f"scores must be a [rows, cols] grid, got shape {scores.shape}")
    kernel = neighbour_kernel(int(stride_px), float(sigma_px))
    full = float(kernel.sum())
    if full == 0.0 or weight == 0 or scores.size == 0:
        return scores.copy()
    scored = ~np.isnan(scores)
    # channel 0: the scores (0 where none), channel 1: 1 where a score is; one filter sums both
    # over every neighbourhood (a correlation, the kernel is symmetric; outside the grid is unscored)
    both = np.zeros(scores.shape + (2,), np.float32)
    both[..., 0][scored] = scores[scored]
    both[..., 1] = scored
    sums = cv2.filter2D(both, -1, kernel, borderType=cv2.BORDER_CONSTANT)
    w = np.float32(weight / full)
    out = (both[..., 0] + w * sums[..., 0]) / (np.float32(1.0) + w * sums[..., 1])
    out[~scored] = np.nan
    return out
