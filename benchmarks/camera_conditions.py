"""End to end: what each camera condition does to ``Detector.detect`` on real slide frames.

Real frames are the validation patients' slides rebuilt by :func:`idc_edge.sources.stage.build_mosaic`
(4 µm/px, the data set's scale), cut into camera fields of ``--size`` pixels (default 500×300 at
4 µm/px: a 2000×1200 camera at 1 µm/px) that are mostly tissue, on the data set's 50 px grid, so
every patch has the data set's label (a side that is not a multiple of 50 px, such as a 640×480
camera's 160×120, ends inside a cell: the tiling shifts its last window back to end on the edge,
across two patches, and that row or column is unlabelled). Each field is altered by a camera condition at several
severities (``train.camera_sim`` where it has the condition; the others are the small pure
functions below) and run through the shipped detector with its gates on. Per (condition,
severity) the report gives:

- **agree**: of the tissue patches called in the clean field *and* in the altered one, the share
  with the same IDC decision;
- **no call**: the share of the clean field's tissue patches without a call in the altered one
  (a gate said so), or counted as no call because the frame was flagged;
- **lost**: the share of the clean field's tissue patches shown as background in the altered one,
  whose frame no gate flagged (the tissue mask lost them: neither called nor said);
- **IDC recall**: of the tissue patches labelled IDC, the share called IDC (no call counts as not
  found; ``recall|called`` is over the called ones only);
- **verdict**: ``ok`` (agree ≥ ``--agree``, IDC recall among called patches within
  ``--recall-drop`` of clean and at most :data:`MAX_LOST` lost), ``no call`` (≥ 90 % of tissue patches no call, or a gate flag on most
  fields), else ``SILENT`` — the answer changed and nothing said so.

A wrong µm/px is simulated by telling the detector ``k ×`` the true 4 µm/px; the altered
field's patches are matched to the clean ones by their centres on the slide.

    python -m benchmarks.camera_conditions [--data ../shared/idc_patches] [--fields-per-patient 3] [--size 500x300]

Writes ``benchmarks/camera_conditions_report/report.json`` and ``report.md`` (numbers only).
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]

from idc_edge.dataset import VALIDATION_PATIENTS, default_data_dir, scan_dataset  # noqa: E402
from idc_edge.colour import white_levels  # noqa: E402
from idc_edge.detector import Detector  # noqa: E402
from idc_edge.focus import ColourOptions, ExposureOptions, FocusOptions, NoiseOptions, grey_black  # noqa: E402
from idc_edge.jsonready import dumps  # noqa: E402
from idc_edge.sources.stage import build_mosaic  # noqa: E402
from idc_edge.tissue import tissue_pixels  # noqa: E402
from train import camera_sim as cs  # noqa: E402

#: validation patients whose whole slide is in the data (the others are samples of patches)
COMPLETE_VALIDATION = ("8867", "8914", "8917", "8956", "9022", "9023", "9036", "9076", "9078")
PATCH = 50


# -- conditions train.camera_sim does not have (pure, RGB uint8 at 4 µm/px in and out) ----------

def motion_blur(rgb: np.ndarray, length_um: float, um_per_px: float = 4.0, degrees: float = 0.0) -> np.ndarray:
    """A straight streak of ``length_um`` µm at ``degrees`` from the horizontal (the stage moving
    during the exposure): a line drawn 8× finer, anti-aliased, and area-averaged to the pixels."""
    n = length_um / um_per_px
    if degrees == 0.0:
        k = np.ones((1, max(1, int(round(n)))), np.float32)
    else:
        fine, size = 8, int(math.ceil(n)) + 3
        big = np.zeros((size * fine, size * fine), np.float32)
        c, a, h = size * fine / 2, math.radians(degrees), n * fine / 2
        cv2.line(big, (int(c - h * math.cos(a)), int(c - h * math.sin(a))),
                 (int(c + h * math.cos(a)), int(c + h * math.sin(a))), 1.0, fine, cv2.LINE_AA)
        k = cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA)
    return cv2.filter2D(rgb, -1, k / k.sum(), borderType=cv2.BORDER_REFLECT_101)


def vignetting(rgb: np.ndarray, corner_loss: float) -> np.ndarray:
    """Light falling off towards the corners (cos⁴-like), ``corner_loss`` of it lost at the corners, in linear light."""
    h, w = rgb.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = ((xx - (w - 1) / 2) / (w / 2)) ** 2 + ((yy - (h - 1) / 2) / (h / 2)) ** 2
    gain = 1.0 - corner_loss * np.clip(r2 / 2.0, 0, 1)
    return cs.to_srgb(cs.to_linear(rgb) * gain[..., None])


def hot_spot(rgb: np.ndarray, peak: float, width: float = 0.35) -> np.ndarray:
    """A lamp's hot spot (a condenser or collector out of adjustment, a bulb's filament imaged): the light
    ``peak`` × as strong at the field's centre, falling off as a Gaussian of σ ``width`` × the field's
    diagonal, in linear light, clipped where it passes white (the centre's glass first)."""
    h, w = rgb.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = ((xx - (w - 1) / 2) ** 2 + (yy - (h - 1) / 2) ** 2) / (width * math.hypot(w, h)) ** 2
    gain = 1.0 + (peak - 1.0) * np.exp(-r2 / 2.0)
    return cs.to_srgb(np.clip(cs.to_linear(rgb) * gain[..., None], 0.0, 1.0))


def field_stop(rgb: np.ndarray, radius: float) -> np.ndarray:
    """A round field stop: black outside a circle of ``radius`` × the field's half-diagonal around its
    centre, with a soft edge (8 px at 4 µm/px), as a camera behind a microscope's round aperture sees."""
    h, w = rgb.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = np.hypot(xx - (w - 1) / 2, yy - (h - 1) / 2) / np.hypot(w / 2, h / 2)
    lit = np.clip((radius - r) * np.hypot(w / 2, h / 2) / 8.0 + 0.5, 0, 1)
    return np.round(rgb * lit[..., None]).astype(np.uint8)


def focus_gradient(rgb: np.ndarray, max_sigma_um: float, um_per_px: float = 4.0) -> np.ndarray:
    """A tilted slide or a curved field: sharp at the left edge, defocused towards the right, the
    Gaussian blur's σ rising linearly across the field to ``max_sigma_um`` µm at the right edge
    (each column mixes the two nearest of nine evenly spaced blur levels)."""
    w = rgb.shape[1]
    levels = np.linspace(0.0, max_sigma_um, 9)
    stack = np.stack([rgb.astype(np.float32) if s == 0 else
                      cv2.GaussianBlur(rgb.astype(np.float32), (0, 0), s / um_per_px, borderType=cv2.BORDER_REFLECT_101)
                      for s in levels])
    pos = np.linspace(0.0, len(levels) - 1, w)
    lo = np.minimum(pos.astype(int), len(levels) - 2)
    t = (pos - lo)[None, :, None]
    cols = np.arange(w)
    out = stack[lo, :, cols].transpose(1, 0, 2) * (1 - t) + stack[lo + 1, :, cols].transpose(1, 0, 2) * t
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def flicker(rgb: np.ndarray, amplitude: float, period_px: float = 120.0) -> np.ndarray:
    """Mains flicker through a rolling shutter: horizontal bands, the exposure of each row
    × (1 + ``amplitude`` · sin(2π y / ``period_px``)) in linear light (an LED or fluorescent lamp
    on 50/60 Hz with an exposure that is not a whole number of its cycles)."""
    y = np.arange(rgb.shape[0], dtype=np.float32)
    gain = 1.0 + amplitude * np.sin(2 * np.pi * y / period_px)
    return cs.to_srgb(cs.to_linear(rgb) * gain[:, None, None])


def lateral_colour(rgb: np.ndarray, shift_px: float) -> np.ndarray:
    """Lateral chromatic aberration of a cheap relay lens: red magnified and blue shrunk about the
    centre so that they are ``shift_px`` model pixels off green at the field's corners (colour
    fringes on every edge, growing from the centre)."""
    h, w = rgb.shape[:2]
    half_diag = float(np.hypot(w / 2, h / 2))
    centre = ((w - 1) / 2, (h - 1) / 2)
    out = rgb.copy()
    for channel, sign in ((0, 1.0), (2, -1.0)):
        m = cv2.getRotationMatrix2D(centre, 0.0, 1.0 + sign * shift_px / half_diag)
        out[..., channel] = cv2.warpAffine(rgb[..., channel], m, (w, h), flags=cv2.INTER_LINEAR,
                                           borderMode=cv2.BORDER_REFLECT_101)
    return out


def colour_defocus(rgb: np.ndarray, rng: np.random.Generator, channels: tuple, sigma_um: float,
                   camera_um_per_px: float = 4.0, jpeg_quality: Optional[int] = None) -> np.ndarray:
    """Axial chromatic aberration of a lens that focuses colours apart (a camera adapter's, an
    eyepiece camera's): the ``channels`` (0 red, 1 green, 2 blue) blurred by a Gaussian of
    ``sigma_um`` while the rest is sharp, at the camera's ``camera_um_per_px``, then JPEG there
    (when ``jpeg_quality``) and the rescale to the model's 4 µm/px."""
    cam = cs.to_camera_scale(rgb, camera_um_per_px) if camera_um_per_px != 4.0 else rgb.copy()
    for c in channels:
        cam[..., c] = cs.defocus(cam, sigma_um=sigma_um, um_per_px=camera_um_per_px)[..., c]
    if jpeg_quality is not None:
        cam = cs.jpeg(cam, jpeg_quality)
    return cs.to_model_scale(cam, rgb.shape[:2]) if cam.shape[:2] != rgb.shape[:2] else cam


def hot_pixels(rgb: np.ndarray, rng: np.random.Generator, fraction: float, camera_um_per_px: float = 1.0) -> np.ndarray:
    """Hot and dead pixels of a cheap sensor: ``fraction`` of the camera's pixels stuck at full or
    zero in one channel (half each), at the camera's ``camera_um_per_px``, then the rescale to
    the model's 4 µm/px that the runtime does."""
    cam = cs.to_camera_scale(rgb, camera_um_per_px)
    n = int(round(fraction * cam.shape[0] * cam.shape[1]))
    ys, xs = rng.integers(0, cam.shape[0], n), rng.integers(0, cam.shape[1], n)
    cam[ys, xs, rng.integers(0, 3, n)] = np.where(rng.random(n) < 0.5, 255, 0).astype(np.uint8)
    return cs.to_model_scale(cam, rgb.shape[:2])


#: Ruifrok & Johnston's stain vectors (rows: haematoxylin, eosin, residual) as unit optical densities
_OD_FROM_HER = np.array([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]], np.float64)
_OD_FROM_HER /= np.linalg.norm(_OD_FROM_HER, axis=1, keepdims=True)


