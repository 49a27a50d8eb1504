"""Durable outputs of a run: a JSON Lines results file and an annotated video.

:class:`JsonlRecorder` appends one complete line per frame with a single ``write`` and
flushes it to disk (``fsync``) before the frame counts as reported, so a crash, ``kill -9`` or
power cut leaves every frame reported before it, each on a whole line. The one thing a kill can
leave is the *unfinished* last record without its newline (the kernel may stop a write of a
line larger than a memory page part-way): :func:`read_records` ignores such a fragment and the
next :class:`JsonlRecorder` on the file cuts it off before appending, so every line of the file
is valid JSON. Nothing else of an existing file is ever changed. A failed write (full disk,
file-size limit, I/O error, or an interrupt in the middle of it) is rolled back to the last
whole line and raised as :class:`RecordError`.
"""
from __future__ import annotations

import errno
import json
import logging
import os
from pathlib import Path
from typing import Any, Optional, Union

import cv2
import numpy as np

from .errors import OptionError, RecordError

log = logging.getLogger(__name__)


_WHY = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded",
        errno.EFBIG: "the file is too large for this file system (or the process's file-size limit)",
        errno.EIO: "an I/O error (failing SD card or disk?)", errno.EROFS: "the file system is read-only"}


def _is_json(data: bytes) -> bool:
    try:
        json.loads(data.decode("utf-8"))
        return True
    except (UnicodeDecodeError, ValueError):
        return False


def _unterminated_tail(path: Union[str, os.PathLike], chunk: int = 1 << 16) -> bytes:
    """The bytes after the file's last newline (empty when it ends with one or is empty)."""
    with open(path, "rb") as f:
        pos, tail = f.seek(0, os.SEEK_END), b""
        while pos > 0:
            step = min(chunk, pos)
            pos -= step
            f.seek(pos)
            block = f.read(step)
            cut = block.rfind(b"\n")
            if cut >= 0:
                return block[cut + 1:] + tail
            tail = block + tail
        return tail


