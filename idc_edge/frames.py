"""Normalising whatever a camera or file gives into an 8-bit BGR frame.

OpenCV delivers BGR (or BGRA, grayscale, 16-bit) arrays; the pipeline works on uint8 BGR
``[H, W, 3]`` and converts to the model's RGB only after rescaling, where it is cheap.
"""
from __future__ import annotations

import math
import warnings
from typing import Optional

import cv2
import numpy as np

from .errors import FrameError, OptionError
from .fileio import short


_warned: set = set()
#: how an API caller overrides the bit depth read from the values; the command line has no such
#: option and says :data:`idc_edge.cli.options.CLI_BITS_HINT` instead
BITS_HINT = "pass bits= to to_bgr8"


def _warn_once(key, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        warnings.warn(message, stacklevel=3)


def _depth(top: int) -> int:
    """Bits of the range a largest value ``top`` belongs to: 8, 10, 12, 14, 16, ... (even, >= 8)."""
    bits = max(8, int(top).bit_length())
    return bits + (bits & 1)


def bit_depth(frame) -> Optional[int]:
    """The bit depth :func:`to_bgr8` would guess for an integer frame wider than 8 bits (10, 12, ...),
    or None for uint8, bool, float and anything that is not an array."""
    if not isinstance(frame, np.ndarray) or frame.size == 0 or frame.dtype.kind not in "iu" \
            or frame.dtype == np.uint8:
        return None
    return _depth(max(0, int(frame.max())))


class StreamDepth:
    """The bit depth a stream's integer frames have shown so far, which only grows: once a frame has
    shown 12-bit values, a later dark frame of the same camera is still read as 12-bit (guessed alone,
    a frame of values up to 900 is read as 10-bit, 4× brighter than it is, and one up to 200 as 8-bit).
    One per stream: every source has its own, and so has each call of ``Detector.stream``."""

    def __init__(self):
        self.depth = 8

    def to_bgr8(self, frame) -> np.ndarray:
        """:func:`to_bgr8` of ``frame`` at the deepest depth the stream has shown (raises as it does)."""
        depth = bit_depth(frame)
        if depth is not None:
            self.depth = max(self.depth, depth)
            if self.depth > depth:
                return to_bgr8(frame, bits=self.depth)
        return to_bgr8(frame)


def _integers_to_8bit(frame: np.ndarray, bits: Optional[int]) -> np.ndarray:
    if frame.dtype == np.int8:  # no camera gives int8: it is the model-input convention, byte - 128
        if bits is None:
            _warn_once(("int8",), "int8 frames are read as byte - 128 (the int8 model-input convention: -128 "
                                  "black, 127 white); give uint8 images if that is wrong")
        return frame.view(np.uint8) ^ np.uint8(0x80)
    if frame.dtype.kind == "i":
        low = int(frame.min())
        if low < 0:
            _warn_once((frame.dtype.str, "negative"),
                       f"{frame.dtype} frames with negative values (down to {low}) have them read as black; "
                       "give unsigned images (add the offset first if the values are centred on 0)")
        frame = np.maximum(frame, 0)
    top = int(frame.max())
    depth = bits or _depth(top)
    if bits is None and depth > 8 and (frame.dtype.itemsize * 8 != depth):
        _warn_once((frame.dtype.str, depth),
                   f"{frame.dtype} frames with values up to {(1 << depth) - 1} are read as {depth}-bit "
                   f"(scaled by 1/{1 << (depth - 8)}); if the camera's bit depth differs, " + BITS_HINT)
    if depth > 8:
        frame = frame >> (depth - 8)
    if frame.dtype.itemsize > 1:
        frame = np.minimum(frame, 255)
    return frame.astype(np.uint8)


#: how far past 0-1 (or -1..1) a float frame's values may reach and still be read as that range (units of the
#: range's top): resampling (bicubic, Lanczos), sharpening and colour correction or white-balance gains
#: overshoot a 0-1 image by a few to tens of percent (a bicubic 2x upscale of a slide field: 1.047 at most).
#: Its largest value decided alone, one such pixel above 1 had the whole frame read as 0-255: black, no
#: tissue, no word. A 0-255 frame whose largest value is 2 is black (under 1 % of its range) either way.
FLOAT_OVERSHOOT = 1.0
#: a float frame within the overshoot of -1..1 is a network's normalised -1..1 image only when its darkest
#: value is below this (the range's units): H&E nuclei lie below -0.59 in every tissue field of the data
#: set's slides read so, while a 0-1 image's undershoot is shallower (a bicubic or Lanczos resampling of a
#: slide field: above -0.01; an unsharp mask of amount 1: -0.33), and one such pixel below 0 had a 0-1
#: frame read as -1..1: washed out, no call.
MINUS_ONE_BELOW = -0.35


def float_range(low: float, top: float) -> Optional[tuple[float, float]]:
    """The range (black, white) a float frame whose finite values lie from ``low`` to ``top`` is read in
    when it is a normalised image: (-1, 1), or (0, 1) also when a few values overshoot it (see
    :data:`FLOAT_OVERSHOOT`, :data:`MINUS_ONE_BELOW`); None when its values reach past any such range
    (a 0-255 or deeper frame). Pure: the extremes alone decide."""
    if low < -1.0 - FLOAT_OVERSHOOT or top > 1.0 + FLOAT_OVERSHOOT:
        return None
    return (-1.0, 1.0) if low < MINUS_ONE_BELOW else (0.0, 1.0)


def _normalised_to_8bit(frame: np.ndarray, black: float, low: float, top: float, all_finite: bool) -> np.ndarray:
    """A float frame in ``black``..1 (see :func:`float_range`) as uint8, values beyond the range clipped
    (their share warned once: a frame beyond it had read as 0-255, all black)."""
    name = f"{black:g}-1" if black == 0 else "-1..1"
    if black < 0:
        _warn_once(("float", -1), f"{frame.dtype} frames with values from -1 to 1 are read as -1..1 (black..white); "
                                  "give 0-1 floats if that is wrong")
    if low < black or top > 1.0:
        with np.errstate(invalid="ignore"):
            beyond = np.count_nonzero((frame < black) | (frame > 1.0))
        _warn_once(("float", "overshoot"),
                   f"{frame.dtype} frames with values mostly within {name} and some beyond it (from {low:.3g} to "
                   f"{top:.3g}, {100 * beyond / frame.size:.2g} % of the first such frame: a resampling's, "
                   f"sharpening's or colour correction's overshoot) are read as {name}, the values beyond it as "
                   f"black or white; clip the frames to {name}, or {BITS_HINT} if they are 0-255")
    if not all_finite:
        frame = np.nan_to_num(frame, nan=black, posinf=1.0, neginf=black)
    scale = 255.0 / (1.0 - black)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.clip((frame - black) * scale + 0.5, 0, 255).astype(np.uint8)


def _floats_to_8bit(frame: np.ndarray, bits: Optional[int]) -> np.ndarray:
    frame = frame.astype(np.float32, copy=False) if frame.dtype.itemsize < 4 else frame
    finite = np.isfinite(frame)
    all_finite = bool(finite.all())
    if not all_finite:  # a camera or file gives none: a broken conversion upstream, whose pixels are lost
        _warn_once(("float", "not finite"),
                   f"{frame.dtype} frames with NaN or infinite values ({100 * (1 - finite.mean()):.3g} % of the first "
                   "such frame) have them read as black (NaN, -inf) or white (+inf), and no tissue is found there; "
                   "check the conversion that made the frames")
    top = float(frame.max() if all_finite else (frame[finite].max() if finite.any() else 0.0))
    low = float(frame.min() if all_finite else (frame[finite].min() if finite.any() else 0.0))
    normalised = float_range(low, top) if bits is None else None
    if normalised is not None:
        return _normalised_to_8bit(frame, normalised[0], low, top, all_finite)
    if bits is not None:
        full = float((1 << bits) - 1)
    elif top <= 255.0:
        full = 255.0
        _warn_once(("float", 8), f"{frame.dtype} frames with values above {1 + FLOAT_OVERSHOOT:g} are read as 0-255; "
                                 f"give 0-1 floats or {BITS_HINT} if that is wrong")
    else:
        depth = _depth(int(math.ceil(top)))
        # Past 32 bits no camera container exists: scale by the largest value itself
        # (also keeps 1 << depth from overflowing a float for values near 1e308).
        full = float((1 << depth) - 1) if depth <= 32 else top
        _warn_once(("float", depth), f"{frame.dtype} frames with values above 255 are read as "
                                     f"0-{int(full)} ({depth}-bit); {BITS_HINT} if that is wrong")
    if not all_finite:
        frame = np.nan_to_num(frame, nan=0.0, posinf=full, neginf=0.0)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.clip(frame * (255.0 / full) + 0.5, 0, 255).astype(np.uint8)


def _check_new_buffers(frame: np.ndarray) -> None:
    """Refuse, before allocating, the buffers converting ``frame`` makes: the 8-bit BGR frame (unless
    ``frame`` already is one, contiguous) and, for other dtypes, a working copy of up to 8 bytes per
    value. A frame's size says nothing of its memory when it is a view (``np.broadcast_to``, a zero
    stride): a 100000×100000 px one raised numpy's bare ``MemoryError`` here.

    Raises:
        MemoryBudgetError: a buffer would exceed the memory budget (``$IDC_EDGE_MEMORY_MB``).
    """
    from .budget import check_buffer

    h, w = frame.shape[:2]
    channels = 1 if frame.ndim == 2 else frame.shape[2]
    if frame.dtype == np.uint8 and channels == 3 and frame.flags.c_contiguous:
        return  # used as it is
    what, fix = f"converting a {w}×{h} px {frame.dtype} frame to 8-bit BGR", "use smaller frames"
    check_buffer((h, w, 3), 1, what, fix)
    if frame.dtype not in (np.uint8, np.bool_):
        check_buffer((h, w, channels), max(4, frame.dtype.itemsize), what, fix)


def over_white(bgra: np.ndarray) -> tuple[np.ndarray, bool]:
    """An integer BGRA image ``[H, W, 4]`` as BGR of the same dtype over white, and whether any of it
    was transparent. Pure.

    A transparent part (alpha below the dtype's top) is shown over white, as slide viewers show a
    scan's unscanned area: empty glass, not the colour stored under it (often black, or whatever the
    exporting program left), which was scored as tissue. Alpha is straight (not premultiplied), as PNG,
    WebP and TIFF's unassociated alpha store it. An alpha that is 0 everywhere is a fourth channel of
    padding (a 32-bit BMP's), not transparency: dropped like an opaque one.
    """
    colour, alpha = bgra[..., :3], bgra[..., 3:]
    top = int(np.iinfo(bgra.dtype).max)
    low, high = int(alpha.min()), int(alpha.max())
    if low == top or high == 0:
        return np.ascontiguousarray(colour), False
    wide = np.uint32 if bgra.dtype.itemsize <= 2 else np.float64
    a = alpha.astype(wide)
    mixed = (colour.astype(wide) * a + top * (top - a) + top // 2) // top
    return mixed.astype(bgra.dtype), True


def to_bgr8(frame, bits: Optional[int] = None) -> np.ndarray:
    """``frame`` as contiguous uint8 BGR ``[H, W, 3]``, scaled by the range its data really use.

    Accepts grayscale ``[H, W]`` or ``[H, W, 1]``, BGR, BGRA, in any memory layout and dtype.
    The range rule (cameras put 10, 12 or 14 significant bits in a 16-bit container):

    - uint8: as is. bool: False 0, True 255.
    - int8: byte - 128 (-128 black, 127 white), the int8 model-input convention.
    - other integers: negative values are 0 (warned once); the bit depth is the smallest even number of
      bits >= 8 that holds the frame's largest value (a 12-bit camera, values <= 4095, is
      12-bit) and the values are divided by ``2 ** (depth - 8)``. A 16-bit frame using the
      full range is its top 8 bits; one with values <= 255 is taken as 8-bit.
    - floats: finite values within -2..2 (a normalised image, a few values overshooting it: see
      :func:`float_range`) mean -1..1 when the darkest is below -0.35 (a network's normalised
      image), else 0-1; values beyond that range are black or white (warned once with their
      share). Else largest finite value <= 255 means 0-255; above, the bit depth rule as for
      integers; values below the range are 0. NaN is black, -inf black, +inf the top of the range.

    The depth is guessed per frame; each guess other than uint8, full-range integers and 0-1
    floats is warned about once per process. A very dark frame of a deep camera can look
    brighter than it is: pass the camera's ``bits`` (8-32) to use that range instead.

    Raises:
        FrameError: ``frame`` is None, empty, or not an image array.
        OptionError: ``bits`` is not a whole number from 8 to 32.
        MemoryBudgetError: converting it would need a buffer over the memory budget (a huge view).
    """
    if bits is not None and (not isinstance(bits, (int, np.integer)) or isinstance(bits, bool) or not 8 <= bits <= 32):
        raise OptionError(f"bits must be a whole number of bits from 8 to 32, got {short(bits)}")
    if frame is None:
        raise FrameError("the frame is empty (the source returned no image)")
    if not isinstance(frame, np.ndarray):
        raise FrameError(f"a frame must be a numpy image array, got {type(frame).__name__}")
    if frame.size == 0 or frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[2] not in (1, 3, 4)):
        raise FrameError(f"a frame must be [H, W], [H, W, 1], [H, W, 3] or [H, W, 4], got shape {list(frame.shape)[:8]}")
    _check_new_buffers(frame)
    if frame.dtype != np.uint8 or bits not in (None, 8):
        if frame.dtype == np.bool_:
            frame = frame.view(np.uint8) * np.uint8(255)
        elif frame.dtype.kind in "iu":
            frame = _integers_to_8bit(frame, None if bits is None else int(bits))
        elif frame.dtype.kind == "f":
            frame = _floats_to_8bit(frame, None if bits is None else int(bits))
        else:
            raise FrameError(f"frames of dtype {frame.dtype} are not supported; give uint8 or uint16 images")
    if frame.ndim == 2 or frame.shape[2] == 1:
        return cv2.cvtColor(frame.reshape(frame.shape[:2]), cv2.COLOR_GRAY2BGR)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    return np.ascontiguousarray(frame)
