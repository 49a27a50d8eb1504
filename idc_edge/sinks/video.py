"""The overlay video, saved so that it plays back at the speed it was recorded."""
from __future__ import annotations

import contextlib
import logging
import os
import weakref
from pathlib import Path
from typing import Optional, Union

import numpy as np

from ..errors import RecordError
from ..fileio import name, replacing, why, write_all
from ..record import LOCK_WAIT_S, VideoRecorder, hold_lock
from .base import SessionInfo, Sink, SinkFrame

log = logging.getLogger(__name__)

#: output frame rates are kept within this range (frames per second)
MIN_FPS, MAX_FPS = 1.0, 60.0
#: the highest rate a video may be asked for (``VideoSink(fps=...)``): a high-speed camera's file
MAX_RECORD_FPS = 240.0


def frame_slot(t_s: float, t0_s: float, fps: float) -> int:
    """The output frame (from 0) at which a frame taken at ``t_s`` seconds belongs, for a video that
    starts at ``t0_s`` and runs at ``fps``."""
    return max(0, int(round((t_s - t0_s) * fps)))


#: suffix of the frame index written beside a saved video (``run.mp4`` → ``run.mp4.frames.tsv``)
FRAME_INDEX_SUFFIX = ".frames.tsv"
_INDEX_HEADER = b"# idc-edge frame index: results record index <TAB> video frame (from 0)\n"
#: the frame index's second line names the session that wrote the video (``# session <id>``); older
#: indexes have none
_SESSION_LINE = b"# session "


def session_line(session_id: str) -> bytes:
    """The frame index's line naming the run's session id, or nothing for an id that is not one
    printable word (a custom :class:`SessionInfo`'s): the report then cannot tie the video to a session."""
    ok = isinstance(session_id, str) and session_id.isascii() and session_id.isprintable() and " " not in session_id
    return _SESSION_LINE + session_id.encode("ascii") + b"\n" if ok else b""


def frame_index_session(data: bytes) -> Optional[str]:
    """The session id a frame index (its bytes) names, or None when it names none (written before
    session ids) or is not a frame index."""
    if not data.startswith(_INDEX_HEADER + _SESSION_LINE):
        return None
    line = data[len(_INDEX_HEADER) + len(_SESSION_LINE):].split(b"\n", 1)[0]
    return line.decode("ascii", "replace").strip() or None


def is_frame_index(path: Union[str, os.PathLike]) -> bool:
    """True when ``path`` is a regular file in idc-edge's frame-index format: its header line, then
    only lines of two whole numbers (the first 64 KiB are checked; a cut last line is allowed)."""
    from ..fileio import open_input

    try:
        fd = open_input(path, "video frame index", RecordError)
    except RecordError:
        return False
    try:
        head = os.pread(fd, 1 << 16, 0)
    except OSError:
        return False
    finally:
        os.close(fd)
    if not head.startswith(_INDEX_HEADER):
        return False
    lines = head[len(_INDEX_HEADER):].split(b"\n")[:-1]  # the part after the last newline may be cut
    if lines and lines[0].startswith(_SESSION_LINE):
        lines = lines[1:]
    return all(len(read_frame_index(line)) == 1 for line in lines)


def refuse_a_foreign_video(path: os.PathLike, index_path: os.PathLike) -> None:
    """Refuse to replace a non-empty ``path`` that idc-edge did not write: its own overlay videos have
    their frame index (:data:`FRAME_INDEX_SUFFIX`) beside them; a camera's recording does not.

    Raises:
        RecordError: naming the file and what to do.
    """
    try:
        if os.path.getsize(path) == 0:
            return
    except OSError:  # missing (or a dangling link): nothing to lose
        return
    if not is_frame_index(index_path):
        raise RecordError(f"video file {name(path)} already exists and is not an overlay video written by idc-edge "
                          f"(no idc-edge frame index {name(os.path.basename(index_path))} beside it): replacing it would destroy "
                          "another program's file; choose another name, or delete the file first if it may go")


#: suffix of the lock file beside a video while a run writes it (``run.avi`` → ``run.avi.lock``)
LOCK_SUFFIX = ".lock"


