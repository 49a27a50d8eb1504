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
    if scheme in ("http", "https"):
        answer = _http_answer(url)
        if answer:
            return answer
    return (f"a server at {where} took the connection but sent no video within {waited_s:g} s (lost_timeout_s): "
            "check that the address, port and path are the camera's stream and that it is streaming (a stream "
            "that serves one viewer at a time may still be held by another)")


#: redirects followed when telling why an HTTP stream gave nothing (FFmpeg follows them too)
MAX_REDIRECTS = 5

#: content types of a stream OpenCV's FFmpeg reads from an HTTP camera (an answer of another type is no video)
_STREAM_TYPES = ("multipart/", "video/", "image/", "application/octet-stream", "application/vnd.apple.mpegurl",
                 "application/x-mpegurl", "application/dash+xml")

#: where cameras serve their stream, for messages
STREAM_PATHS = "the camera's manual gives it: often /video, /mjpg/video.mjpg, /stream or /videostream.cgi"


def _http_answer(url: str) -> Optional[str]:
    """Why the HTTP(S) stream ``url`` gave no video, told by the server's answer to one GET (its status
    and content type, no body read): a password asked for (401), a path it does not have (404), a web
    page instead of a stream, redirects without end, another refusal. None when it answers like a
    stream, or gives no answer in :data:`CONNECT_PROBE_S` (the general reason then stands). A camera
    answering at once with an error page was said to have "sent no video within 10 s"."""
    import base64
    import http.client
    import ssl

    seen = []
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        parts = urllib.parse.urlsplit(current)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        shown_path = parts.path or "/"
        seen.append(shown_path)
        try:
            if parts.scheme.lower() == "https":
                unverified = ssl.create_default_context()  # only the status is read: a camera's own certificate is fine
                unverified.check_hostname, unverified.verify_mode = False, ssl.CERT_NONE
                conn = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=CONNECT_PROBE_S, context=unverified)
            else:
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=CONNECT_PROBE_S)
            headers = {"User-Agent": "idc-edge", "Accept": "*/*"}
            if parts.username is not None:
                user = urllib.parse.unquote(parts.username) + ":" + urllib.parse.unquote(parts.password or "")
                headers["Authorization"] = "Basic " + base64.b64encode(user.encode("utf-8")).decode("ascii")
            try:
                conn.request("GET", path, headers=headers)
                reply = conn.getresponse()
                status, reason = reply.status, (reply.reason or "").strip()
                ctype = (reply.getheader("Content-Type") or "").split(";")[0].strip().lower()
                location = reply.getheader("Location")
            finally:
                conn.close()
        except (OSError, http.client.HTTPException, ValueError, UnicodeError):
            return None
        said = f"HTTP {status}{f' {reason}' if reason else ''}"
        if 300 <= status < 400 and location:
            current = urllib.parse.urljoin(current, location)
            if urllib.parse.urlsplit(current).scheme.lower() not in ("http", "https"):
                return None
            continue
        if status in (401, 407):
            if parts.username is not None:
                return (f"the server answered {said}: it does not take the user name and password in the address; "
                        "check them in the camera's settings")
            return (f"the server asks for a user name and password ({said}): give them in the address, as "
                    "USER:PASSWORD@ before its host")
        if status == 403:
            return f"the server refuses the stream ({said}): check that this user may watch it in the camera's settings"
        if status == 404:
            return f"the server has no stream at the path {_cut(shown_path)!r} ({said}): give the stream's path ({STREAM_PATHS})"
        if status >= 400:
            return f"the server answered {said} instead of a video stream: check the camera, then try again"
        if 200 <= status < 300 and ctype and not ctype.startswith(_STREAM_TYPES):
            return (f"the server answered with {'a web page' if ctype == 'text/html' else 'no video'} ({ctype}), not "
                    f"a video stream: this address is not the camera's stream; give the stream's path ({STREAM_PATHS})")
        return None
    chain = " -> ".join(_cut(p, 40) for p in seen[:4]) + (" -> ..." if len(seen) > 4 else "")
    return (f"the server redirects the request from one address to another without end ({chain}, over "
            f"{MAX_REDIRECTS} redirects): check the stream's address in the camera's manual")


def _cut(text: str, limit: int = 80) -> str:
    """``text`` shortened for a message, printable."""
    from ..fileio import printable

    text = printable(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"
