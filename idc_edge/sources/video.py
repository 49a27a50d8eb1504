"""Video files as sources: every frame in order, undecodable frames skipped and counted."""
from __future__ import annotations

import itertools
import logging
import os
from typing import Iterator, Union

import cv2

from ..errors import SourceError
from .base import Frame, FrameSource

log = logging.getLogger(__name__)


class VideoSource(FrameSource):
    """Every frame of a video file, in order; timestamps from the file in seconds.

    A frame the decoder cannot read (corrupt bytes, a file cut short) is skipped, counted in
    ``skipped`` and logged, and reading goes on with the next one; ``Frame.index`` stays the
    frame's position in the file. Reading stops at the end of the file, or after
    ``max_bad_frames`` failures in a row (a file cut short before its stated frame count).
    """

    def __init__(self, path: Union[str, os.PathLike], max_bad_frames: int = 25):
        super().__init__(f"video {str(path)!r}")
        self.path = str(path)
        if not os.path.isfile(self.path):
            raise SourceError(f"video {self.path!r} does not exist")
        self.max_bad_frames = max_bad_frames
        probe = cv2.VideoCapture(self.path)
        try:
            if not probe.isOpened():
                raise SourceError(f"cannot open {self.path!r} as a video: not a video file OpenCV can decode "
                                  "(for still images use .png/.jpg/.tif)")
            self.frame_count = int(probe.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
            self.fps = float(probe.get(cv2.CAP_PROP_FPS) or 0.0)
        finally:
            probe.release()

    def __iter__(self) -> Iterator[Frame]:
        cap = cv2.VideoCapture(self.path)
        try:
            bad = 0
            for index in itertools.count():
                try:
                    ok, image = cap.read()
                except cv2.error as e:  # some backends raise instead of returning False
                    ok, image = False, None
                    log.debug("%s: read raised %s", self.description, e)
                if not ok:
                    if self.frame_count and index < self.frame_count and bad < self.max_bad_frames:
                        bad += 1
                        self.skipped += 1
                        log.warning("%s: frame %d cannot be decoded; skipped", self.description, index)
                        continue
                    break
                image = self._checked(image)
                if image is None:
                    continue
                bad = 0
                ms = cap.get(cv2.CAP_PROP_POS_MSEC)
                ts = ms / 1000.0 if ms and ms > 0 else (index / self.fps if self.fps else float(index))
                yield Frame(index, ts, image)
        finally:
            cap.release()
