"""Frame sources: cameras, video files, images, image folders and the data set as a moving stage.

Every source yields :class:`Frame` objects with an 8-bit **BGR** image (OpenCV's order), counts
what it had to skip (an undecodable video frame, an unreadable image or patch) in ``skipped``,
logs a warning for each, and is a context manager. A file source's ``Frame.index`` is the
frame's position in the file or folder, so a skipped frame leaves a gap rather than renumbering
the rest. Use :func:`open_source` to pick the right one from a command-line argument.
"""
from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence, Union

import cv2
import numpy as np

from .dataset import PATCH_SIZE_PX, UM_PER_PX, PatchRecord, scan_dataset
from .errors import CameraLostError, DatasetError, FrameError, OptionError, SourceError
from .frames import to_bgr8

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".jp2", ".pgm", ".ppm"})


@dataclass(frozen=True)
class Frame:
    """One frame: ``index`` from 0, ``timestamp`` in seconds, ``image`` uint8 BGR ``[H, W, 3]``."""

    index: int
    timestamp: float
    image: np.ndarray


class FrameSource:
    """Base of all sources: iterate for frames; ``close()`` is safe twice."""

    #: True for live sources (cameras), where frames can be dropped to stay current.
    live = False
    #: What ``skipped`` counts, for messages ("3 unusable frame(s) skipped").
    skipped_what = "unusable frame(s)"

    def __init__(self, description: str):
        self.description = description
        self.skipped = 0

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _checked(self, image) -> Optional[np.ndarray]:
        """``image`` as BGR uint8, or None (counted in ``skipped``) when it is unusable."""
        try:
            return to_bgr8(image)
        except FrameError as e:
            self.skipped += 1
            log.warning("%s: skipped a frame: %s", self.description, e)
            return None


# -- files --------------------------------------------------------------------------------

def read_image(path: Union[str, os.PathLike]) -> np.ndarray:
    """An image file as BGR uint8 (16-bit and alpha images are converted).

    Raises:
        SourceError: the file is missing or not a readable image.
    """
    path = str(path)
    if not os.path.isfile(path):
        raise SourceError(f"image {path!r} does not exist")
    image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise SourceError(f"cannot read image {path!r}: the file is corrupt or not an image format OpenCV reads")
    try:
        return to_bgr8(image)
    except FrameError as e:
        raise SourceError(f"image {path!r}: {e}") from None


class ImageSource(FrameSource):
    """A single image file, yielded once (any size; large images are tiled like any frame)."""

    def __init__(self, path: Union[str, os.PathLike]):
        super().__init__(f"image {str(path)!r}")
        self.image = read_image(path)

    def __iter__(self) -> Iterator[Frame]:
        yield Frame(0, 0.0, self.image)


class ImageFolderSource(FrameSource):
    """The images of a folder in name order; unreadable files are skipped and counted."""

    def __init__(self, folder: Union[str, os.PathLike]):
        super().__init__(f"folder {str(folder)!r}")
        self.paths = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not self.paths:
            raise SourceError(f"folder {str(folder)!r} has no images ({', '.join(sorted(IMAGE_SUFFIXES))})")

    def __iter__(self) -> Iterator[Frame]:
        for index, path in enumerate(self.paths):
            try:
                image = read_image(path)
            except SourceError as e:
                self.skipped += 1
                log.warning("%s; skipped", e)
                continue
            yield Frame(index, float(index), image)


