"""A camera mode (frame size, frame rate, pixel format) and controls, as asked for and as granted.

Parsed once where options enter (``--size 1920x1080 --fps 30 --fourcc MJPG``), stored in
profiles, requested from V4L2, Picamera2 or GStreamer, and compared with what the driver
granted so a different mode is said aloud instead of silently changing µm/px or speed.
"""
from __future__ import annotations

import numbers
import re
from dataclasses import dataclass
from typing import Optional, Tuple

from .. import validate
from ..errors import OptionError

#: The largest frame side a camera may be asked for, px: wider than any camera sensor (a 150 MP
#: sensor is 14,204 px wide); past it a size is a typo, and drivers overflow or hang on it.
MAX_SIDE_PX = 32768

#: Frame rates a camera may be asked for, frames per second: one frame per 100 s (as slow as a
#: video file's rate may be, :data:`~idc_edge.sources.video.MIN_FILE_FPS`) to 1000 (the fastest
#: rate :func:`granted_mode` believes a driver reports).
FPS_RANGE = (0.01, 1000.0)

#: Exposure times, µs: from 1 µs (Picamera2 takes whole µs) to 100 s, one frame at the slowest rate.
EXPOSURE_US_RANGE = (1.0, 1e8)

#: Analogue gain: above 0 (a V4L2 gain of 0 means "off" only to some drivers) and at most 65535, the
#: largest a 16-bit gain control holds (Picamera2's AnalogueGain goes to about 16).
GAIN_RANGE = (1e-3, 65535.0)

#: White-balance temperatures, kelvin: candle light (1000 K) to blue sky (15000 K); V4L2 drivers offer 2800-6500.
WB_TEMPERATURE_K_RANGE = (1000.0, 15000.0)

#: The camera's own red and blue gains (Picamera2 ``ColourGains`` takes 0 to 32).
COLOUR_GAIN_RANGE = (1e-3, 32.0)

#: Pixel formats a microscope camera commonly offers (V4L2 FourCC codes).
KNOWN_FOURCCS = ("MJPG", "YUYV", "YUY2", "UYVY", "NV12", "H264", "GREY", "RGB3", "BGR3", "RG10", "BA81")


def parse_size(text: str) -> Tuple[int, int]:
    """``"1920x1080"`` (also ``×`` or ``*``) → (width, height) in pixels.

    Raises:
        OptionError: not two whole numbers from 1 to :data:`MAX_SIDE_PX`.
    """
    m = re.fullmatch(r"\s*(\d+)\s*[xX×*]\s*(\d+)\s*", str(text))
    if not m or int(m.group(1)) < 1 or int(m.group(2)) < 1:
        raise OptionError(f"a frame size is WIDTHxHEIGHT in pixels, e.g. 1920x1080; got {str(text)!r:.60}")
    width, height = int(m.group(1)), int(m.group(2))
    if max(width, height) > MAX_SIDE_PX:
        raise OptionError(f"a frame size is at most {MAX_SIDE_PX}x{MAX_SIDE_PX} px (wider than any camera sensor); "
                          f"got {str(text)!r:.60}")
    return width, height


def parse_fourcc(text: str) -> str:
    """A four-character pixel format code, upper-cased (``mjpg`` → ``MJPG``).

    Raises:
        OptionError: not four printable characters.
    """
    code = str(text).strip()
    if len(code) != 4 or not code.isprintable():
        raise OptionError(f"a pixel format is a four-character code such as {', '.join(KNOWN_FOURCCS[:3])}; got {text!r}")
    return code.upper() if code.isalpha() else code


def fourcc_to_str(value: float) -> str:
    """OpenCV's ``CAP_PROP_FOURCC`` number as its four characters ('' when unknown)."""
    try:
        n = int(value)
    except (TypeError, ValueError):
        return ""
    if n <= 0:
        return ""
    chars = "".join(chr((n >> (8 * i)) & 0xFF) for i in range(4))
    return chars if chars.isprintable() else ""