def read_records(path: Union[str, os.PathLike]) -> list[dict[str, Any]]:
    """Every record of a results file written by :class:`JsonlRecorder`, in order.

    A final fragment without a newline (a record a crash or power cut interrupted; it was
    never reported) is ignored.

    Raises:
        RecordError: the file cannot be read, or a complete line is not valid JSON.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise RecordError(f"cannot read results {str(path)!r}: {e.strerror}") from None
    out = []
    for number, line in enumerate(data.split(b"\n")[:-1], 1):  # after the last newline: unfinished
        try:
            out.append(json.loads(line.decode("utf-8")))
        except (UnicodeDecodeError, ValueError):
            raise RecordError(f"results {str(path)!r} line {number} is not valid JSON") from None
    return out


class JsonlRecorder:
    """Appends JSON objects, one per line, durably.

    Args:
        path: the ``.jsonl`` file (created if missing, appended to if present).
        fsync: flush every line to the storage device (survives power cuts; a few ms per
            line on SD cards). Without it, lines survive a process crash but not a power cut.
    """

    def __init__(self, path: Union[str, os.PathLike], fsync: bool = True):
        self.path = Path(path)
        self.fsync = fsync
        self.lines = 0
        parent = self.path.parent
        if not parent.is_dir():
            raise RecordError(f"cannot write results to {str(self.path)!r}: folder {str(parent)!r} does not exist")
        try:
            self._fd: Optional[int] = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError as e:
            raise RecordError(f"cannot open {str(self.path)!r} for results: {e.strerror}") from None
        self._size = os.fstat(self._fd).st_size
        if self._size:
            self._repair_tail()

    def _repair_tail(self) -> None:
        """Cut off a record left unfinished by a crash; end a whole last line that lacks only its newline."""
        tail = _unterminated_tail(self.path)
        if not tail:
            return
        if _is_json(tail):
            self._append(b"\n")  # whole JSON, e.g. written by hand: keep it, end the line
            return
        try:
            os.ftruncate(self._fd, self._size - len(tail))
        except OSError as e:
            raise RecordError(f"cannot repair {str(self.path)!r} (its last record was cut by a crash): "
                              f"{e.strerror}") from None
        self._size -= len(tail)
        log.warning("%s: removed an unfinished last record (%d bytes) left by a crash or power cut",
                    self.path, len(tail))

    def _append(self, data: bytes, record: bool = False) -> None:
        """Write ``data`` whole and flush it, or leave the file as it was; ``record`` counts a line.

        An interrupt (Ctrl-C, SIGTERM: a KeyboardInterrupt that Python raises between any two
        steps, whichever thread the signal hit) is sorted out by the file's size: a line already
        written whole is kept, flushed and counted; a part of one is cut off. Then it propagates.
        """
        view = memoryview(data)
        try:
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
            if self.fsync:
                os.fsync(self._fd)
        except OSError as e:
            self._cut_to_whole_lines()
            what = _WHY.get(e.errno, e.strerror)
            raise RecordError(f"cannot write results to {str(self.path)!r}: {what}; "
                              f"{self.lines} frame(s) of this run were saved before it") from None
        except BaseException:
            try:
                whole = os.fstat(self._fd).st_size == self._size + len(data)
            except OSError:
                whole = False
            if whole:  # the interrupt came after the write: the line is there, keep and count it
                self._size += len(data)
                self.lines += record
                try:
                    if self.fsync:
                        os.fsync(self._fd)
                except OSError:
                    pass
            else:
                self._cut_to_whole_lines()
            raise
        self._size += len(data)
        self.lines += record

    def _cut_to_whole_lines(self) -> None:
        try:
            os.ftruncate(self._fd, self._size)
        except OSError:
            pass  # a device like /dev/full cannot be truncated; nothing was added to it either

    def write(self, record: dict[str, Any]) -> None:
        """Append ``record`` as one line and flush it; when this returns the line is on disk."""
        if self._fd is None:
            raise RecordError(f"results file {str(self.path)!r} is already closed")
        self._append((json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n").encode("utf-8"), True)

    def close(self) -> None:
        """Close the file; safe to call twice."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "JsonlRecorder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "FFV1"}


class VideoRecorder:
    """Writes BGR frames to a video file; the size is fixed by the first frame.

    The codec follows the extension: ``.mp4``/``.mov`` MPEG-4 (mp4v), ``.avi`` MJPG, ``.mkv``
    FFV1 (lossless). Frames of another size are resized to the first one.
    """

    def __init__(self, path: Union[str, os.PathLike], fps: float = 30.0):
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in _FOURCC:
            raise OptionError(f"--save-video {str(self.path)!r}: use one of {', '.join(sorted(_FOURCC))}")
        if not self.path.parent.is_dir():
            raise RecordError(f"cannot write video {str(self.path)!r}: folder {str(self.path.parent)!r} does not exist")
        if not fps > 0:
            fps = 30.0
        self.fps = float(fps)
        self._fourcc = cv2.VideoWriter_fourcc(*_FOURCC[suffix])
        self._writer: Optional[cv2.VideoWriter] = None
        self._size: Optional[tuple[int, int]] = None
        self.frames = 0

    def write(self, frame_bgr: np.ndarray) -> None:
        h, w = frame_bgr.shape[:2]
        if self._writer is None:
            self._size = (w, h)
            self._writer = cv2.VideoWriter(str(self.path), self._fourcc, self.fps, self._size)
            if not self._writer.isOpened():
                self._writer = None
                raise RecordError(f"cannot write video {str(self.path)!r}: OpenCV has no encoder for it here; "
                                  "try .avi (MJPG) or .mkv (FFV1)")
        elif (w, h) != self._size:
            frame_bgr = cv2.resize(frame_bgr, self._size)
        self._writer.write(frame_bgr)
        self.frames += 1

    def close(self) -> None:
        """Finalise the file so it is playable; safe to call twice."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None

    def __enter__(self) -> "VideoRecorder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
