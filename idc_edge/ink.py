"""Marker ink on the slide: what H&E never shows, by colour or by how little red it lets through.

Pathologists circle tumour and surgeons ink margins with marker pens; the ink lies on the tissue
the model is asked to read. H&E-stained tissue is pink to purple: of the tissue pixels of 132
camera-sized fields of the data set's slides, 0.06 % have a hue from yellow through green to blue
(OpenCV hue 20–125, 40°–250°) with a saturation of 60 or more, and the windows where they gather
show the data set's own blue margin ink. Blue is also the hue of a bluish haematoxylin, so blue
counts only where it is broad or runs long and straight (a stroke, not nuclei). Violet-blue ink over
pink tissue reads 250° and more, purple's hue, and black ink has no hue at all: both are found by
their darkness in red where it is broad (:data:`MAX_RED_TRANSMISSION`) or runs so (below), as are
green and cyan ink over tissue. A tissue
window with more than 5 % of ink pixels (the mask grown by 2 px) is no call
(:class:`~idc_edge.focus.ColourOptions.max_ink_fraction`).

The colours are read on 2×2 means (area averaging), so a camera's grain and sharpening halos,
whose hue jumps from pixel to pixel, are seldom taken for ink (lateral colour fringes are); a
marker's stroke is a fraction of a millimetre wide, tens to hundreds of model pixels.

A fine stroke (20–56 µm, narrower than the disc) is found by its shape: it is long, straight and
unbroken over hundreds of µm, while nuclei and their clusters are blobs a few to tens of µm across
with paler gaps. Where the blue or dark pixels above, or pixels darker in red than 60 % of their
surroundings (:data:`MAX_STROKE_RED_OF_SURROUND`), hold a straight run of 104 µm at one of 8
orientations (morphological openings with line structuring elements) and such runs join into a
stretch at least :data:`MIN_STROKE_LENGTH_PX` long (480 µm; less on a small field, whose strokes are
cut short by its edges: :func:`stroke_length_px`), they are ink (:func:`fine_strokes`). Yellow or
orange ink over tissue turns orange-brown, the colour of blood and pigment, and is found only over
glass or pale tissue.

Pure functions of an **RGB** uint8 image at the model's scale.
"""
from __future__ import annotations

import math
from typing import Optional

import cv2
import numpy as np

from .colour import halved, halved_mask, histogram_median, white_levels

#: OpenCV hue range (0–180 units: 40°–250°) of marker ink that H&E never shows: yellow to blue.
INK_HUES = (20, 125)

#: Least HSV saturation (0–255) of an ink pixel: glass and pale tissue of any hue stay below it.
MIN_INK_SATURATION = 60

#: From this OpenCV hue (200°) on, ink is blue, the hue of a bluish haematoxylin too (dense nuclei of
#: Ruifrok and Johnston's haematoxylin read 243°, saturation 148): blue counts as ink only where it is
#: broad, a 7 px disc fitting inside it on the halved image (14 model pixels, 56 µm), or on a fine
#: stroke's straight run (:func:`fine_strokes`). A blue marker over 70 % of pink tissue reads 255°,
#: purple's hue, and is found by its darkness in red.
BLUE_HUE = 100
_BROAD = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))

#: Largest share of the field's brightest red (99th percentile: the glass) that a broad stretch of
#: marker ink lets through, on 2×2 means. Eosin hardly absorbs red and haematoxylin's nuclei are a
#: few µm across, so any 56 µm of stained tissue has paler gaps; a blue, black, green or cyan marker
#: over it does not. Ink must also be darker in red than :data:`MAX_RED_OF_TISSUE` of the field's
#: typical tissue, so that a darkly stained slide is not taken for inked.
MAX_RED_TRANSMISSION = 0.40

#: Largest share of the red of the field's median tissue pixel that a broad stretch of ink lets
#: through. On 132 camera-sized fields of the data set's slides, with the 7 px disc on the halved image
#: and the 5 % window limit, 0.1 % of the benign windows and none of the IDC windows are no call
#: (gamma 1.5: 0.4 / 0.2 %; haematoxylin and eosin ×1.5: 0.2 / 0.1 %); under a 160 µm blue or black
#: stroke (70 % cover), 30–33 % of the windows are, about all the stroke touches. Against the glass
#: alone (0.40), a slide stained darker than the rest lost 3–5 % of its windows to the rule.
MAX_RED_OF_TISSUE = 0.6

