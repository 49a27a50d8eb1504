"""libjpeg's own warnings about damaged JPEG data, taken off the terminal and handed to the caller.

libjpeg (and libjpeg-turbo, which OpenCV links) prints its warnings itself, with ``fprintf`` on
standard error: "Corrupt JPEG data: 2 extraneous bytes before marker 0xd9", "Corrupt JPEG data:
premature end of data segment" (the rest of the picture is then filled grey). OpenCV installs no
handler for them, so neither ``cv2.utils.logging.setLogLevel`` nor ``OPENCV_LOG_LEVEL`` reaches
them (opencv/opencv#9477, opencv-python#610: "no way to catch it without code modification").

:func:`jpeg_warnings` points descriptor 2 at a private file for the length of one decode
(microseconds: two ``dup2`` calls, a read), keeps libjpeg's lines for the caller, and writes every
other line back to the real standard error, so the terminal loses nothing else (another thread's
message is only delayed by the decode). The lines are the one reliable sign that a frame was damaged:
libjpeg says exactly when it had to skip bytes or fill missing data. Decodes that capture are
serialised by one lock, since descriptor 2 belongs to the whole process.
"""
from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import threading
from typing import Iterator

#: libjpeg's warning lines (its JWRN_* messages); those that mean damaged data are :data:`DAMAGE`
LIBJPEG = re.compile(r"^(Corrupt JPEG data: |Premature end of JPEG file|Invalid SOS parameters for sequential JPEG|"
                     r"Inconsistent progression sequence|Warning: unknown JFIF revision|Unsupported marker type|"
                     r"Application transfer syntax)")
DAMAGE = re.compile(r"^(Corrupt JPEG data: |Premature end of JPEG file)")

_LOCK = threading.Lock()
_spool = None  # one private file for every capture, emptied after each


def _spool_fd() -> int:
    global _spool
    if _spool is None:
        _spool = tempfile.TemporaryFile()
    return _spool.fileno()


def _read_back(fd: int) -> bytes:
    size = os.lseek(fd, 0, os.SEEK_END)
    os.lseek(fd, 0, os.SEEK_SET)
    data = os.read(fd, size) if size else b""
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    return data


@contextlib.contextmanager
def jpeg_warnings() -> Iterator[list]:
    """For the block, libjpeg's warning lines go into the list yielded (filled when the block ends, e.g.
    ``"Corrupt JPEG data: premature end of data segment"``), not on the terminal.

    Anything else written on descriptor 2 meanwhile is written back to it when the block ends. Where
    descriptor 2 cannot be taken over (closed, no temporary file), the block runs as it would anyway.
    """
    notes: list = []
    with _LOCK:
        try:
            for stream in (sys.stderr, sys.__stderr__):
                with contextlib.suppress(Exception):
                    stream.flush()  # Python's own pending text goes out before, not into the spool
            spool, saved = _spool_fd(), os.dup(2)
        except OSError:
            yield notes
            return
        try:
            os.dup2(spool, 2)
            try:
                yield notes
            finally:
                os.dup2(saved, 2)
        finally:
            os.close(saved)
            others = []
            for line in _read_back(spool).decode("utf-8", "replace").splitlines(keepends=True):
                if LIBJPEG.match(line):
                    notes.append(line.strip())
                else:
                    others.append(line)
            if others:
                with contextlib.suppress(OSError):
                    os.write(2, "".join(others).encode("utf-8", "replace"))


def damage(notes: list) -> "str | None":
    """What the first of ``notes`` that means damaged data says (``"premature end of data segment"``:
    the frame was decoded only in part, or with bytes skipped), or None."""
    for note in notes:
        if DAMAGE.match(note):
            return note[len("Corrupt JPEG data: "):] if note.startswith("Corrupt") else note[0].lower() + note[1:]
    return None
