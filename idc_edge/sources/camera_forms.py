"""What a ``camera`` accepts (``open_source(camera=...)``, ``RunConfig.camera``; ``--camera`` on the
command line), parsed once, and the camera source each form opens.

======================================  ===========================================================
``0``, ``1``, ...                       V4L2 camera ``/dev/videoN`` (USB cameras, HDMI grabbers)
``/dev/video0``, ``/dev/v4l/by-id/...`` V4L2 camera by path (by-id names survive re-plugging)
``picam``, ``picam:1``                  Raspberry Pi CSI camera through Picamera2
``jetson``, ``jetson:1``                Jetson CSI camera (``nvarguscamerasrc`` GStreamer pipeline)
``v4l2src device=... ! ... ! appsink``  any GStreamer pipeline (an ``appsink`` is added when missing)
``tcp://``, ``rtsp://``, ``http://``... a network stream (e.g. ``rpicam-vid --listen``)
======================================  ===========================================================

A video or image file (by its suffix, an image by its content too) is not a camera: ``camera="slide.avi"``
is refused with a pointer to ``source``, an image with one to ``idc-edge classify`` as well; and ``source="1"`` is never camera 1 (see :func:`idc_edge.sources.open_source`).
Any other path is opened as a capture device.
"""
from __future__ import annotations

import numbers
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Union

from ..errors import OptionError
from .files import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from .gstreamer import looks_like_pipeline
from .modes import CameraControls, CameraMode
from .network import is_stream_url, redact_url
from .sniff import an, file_image_format, instead

KINDS = ("v4l2", "picam", "jetson", "gstreamer", "network")

FORMS = ("an index (0), a device path (/dev/video0, /dev/v4l/by-id/...), picam[:N], jetson[:N], "
         "a GStreamer pipeline (... ! appsink) or a stream URL (tcp://, rtsp://, http://, ...)")


@dataclass(frozen=True)
class CameraTarget:
    """A parsed ``camera`` value.

    Attributes:
        kind: ``v4l2``, ``picam``, ``jetson``, ``gstreamer`` or ``network``.
        address: the V4L2 index (int) or path, the Picamera2/Jetson sensor number, the pipeline or the URL.
        text: what the user wrote.
    """

    kind: str
    address: Union[int, str]
    text: str

    def describe(self) -> str:
        """How the camera is named on the terminal and in every output (a URL's password masked)."""
        if self.kind == "network":
            return f"stream {redact_url(str(self.address))}"
        return {"v4l2": f"camera {self.address}", "picam": f"Raspberry Pi camera picam:{self.address}",
                "jetson": f"Jetson camera jetson:{self.address}", "gstreamer": "GStreamer pipeline"}[self.kind]


def _plain_file_name(text: str) -> bool:
    """True for a path worth repeating in advice: printable, no blank, not a stand-in for a descriptor
    (``/dev/stdin``, ``/proc/self/fd/0``)."""
    return text.isprintable() and " " not in text and not text.startswith(("/dev/", "/proc/"))


def parse_camera(value: Union[int, str, os.PathLike]) -> CameraTarget:
    """The camera form of a ``camera`` value (``RunConfig.camera``, ``open_source(camera=...)``).

    Raises:
        OptionError: not a camera form (a video or image file names ``source`` instead).
    """
    if isinstance(value, bool):
        raise OptionError(f"camera takes {FORMS}; got {value!r}", option="camera")
    if isinstance(value, numbers.Integral):  # numpy integers too
        value = int(value)
        if value < 0:
            raise OptionError(f"a camera index is 0 or more, got {value}", option="camera")
        return CameraTarget("v4l2", value, str(value))
    text = os.fspath(value).strip()
    if not text:
        raise OptionError(f"camera is empty (an unset shell variable?): give {FORMS}", option="camera")
    if text.isdigit():
        if not text.isascii() or len(text) > 6:
            raise OptionError(f"no camera {text!r}: a camera index is a device number (0, 1, ...)", option="camera")
        return CameraTarget("v4l2", int(text), text)
    m = re.fullmatch(r"(picam|jetson)(?::(\d+))?", text, flags=re.IGNORECASE)
    if m:
        return CameraTarget(m.group(1).lower(), int(m.group(2) or 0), text)
    if is_stream_url(text):
        return CameraTarget("network", text, text)
    if looks_like_pipeline(text):
        return CameraTarget("gstreamer", text, text)
    suffix = Path(text).suffix.lower()
    fmt = file_image_format(text) if os.sep in text else None  # by content: /dev/stdin < photo.jpg
    if fmt or suffix in IMAGE_SUFFIXES:
        raise OptionError(f"{text!r} is {f'{an(fmt)} image' if fmt else 'an image file'}, not a camera: "
                          + instead(text if _plain_file_name(text) else "FILE", repr(text)),
                          option="camera", options=["source="])
    if suffix in VIDEO_SUFFIXES:
        raise OptionError(f"{text!r} is a file, not a camera: read it with source={text!r}", option="camera",
                          options=["source="])
    if "://" in text:
        raise OptionError(f"unknown camera {text!r}: streams are read from tcp://, udp://, rtsp://, rtmp://, "
                          f"srt:// or http(s):// URLs; a camera is {FORMS}", option="camera")
    if os.sep in text:  # a device path; whatever it names is read as a live capture (newest frame wins)
        return CameraTarget("v4l2", text, text)
    raise OptionError(f"unknown camera {text!r}: a camera is {FORMS}", option="camera")


def open_camera(target: Union[CameraTarget, int, str], mode: CameraMode = CameraMode(),
                controls: CameraControls = CameraControls(), lost_timeout_s: float = 10.0, reduce_mjpeg: int = 1):
    """The :class:`~idc_edge.sources.camera.CameraSource` of a camera form, in ``mode`` with ``controls``.

    ``reduce_mjpeg`` (2, 4, 8) decodes a V4L2 camera's MJPG frames at that fraction of their size.

    Raises:
        OptionError: not a camera form.
        SourceError: the camera cannot be opened, Picamera2 or GStreamer is missing, or the driver
            refused the frame size asked for.
    """
    from .camera import CameraSource
    from .gstreamer import gstreamer_capture, jetson_pipeline, require_gstreamer, with_appsink
    from .network import stream_capture
    from .picamera import PicameraCapture, import_picamera2

    if not isinstance(target, CameraTarget):
        target = parse_camera(target)
    common = dict(lost_timeout_s=lost_timeout_s, mode=mode, controls=controls, description=target.describe())
    if target.kind == "v4l2":
        return CameraSource(target.address, reduce_mjpeg=reduce_mjpeg, **common)
    if target.kind == "picam":
        module = import_picamera2()  # missing: one line with the install command, before any thread starts
        return CameraSource(target.address, capture_factory=lambda n: PicameraCapture(n, mode, controls, module),
                            mode_in_capture=True, **common)
    if target.kind == "jetson":
        require_gstreamer("a Jetson CSI camera (jetson:N)")
        pipeline = jetson_pipeline(int(target.address), mode, controls)
        return CameraSource(pipeline, capture_factory=lambda p: gstreamer_capture(p, "a Jetson CSI camera (jetson:N)"),
                            mode_in_capture=True, **common)
    if target.kind == "gstreamer":
        require_gstreamer("a GStreamer pipeline")
        pipeline = with_appsink(str(target.address))
        return CameraSource(pipeline, capture_factory=lambda p: gstreamer_capture(p), mode_in_capture=True, **common)
    return CameraSource(target.address, capture_factory=lambda url: stream_capture(url, lost_timeout_s),
                        mode_in_capture=True, **common)
