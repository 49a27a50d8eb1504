"""What a microscope camera does to tissue pixels, simulated on RGB uint8 images (numpy + OpenCV).

The data set's patches are scanner pixels at 4 µm/px. A camera on a microscope sees the same
tissue through optics that may be out of focus, with a sensor that counts photons (shot noise)
and adds read noise, an exposure and colour balance of its own, JPEG compression at its own
resolution (e.g. 1 µm/px), and then the runtime shrinks the frame to 4 µm/px. Each effect is a
pure function here, applied at the scale where it happens, so that training augmentation and
the robustness benchmark use the same physics.

Conventions:

- Images are RGB ``uint8`` ``[H, W, 3]`` (or ``[N, H, W, 3]`` where said); results are new arrays.
- Randomness comes only from an explicit ``numpy.random.Generator``.
- Lengths are in micrometres (µm) and converted with the image's ``um_per_px``; the data set
  and the model work at :data:`MODEL_UM_PER_PX` (4 µm/px).
- Photometric effects (noise, exposure, casts) act in linear light: bytes are decoded with the
  sRGB transfer curve, changed, and encoded again.

:data:`CONDITIONS` maps a condition family to three severities (mild, moderate, severe), each a
``callable(rgb_4um, rng) -> rgb_4um`` for a patch or window at the model's scale.

This module must not import TensorFlow (the runtime's benchmarks import it).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from idc_edge.colour import SRGB_TO_LINEAR

MODEL_UM_PER_PX = 4.0
"""Scale of the data set and the model (µm per pixel)."""

TYPICAL_CAMERA_UM_PER_PX = 1.0
"""A USB camera on a 10× objective sees about 1 µm per pixel."""

_SRGB_TO_LINEAR = SRGB_TO_LINEAR.astype(np.float32)


def to_linear(rgb: np.ndarray) -> np.ndarray:
    """sRGB bytes → linear light in [0, 1] (float32), by the sRGB transfer curve."""
    return _SRGB_TO_LINEAR[np.asarray(rgb, np.uint8)]


def _srgb_encode(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1.0 / 2.4) - 0.055)


_LUT_STEPS = 65535
_LINEAR_TO_SRGB = np.clip(np.rint(_srgb_encode(np.arange(_LUT_STEPS + 1) / _LUT_STEPS) * 255.0), 0, 255).astype(np.uint8)


def to_srgb(linear: np.ndarray) -> np.ndarray:
    """Linear light (clipped to [0, 1]) → sRGB bytes (uint8, rounded), through a 16-bit table
    (within 0.05 grey levels of the exact curve before rounding)."""
    x = np.clip(np.asarray(linear, np.float32), 0.0, 1.0)
    return _LINEAR_TO_SRGB[(x * np.float32(_LUT_STEPS) + np.float32(0.5)).astype(np.int32)]


def _check_rgb(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 image [H, W, 3], got {rgb.dtype} {list(rgb.shape)}")
    return rgb


# -- optics ----------------------------------------------------------------------------------

def disk_kernel(radius_px: float) -> np.ndarray:
    """Normalised disk point-spread function of ``radius_px`` pixels (area-weighted edge pixels),
    the geometric-optics shape of an out-of-focus point."""
    r = float(radius_px)
    n = int(np.ceil(r))
    # Each pixel's coverage by the disk, estimated on a 8×8 sub-pixel grid.
    sub = (np.arange(8) + 0.5) / 8 - 0.5
    ys, xs = np.mgrid[-n:n + 1, -n:n + 1].astype(np.float32)
    yy = ys[..., None, None] + sub[:, None]
    xx = xs[..., None, None] + sub[None, :]
    k = ((yy ** 2 + xx ** 2) <= r * r).mean(axis=(2, 3)).astype(np.float32)
    if k.sum() == 0:
        k[n, n] = 1.0
    return k / k.sum()


def defocus(rgb: np.ndarray, *, sigma_um: float = 0.0, disk_radius_um: float = 0.0,
            um_per_px: float = MODEL_UM_PER_PX) -> np.ndarray:
    """Blur by a Gaussian point-spread function of standard deviation ``sigma_um`` and/or a disk of
    radius ``disk_radius_um`` (µm), at an image scale of ``um_per_px``. Borders are reflected.
    The blur acts on the recorded intensities (bytes), as a camera's optics do before its tone
    curve only approximately; the difference is far below the blur itself."""
    rgb = _check_rgb(rgb)
    if sigma_um < 0 or disk_radius_um < 0:
        raise ValueError(f"defocus: sigma_um and disk_radius_um must be >= 0, got {sigma_um}, {disk_radius_um}")
    out = rgb.astype(np.float32)
    if sigma_um > 0:
        out = cv2.GaussianBlur(out, (0, 0), sigmaX=sigma_um / um_per_px, borderType=cv2.BORDER_REFLECT_101)
    if disk_radius_um > 0:
        out = cv2.filter2D(out, -1, disk_kernel(disk_radius_um / um_per_px), borderType=cv2.BORDER_REFLECT_101)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


# -- sensor ----------------------------------------------------------------------------------

def sensor_noise(rgb: np.ndarray, rng: np.random.Generator, *, full_well_e: float,
                 read_noise_e: float = 5.0) -> np.ndarray:
    """Shot and read noise in linear light.

    White (byte 255) collects ``full_well_e`` electrons per pixel and channel; a pixel at linear
    level ``v`` collects ``v`` × full well electrons with Poisson shot noise (variance = mean),
    plus Gaussian read noise of ``read_noise_e`` electrons. Fewer electrons at white = darker
    scene, amplified = noisier. The Poisson count is drawn in its Gaussian form (mean and
    variance exact; 10× faster, and below ~10 e⁻ where the shapes differ the read noise rules).
    """
    rgb = _check_rgb(rgb)
    if not full_well_e > 0 or read_noise_e < 0:
        raise ValueError(f"sensor_noise: full_well_e must be > 0 and read_noise_e >= 0, got {full_well_e}, {read_noise_e}")
    electrons = to_linear(rgb) * np.float32(full_well_e)
    sd = np.sqrt(electrons + np.float32(read_noise_e) ** 2)
    noisy = electrons + sd * rng.standard_normal(rgb.shape, dtype=np.float32)
    return to_srgb(noisy / np.float32(full_well_e))


def exposure(rgb: np.ndarray, gain: float = 1.0, gamma: float = 1.0) -> np.ndarray:
    """Exposure ``gain`` in linear light (×0.5 = one stop under), then a tone-curve change
    ``gamma`` on the encoded values (> 1 darkens mid-tones, < 1 brightens them)."""
    rgb = _check_rgb(rgb)
    if not gain > 0 or not gamma > 0:
        raise ValueError(f"exposure: gain and gamma must be > 0, got {gain}, {gamma}")
    out = to_linear(rgb) * np.float32(gain)
    out = to_srgb(out)
    if gamma != 1.0:
        lut = np.clip(np.rint(255.0 * (np.arange(256) / 255.0) ** gamma), 0, 255).astype(np.uint8)
        out = lut[out]
    return out


def colour_cast(rgb: np.ndarray, gains: tuple[float, float, float]) -> np.ndarray:
    """Per-channel gains (R, G, B) in linear light: an illuminant or white balance that is off.
    ``cool_cast(0.2)`` = gains (0.8, 1.0, 1.2)."""
    rgb = _check_rgb(rgb)
    g = np.asarray(gains, np.float32).reshape(1, 1, 3)
    if g.size != 3 or not np.all(g > 0):
        raise ValueError(f"colour_cast: expected three positive gains (R, G, B), got {gains!r}")
    return to_srgb(to_linear(rgb) * g)


def cool_cast(strength: float) -> tuple[float, float, float]:
    """Gains of a cool (bluish, LED-like) cast: red × (1 − s), blue × (1 + s); negative = warm."""
    return (1.0 - strength, 1.0, 1.0 + strength)


def hue_saturation(rgb: np.ndarray, hue_deg: float = 0.0, saturation: float = 1.0) -> np.ndarray:
    """A camera's (ISP's) hue and saturation settings on the encoded values: every hue turned by
    ``hue_deg`` degrees and the HSV saturation × ``saturation`` (clipped), as
    ``benchmarks.camera_conditions.hue_shift`` / ``saturation`` do but at any angle (float HSV)."""
    rgb = _check_rgb(rgb)
    if not saturation >= 0:
        raise ValueError(f"hue_saturation: saturation must be >= 0, got {saturation}")
    hsv = cv2.cvtColor(rgb.astype(np.float32) / np.float32(255.0), cv2.COLOR_RGB2HSV)  # H in degrees
    if hue_deg:
        hsv[..., 0] = np.mod(hsv[..., 0] + np.float32(hue_deg), np.float32(360.0))
    if saturation != 1.0:
        hsv[..., 1] = np.clip(hsv[..., 1] * np.float32(saturation), 0.0, 1.0)
    out = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB) * np.float32(255.0)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    """JPEG round trip at ``quality`` (1–100) with OpenCV's encoder (4:2:0 chroma subsampling)."""
    rgb = _check_rgb(rgb)
    if not 1 <= int(quality) <= 100:
        raise ValueError(f"jpeg: quality must be 1-100, got {quality}")
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("jpeg: OpenCV could not encode the image")
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


