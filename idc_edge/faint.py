"""Colours too faint for stained tissue: a camera's saturation turned down, or a grey stream.

The tissue mask takes coloured pixels for tissue (:mod:`idc_edge.tissue`), and the model reads the
stains' colours. A camera whose saturation control is turned down keeps the picture's light and
dark but fades its colours: at saturation ×0.2 most tissue falls below the mask and is shown as
background, and what is still found agreed only 83–88 % with the clean field (IDC recall 0.94 →
0.36 on training patients' slides), without a word. A monochrome camera, or a raw sensor stream
read as grey, is the extreme of it.

:func:`colour_strength` reads how coloured the parts of a field that absorb light are: the 99th
percentile of their HSV saturation. Stained tissue always has strongly coloured parts (nuclei,
eosin-rich stroma), whatever the mask makes of it. Judged only where at least
:data:`MIN_ABSORBING_SHARE` of the field absorbs light, so that a slide's grey edge or a little
dust on bare glass is not judged in a camera-sized field (in a 160×120 px field a slide's edge can
fill that share: 0.5 % of such clean fields read faint). Pure functions of an **RGB** uint8 image at
the model's scale.
"""
from __future__ import annotations

from typing import Optional

import cv2
import numpy as np

from .colour import cumulative_counts, halved, nth_level
from .glare import absorbing, darkest_channel

#: Least share of a field's pixels that absorb light (:func:`~idc_edge.glare.absorbing`) for its colour
#: to be judged. Clean frames with a low reading were all a slide's grey edge or sparse debris on glass,
#: taking at most 9 % of the frame (every third frame of all 230 patients); tissue fields with a fifth
#: of their area tissue took at least 21 %, their colour faded or not.
MIN_ABSORBING_SHARE = 0.15

#: The default least :func:`colour_strength` (OpenCV's 0–255 saturation scale). Every third frame of
#: all 230 patients judged (1,821) reads at least 64; the conditions the model copes with at least 39
#: (veiling glare of 30 % of the glass; saturation ×0.5: 41–45), on 56 fields of 28 slides. Saturation
#: ×0.3 reads 25–53, ×0.2 17–36, ×0.12 10–22, a grey stream 0.
MIN_COLOUR_STRENGTH = 36


def colour_strength(rgb: np.ndarray, half: Optional[np.ndarray] = None, share: float = 0.99,
                    min_share: float = MIN_ABSORBING_SHARE, darkest: Optional[np.ndarray] = None) -> float:
    """The HSV saturation (OpenCV's 0–255 scale) reached by the most coloured ``1 - share`` of the
    pixels of a field that absorb light (:func:`~idc_edge.glare.absorbing`).

    Read on 2×2 means of the image (grain, which adds false colour to single pixels, halves).

    Args:
        rgb: **RGB** uint8 ``[H, W, 3]`` at the model's scale (the field, without padding).
        half: :func:`~idc_edge.colour.halved` of ``rgb``, or of an image that begins with ``rgb``,
            when the caller already has it.
        share: which percentile of their saturation is read (0.99: the 99th).
        min_share: least share of the field's pixels that must absorb light for it to be judged.
        darkest: :func:`~idc_edge.glare.darkest_channel` of the field's 2×2 means, when the caller
            already has it (the stray-light check reads it too).

    Returns:
        The saturation level; NaN when too little of the field absorbs light (glass, a slide's edge).
    """
    h, w = rgb.shape[:2]
    if h < 2 or w < 2:
        return float("nan")
    small = np.ascontiguousarray(halved(rgb) if half is None else half[: h // 2, : w // 2])
    mask = absorbing(darkest_channel(small) if darkest is None else darkest)
    n = cv2.countNonZero(mask)
    if n < min_share * mask.size:
        return float("nan")
    saturation = cv2.extractChannel(cv2.cvtColor(small, cv2.COLOR_RGB2HSV), 1)
    return float(nth_level(cumulative_counts(saturation, mask), share * n))
