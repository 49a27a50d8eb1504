"""Cheap tissue detection: which patches show tissue and are worth sending to the model.

A pixel is tissue when it is coloured (HSV saturation >= ``min_saturation``) and not dark
(value >= ``min_value``): bare glass and white background are unsaturated, out-of-focus or
unlit borders are dark. A patch is tissue when at least ``min_fraction`` of its pixels are.
Per-patch fractions come from one integral image, so the cost does not grow with overlap.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from . import validate
from .tiling import TileGrid, patch_sums


@dataclass(frozen=True)
class TissueMaskOptions:
    """Thresholds of the tissue mask; saturation and value are on OpenCV's 0–255 scale."""

    min_saturation: int = 20
    min_value: int = 40
    min_fraction: float = 0.2

    def __post_init__(self):
        for name in ("min_saturation", "min_value"):
            object.__setattr__(self, name, validate.whole_number(name, getattr(self, name), minimum=0, maximum=255,
                                                                 unit="OpenCV's 0-255 scale"))
        object.__setattr__(self, "min_fraction", validate.probability("min_fraction", self.min_fraction))


def tissue_pixels(rgb: np.ndarray, options: TissueMaskOptions = TissueMaskOptions(),
                  hsv: "np.ndarray | None" = None) -> np.ndarray:
    """uint8 mask (1 = tissue) of an RGB uint8 image (``hsv``: the image in OpenCV's HSV, when the
    caller already has it)."""
    if hsv is None:
        hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    # one OpenCV pass (255 where both hold), then 1: numpy's two comparisons and a cast took 6× as long
    inside = cv2.inRange(hsv, (0, options.min_saturation, options.min_value), (255, 255, 255))
    return cv2.bitwise_and(inside, 1)


def tissue_windows(fractions: np.ndarray, options: TissueMaskOptions = TissueMaskOptions()) -> np.ndarray:
    """bool ``[rows, cols]``: the windows at least ``options.min_fraction`` tissue (``fractions`` from
    :func:`patch_fractions`); the rest is background, never sent to the model."""
    return fractions >= options.min_fraction


class NoColourWarning(UserWarning):
    """Frames without any colour (:func:`colourless`), warned once by a detector in :func:`no_colour_message`'s
    words; a front end that says it in its own (``classify``'s count of images) ignores this category."""


def no_colour_message(what: str, scored: bool) -> str:
    """What to say when :func:`colourless` holds for ``what`` ("the frames", "3 image(s)"): when their
    windows are ``scored`` (no tissue mask and no colour gate) the scores mean nothing; else nothing in
    them is called (the tissue mask finds no stained tissue, or the colour gate makes it no call)."""
    return (f"{what} have no colour (a monochrome camera, a colour camera in a grey mode or with its saturation at "
            "zero, a raw sensor stream read as grey, or an unstained slide): "
            + ("with the tissue mask off every window is scored anyway, and those scores mean nothing" if scored else
               "stained tissue cannot be told in them, so nothing in them is called")
            + "; use the camera's colour mode with its saturation control at its default, and an H&E-stained slide")


def colourless(hsv: np.ndarray, max_saturation: int = 12, min_dark_share: float = 0.05) -> bool:
    """True when a frame (OpenCV HSV of an **RGB** or BGR uint8 image) shows something but no colour:
    at least ``min_dark_share`` of its pixels are darker than three quarters of its brightest, yet
    no pixel's saturation reaches ``max_saturation`` (0–255). A monochrome camera, or a raw sensor
    stream read as grey, looks like this; stained tissue never does, blank glass has nothing dark."""
    saturation = cv2.extractChannel(hsv, 1)
    if cv2.minMaxLoc(saturation)[1] >= max_saturation:
        return False
    value = cv2.extractChannel(hsv, 2)
    brightest = cv2.minMaxLoc(value)[1]
    dark = cv2.countNonZero(cv2.compare(value, 0.75 * brightest, cv2.CMP_LT))
    return dark >= min_dark_share * value.size


def patch_fractions(mask: np.ndarray, grid: TileGrid) -> np.ndarray:
    """Fraction (float32 ``[rows, cols]``) of tissue pixels in each grid patch of ``mask``."""
    total = patch_sums(cv2.integral(mask, sdepth=cv2.CV_32S), grid)
    return (total / float(grid.patch * grid.patch)).astype(np.float32)
