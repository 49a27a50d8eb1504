"""How dark a field's darkest tissue is: stray light (glare) washes the nuclei out.

Light that reaches the sensor without passing through the specimen — through an uncapped eyepiece
of a trinocular head, from a room lamp, a condenser opened too far, or dirty and fogged optics — adds
the same amount to every pixel in linear light: a share ``g`` of the glass's brightness lifts a
nucleus that lets through 5 % of the light to ``5 % × (1 − g) + g``. The glass stays white and the
image keeps its colours, so neither the exposure nor the colour gates see it; the nuclei turn pale
and the model calls IDC benign (a veiling glare of 45 % of the glass: 85 % agreement with the clean
field, IDC recall 0.63, where 30 % still agrees 94 %).

Stained tissue always has some dark pixels: nuclei let through little red, eosin-rich stroma little
green. :func:`darkest_tissue` reads the light the darkest hundredth of the tissue lets through, in
linear light, as a share of the field's brightest level per channel (so the lamp's brightness,
colour casts and the exposure cancel). Clean camera-sized fields (480×270 px at 4 µm/px, 132 of 33
slides) read 0.008–0.16 (1st–99th percentile); stray light of a share ``g`` reads at least ``g``.

Pure functions of an **RGB** uint8 image at the model's scale.
"""
from __future__ import annotations

from typing import Optional

import cv2
import numpy as np

from .colour import SRGB_TO_LINEAR, cumulative_counts, halved, halved_mask, nth_level, white_levels

#: Most light the darkest hundredth of a field's tissue may let through (:func:`darkest_tissue`), a
#: fraction of its brightest level in linear light. Clean fields: at most 0.26 (132 fields at 480×270 px,
#: 4 µm/px), 0.32 (264 others); 3 of 345 small ones (160×120) above it. Under veiling glare of 40 % the
#: shipped model still agrees 93 % with the clean field (fields read 0.42–0.66), at 45 % only 85 % with
#: IDC recall 0.63 (0.47–0.71). Of the conditions the model copes with, only the palest (contrast ×0.6,
#: gamma 0.65, saturation ×0.5, both stains ×0.6) exceed it, on 0–1 % of large and 3–6 % of small fields.
MAX_DARKEST_TISSUE = 0.42

#: Most colour a washed-out field's light-absorbing pixels keep (:func:`~idc_edge.faint.colour_strength`,
#: the 99th percentile of their HSV saturation, 0–255). Stray light adds white light and desaturates every
#: stained pixel: under veiling glare of 45 % of the glass's light fields read at most 55 (160×120), 51
#: (320×180) and 48 (500×300 px; 784 fields of the 28 complete slides), at 38 % at most 66. A small field
#: of pale stroma edge to edge also lets light through in its darkest hundredth (0.44–0.52 on five clean
#: fields of 160×120 and 320×180 px), but is strongly coloured: 73–126. Such a field is pale tissue.
MAX_WASHED_COLOUR_STRENGTH = 70.0

#: Where the tissue mask finds too little tissue, :func:`darkest_faint_tissue` reads pixels that let
#: through at most this share of the brightest level in some channel (darker than the glass)...
FAINT_DARKNESS = 0.85
#: ... and are at least this saturated (OpenCV's 0–255 scale; the tissue mask takes 20): tissue
#: washed too pale for the tissue mask keeps a trace of its colour (veiling glare of 60 % leaves
#: 9–15), while glass dimmed by vignetting or flicker stays grey (at most 4–6).
FAINT_SATURATION = 8


def darkest_channel(small: np.ndarray) -> np.ndarray:
    """uint8 per pixel of ``small`` (RGB): the light its darkest channel lets through, in linear light,
    as a share (0–255) of that channel's brightest level (:func:`~idc_edge.colour.white_levels`)."""
    white = SRGB_TO_LINEAR[white_levels(small)]
    # per channel, the share of its brightest level's light on a 0-255 scale: one table lookup per pixel
    table = np.clip(np.rint(255.0 * SRGB_TO_LINEAR[:, None] / np.maximum(white, 1e-6)), 0, 255).astype(np.uint8)
    red, green, blue = cv2.split(cv2.LUT(np.ascontiguousarray(small), table.reshape(256, 1, 3)))
    return cv2.min(cv2.min(red, green), blue)


