"""Durable outputs of a run: a JSON Lines results file and an annotated video.

:class:`JsonlRecorder` appends one complete line per frame with a single ``write`` and
flushes it to disk (``fsync``) before the frame counts as reported, so a crash, ``kill -9`` or
power cut leaves every frame reported before it, each on a whole line. The one thing a kill can
leave is the *unfinished* last record without its newline (the kernel may stop a write of a
line larger than a memory page part-way): :func:`read_records` ignores such a fragment and the
next :class:`JsonlRecorder` on the file cuts it off before appending, so every line of the file
is valid JSON. A whole last record without its newline (an editor saved the file so) is read and
kept; files joined by hand (``cat``) where a record runs into the next one's line are read apart.
Nothing else of an existing file is ever changed. A failed write (full disk,
file-size limit, I/O error, or an interrupt in the middle of it) is rolled back to the last
whole line and raised as :class:`RecordError`.

Each run appended to a results file starts with a session header (``{"session": {...}}``), so
several runs in one file stay apart: :func:`read_sessions` returns them one by one,
:func:`read_records` every frame record of all of them.
"""
from __future__ import annotations

import contextlib
import errno
import json
import logging
import math
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional, Union

import cv2
import numpy as np

from .errors import OptionError, RecordError
from .budget import check_buffer
from .fileio import (as_path, check_full_path, name, no_folder, open_input, open_output, opencv_path,
                     lock_within, refuse_kernel_files, short, why, write_all)
from .jsonready import RepeatedKey, unique_keys
from .rescale import letterbox

log = logging.getLogger(__name__)

#: The key of the record that starts each run in a results file (its value: the run's settings).
SESSION_KEY = "session"


_WHY = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded",
        errno.EFBIG: "the file is too large for this file system (or the process's file-size limit)",
        errno.EIO: "an I/O error (failing SD card or disk?)", errno.EROFS: "the file system is read-only",
        errno.EPIPE: "its reader has gone (pipe closed)"}


#: What a line that is not JSON raises (RecursionError: arrays nested thousands deep).
_NOT_JSON = (UnicodeDecodeError, ValueError, RecursionError)

#: The UTF-8 byte-order mark some editors (Windows Notepad) put at the start of a file.
_BOM = b"\xef\xbb\xbf"


def _without_bom(line: bytes, number: int) -> bytes:
    """Line ``number`` (from 1) of a results file without the byte-order mark the file may start with."""
    return line[len(_BOM):] if number == 1 and line.startswith(_BOM) else line


def _line_value(line: bytes, number: int, unique: bool = False) -> Any:
    """The JSON value of line ``number`` (from 1, without its newline) of a results file, or None for a
    blank line (spaces, tabs, a CR only: an editor's or ``echo >>``'s extra line). This is the one
    rule of what a line holds, for the readers and for the recorder that appends to a file.

    ``unique``: refuse an object that gives a key twice (the readers: the recorder never writes one,
    so such a line was edited or joined, and which of its values counts is not known).

    Raises:
        ValueError, UnicodeDecodeError, RecursionError (:data:`_NOT_JSON`): the line is not JSON;
        :class:`~idc_edge.jsonready.RepeatedKey` (a ValueError): with ``unique``, an object gives a key twice.
    """
    line = _without_bom(line, number)
    if not line.strip():
        return None
    return json.loads(line.decode("utf-8"), object_pairs_hook=unique_keys if unique else None)


def _is_json(data: bytes, number: int) -> bool:
    """True when ``data``, line ``number`` of a results file, is JSON or blank (see :func:`_line_value`)."""
    try:
        _line_value(data, number)
        return True
    except _NOT_JSON:
        return False


def _unterminated_tail(fd: int, size: int, chunk: int = 1 << 16) -> bytes:
    """The bytes after the last newline of the file open as ``fd`` of ``size`` bytes (empty when it
    ends with one or is empty)."""
    pos, tail = size, b""
    while pos > 0:
        step = min(chunk, pos)
        pos -= step
        block = os.pread(fd, step, pos)
        cut = block.rfind(b"\n")
        if cut >= 0:
            return block[cut + 1:] + tail
        tail = block + tail
    return tail


#: The first bytes of files a results file is often turned into (packed to send, saved by an editor in
#: another encoding): what it is, and what to do to read it.
_PACKED = ((b"\x1f\x8b", "gzip-compressed", "unpack it first (gunzip -k FILE, or zcat FILE > results.jsonl)"),
           (b"BZh", "bzip2-compressed", "unpack it first (bunzip2 -k FILE)"),
           (b"\xfd7zXZ\x00", "xz-compressed", "unpack it first (unxz -k FILE)"),
           (b"\x28\xb5\x2f\xfd", "zstd-compressed", "unpack it first (unzstd FILE)"),
           (b"PK\x03\x04", "a zip archive", "unpack the results file from it first (unzip FILE)"),
           (b"\xff\xfe", "UTF-16 text (saved by an editor as 'Unicode')", "save it again as UTF-8"),
           (b"\xfe\xff", "UTF-16 text (saved by an editor as 'Unicode big-endian')", "save it again as UTF-8"),
           (b"{\x00", "UTF-16 text", "save it again as UTF-8"), (b"\x00{", "UTF-16 text", "save it again as UTF-8"))


def _refuse_packed(head: bytes, path) -> None:
    """Refuse a results file whose first bytes ``head`` say it is compressed, an archive or UTF-16
    (:data:`_PACKED`), naming what it is and how to read it (it was "line 1 is not valid JSON", or
    "holds no results" when no newline came first).

    Raises:
        RecordError: the file is one of those.
    """
    for magic, what, todo in _PACKED:
        if head.startswith(magic):
            raise RecordError(f"results {name(path)} is {what}, not the text of a results file: {todo}")


#: Bytes of Python objects one byte of a results line's JSON may become once parsed: a float in
#: ``0.5,`` is a 24-byte object and an 8-byte pointer for 4 bytes of text, ``{},`` a 64-byte dict for 3
#: (a 240 MB line of floats took 3.1 GB). A line is checked against the memory budget at this size,
#: so the largest line read under the default 1 GiB is 32 MiB; a frame's line is under a few MB (an
#: 8K frame's patch boxes, some 300 KB).
JSON_OBJECT_BYTES = 32

