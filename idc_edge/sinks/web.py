"""The live view in a browser: the overlay as MJPEG, the numbers and a Snapshot button, standard
library only (``http.server``), nothing fetched from the internet.

    GET  /              the page (inline CSS and JS); HEAD of any GET: its headers only
    GET  /stream.mjpg   the overlay as ``multipart/x-mixed-replace`` JPEGs
    GET  /frame.jpg     the newest overlay as one JPEG
    GET  /status.json   IDC area, % of tissue, focus, threshold, model, fps ... of the newest frame
    POST /snapshot      save the newest frame on the device (PNG + JSON); answers the file names
    POST /settings      ``{"alpha": 0.45, "outline": true}``: the live view's opacity and outlines

Who may ask (a web page open in a viewer's browser must not act for it, nor read the frames by DNS
rebinding, on 127.0.0.1 too): every request's ``Host`` must be an IP address (a rebinding page can
only make the browser send its own name), ``localhost``, the name the server was given, or, when it
listens beyond this machine, the machine's own names (its host name, ``NAME.local``, its full
name); else 403. A POST whose ``Origin`` is not the page's own (``http://`` + its ``Host``), or
whose ``Sec-Fetch-Site`` is ``cross-site`` or ``same-site``, gets 403; ``/settings`` takes only
``Content-Type: application/json`` (415), which no page can send elsewhere without the browser
asking first; a chunked body gets 411. Snapshots are at most one per ``SNAPSHOT_INTERVAL_S``
(429 with ``Retry-After``), so a flood cannot fill the device's disk. Every refusal is a JSON
``{"error": ...}``.

Cost and fairness: each frame is drawn on a copy scaled to ``max_width`` and JPEG-encoded once,
on the sink's own thread (newest frame wins), and only while someone watches; every viewer gets
the newest JPEG when its connection is ready for one, so a slow viewer skips frames instead of
slowing the run or the other viewers. The served rate is capped at ``max_fps``. A viewer that
stops reading is dropped after ``client_timeout_s``, and so is a request not received whole within
it (one sent a byte at a time). At most ``MAX_CONNECTIONS`` connections are
open at once, ``MAX_CONNECTIONS_PER_ADDRESS`` from one address; more are answered 503. Closing the sink stops the server and ends
every stream.
"""
from __future__ import annotations

import errno
import io
import ipaddress
import json
import math
import logging
import socket
import sys
import threading
import time
from dataclasses import replace
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional

import cv2

from ..errors import IdcEdgeError, OptionError
from ..fileio import short
from ..jsonready import dumps
from ..overlay import OverlayInfo, OverlayStyle, colour_table, draw_overlay, idc_area_mm2, whole_frame_no_call
from ..rescale import rescale
from .base import SessionInfo, Sink, SinkFrame
from .web_page import render_page

log = logging.getLogger(__name__)

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8080
_BOUNDARY = "idcedgeframe"
#: seconds between two snapshots at least (per server, whoever asks)
SNAPSHOT_INTERVAL_S = 1.0


def parse_address(text: str) -> tuple[str, int]:
    """``"8080"``, ``":8080"``, ``"0.0.0.0:8080"``, ``"[::1]:8080"``, ``"::1"`` or ``"host"`` → (host, port).

    The host defaults to 127.0.0.1 (this machine only) and the port to 8080.

    Raises:
        OptionError: the port is not a number from 1 to 65535, or an address with two colons or more
            and no brackets is not an IPv6 address (a port after one needs the brackets).
    """
    text = text.strip()
    host, port = DEFAULT_HOST, str(DEFAULT_PORT)
    if text.startswith("["):  # [IPv6]:port
        end = text.find("]")
        if end < 0:
            raise OptionError(f"LiveView at {text!r}: an IPv6 address needs its closing ']'", options=["LiveView at"])
        host, rest = text[1:end], text[end + 1:]
        port = rest[1:] if rest.startswith(":") else (rest or port)
    elif text.count(":") == 1:
        h, port = text.split(":")
        host = h or host
    elif text.lstrip("+-").isdigit():  # a port alone ("-1" is a port out of range, not a host name)
        port = text
    elif text.count(":") > 1:  # an IPv6 address without a port: "fe80::1%eth0:8097" is not one
        address, _, zone = text.partition("%")
        try:
            ipaddress.IPv6Address(address)
        except ValueError:
            zone = ":"
        if ":" in zone:
            raise OptionError(f"LiveView at {text!r}: not an IPv6 address; with a port, put the address in brackets, "
                              "e.g. '[fe80::1%eth0]:8080'", options=["LiveView at"])
        host = text
    elif text:
        host = text
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise OptionError(f"LiveView at {text!r}: the port must be a number from 1 to 65535, e.g. '8080' or "
                          "'0.0.0.0:8080'", options=["LiveView at"])
    return host, int(port)