#: :func:`absorbing` leaves out pixels whose every channel lets through less than this share of its
#: brightest level (0–255 scale: 4 %): the black beyond a field stop, not tissue.
UNLIT_SHARE = 10


def absorbing(darkest: np.ndarray) -> np.ndarray:
    """uint8 mask (255 = set) of the pixels that absorb light, from :func:`darkest_channel`: darker than
    the glass (at most :data:`FAINT_DARKNESS` of its light in some channel) but lit."""
    return cv2.inRange(darkest, UNLIT_SHARE, int(FAINT_DARKNESS * 255))


def _darkest_share(darkest: np.ndarray, mask: np.ndarray, share: float) -> float:
    counts = cumulative_counts(darkest, mask)
    return nth_level(counts, share * counts[-1]) / 255.0


def darkest_tissue(rgb: np.ndarray, tissue_px: np.ndarray, share: float = 0.01, min_px: int = 5_000,
                   half: Optional[np.ndarray] = None, half_tissue: Optional[np.ndarray] = None,
                   darkest: Optional[np.ndarray] = None) -> float:
    """The light the darkest ``share`` of the tissue lets through, as a fraction (0–1) of the field's
    brightest level, in linear light.

    Each pixel's darkest channel counts, each channel against its own brightest level (the level of
    the brightest hundredth of the field: the glass, or the palest tissue where no glass is in view).
    Read on 2×2 means of the image (a camera's grain, which darkens single pixels, halves).

    Args:
        rgb: **RGB** uint8 ``[H, W, 3]`` at the model's scale (the field, without padding).
        tissue_px: uint8/bool ``[H, W]``, non-zero on tissue.
        share: the share of the tissue pixels taken as its darkest (0.01: the 1st percentile).
        min_px: least tissue pixels (of the full-size image) to judge on.
        half: :func:`~idc_edge.colour.halved` of ``rgb``, or of an image that begins with ``rgb``,
            when the caller already has it.
        half_tissue: :func:`~idc_edge.colour.halved_mask` of ``tissue_px``, or of a mask that begins
            with it, when the caller already has it.
        darkest: :func:`darkest_channel` of the field's 2×2 means (``half`` cut to the field), when
            the caller already has it.

    Returns:
        The fraction, to 1/255; NaN when fewer than ``min_px`` tissue pixels.
    """
    h, w = rgb.shape[:2]
    if h < 2 or w < 2:
        return float("nan")
    mask = halved_mask(tissue_px) if half_tissue is None else half_tissue[: h // 2, : w // 2]
    if 4 * cv2.countNonZero(mask) < min_px:
        return float("nan")
    if darkest is None:
        darkest = darkest_channel(halved(rgb) if half is None else half[: h // 2, : w // 2])
    return _darkest_share(darkest, mask, share)


def darkest_faint_tissue(rgb: np.ndarray, share: float = 0.01, min_px: int = 5_000,
                         half: Optional[np.ndarray] = None, darkest: Optional[np.ndarray] = None) -> float:
    """:func:`darkest_tissue` of the tissue too pale for the tissue mask: the pixels darker than the
    glass (at most :data:`FAINT_DARKNESS` of its light in some channel) with a trace of colour (at
    least :data:`FAINT_SATURATION`).

    For a field where the tissue mask finds too little tissue to judge: under veiling glare of 60 %
    the tissue of 6 of the benchmark's 27 validation fields fell below the mask's saturation, and the
    frame showed no tissue and made no call instead of saying it was washed out. Such fields read
    0.60–0.64 here; glass alone, dimmed by vignetting of 60 % or flicker of ±20 %, or with dust, has
    too few such pixels to be judged. Same arguments and result as :func:`darkest_tissue`.
    """
    h, w = rgb.shape[:2]
    if h < 2 or w < 2:
        return float("nan")
    small = np.ascontiguousarray(halved(rgb) if half is None else half[: h // 2, : w // 2])
    darkest = darkest_channel(small) if darkest is None else darkest
    faint = cv2.bitwise_and(absorbing(darkest),
                            cv2.inRange(cv2.cvtColor(small, cv2.COLOR_RGB2HSV), (0, FAINT_SATURATION, 0), (180, 255, 255)))
    if 4 * cv2.countNonZero(faint) < min_px:
        return float("nan")
    return _darkest_share(darkest, faint, share)