#: Lines up to this many bytes are parsed unchecked (2 MiB at most once parsed: 64 KiB x 32).
_CHECKED_LINE_BYTES = 1 << 16


def _iter_lines(path: Union[str, os.PathLike], block: int = 1 << 20) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) for every line of a results file, read and parsed a block at a time (a
    last line without its newline is read when it is whole and ignored when a crash cut it; records
    joined on one line are read apart, :func:`_records_of_line`; blank lines and a byte-order mark at
    the start are skipped, :func:`_line_value`): a reader that keeps a few fields of each line needs
    memory for those fields, not for the file (a session of hours can be gigabytes).

    Raises:
        RecordError: the file is missing or not a regular file (a FIFO is refused, not waited on),
            a line is not a JSON object.
        MemoryBudgetError: one line, parsed (:data:`JSON_OBJECT_BYTES` per byte), would be larger
            than the memory budget.
    """
    fd = open_input(path, "results", RecordError)
    number, pending, pending_len = 0, [], 0  # pieces of the line not yet ended by a newline
    try:
        while True:
            try:
                data = os.read(fd, block)
            except OSError as e:
                raise RecordError(f"cannot read results {name(path)}: {why(e)}") from None
            if not data:
                if pending:  # a last line without its newline: read when whole, as the recorder keeps it
                    yield from _records_of_line(b"".join(pending), number + 1, path, last=True)
                return
            if number == 0 and not pending:
                _refuse_packed(data, path)
            start = 0
            while True:
                end = data.find(b"\n", start)
                length = pending_len + (len(data) if end < 0 else end) - start  # of the line so far
                if length > _CHECKED_LINE_BYTES:
                    check_buffer((length,), JSON_OBJECT_BYTES,
                                 f"line {number + 1} of results {name(path)} ({length} bytes of JSON"
                                 f"{' so far' if end < 0 else ''}, up to {JSON_OBJECT_BYTES}x that once parsed)",
                                 "a frame's line is at most a few MB: this is not an idc-edge results file as written")
                if end < 0:
                    pending.append(data[start:])
                    pending_len = length
                    break
                line = b"".join([*pending, data[start:end]]) if pending else data[start:end]
                pending, pending_len, start = [], 0, end + 1
                number += 1
                yield from _records_of_line(line, number, path)
    finally:
        os.close(fd)


def _record(line: bytes, number: int, path) -> Optional[dict[str, Any]]:
    """The record line ``number`` holds (None for a blank line), by :func:`_line_value`.

    Raises:
        RecordError: the line gives a field twice, is not JSON or is not a JSON object.
    """
    try:
        record = _line_value(line, number, unique=True)
    except RepeatedKey as e:
        raise RecordError(f"results {str(path)!r} line {number} gives the field {short(e.key, 40)} "
                          "twice, so which value counts is not known: idc-edge writes each field once; "
                          "was the line edited? keep one of them", options=["JsonlSink"]) from None
    except _NOT_JSON:
        raise RecordError(f"results {str(path)!r} line {number} is not valid JSON: "
                          "is this a results file written by JsonlSink?", options=["JsonlSink"]) from None
    if record is not None and not isinstance(record, dict):
        raise RecordError(f"results {str(path)!r} line {number} is not a JSON object: "
                          "is this a results file written by JsonlSink?", options=["JsonlSink"])
    return record


#: Where a record starts inside a line that holds more than one: results files joined without the
#: newline between them (``cat`` of a file a crash left cut, or of one an editor saved without its last newline)
_RECORD_STARTS = tuple(b'{"%s":' % k.encode() for k in ("index", SESSION_KEY))


def _records_of_line(line: bytes, number: int, path, last: bool = False) -> Iterator[tuple[int, dict[str, Any]]]:
    """(``number``, record) for the record on line ``number``, or for each record of a line that joins
    several: results files appended to one another (``cat a.jsonl b.jsonl``) where the first ended
    without its newline, its last record whole (an editor saved it so) or cut by a crash. A whole record
    is read; a cut one is left out, as a crash's unfinished last record always was, and said.

    ``last``: the file's last line, which has no newline: a record a crash cut off at its end is
    ignored (it was never reported), a whole one read (the recorder keeps it too, and ends the line).

    Raises:
        RecordError: as :func:`_record`, for a line that is not such a run of records.
    """
    try:
        record = _record(line, number, path)  # the usual line, parsed once
    except RecordError as e:
        if _is_json(line, number):  # JSON, but refused by name (a key given twice, not an object)
            raise
        refused = e
    else:
        if record is not None:
            yield number, record
        return
    pieces = _split_records(line)
    if pieces is not None:
        whole = [_is_json(piece, number) for piece in pieces]
        if whole[-1] or last:  # a last piece that is cut: a crash's unfinished record at the file's end
            for piece, ok in zip(pieces, whole):
                if ok:
                    record = _record(piece, number, path)
                    if record is not None:
                        yield number, record
                elif piece is not pieces[-1]:
                    log.warning("results %s line %d: a record cut off (by a crash or power cut) runs into the "
                                "next one on the same line (results files joined without a newline between "
                                "them?); the cut record (%d bytes) is left out, the rest read",
                                name(path), number, len(piece))
            return
    if not last:  # the unfinished last record of a crash is ignored; any other line that is no record is refused
        raise refused


def _split_records(line: bytes) -> Optional[list[bytes]]:
    """``line`` cut before each later record (:data:`_RECORD_STARTS`), when it starts with a record of
    ours (``{"``); else None."""
    starts = sorted({i for key in _RECORD_STARTS for i in _find_all(line, key) if i > 0})
    if not starts or not _without_bom(line, 1).lstrip().startswith(b'{"'):
        return None
    return [line[a:b] for a, b in zip([0, *starts], [*starts, len(line)])]


def _find_all(data: bytes, needle: bytes) -> Iterator[int]:
    i = data.find(needle)
    while i >= 0:
        yield i
        i = data.find(needle, i + 1)


def _read_lines(path: Union[str, os.PathLike]) -> list[dict[str, Any]]:
    """Every record of a results file as JSON (a crash's unfinished last record is ignored)."""
    return [record for _, record in _iter_lines(path)]


def is_session_header(record: dict[str, Any]) -> bool:
    """True for the record that starts a run's session in a results file (``{"session": {...}}``)."""
    return isinstance(record.get(SESSION_KEY), dict)


def read_records(path: Union[str, os.PathLike]) -> list[dict[str, Any]]:
    """Every frame record of a results file written by :class:`JsonlRecorder`, in order, across all
    its sessions (session headers left out; :func:`read_sessions` keeps them apart).

    A final fragment without a newline (a record a crash or power cut interrupted; it was
    never reported) is ignored; a whole last record without its newline is read (the recorder
    keeps it, and ends its line, when it appends).

    Raises:
        RecordError: the file cannot be read, or a complete line is not a JSON object.
    """
    return [r for r in _read_lines(path) if not is_session_header(r)]


@dataclass(frozen=True)
class RecordedSession:
    """One run in a results file: its header's settings (the ``"session"`` object; None for lines
    written before runs had headers) and its frame records in order."""

    header: Optional[dict[str, Any]]
    records: tuple


#: The largest frame time a results file holds, in seconds either side of 0 (about 31,700 years: a
#: clock's seconds, never its nanoseconds). The detector refuses a frame time beyond it (FrameError).
MAX_TIME_S = 1e12

#: The largest frame index a results file holds (a signed 64-bit count, as numpy and other readers
#: of the file hold it). The detector refuses an index beyond it (FrameError).
MAX_INDEX = 2 ** 63 - 1

#: The largest area a frame record may give, in mm²: a square metre, what a hundred megapixels show
#: at the coarsest scale a microscope camera can have (100 µm/px). Larger is no frame's area.
MAX_AREA_MM2 = 1e6

#: The largest side of the square each patch stands for (a header's ``cell_um``), in µm: one cell
#: of :data:`MAX_AREA_MM2`, a metre.
MAX_CELL_UM = math.sqrt(MAX_AREA_MM2) * 1000.0

#: The version of the results file's layout this idc-edge writes (each session header's ``format``)
#: and reads: a header of a later format is refused by name, never read as if it were this one.
RESULTS_FORMAT = 1


def check_format(header: dict[str, Any], where: str) -> None:
    """Refuse a session header whose ``format`` is not one this idc-edge reads (1 to
    :data:`RESULTS_FORMAT`; a header without one is read as format 1).

    Raises:
        RecordError: naming ``where``, the format and the idc-edge version that wrote it, and to
            update idc-edge (a later format) or that the header was changed (not a whole number).
    """
    version = header.get("format", 1)
    if isinstance(version, int) and not isinstance(version, bool) and 1 <= version <= RESULTS_FORMAT:
        return
    if isinstance(version, int) and not isinstance(version, bool) and version > RESULTS_FORMAT:
        raise RecordError(f"{where}: this session was written in results format {short(version, 30)} (by idc-edge "
                          f"{short(header.get('idc_edge', '?'), 30)}); this idc-edge reads format {RESULTS_FORMAT} and "
                          "cannot tell what its fields mean: update idc-edge to read it")
    raise RecordError(f"{where}: field 'format' must be a whole number from 1, got {short(version, 40)}: is this a "
                      "results file written by JsonlSink, unchanged?", options=["JsonlSink"])


#: The fields of a results file that readers rely on, with their kind ("?": may be missing or null).
#: A line whose field is of another kind is refused by name, never summed as text or crashed on.
#: ``idc-edge report`` keeps only the frame fields named here (add a field here before summarising it).
FRAME_FIELDS = {"index": "index", "time": "time", "idc_fraction": "fraction", "idc_area_mm2": "area?",
                "tissue_area_mm2": "area?", "patches": "count?", "tissue_patches": "count?",
                "idc_patches": "count?", "reused_patches": "count?", "no_call_patches": "counts?",
                # frames whose tissue the mask may have lost (a report counts them as not called)
                "no_colour": "flag?", "faint_colour": "flag?", "washed_out": "flag?"}
#: ``model_um_per_px`` and ``cell_um`` are optional: files from before they were written lack them.
HEADER_FIELDS = {"started": "text", "id": "text?", "idc_edge": "text", "threshold": "fraction", "um_per_px": "scale",
                 "model_um_per_px": "scale?", "cell_um": "cell?",
                 "model": "table", "model.name": "text", "model.sha256": "text?", "model.context": "table?",
                 "source": "table", "source.description": "text", "options": "table?", "outputs": "table?",
                 "outputs.video": "table?", "outputs.video.path": "text?", "outputs.snapshots": "table?",
                 "outputs.snapshots.folder": "text?"}
_KINDS = {
    "count": ("a whole number >= 0", lambda v: isinstance(v, int) and v >= 0),
    "index": (f"a whole number from 0 to {MAX_INDEX}", lambda v: isinstance(v, int) and 0 <= v <= MAX_INDEX),
    "time": (f"a number of seconds from {-MAX_TIME_S:g} to {MAX_TIME_S:g}",
             lambda v: isinstance(v, (int, float)) and abs(v) <= MAX_TIME_S),
    "area": (f"a number of mm² from 0 to {MAX_AREA_MM2:g}",
             lambda v: isinstance(v, (int, float)) and 0 <= v <= MAX_AREA_MM2),
    "scale": ("a finite number of µm per pixel above 0", lambda v: isinstance(v, (int, float)) and 0 < v < math.inf),
    "cell": (f"a number of µm above 0 and up to {MAX_CELL_UM:g}",
             lambda v: isinstance(v, (int, float)) and 0 < v <= MAX_CELL_UM),
    "fraction": ("a number from 0 to 1", lambda v: isinstance(v, (int, float)) and 0 <= v <= 1),
    "text": ("text", lambda v: isinstance(v, str)),
    "flag": ("true or false", lambda v: isinstance(v, bool)),
    "table": ("an object", lambda v: isinstance(v, dict)),
    "counts": ("an object of whole numbers >= 0", lambda v: isinstance(v, dict) and all(
        isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in v.values())),
}


def check_fields(record: dict[str, Any], fields: dict[str, str], where: str) -> None:
    """Refuse a record whose field (``a.b`` inside tables) is not of its kind in ``fields``.

    Raises:
        RecordError: naming ``where`` (file and line), the field and the kind it must be.
    """
    for key, kind in fields.items():
        value: Any = record
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        optional = kind.endswith("?")
        label, ok = _KINDS[kind.rstrip("?")]
        # a bool is an int to Python: only the "flag" kind takes one
        if (value is None and optional) or (value is not None and isinstance(value, bool) == (kind.rstrip("?") == "flag")
                                            and ok(value)):
            continue
        found = "is missing" if value is None else f"got {short(value, 40)}"
        raise RecordError(f"{where}: field {key!r} must be {label}, {found}: is this a results file written by "
                          "JsonlSink, unchanged?", options=["JsonlSink"])


def read_sessions(path: Union[str, os.PathLike], keep: Optional[Iterable[str]] = None) -> list[RecordedSession]:
    """The runs of a results file, each a :class:`RecordedSession`, in the order they were appended.

    Each run starts with a session header ``{"session": {...}}`` (version, model and its hash,
    threshold, µm/px, source, options, start time). Frame records before the first header (files
    written by versions without headers) form one session with ``header=None``.

    ``keep`` (field names) trims each frame record to those fields as it is read: a summary
    of an hour's session then holds a few numbers per frame, not every patch box (a 109 MB file
    took 1.4 GB parsed whole). A kept field that is null (optional fields may be) is left out, as
    if missing, so readers take their default for it.

    Raises:
        RecordError: the file cannot be read, a complete line is not a JSON object, or the file
            holds neither a session header nor a frame record (it is not a results file).
    """
    sessions: list[RecordedSession] = []
    header, records = None, []
    keep = None if keep is None else tuple(keep)
    for number, r in _iter_lines(path):
        where = f"results {name(path)} line {number}"
        if is_session_header(r):
            if header is not None or records:
                sessions.append(RecordedSession(header, tuple(records)))
            header, records = r[SESSION_KEY], []
            check_format(header, where)
            check_fields(header, HEADER_FIELDS, where)
        elif "index" in r and "idc_fraction" in r:
            check_fields(r, FRAME_FIELDS, where)
            records.append(r if keep is None else {k: r[k] for k in keep if r.get(k) is not None})  # null: missing
        else:
            raise RecordError(f"{str(path)!r} is not an idc-edge results file: a line is neither a session "
                              "header nor a frame record")
    if header is not None or records:
        sessions.append(RecordedSession(header, tuple(records)))
    if not sessions:
        raise RecordError(f"{str(path)!r} holds no results (it is empty or cut before its first record)")
    return sessions


#: Seconds a pipe or device may take no results before the run stops with a :class:`RecordError`.
WRITE_TIMEOUT_S = 10.0

#: Seconds a second writer waits for the results file's lock before it refuses.
LOCK_WAIT_S = 2.0

#: A results file's first record is a JSON object whose first key is one of these (a frame's
#: ``index``; a session header's ``session``): how a file, or a crash's leftover, is known as ours.
RESULT_KEYS = ("index", SESSION_KEY)


def _copy_open_file(source_fd: int, target_fd: int, size: int, what: str) -> None:
    """Copy the first ``size`` bytes of the open file ``source_fd`` (deleted or not) to ``target_fd``.

    Raises:
        OSError, RecordError: reading or writing failed (:func:`~idc_edge.fileio.write_all`).
    """
    offset = 0
    while offset < size:
        block = os.pread(source_fd, min(1 << 20, size - offset), offset)
        if not block:
            break
        write_all(target_fd, block, WRITE_TIMEOUT_S, what)
        offset += len(block)


def _name_of_fd(fd: int) -> Optional[str]:
    """The path the open file ``fd`` has now (Linux ``/proc/self/fd``), or None when not known."""
    try:
        target = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None
    return target if target.startswith("/") and not target.endswith(" (deleted)") else None


def _holder(path: Path) -> str:
    """Who holds the lock on ``path``, from ``/proc/locks`` (Linux), for the message."""
    try:
        st = os.stat(path)
        want = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
        with open("/proc/locks", encoding="ascii", errors="replace") as f:
            for line in f:
                parts = line.split()
                if len(parts) > 5 and parts[1] == "FLOCK" and parts[5] == want and parts[4] != str(os.getpid()):
                    return f"process {parts[4]}"
    except (OSError, ValueError):
        pass
    return "another process"


def hold_lock(fd: int, path: Path, wait_s: float, what: str, instead: str) -> None:
    """Take an exclusive advisory lock (``flock``) on the file open as ``fd`` (at ``path``), held
    until ``fd`` is closed: the results file for the whole run (two runs appending to one file would
    interleave, and one rolling back after a write error could cut the other's lines), a saved
    video's lock file (two runs would each move their video over one name, the last silently
    winning). A second writer waits up to ``wait_s`` seconds, then refuses.

    Raises:
        RecordError: "``what`` is being written by process PID; wait for that run to end or ``instead``".
    """
    if not lock_within(fd, wait_s):  # a file system without locks: written unlocked
        raise RecordError(f"{what} is being written by {_holder(path)}; wait for that run to end or {instead}")


def _check_ours(fd: int, path: Path) -> None:
    """Refuse to append to (or repair) a non-empty file that is not an idc-edge results file.

    Its first record is found as the readers find it (a byte-order mark and blank lines skipped,
    :func:`_line_value`), so a file the recorder appends to is one they read: it must be a results
    record, or the start of one that a crash cut. Blank lines only (in its first 64 KiB) count as empty.
    """
    head = os.pread(fd, 1 << 16, 0)
    *whole, rest = head.split(b"\n")
    first = None
    for number, line in enumerate(whole, 1):
        try:
            first = _line_value(line, number)
        except _NOT_JSON:
            break
        if first is not None:
            break
    else:  # no whole line but blank ones: the rest, a line without its newline, decides
        number = len(whole) + 1
        rest = _without_bom(rest, number).strip()
        if not rest:
            return
        try:
            first = _line_value(rest, number)
        except _NOT_JSON:  # a first record cut by a crash: ours if it starts like one
            first = {k: None for k in RESULT_KEYS if rest.startswith(b'{"%s":' % k.encode())}
    if not (isinstance(first, dict) and any(k in first for k in RESULT_KEYS)):
        raise RecordError(f"{name(path)} exists and is not an idc-edge results file (its first non-blank line is not a "
                          "results record); it is left untouched: record to a new file or an earlier results file")


class JsonlRecorder:
    """Appends JSON objects, one per line, durably.

    A regular file is written only when it is empty or already holds idc-edge results (another
    program's file is refused before a byte is written or cut). It is locked (``flock``) while
    open: a second writer waits ``lock_wait_s`` seconds and then refuses, naming the process
    that holds it, so runs never interleave or cut each other's lines. A pipe, terminal or
    character device (``/dev/stdout``, a FIFO with a reader) is a stream: lines are written
    as they come, never cut or rolled back, not fsynced; a FIFO nobody reads is refused at open,
    and one whose reader stops taking lines stops the run after :data:`WRITE_TIMEOUT_S`.
    Folders and block devices are refused.

    Args:
        path: the ``.jsonl`` file (created if missing, appended to if present).
        fsync: flush every line to the storage device (survives power cuts; a few ms per
            line on SD cards). Without it, lines survive a process crash but not a power cut.
    """

    def __init__(self, path: Union[str, os.PathLike], fsync: bool = True, lock_wait_s: float = LOCK_WAIT_S):
        self.path = Path(as_path(path, "results file"))
        self.fsync = fsync
        self.lines = 0   # records written, session headers included
        self.frames = 0  # of them, frame records (what a message calls "frame(s) saved")
        self._fd: Optional[int] = None
        fd = open_output(self.path, "results file", append=True, error=RecordError, readable=True, streams=True,
                         hint="; results go to a regular file, a pipe or a terminal")
        try:
            self._regular = stat.S_ISREG(os.fstat(fd).st_mode)
            self._size = os.fstat(fd).st_size if self._regular else 0
            if self._regular:
                hold_lock(fd, self.path, lock_wait_s, f"results file {name(self.path)}", "record to another file")
                self._size = os.fstat(fd).st_size
                if self._size:
                    _check_ours(fd, self.path)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        if self._size:
            try:
                self._repair_tail()
            except BaseException:
                self.close()
                raise

    def _repair_tail(self) -> None:
        """Cut off a record left unfinished by a crash; end a whole last line that lacks only its newline."""
        tail = _unterminated_tail(self._fd, self._size)
        if not tail:
            return
        number = 1 if len(tail) == self._size else 2  # line 1 may start with a byte-order mark
        if _is_json(tail, number):
            self._append(b"\n")  # whole JSON (e.g. written by hand) or blank: keep it, end the line
            return
        if not _without_bom(tail, number).startswith(b'{"'):  # not a record of ours cut by a crash: never cut what we did not write
            raise RecordError(f"{name(self.path)} ends with {len(tail)} byte(s) that are not a results record "
                              "(written by another program?); it is left untouched: record to another file")
        try:
            os.ftruncate(self._fd, self._size - len(tail))
        except OSError as e:
            raise RecordError(f"cannot repair {str(self.path)!r} (its last record was cut by a crash): "
                              f"{e.strerror}") from None
        self._size -= len(tail)
        log.warning("%s: removed an unfinished last record (%d bytes) left by a crash or power cut",
                    self.path, len(tail))

    def _append(self, data: bytes, record: bool = False, frame: bool = False) -> None:
        """Write ``data`` whole and flush it, or leave the file as it was; ``record`` counts a line,
        ``frame`` a frame's line.

        An interrupt (Ctrl-C, SIGTERM: a KeyboardInterrupt that Python raises between any two
        steps, whichever thread the signal hit) is sorted out by the file's size: a line already
        written whole is kept, flushed and counted; a part of one is cut off. Then it propagates.
        The size is taken just before the write, so a roll-back never cuts lines another
        program appended (the lock keeps out other idc-edge runs, not every program).
        """
        if self._regular:
            self._follow_name()
        start = os.fstat(self._fd).st_size if self._regular else 0
        try:
            write_all(self._fd, data, WRITE_TIMEOUT_S, f"results file {name(self.path)}")
            if self.fsync and self._regular:
                os.fsync(self._fd)
        except OSError as e:
            self._cut_back(start, len(data))
            what = _WHY.get(e.errno, e.strerror)
            raise RecordError(f"cannot write results to {name(self.path)}: {what}; "
                              f"{self.frames} frame(s) of this run were saved before it") from None
        except BaseException:
            try:
                whole = self._regular and os.fstat(self._fd).st_size == start + len(data)
            except OSError:
                whole = False
            if whole:  # the interrupt came after the write: the line is there, keep and count it
                self._size = start + len(data)
                self.lines += record
                self.frames += frame
                try:
                    if self.fsync:
                        os.fsync(self._fd)
                except OSError:
                    pass
            else:
                self._cut_back(start, len(data))
            raise
        self._size = start + len(data)
        self.lines += record
        self.frames += frame

    def _cut_back(self, start: int, added: int) -> None:
        """Cut the file back to ``start`` bytes (its size before this write), unless it grew by more
        than ``added`` (what this write could have added): then someone else appended too, and
        their lines are never cut. A pipe or device cannot be cut: nothing is done."""
        if not self._regular:
            return
        try:
            if os.fstat(self._fd).st_size > start + added:
                log.warning("%s: another program wrote to the results file meanwhile; nothing is cut", self.path)
                return
            os.ftruncate(self._fd, start)
        except OSError:
            pass  # nothing more can be done; the error that brought us here is raised

    def write(self, record: dict[str, Any]) -> None:
        """Append ``record`` as one line and flush it; when this returns the line is on disk.
        Every record but a session header (``{"session": ...}``) counts as a frame's."""
        if self._fd is None:
            raise RecordError(f"results file {str(self.path)!r} is already closed")
        self._append((json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n").encode("utf-8"), True,
                     SESSION_KEY not in record)

    def _follow_name(self) -> None:
        """Keep the results reachable by a name when the file was deleted, replaced or moved during the
        run (``rm``, an editor saving over it, a log rotation): the lines went on into the open file,
        and a deleted one vanished with every line of the run when it was closed, while the summary
        named a file that was not there. A file deleted (or replaced by another) is made again from
        what the open file holds, at its name or, when another file took the name, beside it
        (``NAME-restored.jsonl``); a file moved elsewhere is followed to its new name. Said once each.

        Raises:
            RecordError: a deleted file cannot be made again (its folder is gone or takes no file).
        """
        try:
            held = os.fstat(self._fd)
        except OSError:
            return
        try:
            st = os.stat(self.path)
            if (st.st_dev, st.st_ino) == (held.st_dev, held.st_ino):
                return
        except OSError:
            pass
        if held.st_nlink > 0:  # moved (renamed): still whole under its new name
            moved = _name_of_fd(self._fd)
            log.warning("results file %s was moved or renamed during the run%s; this run's lines go on there",
                        name(self.path), f" (to {name(moved)})" if moved else "")
            if moved:
                self.path = Path(moved)
            return
        self._restore(held)

    def _restore(self, held: os.stat_result) -> None:
        """Make the deleted results file again from the open one (see :meth:`_follow_name`) and go on in it;
        a folder deleted with it (``rm -rf`` of the output folder) is made again first."""
        shown = self.path
        folder = os.path.dirname(os.path.abspath(self.path))
        remade = False
        if not os.path.isdir(folder):
            with contextlib.suppress(OSError):
                os.makedirs(folder)
                remade = True
        for candidate in (self.path, *(self.path.with_name(f"{self.path.stem}-restored{'' if n == 1 else f'-{n}'}"
                                                           f"{self.path.suffix}") for n in range(1, 100))):
            try:
                fd = os.open(candidate, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_APPEND | getattr(os, "O_CLOEXEC", 0),
                             held.st_mode & 0o777)
                break
            except FileExistsError:
                continue
            except OSError as e:
                folder = os.path.dirname(os.path.abspath(candidate))
                raise RecordError(f"results file {name(shown)} was deleted during the run and cannot be made again "
                                  f"({why(e) if os.path.isdir(folder) else no_folder(folder)}); the {self.frames} "
                                  "frame(s) of this run written to it are lost with it") from None
        else:
            raise RecordError(f"results file {name(shown)} was deleted during the run and no free name was found "
                              "beside it to make it again")
        try:
            lock_within(fd, 0.0)
            _copy_open_file(self._fd, fd, held.st_size, f"results file {name(candidate)}")
            if self.fsync:
                os.fsync(fd)
        except OSError as e:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(candidate)
            raise RecordError(f"results file {name(shown)} was deleted during the run and cannot be made again "
                              f"({_WHY.get(e.errno, e.strerror)}); the {self.frames} frame(s) of this run written "
                              "to it are lost with it") from None
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(candidate)
            raise
        os.close(self._fd)
        self._fd, self.path = fd, Path(candidate)
        log.warning("results file %s was %s during the run; it is made again%s%s with every line written so far, and "
                    "this run goes on in it", name(shown), ("deleted with its folder" if remade else "deleted")
                    if candidate == shown else "replaced by another file",
                    " (its folder too)" if remade else "", "" if candidate == shown else f" as {name(candidate)}")

    def close(self) -> None:
        """Close the file (which releases its lock); safe to call twice. A results file deleted since its
        last line is made again first (see :meth:`_follow_name`)."""
        if self._fd is not None:
            try:
                if self._regular:
                    self._follow_name()
            finally:
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> "JsonlRecorder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


#: ``.mkv`` is HuffYUV, lossless: at 1080p FFmpeg's FFV1 encoder took ~200 MB more memory and ~8× the time per
#: frame (113 against 14 ms here, too slow to keep up with a camera), for files about 40 % smaller
_FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "HFYU"}


#: the least free space a video is written with, bytes: below it the disk is taken as full (OpenCV
#: would go on dropping frames silently) and the rest kept to finalise the file (its index, its header)
VIDEO_SPACE_FLOOR_BYTES = 4 << 20


#: file systems whose files hold at most 4 GiB - 1 byte (FAT32 USB sticks and SD cards as sold)
FAT_TYPES = frozenset({"vfat", "msdos", "fat", "umsdos"})
FAT_MAX_FILE_BYTES = (4 << 30) - 1

#: room kept below a file-size limit for what a video writer holds unwritten and its index at the end
#: (besides two raw frames and 64 bytes per frame written)
VIDEO_SIZE_MARGIN_BYTES = 1 << 20


def file_size_limit(path: str, mountinfo: Optional[str] = None) -> Optional[tuple[int, str, str]]:
    """(largest size in bytes, what limits it, what to do) for a file at ``path``, or None when nothing
    below the disk's free space limits it: the process's file-size limit (``ulimit -f``,
    ``RLIMIT_FSIZE``) and a FAT file system's 4 GiB (``mountinfo``: the mount table to read, Linux's
    own by default). A write past either fails with ``EFBIG``, which OpenCV's video writer drops
    without a word, as it drops every write error."""
    from .mounts import MOUNTINFO, file_system_of

    limits = []
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        if soft != resource.RLIM_INFINITY and soft >= 0:
            limits.append((int(soft), f"the file-size limit of this process ({soft / 1e6:.1f} MB)",
                           "raise it (`ulimit -f unlimited`) or record shorter sessions"))
    except (ImportError, OSError, ValueError):  # no resource module (Windows)
        pass
    found = file_system_of(os.path.dirname(path) or ".", mountinfo or MOUNTINFO)
    if found and found[0] in FAT_TYPES:
        limits.append((FAT_MAX_FILE_BYTES, f"the largest file the FAT file system at {found[1]} holds (4 GiB)",
                       "save it on a disk formatted as exFAT or ext4, or record shorter sessions"))
    return min(limits) if limits else None


#: FFmpeg's Motion-JPEG encoder writes outside its buffers for frames narrower than this (2 to 7 px wide,
#: 4 px high or more): glibc aborted the program ("free(): invalid pointer", exit 134), it died of SIGSEGV
#: at exit, or memory was damaged without a sign. OpenCV's own Motion-JPEG writer, which OpenCV
#: already falls back to for frames 1 px wide or high, takes such frames: they go to it
FFMPEG_MJPEG_MIN_WIDTH = 8


#: what each codec is called in messages
_CODEC_NAMES = {"mp4v": "MPEG-4 (mp4v)", "MJPG": "MJPG", "HFYU": "HuffYUV"}


def partial_name(target: str) -> str:
    """A new name beside ``target`` for the video while it is written: ``NAME.partial-XXXXXXXX.EXT``
    (same extension, so OpenCV picks the same container; the stem cut to 150 bytes so the name fits
    a file system's 255)."""
    folder, base = os.path.split(target)
    stem, suffix = os.path.splitext(base)
    stem = os.fsdecode(os.fsencode(stem)[:150])
    return os.path.join(folder, f"{stem}.partial-{os.urandom(4).hex()}{suffix}")


def encoder_works(fourcc: int, suffix: str, size: tuple[int, int] = (64, 64)) -> bool:
    """True when OpenCV opens a writer of ``fourcc`` for a ``suffix`` file of ``size`` (width, height
    in px) in a temporary folder: tells a codec missing here from a frame size it refuses."""
    import shutil
    import tempfile

    try:
        folder = tempfile.mkdtemp(prefix="idc-edge-")
    except OSError:
        return False
    try:
        writer = cv2.VideoWriter(os.path.join(folder, "probe" + suffix), fourcc, 30.0, size)
        ok = writer.isOpened()
        writer.release()
        return ok
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class VideoRecorder:
    """Writes BGR frames to a video file; the size is fixed by the first frame.

    The codec follows the extension: ``.mp4``/``.mov`` MPEG-4 (mp4v), ``.avi`` MJPG, ``.mkv``
    HuffYUV (lossless). A frame of another size (a source whose frame size changes mid-stream) is
    letterboxed into the first size, at its own aspect ratio with black bars, the same for every
    codec (warned once), never stretched.

    The frames go to a new file beside ``path`` (``NAME.partial-XXXXXXXX.EXT``, see
    :func:`partial_name`), which :meth:`close` moves over ``path`` in one step once the file is
    finalised. A run killed hard (``kill -9``, a power cut) therefore never touches an earlier file
    at ``path``; its frames so far stay under the partial name (readable for ``.avi`` and ``.mkv``;
    an ``.mp4`` has its index written at the end, so it is not). A symbolic link is followed (the
    file it points to is replaced).
    """

    def __init__(self, path: Union[str, os.PathLike], fps: float = 30.0):
        self.path = Path(as_path(path, "video file"))
        check_full_path(self.path, "video file", RecordError)  # OpenCV and the partial file go by the full path
        suffix = self.path.suffix.lower()
        if suffix not in _FOURCC:
            raise OptionError(f"video file {name(self.path)}: use one of {', '.join(sorted(_FOURCC))}")
        if not fps > 0 or not math.isfinite(fps):
            fps = 30.0
        self.fps = float(min(fps, 1000.0))
        self._target = os.path.realpath(self.path)
        refuse_kernel_files(self._target, "video file", RecordError)  # /proc, /sys: said so, not "does not exist"
        if os.path.exists(self.path):
            # checked now, unchanged: a folder, FIFO, device, unwritable or non-video file is refused before the run
            os.close(open_output(self.path, "video file", append=True, error=RecordError, replaces="video"))
        os.unlink(self._reserve())  # the folder takes new files: refused now, not at the first frame
        self._fourcc = cv2.VideoWriter_fourcc(*_FOURCC[suffix])
        self._writer: Optional[cv2.VideoWriter] = None
        self._size: Optional[tuple[int, int]] = None  # the frames' (width, height), px
        self._pad = (0, 0)  # columns and rows added for the encoder (to make an odd side even)
        self._names = contextlib.ExitStack()
        self._partial: Optional[str] = None  # the file being written, until close moves it over path
        self._held: Optional[int] = None  # the partial file open for reading: its frames outlive a deletion
        self._size_limit = file_size_limit(self._target)
        self.frames = 0
        self.letterboxed = 0  # frames of another size than the first, fitted in with bars

    def _reserve(self) -> str:
        """Create the empty partial file (exclusively: never another run's) and return its name.

        Raises:
            RecordError: the folder is missing or takes no new file.
        """
        partial = partial_name(self._target)
        try:
            os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666))
        except OSError as e:
            folder = os.path.dirname(partial)
            reason = why(e) if os.path.isdir(folder) else no_folder(folder)
            raise RecordError(f"cannot write video file {name(self.path)}: {reason}") from None
        return partial

    def write(self, frame_bgr: np.ndarray) -> None:
        """Add one frame.

        Raises:
            RecordError: OpenCV cannot encode this file here (no encoder, or a frame size the codec
                refuses), or the file system holds less than
                :data:`VIDEO_SPACE_FLOOR_BYTES` (or two raw frames) free: OpenCV drops frames it cannot
                write without a word, which left a 297-frame run's video with 9 readable frames and no
                index; stopping first keeps the room to finalise what is there.
        """
        h, w = frame_bgr.shape[:2]
        self._check_space(frame_bgr.nbytes)
        self._check_size(frame_bgr.nbytes)
        if self._writer is None:
            self._open_writer(w, h)
        elif (w, h) != self._size:
            if not self.letterboxed:
                log.warning("%s: the frames changed size from %dx%d to %dx%d px; such frames are letterboxed into "
                            "the first size (black bars), not stretched", self.path.name, *self._size, w, h)
            self.letterboxed += 1
            frame_bgr = letterbox(frame_bgr, self._size)
        if self._pad != (0, 0):  # the last row and column repeated to the even size the encoder needs
            frame_bgr = cv2.copyMakeBorder(frame_bgr, 0, self._pad[1], 0, self._pad[0], cv2.BORDER_REPLICATE)
        self._writer.write(frame_bgr)
        self.frames += 1

    def _open_writer(self, w: int, h: int) -> None:
        """Open OpenCV's writer on a new partial file for ``w``×``h`` px frames."""
        self._size = (w, h)
        self._partial = self._reserve()
        where = self._names.enter_context(opencv_path(self._partial, "video file", RecordError))
        codec = _FOURCC[self.path.suffix.lower()]
        narrow = codec == "MJPG" and w < FFMPEG_MJPEG_MIN_WIDTH
        backend = cv2.CAP_OPENCV_MJPEG if narrow else cv2.CAP_ANY
        # the encoders need even sides: an odd frame's last row or column was cut without a word (MPEG-4,
        # MJPG and HuffYUV alike here)
        self._pad = (w % 2, h % 2)
        self._writer = cv2.VideoWriter(where, backend, self._fourcc, self.fps, (w + self._pad[0], h + self._pad[1]))
        if self._writer.isOpened():
            with contextlib.suppress(OSError):
                self._held = os.open(self._partial, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            return
        self._writer = None
        self.close()  # removes the partial file
        suffix = self.path.suffix.lower()
        other = ".mkv (HuffYUV)" if suffix == ".avi" else ".avi (MJPG)"
        if encoder_works(self._fourcc, suffix):
            codec = _CODEC_NAMES.get(_FOURCC[suffix], _FOURCC[suffix])
            raise RecordError(f"cannot write video {name(self.path)}: its frames are {w}x{h} px, a size the "
                              f"{codec} encoder refuses (it writes 64x64 here); try {other}")
        raise RecordError(f"cannot write video {name(self.path)}: OpenCV has no encoder for it here; "
                          f"try {other}")

    def _check_space(self, frame_bytes: int) -> None:
        try:
            st = os.statvfs(os.path.dirname(self._target))
        except (OSError, AttributeError):  # no statvfs here (Windows) or the folder went away: OpenCV says nothing either way
            return
        free = st.f_bavail * st.f_frsize
        if free < max(VIDEO_SPACE_FLOOR_BYTES, 2 * frame_bytes):
            raise RecordError(f"cannot write video {name(self.path)}: the disk is full ({free / 1e6:.1f} MB free); "
                              f"the video holds the first {self.frames} frame(s): free some space or save it elsewhere")

    def _check_size(self, frame_bytes: int) -> None:
        """Stop before the file outgrows its file-size limit (:func:`file_size_limit`): past it every write
        fails, OpenCV drops the frames without a word and cannot finalise the file (a run under a 400 KB
        limit wrote 120 frames to a video that played 36, said nowhere; a FAT32 USB stick ends a 1080p
        session so after 4 GiB)."""
        if self._size_limit is None or self._partial is None:
            return
        try:
            size = os.stat(self._partial).st_size
        except OSError:
            return
        limit, limit_said, todo = self._size_limit
        if size + 2 * frame_bytes + VIDEO_SIZE_MARGIN_BYTES + 64 * self.frames > limit:
            raise RecordError(f"cannot write video {name(self.path)}: it has reached {limit_said}; the video holds "
                              f"the first {self.frames} frame(s): {todo}")

    def close(self) -> None:
        """Finalise the file so it is playable and move it over ``path``; safe to call twice. With
        no frame written, nothing is moved: an earlier file at ``path`` stays as it was.

        Raises:
            RecordError: the finished video cannot be moved into place (it stays under its partial name).
        """
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        self._names.close()
        partial, self._partial = self._partial, None
        held, self._held = self._held, None
        try:
            if partial is None:
                return
            if not self.frames:
                with contextlib.suppress(OSError):
                    os.unlink(partial)
                return
            if held is not None:
                partial = self._partial_of(held, partial)
            _move_into_place(partial, self._target, self.path)
        finally:
            if held is not None:
                os.close(held)

    def _partial_of(self, held: int, partial: str) -> str:
        """The finished video's file: ``partial`` when it is still the file written, else a new partial
        file made from the open one (the file was deleted, moved or replaced during the run, by a clean-up
        of stray ``.partial-`` files, a user: OpenCV wrote on into the unnamed file, and the video was
        lost when it closed it, the run saying "cannot put video in place ... its frames are in" a file
        that was not there).

        Raises:
            RecordError: the new file cannot be made (the folder is gone or full).
        """
        kept = os.fstat(held)
        with contextlib.suppress(OSError):
            st = os.stat(partial)
            if (st.st_dev, st.st_ino) == (kept.st_dev, kept.st_ino):
                return partial
        folder = os.path.dirname(os.path.abspath(self._target))
        if not os.path.isdir(folder):  # deleted with the file (``rm -rf`` of the output folder): made again
            with contextlib.suppress(OSError):
                os.makedirs(folder)
        again = self._reserve()
        try:
            fd = os.open(again, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0))
            try:
                _copy_open_file(held, fd, kept.st_size, f"video file {name(again)}")
            finally:
                os.close(fd)
        except (OSError, RecordError) as e:
            with contextlib.suppress(OSError):
                os.unlink(again)
            raise RecordError(f"video {name(self.path)}: its unfinished file {name(partial)} was deleted or moved "
                              f"during the run, and its {self.frames} frame(s) cannot be saved again "
                              f"({why(e) if isinstance(e, OSError) else e})") from None
        log.warning("video %s: its unfinished file %s was deleted or moved during the run; its %d frame(s) were "
                    "kept and the video is put in place all the same", name(self.path), name(partial), self.frames)
        return again

    def __enter__(self) -> "VideoRecorder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _move_into_place(partial: str, target: str, shown: Path) -> None:
    """Put the finished ``partial`` file at ``target`` in one step, its data on disk first (a power
    cut after the move leaves the whole new video, one before it the earlier file).

    Raises:
        RecordError: the move fails (a file made immutable meanwhile, a folder gone); the frames stay in ``partial``.
    """
    try:
        fd = os.open(partial, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(partial, target)
    except OSError as e:
        raise RecordError(f"cannot put video {name(shown)} in place: {why(e)}; its frames are in "
                          f"{name(partial)}") from None
    with contextlib.suppress(OSError):  # the new name on disk too (not every file system lets a folder be opened)
        folder = os.open(os.path.dirname(target), os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
