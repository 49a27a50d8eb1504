"""What every frame source is: :class:`Frame` (one BGR image with its index and time) and
:class:`FrameSource` (iterate for frames, count what was skipped, close)."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterator, Optional

import numpy as np

from ..errors import ClosedError, FrameError
from ..frames import StreamDepth

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Frame:
    """One frame: ``index`` from 0, ``timestamp`` in seconds, ``image`` uint8 BGR ``[H, W, 3]``;
    ``damage``: libjpeg's words when the frame's JPEG data were damaged (decoded in part), else None."""

    index: int
    timestamp: float
    image: np.ndarray
    damage: Optional[str] = None


class FrameSource:
    """Base of all sources: iterate for frames; ``close()`` is safe twice, and iterating a closed
    source raises :class:`~idc_edge.errors.ClosedError` (it never yields nothing silently).

    A source yields its frames from ``_iter_frames()`` and releases what it holds in ``_release()``.
    """

    #: True for live sources (cameras), where frames can be dropped to stay current.
    live = False
    #: What ``skipped`` counts, for messages ("3 unusable frame(s) skipped").
    skipped_what = "unusable frame(s)"
    #: Every frame is a new array the source never writes again, so a thread may keep it without a copy
    #: (:class:`~idc_edge.threads.ThreadedStream` copies the frames of other iterables).
    fresh_frames = True

    def __init__(self, description: str):
        self.description = description
        self.skipped = 0
        self.damaged = 0  # frames given although damaged (a JPEG decoded in part): used, not skipped
        self._closed = False

    def __iter__(self) -> Iterator[Frame]:
        if self._closed:
            raise ClosedError(f"{self.description} is closed; open the source again")
        return self._iter_frames()

    def _iter_frames(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the source (a camera's reader thread and device); safe twice."""
        self._closed = True
        self._release()

    def _release(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _note_damage(self, index: int, what: Optional[str]) -> None:
        """Count a frame libjpeg found damaged (``what`` it said, see :func:`idc_edge.jpegnotes.damage`)
        and warn about the first one only; the summary gives the count."""
        if what is None:
            return
        self.damaged += 1
        if self.damaged == 1:
            log.warning("%s: frame %d has damaged JPEG data (%s): what could be decoded is used; a part the data did "
                        "not reach is grey and not classified; the summary counts such frames", self.description, index, what)

    def _checked(self, image) -> Optional[np.ndarray]:
        """``image`` as BGR uint8, or None (counted in ``skipped``) when it is unusable.

        The bit depth of a stream's integer frames only grows: once a frame has shown 12-bit
        values, a later dark frame of the same camera is still read as 12-bit (guessed alone it
        would look 4× brighter than it is).
        """
        if getattr(self, "_depth", None) is None:
            self._depth = StreamDepth()
        try:
            return self._depth.to_bgr8(image)
        except FrameError as e:
            self.skipped += 1
            log.warning("%s: skipped a frame: %s", self.description, e)
            return None
