"""Outputs of a run, one small class each; see :mod:`idc_edge.sinks.base` for how they are fed.

- :class:`JsonlSink`: the results file (session header, one durable line per frame).
- :class:`VideoSink`: the overlay video at the real rate.
- :class:`WindowSink`: a desktop window (checks for a display first).
- :class:`LiveView`: the live view in a browser (MJPEG, numbers, Snapshot button).
- :class:`SnapshotSink`: PNG + JSON of the newest frame on request.
- :class:`ProgressSink`: a progress line on stderr.
"""
from .base import SessionInfo, Sink, SinkFrame
from .jsonl import JsonlSink
from .progress import ProgressSink
from .snapshot import SnapshotSink
from .video import VideoSink
from .web import LiveView, parse_address
from .window import WindowSink

__all__ = ["JsonlSink", "LiveView", "ProgressSink", "SessionInfo", "Sink", "SinkFrame", "SnapshotSink", "VideoSink",
           "WindowSink", "parse_address"]