# -- scale -----------------------------------------------------------------------------------

def scale_jitter(rgb: np.ndarray, factor: float) -> np.ndarray:
    """Magnify by ``factor`` about the centre, keeping the size (reflected borders): a camera
    whose true µm/px is 1/``factor`` of what the runtime was told. Area filter when shrinking."""
    rgb = _check_rgb(rgb)
    if not factor > 0:
        raise ValueError(f"scale_jitter: factor must be > 0, got {factor}")
    h, w = rgb.shape[:2]
    m = np.array([[factor, 0, (1 - factor) * (w - 1) / 2], [0, factor, (1 - factor) * (h - 1) / 2]], np.float64)
    interp = cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
    if factor < 1:  # shrink with an area filter first so nothing aliases, then place it
        small = cv2.resize(rgb, (max(1, round(w * factor)), max(1, round(h * factor))), interpolation=interp)
        sh, sw = small.shape[:2]
        top, left = (h - sh) // 2, (w - sw) // 2
        return cv2.copyMakeBorder(small, top, h - sh - top, left, w - sw - left, cv2.BORDER_REFLECT_101)
    return cv2.warpAffine(rgb, m, (w, h), flags=interp, borderMode=cv2.BORDER_REFLECT_101)


def to_camera_scale(rgb_4um: np.ndarray, camera_um_per_px: float) -> np.ndarray:
    """Enlarge a 4 µm/px image to the camera's finer scale by pixel replication, so that the
    runtime's area rescale gives back exactly the same image when the camera changes nothing.
    The scan holds no finer detail; any smoothing comes from the camera's own optics (defocus)."""
    rgb = _check_rgb(rgb_4um)
    f = MODEL_UM_PER_PX / camera_um_per_px
    h, w = rgb.shape[:2]
    return cv2.resize(rgb, (round(w * f), round(h * f)), interpolation=cv2.INTER_NEAREST)