def stain(rgb: np.ndarray, haematoxylin: float, eosin: float) -> np.ndarray:
    """A slide stained more or less strongly than the training slides (another lab, a faded slide):
    the optical density unmixed into haematoxylin, eosin and a residual (Ruifrok & Johnston 2001),
    the two stains' amounts × ``haematoxylin`` and × ``eosin``, mixed back."""
    od = -np.log(np.maximum(rgb.astype(np.float64), 1.0) / 255.0)
    amounts = od.reshape(-1, 3) @ np.linalg.inv(_OD_FROM_HER)
    amounts[:, 0] *= haematoxylin
    amounts[:, 1] *= eosin
    out = 255.0 * np.exp(-(amounts @ _OD_FROM_HER))
    return np.clip(np.rint(out), 0, 255).astype(np.uint8).reshape(rgb.shape)


def glare(rgb: np.ndarray, share: float) -> np.ndarray:
    """Stray light (an uncapped eyepiece, room light, a condenser opened too far): ``share`` of the
    glass's brightness added to every pixel in linear light."""
    return cs.to_srgb(cs.to_linear(rgb) * np.float32(1.0 - share) + np.float32(share))


def saturation(rgb: np.ndarray, factor: float) -> np.ndarray:
    """A camera's saturation setting: HSV saturation × ``factor``."""
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    hsv[..., 1] = np.clip(np.round(hsv[..., 1] * np.float32(factor)), 0, 255).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def hue_shift(rgb: np.ndarray, degrees: int) -> np.ndarray:
    """A camera's hue setting: every hue turned by ``degrees`` (a multiple of 2, OpenCV's hue step)."""
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    hsv[..., 0] = ((hsv[..., 0].astype(np.int32) + degrees // 2) % 180).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def contrast(rgb: np.ndarray, factor: float) -> np.ndarray:
    """A camera's contrast setting: the encoded values spread × ``factor`` around mid-grey."""
    return np.clip((rgb.astype(np.float32) - 128.0) * np.float32(factor) + 128.0, 0, 255).round().astype(np.uint8)


def sharpen(rgb: np.ndarray, amount: float, sigma_px: float = 1.0) -> np.ndarray:
    """A camera's sharpening (unsharp mask, ``amount`` × the detail above a Gaussian of ``sigma_px``)."""
    x = rgb.astype(np.float32)
    return np.clip(x + np.float32(amount) * (x - cv2.GaussianBlur(x, (0, 0), sigma_px)), 0, 255).round().astype(np.uint8)


def dust(rgb: np.ndarray, rng: np.random.Generator, n_spots: int, opacity: float) -> np.ndarray:
    """Out-of-focus dust on the camera window: soft dark discs (radius 15–40 px at 4 µm/px)."""
    h, w = rgb.shape[:2]
    shade = np.zeros((h, w), np.float32)
    for _ in range(n_spots):
        cv2.circle(shade, (int(rng.integers(0, w)), int(rng.integers(0, h))), int(rng.integers(15, 40)), 1.0, -1)
    shade = cv2.GaussianBlur(shade, (0, 0), 6.0)
    return cs.to_srgb(cs.to_linear(rgb) * (1.0 - opacity * np.clip(shade, 0, 1))[..., None])


def marker_ink(rgb: np.ndarray, rng: np.random.Generator, ink_rgb: tuple, width_px: int, strokes: int = 2) -> np.ndarray:
    """Strokes of a marker pen across the field (``width_px`` wide at 4 µm/px, soft-edged, random
    ends): the ink filters the light like a dye of transmission ``ink_rgb`` (RGB, 0–255) over 70 %."""
    h, w = rgb.shape[:2]
    cover = np.zeros((h, w), np.uint8)
    for _ in range(strokes):
        a, b = rng.integers(0, [w, h], size=(2, 2))
        cv2.line(cover, (int(a[0]), int(a[1])), (int(b[0]), int(b[1])), 255, int(width_px))
    alpha = cv2.GaussianBlur(cover, (0, 0), 2).astype(np.float32)[..., None] / 255 * 0.7
    filtered = 1 - alpha + alpha * np.asarray(ink_rgb, np.float32) / 255
    return np.clip(rgb * filtered, 0, 255).astype(np.uint8)


def low_light(rgb: np.ndarray, rng: np.random.Generator, gain: float, full_well_e: float) -> np.ndarray:
    """A dim lamp with the camera's gain turned up: exposure ``gain`` then shot + read noise."""
    return cs.sensor_noise(cs.exposure(rgb, gain), rng, full_well_e=full_well_e, read_noise_e=8.0)


Fn = Callable[[np.ndarray, np.random.Generator], np.ndarray]


@dataclass(frozen=True)
class Case:
    """One (condition, severity): how the field is altered, and the µm/px the detector is told
    as a multiple of the truth (1.0 = right)."""

    family: str
    label: str
    apply: Optional[Fn] = None
    scale_error: float = 1.0


def _cast(gains):
    return lambda x, rng: cs.colour_cast(x, gains)


def cases() -> list[Case]:
    """Every condition family at its severities (mild → severe)."""
    out = []
    for fam in ("defocus", "defocus_disk", "noise", "jpeg", "exposure", "gamma", "cast", "usb_camera"):
        for sev in cs.CONDITIONS[fam]:
            out.append(Case(fam, sev.label, sev.apply))
    out += [Case("motion", f"streak {n} µm", (lambda n: lambda x, rng: motion_blur(x, n))(n)) for n in (8, 16, 32, 64)]
    out += [Case("motion", f"streak {n} µm at {d}°", (lambda n, d: lambda x, rng: motion_blur(x, n, degrees=d))(n, d))
            for n, d in ((64, 45), (100, 30))]
    out += [Case("low_light", f"×{g} at {e:g} e⁻", (lambda g, e: lambda x, rng: low_light(x, rng, g, e))(g, e))
            for g, e in ((0.5, 500), (0.3, 300), (0.15, 150))]
    out += [Case("exposure_low", f"exposure ×{g}", (lambda g: lambda x, rng: cs.exposure(x, g))(g)) for g in (0.4, 0.3)]
    out += [Case("overexposure", f"exposure ×{g} (clips)", (lambda g: lambda x, rng: cs.exposure(x, g))(g))
            for g in (1.3, 1.6, 2.0)]
    out += [Case("gamma_low", f"gamma {g}", (lambda g: lambda x, rng: cs.exposure(x, 1.0, g))(g)) for g in (0.8, 0.65)]
    for name, per in (("warm", lambda s: (1 + s, 1.0, 1 - s)), ("green", lambda s: (1 - s / 2, 1 + s, 1 - s / 2)),
                      ("magenta", lambda s: (1 + s / 2, 1 - s, 1 + s / 2))):
        out += [Case(f"cast_{name}", f"{name} cast {round(100 * s)} %", _cast(per(s))) for s in (0.1, 0.2, 0.3)]
    # beyond about 35 % the glass is too saturated for the glass rule: the palest flat part is judged
    out += [Case("cast_strong", f"{name} cast {round(100 * s)} %", _cast(gains))
            for name, s, gains in (("cool", 0.4, cs.cool_cast(0.4)), ("cool", 0.5, cs.cool_cast(0.5)),
                                   ("warm", 0.4, cs.cool_cast(-0.4)), ("warm", 0.5, cs.cool_cast(-0.5)),
                                   ("magenta", 0.4, (1.2, 0.6, 1.2)), ("green", 0.5, (0.75, 1.5, 0.75)),
                                   ("blue", 0.5, (0.75, 0.75, 1.5)))]
    # the other hues of the colour wheel at strong casts (one channel down by s, or one up by s and two
    # down by s/2, as the green and blue casts above; violet: red up s/4, green down s/2, blue up s)
    out += [Case("cast_hues", f"{name} cast {round(100 * s)} %", _cast(gains))
            for name, s, gains in (("yellow", 0.35, (1.175, 1.175, 0.65)), ("yellow", 0.5, (1.25, 1.25, 0.5)),
                                   ("red", 0.35, (1.35, 0.825, 0.825)), ("red", 0.5, (1.5, 0.75, 0.75)),
                                   ("cyan", 0.35, (0.65, 1.175, 1.175)), ("cyan", 0.5, (0.5, 1.25, 1.25)),
                                   ("blue", 0.35, (0.825, 0.825, 1.35)), ("violet", 0.5, (1.125, 0.75, 1.5)))]
    out += [Case("glare", f"veiling glare {round(100 * g)} % of the glass", (lambda g: lambda x, rng: glare(x, g))(g))
            for g in (0.3, 0.45, 0.6)]
    out += [Case("vignetting", f"corners −{round(100 * c)} %", (lambda c: lambda x, rng: vignetting(x, c))(c))
            for c in (0.2, 0.4, 0.6)]
    # the lamp's hot spot clips the glass in the middle of the field; with a cast, that white was read as the glass
    out += [Case("hot_spot", f"hot spot ×{p:g} at the centre", (lambda p: lambda x, rng: hot_spot(x, p))(p))
            for p in (1.3, 1.6, 2.0)]
    out += [Case("hot_spot", f"hot spot ×{p:g} with a cool cast 30 %",
                 (lambda p: lambda x, rng: hot_spot(cs.colour_cast(x, cs.cool_cast(0.3)), p))(p)) for p in (1.3, 1.6, 2.0)]
    out += [Case("field_stop", f"round, black beyond {round(100 * r)} % of the half-diagonal",
                 (lambda r: lambda x, rng: field_stop(x, r))(r)) for r in (0.95, 0.8, 0.6)]
    # the camera's own picture settings (a USB camera's defaults vary by maker)
    out += [Case("saturation", f"saturation ×{k}", (lambda k: lambda x, rng: saturation(x, k))(k)) for k in (0.5, 1.6)]
    # the camera's saturation control turned down: the tissue fades below the tissue mask
    out += [Case("saturation_low", f"saturation ×{k}", (lambda k: lambda x, rng: saturation(x, k))(k))
            for k in (0.3, 0.2, 0.12)]
    out += [Case("hue", f"hue {d:+d}°", (lambda d: lambda x, rng: hue_shift(x, d))(d)) for d in (-20, 20, -40, 40)]
    # a camera, pipeline or caller giving RGB where BGR is expected
    out.append(Case("channel_order", "red and blue swapped (RGB given as BGR)",
                    lambda x, rng: np.ascontiguousarray(x[..., ::-1])))
    out += [Case("contrast", f"contrast ×{k}", (lambda k: lambda x, rng: contrast(x, k))(k)) for k in (0.6, 1.5)]
    out += [Case("sharpen", f"sharpening {a:g} at 4 µm/px", (lambda a: lambda x, rng: sharpen(x, a))(a)) for a in (1.0, 2.0)]
    out += [Case("dust", f"{n} spots, {round(100 * o)} % dark", (lambda n, o: lambda x, rng: dust(x, rng, n, o))(n, o))
            for n, o in ((3, 0.3), (6, 0.5), (10, 0.7))]
    out += [Case("noise_camera", f"{e:g} e⁻ at white at 1 µm/px",
                 cs.Camera(um_per_px=1.0, full_well_e=e, read_noise_e=2.0).apply) for e in (20, 10, 6)]
    out += [Case("focus_gradient", f"sharp left, Gaussian σ {m:g} µm at the right edge",
                 (lambda m: lambda x, rng: focus_gradient(x, m))(m)) for m in (4.0, 8.0, 12.0)]
    out += [Case("flicker", f"rolling-shutter bands ±{round(100 * a)} %", (lambda a: lambda x, rng: flicker(x, a))(a))
            for a in (0.05, 0.1, 0.2)]
    out += [Case("lateral_colour", f"red/blue {p:g} px off green at the corners",
                 (lambda p: lambda x, rng: lateral_colour(x, p))(p)) for p in (0.5, 1.0, 2.0)]
    out += [Case("colour_defocus", label, (lambda k: lambda x, rng: colour_defocus(x, rng, **k))(k))
            for label, k in (("red out of focus, σ 2 µm", dict(channels=(0,), sigma_um=2.0)),
                             ("red out of focus, σ 4 µm", dict(channels=(0,), sigma_um=4.0)),
                             ("red out of focus, σ 8 µm", dict(channels=(0,), sigma_um=8.0)),
                             ("red and blue out of focus, σ 4 µm", dict(channels=(0, 2), sigma_um=4.0)),
                             ("red out of focus, σ 4 µm at 1 µm/px, JPEG 80",
                              dict(channels=(0,), sigma_um=4.0, camera_um_per_px=1.0, jpeg_quality=80)))]
    out += [Case("hot_pixels", f"{100 * f:g} % hot or dead pixels at 1 µm/px",
                 (lambda f: lambda x, rng: hot_pixels(x, rng, f))(f)) for f in (0.001, 0.005, 0.02)]
    out += [Case("stain", f"haematoxylin ×{h:g}, eosin ×{e:g}", (lambda h, e: lambda x, rng: stain(x, h, e))(h, e))
            for h, e in ((0.7, 1.0), (1.4, 1.0), (1.0, 0.6), (1.0, 1.5), (0.6, 0.6), (1.5, 1.5), (0.5, 0.5), (0.4, 0.4),
                         (0.5, 1.0), (0.35, 1.0))]  # the last two: a weak haematoxylin (under-stained, or faded alone)
    out += [Case("wrong_um_per_px", f"told ×{k} the true µm/px", None, k) for k in (0.5, 0.8, 1.25, 2.0, 3.0)]
    # the slide's, not the camera's: a pathologist's or surgeon's marker across the tissue
    out += [Case("marker_ink", f"{name} marker, {w} px strokes", (lambda c, w: lambda x, rng: marker_ink(x, rng, c, w))(c, w))
            for name, c, w in (("blue", (40, 60, 200), 10), ("green", (40, 160, 60), 12), ("violet", (90, 50, 190), 12),
                               ("black", (30, 30, 30), 12), ("blue", (40, 60, 200), 40), ("green", (40, 160, 60), 40),
                               ("violet", (90, 50, 190), 40), ("black", (30, 30, 30), 40))]
    return out


# -- real fields ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Field:
    """One camera field cut from a rebuilt slide: RGB uint8 at 4 µm/px, its labels per 50 px cell
    (-1 = no patch), and which patient it came from."""

    patient: str
    rgb: np.ndarray
    labels: np.ndarray


def slide_fields(data_dir, patients, size=(500, 300), per_patient=3, min_tissue=0.5, seed=0, *,
                 exact=False) -> list[Field]:
    """Up to ``per_patient`` fields of ``size`` (width, height) px per patient, starting on the 50 px
    grid, each at least ``min_tissue`` tissue pixels, chosen at random (fixed seed) among those.

    A side that is not a multiple of 50 px is cut down to whole 50 px cells (480×270 gives 450×250),
    unless ``exact``: then the field is ``size`` itself, as a camera of that size at the model's
    scale gives it, and its last row or column of windows (which the tiling shifts back to end on
    the field's edge, across two of the data set's patches) has no label (-1). A size of whole
    cells gives the same fields either way."""
    rng = np.random.default_rng(seed)
    records = scan_dataset(data_dir, patients)
    by_patient: dict[str, list] = {}
    for r in records:
        by_patient.setdefault(r.patient, []).append(r)
    w, h = size
    part = exact and bool(w % PATCH or h % PATCH)  # a field that ends inside a cell
    if part:
        cw, ch = -(-w // PATCH), -(-h // PATCH)  # the cells it reaches into (one window each in the tiling)
        fw, fh = w, h
    else:
        cw, ch = w // PATCH, h // PATCH
        fw, fh = cw * PATCH, ch * PATCH
    out = []
    for p in patients:
        if p not in by_patient:
            continue
        mosaic_bgr, labels, _ = build_mosaic(by_patient[p])
        rgb = cv2.cvtColor(mosaic_bgr, cv2.COLOR_BGR2RGB)
        ph, pw = (ch * PATCH, cw * PATCH) if part else (h, w)
        if rgb.shape[0] < ph or rgb.shape[1] < pw:
            rgb = cv2.copyMakeBorder(rgb, 0, max(0, ph - rgb.shape[0]), 0, max(0, pw - rgb.shape[1]),
                                     cv2.BORDER_CONSTANT, value=(255, 255, 255))
            labels = np.pad(labels, ((0, max(0, ch - labels.shape[0])), (0, max(0, cw - labels.shape[1]))),
                            constant_values=-1)
        tissue = tissue_pixels(rgb).astype(np.float32)
        if part:  # the tissue share of the field's own pixels, from a summed-area table
            summed = cv2.integral(tissue, sdepth=cv2.CV_64F)

            def share(r0, c0):
                y, x = r0 * PATCH, c0 * PATCH
                return (summed[y + fh, x + fw] - summed[y, x + fw] - summed[y + fh, x] + summed[y, x]) / (fw * fh)
        else:
            cells = cv2.resize(tissue, (rgb.shape[1] // PATCH, rgb.shape[0] // PATCH), interpolation=cv2.INTER_AREA)

            def share(r0, c0):
                return cells[r0:r0 + ch, c0:c0 + cw].mean()
        ok = []
        for r0 in range(0, labels.shape[0] - ch + 1):
            for c0 in range(0, labels.shape[1] - cw + 1):
                if share(r0, c0) >= min_tissue:
                    ok.append((r0, c0))
        for i in rng.permutation(len(ok))[:per_patient]:
            r0, c0 = ok[i]
            lab = labels[r0:r0 + ch, c0:c0 + cw].copy()
            if part:  # the shifted last window straddles two patches: no label
                if h % PATCH:
                    lab[-1, :] = -1
                if w % PATCH:
                    lab[:, -1] = -1
            out.append(Field(p, rgb[r0 * PATCH:r0 * PATCH + fh, c0 * PATCH:c0 * PATCH + fw].copy(), lab))
    return out


# -- comparing a result with the clean one ----------------------------------------------------

NO_CALL, BENIGN, IDC, BACKGROUND = 2, 0, 1, 3


def decision_grid(result) -> np.ndarray:
    """int8 ``[rows, cols]``: IDC / BENIGN / NO_CALL / BACKGROUND per patch of a result."""
    out = np.full(result.tissue.shape, BACKGROUND, np.int8)
    out[result.tissue] = BENIGN
    out[result.idc] = IDC
    if result.no_call is not None:
        out[result.no_call] = NO_CALL
    if flagged(result):  # said for the whole frame: windows the tissue mask lost as well
        out[:] = NO_CALL
    return out


def flagged(result) -> bool:
    """True when a frame-wide gate said no call (or the exposure gate flagged the frame)."""
    return any(getattr(result, flag, True) is False
               for flag in ("in_focus", "exposure_ok", "colour_ok", "noise_ok", "scale_ok"))


def at_points(result, decisions: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """The decision of the patch whose box holds each frame point (x, y) (nearest box centre)."""
    boxes = result.boxes.reshape(-1, 4).astype(np.float32)
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    d = (xy[:, None, 0] - cx[None]) ** 2 + (xy[:, None, 1] - cy[None]) ** 2
    return decisions.reshape(-1)[np.argmin(d, axis=1)]


@dataclass
class Tally:
    """Counts over fields for one case."""

    both_called: int = 0
    agree: int = 0
    clean_tissue: int = 0
    no_call: int = 0
    idc_total: int = 0
    idc_found: int = 0
    idc_called: int = 0
    fields: int = 0
    flagged_fields: int = 0
    lost: int = 0

    def row(self) -> dict:
        return {"agree": self.agree / max(self.both_called, 1),
                "no_call": self.no_call / max(self.clean_tissue, 1),
                "lost": self.lost / max(self.clean_tissue, 1),
                "idc_recall": self.idc_found / max(self.idc_total, 1),
                "idc_recall_called": self.idc_found / max(self.idc_called, 1) if self.idc_called else float("nan"),
                "flagged_fields": self.flagged_fields / max(self.fields, 1),
                "idc_patches": self.idc_total, "called_patches": self.both_called}


def black_through_stray_light(rgb: np.ndarray) -> np.ndarray:
    """bool per pixel of an **RGB** field: :func:`idc_edge.focus.grey_black` as the detector reads it."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return grey_black(cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV), float(white_levels(grey[..., None])[0])) > 0


def lit_windows(rgb: np.ndarray, clean) -> np.ndarray:
    """bool per window of the clean result: whether the altered field (**RGB**, the clean field's
    size) is lit there (its brightest channel's mean at least the tissue mask's least value, and at
    most half of it black seen through stray light, :func:`idc_edge.focus.grey_black`), so a window
    lost to the mask was there to be seen (not behind a field stop's black)."""
    value = rgb.max(axis=2).astype(np.float64)
    black = black_through_stray_light(rgb)
    boxes = clean.boxes.reshape(-1, 4)
    return np.array([value[y0:y1, x0:x1].mean() >= 40 and black[y0:y1, x0:x1].mean() < 0.5 for x0, y0, x1, y1 in boxes])


def compare(clean, clean_dec, res, res_dec, labels, tally: Tally, lit: Optional[np.ndarray] = None) -> None:
    """Add one field's clean/altered pair to ``tally`` (patches matched by centre on the frame); ``lit``
    (:func:`lit_windows`) limits the lost windows to those the altered field shows lit."""
    boxes = clean.boxes.reshape(-1, 4)
    xy = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], axis=1).astype(np.float32)
    a = clean_dec.reshape(-1)
    b = at_points(res, res_dec, xy) if res.boxes.shape != clean.boxes.shape or \
        not np.array_equal(res.boxes, clean.boxes) else res_dec.reshape(-1)
    lab = labels.reshape(-1)[: a.size] if labels.size == a.size else np.full(a.size, -1)
    tissue = a != BACKGROUND
    called = (a <= IDC) & (b <= IDC)
    tally.both_called += int(called.sum())
    tally.agree += int((called & (a == b)).sum())
    tally.clean_tissue += int(tissue.sum())
    tally.no_call += int((tissue & (b == NO_CALL)).sum())
    lost = tissue & (b == BACKGROUND)  # shown as background, without a word
    tally.lost += int((lost & lit).sum() if lit is not None else lost.sum())
    pos = tissue & (lab == 1)
    tally.idc_total += int(pos.sum())
    tally.idc_found += int((pos & (b == IDC)).sum())
    tally.idc_called += int((pos & (b <= IDC)).sum())
    tally.fields += 1
    tally.flagged_fields += int(flagged(res))


#: Largest share of the clean field's tissue windows an altered field may show as background, without
#: a frame-wide no call, for its verdict to be ok: tissue the mask lost is neither called nor said.
MAX_LOST = 0.10


def verdict(row: dict, clean_row: dict, min_agree: float, max_recall_drop: float) -> str:
    if row["no_call"] >= 0.9 or row["flagged_fields"] >= 0.8:
        return "no call"
    called_recall_ok = (math.isnan(row["idc_recall_called"]) or
                        row["idc_recall_called"] >= clean_row["idc_recall"] - max_recall_drop)
    if row["agree"] >= min_agree and called_recall_ok and row.get("lost", 0.0) <= MAX_LOST:
        return "ok"
    if row["flagged_fields"] >= 0.5:
        return "flagged"
    return "SILENT"


def run(fields: list[Field], case_list: list[Case], min_agree: float, max_recall_drop: float,
        model_path=None, stride=PATCH) -> dict:
    rng_seed = 1234
    rows = []
    timing = []
    with Detector(model_path=model_path, um_per_px=4.0, stride=stride) as det:
        clean_results = []
        clean_tally = Tally()
        for f in fields:
            bgr = cv2.cvtColor(f.rgb, cv2.COLOR_RGB2BGR)
            t0 = time.process_time()
            r = det.detect(bgr)
            timing.append(time.process_time() - t0)
            d = decision_grid(r)
            clean_results.append((r, d))
            compare(r, d, r, d, f.labels, clean_tally)
        clean_row = clean_tally.row()
        rows.append({"family": "clean", "label": "clean", **clean_row, "verdict": "ok"})
        detectors = {1.0: det}
        try:
            for case in case_list:
                if case.scale_error not in detectors:
                    detectors[case.scale_error] = Detector(model_path=model_path, um_per_px=4.0 * case.scale_error,
                                                           stride=stride)
                d2 = detectors[case.scale_error]
                if ("raw", case.scale_error) not in detectors:
                    detectors[("raw", case.scale_error)] = Detector(
                        model_path=model_path, um_per_px=4.0 * case.scale_error, stride=stride,
                        focus=FocusOptions(enabled=False), exposure=ExposureOptions(enabled=False),
                        colour=ColourOptions(enabled=False), noise=NoiseOptions(enabled=False))
                raw_det = detectors[("raw", case.scale_error)]
                tally, raw = Tally(), Tally()
                rng = np.random.default_rng(rng_seed)
                for f, (cr, cd) in zip(fields, clean_results):
                    rgb = f.rgb if case.apply is None else case.apply(f.rgb, rng)
                    altered = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
                    res = d2.detect(altered)
                    lit = lit_windows(rgb, cr) if rgb.shape == f.rgb.shape else None
                    compare(cr, cd, res, decision_grid(res), f.labels, tally, lit)
                    res = raw_det.detect(altered)  # the model alone: what the answer would be without the gates
                    compare(cr, cd, res, decision_grid(res), f.labels, raw)
                row = tally.row()
                model_alone = raw.row()
                row.update(model_agree=model_alone["agree"], model_idc_recall=model_alone["idc_recall"])
                rows.append({"family": case.family, "label": case.label, **row,
                             "verdict": verdict(row, clean_row, min_agree, max_recall_drop)})
                print(f"{case.family:16s} {case.label:28s} model alone: agree {row['model_agree']:.3f} recall "
                      f"{row['model_idc_recall']:.3f} | gated: agree {row['agree']:.3f} no-call {row['no_call']:.3f} "
                      f"recall {row['idc_recall']:.3f} flagged {row['flagged_fields']:.2f} -> {rows[-1]['verdict']}",
                      flush=True)
        finally:
            for k, d2 in detectors.items():
                if k != 1.0:
                    d2.close()  # the clean detector is closed by its own with-block
    return {"rows": rows, "clean_cpu_ms_per_field": 1000 * float(np.median(timing)) if timing else None}


def markdown(report: dict) -> str:
    lines = ["| condition | severity | model alone: agree, IDC recall | gated: agree | no call | lost | IDC recall (called only) | verdict |",
             "|---|---|--:|--:|--:|--:|--:|---|"]
    for r in report["rows"]:
        rc = "–" if r["idc_recall_called"] != r["idc_recall_called"] else f"{r['idc_recall_called']:.2f}"
        alone = f"{100 * r['model_agree']:.1f} %, {r['model_idc_recall']:.2f}" if "model_agree" in r else "–"
        lines.append(f"| {r['family']} | {r['label']} | {alone} | {100 * r['agree']:.1f} % | {100 * r['no_call']:.1f} % | "
                     f"{100 * r.get('lost', 0.0):.1f} % | {r['idc_recall']:.2f} ({rc}) | {r['verdict']} |")
    return "\n".join(lines) + "\n"


#: least side of a field (model pixels): two windows, so each side has a window the tiling leaves in place
MIN_FIELD_SIDE = 2 * PATCH


def field_size(text: str) -> tuple[int, int]:
    """``--size WxH`` → (width, height) of the fields in model pixels (4 µm/px), each side at least
    :data:`MIN_FIELD_SIDE`. The tiling takes any side (its last window is shifted back to end on the
    edge); a side that is not a multiple of 50 leaves that last row or column of windows unlabelled."""
    from idc_edge.errors import OptionError
    from idc_edge.sources.modes import parse_size

    try:
        w, h = parse_size(text)
    except OptionError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    if min(w, h) < MIN_FIELD_SIDE:
        raise argparse.ArgumentTypeError(f"each side of a field is at least {MIN_FIELD_SIDE} px at 4 µm/px "
                                         f"(two windows); got {w}x{h}")
    return w, h


def main(argv=None) -> int:
    """The command line; a bad option is one line and exit 2."""
    from idc_edge.errors import IdcEdgeError

    try:
        return _main(argv)
    except IdcEdgeError as e:
        print(f"camera_conditions: error: {e}", file=sys.stderr)
        return 2


def _main(argv=None) -> int:
    from idc_edge.cli.options import Parser, positive_int

    ap = Parser(prog="python -m benchmarks.camera_conditions", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(default_data_dir()))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "camera_conditions_report"))
    ap.add_argument("--model", default=None, help="a .tflite with its sidecar (default: the shipped model)")
    ap.add_argument("--fields-per-patient", type=positive_int("--fields-per-patient"), default=3)
    ap.add_argument("--size", type=field_size, default=(500, 300), metavar="WxH",
                    help="field size in pixels at 4 µm/px, each side >= 100 (default 500x300: a 2000x1200 camera "
                         "at 1 µm/px; 160x120 is a 640x480 one)")
    ap.add_argument("--agree", type=float, default=0.90, help="least decision agreement with clean for 'ok'")
    ap.add_argument("--recall-drop", type=float, default=0.10, help="largest IDC recall loss (called patches) for 'ok'")
    ap.add_argument("--only", default=None, help="comma-separated condition families to run (default all)")
    args = ap.parse_args(argv)
    fields = slide_fields(args.data, COMPLETE_VALIDATION, size=args.size, per_patient=args.fields_per_patient,
                          exact=True)
    if not fields:
        print(f"no validation slides under {args.data} give a {args.size[0]}x{args.size[1]} px field", file=sys.stderr)
        return 2
    chosen = [c for c in cases() if not args.only or c.family in args.only.split(",")]
    t0 = time.monotonic()
    report = run(fields, chosen, args.agree, args.recall_drop, model_path=args.model)
    report.update({"fields": len(fields), "field_px": list(args.size), "um_per_px": 4.0,
                   "patients": sorted({f.patient for f in fields}), "model": args.model or "shipped",
                   "agree_min": args.agree, "recall_drop_max": args.recall_drop,
                   "seconds": round(time.monotonic() - t0, 1)})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(dumps(report, indent=1))
    (out / "report.md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
