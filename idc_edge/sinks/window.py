"""The overlay in a desktop window (OpenCV's ``imshow``), checked before the run starts."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Mapping, Optional

from ..errors import OptionError
from .base import Sink, SinkFrame

_NO_DISPLAY_HINT = ("watch in a browser instead with LiveView (then open the URL it gives; host='0.0.0.0' lets "
                    "another machine watch), or save the overlay with VideoSink")
_NAMED = ["WindowSink", "LiveView", "host=", "VideoSink"]  # how the messages name options (see idc_edge.errors)


def opencv_has_gui() -> bool:
    """True when the installed OpenCV was built with a GUI backend (``opencv-python``, not ``-headless``)."""
    import cv2

    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GUI:"):
            return line.split(":", 1)[1].strip().upper() not in ("", "NONE")
    return False


def display_problem(env: Optional[Mapping[str, str]] = None, platform: str = sys.platform) -> Optional[str]:
    """Why no window can be shown here (no display server reachable), or None when one can.

    On Linux a window needs an X11 display (``DISPLAY``, its socket under /tmp/.X11-unix for a
    local one) or Wayland (``WAYLAND_DISPLAY``, its socket in ``XDG_RUNTIME_DIR``). OpenCV's Qt
    backend aborts the process (exit 134) when neither is there, so this is checked first.
    """
    if not platform.startswith("linux"):
        return None
    env = os.environ if env is None else env
    wayland = env.get("WAYLAND_DISPLAY")
    if wayland:
        runtime = env.get("XDG_RUNTIME_DIR") or ""  # relative: invalid by the XDG specification, never the cwd
        sock = Path(wayland) if os.path.isabs(wayland) else Path(runtime if os.path.isabs(runtime) else "/nonexistent") / wayland
        if sock.exists():
            return None
    display = env.get("DISPLAY")
    if display:
        host, _, number = display.rpartition(":")
        if host not in ("", "unix"):
            return None  # a remote X server (ssh -X): cannot be checked without connecting
        sock = Path("/tmp/.X11-unix") / f"X{number.split('.')[0]}"
        if sock.exists():
            return None
        return f"the display {display!r} is not running (no {sock})"
    if wayland:
        return f"the Wayland display {wayland!r} is not running"
    return "there is no display (DISPLAY and WAYLAND_DISPLAY are unset: a headless board or an ssh session)"


class WindowSink(Sink):
    """Shows each overlay in a window; ``q`` or Esc ends the run, ``s`` takes a snapshot.

    Checked when made, before any model is loaded: an OpenCV without a GUI (the headless wheel)
    or no reachable display raises :class:`~idc_edge.errors.OptionError` naming :class:`LiveView` as the
    way to watch from a browser, instead of letting OpenCV's Qt abort the process.

    Runs on the loop thread (GUI calls must stay on one thread); ``imshow`` + ``waitKey(1)`` takes
    about a millisecond.

    Args:
        title: window title.
        snapshot: a :class:`~idc_edge.sinks.snapshot.SnapshotSink` that ``s`` triggers.
    """

    name = "window"
    one_run = True
    delivery = "inline"
    needs_overlay = True

    def __init__(self, title: str = "idc-edge", snapshot=None):
        problem = display_problem()
        if problem:
            raise OptionError(f"WindowSink cannot open a window: {problem}; {_NO_DISPLAY_HINT}", options=_NAMED)
        if not opencv_has_gui():
            raise OptionError("WindowSink needs an OpenCV with a GUI, and the installed one is headless: "
                              "`pip install \"idc-edge[gui]\"` (see README, 'Live view and reports'), "
                              f"or {_NO_DISPLAY_HINT}", options=_NAMED)
        import cv2

        self._cv2 = cv2
        self.title = title
        self.snapshot = snapshot
        self._stop = False
        cv2.namedWindow(title, cv2.WINDOW_NORMAL)

    def write(self, frame: SinkFrame) -> None:
        cv2 = self._cv2
        cv2.imshow(self.title, frame.overlay)
        key = cv2.waitKey(1) & 0xFF
        if key in (27, ord("q")):
            self._stop = True
        elif key == ord("s") and self.snapshot is not None:
            self.snapshot.take()

    @property
    def stop_requested(self) -> bool:
        return self._stop

    def close(self) -> None:
        try:
            self._cv2.destroyWindow(self.title)
        except self._cv2.error:
            pass