def to_model_scale(rgb_cam: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Shrink a camera-scale image back to ``size_hw`` at the model's scale (area average, as the
    runtime does)."""
    rgb = _check_rgb(rgb_cam)
    return cv2.resize(rgb, (size_hw[1], size_hw[0]), interpolation=cv2.INTER_AREA)


# -- a camera, composed ----------------------------------------------------------------------

@dataclass(frozen=True)
class Camera:
    """A camera at ``um_per_px`` and what it does, in the order it happens: optics (defocus), the
    illuminant/white balance (cast) and exposure in linear light, sensor noise, the ISP's tone
    curve (gamma), hue and saturation settings, JPEG at the camera's own scale; :meth:`apply` then
    rescales to the model's 4 µm/px. ``blur_red_um`` blurs the red channel alone by a further
    Gaussian (axial chromatic aberration: a lens that focuses red apart).

    ``glare`` g is veiling glare (stray light: an uncapped eyepiece, room light, a condenser opened
    too far): linear light ``x (1 - g) + g`` before the cast and gain, so the glass keeps its level
    and black rises to g of the glass in the lamp's colour (``benchmarks.camera_conditions.glare``
    with a cast)."""

    um_per_px: float = TYPICAL_CAMERA_UM_PER_PX
    blur_sigma_um: float = 0.0
    blur_disk_um: float = 0.0
    cast: tuple[float, float, float] = (1.0, 1.0, 1.0)
    gain: float = 1.0
    gamma: float = 1.0
    full_well_e: float | None = None
    read_noise_e: float = 5.0
    jpeg_quality: int | None = None
    blur_red_um: float = 0.0
    hue_deg: float = 0.0
    saturation: float = 1.0
    glare: float = 0.0  # veiling glare: share of the glass's light added to every pixel (stray light)

    def __post_init__(self):
        if not 0 <= self.glare < 1:
            raise ValueError(f"Camera: glare must be a share in [0, 1), got {self.glare}")

    def apply(self, rgb_4um: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The image this camera would give of ``rgb_4um`` (RGB uint8 at 4 µm/px), at 4 µm/px."""
        rgb = _check_rgb(rgb_4um)
        h, w = rgb.shape[:2]
        x = to_camera_scale(rgb, self.um_per_px) if self.um_per_px != MODEL_UM_PER_PX else rgb
        if self.blur_sigma_um or self.blur_disk_um:
            x = defocus(x, sigma_um=self.blur_sigma_um, disk_radius_um=self.blur_disk_um, um_per_px=self.um_per_px)
        if self.blur_red_um:
            x = x.copy()
            x[..., 0] = defocus(x, sigma_um=self.blur_red_um, um_per_px=self.um_per_px)[..., 0]
        if self.cast != (1.0, 1.0, 1.0) or self.gain != 1.0 or self.glare:
            lin = to_linear(x)
            if self.glare:  # stray light reaches the sensor with the lamp's colour, before noise and gamma
                lin = lin * np.float32(1.0 - self.glare) + np.float32(self.glare)
            x = to_srgb(lin * (np.asarray(self.cast, np.float32) * np.float32(self.gain)))
        if self.full_well_e is not None:
            x = sensor_noise(x, rng, full_well_e=self.full_well_e, read_noise_e=self.read_noise_e)
        if self.gamma != 1.0:
            x = exposure(x, 1.0, self.gamma)
        if self.hue_deg or self.saturation != 1.0:
            x = hue_saturation(x, self.hue_deg, self.saturation)
        if self.jpeg_quality is not None:
            x = jpeg(x, self.jpeg_quality)
        return to_model_scale(x, (h, w)) if x.shape[:2] != (h, w) else x


