"""Capture, inference and drawing on separate threads, so decoding and drawing overlap the model.

    source ─reader thread─▶ frame queue ─inference thread─▶ result queue ─▶ caller's thread
    (decode a video,          (bounded)      (Detector.stream:        (bounded)   (draw, write the video
     wait for the camera)                     rescale, mask, model)               and JSONL, show)

OpenCV and the TFLite interpreter release Python's GIL while they work, so on a multi-core
board the three stages run at the same time and a frame costs the slowest stage rather than
the sum of all three. The caller's thread keeps the window (GUI calls must stay on one thread).

Files are read completely: when inference falls behind, the reader waits (no frame is lost).
For a live source (``source.live``, a camera) **the newest frame wins**: the queue holds one
frame and an older frame waiting there is replaced and counted in ``dropped``, so the overlay
follows the stage instead of lagging behind it.
"""
from __future__ import annotations

import queue
import threading
from typing import Iterable, Iterator, Optional

from . import validate
from .results import FrameResult

_END = object()


class _Failure:
    """An exception raised on a worker thread, handed to the caller's thread."""

    def __init__(self, error: BaseException):
        self.error = error


class ThreadedStream:
    """Iterate the detector's results for ``source`` with capture and inference on their own threads.

    Args:
        detector: a :class:`~idc_edge.detector.Detector`; only the inference thread uses it.
        source: an iterable of :class:`~idc_edge.sources.Frame` (or BGR arrays); ``source.live``
            True means newest-frame-wins.
        keep_image: attach each BGR frame to its result (for drawing).
        reuse: motion-aware reuse (None: the detector's option).
        depth: frames and results that may wait between stages (live sources keep 1 frame). One
            is enough for the stages to overlap; each more holds two more frames in memory
            (12 MB at 1920×1080) without measurably raising throughput.

    Use as a context manager or call :meth:`close` (safe twice); it stops both threads. It does not
    close ``source`` or ``detector``: their owner does, after this.
    """

    def __init__(self, detector, source: Iterable, *, keep_image: bool = True, reuse: Optional[bool] = None,
                 depth: int = 1):
        depth = validate.whole_number("depth", depth, unit="frames queued between threads")
        self.live = bool(getattr(source, "live", False))
        self.dropped = 0
        self._detector = detector
        self._source = source
        self._keep_image = keep_image
        self._reuse = reuse
        self._frames: queue.Queue = queue.Queue(maxsize=1 if self.live else depth)
        self._results: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read, name="idc-edge-capture", daemon=True)
        self._worker = threading.Thread(target=self._infer, name="idc-edge-inference", daemon=True)
        self._started = False

    # -- worker threads ----------------------------------------------------------------------
    def _put(self, q: queue.Queue, item) -> bool:
        """Put ``item``, waiting while ``q`` is full; False when stopped meanwhile."""
        while not self._stop.is_set():
            try:
                q.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _put_newest(self, item) -> None:
        """Put ``item``, replacing a frame that still waits (live sources)."""
        while True:
            try:
                self._frames.put_nowait(item)
                return
            except queue.Full:
                try:
                    self._frames.get_nowait()
                    self.dropped += 1
                except queue.Empty:
                    pass

    def _read(self) -> None:
        frames = None
        try:
            frames = iter(self._source)  # may raise too (a closed source): handed over like any failure
            for frame in frames:
                if self._stop.is_set():
                    return
                if self.live:
                    self._put_newest(frame)
                elif not self._put(self._frames, frame):
                    return
            self._put(self._frames, _END)
        except BaseException as e:  # handed to the caller's thread, raised there
            self._put(self._frames, _Failure(e))
        finally:
            close = getattr(frames, "close", None)
            if close is not None:
                close()  # a generator's cleanup (releasing a capture) runs on the thread that used it

    def _drain(self, q: queue.Queue) -> Iterator:
        """Items of ``q`` until its end marker or a stop; a worker's failure is raised here."""
        while not self._stop.is_set():
            try:
                item = q.get(timeout=0.05)
            except queue.Empty:
                continue
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item

    def _infer(self) -> None:
        try:
            for result in self._detector.stream(self._drain(self._frames), keep_image=self._keep_image,
                                                reuse=self._reuse):
                if not self._put(self._results, result):
                    return
            self._put(self._results, _END)
        except BaseException as e:
            self._put(self._results, _Failure(e))

    # -- the caller's side ---------------------------------------------------------------------
    def __iter__(self) -> Iterator[FrameResult]:
        if not self._started:
            self._started = True
            self._reader.start()
            self._worker.start()
        yield from self._drain(self._results)

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop both threads and wait for them (up to ``timeout_s`` each); safe to call twice."""
        self._stop.set()
        for q in (self._frames, self._results):  # free a thread waiting to put
            try:
                while True:
                    q.get_nowait()
            except queue.Empty:
                pass
        if self._started:
            self._worker.join(timeout_s)   # the detector may be closed once this returns
            self._reader.join(timeout_s)

    def __enter__(self) -> "ThreadedStream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
