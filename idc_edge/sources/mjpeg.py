"""Decode only what is needed: MJPG camera frames decoded straight at ½, ¼ or ⅛ size.

A USB camera at 1 µm/px sends 1920×1080 JPEGs that the detector shrinks 4× to the model's
4 µm/px. libjpeg can decode at 1/2, 1/4 or 1/8 scale by skipping most of the inverse DCT, which
costs far less than a full decode followed by a shrink (about a fifth of a frame's CPU here,
``benchmarks/mjpeg_decode.py``). With ``CAP_PROP_CONVERT_RGB`` off, OpenCV's V4L2 backend hands
over the camera's raw JPEG bytes; :class:`ReducedMjpeg` decodes them with
``cv2.IMREAD_REDUCED_COLOR_N``. Frames the consumer never takes (the camera is faster than the
model) are then never decoded at all.

Where a display needs the picture (a window, a video, the live view), the reduction is capped
at ½, so the overlay stays sharp enough to read.

A Motion-JPEG network stream (an IP camera's or a phone's ``http://.../video``) is read the same way at
full size (``factor`` 1): OpenCV's own decoder scales every frame to the first frame's size, so a stream
whose camera was switched to another resolution mid-stream came stretched to the old one, silently.
"""
from __future__ import annotations

from typing import Optional

import cv2
import numpy as np

from ..budget import check_buffer
from ..errors import FrameError, MemoryBudgetError
from ..fileio import image_dimensions
from ..jpegnotes import jpeg_warnings

#: camera frames are shown as stored, never turned by an EXIF orientation (see idc_edge.orientation)
_FLAGS = {f: flag | cv2.IMREAD_IGNORE_ORIENTATION for f, flag in
          ((1, cv2.IMREAD_COLOR), (2, cv2.IMREAD_REDUCED_COLOR_2), (4, cv2.IMREAD_REDUCED_COLOR_4), (8, cv2.IMREAD_REDUCED_COLOR_8))}


def reduction_for(um_per_px: float, model_um_per_px: float, display: bool = False) -> int:
    """The largest of 1, 2, 4, 8 by which frames at ``um_per_px`` may be decoded smaller and still be
    at least as fine as the model's ``model_um_per_px`` (at most 2 with a ``display``)."""
    shrink = float(model_um_per_px) / float(um_per_px)
    factor = 1
    for f in (2, 4, 8):
        if f <= shrink + 1e-9:
            factor = f
    return min(factor, 2) if display else factor


class ReducedMjpeg:
    """Decodes one camera's frames at ``1 / factor`` of their size (``factor`` 2, 4 or 8; 1: each frame at
    its own size, for a stream whose frame size may change).

    ``decode(frame)`` takes what the capture gave: raw JPEG bytes (a 1-D or ``[1, N]`` uint8
    array, with ``CAP_PROP_CONVERT_RGB`` off) are decoded reduced; an already decoded image (a
    backend that ignores the property) is shrunk by area averaging, so the result is always the
    same size for the same camera mode.
    """

    def __init__(self, factor: int):
        if factor not in _FLAGS:
            raise ValueError(f"reduced decoding is by 1, 2, 4 or 8, got {factor!r}")
        self.factor = factor
        self.raw_frames = 0     # frames that came as JPEG bytes
        self.decoded_frames = 0  # frames that came decoded and were shrunk instead

    def decode(self, frame: np.ndarray, notes: Optional[list] = None) -> Optional[np.ndarray]:
        """BGR uint8 frame at ``1 / factor`` size, or None when the bytes are not a decodable JPEG;
        libjpeg's warnings about the bytes go into ``notes`` (:mod:`idc_edge.jpegnotes`), never on the
        terminal."""
        if frame.ndim == 1 or (frame.ndim == 2 and frame.shape[0] == 1):
            self.raw_frames += 1
            data = np.ascontiguousarray(frame).reshape(-1)
            dims = image_dimensions(data[:65536].tobytes())
            if dims is not None:  # a damaged header claiming gigapixels is not decoded
                f = self.factor
                try:
                    check_buffer(((dims[0] + f - 1) // f, (dims[1] + f - 1) // f, 3), 1, "a camera frame", "")
                except MemoryBudgetError:
                    return None
            with jpeg_warnings() as said:
                image = cv2.imdecode(data, _FLAGS[self.factor])
            if notes is not None:
                notes.extend(said)
            return image
        self.decoded_frames += 1
        if self.factor == 1:
            return frame
        h, w = frame.shape[:2]
        size = ((w + self.factor - 1) // self.factor, (h + self.factor - 1) // self.factor)
        return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def decode_or_skip(decoder: Optional[ReducedMjpeg], frame, notes: Optional[list] = None):
    """``frame`` through ``decoder`` (unchanged without one; libjpeg's warnings into ``notes``);
    raises :class:`FrameError` for bad bytes."""
    if decoder is None or not isinstance(frame, np.ndarray):
        return frame
    image = decoder.decode(frame, notes)
    if image is None:
        raise FrameError("the camera sent a JPEG frame that cannot be decoded")
    return image