def _is_open_file(fd: int, path: str) -> bool:
    """True when ``path`` is (still) the file open as ``fd``, not a new file or nothing."""
    try:
        st, held = os.stat(path, follow_symlinks=False), os.fstat(fd)
    except OSError:
        return False
    return (st.st_dev, st.st_ino) == (held.st_dev, held.st_ino)


def lock_video_name(target: str, shown: os.PathLike, wait_s: float = LOCK_WAIT_S) -> int:
    """Hold ``<target>.lock`` for the whole run (made here, removed by :func:`unlock_video_name`) and
    return its file descriptor: a second run saving its video to the same name would otherwise
    finish too and the last to close silently replace the other's video. The second run waits up to
    ``wait_s`` seconds, then is refused before it reads a frame.

    Raises:
        RecordError: another run holds the name (naming its process id), or the folder takes no file.
    """
    path = target + LOCK_SUFFIX
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o666)
        except OSError as e:
            raise RecordError(f"cannot write video file {name(shown)}: its lock file {name(path)}: {why(e)}") from None
        try:
            hold_lock(fd, Path(path), wait_s, f"video file {name(shown)}", "save the video under another name")
        except BaseException:
            os.close(fd)
            raise
        if _is_open_file(fd, path):
            return fd
        os.close(fd)  # the run before removed the file as it ended: lock the one now there


def unlock_video_name(fd: int, target: str) -> None:
    """Remove the lock file :func:`lock_video_name` made (while still holding it, so a run waiting
    for it sees it gone and locks a new one) and release it."""
    path = target + LOCK_SUFFIX
    if _is_open_file(fd, path):
        with contextlib.suppress(OSError):
            os.unlink(path)
    os.close(fd)


def read_frame_index(data: bytes) -> dict[int, int]:
    """{record index: video frame} from the bytes of a frame index (:data:`FRAME_INDEX_SUFFIX`);
    lines that are not two whole numbers of at most 18 digits are skipped (an edited line of thousands of
    digits is past what Python converts: the report ended in an internal error)."""
    out: dict[int, int] = {}
    for line in data.splitlines():
        parts = line.split(b"\t")
        if len(parts) == 2 and all(p.isdigit() and len(p) <= 18 for p in parts):
            out[int(parts[0])] = int(parts[1])
    return out


def choose_fps(declared: float, mean_gap_s: Optional[float]) -> float:
    """The output rate: the source's declared rate when it has one, else 1 / the mean gap measured
    between the first frames, else 30; kept within 1–60 frames per second (a file declaring 0.2
    frames per second is written at 1, each frame held 5 slots, not at 30 with 150)."""
    if declared and declared > 0:
        return float(min(MAX_FPS, max(MIN_FPS, declared)))
    if mean_gap_s and mean_gap_s > 0:
        return float(min(MAX_FPS, max(MIN_FPS, round(1.0 / mean_gap_s, 1))))
    return 30.0


