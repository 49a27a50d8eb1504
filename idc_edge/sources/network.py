"""Network camera streams (``tcp://``, ``rtsp://``, ``http://``...) read through OpenCV's FFmpeg backend.

The usual way to bring a Raspberry Pi CSI camera into a program that cannot use Picamera2 is
``rpicam-vid -t 0 --inline --listen -o tcp://0.0.0.0:8888`` on the Pi and ``--camera
tcp://PI:8888`` here. Reads and opens get FFmpeg's own deadlines, so a stalled server cannot
block for ever.
"""
from __future__ import annotations

from ..redact import redact_url  # noqa: F401 (where sources have always taken it from)

STREAM_SCHEMES = ("tcp", "udp", "rtsp", "rtsps", "rtmp", "rtp", "srt", "http", "https")


def is_stream_url(text: str) -> bool:
    """True for ``scheme://...`` with a scheme OpenCV's FFmpeg backend reads as a live stream."""
    scheme, sep, rest = text.partition("://")
    return bool(sep) and bool(rest) and scheme.lower() in STREAM_SCHEMES


def stream_capture(url: str, timeout_s: float):
    """``cv2.VideoCapture`` on a stream URL with open and read deadlines of ``timeout_s`` seconds."""
    import cv2

    ms = int(min(timeout_s, 3600.0) * 1000)
    return cv2.VideoCapture(url, cv2.CAP_FFMPEG,
                            [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms])
