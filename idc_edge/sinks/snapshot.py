"""Snapshots on request: the current overlay and frame as PNG, with what was found as JSON."""
from __future__ import annotations

import json
import os
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional, Union

import cv2

from ..errors import OptionError, RecordError
from ..fileio import as_path, check_full_path, name, no_folder, refuse_kernel_files, write_whole
from ..overlay import OverlayInfo, OverlayStyle, draw_overlay
from .base import SessionInfo, Sink, SinkFrame


def _remove(paths: list[Path]) -> None:
    """Remove the files ``paths`` (those of a snapshot that could not be saved whole); never raises."""
    for path in paths:
        try:
            os.unlink(path)
        except OSError:
            pass


class SnapshotSink(Sink):
    """Keeps the newest frame and, when :meth:`take` is called (the browser's Snapshot button, ``s``
    in the window), saves it to ``folder`` as three files with a common name
    ``idc-<UTC time>-f<frame>``: ``.png`` (the overlay, full size), ``-raw.png`` (the frame as
    captured) and ``.json`` (the frame's results record, IDC area, the session's model, threshold
    and µm/px, and the file names). Files are written under a temporary name and renamed, and the
    files of a snapshot that cannot be saved whole are removed, so a snapshot is either whole or absent.

    Holding the newest frame costs nothing per frame; the overlay is drawn only when a snapshot
    is taken. Safe to call :meth:`take` from any thread.

    Args:
        folder: where snapshots go (created if missing; its parent must exist).
        style: how the overlay is drawn (the run's style by default).
    """

    name = "snapshots"
    delivery = "inline"
    needs_image = True

    def __init__(self, folder: Union[str, os.PathLike], style: OverlayStyle = OverlayStyle()):
        if not isinstance(style, OverlayStyle):  # else the first snapshot failed, mid-session
            raise OptionError(f"style must be an OverlayStyle, got {type(style).__name__}", option="style")
        self.folder = Path(as_path(folder, "snapshots folder"))
        check_full_path(self.folder, "snapshots in", RecordError, "save")
        # checked now, not when the Snapshot button is pressed in the middle of a session
        where = self.folder if self.folder.is_dir() else self.folder.parent
        if os.path.lexists(self.folder) and not self.folder.is_dir():
            raise RecordError(f"cannot save snapshots in {name(self.folder)}: it is a file, not a folder; give "
                              "SnapshotSink a folder (made if missing)", options=["SnapshotSink"])
        if not where.is_dir():
            raise RecordError(f"cannot save snapshots in {name(self.folder)}: {no_folder(where)}")
        refuse_kernel_files(str(self.folder), "snapshots folder", RecordError)  # /proc, /sys: no place for pictures
        if not os.access(where, os.W_OK | os.X_OK):
            raise RecordError(f"cannot save snapshots in {name(self.folder)}: folder {name(where)} is not writable; "
                              "give SnapshotSink another folder", options=["SnapshotSink"])
        self.style = style
        self._lock = threading.Lock()
        self._latest: Optional[SinkFrame] = None
        self.taken: list[Path] = []

    def write(self, frame: SinkFrame) -> None:
        with self._lock:
            self._latest = frame

    def take(self, style: Optional[OverlayStyle] = None) -> dict:
        """Save the newest frame now; returns ``{"png", "raw_png", "json", "index"}`` (paths as str).

        Raises:
            RecordError: no frame yet, or the files cannot be written (full disk, permissions).
        """
        from .jsonl import frame_record, session_header

        with self._lock:
            frame = self._latest
        if frame is None or frame.result.image is None:
            raise RecordError("no frame to save yet: wait for the first frame")
        result, info = frame.result, frame.info
        overlay = draw_overlay(result.image, result, style or self.style, fps=None,
                               info=OverlayInfo(info.um_per_px, info.cell_um, info.model_name))
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-%f")[:-3]
        base = f"idc-{stamp}-f{result.index}"
        png, raw, meta = (self.folder / f"{base}.png", self.folder / f"{base}-raw.png", self.folder / f"{base}.json")
        record = {"snapshot": {"png": png.name, "raw_png": raw.name, "taken": stamp},
                  "frame": frame_record(frame), "session": session_header(info)}
        written: list[Path] = []
        try:
            self.folder.mkdir(exist_ok=True)
            for path, image in ((png, overlay), (raw, result.image)):
                ok, data = cv2.imencode(".png", image)
                if not ok:
                    raise OSError(0, "PNG encoding failed")
                write_whole(path, data.tobytes(), "snapshot", error=RecordError)
                written.append(path)
            write_whole(meta, (json.dumps(record, indent=1, allow_nan=False) + "\n").encode("utf-8"), "snapshot",
                        error=RecordError)
        except (OSError, RecordError) as e:
            _remove(written)  # a snapshot is whole or absent: its pictures alone are no snapshot, and filled the disk
            said = str(e) if isinstance(e, RecordError) else f"cannot save a snapshot in {str(self.folder)!r}: {e.strerror or e}"
            raise RecordError(f"snapshot not saved, none of its files kept: {said}") from None
        with self._lock:
            self.taken.append(png)
        return {"png": str(png), "raw_png": str(raw), "json": str(meta), "index": result.index}

    def to_dict(self) -> Optional[dict]:
        return {"folder": str(self.folder.resolve())}

    def summary(self) -> Optional[str]:
        return f"{len(self.taken)} snapshot(s) in {self.folder}" if self.taken else None