#: Least length (pixels at the model's scale: 120 = 480 µm) of a fine marker stroke: the bounding box's
#: diagonal of a straight run found by :func:`fine_strokes`. Nuclei, their clusters and the dark rims of
#: ducts seldom run straight that far; a pen's stroke across a field does. On 558 clean 500×300 fields
#: tiling the 28 complete slides, 120 added no ink window (100 added 0.01 % of the benign and 0.03 % of
#: the IDC ones, in a dense tumour). 0 switches the rule off.
MIN_STROKE_LENGTH_PX = 120

#: On a small field a stroke is seen only as far as it crosses the field: the length asked is then this
#: share of the field's diagonal, never less than :data:`MIN_SMALL_FIELD_STROKE_PX` (:func:`stroke_length_px`).
#: At 160×120 model pixels (a 640×480 camera at 1 µm/px) the strokes of the camera-conditions benchmark
#: ran mostly under 120 px, and only 26–45 % of the tissue windows under a 10–12 px blue, violet or black
#: stroke were found (82–90 % of the decisions kept, IDC under ink called benign); at 60 px, 75–90 %
#: (94–97 % kept). Fields of 500×300 and more keep 120.
STROKE_SHARE_OF_DIAGONAL = 0.3

#: Least length (model pixels, 240 µm) asked of a fine stroke on a small field. On clean fields of the 28
#: complete slides, ink windows at 60 against 120 px: 160×120 (540 validation, 1,140 training fields)
#: 0.33 / 0.20 % against 0.05 / 0.18 % of tissue windows; 320×180 no change; at 500×300 60 px would
#: add 0.3 points on the validation slides, where the long limit loses little (93–99 % found).
MIN_SMALL_FIELD_STROKE_PX = 60


def stroke_length_px(min_stroke_px: float, width_px: int, height_px: int) -> float:
    """Least length (model pixels) of a fine stroke on a field of ``width_px`` × ``height_px`` model pixels:
    ``min_stroke_px``, or on a small field :data:`STROKE_SHARE_OF_DIAGONAL` of its diagonal, not under
    :data:`MIN_SMALL_FIELD_STROKE_PX` (nor over ``min_stroke_px``; 0 stays 0, no stroke looked for)."""
    if min_stroke_px <= 0:
        return 0.0
    share = STROKE_SHARE_OF_DIAGONAL * math.hypot(width_px, height_px)
    return float(min(min_stroke_px, max(MIN_SMALL_FIELD_STROKE_PX, share)))


#: Length (pixels of the halved image, 8 µm each: 104 µm) of the line structuring elements a stroke's
#: run must hold, at :data:`STROKE_ORIENTATIONS` orientations 180°/8 apart.
STROKE_RUN_PX = 13
STROKE_ORIENTATIONS = 8

#: Largest share of its surroundings' red (a closing of the halved image's red over 13 × 13 pixels,
#: 104 µm: a stroke that fine is filled by its brighter sides) that a fine stroke lets through, so a
#: violet stroke over pale tissue (55 % of its red) counts, and than :data:`MAX_STROKE_RED_OF_TISSUE`
#: of the field's median tissue pixel.
MAX_STROKE_RED_OF_SURROUND = 0.6
MAX_STROKE_RED_OF_TISSUE = 0.8
_SURROUND = np.ones((13, 13), np.uint8)


def _line(length: int, degrees: float) -> np.ndarray:
    """uint8 ``[length, length]`` structuring element: a 1 px line of ``length`` pixels through the centre at
    ``degrees`` from the horizontal."""
    k = np.zeros((length, length), np.uint8)
    c = (length - 1) / 2
    dx, dy = math.cos(math.radians(degrees)) * c, -math.sin(math.radians(degrees)) * c
    cv2.line(k, (round(c - dx), round(c - dy)), (round(c + dx), round(c + dy)), 1, 1)
    return k


_LINES = tuple(_line(STROKE_RUN_PX, 180.0 * i / STROKE_ORIENTATIONS) for i in range(STROKE_ORIENTATIONS))


