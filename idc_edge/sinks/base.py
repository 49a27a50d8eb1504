"""What every output of a run (a "sink") is, and how frames reach it without stalling the run.

A sink is a small object with one job (write the results file, the video, show a window, serve
a browser, save snapshots). The session calls ``start(info)`` once before the first frame,
``write(frame)`` per frame and ``close()`` once at the end, always in that order and never
concurrently. A sink whose ``one_run`` is set serves one session only. How a sink is fed is its
``delivery``:

- ``"inline"``: ``write`` runs on the session's loop thread, in the order the sinks were given.
  For cheap sinks that must see every frame in order before the run goes on (the results file,
  whose line is on disk before the frame counts as reported) or that must stay on one thread
  (an OpenCV window).
- ``"latest"``: ``write`` runs on the sink's own thread; a frame still waiting when the next
  one arrives is replaced (newest wins) and counted in ``dropped``. A slow sink (a browser on
  Wi-Fi, an encoder on a small board) then skips frames but never slows capture or inference.
- ``"every"``: the sink's own thread, handed each frame directly: the loop waits until the sink
  has taken the frame before it goes on, so nothing is dropped (a video of a file source holds
  every frame) and no frame waits in between (each waiting 1080p frame is 6 MB more); the
  loop's next frame is drawn while the sink still writes this one. The wait is the sink's cost,
  paid only by file sources, which have no frames to lose.

An exception raised by a threaded sink stops the run at the next frame, as an inline one does,
unless the sink is not ``essential`` (the browser view): then it is logged once and the run goes
on without that sink, since the results file and video matter more than a viewer.
"""
from __future__ import annotations

import logging
import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from ..handoff import Handoff

if TYPE_CHECKING:  # pragma: no cover
    from ..results import FrameResult

DELIVERIES = ("inline", "latest", "every")

log = logging.getLogger(__name__)


def new_session_id() -> str:
    """A run's own id: its start time to the microsecond (UTC) and 48 random bits
    (``20261129T052038.123456Z-3f9c0a1b2c4d``), so two runs started in the same second, on one
    device or two, never share one. Written in the results header, the video's frame index and each
    snapshot, it ties a picture to the session that took it."""
    return f"{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%S.%fZ')}-{secrets.token_hex(6)}"


@dataclass(frozen=True)
class SessionInfo:
    """What a sink may need to know about the run, fixed when it starts.

    Attributes:
        version: idc-edge version.
        started_utc: start time, ISO 8601 UTC (``2026-11-28T06:40:00Z``).
        model_name: the model's file stem (``idc_int8``) or its architecture when known.
        model_path: the ``.tflite`` file.
        model_sha256: the model file's SHA-256 (hex).
        threshold: decision threshold in use.
        context: how windows are read with their neighbours (the sidecar's ``context``:
            ``sigma_px``, ``weight``, ``threshold``), None when each window is decided alone.
        um_per_px: microns per pixel of the frames (the camera's scale).
        model_um_per_px: microns per pixel the model works at.
        patch_px: patch side in model pixels.
        stride_px: distance between patches in model pixels.
        cell_um: side of the square each classified patch stands for, in µm (its stride).
        source: what is read (``camera 0``, ``video 'slide.mp4'`` ...).
        live: True for cameras (newest frame wins).
        source_fps: frames per second the source declares (0 when it declares none).
        camera_mode: the camera's mode when known (size, fps, format), else None.
        options: the run's options as JSON-ready values.
        outputs: what each sink writes where (``{"video": {"path": ...}, "snapshots": {...}}``), so a
            report can find the video and snapshots of a session.
        session_id: this run's unique id (:func:`new_session_id`); a report takes a video's or a
            snapshot's picture for the session only when it carries the same id.
    """

    version: str
    started_utc: str
    model_name: str
    model_path: str
    model_sha256: str
    threshold: float
    um_per_px: float
    model_um_per_px: float
    patch_px: int
    stride_px: int
    cell_um: float
    source: str
    live: bool
    source_fps: float = 0.0
    camera_mode: Optional[dict] = None
    options: dict = field(default_factory=dict)
    outputs: dict = field(default_factory=dict)
    context: Optional[dict] = None
    session_id: str = field(default_factory=new_session_id)


