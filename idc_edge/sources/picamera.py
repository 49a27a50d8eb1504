"""Raspberry Pi CSI cameras (HQ camera, Camera Module 3) through Picamera2, imported only when used.

On Raspberry Pi OS Bookworm the CSI cameras run on libcamera, which OpenCV's V4L2 backend does
not see; Picamera2 is the standard way. :class:`PicameraCapture` wraps one Picamera2 camera in the
small capture interface the camera source reads (``isOpened``, ``read``, ``get``, ``set``,
``release``), so reconnecting and "newest frame wins" work as for any camera.

Picamera2 comes from Raspberry Pi OS's packages, not pip: ``sudo apt install python3-picamera2``,
and a virtual environment made with ``--system-site-packages`` to see it.
"""
from __future__ import annotations

import importlib
from typing import Optional

import cv2
import numpy as np

from ..errors import SourceError
from .modes import CameraControls, CameraMode

INSTALL_HINT = ("Picamera2 is not installed: on Raspberry Pi OS run `sudo apt install python3-picamera2` and make "
                "the virtual environment with `python3 -m venv --system-site-packages` so it can see it")


#: why a Picamera2 camera that exists cannot be opened, most often
IN_USE = ("most often another program holds it (rpicam-hello, rpicam-vid, another idc-edge): close that program, "
          "or reboot if one crashed while holding it")


def _said(error: BaseException) -> str:
    """What Picamera2 or libcamera said, short, for a message."""
    from ..fileio import printable

    text = printable(" ".join(str(error).split()))
    text = text if len(text) <= 160 else text[:159] + "…"
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def import_picamera2():
    """The ``picamera2`` module, or :class:`SourceError` with the install command."""
    try:
        return importlib.import_module("picamera2")
    except ImportError:
        raise SourceError(INSTALL_HINT) from None


#: Picamera2's main-stream formats as ``capture_array`` lays them out (its manual: "RGB888 - 24 bits per
#: pixel, ordered [B, G, R]", "XBGR8888 - [R, G, B, 255]", ...) and the OpenCV conversion to BGR
#: (None: already BGR). The YUV formats come as one 8-bit plane of 1.5 × height rows.
TO_BGR = {
    "RGB888": None,
    "BGR888": cv2.COLOR_RGB2BGR,
    "XRGB8888": cv2.COLOR_BGRA2BGR,
    "XBGR8888": cv2.COLOR_RGBA2BGR,
    "YUV420": cv2.COLOR_YUV2BGR_I420,
    "YVU420": cv2.COLOR_YUV2BGR_YV12,
}