class VideoSource(FrameSource):
    """Every frame of a video file, in order; timestamps from the file in seconds.

    A frame the decoder cannot read (corrupt bytes, a file cut short) is skipped, counted in
    ``skipped`` and logged, and reading goes on with the next one; ``Frame.index`` stays the
    frame's position in the file. Reading stops at the end of the file, or after
    ``max_bad_frames`` failures in a row (a file cut short before its stated frame count).
    """

    def __init__(self, path: Union[str, os.PathLike], max_bad_frames: int = 25):
        super().__init__(f"video {str(path)!r}")
        self.path = str(path)
        if not os.path.isfile(self.path):
            raise SourceError(f"video {self.path!r} does not exist")
        self.max_bad_frames = max_bad_frames
        probe = cv2.VideoCapture(self.path)
        try:
            if not probe.isOpened():
                raise SourceError(f"cannot open {self.path!r} as a video: not a video file OpenCV can decode "
                                  "(for still images use .png/.jpg/.tif)")
            self.frame_count = int(probe.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
            self.fps = float(probe.get(cv2.CAP_PROP_FPS) or 0.0)
        finally:
            probe.release()

    def __iter__(self) -> Iterator[Frame]:
        cap = cv2.VideoCapture(self.path)
        try:
            bad = 0
            for index in itertools.count():
                try:
                    ok, image = cap.read()
                except cv2.error as e:  # some backends raise instead of returning False
                    ok, image = False, None
                    log.debug("%s: read raised %s", self.description, e)
                if not ok:
                    if self.frame_count and index < self.frame_count and bad < self.max_bad_frames:
                        bad += 1
                        self.skipped += 1
                        log.warning("%s: frame %d cannot be decoded; skipped", self.description, index)
                        continue
                    break
                image = self._checked(image)
                if image is None:
                    continue
                bad = 0
                ms = cap.get(cv2.CAP_PROP_POS_MSEC)
                ts = ms / 1000.0 if ms and ms > 0 else (index / self.fps if self.fps else float(index))
                yield Frame(index, ts, image)
        finally:
            cap.release()


# -- cameras ------------------------------------------------------------------------------

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
        width, height: requested capture size in pixels (the driver may choose another).
        lost_timeout_s: seconds without frames before giving up.
        capture_factory: makes the capture object (``cv2.VideoCapture`` by default); tests pass
            a fake device with ``read()``, ``isOpened()`` and ``release()``.
    """

    live = True

    def __init__(self, device: Union[int, str] = 0, width: Optional[int] = None, height: Optional[int] = None,
                 lost_timeout_s: float = 10.0, capture_factory: Optional[Callable] = None):
        super().__init__(f"camera {device}")
        if not lost_timeout_s > 0:
            raise OptionError(f"camera lost timeout must be > 0 seconds, got {lost_timeout_s!r}")
        self.device = device
        self.size = (width, height)
        self.lost_timeout_s = float(lost_timeout_s)
        self._factory = capture_factory or cv2.VideoCapture
        self.dropped = 0
        self.reconnects = 0
        self.losses = 0
        self._cond = threading.Condition()
        self._latest: Optional[tuple[np.ndarray, float]] = None
        self._error: Optional[Exception] = None
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._cap = self._open()
        if self._cap is None:
            hint = "check the cable and that no other program uses it" + (
                "; list devices with `ls /dev/video*`" if isinstance(device, int) else "")
            raise SourceError(f"no camera at {device!r}: {hint}, or pass another --camera index")

    def _open(self):
        try:
            cap = self._factory(self.device)
            if cap is None or not cap.isOpened():
                if cap is not None:
                    cap.release()
                return None
        except Exception as e:  # a driver error while the device comes and goes is one more failed open
            log.debug("camera %r: open raised %s", self.device, e)
            return None
        w, h = self.size
        if w:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, w)
        if h:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, h)
        return cap

    def _read_once(self, cap) -> tuple[bool, object]:
        if cap is None:
            return False, None
        try:
            return cap.read()
        except Exception as e:  # e.g. cv2.error from a device that vanished mid-read
            log.debug("camera %r: read raised %s", self.device, e)
            return False, None

    def _reader(self) -> None:
        try:
            self._read_loop()
        except Exception as e:  # never leave the consumer waiting on a dead thread
            self._fail(e if isinstance(e, CameraLostError)
                       else CameraLostError(f"camera {self.device!r} stopped: {type(e).__name__}: {e}"))

    def _read_loop(self) -> None:
        cap, backoff, last_ok, lost_at = self._cap, 0.1, time.monotonic(), None
        while not self._stop.is_set():
            ok, image = self._read_once(cap)
            if ok and image is not None and getattr(image, "size", 0):
                last_ok, backoff = time.monotonic(), 0.1
                if lost_at is not None:
                    log.warning("camera %r: frames again after %.1f s", self.device, last_ok - lost_at)
                    lost_at = None
                with self._cond:
                    if self._latest is not None:
                        self.dropped += 1
                    self._latest = (image, time.time())
                    self._cond.notify()
                continue
            if lost_at is None:
                lost_at = time.monotonic()
                self.losses += 1
                log.warning("camera %r: no frame (unplugged or failing?); re-opening for up to %g s",
                            self.device, self.lost_timeout_s)
            if time.monotonic() - last_ok > self.lost_timeout_s:
                self._fail(CameraLostError(
                    f"camera {self.device!r} gave no frame for {self.lost_timeout_s:g} s: check the cable and "
                    "power, then restart (or raise --camera-timeout)"))
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
                self.reconnects += 1
                log.debug("camera %r: re-opened", self.device)
        if cap is not None:
            cap.release()

    def _fail(self, error: Exception) -> None:
        with self._cond:
            self._error = error
            self._cond.notify_all()

    def __iter__(self) -> Iterator[Frame]:
        if self._thread is None:
            self._thread = threading.Thread(target=self._reader, name="idc-edge-camera", daemon=True)
            self._thread.start()
        index = 0
        while True:
            with self._cond:
                while self._latest is None and self._error is None and not self._stop.is_set() \
                        and self._thread.is_alive():
                    self._cond.wait(0.5)
                if self._latest is None:
                    if self._error is not None:
                        raise self._error
                    return
                image, ts = self._latest
                self._latest = None
            image = self._checked(image)
            if image is None:
                continue
            yield Frame(index, ts, image)
            index += 1

    def close(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        elif self._thread is None and self._cap is not None:
            self._cap.release()
        self._cap = None


# -- the data set as a moving stage ---------------------------------------------------------

def build_mosaic(records: Sequence[PatchRecord], patch: int = PATCH_SIZE_PX) -> tuple[np.ndarray, np.ndarray, int]:
    """Rebuild one patient's slide from its patches.

    Returns:
        (BGR uint8 mosaic with white where no patch is, int8 label grid per ``patch`` cell with -1
        where no patch is, number of unreadable patches skipped). The mosaic's origin is the
        smallest x/y of the patches; one pixel ≈ 4 µm as in the data set.
    """
    xs = np.array([r.x for r in records])
    ys = np.array([r.y for r in records])
    x0, y0 = xs.min(), ys.min()
    cols = (xs.max() - x0) // patch + 1
    rows = (ys.max() - y0) // patch + 1
    mosaic = np.full((rows * patch, cols * patch, 3), 255, np.uint8)
    labels = np.full((rows, cols), -1, np.int8)
    bad = 0
    for r in records:
        img = cv2.imread(r.path, cv2.IMREAD_COLOR)
        if img is None:
            bad += 1
            log.warning("cannot read patch %s (corrupt or not an image); skipped, its cell stays blank", r.path)
            continue
        top, left = r.y - y0, r.x - x0
        h, w = min(img.shape[0], patch), min(img.shape[1], patch)
        mosaic[top:top + h, left:left + w] = img[:h, :w]
        labels[(r.y - y0) // patch, (r.x - x0) // patch] = r.label
    return mosaic, labels, bad


def sweep_positions(mosaic_hw: tuple[int, int], window_hw: tuple[int, int], step_px: int) -> list[tuple[int, int]]:
    """Top-left (y, x) of a serpentine sweep of a window over a mosaic, like a moving stage.

    Rows are ``window height / 2`` apart; the window moves ``step_px`` along each row and
    reverses direction on the next one. Every position lies inside the mosaic (or at 0 when
    the mosaic is smaller than the window).
    """
    (mh, mw), (wh, ww) = mosaic_hw, window_hw
    def ticks(length, win, step):
        if length <= win:
            return [0]
        t = list(range(0, length - win + 1, step))
        return t if t[-1] == length - win else t + [length - win]
    out = []
    for i, y in enumerate(ticks(mh, wh, max(1, wh // 2))):
        xs = ticks(mw, ww, step_px)
        out.extend((y, x) for x in (xs if i % 2 == 0 else xs[::-1]))
    return out


class MosaicSource(FrameSource):
    """Patients of the data set rebuilt as slides and swept by a camera-sized window.

    Lets anyone with the public data set watch the whole pipeline without a microscope: each
    patient's patches are put back at their slide coordinates (white where none is) and a
    ``width × height`` window moves across in a serpentine, ``step`` frame pixels per frame.

    Args:
        folder: the data set's root (every patient in turn, or ``patients``) or one patient's folder.
        patients: patient ids to show, in this order.
        width, height: frame size in pixels.
        um_per_px: microns per pixel of the emitted frames; 4.0 shows the slide at the data set's
            own scale, smaller values magnify (as a higher objective would).
        step: pixels the window moves per frame, in frame pixels (default: width / 8).
    """

    skipped_what = "unreadable patch image(s)"

    def __init__(self, folder: Union[str, os.PathLike], patients: Optional[Sequence[str]] = None,
                 width: int = 640, height: int = 480, um_per_px: float = UM_PER_PX, step: Optional[int] = None):
        super().__init__(f"data set {str(folder)!r}")
        if width < 1 or height < 1:
            raise OptionError(f"mosaic window must be at least 1×1 pixels, got {width}×{height}")
        if not um_per_px > 0:
            raise OptionError(f"um_per_px must be > 0, got {um_per_px!r}")
        try:
            records = scan_dataset(folder, patients)
        except DatasetError as e:
            raise SourceError(str(e)) from None
        by_patient: dict[str, list[PatchRecord]] = {}
        for r in records:
            by_patient.setdefault(r.patient, []).append(r)
        order = list(patients) if patients else sorted(by_patient)
        missing = [p for p in order if p not in by_patient]
        if missing:
            raise SourceError(f"patient(s) {', '.join(missing)} not found in {str(folder)!r}")
        self.patients = {p: by_patient[p] for p in order}
        self.window = (int(height), int(width))
        self.zoom = UM_PER_PX / float(um_per_px)  # frame pixels per mosaic pixel
        self.um_per_px = float(um_per_px)
        self.step = int(step or max(1, width // 8))

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        wh, ww = self.window
        # window size in mosaic pixels
        mh_win, mw_win = max(1, int(round(wh / self.zoom))), max(1, int(round(ww / self.zoom)))
        step = max(1, int(round(self.step / self.zoom)))
        for patient, records in self.patients.items():
            mosaic, _, bad = build_mosaic(records)
            self.skipped += bad
            canvas = mosaic
            if canvas.shape[0] < mh_win or canvas.shape[1] < mw_win:
                canvas = np.full((max(canvas.shape[0], mh_win), max(canvas.shape[1], mw_win), 3), 255, np.uint8)
                canvas[: mosaic.shape[0], : mosaic.shape[1]] = mosaic
            for y, x in sweep_positions(canvas.shape[:2], (mh_win, mw_win), step):
                crop = canvas[y:y + mh_win, x:x + mw_win]
                if crop.shape[:2] != (wh, ww):
                    crop = cv2.resize(crop, (ww, wh), interpolation=cv2.INTER_LINEAR if self.zoom > 1 else cv2.INTER_AREA)
                else:
                    crop = crop.copy()
                yield Frame(index, index / 30.0, crop)
                index += 1


# -- choosing a source ----------------------------------------------------------------------

def is_dataset_folder(path: Union[str, os.PathLike]) -> bool:
    """True for the data set's root (``<patient>/<0|1>/``) or one patient's folder (``<0|1>/``)."""
    p = Path(path)
    if (p / "0").is_dir() or (p / "1").is_dir():
        return True
    try:
        return any((c / "0").is_dir() or (c / "1").is_dir() for c in p.iterdir() if c.is_dir())
    except OSError:
        return False


def open_source(source: Union[int, str, os.PathLike], *, um_per_px: Optional[float] = None,
                patients: Optional[Sequence[str]] = None, camera_timeout_s: float = 10.0) -> FrameSource:
    """The right source for a camera index, a video, an image, an image folder or a data-set folder.

    Args:
        source: camera index (int or digits), or a path.
        um_per_px: for a data-set folder, the scale of the emitted frames (default 4.0).
        patients: for a data-set folder, which patients to show.

    Raises:
        SourceError: the path does not exist or cannot be read.
    """
    if isinstance(source, int) or (isinstance(source, str) and source.isdigit()):
        return CameraSource(int(source), lost_timeout_s=camera_timeout_s)
    path = Path(source)
    if not path.exists():
        raise SourceError(f"source {str(path)!r} does not exist: pass a video, an image, a folder of images, "
                          "a data-set folder, or --camera N")
    if path.is_dir():
        if is_dataset_folder(path):
            return MosaicSource(path, patients=patients, um_per_px=um_per_px or UM_PER_PX)
        return ImageFolderSource(path)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return ImageSource(path)
    return VideoSource(path)