class VideoSink(Sink):
    """Writes the overlay video at the real rate: each frame goes in at the place its timestamp says.

    A video file plays at a constant rate, while a run's frames do not arrive at one (the pipeline
    keeps up with what it can, a camera's newest frame wins). So the output runs at a constant
    ``fps`` — a video file's declared rate, else the rate measured over the first
    ``warmup_frames`` frames (held until then; a camera's declared rate is not what a run gets) —
    and each frame is written at the slot its timestamp (source time for files, capture time for
    cameras) belongs to: a frame is repeated until the next one is due, and one that arrives before
    its slot is skipped. A frame whose time is not later than the frame before (a source whose
    frames all carry one time, or a clock set back) takes the next slot, so every frame is in the
    video and later ones count on from there. The saved video therefore lasts as
    long as the recording, whatever the pipeline's speed (a 10-minute session at 10.5 fps plays 10
    minutes, not 3.5 at a fixed 30 fps).

    Delivery: for a file source every frame is written (``"every"``); for a live camera the encoder
    runs on its own thread and newest wins (``"latest"``), so a slow encoder never slows the run:
    the skipped frames are filled by repeating the one before, keeping time.

    An existing file at ``path`` is replaced only when idc-edge wrote it (its frame index beside it,
    see :func:`refuse_a_foreign_video`), and only when this video is finished (see
    :class:`~idc_edge.record.VideoRecorder`): a run killed hard leaves the earlier video whole.

    The name is held for the whole run (``<video>.lock``, see :func:`lock_video_name`): a second
    run saving to it is refused before it reads a frame, naming the first run's process.

    Beside the video, ``<video>.frames.tsv`` names the run's session id (``# session <id>``) and says
    which video frame shows each results record (its ``index``; a skipped frame maps to the frame
    that stands for it), so that a report takes a record's picture only from this session's video
    and finds it even where the video's time is not the records' (a long pause held, frames
    retimed, a clock set back). It is written in one step when the video is closed.

    Args:
        path: ``.mp4``/``.mov``/``.m4v`` (mp4v), ``.avi`` (MJPG) or ``.mkv`` (HuffYUV, lossless).
        fps: output rate; None chooses as above.
        max_gap_s: a pause longer than this (seconds without frames) is held for this long in the
            video and the rest of the pause left out.
    """

    name = "video"
    one_run = True
    delivery = "every"
    needs_overlay = True

    def __init__(self, path: Union[str, os.PathLike], fps: Optional[float] = None, max_gap_s: float = 10.0):
        from ..validate import MAX_WAIT_S, number

        # checked here: each frame fills (time since the last) × fps slots, up to max_gap_s × fps, so
        # fps=1e9 wrote gigabytes of repeats without end, and a NaN pause limit held nothing back
        if fps is not None:
            fps = number("fps", fps, MIN_FPS, MAX_RECORD_FPS, "frames per second of the video")
        max_gap_s = number("max_gap_s", max_gap_s, 0.0, MAX_WAIT_S, "seconds")
        self._recorder = VideoRecorder(path, fps=fps or 30.0)  # validates the extension and folder
        self.path = self._recorder.path
        self.index_path = self.path.with_name(self.path.name + FRAME_INDEX_SUFFIX)
        target = os.path.realpath(self.path)  # the file a link names: two links to it are one name
        self.lock_path = Path(target + LOCK_SUFFIX)  # held for the run: no other output may be it
        # released when closed, or when the sink is dropped unused (a run refused before it started)
        self._unlock = weakref.finalize(self, unlock_video_name, lock_video_name(target, self.path), target)
        try:
            refuse_a_foreign_video(self.path, self.index_path)
        except BaseException:
            self._unlock()
            raise
        self._fixed_fps = fps
        self.max_gap_s = float(max_gap_s)
        self._declared = 0.0
        self._t0: Optional[float] = None
        self._pending: list[tuple[float, int, np.ndarray]] = []
        self.received = 0  # frames handed to write
        self._index = contextlib.ExitStack()
        self._index_fd: Optional[int] = None
        self._index_lines: Optional[list[bytes]] = []  # None: no index (it could not be written)
        self._session_line = b""  # the index's line naming the session, set by start
        self.warmup_frames = 5
        self._last: Optional[np.ndarray] = None
        self._prev_t: Optional[float] = None
        self.repeated = 0
        self.skipped = 0
        self.retimed = 0  # frames whose time did not increase, given the next slot

    @property
    def frames(self) -> int:
        """Frames in the file so far (repeats included)."""
        return self._recorder.frames

    @property
    def fps(self) -> float:
        return self._recorder.fps

    def start(self, info: SessionInfo) -> None:
        self.delivery = "latest" if info.live else "every"
        self._session_line = session_line(info.session_id)
        self._declared = 0.0 if info.live else info.source_fps  # a camera says 30 and delivers what it can

    def write(self, frame: SinkFrame) -> None:
        self.received += 1
        t = float(frame.result.timestamp)
        if self._t0 is None:
            if not (self._fixed_fps or self._declared):
                # the rate is measured over the first frames (held until then): the first gap alone
                # says little, as a camera's second frame is whatever was newest when the model was ready
                self._pending.append((t, int(frame.result.index), frame.overlay))
                if len(self._pending) < self.warmup_frames:
                    return
                self._flush_pending()
                return
            self._open(t, None)
        self._place(t, int(frame.result.index), frame.overlay)

    def _flush_pending(self) -> None:
        pending, self._pending = self._pending, []
        times = [t for t, _, _ in pending]
        if len(times) >= 3:  # the first gap left out (see write)
            gap = (times[-1] - times[1]) / (len(times) - 2)
        else:
            gap = times[1] - times[0] if len(times) == 2 else None
        self._open(times[0], gap if gap and gap > 0 else None)
        for t, index, image in pending:
            self._place(t, index, image)

    def _open(self, t0: float, mean_gap: Optional[float]) -> None:
        self._recorder.fps = self._fixed_fps or choose_fps(self._declared, mean_gap)
        self._t0 = t0

    def _place(self, t: float, index: int, image: np.ndarray) -> None:
        fps = self._recorder.fps
        if self._prev_t is not None and t <= self._prev_t:
            # no later than the frame before: a source whose frames all carry one time (or whose
            # clock stepped back) would otherwise give a one-frame video; this frame takes the next
            # slot and later ones count from it
            self._t0 = t - self._recorder.frames / fps
            if not self.retimed:
                log.warning("%s: a frame has no later time than the one before (%.6g s); each such frame takes "
                            "the next of the video's %g frames per second", self.path.name, t, fps)
            self.retimed += 1
        elif (t - self._t0) * fps < self._recorder.frames - fps:  # over a second back: the clock was set back
            self._t0 = t - self._recorder.frames / fps  # (NTP on a board without a real-time clock), not a late frame
        self._prev_t = t
        slot = frame_slot(t, self._t0, fps)
        if slot < self._recorder.frames:
            self.skipped += 1  # due in a slot already written: the frame there stands for it
            self._note(index, self._recorder.frames - 1)
            return
        gap = slot - self._recorder.frames
        if gap > self.max_gap_s * fps:  # a long pause (laptop asleep): hold the picture max_gap_s, not hours
            self._t0 += (gap - int(self.max_gap_s * fps)) / fps
            slot = frame_slot(t, self._t0, fps)
        while self._recorder.frames < slot:
            self._recorder.write(self._last)
            self.repeated += 1
        self._last = None  # not needed any more: one 1080p frame (6 MB) less held while encoding
        self._recorder.write(image)
        self._last = image
        self._note(index, self._recorder.frames - 1)

    def _note(self, index: int, video_frame: int) -> None:
        """Add a line to the frame index (written out in blocks, so memory stays flat over a long run)."""
        if self._index_lines is not None:
            self._index_lines.append(b"%d\t%d\n" % (index, video_frame))
            if len(self._index_lines) >= 4096:
                self._write_index_lines()

    def _write_index_lines(self) -> None:
        lines, self._index_lines = self._index_lines or [], []
        try:
            if self._index_fd is None:  # a hidden file beside the video until close puts it in place
                self._index_fd = self._index.enter_context(
                    replacing(self.index_path, "video frame index", error=RecordError))
                write_all(self._index_fd, _INDEX_HEADER + self._session_line, 5.0, "video frame index")
            write_all(self._index_fd, b"".join(lines), 5.0, "video frame index")
        except (RecordError, OSError) as e:  # the video matters more than its index: go on without one
            log.warning("cannot write the video's frame index %s (%s); the report cannot tie this video to its "
                        "session and shows no picture from it", name(self.index_path), e)
            self._index_lines = None
            with contextlib.suppress(RecordError):  # removes the hidden file
                self._index.__exit__(RecordError, RecordError("frame index dropped"), None)

    def close(self) -> None:
        if self._pending:  # a run shorter than the warm-up
            self._flush_pending()
        try:
            self._recorder.close()
            if self._index_lines:
                self._write_index_lines()
            try:
                self._index.close()  # the index takes its name in one step
            except RecordError as e:
                log.warning("%s; the report cannot tie this video to its session and shows no picture from it", e)
        finally:
            self._unlock()  # the video and its index are in place: another run may take the name

    def summary(self) -> Optional[str]:
        if not self._recorder.frames:  # nothing written: a file of that name is not this run's video
            return f"no video written to {self.path}" + ("" if self.received else " (no frame)")
        # frames due in a slot already written (a source faster than the video's rate, at most 60 fps):
        # said, so a video shorter in frames than the results is not taken for a lost part
        shared = (f" ({self.skipped} of the frames fell in a video frame already written at {self.fps:g} fps; "
                  f"its frame index says which video frame shows each)") if self.skipped else ""
        return f"video in {self.path}{shared}"

    def to_dict(self) -> Optional[dict]:
        """The file, its first frame the session's first frame (the first record's ``time``), and
        the frame index that maps records to its frames (written when the video is closed)."""
        return {"path": str(self.path.resolve()), "frames": str(self.index_path.resolve())}
