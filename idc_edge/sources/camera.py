"""Live cameras (V4L2 / OpenCV capture) as sources: newest frame wins, reconnect after a drop-out."""
from __future__ import annotations

import hashlib
import logging
import os
import stat
import threading
import time
from typing import Callable, Iterator, Optional, Union

import cv2
import numpy as np

from .. import validate
from ..errors import CameraLostError, FrameError, OptionError, SourceError
from ..fileio import opencv_text
from ..jpegnotes import damage, jpeg_warnings
from ..waitclock import WaitClock, steady_time
from .base import Frame, FrameSource
from .mjpeg import ReducedMjpeg, decode_or_skip
from .modes import CameraControls, CameraMode, apply_mode, granted_mode
from .network import STREAM_PATHS, redact_url

log = logging.getLogger(__name__)


_ABANDONED: list = []

#: Longest step between two readings of a poll's clock that counts as waiting (the polls read it every
#: 0.1-0.5 s): a longer gap is time the process was stopped or starved, see :mod:`idc_edge.waitclock`.
POLL_STEP_MAX_S = 2.0

#: Seconds an open may run past the camera timeout: FFmpeg's own open deadline (the same timeout)
#: fires a little late, and a call that returns by itself leaves no thread behind.
OPEN_GRACE_S = 2.0


def abandoned_calls() -> int:
    """How many calls :func:`call_with_deadline` gave up on are still running (stuck in a driver).

    A process that exits normally with such a thread inside C++ code can abort in the C++ runtime
    (SIGABRT) while it shuts down; the command line ends with ``os._exit`` instead when this is > 0.
    """
    _ABANDONED[:] = [t for t in _ABANDONED if t.is_alive()]
    return len(_ABANDONED)


def call_with_deadline(fn: Callable[[], object], timeout_s: float, stop: Optional[threading.Event] = None,
                       on_late: Optional[Callable[[object], None]] = None):
    """``fn()`` run on a daemon thread, waited for at most ``timeout_s`` seconds.

    The calling thread waits in short steps, so Ctrl-C (a KeyboardInterrupt in the main thread)
    and ``stop`` end the wait at once. A call that has not returned by then is abandoned: its
    thread keeps running, and ``on_late`` receives its result if it ever returns (to release it).

    Raises:
        TimeoutError: ``fn`` did not return in time (or ``stop`` was set).
        Exception: whatever ``fn`` raised.
    """
    done = threading.Event()
    box: dict = {}
    abandoned = threading.Event()

    def target():
        try:
            box["value"] = fn()
        except BaseException as e:  # handed to the waiting thread
            box["error"] = e
        done.set()
        if abandoned.is_set() and on_late is not None and "value" in box:
            try:
                on_late(box["value"])
            except Exception:
                pass

    worker = threading.Thread(target=target, name="idc-edge-open", daemon=True)
    worker.start()
    clock = WaitClock(POLL_STEP_MAX_S)  # a stop (Ctrl-Z, then fg) is not time the call took
    try:
        while not done.wait(min(0.1, max(0.0, timeout_s - clock.waited()))):
            if clock.waited() >= timeout_s or (stop is not None and stop.is_set()):
                raise TimeoutError(f"no answer within {timeout_s:g} s")
    except BaseException:
        abandoned.set()
        _ABANDONED.append(worker)
        if done.is_set() and on_late is not None and "value" in box:  # it returned just now
            on_late(box["value"])
        raise
    if "error" in box:
        raise box["error"]
    return box.get("value")


def _shown(device: Union[int, str]) -> Union[int, str]:
    """``device`` for messages and descriptions: a URL's (or a pipeline's) password masked."""
    return redact_url(device) if isinstance(device, str) else device


#: the character-device major number of video (V4L2) devices on Linux
V4L2_MAJOR = 81