@dataclass(frozen=True)
class CameraMode:
    """What to ask a camera for; each field None means "the driver's choice".

    Attributes:
        width, height: frame size in pixels.
        fps: frames per second.
        fourcc: pixel format (``MJPG``, ``YUYV``, ...).
    """

    width: Optional[int] = None
    height: Optional[int] = None
    fps: Optional[float] = None
    fourcc: Optional[str] = None

    def __post_init__(self):
        if (self.width is None) != (self.height is None):
            raise OptionError("a camera mode needs both width and height, or neither")
        for name in ("width", "height"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, validate.whole_number(name, getattr(self, name), maximum=MAX_SIDE_PX,
                                                                     unit="pixels"))
        if self.fps is not None:
            object.__setattr__(self, "fps", validate.number("fps", self.fps, *FPS_RANGE,
                                                            "camera frame rate, frames per second"))
        if self.fourcc is not None:
            object.__setattr__(self, "fourcc", parse_fourcc(self.fourcc))

    @property
    def size(self) -> Optional[Tuple[int, int]]:
        return None if self.width is None else (self.width, self.height)

    def is_default(self) -> bool:
        return self.width is None and self.fps is None and self.fourcc is None

    def to_dict(self) -> dict:
        return {"width": self.width, "height": self.height, "fps": self.fps, "fourcc": self.fourcc}

    def describe(self) -> str:
        """``"1920x1080 at 30 fps, MJPG"`` (parts the mode leaves open are omitted)."""
        parts = []
        if self.width is not None:
            parts.append(f"{self.width}x{self.height}")
        if self.fps is not None:
            parts.append(f"at {self.fps:g} fps")
        text = " ".join(parts)
        if self.fourcc:
            text = f"{text}, {self.fourcc}" if text else self.fourcc
        return text or "the driver's default mode"

    def differences(self, granted: "CameraMode", fps_tolerance: float = 0.5) -> list[str]:
        """What ``granted`` changed of what this mode asked for, e.g. ``["size 640x480 (asked 1920x1080)"]``."""
        out = []
        if self.width is not None and granted.width is not None and granted.size != self.size:
            out.append(f"size {granted.width}x{granted.height} (asked {self.width}x{self.height})")
        if self.fps is not None and granted.fps is not None and abs(granted.fps - self.fps) > fps_tolerance:
            out.append(f"{granted.fps:g} fps (asked {self.fps:g})")
        if self.fourcc and granted.fourcc and granted.fourcc != self.fourcc:
            out.append(f"format {granted.fourcc} (asked {self.fourcc})")
        return out


def field_of_view_mm(width_px: int, height_px: int, um_per_px: float) -> Tuple[float, float]:
    """(width, height) of the field of view in mm for a frame size and scale in µm per pixel."""
    return width_px * um_per_px / 1000.0, height_px * um_per_px / 1000.0


@dataclass(frozen=True)
class CameraControls:
    """Exposure and white-balance settings to hold still during a run (where the driver allows).

    Automatic exposure and white balance wander while the stage moves between glass and tissue,
    and every wander changes the model's answer; a calibrated run locks them.

    Attributes:
        lock_exposure: turn automatic exposure off.
        exposure_us: exposure time in microseconds (with ``lock_exposure``; None keeps the current one).
        gain: analogue gain (Picamera2 ``AnalogueGain``; V4L2 ``gain`` in the driver's units).
        lock_white_balance: turn automatic white balance off.
        colour_gains_rb: red and blue gains of the camera's own white balance (Picamera2 ``ColourGains``).
        wb_temperature_k: white-balance temperature in kelvin (V4L2 drivers that offer it).
    """

    lock_exposure: bool = False
    exposure_us: Optional[float] = None
    gain: Optional[float] = None
    lock_white_balance: bool = False
    colour_gains_rb: Optional[Tuple[float, float]] = None
    wb_temperature_k: Optional[int] = None

    def __post_init__(self):
        for name, span, unit in (("exposure_us", EXPOSURE_US_RANGE, "microseconds"), ("gain", GAIN_RANGE, ""),
                                 ("wb_temperature_k", WB_TEMPERATURE_K_RANGE, "kelvin")):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, validate.number(name, getattr(self, name), *span, unit))
        if self.wb_temperature_k is not None:  # V4L2 takes whole kelvin
            object.__setattr__(self, "wb_temperature_k", int(round(self.wb_temperature_k)))
        if self.colour_gains_rb is not None:
            object.__setattr__(self, "colour_gains_rb", _colour_gains(self.colour_gains_rb))

    def is_default(self) -> bool:
        return self == CameraControls()