def view_size(width: int, height: int, max_width: int) -> tuple[int, int]:
    """The live view's size for a ``width × height`` frame: halved until it is at most ``max_width``
    wide (exact halvings are OpenCV's fast resize: a 1080p frame becomes 960×540 in ~0.5 ms)."""
    while width > max_width and width >= 2 and height >= 2:
        width, height = width // 2, height // 2
    return width, height


def _lan_address() -> Optional[str]:
    """This machine's address on its default route (no packet is sent), for printing a URL."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: never routed, only selects the outgoing interface
            return s.getsockname()[0]
    except OSError:
        return None


def host_name(header: str) -> str:
    """The host of a ``Host`` header (``"[::1]:8080"`` → ``"::1"``, ``"Pi.local.:80"`` → ``"pi.local"``)."""
    text = header.strip().lower()
    if text.startswith("["):
        return text[1:text.find("]")] if "]" in text else text
    return (text.rsplit(":", 1)[0] if text.count(":") == 1 else text).rstrip(".")


def own_names(host: str) -> frozenset:
    """The host names a browser may use for a server bound to ``host`` (see the module docstring):
    ``localhost`` and ``host`` itself, plus this machine's names when ``host`` is not loopback."""
    names = {"localhost", host_name(host)}
    if not _loopback(host_name(host)):
        machine = socket.gethostname().lower()
        names |= {machine, machine + ".local", socket.getfqdn().lower()}
    return frozenset(names)


def _loopback(host: str) -> bool:
    """True for ``localhost`` and 127.x.x.x / ::1: a server bound there answers this machine only."""
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_allowed(header: Optional[str], names: frozenset) -> bool:
    """True for a request that may be served: no ``Host`` (no browser omits it), an IP address, or
    one of ``names``; a DNS-rebinding page's own name is none of these."""
    if header is None:
        return True
    host = host_name(header)
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return host in names


def _cut(text: str, limit: int = 200) -> str:
    """``text`` cut to about ``limit`` characters, for an error body (unquoted: it is JSON already)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


#: Connections the live view holds open at once, in all and from one client address: each is a
#: thread for as long as it lasts (a stream for the whole run; an idle or half-sent request up to
#: ``client_timeout_s`` per read). One more is answered 503 at once, by the accepting thread.
MAX_CONNECTIONS = 64
MAX_CONNECTIONS_PER_ADDRESS = 16

_BUSY = {"error": "this live view has as many viewers as it serves at once (from your address or in all): "
                  "close a tab or another viewer, then try again"}


class _Server(ThreadingHTTPServer):
    """The live view's HTTP server: a thread per connection, at most :data:`MAX_CONNECTIONS` of them
    and :data:`MAX_CONNECTIONS_PER_ADDRESS` from one client address (a page or program opening
    connections without end made a thread for each, and a backlog of 5 left the other viewers'
    connections unanswered for seconds); connections waiting to be accepted queue up to 128."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address, handler, family):
        self.address_family = family
        self._open: dict = {}  # client address -> connections open
        self._open_lock = threading.Lock()
        super().__init__(address, handler)

    def verify_request(self, request, client_address) -> bool:
        """Take the connection if under the limits (counted until its thread ends), else answer it
        503 without a thread: a short reply that fits a fresh socket's buffer, sent without waiting."""
        address = client_address[0]
        with self._open_lock:
            if (sum(self._open.values()) < MAX_CONNECTIONS
                    and self._open.get(address, 0) < MAX_CONNECTIONS_PER_ADDRESS):
                self._open[address] = self._open.get(address, 0) + 1
                return True
        body = dumps(_BUSY).encode("utf-8")
        try:
            request.setblocking(False)
            request.send(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                         b"Retry-After: 5\r\nConnection: close\r\nCache-Control: no-store\r\n"
                         b"Content-Length: %d\r\n\r\n" % len(body) + body)
            request.recv(65536)  # what the client sent so far: closing on unread data would reset the reply
        except OSError:
            pass
        return False

    def _release(self, client_address) -> None:
        with self._open_lock:
            left = self._open.get(client_address[0], 1) - 1
            if left > 0:
                self._open[client_address[0]] = left
            else:
                self._open.pop(client_address[0], None)

    def process_request(self, request, client_address) -> None:
        try:
            super().process_request(request, client_address)
        except BaseException:  # no thread for it (RuntimeError: can't start new thread): not counted
            self._release(client_address)
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._release(client_address)

    def handle_error(self, request, client_address) -> None:
        """A viewer's request that fails outside the handler's own checks: a browser that resets the
        connection mid-request is routine and said nowhere; anything else is one log line. The base
        class printed a whole traceback onto the run's terminal for either."""
        error = sys.exc_info()[1]
        if not isinstance(error, OSError):
            log.warning("live view: a request from %s failed (%s: %s)", client_address[0], type(error).__name__,
                        short(str(error), 120))


