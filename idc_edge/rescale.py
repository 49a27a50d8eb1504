"""Rescaling frames to the model's microns per pixel, fast on small CPUs (OpenCV only).

A camera at 1.0 µm/px gives frames 4× finer than the model's 4 µm/px, so most frames are
shrunk 2–8× before tiling. ``cv2.INTER_AREA`` is the right filter for shrinking (each output
pixel is the mean of the input pixels it covers, so nothing aliases), but OpenCV's fast path
only covers an exact factor of 2 for 8-bit images: one 4× ``INTER_AREA`` step over a
1920×1080 frame costs about as much as four 2× steps over the same frame. Shrinking by
successive exact halvings and one last area step gives the same box average (to ±1 grey
level of rounding per halving) in about a third of the time.
"""
from __future__ import annotations

import cv2
import numpy as np


def _target(size: tuple[int, int], what: str) -> tuple[int, int]:
    """``size`` as (width, height) whole pixels, each >= 1, else ValueError naming ``what``."""
    tw, th = (int(size[0]), int(size[1]))
    if tw < 1 or th < 1:
        raise ValueError(f"{what}: size must be (width, height) >= 1 pixel each, got {size!r}")
    return tw, th


def rescale(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` resized to ``size`` = (width, height) pixels; channel order is kept (BGR stays BGR).

    Shrinking is an area (box) average, done as exact halvings while the image is at least twice
    the target in both directions and has even sides, then one ``INTER_AREA`` step; enlarging is
    bilinear. An image already of ``size`` is returned as is (not copied).

    Raises:
        ValueError: ``size`` is not two whole numbers >= 1.
    """
    tw, th = _target(size, "rescale")
    h, w = image.shape[:2]
    if (w, h) == (tw, th):
        return image
    if tw > w or th > h:
        interp = cv2.INTER_LINEAR if (tw >= w and th >= h) else cv2.INTER_AREA
        return cv2.resize(image, (tw, th), interpolation=interp)
    while w >= 2 * tw and h >= 2 * th and w % 2 == 0 and h % 2 == 0:
        w, h = w // 2, h // 2
        image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
    if (w, h) != (tw, th):
        image = cv2.resize(image, (tw, th), interpolation=cv2.INTER_AREA)
    return image


def letterbox(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` fitted inside ``size`` = (width, height) pixels at its own aspect ratio, centred,
    the rest black: a portrait frame in a landscape video keeps its shape (bars left and right)
    instead of being stretched. Channel order is kept; an image already of ``size`` is returned as is.

    Raises:
        ValueError: ``size`` is not two whole numbers >= 1.
    """
    tw, th = _target(size, "letterbox")
    h, w = image.shape[:2]
    if (w, h) == (tw, th):
        return image
    scale = min(tw / w, th / h)
    fw, fh = min(tw, max(1, round(w * scale))), min(th, max(1, round(h * scale)))
    out = np.zeros((th, tw) + image.shape[2:], image.dtype)
    x0, y0 = (tw - fw) // 2, (th - fh) // 2
    out[y0:y0 + fh, x0:x0 + fw] = rescale(image, (fw, fh))
    return out