@dataclass(frozen=True)
class SinkFrame:
    """One frame as the sinks get it.

    Attributes:
        result: the detector's result; ``result.image`` is the BGR frame when a sink asked for it.
        overlay: the BGR frame with the overlay drawn (full size), when a sink asked for it.
        fps: frames per second of the run so far.
        info: the session's :class:`SessionInfo`.
    """

    result: "FrameResult"
    overlay: Optional[np.ndarray]
    fps: float
    info: SessionInfo


class Sink:
    """Base of all sinks; see the module's docstring for the life cycle and deliveries.

    Class attributes a sink sets: ``name`` (for messages), ``delivery``, ``needs_image``
    (wants ``result.image``), ``needs_overlay`` (wants :attr:`SinkFrame.overlay`), ``essential``
    (False: its failure is a warning and the run goes on without it).
    """

    name = "sink"
    delivery = "latest"
    needs_image = False
    needs_overlay = False
    essential = True
    #: True for a sink that holds one run's output and cannot start again once closed (a video file
    #: with its name's lock and frame index, a web server, a window): a session given one that an
    #: earlier session already took refuses it before the run (make a new one for each run).
    #: False: ``start`` begins afresh each time (the results file appends a new session).
    one_run = False
    #: set by the session that takes this sink (see ``one_run``)
    taken_by_a_session = False

    def start(self, info: SessionInfo) -> None:
        """Called once, before the first frame (open files, start servers)."""

    def write(self, frame: SinkFrame) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Finish (finalise files, stop servers); called once, also after a failure."""

    @property
    def stop_requested(self) -> bool:
        """True when the user asked this sink to end the run (a key in a window)."""
        return False

    def summary(self) -> Optional[str]:
        """A few words for the run's summary line (``"12 result(s) in r.jsonl"``), or None."""
        return None

    def to_dict(self) -> Optional[dict]:
        """What this sink writes where (JSON-ready, for the results file's session header), or None."""
        return None


class SinkFeed:
    """Feeds one sink by its ``delivery``; the session owns one per sink.

    ``offer`` never waits for a ``"latest"`` sink; it waits until an ``"every"`` sink has taken the
    frame and runs an ``"inline"`` one directly. A threaded sink's exception is raised by the next
    ``offer`` (or by ``close``). ``dropped`` counts frames a ``"latest"`` sink never saw.
    """

    def __init__(self, sink: Sink):
        delivery = getattr(sink, "delivery", "latest")
        if delivery not in DELIVERIES:
            raise ValueError(f"sink {sink!r}: delivery must be one of {DELIVERIES}, got {delivery!r}")
        self.sink = sink
        self.delivery = delivery
        self.dropped = 0
        self.written = 0
        self._error: Optional[BaseException] = None
        self._failed = False
        self._stop = threading.Event()
        # "latest": one frame may wait and a newer one replaces it; "every": handed over directly
        self._queue = Handoff(1 if delivery == "latest" else 0)
        self._thread: Optional[threading.Thread] = None
        if delivery != "inline":
            self._thread = threading.Thread(target=self._run, name=f"idc-edge-sink-{sink.name}", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._error is not None or self._failed:
                continue  # failed once: keep draining so the loop never waits on a dead sink
            try:
                self.sink.write(item)
                self.written += 1
            except BaseException as e:  # handed to the loop thread by the next offer
                self._error = e
            del item  # not held while waiting for the next frame

    def _raise_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            self._failed = True
            if not getattr(self.sink, "essential", True) and isinstance(error, Exception):
                log.warning("%s stopped (%s: %s); the run goes on without it", self.sink.name,
                            type(error).__name__, error)
                return
            raise error

    def offer(self, item: SinkFrame) -> None:
        """Hand ``item`` to the sink (see the class docstring for who waits)."""
        self._raise_error()
        if self._failed:
            return
        if self.delivery == "inline":
            try:
                self.sink.write(item)
            except Exception as e:
                if getattr(self.sink, "essential", True):
                    raise
                self._error = e
                self._raise_error()  # logged; this sink is fed no more
                return
            self.written += 1
        elif self.delivery == "latest":
            self.dropped += self._queue.put_newest(item)
        else:
            self._queue.put(item)

    def close(self, timeout_s: float = 30.0) -> Any:
        """Let a threaded sink finish what is queued (a ``"latest"`` one its one waiting frame),
        stop its thread, then close the sink. Raises what the sink raised and never reported."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout_s)
        try:
            self.sink.close()
        finally:
            if not self._failed:
                self._raise_error()