def _colour_gains(value) -> Tuple[float, float]:
    """``colour_gains_rb`` as two floats within :data:`COLOUR_GAIN_RANGE` (red, blue), else :class:`OptionError`."""
    low, high = COLOUR_GAIN_RANGE
    gains = tuple(value) if isinstance(value, (tuple, list)) else ()
    if len(gains) != 2 or not all(not isinstance(g, bool) and isinstance(g, numbers.Real) and low <= g <= high
                                  for g in gains):
        raise OptionError(f"colour_gains_rb must be two numbers (red, blue) from {low:g} to {high:g}, "
                          f"got {value!r:.60}", option="colour_gains_rb")
    return float(gains[0]), float(gains[1])


# V4L2 through OpenCV: CAP_PROP_AUTO_EXPOSURE 1 = manual, 3 = aperture priority (automatic)
_V4L2_MANUAL_EXPOSURE = 1


def apply_mode(cap, mode: CameraMode, controls: CameraControls = CameraControls()) -> list[str]:
    """Ask an OpenCV capture for ``mode`` and ``controls``; returns what the driver refused, in words.

    The pixel format goes first (V4L2 picks the sizes a format offers), then size, then frame rate.
    """
    import cv2

    refused = []

    def ask(prop: int, value: float, what: str) -> None:
        try:
            ok = cap.set(prop, value)
        except Exception:  # some backends raise instead of returning False
            ok = False
        if ok is False:
            refused.append(what)

    if mode.fourcc:
        ask(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*mode.fourcc), f"format {mode.fourcc}")
    if mode.width is not None:
        ask(cv2.CAP_PROP_FRAME_WIDTH, mode.width, f"width {mode.width}")
        ask(cv2.CAP_PROP_FRAME_HEIGHT, mode.height, f"height {mode.height}")
    if mode.fps is not None:
        ask(cv2.CAP_PROP_FPS, mode.fps, f"{mode.fps:g} fps")
    if controls.lock_exposure:
        ask(cv2.CAP_PROP_AUTO_EXPOSURE, _V4L2_MANUAL_EXPOSURE, "manual exposure")
        if controls.exposure_us is not None:
            # V4L2's exposure_time_absolute is in units of 100 µs
            ask(cv2.CAP_PROP_EXPOSURE, controls.exposure_us / 100.0, f"exposure {controls.exposure_us:g} µs")
    if controls.gain is not None:
        ask(cv2.CAP_PROP_GAIN, controls.gain, f"gain {controls.gain:g}")
    if controls.lock_white_balance:
        ask(cv2.CAP_PROP_AUTO_WB, 0, "manual white balance")
        if controls.wb_temperature_k is not None:
            ask(cv2.CAP_PROP_WB_TEMPERATURE, controls.wb_temperature_k, f"white balance {controls.wb_temperature_k} K")
    return refused


def granted_mode(cap) -> CameraMode:
    """The mode an OpenCV capture reports it is in (fields it does not report stay None)."""
    import cv2

    def get(prop: int) -> float:
        try:
            return float(cap.get(prop) or 0.0)
        except Exception:
            return 0.0

    w, h, fps = get(cv2.CAP_PROP_FRAME_WIDTH), get(cv2.CAP_PROP_FRAME_HEIGHT), get(cv2.CAP_PROP_FPS)
    sized = all(1 <= v <= MAX_SIDE_PX for v in (w, h))  # a driver's NaN or nonsense is "not reported"
    fourcc = fourcc_to_str(get(cv2.CAP_PROP_FOURCC)).strip() or None
    return CameraMode(int(w) if sized else None, int(h) if sized else None,
                      fps if FPS_RANGE[0] <= fps < FPS_RANGE[1] else None, fourcc)
