"""A source checked against a microscope profile while it runs: frame size and glass colour.

The profile's microns per pixel hold only for the frame size they were measured at, so a frame
of another size stops the run with a :class:`~idc_edge.profiles.ProfileError` (a camera is
checked when it opens, as are an image and a video's header, before the first frame). With a white reference, the glass beside the
tissue is compared with it every ``drift_every`` frames on a small copy of the frame, and a
drift beyond the limit is logged once (see :class:`~idc_edge.colour.GlassDrift`).
"""
from __future__ import annotations

import logging
from typing import Iterator, Optional

import cv2

from ..colour import GlassDrift, WhiteBalance
from ..fileio import opencv_path
from ..profiles import Profile
from .base import Frame, FrameSource  # noqa: F401 (FrameSource: what it wraps)

log = logging.getLogger(__name__)


def known_frame_size(source) -> Optional[tuple[int, int]]:
    """(width, height) of a source's frames where it is known before reading: a camera's granted
    mode, an image, a video's header; None otherwise."""
    granted = getattr(source, "granted", None)
    if granted is not None and granted.size is not None:
        return granted.size
    image = getattr(source, "image", None)
    if image is not None:
        return image.shape[1], image.shape[0]
    path = getattr(source, "path", None)
    if path is not None and getattr(source, "frame_count", None) is not None:  # a video file
        with opencv_path(path, "video") as where:  # any file name (OpenCV crashes on some)
            cap = cv2.VideoCapture(where)
            try:
                w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
            finally:
                cap.release()
        return (w, h) if w > 0 and h > 0 else None
    return None


class CalibratedSource:
    """``source``'s frames, checked against ``profile`` (frame size; glass drift when it has a white reference).

    Every other attribute (``live``, ``fps``, ``mode_json``, ``skipped``, ``description`` ...) is the
    wrapped source's, read through.

    Raises:
        ProfileError: at once for a camera whose granted size differs from the profile's, or
            when a frame of another size arrives.
    """

    def __init__(self, source: FrameSource, profile: Profile, drift_every: int = 15, max_drift: float = 0.08):
        self._source = source
        self.profile = profile
        self.drift_every = max(1, int(drift_every))
        self.balance = WhiteBalance(profile.white_gains_rgb) if profile.white_gains_rgb else None
        self.drift = GlassDrift(profile.target_rgb, max_drift) if (self.balance and profile.target_rgb) else None
        size = known_frame_size(source)
        if size is not None:
            try:
                profile.check_frame_size(*size)
            except Exception:
                source.close()
                raise

    def __getattr__(self, name):  # only for names not set here: the wrapped source's
        if name == "_source":
            raise AttributeError(name)
        return getattr(self._source, name)

    def __iter__(self) -> Iterator[Frame]:
        checked: Optional[tuple] = None
        for n, frame in enumerate(self._source):
            shape = frame.image.shape[:2]
            if shape != checked:
                self._check_size(shape[1], shape[0])
                checked = shape
            if self.drift is not None and n % self.drift_every == 0:
                message = self.drift.update(self._glass_view(frame.image))
                if message:
                    log.warning("%s: %s", self._source.description, message)
            yield frame

    def _check_size(self, width: int, height: int) -> None:
        """Frames decoded at 1/f size (MJPG) are checked against the profile's size divided by f."""
        f = int(getattr(self._source, "decode_factor", 1) or 1)
        size = self.profile.frame_size
        if f > 1 and size is not None and (width, height) == ((size[0] + f - 1) // f, (size[1] + f - 1) // f):
            return
        self.profile.check_frame_size(width * f, height * f)

    def _glass_view(self, bgr):
        """A small balanced **RGB** copy of the frame (about 160 px wide) to judge the glass on."""
        h, w = bgr.shape[:2]
        f = max(1, w // 160)
        small = cv2.resize(bgr, (max(1, w // f), max(1, h // f)), interpolation=cv2.INTER_AREA) if f > 1 else bgr
        return self.balance.apply_rgb(cv2.cvtColor(small, cv2.COLOR_BGR2RGB))

    def close(self) -> None:
        self._source.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