def picamera_frame_to_bgr(frame: np.ndarray, fmt: str, size: tuple[int, int]) -> np.ndarray:
    """One ``capture_array("main")`` array in Picamera2 format ``fmt`` as a BGR uint8 frame of ``size``
    (width, height in pixels); rows padded to the buffer's stride are cut back to the width.

    Raises:
        SourceError: the array's shape is not what that format and size give.
    """
    width, height = size
    yuv = fmt in ("YUV420", "YVU420")
    channels = 4 if fmt.startswith("X") else 3
    expected = (height * 3 // 2,) if yuv else (height,)
    if (frame.dtype != np.uint8 or frame.shape[:1] != expected or frame.shape[1] < width
            or (not yuv and frame.shape[2:] != (channels,)) or (yuv and frame.ndim != 2)):
        raise SourceError(f"the Raspberry Pi camera gave a {frame.dtype} array of shape {frame.shape} for "
                          f"{fmt} at {width}x{height}: update Picamera2 (sudo apt full-upgrade) or ask a "
                          "size the sensor offers")
    code = TO_BGR[fmt]
    bgr = frame if code is None else cv2.cvtColor(np.ascontiguousarray(frame), code)
    return bgr[:, :width] if bgr.shape[1] != width else bgr


def picamera_controls(mode: CameraMode, controls: CameraControls) -> dict:
    """Picamera2 controls for a mode and locks (its documented control names)."""
    out: dict = {}
    if mode.fps is not None:
        out["FrameRate"] = float(mode.fps)
    if controls.lock_exposure:
        out["AeEnable"] = False
        if controls.exposure_us is not None:
            out["ExposureTime"] = int(round(controls.exposure_us))
    if controls.gain is not None:
        out["AnalogueGain"] = float(controls.gain)
    if controls.lock_white_balance:
        out["AwbEnable"] = False
    if controls.colour_gains_rb is not None:
        out["AwbEnable"] = False
        out["ColourGains"] = (float(controls.colour_gains_rb[0]), float(controls.colour_gains_rb[1]))
    return out


class _Refused(Exception):
    """A camera that started but cannot be read (closed again, then raised as SourceError)."""


class PicameraCapture:
    """One Picamera2 camera as a capture: ``read()`` gives ``(True, BGR uint8 frame)``.

    ``RGB888`` is asked (Picamera2 stores it blue, green, red per pixel, OpenCV's BGR order); the format
    the camera was configured with is read back and each frame converted from it (:data:`TO_BGR`), so a
    Picamera2 that grants another layout gives BGR frames all the same, never swapped colours.

    Args:
        camera_num: which camera (``Picamera2(camera_num)``; 0 is the first).
        mode: size and frame rate asked (size default: the sensor's 1920x1080 video mode).
        controls: exposure and white-balance locks.
        module: the ``picamera2`` module (imported here when None).
    """

    def __init__(self, camera_num: int = 0, mode: CameraMode = CameraMode(),
                 controls: CameraControls = CameraControls(), module=None):
        picamera2 = module or import_picamera2()
        cameras = picamera2.Picamera2.global_camera_info()
        if camera_num >= len(cameras):
            raise SourceError(f"no Raspberry Pi camera picam:{camera_num}: {len(cameras)} camera(s) found "
                              "(check the ribbon cable and `rpicam-hello --list-cameras`)")
        where = f"Raspberry Pi camera picam:{camera_num}"
        try:
            self._cam = picamera2.Picamera2(camera_num)
        except Exception as e:  # libcamera's "Failed to acquire camera: Device or resource busy", ...
            raise SourceError(f"{where} cannot be opened ({_said(e)}): {IN_USE}") from None
        # from here on the camera is acquired: whatever fails closes it again, or it stays held by this
        # process and every later opening fails "busy" (Picamera2 frees it on close(), not when dropped)
        try:
            size = mode.size or (1920, 1080)
            config = self._cam.create_video_configuration(main={"size": tuple(size), "format": "RGB888"},
                                                          controls=picamera_controls(mode, controls))
            self._cam.configure(config)
            self._cam.start()
            main = self._cam.camera_configuration()["main"]
            self.size = tuple(main["size"])
            self.fourcc = str(main.get("format", "RGB888"))
            if self.fourcc not in TO_BGR:
                raise _Refused(f"{where} was configured with pixel format {self.fourcc}, which idc-edge does not "
                               f"read (it reads {', '.join(TO_BGR)}): update Picamera2 (sudo apt full-upgrade)")
        except _Refused as e:
            self._close_quietly()
            raise SourceError(str(e)) from None
        except Exception as e:
            self._close_quietly()
            raise SourceError(f"{where} opened but could not be started ({_said(e)}): check the ribbon cable and "
                              "that the size and controls asked are ones the sensor offers (list_picameras() or "
                              "`idc-edge cameras` lists its modes)") from None
        except BaseException:  # Ctrl-C while it starts: let the camera go too
            self._close_quietly()
            raise
        self._open = True
        self.fps = float(mode.fps) if mode.fps else 0.0

    def isOpened(self) -> bool:
        return self._open

    def read(self) -> tuple[bool, Optional[np.ndarray]]:
        if not self._open:
            return False, None
        frame = self._cam.capture_array("main")
        if frame is None:
            return False, None
        return True, picamera_frame_to_bgr(np.asarray(frame), self.fourcc, self.size)

    def get(self, prop: int) -> float:
        import cv2

        if prop == cv2.CAP_PROP_FRAME_WIDTH:
            return float(self.size[0])
        if prop == cv2.CAP_PROP_FRAME_HEIGHT:
            return float(self.size[1])
        if prop == cv2.CAP_PROP_FPS:
            return self.fps
        return 0.0

    def set(self, prop: int, value: float) -> bool:
        return False  # mode and controls are set when the camera is configured

    def _close_quietly(self) -> None:
        """Stop and close the camera, whatever either raises (the camera is let go either way)."""
        for step in (self._cam.stop, self._cam.close):
            try:
                step()
            except Exception:
                pass

    def release(self) -> None:
        if self._open:
            self._open = False
            self._close_quietly()
