"""Marker ink on the slide: pixels of a colour H&E never has (yellow, green, cyan, blue).

Pathologists circle tumour and surgeons ink margins with marker pens; the ink lies on the tissue
the model is asked to read. H&E-stained tissue is pink to purple: of the tissue pixels of 132
camera-sized fields of the data set's slides, 0.06 % have a hue from yellow through green to blue
(OpenCV hue 20–125, 40°–250°) with a saturation of 60 or more, and the windows where they gather
show the data set's own blue margin ink. Blue is also the hue of a bluish haematoxylin, so blue
counts only where it is broad (a stroke, not nuclei); violet-blue ink over tissue (250° and more)
is not told from haematoxylin at all. A tissue window with more than 5 % of ink pixels (the mask
grown by 2 px) is no call (:class:`~idc_edge.focus.ColourOptions.max_ink_fraction`).

The colours are read on 2×2 means (area averaging), so a camera's grain and sharpening halos,
whose hue jumps from pixel to pixel, are seldom taken for ink (lateral colour fringes are); a
marker's stroke is tens to hundreds of model pixels wide. Black ink has no hue: it is found only where it is as dark as
the exposure gate's unlit rule. Yellow or orange ink over tissue turns orange-brown, the colour of
blood and pigment, and is found only over glass or pale tissue.

Pure functions of an **RGB** uint8 image at the model's scale.
"""
from __future__ import annotations

import cv2
import numpy as np

#: OpenCV hue range (0–180 units: 40°–250°) of marker ink that H&E never shows: yellow to blue.
INK_HUES = (20, 125)

#: Least HSV saturation (0–255) of an ink pixel: glass and pale tissue of any hue stay below it.
MIN_INK_SATURATION = 60

#: From this OpenCV hue (200°) on, ink is blue, the hue of a bluish haematoxylin too (dense nuclei of
#: Ruifrok and Johnston's haematoxylin read 243°, saturation 148): blue counts as ink only where it is
#: broad, a 7 px disc fitting inside it on the halved image (14 model pixels, 56 µm). A blue marker
#: over 70 % of pink tissue reads 255°, purple's hue, and is not found.
BLUE_HUE = 100
_BROAD = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))

#: Pixels an ink mask is grown by: a stroke's soft edge tints the tissue beside it below the saturation
#: limit, and the model reads that tint too.
INK_MARGIN_PX = 2


def ink_pixels(rgb: np.ndarray, min_saturation: int = MIN_INK_SATURATION, margin_px: int = INK_MARGIN_PX) -> np.ndarray:
    """uint8 ``[H, W]`` mask of ``rgb`` (**RGB** uint8 ``[H, W, 3]``), 255 where a 2×2 mean of the
    image has an ink hue (:data:`INK_HUES`; blue ones only where broad, see :data:`BLUE_HUE`) and at
    least ``min_saturation``, grown by ``margin_px`` pixels (a disc)."""
    h, w = rgb.shape[:2]
    small = cv2.resize(rgb, (max(1, w // 2), max(1, h // 2)), interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
    blue = cv2.inRange(hsv, (BLUE_HUE, min_saturation, 0), (INK_HUES[1], 255, 255))
    if cv2.countNonZero(blue):  # only where broad: a stroke, not nuclei
        blue = cv2.morphologyEx(blue, cv2.MORPH_OPEN, _BROAD)
    ink = cv2.bitwise_or(cv2.inRange(hsv, (INK_HUES[0], min_saturation, 0), (BLUE_HUE - 1, 255, 255)), blue)
    ink = cv2.resize(ink, (w, h), interpolation=cv2.INTER_NEAREST)
    if margin_px > 0 and cv2.countNonZero(ink):
        ink = cv2.dilate(ink, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin_px + 1, 2 * margin_px + 1)))
    return ink