def _not_a_camera(device: str, waited_s: float) -> Optional[str]:
    """Why the device path ``device`` that gave no capture is no camera at all, or None when it may be
    one (a video device, or a path that does not exist: unplugged). A folder, a regular file, a FIFO
    that gave no video and a character device that is not a video device (``/dev/null``, a terminal)
    were all told to "check the cable"."""
    import os
    import stat
    import sys

    try:
        st = os.stat(device)
    except (OSError, ValueError):
        return None
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        return "it is a folder, not a camera (a folder of images is read with source=FOLDER)"
    if stat.S_ISREG(mode):
        return "it is a file OpenCV cannot read as video, not a camera (a video file is read with source=FILE)"
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        return (f"it is a {'FIFO (named pipe)' if stat.S_ISFIFO(mode) else 'socket'} that gave no video within "
                f"{waited_s:g} s: a camera path of a pipe reads a video stream written into it (MJPEG, H.264), so "
                "check that its writer is running and sends one")
    if stat.S_ISCHR(mode) and sys.platform.startswith("linux") and os.major(st.st_rdev) != V4L2_MAJOR:
        return ("it is a character device but not a video (V4L2) device (/dev/null, a terminal, a serial port); "
                "cameras are /dev/video* or their /dev/v4l/by-id links: list them with `idc-edge cameras`")
    if stat.S_ISBLK(mode):
        return "it is a block device (a disk), not a camera; list cameras with `idc-edge cameras`"
    return None


def _is_regular_file(device: Union[int, str]) -> bool:
    """True when ``device`` names a regular file (a video file opened as a camera), not a device or URL."""
    if not isinstance(device, str):
        return False
    try:
        return stat.S_ISREG(os.stat(device).st_mode)
    except (OSError, ValueError):
        return False


def _frame_digest(image: np.ndarray) -> bytes:
    """A 16-byte digest of a frame's pixels (shape and values), to tell the same frame again."""
    h = hashlib.blake2b(str((image.shape, image.dtype.str)).encode(), digest_size=16)
    h.update(np.ascontiguousarray(image).data)
    return h.digest()


#: How many of a camera's frame intervals its lost timeout must cover: one is the wait for every next
#: frame, the second the camera's jitter and a re-open after one failed read.
TIMEOUT_FRAME_INTERVALS = 2.0


def timeout_for_frames(fps: float) -> float:
    """The shortest lost timeout, seconds, for a camera sending ``fps`` frames a second: :data:`TIMEOUT_FRAME_INTERVALS`
    frame intervals, rounded up to a hundredth of a second (a number to type)."""
    import math

    return math.ceil(TIMEOUT_FRAME_INTERVALS / fps * 100.0 - 1e-9) / 100.0


#: openings in a row giving one frame each after which a stream is said to send one picture per connection
ONE_PICTURE_OPENINGS = 3