def fine_strokes(red: np.ndarray, candidates: np.ndarray, tissue_red: float, min_length_px: float) -> np.ndarray:
    """uint8 mask (255 = a fine stroke) of a halved image (8 µm per pixel): the pixels of ``candidates``
    (uint8, non-zero where blue or dark enough for ink) or darker in ``red`` (its red channel, uint8) than
    :data:`MAX_STROKE_RED_OF_SURROUND` of their surroundings and :data:`MAX_STROKE_RED_OF_TISSUE` of
    ``tissue_red`` (the field's median tissue red, or its brightest red where no tissue is known), that lie on a straight run of
    :data:`STROKE_RUN_PX` pixels whose joined runs at that orientation reach ``min_length_px`` (pixels of
    the halved image, the diagonal of their bounding box).
    """
    surround = cv2.morphologyEx(red, cv2.MORPH_CLOSE, _SURROUND)
    than_surround = cv2.compare(red, cv2.convertScaleAbs(surround, alpha=MAX_STROKE_RED_OF_SURROUND), cv2.CMP_LT)
    darker = cv2.bitwise_and(than_surround, cv2.compare(red, MAX_STROKE_RED_OF_TISSUE * tissue_red, cv2.CMP_LT))
    thin = cv2.bitwise_or(candidates, darker)
    strokes = np.zeros_like(thin)
    if not cv2.countNonZero(thin):
        return strokes
    for line in _LINES:
        runs = cv2.morphologyEx(thin, cv2.MORPH_OPEN, line)
        long = [c for c in cv2.findContours(runs, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)[0]
                if math.hypot(*cv2.boundingRect(c)[2:]) >= min_length_px]
        if long:
            cv2.drawContours(strokes, long, -1, 255, cv2.FILLED)
    return cv2.bitwise_and(strokes, thin)


#: Pixels an ink mask is grown by: a stroke's soft edge tints the tissue beside it below the saturation
#: limit, and the model reads that tint too.
INK_MARGIN_PX = 2


def ink_pixels(rgb: np.ndarray, tissue_px: Optional[np.ndarray] = None, min_saturation: int = MIN_INK_SATURATION,
               margin_px: int = INK_MARGIN_PX, max_red_transmission: float = MAX_RED_TRANSMISSION,
               max_red_of_tissue: float = MAX_RED_OF_TISSUE, half: Optional[np.ndarray] = None,
               min_stroke_px: float = MIN_STROKE_LENGTH_PX, half_tissue: Optional[np.ndarray] = None) -> np.ndarray:
    """uint8 ``[H, W]`` mask of ``rgb`` (**RGB** uint8 ``[H, W, 3]``, at least 2×2), 255 where a 2×2
    mean of the image has an ink hue (:data:`INK_HUES`) and at least ``min_saturation``, or where it
    is broad (a 56 µm disc fits inside) and blue (:data:`BLUE_HUE`) or darker in red than both
    ``max_red_transmission`` of the field's brightest red and ``max_red_of_tissue`` of its median
    tissue pixel's, or on a fine stroke at least ``min_stroke_px`` long (:func:`fine_strokes`; 0: not
    looked for); grown by ``margin_px`` pixels (a disc).

    Args:
        tissue_px: uint8/bool ``[H, W]``, non-zero on tissue, whose median red is the tissue's (every
            pixel when None).
        half: :func:`~idc_edge.colour.halved` of ``rgb``, when the caller already has it.
        half_tissue: :func:`~idc_edge.colour.halved_mask` of ``tissue_px``, when the caller already has it.
    """
    h, w = rgb.shape[:2]
    small = halved(rgb) if half is None else half
    hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
    red = cv2.extractChannel(small, 0)
    on_tissue = np.full(red.shape, 255, np.uint8) if tissue_px is None else \
        (halved_mask(tissue_px) if half_tissue is None else half_tissue)
    tissue_red = histogram_median(red, on_tissue)
    brightest_red = float(white_levels(red[..., None])[0])
    dark_red = max_red_transmission * brightest_red
    if not math.isnan(tissue_red):
        dark_red = min(dark_red, max_red_of_tissue * tissue_red)
    # only where broad or on a long straight run: a stroke, not nuclei or the gaps of dense tissue
    broad = cv2.bitwise_or(cv2.inRange(hsv, (BLUE_HUE, min_saturation, 0), (INK_HUES[1], 255, 255)),
                           cv2.compare(red, dark_red, cv2.CMP_LT))
    candidates = broad
    if cv2.countNonZero(broad):
        broad = cv2.morphologyEx(broad, cv2.MORPH_OPEN, _BROAD)
    if min_stroke_px > 0:
        reference = brightest_red if math.isnan(tissue_red) else tissue_red
        broad = cv2.bitwise_or(broad, fine_strokes(red, candidates, reference, min_stroke_px / 2))
    ink = cv2.bitwise_or(cv2.inRange(hsv, (INK_HUES[0], min_saturation, 0), (BLUE_HUE - 1, 255, 255)), broad)
    if not cv2.countNonZero(ink):
        return np.zeros((h, w), np.uint8)
    ink = cv2.resize(ink, (2 * ink.shape[1], 2 * ink.shape[0]), interpolation=cv2.INTER_NEAREST)
    ink = cv2.copyMakeBorder(ink, 0, h - ink.shape[0], 0, w - ink.shape[1], cv2.BORDER_REPLICATE)
    if margin_px > 0:
        ink = cv2.dilate(ink, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin_px + 1, 2 * margin_px + 1)))
    return ink