class LiveView(Sink):
    """Serves the live overlay to browsers; see the module docstring.

    The address is bound when the object is made, so a port in use or an address this machine
    does not have fails before the run starts (:class:`~idc_edge.errors.OptionError`).

    Args:
        host: address to listen on; 127.0.0.1 (default) is this machine only, 0.0.0.0 every
            network (other machines can then watch: use it on a trusted network only).
        port: TCP port (0 picks a free one; see :attr:`url`).
        snapshot: a :class:`~idc_edge.sinks.snapshot.SnapshotSink` for the Snapshot button.
        style: the live view's starting style (the page's toggles change it for every viewer).
        max_width: frames wider than this are halved until they fit, before drawing and encoding
            (pixels; 1080p is served at 960×540).
        max_fps: at most this many frames per second are encoded.
        quality: JPEG quality 1–100.
        client_timeout_s: a viewer that accepts no data for this long is dropped.
    """

    name = "web"
    one_run = True
    delivery = "latest"
    needs_image = True
    essential = False  # a failing view is a warning: the results and video go on

    def __init__(self, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *, snapshot=None,
                 style: OverlayStyle = OverlayStyle(), max_width: int = 1280, max_fps: float = 10.0,
                 quality: int = 80, client_timeout_s: float = 10.0):
        from .. import validate

        if not isinstance(host, str) or not host.strip():
            raise OptionError(f"host must be an address or name such as '127.0.0.1', got {host!r:.60}", option="host")
        port = validate.whole_number("port", port, 0, 65535, "TCP port; 0 picks a free one")
        # checked here: of another kind they failed at the first frame (the view only warns, so it went dark
        # with the run going on) or at the first Snapshot button press
        if not isinstance(style, OverlayStyle):
            raise OptionError(f"style must be an OverlayStyle, got {type(style).__name__}", option="style")
        if snapshot is not None and not (callable(getattr(snapshot, "take", None)) and hasattr(snapshot, "taken")):
            raise OptionError(f"snapshot must be a SnapshotSink or None, got {type(snapshot).__name__}",
                              option="snapshot")
        self.snapshot = snapshot
        self.style = style
        self.max_width = validate.whole_number("max_width", max_width, 64, unit="pixels")
        self.min_interval_s = 1.0 / validate.positive_number("max_fps", max_fps, "frames per second", 1000.0)
        self.quality = validate.whole_number("quality", quality, 1, 100, "JPEG quality")
        self.client_timeout_s = validate.positive_number("client_timeout_s", client_timeout_s, "seconds",
                                                         validate.MAX_WAIT_S)
        self._info: Optional[SessionInfo] = None
        self._cond = threading.Condition()
        self._jpeg: Optional[bytes] = None
        self._seq = 0
        self._status: dict = {"state": "starting"}
        self._stopping = threading.Event()
        self._streams = 0
        self._polled_at = 0.0
        self._encoded_at = 0.0
        self._sockets: set = set()
        self._handlers: set = set()
        self.encoded = 0
        self._server = self._bind(host, port)
        self.host = host
        self._names = own_names(host)
        self._snapshot_lock = threading.Lock()
        self._snapshot_at = -math.inf
        self.port = self._server.server_address[1]
        self._thread: Optional[threading.Thread] = None

    # -- binding -------------------------------------------------------------------------------
    def _bind(self, host: str, port: int) -> _Server:
        where = f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        except (socket.gaierror, UnicodeError) as e:
            # UnicodeError: a name DNS cannot hold (a label over 63 characters, an empty one as in
            # "a..b", bytes that are not text) fails in Python's IDNA codec before any look-up
            kind = ("is not a host name DNS can hold (each dot-separated part 1 to 63 characters)"
                    if isinstance(e, UnicodeError) else "is not an address or a name this machine can resolve")
            raise OptionError(f"LiveView at {where}: {short(host)} {kind}; use 127.0.0.1 (this machine) or "
                              "0.0.0.0 (every network)", options=["LiveView at"]) from None
        family, _, _, _, address = infos[0]
        try:
            return _Server(address[:2], _make_handler(self), family)
        except OSError as e:
            why = {errno.EADDRINUSE: f"port {port} is already in use (another idc-edge or web server?); "
                                     "pick another, e.g. port=8081",
                   errno.EACCES: f"port {port} needs administrator rights (ports below 1024); pick one above 1024, "
                                 "e.g. port=8080",
                   errno.EADDRNOTAVAIL: f"this machine has no network interface with the address {host!r}; "
                                        "use 127.0.0.1 (this machine) or 0.0.0.0 (every network)"}
            raise OptionError(f"LiveView at {where}: " + why.get(e.errno, f"cannot listen there: {e.strerror}"),
                              options=["LiveView at", "port="]) from None

    @property
    def url(self) -> str:
        """The address to open in a browser (for 0.0.0.0, this machine's address on its network)."""
        host = self.host
        if host in ("0.0.0.0", "", "::"):
            host = _lan_address() or socket.gethostname()
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}/"

    # -- the sink ------------------------------------------------------------------------------
    def start(self, info: SessionInfo) -> None:
        self._info = info
        self._status = {"state": "waiting for the first frame", **self._session_status()}
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="idc-edge-web", daemon=True)
        self._thread.start()

    def _session_status(self) -> dict:
        i = self._info
        return {"model": i.model_name, "model_sha256": i.model_sha256, "threshold": i.threshold,
                "um_per_px": i.um_per_px, "source": i.source, "started": i.started_utc, "version": i.version}

    @property
    def viewers(self) -> int:
        return self._streams

    def _watched(self) -> bool:
        return self._streams > 0 or time.monotonic() - self._polled_at < 3.0

    def write(self, frame: SinkFrame) -> None:
        r, info = frame.result, frame.info
        idc_mm2, tissue_mm2 = idc_area_mm2(r, info.cell_um)
        status = {"state": "live", "frame": r.index, "time": r.timestamp, "fps": round(frame.fps, 2),
                  "idc_area_mm2": round(idc_mm2, 4), "idc_percent_of_tissue": round(100 * r.idc_fraction, 2),
                  "tissue_area_mm2": round(tissue_mm2, 4), "idc_patches": r.n_idc, "tissue_patches": r.n_tissue,
                  "in_focus": _focus(r), "streaked": bool(getattr(r, "streaked", False)),
                  "colour_blurred": bool(getattr(r, "colour_blurred", False)),
                  "exposure_ok": _flag(r, "exposure_ok"), "washed_out": bool(getattr(r, "washed_out", False)),
                  "colour_ok": _flag(r, "colour_ok"), "stain_ok": _flag(r, "stain_ok"), "noise_ok": _flag(r, "noise_ok"),
                  "faint_colour": bool(getattr(r, "faint_colour", False)),
                  "no_colour": bool(getattr(r, "no_colour", False)),
                  "frame_no_call": whole_frame_no_call(r),
                  "sharpness": _number(r, "sharpness"), "noise": _number(r, "noise"),
                  "no_call_patches": int(getattr(r, "n_no_call", 0)), "no_call_ink": int(getattr(r, "no_call_ink", 0)),
                  "viewers": self._streams, "alpha": self.style.alpha, "outline": self.style.outline,
                  "snapshots": len(self.snapshot.taken) if self.snapshot is not None else None,
                  **self._session_status()}
        now = time.monotonic()
        jpeg = None
        if self._watched() and now - self._encoded_at >= self.min_interval_s and r.image is not None:
            self._encoded_at = now
            image = r.image
            w, h = view_size(image.shape[1], image.shape[0], self.max_width)
            if (w, h) != (image.shape[1], image.shape[0]):
                image = rescale(image, (w, h))
            view = draw_overlay(image, r, self.style, fps=frame.fps,
                                info=OverlayInfo(info.um_per_px, info.cell_um, info.model_name))
            ok, data = cv2.imencode(".jpg", view, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
            if ok:
                jpeg = data.tobytes()
                self.encoded += 1
        with self._cond:
            self._status = status
            if jpeg is not None:
                self._jpeg = jpeg
                self._seq += 1
                self._cond.notify_all()

    def close(self) -> None:
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._server.shutdown()
        for s in list(self._sockets):  # unblock handlers writing to viewers that stopped reading
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + 3.0
        for t in list(self._handlers):
            t.join(max(0.0, deadline - time.monotonic()))
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(3.0)

    def summary(self) -> Optional[str]:
        return f"live view was at {self.url}"

    def to_dict(self) -> Optional[dict]:
        return {"url": self.url}

    # -- used by the request handler ------------------------------------------------------------
    def next_jpeg(self, after: int, timeout_s: float) -> tuple[int, Optional[bytes]]:
        """(sequence, JPEG) newer than ``after``, waiting up to ``timeout_s``; (after, None) if none."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._seq <= after and not self._stopping.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    return after, None
                self._cond.wait(min(left, 0.5))
            if self._stopping.is_set() or self._jpeg is None:
                return after, None
            return self._seq, self._jpeg

    def status(self) -> dict:
        with self._cond:
            return dict(self._status)

    def host_allowed(self, header: Optional[str]) -> bool:
        """May a request with this ``Host`` header be served (see the module docstring)?"""
        return host_allowed(header, self._names)

    def snapshot_wait(self) -> float:
        """0 when a snapshot may be taken now (the next one then waits ``SNAPSHOT_INTERVAL_S``),
        else the seconds until one may."""
        with self._snapshot_lock:
            now = time.monotonic()
            left = self._snapshot_at + SNAPSHOT_INTERVAL_S - now
            if left > 0:
                return left
            self._snapshot_at = now
            return 0.0

    def settings(self, changes: dict) -> dict:
        allowed = {"alpha", "outline"}
        unknown = sorted(set(changes) - allowed)
        if unknown:
            raise OptionError(f"unknown setting(s) {', '.join(unknown)}; known: alpha, outline")
        if "outline" in changes and not isinstance(changes["outline"], bool):
            raise OptionError("outline must be true or false")
        self.style = replace(self.style, **changes)  # validated by OverlayStyle
        return {"alpha": self.style.alpha, "outline": self.style.outline}

    def page(self) -> bytes:
        info = self._info
        return render_page(colour_table(), threshold=info.threshold if info else 0.5,
                           show_below=self.style.show_below, model=info.model_name if info else "",
                           alpha=self.style.alpha, outline=self.style.outline).encode("utf-8")


def _flag(result, name: str):
    value = getattr(result, name, None)
    return None if value is None else bool(value)


def _number(result, name: str):
    value = getattr(result, name, None)
    return None if value is None or value != value else round(float(value), 4)  # NaN: not measured


def _focus(result):
    """True/False from the focus gate; None when it did not measure (no sharpness: gate off, or too
    little tissue to judge)."""
    value = _flag(result, "in_focus")
    return None if value and _number(result, "sharpness") is None else value


class _DeadlineReader(io.RawIOBase):
    """The reading side of a viewer's socket for ``handler.rfile``: every read waits at most until
    ``handler.deadline`` (``time.monotonic()`` seconds), then raises ``TimeoutError``, which
    http.server takes as a request that timed out (the connection is closed). The socket's own
    timeout (``client_timeout_s``, for writes to a viewer that stops reading) is put back after each read."""

    def __init__(self, handler):
        super().__init__()
        self._handler = handler
        self._sock = handler.connection

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        left = self._handler.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request did not arrive in time")
        timeout = self._sock.gettimeout()
        self._sock.settimeout(left if timeout is None else min(left, timeout))
        try:
            return self._sock.recv_into(buffer)
        finally:
            self._sock.settimeout(timeout)


def _make_handler(view: LiveView):
    class Handler(BaseHTTPRequestHandler):
        server_version = "idc-edge"
        protocol_version = "HTTP/1.1"

        def setup(self):
            super().setup()
            self.connection.settimeout(view.client_timeout_s)
            self.deadline = time.monotonic() + view.client_timeout_s
            plain, self.rfile = self.rfile, io.BufferedReader(_DeadlineReader(self))
            plain.close()  # the socket's own file object, replaced (closing it leaves the socket open)
            view._sockets.add(self.connection)
            view._handlers.add(threading.current_thread())

        def handle_one_request(self):
            """Each request (its line, headers and body) must arrive within ``client_timeout_s`` in all,
            counted from the end of the one before: a client sending a byte now and then kept its
            thread for ever, each read waiting ``client_timeout_s`` anew (slowloris)."""
            self.deadline = time.monotonic() + view.client_timeout_s
            super().handle_one_request()

        def finish(self):
            view._sockets.discard(self.connection)
            view._handlers.discard(threading.current_thread())
            try:
                super().finish()
            except OSError:
                pass

        def log_message(self, format, *args):  # noqa: A002 - the base class's name
            log.debug("live view: " + format, *args)

        def _send(self, code: int, body: bytes, ctype: str, headers: tuple = ()) -> None:
            self.send_response(code)
            for key, value in (("Content-Type", ctype), ("Content-Length", str(len(body))),
                               ("Cache-Control", "no-store"), *headers):
                self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD":  # HEAD: the headers GET would send, no body
                self.wfile.write(body)

        def send_error(self, code: int, message: Optional[str] = None, explain: Optional[str] = None) -> None:
            """http.server's own refusals (a method without a handler, a malformed request line, a header
            line over 64 KB or over 100 headers) as JSON ``{"error": ...}`` like every other refusal; a
            method the live view does not take is 405 with ``Allow`` (http.server sent 501 and an HTML page)."""
            self.close_connection = True
            headers: tuple = ()
            if code == HTTPStatus.NOT_IMPLEMENTED and self.command:
                code, headers = HTTPStatus.METHOD_NOT_ALLOWED, (("Allow", "GET, HEAD, POST"),)
                message = f"the live view takes GET, HEAD and POST, not {_cut(self.command, 40)}"
            elif code == HTTPStatus.BAD_REQUEST and (getattr(self, "raw_requestline", b"") or b"").startswith(b"\x16\x03"):
                message = "this live view speaks plain HTTP: open http://, not https://"  # a TLS hello
            reason = self.responses.get(code, ("error",))[0]
            text = message or reason
            if explain and explain not in text:
                text = f"{text}: {explain}"
            try:
                self.log_error("code %d, message %s", code, text)
                if not self.command or self.request_version == "HTTP/0.9":  # no request line to answer in kind
                    self.request_version = "HTTP/1.1"
                self._send(code, dumps({"error": _cut(text)}).encode("utf-8"), "application/json",
                           (("Connection", "close"), *headers))
            except OSError:
                pass

        def _json(self, code: int, data: dict, headers: tuple = ()) -> None:
            # NaN/inf as null: JSON.parse takes it
            self._send(code, dumps(data).encode("utf-8"), "application/json", headers)

        def _refuse(self, code: int, error: str, headers: tuple = ()) -> None:
            """Answer ``code`` with ``{"error": ...}`` and close: a body left unread is no next request."""
            self.close_connection = True
            self._json(code, {"error": error}, headers)

        def _foreign_host(self) -> bool:
            """Refuse (403) a ``Host`` this server does not go by: a DNS-rebinding page's name."""
            host = self.headers.get("Host")
            if view.host_allowed(host):
                return False
            self._refuse(403, f"this live view does not answer to the host name {_cut(host, 80)!r}; open the "
                              "address the run printed")
            return True

        def _cross_site(self) -> Optional[str]:
            """Why a POST comes from another site's page (None: from the live view's own page, or no browser)."""
            origin, host = self.headers.get("Origin"), self.headers.get("Host") or ""
            if origin is not None and origin.lower() != f"http://{host.lower()}":
                return f"a page from {_cut(origin, 80)!r} may not act on this live view"
            if (self.headers.get("Sec-Fetch-Site") or "").lower() in ("cross-site", "same-site"):
                return "a page from another site may not act on this live view"
            return None

        def do_GET(self):  # noqa: N802 - http.server's name
            path = self.path.split("?", 1)[0]
            if self._foreign_host():
                return
            try:
                if path in ("/", "/index.html"):
                    self._send(200, view.page(), "text/html; charset=utf-8")
                elif path == "/status.json":
                    view._polled_at = time.monotonic()
                    self._json(200, view.status())
                elif path == "/frame.jpg":
                    view._polled_at = time.monotonic()
                    _, jpeg = view.next_jpeg(0, 5.0)
                    if jpeg is None:
                        self._json(503, {"error": "no frame yet"})
                    else:
                        self._send(200, jpeg, "image/jpeg")
                elif path == "/stream.mjpg":
                    self._stream()
                else:
                    self._json(404, {"error": f"no page {path}"})
            except (OSError, ValueError):
                self.close_connection = True  # the viewer left or stopped reading

        def do_HEAD(self):  # noqa: N802 - http.server's name; what GET answers, without its body
            self.do_GET()

        def _stream(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={_BOUNDARY}")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            if self.command == "HEAD":
                return
            with view._cond:
                view._streams += 1
            try:
                seq = 0
                while not view._stopping.is_set():
                    seq, jpeg = view.next_jpeg(seq, 1.0)
                    if jpeg is None:
                        continue
                    self.wfile.write(f"--{_BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}"
                                     f"\r\n\r\n".encode("ascii") + jpeg + b"\r\n")
                    self.wfile.flush()
            finally:
                with view._cond:
                    view._streams -= 1

        def do_POST(self):  # noqa: N802
            path = self.path.split("?", 1)[0]
            if self._foreign_host():
                return
            if self.headers.get("Transfer-Encoding") is not None:
                self._refuse(411, "send the body with a Content-Length, not chunked")
                return
            refused = self._cross_site()
            if refused:
                self._refuse(403, refused)
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
                if not 0 <= length <= 65536:
                    raise OptionError("request body must be 0 to 64 KB")
                body = self.rfile.read(length) if length else b""
                if path == "/snapshot":
                    self._snapshot()
                elif path == "/settings":
                    if self.headers.get_content_type() != "application/json":
                        self._json(415, {"error": "settings take Content-Type: application/json"})
                        return
                    changes = json.loads(body.decode("utf-8") or "{}")
                    if not isinstance(changes, dict):
                        raise OptionError("settings must be a JSON object")
                    self._json(200, view.settings(changes))
                else:
                    self._json(404, {"error": f"no action {path}"})
            except (IdcEdgeError, ValueError, RecursionError) as e:  # RecursionError: JSON nested 30,000 deep
                self.close_connection = True  # an unread body must not be taken for the next request
                self._json(400 if isinstance(e, (OptionError, ValueError, RecursionError)) else 503,
                           {"error": _cut(str(e))})
            except OSError:
                self.close_connection = True

        def _snapshot(self) -> None:
            """Save the newest frame: 409 when snapshots are off, 429 within ``SNAPSHOT_INTERVAL_S`` of the last."""
            if view.snapshot is None:
                self._json(409, {"error": "snapshots are off in this run"})
                return
            wait = view.snapshot_wait()
            if wait:
                self._json(429, {"error": f"one snapshot per {SNAPSHOT_INTERVAL_S:g} s at most: try again in {wait:.1f} s"},
                           (("Retry-After", str(math.ceil(wait))),))
                return
            self._json(200, view.snapshot.take())

    return Handler