TYPICAL_USB_CAMERA = Camera(um_per_px=1.0, blur_sigma_um=1.5, cast=cool_cast(0.15), full_well_e=2000.0,
                            read_noise_e=8.0, jpeg_quality=80)
"""A typical USB camera at 1 µm/px: mild blur (σ 1.5 µm), shot and read noise (2,000 e⁻ at white,
8 e⁻ read noise), a 15 % cool cast and JPEG quality 80, before the rescale to 4 µm/px."""


def typical_usb_camera(rgb_4um: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """:data:`TYPICAL_USB_CAMERA` applied to an RGB uint8 image at 4 µm/px; result at 4 µm/px."""
    return TYPICAL_USB_CAMERA.apply(rgb_4um, rng)


# -- the condition table ---------------------------------------------------------------------

Condition = Callable[[np.ndarray, np.random.Generator], np.ndarray]


@dataclass(frozen=True)
class Severity:
    """One severity of a condition family: a label for tables and the callable."""

    label: str
    apply: Condition

    def __call__(self, rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self.apply(rgb, rng)


def _sev(label: str, fn: Condition) -> Severity:
    return Severity(label, fn)


def _at_4um(**kw) -> Condition:
    cam = Camera(um_per_px=MODEL_UM_PER_PX, **kw)
    return cam.apply


def _at_camera(**kw) -> Condition:
    cam = Camera(um_per_px=TYPICAL_CAMERA_UM_PER_PX, **kw)
    return cam.apply


CONDITIONS: dict[str, tuple[Severity, Severity, Severity]] = {
    # Defocus is given at the model's scale: sigma 1 px there = 4 µm.
    "defocus": (_sev("Gaussian σ 2 µm", _at_4um(blur_sigma_um=2.0)),
                _sev("Gaussian σ 4 µm", _at_4um(blur_sigma_um=4.0)),
                _sev("Gaussian σ 8 µm", _at_4um(blur_sigma_um=8.0))),
    "defocus_disk": (_sev("disk r 4 µm", _at_4um(blur_disk_um=4.0)),
                     _sev("disk r 8 µm", _at_4um(blur_disk_um=8.0)),
                     _sev("disk r 12 µm", _at_4um(blur_disk_um=12.0))),
    # Noise at the model's scale (the worst case: no averaging by the rescale).
    "noise": (_sev("1000 e⁻ at white", _at_4um(full_well_e=1000.0)),
              _sev("250 e⁻ at white", _at_4um(full_well_e=250.0)),
              _sev("100 e⁻ at white", _at_4um(full_well_e=100.0))),
    # JPEG at the camera's 1 µm/px, then rescaled (where it happens on a real camera).
    "jpeg": (_sev("JPEG 90 at 1 µm/px", _at_camera(jpeg_quality=90)),
             _sev("JPEG 70 at 1 µm/px", _at_camera(jpeg_quality=70)),
             _sev("JPEG 50 at 1 µm/px", _at_camera(jpeg_quality=50))),
    "exposure": (_sev("exposure ×0.8", _at_4um(gain=0.8)),
                 _sev("exposure ×0.65", _at_4um(gain=0.65)),
                 _sev("exposure ×0.5", _at_4um(gain=0.5))),
    "gamma": (_sev("gamma 1.15", _at_4um(gamma=1.15)),
              _sev("gamma 1.3", _at_4um(gamma=1.3)),
              _sev("gamma 1.5", _at_4um(gamma=1.5))),
    "cast": (_sev("cool cast 10 %", _at_4um(cast=cool_cast(0.10))),
             _sev("cool cast 20 %", _at_4um(cast=cool_cast(0.20))),
             _sev("cool cast 30 %", _at_4um(cast=cool_cast(0.30)))),
    "scale": (_sev("scale ×1.05", lambda x, rng: scale_jitter(x, 1.05)),
              _sev("scale ×0.9", lambda x, rng: scale_jitter(x, 0.9)),
              _sev("scale ×1.15", lambda x, rng: scale_jitter(x, 1.15))),
    "usb_camera": (
        _sev("good USB camera", Camera(um_per_px=1.0, blur_sigma_um=1.0, cast=cool_cast(0.08), full_well_e=4000.0,
                                       jpeg_quality=90).apply),
        _sev("typical USB camera", typical_usb_camera),
        _sev("poor USB camera", Camera(um_per_px=1.0, blur_sigma_um=3.0, cast=cool_cast(0.25), full_well_e=600.0,
                                       read_noise_e=10.0, jpeg_quality=60).apply)),
}
"""Condition family → (mild, moderate, severe), each ``callable(rgb_4um, rng) -> rgb_4um``."""


def apply_to_batch(condition: Condition, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``condition`` applied to each image of an RGB uint8 batch ``[N, H, W, 3]``."""
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] != 3:
        raise ValueError(f"expected an RGB uint8 batch [N, H, W, 3], got {images.dtype} {list(images.shape)}")
    return np.stack([condition(im, rng) for im in images]) if len(images) else images.copy()
