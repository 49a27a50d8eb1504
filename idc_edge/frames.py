"""Normalising whatever a camera or file gives into an 8-bit BGR frame.

OpenCV delivers BGR (or BGRA, grayscale, 16-bit) arrays; the pipeline works on uint8 BGR
``[H, W, 3]`` and converts to the model's RGB only after rescaling, where it is cheap.
"""
from __future__ import annotations

import cv2
import numpy as np

from .errors import FrameError


def to_bgr8(frame) -> np.ndarray:
    """``frame`` as contiguous uint8 BGR ``[H, W, 3]``.

    Accepts grayscale ``[H, W]`` or ``[H, W, 1]``, BGR, BGRA, in any memory layout, and uint8,
    uint16 (top 8 bits), float in [0, 1] (NaN → 0, +inf → 255, outside [0, 1] clipped), bool and
    other integer dtypes (clipped to 0–255).

    Raises:
        FrameError: ``frame`` is None, empty, or not an image array.
    """
    if frame is None:
        raise FrameError("the frame is empty (the source returned no image)")
    if not isinstance(frame, np.ndarray):
        raise FrameError(f"a frame must be a numpy image array, got {type(frame).__name__}")
    if frame.size == 0 or frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[2] not in (1, 3, 4)):
        raise FrameError(f"a frame must be [H, W], [H, W, 1], [H, W, 3] or [H, W, 4], got shape {list(frame.shape)}")
    if frame.dtype != np.uint8:
        if frame.dtype == np.uint16:
            frame = (frame >> 8).astype(np.uint8)
        elif frame.dtype.kind == "f":
            if not np.isfinite(frame).all():
                frame = np.nan_to_num(frame, nan=0.0, posinf=1.0, neginf=0.0)
            with np.errstate(over="ignore"):  # huge values (float16 above 257) saturate at 255, as clipped
                frame = np.clip(frame.astype(np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        elif frame.dtype.kind in "iub":
            frame = np.clip(frame, 0, 255).astype(np.uint8)
        else:
            raise FrameError(f"frames of dtype {frame.dtype} are not supported; give uint8 or uint16 images")
    if frame.ndim == 2 or frame.shape[2] == 1:
        return cv2.cvtColor(frame.reshape(frame.shape[:2]), cv2.COLOR_GRAY2BGR)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    return np.ascontiguousarray(frame)
