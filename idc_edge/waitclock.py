"""Timing a wait without the time the process was not running.

A wait that polls in short steps (a camera's next frame, an open) judged its timeout by the monotonic
clock, which keeps running while the process is stopped: Ctrl-Z then ``fg`` at the terminal, a debugger,
a paused virtual machine or a frozen container. Resumed after a stop longer than the camera timeout, a
live run ended at once with "camera ... stopped answering" (exit 3) though the camera was sending frames
all along. :class:`WaitClock` counts each step at most ``max_step_s``: a step far longer than the poll
interval is time the process was not running, not time the camera was silent.
"""
from __future__ import annotations

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
