"""Microns per pixel from an image of a stage micrometer (a ruler with ticks a known distance apart).

A wrong scale silently erases IDC (3× too large took IDC from 32.6 % to 0.5 % of tissue), so the
scale is measured, not typed. The ticks of a ruler are a regular comb: its strongest spatial
frequency gives the tick period in pixels, and ``um_per_px = spacing_um / period_px``.

1. The direction across the ticks is the image's dominant gradient orientation (the structure
   tensor): the ticks' long edges carry most of the gradient energy, so a ruler turned by any
   angle is fine.
2. The image is turned so the ticks stand upright and averaged down its columns: the ruler
   becomes a 1-D comb. The strongest frequency of that profile's spectrum is
   the tick frequency (checked to be the comb's fundamental, not a harmonic), refined on a fine
   frequency grid with a parabola through the top: typically within 0.1 % over a few dozen ticks.
3. A peak that does not stand well above the spectrum's background means there are no regular
   ticks in view: :class:`~idc_edge.colour.CalibrationError`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .colour import CalibrationError
from . import validate
from .budget import check_buffer
from .errors import OptionError


@dataclass(frozen=True)
class TickMeasurement:
    """The ruler found in an image.

    Attributes:
        period_px: distance between neighbouring ticks in pixels (along the ruler).
        angle_deg: direction of the ruler against the image's x axis, in degrees.
        peak_ratio: the comb's spectral peak over the spectrum's median near it (how clearly ticks show).
        ticks_in_view: about how many tick periods the image spans along the ruler.
    """

    period_px: float
    angle_deg: float
    peak_ratio: float
    ticks_in_view: float

    def um_per_px(self, spacing_um: float) -> float:
        """Microns per pixel for ticks ``spacing_um`` microns apart.

        Raises:
            OptionError: ``spacing_um`` is outside :data:`~idc_edge.validate.SPACING_UM_RANGE`, or the
                scale it gives outside :data:`~idc_edge.validate.UM_PER_PX_RANGE`.
        """
        spacing = validate.spacing_um("spacing_um", spacing_um)
        um = spacing / self.period_px
        why = validate.implausible_um_per_px(um)
        if why:
            raise OptionError(f"the measured scale (ticks {self.period_px:g} px apart, spacing_um {spacing:g} µm) is "
                              f"{why}; check spacing_um and that the image shows the micrometer's ticks",
                              options=["spacing_um"])
        return um


def _grey(image: np.ndarray) -> np.ndarray:
    if image is None or not isinstance(image, np.ndarray) or image.size == 0:
        raise OptionError("scale calibration needs an image array")
    if image.ndim == 3:
        image = cv2.cvtColor(np.ascontiguousarray(image[..., :3]), cv2.COLOR_BGR2GRAY) if image.shape[2] >= 3 \
            else image[..., 0]
    return image.astype(np.float32)


def _parabola(left: float, mid: float, right: float) -> float:
    """Offset (−0.5..0.5) of the top of the parabola through three equally spaced values."""
    den = left - 2.0 * mid + right
    return 0.0 if den >= 0 else float(np.clip(0.5 * (left - right) / den, -0.5, 0.5))


def _ruler_direction(grey: np.ndarray) -> float:
    """Direction (radians) across the ticks: the dominant gradient orientation (structure tensor).

    The ticks' long edges carry most of the gradient energy; a base line along the ruler is at a
    right angle to them and does not tilt the principal direction.
    """
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
    jxx, jyy, jxy = float((gx * gx).sum()), float((gy * gy).sum()), float((gx * gy).sum())
    return 0.5 * math.atan2(2.0 * jxy, jxx - jyy)


def _profile_across(grey: np.ndarray, ux: float, uy: float) -> np.ndarray:
    """Mean grey level (minus the image mean) along lines at a right angle to ``(ux, uy)``, one per pixel step.

    The image is turned (bilinear) so that ``(ux, uy)`` points along +x, and each column of the
    turned image is averaged over the pixels that came from inside the original.
    """
    h, w = grey.shape
    vx, vy = -uy, ux
    out_w = int(math.ceil(abs(w * ux) + abs(h * uy)))
    out_h = int(math.ceil(abs(w * uy) + abs(h * ux)))
    check_buffer((out_h, out_w), 4, f"turning the {w}×{h} px micrometer image upright ({out_w}×{out_h} px)",
                 "use a smaller image of the micrometer")
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    ox, oy = (out_w - 1) / 2.0, (out_h - 1) / 2.0
    m = np.array([[ux, vx, cx - ux * ox - vx * oy], [uy, vy, cy - uy * ox - vy * oy]], np.float64)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    turned = cv2.warpAffine(grey - float(grey.mean()), m, (out_w, out_h), flags=flags, borderValue=0.0)
    inside = cv2.warpAffine(np.ones_like(grey), m, (out_w, out_h), flags=flags, borderValue=0.0)
    weight = inside.sum(axis=0)
    profile = turned.sum(axis=0) / np.maximum(weight, 1e-6)
    keep = weight >= 0.25 * weight.max()  # columns that cross only a corner are mostly guesswork
    first, last = int(np.argmax(keep)), int(keep.size - np.argmax(keep[::-1]))
    return profile[first:last].astype(np.float64)


def measure_ticks(image: np.ndarray, min_period_px: float = 3.0, min_ticks: float = 4.0,
                  min_peak_ratio: float = 6.0) -> TickMeasurement:
    """The tick period of a stage micrometer in an image (BGR or grey, any size).

    Args:
        image: the micrometer, in focus, the ruler filling a good part of the frame.
        min_period_px: shortest period accepted (ticks closer than this alias).
        min_ticks: fewest periods that must fit along the ruler's direction.
        min_peak_ratio: how far the comb's peak must stand above the spectrum's median within ±30 % of its frequency.

    Raises:
        CalibrationError: no regular ticks found (message says what to do).
    """
    if isinstance(image, np.ndarray):
        check_buffer(image.shape[:2], 4, f"the {image.shape[1]}×{image.shape[0]} px micrometer image in floating point",
                     "use a smaller image of the micrometer")
    grey = _grey(image)
    h, w = grey.shape
    if min(h, w) < 16:
        raise CalibrationError(f"the micrometer image is {w}x{h} pixels: too small to find ticks in")
    theta = _ruler_direction(grey)
    ux, uy = math.cos(theta), math.sin(theta)
    profile = _profile_across(grey, ux, uy)
    profile = profile * np.hanning(profile.size)
    positions = np.arange(profile.size, dtype=np.float64)
    length = float(profile.size - 1)
    # coarse: the strongest frequency of the zero-padded spectrum within the allowed band
    n = 1 << int(math.ceil(math.log2(profile.size * 8)))
    spec = np.abs(np.fft.rfft(profile, n))
    freqs = np.fft.rfftfreq(n)  # cycles per pixel
    allowed = (freqs >= min_ticks / length) & (freqs <= 1.0 / min_period_px)
    if not allowed.any():
        raise CalibrationError(f"the micrometer image ({w}x{h}) is too small for {min_ticks:g} ticks of at least "
                               f"{min_period_px:g} px")
    k = int(np.flatnonzero(allowed)[np.argmax(spec[allowed])])  # within the band, even for a flat spectrum
    # against the spectrum near the peak (±30 %): a comb's peak is sharp, a texture's hump is not
    near = allowed & (freqs >= 0.7 * freqs[k]) & (freqs <= 1.3 * freqs[k])
    ratio = float(spec[k] / (np.median(spec[near]) + 1e-9))
    if not ratio >= min_peak_ratio:  # NaN (a blank image has no spectrum at all) is no ticks either
        raise CalibrationError(
            f"no regular ruler ticks found (the strongest periodic pattern is only {ratio:.1f}x the background, "
            f"{min_peak_ratio:g}x needed): put the stage micrometer in view, in focus, with its ticks across "
            "most of the frame")
    freq = float(freqs[k])

    def strength(frequencies: np.ndarray) -> np.ndarray:
        return np.abs(np.exp(-2j * np.pi * np.outer(frequencies, positions)) @ profile)

    for _ in range(4):  # a comb's fundamental: halve while half the frequency holds most of the energy
        half = strength(np.array([freq / 2.0, freq]))
        if freq / 2.0 * length >= min_ticks and half[0] > 0.6 * half[1]:
            freq /= 2.0
        else:
            break
    # fine: the exact spectrum on a grid of 1/40 bin around the peak, then a parabola through the top
    grid = freq + np.linspace(-2.0, 2.0, 161) / length
    s = strength(grid)
    i = int(np.argmax(s))
    freq = float(grid[i] + (_parabola(s[i - 1], s[i], s[i + 1]) * (grid[1] - grid[0]) if 0 < i < s.size - 1 else 0.0))
    period = 1.0 / freq
    ticks = length / period
    if period < min_period_px:
        raise CalibrationError(f"the ticks are {period:.1f} px apart, closer than {min_period_px:g} px: use the "
                               "full-size frame or a higher magnification")
    if ticks < min_ticks:
        raise CalibrationError(f"only {ticks:.1f} tick periods are in view (at least {min_ticks:g} needed): "
                               "use a lower magnification or move more of the ruler into view")
    return TickMeasurement(period_px=period, angle_deg=math.degrees(theta), peak_ratio=ratio, ticks_in_view=ticks)
