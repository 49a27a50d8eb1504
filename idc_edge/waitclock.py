"""Clocks that clock changes and stops do not move: timing a wait without the time the process was not
running, and live frames' times without the wall clock's steps.

A wait that polls in short steps (a camera's next frame, an open) judged its timeout by the monotonic
clock, which keeps running while the process is stopped: Ctrl-Z then ``fg`` at the terminal, a debugger,
a paused virtual machine or a frozen container. Resumed after a stop longer than the camera timeout, a
live run ended at once with "camera ... stopped answering" (exit 3) though the camera was sending frames
all along. :class:`WaitClock` counts each step at most ``max_step_s``: a step far longer than the poll
interval is time the process was not running, not time the camera was silent.

A live camera's frames were stamped with the wall clock, which steps when it is set: a board without a
real-time clock starts near 1970 (or at the time it last shut down) and steps to the present when the
network sets it, minutes into a run. A results file then said "300 frame(s) over 1795992841.8 s" and its
plot of IDC over time spanned 57 years. :func:`steady_time` is the wall clock as it read when first
asked, carried on by the monotonic clock, which the clock's steps do not move.
"""
from __future__ import annotations

import threading
import time


class WaitClock:
    """Seconds waited since it was made, each step between two readings counted at most ``max_step_s``.

    Read it at least once per poll (every 0.1-0.5 s); a gap longer than ``max_step_s`` between two
    readings (the process stopped, or starved of CPU) adds only ``max_step_s``.
    """

    def __init__(self, max_step_s: float):
        self.max_step_s = float(max_step_s)
        self._last = time.monotonic()
        self._waited = 0.0

    def waited(self) -> float:
        """Seconds waited so far (see the class), as of now."""
        now = time.monotonic()
        self._waited += min(max(0.0, now - self._last), self.max_step_s)
        self._last = now
        return self._waited


_ANCHOR: list = []  # [(wall-clock time, monotonic time)] when steady_time was first called
_ANCHOR_LOCK = threading.Lock()


def steady_time() -> float:
    """Seconds since the epoch as the wall clock read at this process's first call, plus the monotonic
    seconds since: a live frame's time, which the wall clock being set (stepped back or forward) does
    not move. Drifts from the wall clock only by its steps (and by NTP's slewing, which both clocks follow)."""
    if not _ANCHOR:
        with _ANCHOR_LOCK:
            if not _ANCHOR:
                _ANCHOR.append((time.time(), time.monotonic()))
    wall, mono = _ANCHOR[0]
    return wall + (time.monotonic() - mono)
