"""Sensor noise of a frame at the model's scale, measured where the slide has no texture: the glass.

A camera starved of light (a dim lamp, a short exposure, a high gain) adds grain the model was
not trained on; beyond about 100 electrons at white at 4 µm/px the shipped model changes one
decision in ten without any other sign. Noise cannot be told from the tissue's own fine texture
on tissue, but bare glass (and lumen, fat) is flat on a slide, so what varies there pixel to pixel
is the camera.

**Estimate** (Immerkær's fast noise-variance estimate, made robust to texture): the grey image
is filtered with the 3×3 kernel ``[[1, -2, 1], [-2, 4, -2], [1, -2, 1]]`` (the difference of two
Laplacians, blind to flat areas, ramps and any quadratic shading); for white noise of standard
deviation σ its response has standard deviation 6σ. It is read only over **glass interior**: the
bright, weakly coloured pixels the colour gate calls glass (HSV value ≥ 90 % of the frame's 99th
percentile, saturation below 45), judged on the frame shrunk 4× by area averaging so that grain
does not break the glass up, and read at least 12 pixels (48 µm) inside it, so no window touches
the edge of tissue, a fat cell's membrane or the pale rim of a lumen. Fields whose only "glass"
is pale stroma or small holes keep too little of it to be judged (below ``min_glass_px``): on
400 validation fields, glass found with less margin read up to 7 grey levels on some clean
fields, this way at most 0.05. σ is the **median**
absolute response over those pixels divided by 6 × 0.6745 (the median of a half-normal), as the
wavelet estimators of Donoho and Johnstone (``skimage.restoration.estimate_sigma``) do with their
finest detail band: a few specks of dust or fibres in the glass do not move a median. The median
is interpolated inside its histogram bin, so it is a continuous number, not a multiple of 1/4
grey level.

Units: grey levels (0–255) at the model's scale (after the rescale, which averages the camera's
pixels: a 1 µm/px camera's noise is 4× lower where the model looks). Glass clipped at 255 hides
half its noise, so a frame exposed to clip the glass reads lower than one exposed right.
"""
from __future__ import annotations

import cv2
import numpy as np

from .colour import glass_mask
from .rescale import rescale

#: Immerkær's kernel ``[[1, -2, 1], [-2, 4, -2], [1, -2, 1]]`` (sum of squares 36) is this
#: second difference along rows times the same along columns
_SECOND_DIFFERENCE = np.array([1, -2, 1], np.float32)
_NEIGHBOURS = np.ones((3, 3), np.uint8)
#: glass is found on cells of 4×4 pixels (area averages), and the noise read 3 cells (12 pixels) inside it
_CELL = 4
_INSIDE_CELLS = 3
#: σ of white noise from the median absolute response of the kernel: 6 × the half-normal's median 0.6745
_MEDIAN_TO_SIGMA = 1.0 / (6.0 * 0.6744897501960817)


def _interpolated_median(counts: np.ndarray) -> float:
    """The median of integer samples from their histogram ``counts`` (bin k holds value k),
    interpolated inside its bin (the bin spanning k − ½ to k + ½), so ties do not round it."""
    total = float(counts.sum())
    cumulative = np.cumsum(counts)
    k = int(np.searchsorted(cumulative, total / 2.0))
    below = float(cumulative[k - 1]) if k > 0 else 0.0
    return max(0.0, k - 0.5 + (total / 2.0 - below) / float(counts[k]))


def glass_noise(grey: np.ndarray, rgb: np.ndarray, min_glass_px: int = 2000) -> float:
    """Noise of a frame (σ in grey levels) measured on its glass interior; NaN when fewer than
    ``min_glass_px`` pixels of glass interior are in view (nothing flat to judge).

    Glass is found on the frame shrunk 4× by area averaging (16 pixels averaged: even heavy grain
    does not break the glass into specks), shrunk by three of those cells (12 pixels) at its
    edges; the kernel's response is read at every second pixel of every second row inside it.

    Args:
        grey: uint8 grey image at the model's scale (the frame as the model sees it, unpadded).
        rgb: the same frame in **RGB** uint8.
        min_glass_px: fewest pixels of glass interior at the model's scale for a measurement.
    """
    # whole cells only (a few pixels at the bottom and right edges are left out): the shrink is then
    # two exact halvings, a tenth of the cost of one area step of a ragged size
    h, w = (grey.shape[0] // _CELL) * _CELL, (grey.shape[1] // _CELL) * _CELL
    if h == 0 or w == 0:
        return float("nan")
    grey, rgb = grey[:h, :w], rgb[:h, :w]
    glass = glass_mask(cv2.cvtColor(rescale(rgb, (w // _CELL, h // _CELL)), cv2.COLOR_RGB2HSV))
    inside = cv2.erode(glass, _NEIGHBOURS, iterations=_INSIDE_CELLS, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    if _CELL * _CELL * cv2.countNonZero(inside) < max(1, int(min_glass_px)):
        return float("nan")
    response = cv2.sepFilter2D(grey, cv2.CV_16S, _SECOND_DIFFERENCE, _SECOND_DIFFERENCE,
                               borderType=cv2.BORDER_REFLECT_101)
    sampled = cv2.convertScaleAbs(response[::2, ::2])  # saturates at 255, far above any median that matters
    inside = cv2.resize(inside, (sampled.shape[1], sampled.shape[0]), interpolation=cv2.INTER_NEAREST)
    counts = cv2.calcHist([sampled], [0], inside, [256], [0, 256]).ravel()
    return _interpolated_median(counts) * _MEDIAN_TO_SIGMA
