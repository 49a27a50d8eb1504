"""What to say about patch images whose result means little, said the same by ``classify`` and ``evaluate``.

A patch image (one model patch or smaller, read whole) can hold nothing a score can rest on: no
colour at all (a grey PNG, a monochrome camera's frame, an unstained slide) or less than a quarter
of a patch (a 1-row strip, a 1×1 px crop), the rest being white padding. ``run`` warns about such
frames (:mod:`idc_edge.detector`); :class:`PatchNotes` collects such patches as they are read and
gives the same warnings once each, with a count and the first example, whichever command read them.
"""
from __future__ import annotations

import os
from typing import Optional, Union

import cv2
import numpy as np

from .fileio import is_regular_file, name
from .jpegquality import HEADER_BYTES, changes_decisions, jpeg_quality, jpeg_warning
from .tiling import tiny_note
from .tissue import colourless, no_colour_message

Path = Union[str, os.PathLike]


class PatchNotes:
    """Patch images noted as colourless or too small, for one warning each at the end.

    Args:
        size: the model's patch side, px.
    """

    def __init__(self, size: int):
        self.size = int(size)
        self.colourless: list[Path] = []
        self.tiny: list[tuple[Path, int, int]] = []  # (path, width px, height px) as read
        self.jpeg: list[tuple[Path, int, float]] = []  # (path, quality, µm/px) of JPEG images where it matters

    def note_size(self, path: Path, width: int, height: int) -> None:
        """Note ``path`` when its ``width`` × ``height`` px (as read, before padding) is under a quarter patch."""
        if tiny_note(width, height, self.size):
            self.tiny.append((path, int(width), int(height)))

    def note_colour(self, path: Path, rgb: np.ndarray, hsv: Optional[np.ndarray] = None) -> None:
        """Note ``path`` when its padded RGB uint8 patch ``rgb`` (``hsv``: it in OpenCV's HSV) has no colour."""
        if colourless(cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV) if hsv is None else hsv):
            self.colourless.append(path)

    def note_no_colour(self, path: Path) -> None:
        """Note ``path``, an image larger than a patch that a detector found has no colour (``FrameResult.no_colour``):
        said in the one warning with the patches, not also in the detector's words about frames."""
        self.colourless.append(path)

    def note_jpeg(self, path: Path, um_per_px: float) -> None:
        """Note ``path`` when it is a JPEG compressed hard enough to change decisions at ``um_per_px`` µm per
        pixel (:func:`~idc_edge.jpegquality.jpeg_warning`). Only a regular file is read again for its header: a
        pipe was read once already (opening it again would wait for a writer that never comes)."""
        if not is_regular_file(path):
            return
        try:
            with open(path, "rb") as f:
                quality = jpeg_quality(f.read(HEADER_BYTES))
        except OSError:
            return
        if quality is not None and changes_decisions(quality, um_per_px):
            self.jpeg.append((path, quality, float(um_per_px)))

    def messages(self, what: str, masked: bool, scale_hint: str) -> list[str]:
        """The warnings, without the ``idc-edge: warning:`` prefix.

        Args:
            what: what the patches are called, plural (``"image(s)"``, ``"patch(es)"``).
            masked: whether patches without tissue were left unscored (else every one was scored,
                and a colourless one's score means nothing).
            scale_hint: what the command takes, said after a too-small example
                (``"classify takes patch images at the model's scale"``).
        """
        out = []
        if self.colourless:
            out.append(f"{no_colour_message(f'{len(self.colourless)} {what}', scored=not masked)} "
                       f"(e.g. {name(self.colourless[0])})")
        if self.tiny:
            path, w, h = self.tiny[0]
            out.append(f"{len(self.tiny)} {what} are too small, e.g. {name(path)} is {w}×{h} px, "
                       f"{tiny_note(w, h, self.size)}; {scale_hint}")
        if self.jpeg:
            path, _, um_per_px = self.jpeg[0]
            worst = min(q for _, q, _ in self.jpeg)
            out.append(jpeg_warning(f"{len(self.jpeg)} {what}", worst, um_per_px, name(path)))
        return out
