"""Whether a field's two stains are coloured as H&E's are: the one that absorbs less green is the bluer.

Haematoxylin absorbs red light about twice as strongly as blue (it looks blue-purple); eosin
absorbs green most, and blue a little more than red (it looks pink). In optical density (OD, minus
the log of the share of light let through, per channel) a stained pixel is a sum of the two stains'
directions, so a field's pixels lie in a plane between them; the two directions are found at the
extreme angles of the pixels in that plane (the method of Macenko et al., "A method for normalizing
histology slides for quantitative analysis", ISBI 2009), and :func:`stain_reading` gives how blue
each looks.

A frame whose red and blue are swapped (RGB given where OpenCV's BGR is expected, by a camera, a
pipeline or a caller) shows the same field with haematoxylin redder than eosin: every reading
changes sign, and the model's decisions agree with the right colours' on about half the windows.
A camera's hue control turned by +30 to +40° does much the same. Multiplicative colour casts and
exposure cancel (the OD is taken against the frame's brightest level per channel); a gamma scales
both stains alike.

Pure functions of an **RGB** uint8 image at the model's scale.
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import cv2
import numpy as np

from .colour import every_second, halved, halved_mask, white_levels

#: ``-log(v + 1)`` for every 8-bit level: a pixel's optical density is ``_NEG_LOG[0, v] - _NEG_LOG[0, white]``.
_NEG_LOG = -np.log(np.arange(1.0, 257.0)).astype(np.float32).reshape(1, 256)

#: Full-size pixels one point of the reading stands for (the image halved twice along each axis).
_PER_POINT = 16

#: Least :attr:`StainReading.contrast` a field may have to be called. 264 camera-sized fields (480×270
#: px at 4 µm/px) of the 33 slides that give them read 0.61 (1st percentile) to 2.5 (99th); one read
#: −1.5, an edge painted with orange-brown pigment or marking ink (a third stain). Swapped, 263 of
#: them read below the limit (99th percentile −0.61); a camera hue turned +30° / +40° brings 219 / 260
#: below it, +20° 58 (the model still agrees 97 % there), −20° to −40° none. Grain of 250 and 1000 e⁻,
#: JPEG 50, good and typical USB cameras, defocus σ 2 µm, exposure ×0.5, gamma 1.5, 20 % casts,
#: saturation, contrast, sharpening and faded stains leave 0–2 of the 264 below it. Tissue coloured
#: by one stain reads near 0, so the limit is below 0: only a clearly inverted field is no call.
MIN_STAIN_BLUENESS = -0.25

#: Hues (OpenCV's 0–180 scale: 8–113 is 16°–226°) left out of the reading where saturated (at least
#: :data:`_MIN_THIRD_SATURATION`): orange, brown, yellow and green, and the azure and cyan they turn into
#: with red and blue swapped. H&E and swapped H&E both lie between 240° and 15° (purple to red); a third
#: colour inside the band, brown pigment or the orange of blood, took haematoxylin's place at the
#: extremes and read a field of patient 8867 with 2 % pigment as swapped (−0.88) and the same field
#: swapped as H&E (+0.88). Left out, they read +1.68 and −1.70; the 132 calibration fields, swapped or
#: with the camera's hue turned, read as before (clean 0.64 at the 1st percentile, swapped all below).
THIRD_COLOUR_HUES = (8, 113)
_MIN_THIRD_SATURATION = 30

#: Hue ranges (OpenCV's 0–180 scale) of blood's saturated red, −16° to +16° (172–180 and 0–8), and of
#: what it turns into with red and blue swapped, 224°–256° (112–128): left out of the reading where
#: at least :data:`MIN_BLOOD_SATURATION` saturated. Red cells in a vessel absorb blue more than green
#: (OD about 0.3, 1.2, 1.3 here), so they absorb a smaller share of green than a pale haematoxylin and
#: took its place at the extremes: two frames of README's first command (patient 8867, blood-filled
#: vessels) read −1.3 and −1.4, and the same frames swapped +1.3 and +1.4. Swapped, blood is a
#: saturated blue that passed for haematoxylin, hence the mirror range. Over every third frame of all
#: 230 patients swept as a stage (7,146 judged), clean frames called swapped fell from 68 (0.95 %, 18
#: patients) to 22 (0.31 %, 9 patients; the rest are sparse frames of a few scattered patches), swapped
#: frames caught rose from 98.8 % to 99.4 %; 256 camera-sized fields of 32 slides, clean, swapped and
#: under grain, casts, a USB camera and stain changes, read as before.
BLOOD_HUES = ((172, 180), (0, 8), (112, 128))
MIN_BLOOD_SATURATION = 140


def _blueness(direction: np.ndarray) -> float:
    """log(OD red / OD blue) of a stain direction (RGB), each floored at 0.001 of the total: how
    much more red than blue the stain absorbs, so how blue it looks."""
    floor = 1e-3 * float(np.abs(direction).sum())
    return float(np.log(max(direction[0], floor) / max(direction[2], floor)))


class StainReading(NamedTuple):
    """The two stain directions of a field, each as its blueness: log(OD red / OD blue).

    Attributes:
        haematoxylin: blueness of the direction that absorbs the smaller share of green.
        eosin: blueness of the other direction. H&E's eosin absorbs blue more than red (it looks
            pink): 264 fields of the data set read −2.7 to −0.4 (99th percentile).
    """

    haematoxylin: float = float("nan")
    eosin: float = float("nan")

    @property
    def contrast(self) -> float:
        """How much bluer the haematoxylin is than the eosin (``haematoxylin − eosin``): about
        0.6–2.5 for H&E as the data set shows it; its negative when red and blue are swapped."""
        return self.haematoxylin - self.eosin


def stain_reading(rgb: np.ndarray, tissue_px: np.ndarray, min_px: int = 5_000, min_density: float = 0.15,
                  extreme: float = 0.01, half: Optional[np.ndarray] = None,
                  half_tissue: Optional[np.ndarray] = None) -> StainReading:
    """The blueness of a field's two stains (see :class:`StainReading`).

    The two directions are where the tissue pixels' OD lies at the ``extreme`` and ``1 − extreme``
    quantiles of angle in its principal plane, leaving out saturated pixels of a third colour
    (:data:`THIRD_COLOUR_HUES`) and of blood (:data:`BLOOD_HUES`). Read on 2×2 means of the image (a camera's grain
    halves), every second one along each axis (the extremes are found as well, at a sixteenth of the
    cost of the full image), over tissue pixels whose summed OD is at least ``min_density`` (glass and
    the palest tissue only add grain to the directions).

    Args:
        rgb: **RGB** uint8 ``[H, W, 3]`` at the model's scale.
        tissue_px: uint8/bool ``[H, W]``, non-zero on tissue.
        min_px: least stained tissue pixels (of the full-size image) to judge on.
        min_density: least summed OD (natural log units) of a pixel to count as stained.
        extreme: quantile of angle taken as each stain's direction (0.01: the 1st and 99th percentiles).
        half: :func:`~idc_edge.colour.halved` of ``rgb``, or of an image that begins with ``rgb``
            (the field with padding beyond it), when the caller already has it.
        half_tissue: :func:`~idc_edge.colour.halved_mask` of ``tissue_px``, or of a mask that begins
            with it, when the caller already has it.

    Returns:
        The reading; both NaN when fewer than ``min_px`` stained tissue pixels.
    """
    h, w = rgb.shape[:2]
    if h < 2 or w < 2:
        return StainReading()
    small = every_second(halved(rgb) if half is None else half[: h // 2, : w // 2])
    mask = every_second(halved_mask(tissue_px) if half_tissue is None else half_tissue[: h // 2, : w // 2])
    hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
    third = cv2.inRange(hsv, (THIRD_COLOUR_HUES[0], _MIN_THIRD_SATURATION, 0), (THIRD_COLOUR_HUES[1], 255, 255))
    for low, high in BLOOD_HUES:
        third |= cv2.inRange(hsv, (low, MIN_BLOOD_SATURATION, 0), (high, 255, 255))
    mask = cv2.bitwise_and(mask, cv2.bitwise_not(third))  # neither H&E nor swapped H&E: pigment, blood, ink
    if _PER_POINT * cv2.countNonZero(mask) < min_px:
        return StainReading()
    # OD against the brightest level per channel, ≥ 0 below it (a float lookup table: no numpy pass per pixel)
    od = cv2.subtract(cv2.LUT(small, _NEG_LOG), tuple(float(v) for v in _NEG_LOG[0, white_levels(small)]) + (0.0,))
    stained = cv2.bitwise_and(cv2.compare(cv2.transform(od, np.ones((1, 3), np.float32)), min_density, cv2.CMP_GE),
                              cv2.compare(mask, 0, cv2.CMP_GT))
    points = np.take(od.reshape(-1, 3), np.flatnonzero(stained), axis=0)
    if _PER_POINT * len(points) < min_px:
        return StainReading()
    _, vectors = np.linalg.eigh((points.T @ points).astype(np.float64))  # ascending: the last two span the plane
    plane = vectors[:, [2, 1]]
    if plane[:, 0].sum() < 0:
        plane[:, 0] *= -1.0
    projected = points @ plane.astype(np.float32)
    angles = np.arctan2(projected[:, 1], projected[:, 0])
    k = [int(extreme * (len(angles) - 1)), int(round((1.0 - extreme) * (len(angles) - 1)))]
    directions = []
    for a in np.partition(angles, k)[k]:
        d = plane @ np.array([np.cos(a), np.sin(a)])
        directions.append(d * np.sign(d.sum()))
    haematoxylin, eosin = sorted(directions, key=lambda d: d[1] / max(float(np.abs(d).sum()), 1e-12))
    return StainReading(_blueness(haematoxylin), _blueness(eosin))
