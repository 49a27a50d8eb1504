"""Sensor noise of a frame at the model's scale, measured where the slide's own texture cannot
pass for it: on the glass, and on the tissue across its stains.

A camera starved of light (a dim lamp, a short exposure, a high gain) adds grain the model was
not trained on; beyond about 100 electrons at white at 4 µm/px the shipped model changes one
decision in ten without any other sign. Noise cannot be told from the tissue's own fine texture
in the grey image, but bare glass (and lumen, fat) is flat on a slide, so what varies there pixel
to pixel is the camera; and where tissue fills the field, the colour direction its two stains
do not use carries the camera's grain and little else.

**On glass** (:func:`glass_noise`; Immerkær's fast noise-variance estimate, made robust to
texture): the grey image is filtered with the 3×3 kernel ``[[1, -2, 1], [-2, 4, -2], [1, -2, 1]]``
(the difference of two Laplacians, blind to flat areas, ramps and any quadratic shading); for
white noise of standard deviation σ its response has standard deviation 6σ. It is read only over
**glass interior**: the bright, weakly coloured pixels the colour gate calls glass (HSV value ≥ 90 %
of the frame's 99th percentile, saturation below 45, or, where a cast colours the glass, below 12 more
than the bright part's median, up to 64, on flat cells), judged on the frame shrunk 4× by area
averaging so that grain does not break the glass up, and read at least 12 pixels (48 µm) inside
it, so no window touches the edge of tissue, a fat cell's membrane or the pale rim of a lumen.
Fields whose only "glass" is pale stroma or small holes keep too little of it to be judged (below
``min_glass_px``): on 400 validation fields, glass found with less margin read up to 7 grey
levels on some clean fields, this way at most 0.05. σ is the **median** absolute response over
those pixels divided by 6 × 0.6745 (the median of a half-normal), as the wavelet estimators of
Donoho and Johnstone (``skimage.restoration.estimate_sigma``) do with their finest detail band: a
few specks of dust or fibres in the glass do not move a median. The median is interpolated inside
its histogram bin, so it is a continuous number, not a multiple of 1/4 grey level. Units: grey
levels (0–255). Glass clipped at 255 hides half its noise, so a frame exposed to clip the glass
reads lower than one exposed right.

**On tissue** (:func:`tissue_noise`), for the fields with no glass in view (a fifth of the 400
validation fields, a third of those mostly tissue). H&E tissue absorbs light through two stains,
so its colour varies almost only within their plane (in optical density exactly, by
Beer–Lambert; in the camera's levels nearly so over the 3×3 pixels the kernel sees). The same
kernel is applied to each of R, G and B over tissue; noise independent between the channels with
σ in each adds 36 σ² to every direction of the three responses' 3×3 second-moment matrix, the
stains' texture only to directions within their plane, so the matrix's **smallest eigenvalue** is
36 σ² plus what is left of the texture. The direction is found per frame, so it follows the stain's
hue, a cast or a white balance. Tissue pixels are the detector's tissue mask; a sample is used only
where the kernel's window lies on tissue and no channel of its centre is clipped (≥ 250) or crushed
(≤ 5): a clipped channel does not vary and would pass for a quiet one. It is sampled on one row in
16 at every second pixel (1/32 of the pixels, ~4,000 samples at 480×270; on 40 validation fields
σ stays within 5 % of the reading on every pixel of every third row at 100 e⁻ at white, within
13 % on the clean fields' small residue). Units: levels of one channel (0–255);
Gaussian noise of σ per channel reads σ. On the 400 clean validation fields (``benchmarks/camera_gates.py``)
it reads 1.9–4.0 (median 2.6: the texture's residue, from stain mixtures that are not exactly
linear in the levels, and from the scanner); sensor noise at 4 µm/px reads 5.0 (median) at 1000 e⁻
at white, 9.8 at 250 e⁻ (at most 11.8) and 16.6 at 100 e⁻ (at least 13.1); shot noise weighs more
on dark tissue than on bright glass in sRGB levels, so the tissue reads about 3× the glass's grey level.

What it assumes, and what weakens it:

- **Noise independent between channels** at the model's scale, as ``train.camera_sim`` draws it.
  A Bayer sensor measures one channel per pixel and interpolates the other two from neighbours,
  so at the camera's own scale its noise is correlated between channels and between neighbours;
  at 1 µm/px the runtime's 4× area rescale averages that away (simulated RGGB mosaic and bilinear
  demosaic at 6 e⁻ at white: 24 instead of 20, on 50 fields), but a Bayer camera at the model's
  scale reads far less (at 4 µm/px 100 e⁻ reads 2–4, not 17).
- **Chroma not filtered away**: JPEG's 4:2:0 chroma subsampling and coarser chroma quantisation,
  and cameras' chroma denoising, remove noise from exactly this direction. At 1 µm/px JPEG 80
  lowers 6 e⁻ at white from 20 to 13.5 (median of 100 validation fields; 82 % still above the
  gate's 12.5; JPEG 90: 12.7, 56 %); end to end (model alone 81 % agreement) 26 of the
  benchmark's 27 fields are still no call, by the glass or the tissue, one without glass is
  called. JPEG at the model's scale leaves almost nothing (100 e⁻ and JPEG 90 at 4 µm/px: 0.6),
  where only the glass can judge.
- **Two stains**: a third dye (a counterstain, pigment, ink, a pen mark) or a fold adds texture
  across the plane and reads as noise, earlier than the glass would flag.
- Values are in the frame's levels: the same light reads higher on a darker section.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from .colour import glass_mask_following_cast
from .rescale import rescale

#: Immerkær's kernel ``[[1, -2, 1], [-2, 4, -2], [1, -2, 1]]`` (sum of squares 36) is this
#: second difference along rows times the same along columns
_SECOND_DIFFERENCE = np.array([1, -2, 1], np.float32)
_NEIGHBOURS = np.ones((3, 3), np.uint8)
#: glass is found on cells of 4×4 pixels (area averages), and the noise read 3 cells (12 pixels) inside it
_CELL = 4
_INSIDE_CELLS = 3
#: Glass in a frame with a colour cast is as saturated as the cast makes it, most where no channel is
#: clipped: at exposure ×0.5 a cool cast of 20 % reads HSV saturation ~41 (~24 at full light, its blue
#: clipped), and grain then lifts so many 4×4 cells past the colour gate's glass limit (45) that no glass
#: interior was left: such frames had no glass reading, and grain at 200 electrons at white that is no
#: call without the cast was scored with it (82 % agreement on the validation slides). The limit is
#: raised to this many levels above the median saturation of the field's bright cells ...
GLASS_SATURATION_MARGIN = 12
#: ... up to this (a cast of about 25 % at exposure ×0.6), ...
MAX_GLASS_SATURATION = 64
#: ... on cells that are flat: the HSV value's standard deviation over 3×3 cells below this many levels
#: (grain at 200 e⁻ one stop under: ~1.6; pale tissue, which a field without glass shows as its brightest
#: part, more). Measured (140 validation and 114 training fields of 500×300 px): clean fields read as
#: before but one training field (0.05 → 3.4 of the limit 4.5); one stop under with a 20 % cool cast and
#: grain at 200 / 300 e⁻ the glass is read on 71 / 86 of 96 validation fields with glass (none before) and
#: flagged on each; gamma 0.65, contrast ×0.6, cool and magenta casts flag no field more; both stains faded
#: ×0.6 one training field (4.6), a green cast of 10 % three validation fields (up to 5.4), of 20 % two (pale
#: stroma tinted grey by the green passes for glass; no call, said, where before it was called).
FLAT_GLASS_LEVELS = 3.0
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
    glass = glass_mask_following_cast(cv2.cvtColor(rescale(rgb, (w // _CELL, h // _CELL)), cv2.COLOR_RGB2HSV),
                                      GLASS_SATURATION_MARGIN, MAX_GLASS_SATURATION, FLAT_GLASS_LEVELS)
    inside = cv2.erode(glass, _NEIGHBOURS, iterations=_INSIDE_CELLS, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    if _CELL * _CELL * cv2.countNonZero(inside) < max(1, int(min_glass_px)):
        return float("nan")
    response = cv2.sepFilter2D(grey, cv2.CV_16S, _SECOND_DIFFERENCE, _SECOND_DIFFERENCE,
                               borderType=cv2.BORDER_REFLECT_101)
    sampled = cv2.convertScaleAbs(response[::2, ::2])  # saturates at 255, far above any median that matters
    inside = cv2.resize(inside, (sampled.shape[1], sampled.shape[0]), interpolation=cv2.INTER_NEAREST)
    counts = cv2.calcHist([sampled], [0], inside, [256], [0, 256]).ravel()
    return _interpolated_median(counts) * _MEDIAN_TO_SIGMA




#: a tissue pixel with a channel outside these levels is clipped (or crushed) there, which hides its noise
_UNCLIPPED = (6, 249)
#: the tissue's noise is read on the middle row of the first 3 of every 16 rows, at every 2nd pixel
#: (1/32 of the pixels: about 4,000 at 480×270)
_ROW_STEP, _COL_STEP = 16, 2
_ROW_NEIGHBOURS = np.ones((1, 3), np.uint8)


def _least_eigenvalue(c: np.ndarray) -> float:
    """The smallest eigenvalue of a symmetric 3×3 matrix, from the trigonometric solution of its
    characteristic cubic, in plain floats (``numpy.linalg.eigvalsh`` costs ten times more on 3×3)."""
    (a, d, e), (_, b, f), (_, _, g) = c.tolist()
    q = (a + b + g) / 3.0
    p = math.sqrt(((a - q) ** 2 + (b - q) ** 2 + (g - q) ** 2 + 2.0 * (d * d + e * e + f * f)) / 6.0)
    if p < 1e-12:
        return q
    a, b, g, d, e, f = (a - q) / p, (b - q) / p, (g - q) / p, d / p, e / p, f / p
    half_det = (a * (b * g - f * f) - d * (d * g - f * e) + e * (d * f - b * e)) / 2.0
    return q + 2.0 * p * math.cos(math.acos(min(1.0, max(-1.0, half_det))) / 3.0 + 2.0 * math.pi / 3.0)


def tissue_noise(rgb: np.ndarray, tissue_px: np.ndarray, min_tissue_px: int = 2000) -> float:
    """Noise of a frame (σ in levels of one channel, 0–255) measured on its tissue, along the colour
    direction in which the tissue's fine structure varies least; NaN when fewer than
    ``min_tissue_px`` usable tissue pixels are in view.

    Immerkær's kernel is applied to each channel on the middle row of the first three of every
    16 rows, at every second pixel, where the 3×3 window lies on tissue and the centre has no
    channel clipped or crushed; the smallest eigenvalue of the three responses' 3×3 second-moment
    matrix is 36 σ² for noise of σ in each channel.

    Args:
        rgb: **RGB** uint8 frame at the model's scale (unpadded).
        tissue_px: uint8/bool tissue mask of ``rgb``'s pixels (non-zero = tissue).
        min_tissue_px: fewest usable tissue pixels at the model's scale for a measurement (each
            sample stands for 32).
    """
    h, w = rgb.shape[:2]
    bands = h // _ROW_STEP
    if bands == 0 or w < 3:
        return float("nan")
    # the first three rows of every band of 16, stacked: the kernel on this strip's row 3i+1 is its
    # response on row 16i+1 of the frame
    strips = np.ascontiguousarray(rgb[:_ROW_STEP * bands].reshape(bands, _ROW_STEP, w, 3)[:, :3])
    strips = strips.reshape(3 * bands, w, 3)
    response = cv2.sepFilter2D(strips, cv2.CV_32F, _SECOND_DIFFERENCE, _SECOND_DIFFERENCE,
                               borderType=cv2.BORDER_REFLECT_101)[1::3]
    size = (w // _COL_STEP, bands)  # nearest neighbour at half the width keeps columns 0, 2, 4, ...
    response = cv2.resize(np.ascontiguousarray(response), size, interpolation=cv2.INTER_NEAREST)
    rows = tissue_px[:_ROW_STEP * bands].reshape(bands, _ROW_STEP, w).astype(np.uint8, copy=False)
    # non-zero where the whole 3×3 window around the pixel is tissue
    on_tissue = cv2.erode(np.minimum(np.minimum(rows[:, 0], rows[:, 1]), rows[:, 2]), _ROW_NEIGHBOURS,
                          borderType=cv2.BORDER_CONSTANT, borderValue=0)
    unclipped = cv2.inRange(np.ascontiguousarray(strips[1::3]), (_UNCLIPPED[0],) * 3, (_UNCLIPPED[1],) * 3)
    usable = cv2.resize(cv2.bitwise_and(on_tissue, unclipped), size, interpolation=cv2.INTER_NEAREST)
    n = cv2.countNonZero(usable)
    if _ROW_STEP * _COL_STEP * n < max(1, int(min_tissue_px)):
        return float("nan")
    masked = np.zeros_like(response)
    cv2.copyTo(response, usable, masked)
    samples = masked.reshape(-1, 3)
    moments = (samples.T @ samples).astype(np.float64) / n
    return math.sqrt(max(_least_eigenvalue(moments), 0.0)) / 6.0
