"""Capture, inference and drawing on separate threads, so decoding and drawing overlap the model.

    source ─reader thread─▶ frame queue ─inference thread─▶ result queue ─▶ caller's thread
    (decode a video,          (bounded)      (Detector.stream:        (bounded)   (draw, write the video
     wait for the camera)                     rescale, mask, model)               and JSONL, show)

OpenCV and the TFLite interpreter release Python's GIL while they work, so on a multi-core
board the three stages run at the same time and a frame costs the slowest stage rather than
the sum of all three. The caller's thread keeps the window (GUI calls must stay on one thread).

Files are read completely: when inference falls behind, the reader waits (no frame is lost).
Each frame is handed over directly (:class:`~idc_edge.handoff.Handoff`): a stage works on the
next frame while the one after it works on this one, and no frame waits in between, since every
waiting 1080p frame is 6 MB more and one waiting frame per stage measured no faster.
For a live source (``source.live``, a camera) **the newest frame wins**: one frame may wait and
an older frame waiting there is replaced and counted in ``dropped``, so the overlay follows the
stage instead of lagging behind it.

A caller's own iterable may hand out one buffer again and again (``cap.read(buf)``, a camera SDK's
grab buffers): its next frame would be written into the array the other threads still read and the
overlay drawn on, so the reader thread copies each of its frames. idc-edge's own sources
(``fresh_frames``) make a new array per frame and are not copied.
"""
from __future__ import annotations

import queue
import threading
from types import SimpleNamespace
from typing import Iterable, Iterator, Optional

import numpy as np

from . import validate
from .handoff import Handoff
from .results import FrameResult

_END = object()


class _Failure:
    """An exception raised on a worker thread, handed to the caller's thread."""

    def __init__(self, error: BaseException):
        self.error = error


def copied(item):
    """A caller's frame (a bare array, or an object with ``image`` and optionally ``index``,
    ``timestamp``, ``damage``) with its own copy of the pixels; anything else as it is."""
    if isinstance(item, np.ndarray):
        return item.copy()
    image = getattr(item, "image", None)
    if not isinstance(image, np.ndarray):
        return item
    kept = {name: getattr(item, name) for name in ("index", "timestamp", "damage") if hasattr(item, name)}
    return SimpleNamespace(image=image.copy(), **kept)


class ThreadedStream:
    """Iterate the detector's results for ``source`` with capture and inference on their own threads.

    Args:
        detector: a :class:`~idc_edge.detector.Detector`; only the inference thread uses it.
        source: an iterable of :class:`~idc_edge.sources.Frame` (or BGR arrays); ``source.live``
            True means newest-frame-wins.
        keep_image: attach each BGR frame to its result (for drawing).
        reuse: motion-aware reuse (None: the detector's option).
        depth: frames and results that may wait between stages besides the ones the stages work
            on (live sources let 1 frame wait). 0 (the default) is enough for the stages to
            overlap; each more holds two more frames in memory (12 MB at 1920×1080) without
            measurably raising throughput.

    Use as a context manager or call :meth:`close` (safe twice); it stops both threads. It does not
    close ``source`` or ``detector``: their owner does, after this.
    """

    def __init__(self, detector, source: Iterable, *, keep_image: bool = True, reuse: Optional[bool] = None,
                 depth: int = 0):
        depth = validate.whole_number("depth", depth, minimum=0, unit="frames waiting between threads")
        keep_image = validate.flag("keep_image", keep_image)  # checked here, not on the inference thread
        reuse = None if reuse is None else validate.flag("reuse", reuse)
        self.live = bool(getattr(source, "live", False))
        self.dropped = 0
        self._detector = detector
        self._source = source
        self._keep_image = keep_image
        self._reuse = reuse
        self._frames = Handoff(max(1, depth) if self.live else depth)
        self._results = Handoff(depth)
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read, name="idc-edge-capture", daemon=True)
        self._worker = threading.Thread(target=self._infer, name="idc-edge-inference", daemon=True)
        self._started = False

    # -- worker threads ----------------------------------------------------------------------
    def _read(self) -> None:
        frames = None
        fresh = bool(getattr(self._source, "fresh_frames", False))
        try:
            frames = iter(self._source)  # may raise too (a closed source): handed over like any failure
            for frame in frames:
                if self._stop.is_set():
                    return
                if not fresh:  # the caller may fill this buffer again while inference reads it
                    frame = copied(frame)
                if self.live:
                    self.dropped += self._frames.put_newest(frame)
                elif not self._frames.put(frame, self._stop):
                    return
            self._frames.put(_END, self._stop)
        except BaseException as e:  # handed to the caller's thread, raised there
            self._frames.put(_Failure(e), self._stop)
        finally:
            close = getattr(frames, "close", None)
            if close is not None:
                close()  # a generator's cleanup (releasing a capture) runs on the thread that used it

    def _drain(self, channel: Handoff) -> Iterator:
        """Items of ``channel`` until its end marker or a stop; a worker's failure is raised here."""
        while not self._stop.is_set():
            try:
                item = channel.get(timeout=0.05)
            except queue.Empty:
                continue
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.error
            held = [item]
            del item
            # yielded without a name left on it here, so the item (a 1080p frame is 6 MB) is freed once
            # the caller is done with it, not kept while this waits for the next one
            yield held.pop()

    def _infer(self) -> None:
        try:
            for result in self._detector.stream(self._drain(self._frames), keep_image=self._keep_image,
                                                reuse=self._reuse):
                if not self._results.put(result, self._stop):
                    return
            self._results.put(_END, self._stop)
        except BaseException as e:
            self._results.put(_Failure(e), self._stop)

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
        for channel in (self._frames, self._results):  # free a thread waiting to put
            channel.clear()
        if self._started:
            self._worker.join(timeout_s)   # the detector may be closed once this returns
            self._reader.join(timeout_s)

    def __enter__(self) -> "ThreadedStream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
