"""A progress line on stderr about once a second."""
from __future__ import annotations

import sys
import time
from typing import Optional, TextIO

from .base import Sink, SinkFrame


class ProgressSink(Sink):
    """``frame 120: IDC 18.0 % of tissue, tissue 64.2 %, 10.4 fps`` at most every ``every_s`` seconds.

    Runs on the loop thread after the sinks given before it, so a frame it names has been written
    by them (the results file puts it on disk first).
    """

    name = "progress"
    delivery = "inline"

    def __init__(self, stream: Optional[TextIO] = None, every_s: float = 1.0):
        self.stream = stream or sys.stderr
        self.every_s = every_s
        self._last = time.monotonic()

    def write(self, frame: SinkFrame) -> None:
        now = time.monotonic()
        if now - self._last < self.every_s:
            return
        self._last = now
        r = frame.result
        idc = f"IDC {100 * r.idc_fraction:.1f} % of tissue" if r.n_called or not r.n_tissue else \
            "no call (out of focus, exposure, colour or noise)"
        # one write per line: warnings from the capture and inference threads never land inside it
        self.stream.write(f"frame {r.index}: {idc}, tissue {100 * r.tissue_fraction:.1f} %, {frame.fps:.1f} fps\n")
