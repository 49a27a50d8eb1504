"""Video files as sources: every frame in order, undecodable frames skipped and counted."""
from __future__ import annotations

import itertools
import logging
import math
import os
from typing import Iterator, Optional, Union

import cv2
import numpy as np

from ..budget import check_buffer
from ..errors import MemoryBudgetError, SourceError
from ..fileio import as_path, decode_image, name, open_input, opencv_path
from ..jpegnotes import damage
from .base import Frame, FrameSource

log = logging.getLogger(__name__)


_JPEG_CODECS = frozenset({"MJPG", "JPEG", "AVRN", "DMB1"})

#: a container's display rotation (degrees, as OpenCV states it) → how OpenCV turns its decoded frames
_TURNS = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}

#: frame rates a video file's header may state, frames per second: from one frame every 100 s (a
#: time lapse) to a high-speed camera's 10,000; outside it the header is damaged (unknown: 0)
MIN_FILE_FPS, MAX_FILE_FPS = 0.01, 1e4


def decode_packet(packet, notes: "list | None" = None) -> "np.ndarray | None":
    """A Motion-JPEG frame's bytes (as OpenCV's raw read gives them) decoded at its own size; None when corrupt.

    libjpeg's warnings about damaged data (a frame decoded in part, the rest grey) go into ``notes``
    (see :func:`idc_edge.fileio.decode_image`), never on the terminal.
    """
    if packet is None or not getattr(packet, "size", 0):
        return None
    try:  # sized from the JPEG header first: a damaged header claiming gigapixels is not decoded
        return decode_image(np.ascontiguousarray(packet).reshape(-1).tobytes(), "a video frame", cv2.IMREAD_COLOR,
                            notes=[] if notes is None else notes)
    except (SourceError, MemoryBudgetError):
        return None


