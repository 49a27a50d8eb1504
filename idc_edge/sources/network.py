"""Network camera streams (``tcp://``, ``rtsp://``, ``http://``...) read through OpenCV's FFmpeg backend.

The usual way to bring a Raspberry Pi CSI camera into a program that cannot use Picamera2 is
``rpicam-vid -t 0 --inline --listen -o tcp://0.0.0.0:8888`` on the Pi and ``--camera
tcp://PI:8888`` here. Reads and opens get FFmpeg's own deadlines, so a stalled server cannot
block for ever.
"""
from __future__ import annotations

import socket
import urllib.parse
from typing import Optional

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


#: the port a stream URL means when it names none
DEFAULT_PORTS = {"http": 80, "https": 443, "rtsp": 554, "rtsps": 322, "rtmp": 1935}

#: seconds to wait for a TCP connection when telling why a stream gave nothing
CONNECT_PROBE_S = 2.0

_START = ("start it on the camera's machine (a Raspberry Pi: `rpicam-vid -t 0 --inline --listen -o "
          "tcp://0.0.0.0:8888`, once per run) and check the address and port")


def why_no_stream(url: str, waited_s: float) -> str:
    """Why opening the stream ``url`` gave nothing after ``waited_s`` seconds, told by one TCP
    connection to its host and port: nothing listens there (refused), nothing answers (no route,
    a firewall), the name is unknown, or, when the connection is taken, that the server sent no
    video in time (a stalled or wrong server: "no stream there, start it" named the wrong cause).
    UDP and other schemes without a connection get the general reason."""
    try:
        parts = urllib.parse.urlsplit(url)
        scheme, host = parts.scheme.lower(), parts.hostname
        port: Optional[int] = parts.port or DEFAULT_PORTS.get(scheme)
    except ValueError:  # a port out of range or not a number
        return f"no stream there; {_START}"
    if scheme in ("udp", "rtp", "srt") or not host or not port:
        return f"no stream there; {_START}"
    where = f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"
    try:
        socket.create_connection((host, port), timeout=CONNECT_PROBE_S).close()
    except ConnectionRefusedError:
        return f"nothing listens at {where} (connection refused); {_START}"
    except socket.timeout:
        return (f"{where} does not answer (within {CONNECT_PROBE_S:g} s: the machine is off, unreachable or behind "
                "a firewall); check the address and that the camera's machine is on this network")
    except (OSError, UnicodeError) as e:
        if isinstance(e, socket.gaierror) or isinstance(e, UnicodeError):
            return f"the host name {host!r} is not known here; check the address"
        return f"{where} cannot be reached ({e.strerror or e}); check the address and the network"
    return (f"a server at {where} took the connection but sent no video within {waited_s:g} s (lost_timeout_s): "
            "check that the address, port and path are the camera's stream and that it is streaming (a stream "
            "that serves one viewer at a time may still be held by another)")
