"""A minimal progress bar on stderr, shown only when stderr is a terminal."""
from __future__ import annotations

import sys
import time
from typing import Optional, TextIO


class Progress:
    """``label [#####-----] 120/300  45.1/s``, redrawn at most 10 times a second."""

    def __init__(self, label: str, stream: Optional[TextIO] = None, enabled: Optional[bool] = None):
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self._start = time.monotonic()
        self._last = 0.0

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if done < total and now - self._last < 0.1:
            return
        self._last = now
        width = 30
        filled = int(width * done / total) if total else width
        rate = done / max(now - self._start, 1e-9)
        self.stream.write(f"\r{self.label} [{'#' * filled}{'-' * (width - filled)}] {done}/{total}  {rate:.1f}/s")
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()
