"""The results file: a session header, then one durable JSON line per frame."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional, Union

from ..errors import RecordError
from ..overlay import idc_area_mm2
from ..record import RESULTS_FORMAT, SESSION_KEY, JsonlRecorder
from .base import SessionInfo, Sink, SinkFrame

def session_header(info: SessionInfo) -> dict[str, Any]:
    """The record that starts a run in a results file (JSON-ready): ``{"session": {...}}``."""
    return {SESSION_KEY: {
        "format": RESULTS_FORMAT, "idc_edge": info.version, "started": info.started_utc, "id": info.session_id,
        "model": {"name": info.model_name, "path": info.model_path, "sha256": info.model_sha256,
                  "context": info.context},
        "threshold": info.threshold, "um_per_px": info.um_per_px, "model_um_per_px": info.model_um_per_px,
        "patch_px": info.patch_px, "stride_px": info.stride_px, "cell_um": info.cell_um,
        "source": {"description": info.source, "live": info.live, "fps": info.source_fps,
                   "camera_mode": info.camera_mode},
        "options": info.options, "outputs": info.outputs}}


def frame_record(frame: SinkFrame) -> dict[str, Any]:
    """A frame's results line: :meth:`FrameResult.to_dict` plus areas in mm² and, when the result
    has them, the focus and exposure flags."""
    result = frame.result
    record = result.to_dict()
    idc_mm2, tissue_mm2 = idc_area_mm2(result, frame.info.cell_um)
    record["idc_area_mm2"] = round(idc_mm2, 6)
    record["tissue_area_mm2"] = round(tissue_mm2, 6)
    for flag in ("in_focus", "exposure_ok"):
        value = getattr(result, flag, None)
        if value is not None and flag not in record:
            record[flag] = bool(value)
    return record


class JsonlSink(Sink):
    """Appends the run to a JSON Lines results file (see :mod:`idc_edge.record`): a session header
    when the run starts, then one line per frame, each on disk (``fsync``) before the frame counts
    as reported. Runs on the loop thread, so the progress shown never runs ahead of the file.

    Args:
        path: the ``.jsonl`` file (created, or appended to; its folder must exist).
        fsync: flush each line to the storage device (survives power cuts).
    """

    name = "results"
    delivery = "inline"

    def __init__(self, path: Union[str, os.PathLike], fsync: bool = True):
        from ..fileio import as_path, check_full_path, no_folder
        from ..validate import flag

        self.path = Path(as_path(path, "JsonlSink's path"))
        fsync = flag("fsync", fsync)
        check_full_path(self.path, "results file", RecordError)  # else "folder ... does not exist" below
        if not self.path.parent.is_dir():
            raise RecordError(f"cannot write results to {str(self.path)!r}: {no_folder(self.path.parent)}")
        self.fsync = fsync
        self._recorder: Optional[JsonlRecorder] = None

    def start(self, info: SessionInfo) -> None:
        self._recorder = JsonlRecorder(self.path, fsync=self.fsync)
        self._recorder.write(session_header(info))

    def write(self, frame: SinkFrame) -> None:
        self._recorder.write(frame_record(frame))

    @property
    def lines(self) -> int:
        """Frame records this run wrote (the header not counted), including one an interrupt
        could not stop from reaching the disk."""
        return self._recorder.frames if self._recorder is not None else 0

    def close(self) -> None:
        if self._recorder is not None:
            self._recorder.close()

    def summary(self) -> Optional[str]:
        # the recorder's name: a file deleted or moved during the run is made again or followed there
        return f"{self.lines} result(s) in {self._recorder.path if self._recorder is not None else self.path}"

    def to_dict(self) -> Optional[dict]:
        return {"path": str(self.path.resolve())}