class CameraSource(FrameSource):
    """A live camera read on its own thread; **the newest frame wins** and older ones are dropped.

    Inference is slower than the camera, so keeping only the latest frame keeps the overlay in
    step with the stage; ``dropped`` counts the frames replaced before they were used. When
    reads fail (cable pulled, device gone, the driver raising) the reader logs one warning,
    re-opens the device with back-off (0.1 s doubling to 2 s), logs when it is back and
    resumes; ``losses`` counts those outages and ``reconnects`` the successful re-opens. After
    ``lost_timeout_s`` without a frame the stream ends with :class:`CameraLostError`.

    Args:
        device: camera index (``/dev/video<N>``), or a device path or capture URL
            (``/dev/v4l/by-id/...`` keeps naming the same camera after it is re-plugged).
        width, height: requested capture size in pixels (same as ``mode``'s size).
        lost_timeout_s: seconds without frames before giving up.
        capture_factory: makes the capture object (``cv2.VideoCapture`` by default); tests pass
            a fake device with ``read()``, ``isOpened()`` and ``release()``.
        mode: size, frame rate and pixel format to ask for. The mode the driver granted is in
            ``granted``; another frame rate or format is a warning, another **size** is a
            :class:`SourceError` (a binned or cropped mode changes the microns per pixel).
        controls: exposure and white-balance locks to ask for.
        description: how messages name the camera (default ``camera <device>``).
        mode_in_capture: the capture factory already built the mode in (a GStreamer pipeline,
            Picamera2): nothing is set after opening, only the granted mode is read back.
        reduce_mjpeg: 2, 4 or 8 to decode an MJPG camera's frames at that fraction of their size
            (see :mod:`idc_edge.sources.mjpeg`); ``decode_factor`` is then what frames were
            reduced by (1 when the camera does not send MJPG).
    """

    live = True

    def __init__(self, device: Union[int, str] = 0, width: Optional[int] = None, height: Optional[int] = None,
                 lost_timeout_s: float = 10.0, capture_factory: Optional[Callable] = None,
                 mode: Optional[CameraMode] = None, controls: CameraControls = CameraControls(),
                 description: Optional[str] = None, mode_in_capture: bool = False, reduce_mjpeg: int = 1):
        if isinstance(device, str):
            opencv_text(device, "camera")  # OpenCV crashes on a device name that is not UTF-8
        super().__init__(description or f"camera {_shown(device)}")
        lost_timeout_s = validate.positive_number("lost_timeout_s", lost_timeout_s, "seconds",
                                                  maximum=validate.MAX_WAIT_S)
        self.device = device
        if mode is None:
            mode = CameraMode(width, height) if (width and height) else CameraMode()
        elif width or height:
            raise OptionError("give the camera size either as width/height or in the mode, not both")
        self.mode = mode
        self.controls = controls
        self._mode_in_capture = mode_in_capture
        self.size = (mode.width, mode.height)
        self.granted = CameraMode()
        self.refused: list[str] = []
        self._reduce = int(reduce_mjpeg)
        self._decoder: Optional[ReducedMjpeg] = None
        self.lost_timeout_s = float(lost_timeout_s)
        self._factory = capture_factory or cv2.VideoCapture
        self.dropped = 0
        self.reconnects = 0
        self.losses = 0
        self._cond = threading.Condition()
        self._latest: Optional[tuple[np.ndarray, float, list]] = None  # frame, time, libjpeg's lines
        self._error: Optional[Exception] = None
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        # a regular video file opened as a camera "drops out" at its end and is re-opened at its start:
        # the first frame of each opening is compared with the first one's to say so once
        self._replays_file = _is_regular_file(device)
        self._one_picture_run = 0  # openings in a row that gave one frame each (a stream's snapshot address)
        self.one_picture = False  # said: the stream sends one picture per connection
        self._first_frame: Optional[bytes] = None
        self._size_seen: Optional[tuple[int, int]] = None  # the last frame's (width, height)
        self._size_said = False  # a change of frame size mid-run was said
        self.replayed = False
        self.had_frame = False  # the camera gave a frame since it was opened (else a wait is for its first)
        self._open_error: Optional[Exception] = None  # what the first open raised, for the message
        self._cap = self._open(first=True)
        if self._cap is None:
            if isinstance(device, str) and "://" in device:
                from .network import why_no_stream

                raise SourceError(f"no camera at {_shown(device)!r}: {why_no_stream(device, self.lost_timeout_s)}",
                                  options=["lost_timeout_s"])
            not_a_camera = _not_a_camera(device, self.lost_timeout_s) if isinstance(device, str) else None
            if not_a_camera:
                raise SourceError(f"no camera at {_shown(device)!r}: {not_a_camera}", options=["source="])
            hint = "check the cable and that no other program uses it" + (
                "; list cameras with `idc-edge cameras`" if isinstance(device, int) else "")
            said = ""
            if self._open_error is not None:
                from .picamera import _said

                said = f" (opening it raised {_said(self._open_error)})"
            where = repr(_shown(device))
            if self.description != f"camera {_shown(device)}":  # picam:0 is no /dev/video0
                where += f" ({self.description})"
            raise SourceError(f"no camera at {where}{said}: {hint}, or pass another camera")
        self._check_granted()

    def _check_granted(self) -> None:
        """Read back the mode the driver granted; another size is an error, another rate or format a warning."""
        self.granted = granted_mode(self._cap)
        changed = self.mode.differences(self.granted)
        if self.granted.size is not None and self.mode.size is not None and self.granted.size != self.mode.size:
            self._cap.release()
            self._cap = None
            raise SourceError(
                f"{self.description} refused {self.mode.width}x{self.mode.height}: it gave "
                f"{self.granted.width}x{self.granted.height} ({self.granted.describe()}); another size would change the "
                "microns per pixel: ask for a size it offers (list_v4l2() or `idc-edge cameras` lists them) or leave "
                "the size to the driver (a CameraMode without width and height)")
        self._check_timeout_covers_frames()
        if changed:
            log.warning("%s: asked for %s, the driver gave %s", self.description, self.mode.describe(), ", ".join(changed))
        elif self.refused:
            log.warning("%s: the driver did not take %s", self.description, ", ".join(self.refused))
        if self._reduce > 1 and self.granted.fourcc == "MJPG" and not self._mode_in_capture:
            self._decoder = ReducedMjpeg(self._reduce)
            self._raw_jpeg(self._cap)
        elif self._is_stream():
            # a Motion-JPEG stream's frames are decoded here, each at its own size: OpenCV's decoder
            # stretched every frame to the first one's, so a camera switched to another resolution
            # mid-stream (an IP camera's web page, a phone app) was read at a wrong scale, silently
            self._decoder = ReducedMjpeg(1)
            self._raw_jpeg(self._cap)

    def _check_timeout_covers_frames(self) -> None:
        """Refuse a ``lost_timeout_s`` (seconds) shorter than :data:`TIMEOUT_FRAME_INTERVALS` of the frame
        intervals the camera reports (``1 / fps`` seconds): every wait for its next frame would end the run as
        a lost camera, told to check its cable. A camera that reports no rate, and a video file opened as a
        camera (read as fast as it decodes, not at its rate), are not checked."""
        fps = self.granted.fps
        if not fps or self._replays_file:
            return
        needed_s = timeout_for_frames(fps)
        if self.lost_timeout_s >= needed_s:
            return
        self._cap.release()
        self._cap = None
        raise OptionError(
            f"lost_timeout_s {self.lost_timeout_s:g} s is shorter than {TIMEOUT_FRAME_INTERVALS:g} frame intervals of "
            f"{self._named()}, which reports {fps:g} fps (a frame every {1.0 / fps:.3g} s): each wait for its next "
            f"frame would end the run as a lost camera; set lost_timeout_s to {needed_s:g} s or more, or ask the "
            "camera for a higher frame rate", option="lost_timeout_s")

    @property
    def decode_factor(self) -> int:
        """What frames are reduced by (1, 2, 4 or 8): their µm/px is the camera's times this."""
        return self._decoder.factor if self._decoder is not None else 1

    def _raw_jpeg(self, cap) -> None:
        """Ask the capture for the camera's JPEG bytes instead of decoded frames: V4L2's backend by
        ``CAP_PROP_CONVERT_RGB``, a Motion-JPEG stream's (FFmpeg) by ``CAP_PROP_FORMAT`` -1 (its packets);
        a stream that is not Motion JPEG (H.264) is left to OpenCV's decoder."""
        try:
            if self._is_stream():
                if granted_mode(cap).fourcc == "MJPG":
                    cap.set(cv2.CAP_PROP_FORMAT, -1)
            else:
                cap.set(cv2.CAP_PROP_CONVERT_RGB, 0)
        except Exception:  # a backend without the property decodes itself; ReducedMjpeg shrinks then
            pass

    @property
    def fps(self) -> float:
        """The frame rate the driver granted (0 when it does not say)."""
        return float(self.granted.fps or 0.0)

    @property
    def mode_json(self) -> dict:
        """Asked and granted mode, for the results file's session header."""
        return {"asked": self.mode.to_dict(), "granted": self.granted.to_dict()}

    def _make_capture(self):
        if self._factory is cv2.VideoCapture and isinstance(self.device, str):
            # network streams: FFmpeg's own deadlines, so a stalled server cannot block a read for ever
            ms = int(min(self.lost_timeout_s, 3600.0) * 1000)
            return cv2.VideoCapture(self.device, cv2.CAP_ANY,
                                    [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms])
        return self._factory(self.device)

    def _open(self, first: bool = False):
        """The opened capture, or None; gives up after ``lost_timeout_s`` (a stalled network camera
        can block inside the driver's open for minutes) and on :meth:`close` or Ctrl-C. On the
        ``first`` open our own typed errors (Picamera2 or GStreamer missing) are raised, not hidden."""
        try:
            cap = call_with_deadline(self._make_capture, self.lost_timeout_s + OPEN_GRACE_S, self._stop,
                                     on_late=lambda late: late is not None and late.release())
            if cap is None or not cap.isOpened():
                if cap is not None:
                    cap.release()
                return None
        except TimeoutError:
            log.debug("camera %r: open did not return within %g s", self.device, self.lost_timeout_s)
            return None
        except SourceError:
            if first:
                raise
            return None
        except Exception as e:  # a driver error while the device comes and goes is one more failed open
            log.debug("camera %r: open raised %s", self.device, e)
            if first:  # said in the error: "no camera" alone hid what the driver reported
                self._open_error = e
            return None
        if not self._mode_in_capture and not (self.mode.is_default() and self.controls.is_default()):
            self.refused = apply_mode(cap, self.mode, self.controls)
        if self._decoder is not None:  # re-opened after a drop-out: raw bytes again
            self._raw_jpeg(cap)
        return cap

    def _read_once(self, cap) -> tuple[bool, object, list]:
        """(ok, frame, libjpeg's lines about it). A Motion-JPEG camera whose frames OpenCV decodes
        itself (full size) is read as grab(), then retrieve() — OpenCV's read() is the two — with
        libjpeg's lines taken off the terminal for the decode only, not while grab() waits for the
        camera (:mod:`idc_edge.jpegnotes`)."""
        if cap is None:
            return False, None, []
        try:
            if self.granted.fourcc != "MJPG" or self._decoder is not None:
                ok, image = cap.read()
                return ok, image, []
            if hasattr(cap, "grab") and hasattr(cap, "retrieve"):
                if not cap.grab():
                    return False, None, []
                with jpeg_warnings() as notes:
                    ok, image = cap.retrieve()
            else:
                with jpeg_warnings() as notes:
                    ok, image = cap.read()
            return ok, image, notes
        except SourceError:  # the capture said what is wrong with its frames: no reconnection mends that
            raise
        except Exception as e:  # e.g. cv2.error from a device that vanished mid-read
            log.debug("camera %r: read raised %s", self.device, e)
            return False, None, []

    def _reader(self) -> None:
        try:
            self._read_loop()
        except Exception as e:  # never leave the consumer waiting on a dead thread
            said = str(e) if isinstance(e, SourceError) else f"{type(e).__name__}: {e}"
            self._fail(e if isinstance(e, CameraLostError) else CameraLostError(f"camera {self.device!r} stopped: {said}"))

    def _note_opening_frame(self, image: np.ndarray) -> None:
        """The first frame after an opening: a regular file whose re-opening starts on its first
        frame again is a video replayed from its start, said once (it looked like a live camera
        that keeps dropping out, and replayed for ever)."""
        if not self._replays_file or self.replayed or not isinstance(image, np.ndarray):
            return
        digest = _frame_digest(image)
        if self._first_frame is None:
            self._first_frame = digest
        elif digest == self._first_frame:
            self.replayed = True
            log.warning("camera %r is a video file, not a camera: at its end it is opened again and replayed "
                        "from its start until stopped; read it as a video source to read it once", self.device)

    def _one_picture_opening(self, frames: int) -> bool:
        """Whether the opening that just ended, having given ``frames`` frames, is one more of a stream
        that sends one picture per connection (a camera's snapshot address, ``image/jpeg``): said once
        after :data:`ONE_PICTURE_OPENINGS` such openings in a row; its drop-outs are then not warned one
        by one (two warnings a frame, thousands an hour, buried every other warning)."""
        if not self._is_stream() or frames != 1:
            self._one_picture_run = 0
            return False
        self._one_picture_run += 1
        if self._one_picture_run == ONE_PICTURE_OPENINGS and not self.one_picture:
            self.one_picture = True
            log.warning("%s sends one picture per connection (a snapshot address?), not a video stream: it is "
                        "connected to again for every frame, at a few frames a second; give the camera's stream "
                        "address for live video (%s)", self._named(), STREAM_PATHS)
        return self.one_picture

    def _read_loop(self) -> None:
        cap, backoff, last_ok, lost_at = self._cap, 0.1, time.monotonic(), None
        opening = True  # the next good frame is the first of this opening
        frames, quiet = 0, False  # frames of this opening; this outage is a one-picture stream's, not warned
        reopened = 0  # openings during this outage that gave no frame either
        while not self._stop.is_set():
            ok, image, notes = self._read_once(cap)
            if ok and image is not None and getattr(image, "size", 0):
                self.had_frame = True
                if opening:
                    self._note_opening_frame(image)
                    opening, frames = False, 0
                frames += 1
                last_ok, backoff = time.monotonic(), 0.1
                if lost_at is not None:
                    if not quiet:
                        log.warning("%s: frames again after %.1f s", self._named(), last_ok - lost_at)
                    lost_at = None
                with self._cond:
                    if self._latest is not None:
                        self.dropped += 1
                    self._latest = (image, steady_time(), notes)  # the clock being set moves no frame
                    self._cond.notify()
                continue
            if lost_at is None:
                lost_at, reopened = time.monotonic(), 0
                self.losses += 1
                quiet = self._one_picture_opening(0 if opening else frames)
                if not quiet:
                    log.warning("%s: no frame (%s); re-opening for up to %g s", self._named(), self._why_no_frame(),
                                self.lost_timeout_s)
            if time.monotonic() - last_ok > self.lost_timeout_s:
                self._fail(CameraLostError(self._no_frame_message(reopened)))
                break
            if cap is not None:
                cap.release()
            self._cap = cap = None
            self._stop.wait(backoff)
            backoff = min(backoff * 2, 2.0)
            if self._stop.is_set():
                break
            cap = self._open()
            self._cap = cap
            if cap is not None:
                opening = True
                reopened += 1
                self.reconnects += 1
                log.debug("camera %r: re-opened", self.device)
        if cap is not None:
            cap.release()

    def _is_stream(self) -> bool:
        return isinstance(self.device, str) and "://" in self.device

    def _named(self) -> str:
        """How messages about frames name the camera: ``camera 0`` or ``camera '/dev/video2'`` as before; a
        stream or a Pi camera by its description (``stream http://...``, ``Raspberry Pi camera picam:0``),
        never as a device number that reads as ``/dev/video0``."""
        if self._is_stream() or self.description != f"camera {_shown(self.device)}":
            return self.description
        return f"camera {_shown(self.device)!r}"

    def _why_no_frame(self) -> str:
        """The drop-out warning's guess at why a read gave no frame: before the first frame the camera is
        not lost but has not sent one yet (slower than the timeout, still starting)."""
        if not self.had_frame:
            return "none yet since it was opened"
        return "the stream stopped or its server went away" if self._is_stream() else "unplugged or failing?"

    def _no_frame_message(self, reopened: int) -> str:
        """The error that ends a camera that gave no frame for ``lost_timeout_s``: lost mid-run (frames came,
        then none), or no first frame since it was opened (never lost: too slow for the timeout, or not
        sending), each with what to check; ``reopened`` as for :meth:`_lost_advice`."""
        if self.had_frame:
            return (f"{self._named()} gave no frame for {self.lost_timeout_s:g} s: {self._lost_advice(reopened)}, "
                    "then restart (or raise lost_timeout_s)")
        return (f"{self._named()} was opened but gave no first frame within {self.lost_timeout_s:g} s (it was not "
                "lost mid-run: no frame came at all): a camera slower than that to send a frame (a long exposure, "
                "a low frame rate, a slow start, a trigger it waits for) needs a longer lost_timeout_s; if it should "
                f"have sent one, {self._first_frame_advice(reopened)}")

    def _first_frame_advice(self, reopened: int) -> str:
        """What to check when a camera that opened never sent a frame: a device opened, so it is plugged in;
        a stream's server answered."""
        if self._is_stream():
            return self._lost_advice(reopened) if reopened else (
                "check that the address is the camera's video stream and that the camera is streaming")
        return ("check that no other program is using it and that it shows a picture in another viewer "
                "(`idc-edge cameras` lists its modes)")

    def _lost_advice(self, reopened: int = 0) -> str:
        """What to check when the camera gave nothing for ``lost_timeout_s``: a stream has no cable to check;
        a stream opened again ``reopened`` times in that time answers, but with nothing that decodes as video."""
        if self._is_stream() and reopened:
            return (f"it was opened again {reopened} time(s) in that time, so its server answers, but what it sends "
                    "does not decode as video frames (another kind of data, or frames damaged on the way): check "
                    f"that the address is the camera's video stream ({STREAM_PATHS}) and that the camera's encoder works")
        if self._is_stream():
            return ("check that the camera's machine is on and still streaming, and the network between (a stream "
                    "served to one viewer at a time, such as `rpicam-vid --listen`, must be started again)")
        return "check the cable and power"

    def _fail(self, error: Exception) -> None:
        with self._cond:
            self._error = error
            self._cond.notify_all()

    def _iter_frames(self) -> Iterator[Frame]:
        if self._thread is None:
            self._thread = threading.Thread(target=self._reader, name="idc-edge-camera", daemon=True)
            self._thread.start()
        index = 0
        usable_at, bad_run = time.monotonic(), 0  # when the last usable frame came; unusable ones since
        while True:
            waiting = WaitClock(POLL_STEP_MAX_S)  # the process stopped (Ctrl-Z, then fg) is no silent camera
            with self._cond:
                while self._latest is None and self._error is None and not self._stop.is_set() \
                        and self._thread.is_alive():
                    self._cond.wait(0.5)
                    if self._latest is None and waiting.waited() > self.lost_timeout_s + 2.0:
                        # the reader is stuck inside the driver (a read that never returns)
                        raise CameraLostError(self._stuck_message())
                if self._latest is None:
                    if self._error is not None:
                        raise self._error
                    return
                image, ts, notes = self._latest
                self._latest = None
            try:
                image = decode_or_skip(self._decoder, image, notes)  # only frames that are used are decoded
            except FrameError as e:
                image = None
                self.skipped += 1
                if bad_run == 0:  # the first of a run is said; the rest are counted (the summary gives them)
                    log.warning("%s: skipped a frame: %s", self.description, e)
            else:
                image = self._checked(image)
            if image is None:
                bad_run += 1
                if time.monotonic() - usable_at > self.lost_timeout_s:
                    check = (f"its server answers, but what it sends does not decode as video frames (another kind "
                             f"of data, or frames damaged on the way): check that the address is the camera's video "
                             f"stream ({STREAM_PATHS}) and that the camera's encoder works" if self._is_stream() else
                             "check the camera's format and cable, or choose another format (`idc-edge cameras` "
                             "lists them)")
                    raise CameraLostError(f"{self.description} sent {bad_run} frame(s) in {self.lost_timeout_s:g} s and "
                                          f"none could be used (see the warning above): {check}")
                continue
            usable_at, bad_run = time.monotonic(), 0
            self._note_size(image)
            what = damage(notes)
            self._note_damage(index, what)
            yield Frame(index, ts, image, damage=what)
            index += 1

    def _stuck_message(self) -> str:
        """The error that ends a camera whose read has neither returned a frame nor failed for ``lost_timeout_s``
        (stuck inside its driver): mid-run, or before its first frame."""
        if self.had_frame:
            return (f"{self._named()} stopped answering: no frame and no error for {self.lost_timeout_s:g} s; check "
                    "the camera or the network, or raise lost_timeout_s")
        return (f"{self._named()} was opened but its first read gave neither a frame nor an error within "
                f"{self.lost_timeout_s:g} s (it was not lost mid-run: no frame came at all): a camera slower than "
                "that to send a frame needs a longer lost_timeout_s; otherwise check the camera or the network")

    def _note_size(self, image: np.ndarray) -> None:
        """Say once when the frames change size mid-run (a stream's camera switched to another resolution
        on its web page): each frame is read at its own size, at the microns per pixel given for the
        first, which holds only for a camera that crops to the new size, not one that scales to it."""
        size = (image.shape[1], image.shape[0])
        if self._size_seen is not None and size != self._size_seen and not self._size_said:
            self._size_said = True
            log.warning("%s: the frames changed size from %dx%d to %dx%d px mid-run (its resolution changed?); each "
                        "frame is read at its own size and the same microns per pixel, right only if the camera "
                        "crops rather than scales to the new size: keep one resolution for a run, or calibrate "
                        "the scale for the new one", self._named(), *self._size_seen, *size)
        self._size_seen = size

    def _release(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        elif self._thread is None and self._cap is not None:
            self._cap.release()
        self._cap = None