class VideoSource(FrameSource):
    """Every frame of a video file, in order; timestamps from the file in seconds.

    A frame the decoder cannot read (corrupt bytes, a file cut short) is skipped, counted in
    ``skipped`` and logged, and reading goes on with the next one; ``Frame.index`` stays the
    frame's position in the file. Reading stops at the end of the file, or after
    ``max_bad_frames`` failures in a row (a file cut short before its stated frame count); the
    frames it states but never gave are counted in ``skipped`` too. Motion-JPEG frames are decoded
    at their own size, so a frame size that changes mid-stream is seen (and rescaled per frame).
    A container's display rotation (a phone's or a tilted camera's MP4/MOV) turns every frame
    upright, as OpenCV and video players show it, whichever the codec.
    """

    def __init__(self, path: Union[str, os.PathLike], max_bad_frames: int = 25):
        self.path = as_path(path, "video")
        super().__init__(f"video {name(self.path)}")
        fd = open_input(self.path, "video")  # missing, a folder, FIFO or device: refused here, no hang
        try:
            file_bytes = os.fstat(fd).st_size
        finally:
            os.close(fd)
        self.max_bad_frames = max_bad_frames
        with opencv_path(self.path, "video") as where:
            probe = cv2.VideoCapture(where)
            try:
                if not probe.isOpened():
                    raise SourceError(f"cannot open {name(self.path)} as a video: {_why_unreadable(self.path, file_bytes)}")
                count = probe.get(cv2.CAP_PROP_FRAME_COUNT)
                fps = probe.get(cv2.CAP_PROP_FPS)
                fourcc = int(probe.get(cv2.CAP_PROP_FOURCC) or 0)
                size = (probe.get(cv2.CAP_PROP_FRAME_WIDTH), probe.get(cv2.CAP_PROP_FRAME_HEIGHT))
            finally:
                probe.release()
        # each decoded frame is one buffer: refuse a header whose frame size is over the budget before decoding
        check_buffer((size[0], size[1], 3), 1, f"one {size[0]:.0f}×{size[1]:.0f} px frame of {name(self.path)}",
                     "use a smaller video")
        self.frame_count = int(count) if count and math.isfinite(count) and 0 < count < 1e12 else 0
        if self.frame_count > file_bytes:
            # every frame takes at least a byte: a count the file cannot hold is a damaged header (or a
            # duration OpenCV multiplied out), not frames lost; believed, it made a 12-frame file
            # "3999999988 unusable frame(s) skipped"
            log.warning("%s states %d frames, more than its %d bytes can hold (a damaged header); it is read to "
                        "its end", self.description, self.frame_count, file_bytes)
            self.frame_count = 0
        self.fps = float(fps) if fps and math.isfinite(fps) and MIN_FILE_FPS <= fps < MAX_FILE_FPS else 0.0
        # a header rate that no video has (a damaged or hand-edited header) is not believed, nor the
        # frame times OpenCV works out from it (one frame every 68 years made a saved overlay video
        # hold each frame for the longest pause instead of one slot): its frames are 1 s apart
        self._times_from_file = bool(self.fps) or not fps
        if not self._times_from_file:
            log.warning("%s states %.3g frames per second, not a rate a video has; its frames are taken to be "
                        "1 s apart", self.description, fps)
        self.codec = fourcc.to_bytes(4, "little").decode("latin-1") if 0 < fourcc < 1 << 32 else ""

    def _iter_frames(self) -> Iterator[Frame]:
        with opencv_path(self.path, "video") as where:
            cap = cv2.VideoCapture(where)
            # Motion JPEG: take each frame's own JPEG and decode it here, because OpenCV's decoder
            # scales every frame to the first frame's size, so a frame of another size would keep a
            # wrong microns-per-pixel scale; decoded here, each frame keeps its real size.
            # OpenCV turns what it reads by the container's rotation: a decoded frame, but also a raw
            # packet, a 1×N row of bytes (reversed by 180° or 270°: every frame "cannot be decoded";
            # sideways by 90°, while the same recording in another codec came upright). So its turn is
            # switched off for packets and the decoded frames are turned here the same way
            raw = self.codec.upper() in _JPEG_CODECS
            turn = _TURNS.get(self._rotation(cap)) if raw else None
            raw = raw and (turn is None or bool(cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 0))) \
                and bool(cap.set(cv2.CAP_PROP_FORMAT, -1))
            turn = turn if raw else None
            try:
                yield from self._frames(cap, raw, turn)
            finally:
                cap.release()

    @staticmethod
    def _rotation(cap) -> int:
        """The container's display rotation in degrees (0, 90, 180, 270) as OpenCV applies it; 0
        when OpenCV does not turn frames (its automatic orientation off) or states none."""
        try:
            if not cap.get(cv2.CAP_PROP_ORIENTATION_AUTO):
                return 0
            angle = cap.get(cv2.CAP_PROP_ORIENTATION_META)
        except (AttributeError, cv2.error):  # an OpenCV without these properties turns nothing
            return 0
        return int(round(angle)) % 360 if math.isfinite(angle) else 0

    def _frames(self, cap, raw: bool, turn: Optional[int] = None) -> Iterator[Frame]:
        failed: list[int] = []  # reads that failed since the last good one: named only once one follows
        damaged = None  # what libjpeg said of the frame's data (raw Motion JPEG only)
        got = 0  # reads that gave a frame
        for index in itertools.count():
            try:
                ok, image = cap.read()
            except cv2.error as e:  # some backends raise instead of returning False
                ok, image = False, None
                log.debug("%s: read raised %s", self.description, e)
            if not ok:
                if self.frame_count and index < self.frame_count and len(failed) < self.max_bad_frames:
                    failed.append(index)
                    self.skipped += 1
                    continue
                if self.frame_count > index:  # gave up early: the frames never reached are lost too
                    self.skipped += self.frame_count - index
                if failed or self.frame_count > index:
                    # failed reads with no good frame after them: the file ran out of frames, because it
                    # was cut short or because corrupt data inside it made the demuxer drop a frame
                    # somewhere without a trace (the frames after that place then came one position early)
                    log.warning("%s: the file gives %d of the %d frames it states; %d missing (cut short, or corrupt "
                                "data inside it, after which frames are numbered from where the lost ones were)",
                                self.description, got, self.frame_count, self.frame_count - got)
                return
            got += 1
            for lost in failed:  # a good read followed: these positions really could not be read
                log.warning("%s: frame %d cannot be decoded; skipped", self.description, lost)
            failed = []
            if raw:
                notes: list = []
                image = decode_packet(image, notes)
                if image is None:  # the packet is there but is not a JPEG (bad block on the card)
                    self.skipped += 1
                    log.warning("%s: frame %d cannot be decoded; skipped", self.description, index)
                    continue
                damaged = damage(notes)
                self._note_damage(index, damaged)
                if turn is not None:
                    image = cv2.rotate(image, turn)
            image = self._checked(image)
            if image is None:
                continue
            ms = cap.get(cv2.CAP_PROP_POS_MSEC) if self._times_from_file else None
            ts = ms / 1000.0 if ms and 0 < ms < math.inf else (index / self.fps if self.fps else float(index))
            yield Frame(index, ts, image, damaged if raw else None)


def _why_unreadable(path: str, file_bytes: int) -> str:
    """Why OpenCV opened no video from ``path`` (``file_bytes`` long), in words: empty, an MP4/MOV
    cut off before its index was written, or not a video OpenCV can decode."""
    from .sniff import iso_media_without_index

    if file_bytes == 0:
        return "the file is empty (0 bytes): a recording that never wrote a frame, or a copy that failed"
    try:
        fd = open_input(path, "video")
        try:
            cut_off = iso_media_without_index(fd, file_bytes)
        finally:
            os.close(fd)
    except (SourceError, OSError):
        cut_off = False
    if cut_off:
        return ("it is an MP4/MOV without its index (no 'moov' box), which MPEG-4 writes last: the recording was "
                "cut off before it was finished (the program stopped, the disk filled, the card was pulled) and no "
                "frame can be found in it; a repair tool that rebuilds the index from a good recording of the same "
                "camera may save it, and recording to .mkv or .avi keeps what was written")
    return "not a video file OpenCV can decode (for still images use .png/.jpg/.tif)"
