"""Affine quantization arithmetic used at the model boundary (pure numpy).

TFLite stores an int8/uint8 tensor ``q`` for the real value ``x`` as
``x = scale * (q - zero_point)``.
"""
from __future__ import annotations

import numpy as np

_RANGES = {np.dtype(np.int8): (-128, 127), np.dtype(np.uint8): (0, 255)}


def quantize(x: np.ndarray, scale: float, zero_point: int, dtype) -> np.ndarray:
    """Quantize real values to ``dtype`` (int8 or uint8), rounding to nearest and saturating."""
    dtype = np.dtype(dtype)
    if dtype not in _RANGES:
        raise ValueError(f"quantize: dtype must be int8 or uint8, got {dtype}")
    if not scale > 0:
        raise ValueError(f"quantize: scale must be > 0, got {scale}")
    lo, hi = _RANGES[dtype]
    q = np.round(np.asarray(x, dtype=np.float32) / scale) + zero_point
    return np.clip(q, lo, hi).astype(dtype)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """Real values (float32) of quantized ``q``: ``scale * (q - zero_point)``."""
    return (scale * (np.asarray(q, dtype=np.float32) - zero_point)).astype(np.float32)


def is_identity_uint8(scale: float, zero_point: int, dtype) -> bool:
    """True when raw uint8 bytes can be fed unchanged (uint8 input with scale 1, zero point 0)."""
    return np.dtype(dtype) == np.uint8 and abs(scale - 1.0) < 1e-6 and zero_point == 0


def uint8_to_int8_offset(scale: float, zero_point: int) -> bool:
    """True when an int8 input takes raw bytes as ``byte - 128`` (scale 1, zero point -128)."""
    return abs(scale - 1.0) < 1e-6 and zero_point == -128
