"""White-patch colour balance against blank glass, an exposure check, and glass drift during a run.

The model was trained on slides scanned under one light: bare glass there is about RGB (242,
238, 240). A microscope camera with its own lamp, auto white balance and exposure gives glass
another colour and level, and a 10 % cast changes a quarter of the decisions. With blank glass
in view, :func:`measure_white` finds the per-channel gains that bring the glass to the training
data's glass colour and checks the exposure (clipped or too dark); :class:`WhiteBalance` applies
them to every frame through one 256-entry lookup table per channel (``cv2.LUT``), not float
maths per pixel. :class:`GlassDrift` watches the glass visible beside the tissue during a run and
says when it moved away from the reference (a lamp dimming, auto white balance wandering).

Colour order: frames are **BGR** (OpenCV's); gains and glass colours are stored and reported in
**RGB** order, as people write them. Levels are on the 0–255 scale.
"""
from __future__ import annotations

import functools
import math
import numbers
from dataclasses import dataclass
from typing import NamedTuple, Optional, Sequence, Tuple

import cv2
import numpy as np

from .errors import IdcEdgeError, OptionError

#: Median colour of bare glass in the training patches (RGB, 0–255), measured on 3,000 class-0
#: patches (pixels with HSV saturation < 20 and value > 180): the colour white balance aims for.
TRAINING_GLASS_RGB: Tuple[float, float, float] = (242.0, 238.0, 240.0)


class CalibrationError(IdcEdgeError):
    """A calibration image cannot give a trustworthy result (clipped, too dark, no ruler ticks)."""


def _rgb3(values, name: str) -> Tuple[float, float, float]:
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise OptionError(f"{name} must be three numbers (R, G, B), got {values!r}") from None
    if len(out) != 3 or not all(math.isfinite(v) and v > 0 for v in out):
        raise OptionError(f"{name} must be three numbers > 0 (R, G, B), got {values!r}")
    return out  # type: ignore[return-value]


@dataclass(frozen=True)
class ExposureCheckOptions:
    """When a blank-glass frame is too bright or too dark to calibrate on.

    Attributes:
        max_clipped_fraction: largest share of pixels with any channel at ``clip_level`` or above.
        clip_level: a channel value counted as clipped (0–255).
        min_glass_level: the dimmest channel's glass level below which the frame is too dark.
        max_gain: largest gain a channel may need (a channel that needs more is too dark or
            the light has a strong cast the camera should fix itself).
        max_texture: largest median grey-level standard deviation over 5×5 pixels of the frame's
            brighter half (on its thumbnail, longest side 640 px): blank glass with camera noise
            and dust reads 0.4–5 levels, validation tissue fields 13–19 (a soft camera's 4–12);
            above it the frame is not blank glass. Above a third of it, a brighter half coloured like
            stained tissue (:func:`tissue_magenta` at least 0.12, the least of 224 tissue fields)
            is not blank glass either.
        min_side_px: least width and height of the frame.
    """

    max_clipped_fraction: float = 0.02
    clip_level: int = 254
    min_glass_level: float = 60.0
    max_gain: float = 4.0
    max_texture: float = 8.0
    min_side_px: int = 32

    def __post_init__(self):
        # checked where they enter, as every other options class: unchecked, max_gain=nan let any gain
        # through (nan compares false), and clip_level="254" failed inside numpy with a bare TypeError
        from . import validate

        def set_(name, value):
            object.__setattr__(self, name, value)

        set_("max_clipped_fraction", validate.probability("max_clipped_fraction", self.max_clipped_fraction))
        set_("clip_level", validate.whole_number("clip_level", self.clip_level, maximum=255, unit="grey levels"))
        set_("min_glass_level", validate.number("min_glass_level", self.min_glass_level, 0.0, 255.0, "grey levels"))
        set_("max_gain", validate.number("max_gain", self.max_gain, 1.0, 255.0, "a channel's gain"))
        set_("max_texture", validate.positive_number("max_texture", self.max_texture, "grey levels", maximum=255.0))
        set_("min_side_px", validate.whole_number("min_side_px", self.min_side_px, unit="pixels"))


@dataclass(frozen=True)
class WhiteCalibration:
    """The result of :func:`measure_white`.

    Attributes:
        glass_rgb: measured glass colour (RGB, 0–255), the median of the frame's brightest half.
        gains_rgb: per-channel gains (RGB) that move ``glass_rgb`` onto ``target_rgb``.
        target_rgb: the glass colour aimed for (RGB).
        clipped_fraction: share of pixels with a channel at the clip level.
        uniformity: dimmest corner's brightness / centre brightness (1.0 = evenly lit); a low
            value means uneven illumination (Köhler not set, a vignetting camera adapter).
        dust_spots: dark spots on the blank glass (:func:`dark_spots`): dust on the slide, the
            camera window or the sensor.
        darkest_spot: the share of the light the darkest spot takes (0.4 = 40 % darker than the
            glass around it), 0.0 when there is none.
    """

    glass_rgb: Tuple[float, float, float]
    gains_rgb: Tuple[float, float, float]
    target_rgb: Tuple[float, float, float]
    clipped_fraction: float
    uniformity: float
    dust_spots: int = 0
    darkest_spot: float = 0.0


def measure_white(frame_bgr: np.ndarray, target_rgb: Sequence[float] = TRAINING_GLASS_RGB,
                  options: ExposureCheckOptions = ExposureCheckOptions()) -> WhiteCalibration:
    """Per-channel gains from a frame of blank glass, after checking its exposure.

    The glass level of each channel is the median of the brighter half of the frame's pixels
    (by grey level), so a few specks of dust or a slide edge do not move it.

    Args:
        frame_bgr: uint8 **BGR** frame of blank glass, lit as for the run.
        target_rgb: the glass colour to aim for (RGB); default the training data's glass.
        options: exposure limits.

    Raises:
        CalibrationError: the frame is smaller than ``options.min_side_px``, is not blank glass
            (textured like tissue: gains from it would tint every frame), is clipped (reduce
            exposure or light), too dark (raise them), or needs a gain above ``options.max_gain``.
    """
    target = _rgb3(target_rgb, "target_rgb")
    frame = np.asarray(frame_bgr)
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3 or frame.size == 0:
        raise OptionError(f"white calibration needs a uint8 BGR frame [H, W, 3], got {frame.dtype} {list(frame.shape)}")
    if min(frame.shape[:2]) < options.min_side_px:
        raise CalibrationError(f"a white reference needs a frame of blank glass at least {options.min_side_px} px "
                               f"on each side, got {frame.shape[1]}x{frame.shape[0]} px")
    small = _thumbnail(frame)
    # texture first: a textured frame (tissue, a sensor's noise) clipped here and there is not glass,
    # whatever its exposure (pure noise was called overexposed)
    grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    brighter = grey >= np.median(grey)
    texture = _texture(grey, brighter)
    if texture > options.max_texture or (texture > options.max_texture / 3 and tissue_magenta(
            small[..., ::-1], brighter.astype(np.uint8), min_px=1) >= 0.12):
        # gains measured on tissue (163, 113, 158 read as 'glass') tinted every frame of the run green
        raise CalibrationError(
            f"the frame does not look like blank glass: its brighter half varies by {texture:.0f} grey levels "
            f"over 5x5 px (blank glass at most {options.max_texture:g}, stained tissue tens): move the slide to "
            "an empty part of the glass, or take the slide out, then calibrate again")
    clipped = float((small.max(axis=2) >= options.clip_level).mean())
    if clipped > options.max_clipped_fraction:
        raise CalibrationError(
            f"the glass is overexposed: {100 * clipped:.1f} % of pixels are clipped at {options.clip_level} "
            f"(at most {100 * options.max_clipped_fraction:.0f} %): lower the exposure time, gain or lamp, then calibrate again")
    bright = small[brighter]
    glass_bgr = np.median(bright, axis=0).astype(np.float64)
    glass = (float(glass_bgr[2]), float(glass_bgr[1]), float(glass_bgr[0]))
    if min(glass) < options.min_glass_level:
        raise CalibrationError(
            f"the glass is too dark (RGB {glass[0]:.0f}, {glass[1]:.0f}, {glass[2]:.0f}; each channel must be at least "
            f"{options.min_glass_level:.0f}): raise the exposure, gain or lamp, or check that blank glass is in view")
    gains = tuple(t / max(g, 1.0) for t, g in zip(target, glass))
    if max(gains) > options.max_gain:
        raise CalibrationError(
            f"the glass needs a gain of {max(gains):.1f} on one channel (at most {options.max_gain:g}): "
            f"raise the exposure or lamp, or set the camera's own white balance closer first")
    spots, darkest = dark_spots(grey)
    return WhiteCalibration(glass_rgb=glass, gains_rgb=gains, target_rgb=target,  # type: ignore[arg-type]
                            clipped_fraction=clipped, uniformity=_uniformity(grey), dust_spots=spots,
                            darkest_spot=darkest)


def _thumbnail(frame: np.ndarray, longest: int = 640) -> np.ndarray:
    """The frame shrunk (area average) so its longest side is at most ``longest`` pixels."""
    h, w = frame.shape[:2]
    f = max(h, w) / float(longest)
    if f <= 1.0:
        return frame
    return cv2.resize(frame, (max(1, int(round(w / f))), max(1, int(round(h / f)))), interpolation=cv2.INTER_AREA)


def _texture(grey: np.ndarray, where: np.ndarray) -> float:
    """Median over ``where`` of the grey-level standard deviation over 5×5 pixels of uint8 ``grey``."""
    g = grey.astype(np.float32)
    mean, mean_sq = cv2.blur(g, (5, 5)), cv2.blur(g * g, (5, 5))
    return float(np.median(np.sqrt(np.maximum(mean_sq - mean * mean, 0.0))[where]))


def dark_spots(grey: np.ndarray, min_darkening: float = 0.1, min_area_px: int = 9) -> tuple[int, float]:
    """(number, darkest) of the dark spots on a uint8 grey image of blank glass (its thumbnail,
    longest side at most 640 px): regions at least ``min_area_px`` pixels large and at least
    ``min_darkening`` darker than the glass around them (its median over an eighth of the image,
    which follows vignetting), not touching the image's edge (a field stop, a slide's edge).
    ``darkest`` is the largest share of the light a spot takes (0.0 with none). Dust on the camera
    sits at the same place in every frame, and the tissue under it reads darker to the model (a
    benchmark of 15-20 spots taking 80 % of the light turned IDC benign on 13 % of windows)."""
    background = cv2.medianBlur(grey, max(3, (max(grey.shape) // 8) | 1)).astype(np.float32)
    ratio = grey.astype(np.float32) / np.maximum(background, 1.0)
    dark = (ratio < 1.0 - min_darkening).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(dark, connectivity=8)
    h, w = grey.shape
    x, y, bw, bh, area = (stats[1:, i] for i in range(5))
    keep = (area >= min_area_px) & (x > 0) & (y > 0) & (x + bw < w) & (y + bh < h)
    if not keep.any():
        return 0, 0.0
    lowest = np.full(n, np.inf, np.float32)
    np.minimum.at(lowest, labels.ravel(), ratio.ravel())
    return int(keep.sum()), float(1.0 - lowest[1:][keep].min())


def _uniformity(grey: np.ndarray) -> float:
    """Mean of the dimmest of four corner blocks (1/8 of each side) over the centre block's mean."""
    h, w = grey.shape
    bh, bw = max(1, h // 8), max(1, w // 8)
    centre = float(grey[h // 2 - bh // 2: h // 2 + bh // 2 + 1, w // 2 - bw // 2: w // 2 + bw // 2 + 1].mean())
    corners = [grey[:bh, :bw], grey[:bh, -bw:], grey[-bh:, :bw], grey[-bh:, -bw:]]
    return min(float(c.mean()) for c in corners) / max(centre, 1.0)


@functools.lru_cache(maxsize=16)
def _gain_lut(gains: Tuple[float, float, float]) -> np.ndarray:
    """uint8 ``[256, 1, 3]`` table, channels in the order of ``gains``: ``round(v * gain)`` clipped to 255."""
    v = np.arange(256, dtype=np.float64)
    columns = [np.clip(np.round(v * g), 0, 255) for g in gains]
    lut = np.stack(columns, axis=1).astype(np.uint8).reshape(256, 1, 3)
    lut.flags.writeable = False
    return lut


@dataclass(frozen=True)
class WhiteBalance:
    """Per-channel gains applied to frames through a lookup table.

    Attributes:
        gains_rgb: multipliers of R, G and B (each > 0).
    """

    gains_rgb: Tuple[float, float, float]

    def __post_init__(self):
        object.__setattr__(self, "gains_rgb", _rgb3(self.gains_rgb, "white balance gains"))

    @classmethod
    def from_calibration(cls, calibration: WhiteCalibration) -> "WhiteBalance":
        return cls(calibration.gains_rgb)

    @property
    def is_identity(self) -> bool:
        return all(abs(g - 1.0) < 1e-6 for g in self.gains_rgb)

    def lut_bgr(self) -> np.ndarray:
        """The uint8 ``[256, 1, 3]`` table in **BGR** order (cached; read-only)."""
        return _gain_lut(tuple(round(g, 6) for g in self.gains_rgb[::-1]))

    def apply(self, image_bgr: np.ndarray, out: Optional[np.ndarray] = None) -> np.ndarray:
        """``image_bgr`` (uint8 **BGR** ``[H, W, 3]``) with the gains applied; a new array unless ``out``.

        For RGB images use :meth:`apply_rgb`.
        """
        return cv2.LUT(image_bgr, self.lut_bgr(), dst=out)

    def apply_rgb(self, image_rgb: np.ndarray, out: Optional[np.ndarray] = None) -> np.ndarray:
        """The same for a uint8 **RGB** image."""
        return cv2.LUT(image_rgb, _gain_lut(tuple(round(g, 6) for g in self.gains_rgb)), dst=out)


def glass_pixels(rgb: np.ndarray, max_saturation: int = 60, relative_value: float = 0.85) -> np.ndarray:
    """bool mask of glass in an **RGB** uint8 image: the bright, weakly coloured pixels.

    Glass is the brightest part of a field (HSV value at least ``relative_value`` of the 99th
    percentile) and far less saturated than stained tissue (saturation below ``max_saturation``
    on OpenCV's 0–255 scale, so a cast of up to about 20 % still counts as glass).
    """
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    value = hsv[..., 2]
    bright = value >= max(60.0, relative_value * float(np.percentile(value, 99)))
    return bright & (hsv[..., 1] < max_saturation)


#: Linear light (0–1, float64) of each 8-bit level by the sRGB transfer curve, which cameras' video
#: levels follow.
SRGB_TO_LINEAR = np.where(np.arange(256) <= 10, np.arange(256) / 255.0 / 12.92,
                          ((np.arange(256) / 255.0 + 0.055) / 1.055) ** 2.4)


def cumulative_counts(image: np.ndarray, mask: Optional[np.ndarray] = None, channel: int = 0) -> np.ndarray:
    """The cumulative 256-bin histogram (float) of one ``channel`` of a uint8 image (``[H, W]`` or
    ``[H, W, C]``) where ``mask`` (uint8, non-zero; all pixels when None) is set: entry ``v`` counts
    the pixels at or below level ``v``. Percentiles read off it are linear in the pixels instead of a sort."""
    return np.cumsum(cv2.calcHist([np.ascontiguousarray(image)], [channel],
                                  None if mask is None else np.ascontiguousarray(mask), [256], [0, 256]).ravel())


def nth_level(counts: np.ndarray, j: float) -> int:
    """The level (0–255) of the ``j``-th smallest pixel (from 0) counted by :func:`cumulative_counts`
    ``counts``: the first level whose cumulative count exceeds ``j``."""
    return min(int(np.searchsorted(counts, j, side="right")), 255)


def histogram_median(channel: np.ndarray, mask: np.ndarray) -> float:
    """The median of a uint8 ``channel``'s values where ``mask`` (uint8, non-zero) is set, exactly as
    ``np.median`` gives it (the mean of the two middle values for an even count), read off a
    256-bin histogram. NaN for an empty mask."""
    counts = cumulative_counts(channel, mask)
    k = int(round(counts[-1]))
    if k == 0:
        return float("nan")
    return (nth_level(counts, (k - 1) // 2) + nth_level(counts, k // 2)) / 2.0


def halved(image: np.ndarray) -> np.ndarray:
    """``image`` at half the size (rounded down), each pixel the mean of one 2×2 block (the last row
    or column of an odd size is left out): a camera's grain halves, and the blocks are the same
    whether the image is the field or the field with padding beyond it. At least 2×2 pixels in."""
    h, w = image.shape[:2]
    return cv2.resize(image[:h - h % 2, :w - w % 2], (w // 2, h // 2), interpolation=cv2.INTER_AREA)


def halved_mask(mask: np.ndarray) -> np.ndarray:
    """uint8 ``mask`` (``[H, W]``) at :func:`halved`'s size, each 2×2 block's value that of its
    top-left pixel: the blocks line up with :func:`halved`'s exactly, for odd sizes too."""
    h, w = mask.shape[:2]
    return every_second(np.asarray(mask, np.uint8)[: h - h % 2, : w - w % 2])


def white_levels(image: np.ndarray) -> np.ndarray:
    """Per channel, the level (0–255) of the brightest hundredth of ``image``'s pixels (uint8,
    ``[H, W, C]``): the glass's in a field that shows some, the palest tissue's otherwise."""
    rank = math.ceil(0.99 * image.shape[0] * image.shape[1]) - 1  # from 0
    return np.array([nth_level(cumulative_counts(image, channel=c), rank) for c in range(image.shape[2])], np.int64)


def every_second(image: np.ndarray) -> np.ndarray:
    """Every second pixel of every second row of ``image`` (the first of each pair), as a contiguous
    array of half the size (rounded down, at least 1): OpenCV's nearest-neighbour resize picks them
    about 6× faster than copying numpy's ``image[::2, ::2]``."""
    h, w = image.shape[:2]
    if h < 2 or w < 2:
        return np.ascontiguousarray(image[::2, ::2])
    return cv2.resize(image, (w // 2, h // 2), interpolation=cv2.INTER_NEAREST)


#: Glass is less saturated than this (HSV, OpenCV's 0–255 scale) in :func:`glass_mask`: a cast of up to
#: about 30 % with the glass clipped in its strongest channel, about 20 % where no channel clips.
GLASS_SATURATION = 45


def glass_mask(hsv: np.ndarray, level: Optional[int] = None, saturation: int = GLASS_SATURATION) -> np.ndarray:
    """uint8 mask (255 = glass) of an OpenCV HSV image (from **RGB** uint8): the brightest, least
    coloured part of a field, HSV value at least 90 % of the image's 99th percentile (and at least
    60; ``level`` when the caller has it from :func:`_bright_level`) and HSV saturation below
    ``saturation`` (0–255)."""
    hsv = np.ascontiguousarray(hsv)
    return cv2.inRange(hsv, (0, 0, _bright_level(_value_counts(hsv)) if level is None else level),
                       (255, int(saturation) - 1, 255))


def glass_mask_following_cast(hsv: np.ndarray, margin: int, most: int, flat: float) -> np.ndarray:
    """:func:`glass_mask` of an OpenCV HSV image (from **RGB** uint8), widened to glass that a cast
    colours: bright pixels (HSV value at least 90 % of the 99th percentile) less saturated than the
    bright part's median HSV saturation plus ``margin`` (at most ``most``; 0–255) count too where
    that limit exceeds :data:`GLASS_SATURATION` and they are flat: the standard deviation of the HSV
    value over their 3×3 neighbourhood below ``flat`` levels (pale tissue varies more)."""
    hsv = np.ascontiguousarray(hsv)
    level = _bright_level(_value_counts(hsv))
    glass = glass_mask(hsv, level)
    counts = cumulative_counts(hsv, cv2.inRange(hsv, (0, 0, level), (255, 255, 255)), channel=1)
    limit = min(int(most), nth_level(counts, counts[-1] // 2) + int(margin)) if counts[-1] else 0
    if limit <= GLASS_SATURATION:
        return glass
    value = hsv[..., 2].astype(np.float32)
    mean, mean_square = cv2.blur(value, (3, 3)), cv2.blur(value * value, (3, 3))
    flat_px = cv2.compare(mean_square - mean * mean, float(flat) ** 2, cv2.CMP_LT)
    coloured = cv2.inRange(hsv, (0, GLASS_SATURATION, level), (255, limit - 1, 255))
    return cv2.bitwise_or(glass, cv2.bitwise_and(coloured, flat_px))


def _value_counts(hsv: np.ndarray, mask: Optional[np.ndarray] = None) -> np.ndarray:
    """The cumulative histogram (256 bins) of the HSV value of ``hsv`` (contiguous, OpenCV's HSV),
    over ``mask`` (uint8, non-zero) when given."""
    return cumulative_counts(hsv, mask, channel=2)


def _bright_level(counts: np.ndarray) -> int:
    """The least HSV value of a field's brightest part, from its :func:`_value_counts`: 90 % of its
    99th percentile, at least 60."""
    p99 = int(np.searchsorted(counts, 0.99 * counts[-1]))
    return max(60, int(math.ceil(0.9 * p99)))


def glass_cast(rgb: np.ndarray, min_glass_fraction: float = 0.05, hsv: Optional[np.ndarray] = None) -> float:
    """How far the colour of the glass in an **RGB** uint8 frame is from the training slides' glass.

    Glass here is :func:`glass_mask` of every second pixel and row averaged over
    :data:`GLASS_BOX_PX` squares (HSV value at least 90 % of the 99th percentile and saturation
    below 45, so a cast of up to about 30 % still counts), of which the least saturated fifth is
    kept: in a field of pale stroma with a few holes the holes are the glass; averaged first, so
    that the grain of a dim or small sensor does not choose the pixels it made look neutral. Its
    median colour is reduced to chromaticity (each channel over the three's mean, so exposure does
    not count); the result is the largest relative departure of a channel from the training glass's
    chromaticity (0.1 = one channel 10 % off: a colour cast the model was not trained on). NaN when less than
    ``min_glass_fraction`` of the frame is glass (nothing to judge). ``hsv``: ``rgb`` in OpenCV's
    HSV, when the caller already has it (the tissue mask needs it too).
    """
    small, hsv = _halves(rgb, hsv)
    return _glass_cast(small, hsv, _bright_level(_value_counts(hsv)), min_glass_fraction)[0]


def _halves(rgb: np.ndarray, hsv: Optional[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(every second pixel and row of **RGB** ``rgb``, the same of its HSV), both contiguous."""
    small = every_second(rgb)
    return small, (cv2.cvtColor(small, cv2.COLOR_RGB2HSV) if hsv is None else every_second(hsv))


class FieldCasts(NamedTuple):
    """What the colour gate reads of a field's brightest parts (:func:`field_casts`).

    Attributes:
        glass: :func:`glass_cast`, NaN when too little glass is in view.
        pale: :func:`pale_cast`, measured when ``glass`` is NaN; where ``glass_clipped``, the same
            measure of the brightest pixels below the clip level in every channel (NaN otherwise).
        glass_clipped: the glass's median colour is at the clip level in one channel or more, so
            ``glass`` is only a lower bound of the cast: a cast that raises a channel cannot raise
            it past the clip level (a 50 % blue cast of glass clipped white reads 0.085, of
            unclipped glass 0.21), and glass clipped white in all three shows none of it (read
            only when no glass below the clip is in view: see :func:`_unclipped_glass`).
        pale_brightest: ``pale`` was read on the field's brightest pixels, as nothing pale is flat
            (see :func:`pale_cast`) or the glass is clipped: tissue, not glass, so it is judged
            against a wider limit.
    """

    glass: float
    pale: float
    glass_clipped: bool = False
    pale_brightest: bool = False


def field_casts(rgb: np.ndarray, hsv: Optional[np.ndarray] = None, min_fraction: float = 0.05,
                clip_levels_rgb: Sequence[int] = (254, 254, 254)) -> FieldCasts:
    """:func:`glass_cast` and :func:`pale_cast` of an **RGB** uint8 field, the second measured only
    when the first finds no glass or finds it clipped (then on the brightest pixels below the clip),
    from one half-size copy: what the colour gate reads per frame.
    ``clip_levels_rgb``: the level (R, G, B) at or above which a channel counts as clipped (lower
    where a white balance scaled a channel down)."""
    small, hsv = _halves(rgb, hsv)
    counts = _value_counts(hsv)
    glass, clipped = _glass_cast(small, hsv, _bright_level(counts), min_fraction, clip_levels_rgb)
    if math.isnan(glass):
        pale, brightest = _pale_cast(small, hsv, counts, min_fraction)
        return FieldCasts(glass, pale, clipped, brightest)
    if not clipped:
        return FieldCasts(glass, float("nan"), clipped)
    # clipped glass hides the part of a cast beyond the clip (white, all of it): the brightest
    # pixels below the clip in every channel (pale tissue, mostly) are judged as well, as tissue
    below = cv2.inRange(small, (0, 0, 0), tuple(max(0, int(c) - 1) for c in clip_levels_rgb))
    return FieldCasts(glass, _brightest_cast(small, hsv, _value_counts(hsv, below), min_fraction, below), clipped, True)


#: Side (pixels of the half-size field, so 2× that at the model's scale) of the box over which the
#: glass's colour is averaged before it is chosen and read. Chosen pixel by pixel, the least saturated
#: glass of a grainy frame is where the grain happened to cancel the cast: 250 e⁻ of shot noise read a
#: 30 % cool cast as 0.073 instead of 0.109, and such frames were called (77 % agreement, silently).
GLASS_BOX_PX = 5


def _glass_cast(small: np.ndarray, hsv: np.ndarray, level: int, min_glass_fraction: float,
                clip_levels_rgb: Sequence[int] = (254, 254, 254)) -> tuple[float, bool]:
    """(:func:`glass_cast`, whether the glass is clipped in one channel or more, see
    :class:`FieldCasts`) of the half-size field ``small`` (RGB), its ``hsv`` and brightest ``level``.

    The glass is found, chosen and read on ``small`` averaged over :data:`GLASS_BOX_PX` squares (the
    glass is flat; the grain is not), its clipping on ``small`` itself (the average of clipped grain
    is below the clip)."""
    smooth = cv2.blur(small, (GLASS_BOX_PX, GLASS_BOX_PX))
    smooth_hsv = cv2.cvtColor(smooth, cv2.COLOR_RGB2HSV)
    # the brightest level of the averaged field: the grain's own peaks would lift it above the glass
    mask = glass_mask(smooth_hsv, min(level, _bright_level(_value_counts(smooth_hsv))))
    mask = _unclipped_glass(small, smooth_hsv, mask, min_glass_fraction, clip_levels_rgb)
    n = cv2.countNonZero(mask)
    if n == 0 or n < min_glass_fraction * mask.size:
        return float("nan"), False
    cutoff = nth_level(cumulative_counts(smooth_hsv, mask, channel=1), n // 5)  # the (n // 5)-th smallest saturation
    # the glass kept: bright, unsaturated, and among the least saturated fifth of those
    kept = cv2.bitwise_and(cv2.compare(smooth_hsv[..., 1], cutoff, cv2.CMP_LE), mask)
    now = np.array([histogram_median(plane, kept) for plane in cv2.split(smooth)])
    at_clip = np.array([histogram_median(plane, kept) for plane in cv2.split(small)]) \
        >= np.asarray(clip_levels_rgb, np.float64)
    return float(np.max(np.abs(_departure(now)))), bool(at_clip.any())


def _unclipped_glass(small: np.ndarray, smooth_hsv: np.ndarray, mask: np.ndarray, min_glass_fraction: float,
                     clip_levels_rgb: Sequence[int]) -> np.ndarray:
    """The glass ``mask`` without glass at the clip level in every channel, when enough glass below it
    is in view; else ``mask`` as given.

    White at the clip has no colour left to read, and, being the brightest, it would be chosen as the
    glass: a lamp's hot spot clipped in the middle of the field, or a white border, read a cast that
    the rest of the glass shows plainly as none (a 30 % cool cast under a hot spot at 1.6× the light:
    7 of 10 validation fields with glass in view passed the colour gate). Glass that is white
    everywhere is read as it is, and counts as clipped (:attr:`FieldCasts.glass_clipped`). Pixels
    within :data:`GLASS_BOX_PX` of the white are left out too (their averages mix it in).
    """
    white = cv2.inRange(small, tuple(int(c) for c in clip_levels_rgb), (255, 255, 255))
    if not cv2.countNonZero(cv2.bitwise_and(white, mask)):
        return mask
    below = cv2.bitwise_not(cv2.dilate(white, np.ones((GLASS_BOX_PX, GLASS_BOX_PX), np.uint8)))
    level = _bright_level(_value_counts(smooth_hsv, below))
    unclipped = cv2.bitwise_and(glass_mask(smooth_hsv, level), below)
    return unclipped if cv2.countNonZero(unclipped) >= min_glass_fraction * mask.size else mask


#: Unit direction, in departures of (R, G, B) chromaticity from the training glass's, from bare glass
#: towards pale eosin-stained tissue (red up, green down, blue kept): the pale flat tissue of 25
#: fields of the training patients' complete slides lies along it (median angle −32° in the plane
#: of :data:`_MAGENTA` and :data:`_COOL`, 1st–99th percentile −37° to −13°).
PALE_TISSUE_DIRECTION: Tuple[float, float, float] = (0.721, -0.692, -0.029)
#: the two axes of the chromaticity-departure plane (their components sum to zero, as departures do)
_MAGENTA = np.array([0.5, -1.0, 0.5]) / math.sqrt(1.5)
_COOL = np.array([-1.0, 0.0, 1.0]) / math.sqrt(2.0)
_PALE_AXIS = np.array([np.asarray(PALE_TISSUE_DIRECTION) @ _MAGENTA, np.asarray(PALE_TISSUE_DIRECTION) @ _COOL])
_PALE_AXIS /= np.linalg.norm(_PALE_AXIS)
#: the palest part's flatness: grey-level standard deviation over 5×5 pixels (of the half-size frame)
_MAX_LOCAL_SD = 6.0


def _departure(now: np.ndarray) -> np.ndarray:
    """Each channel's relative departure of the chromaticity of ``now`` (R, G, B) from the training glass's."""
    target = np.asarray(TRAINING_GLASS_RGB)
    return (now / max(float(now.mean()), 1.0)) / (target / target.mean()) - 1.0


def off_stain_line(departure: Sequence[float]) -> float:
    """How far a chromaticity departure (R, G, B) lies from the line that runs from the training
    glass towards pale eosin-stained tissue (:data:`PALE_TISSUE_DIRECTION`): its distance from that
    half-line, or from its start when it points away from the tissue (a blue or green cast).
    Pale stroma and glass read near 0; a lamp's cast moves the palest part of the field off the line."""
    d = np.asarray(departure, np.float64)
    p = np.array([d @ _MAGENTA, d @ _COOL])                         # in the plane's own axes
    along = float(p @ _PALE_AXIS)
    return float(abs(p[0] * _PALE_AXIS[1] - p[1] * _PALE_AXIS[0])) if along > 0 else float(np.hypot(*p))


def pale_cast(rgb: np.ndarray, min_fraction: float = 0.05, hsv: Optional[np.ndarray] = None) -> float:
    """The colour cast of a field's palest flat part, for fields where :func:`glass_cast` finds no
    glass (a strong cast makes the glass too saturated for it, or tissue fills the view).

    The palest part is the bright pixels (HSV value at least 90 % of the 99th percentile, at any
    saturation below 140 of 255) that are also flat (grey-level standard deviation below 6 over
    5×5 pixels), on every second pixel and row of an **RGB** uint8 frame at the model's scale.
    Without a cast that is glass, a lumen, fat or pale stroma, whose chromaticity lies on the line
    from glass towards pink (:func:`off_stain_line`); a lamp's cast moves it off that line, and the
    distance is returned (0.12 is about a 40 % cool or warm cast of glass). A magenta cast moves
    along the line and is not seen (pink is what eosin looks like; the model copes with it up to
    at least 30 %). Where less than ``min_fraction`` of the frame is bright and flat (the data
    set's glass is textured, a strong cast saturates the glass, tissue fills the view), the
    brightest ``min_fraction`` of the pixels stand in, whatever their colour: clean fields filled
    with tissue read at most 0.067 that way (the colour gate allows 0.15 there), 40 % cool or warm
    casts and a 50 % blue cast at least 0.17 (such frames read nothing before, and a third of
    them were called with 12–17 % of their windows changed). ``hsv``: ``rgb`` in OpenCV's HSV when
    the caller has it.
    """
    small, hsv = _halves(rgb, hsv)
    return _pale_cast(small, hsv, _value_counts(hsv), min_fraction)[0]


def _pale_cast(small: np.ndarray, hsv: np.ndarray, counts: np.ndarray, min_fraction: float) -> tuple[float, bool]:
    """(:func:`pale_cast`, whether the brightest pixels stood in for a flat part) of the half-size
    field ``small`` (RGB), its ``hsv`` and the cumulative histogram of its value (:func:`_value_counts`)."""
    bright = cv2.inRange(hsv, (0, 0, _bright_level(counts)), (255, 139, 255))
    if cv2.countNonZero(bright) >= min_fraction * bright.size:
        v = hsv[..., 2].astype(np.float32)
        mean, mean_sq = cv2.blur(v, (5, 5)), cv2.blur(v * v, (5, 5))
        mask = cv2.bitwise_and(bright, cv2.compare(mean_sq - mean * mean, _MAX_LOCAL_SD ** 2, cv2.CMP_LT))
        if cv2.countNonZero(mask) >= min_fraction * mask.size:
            return _off_line_median(small, mask), False
    # nothing pale is flat (textured glass, a cast that saturates it, tissue edge to edge): the
    # brightest min_fraction of the pixels, whatever their colour, stand in for the palest part
    return _brightest_cast(small, hsv, counts, min_fraction), True


def _brightest_cast(small: np.ndarray, hsv: np.ndarray, counts: np.ndarray, min_fraction: float,
                    within: Optional[np.ndarray] = None) -> float:
    """:func:`off_stain_line` of the median colour of the brightest ``min_fraction`` of the pixels of
    the half-size field ``small`` (RGB) among ``within`` (uint8 mask, non-zero; all when None), from
    its ``hsv`` and the cumulative histogram of its value over ``within`` (:func:`_value_counts`);
    NaN when ``within`` is empty."""
    if counts[-1] < 1:
        return float("nan")
    mask = cv2.compare(hsv[..., 2], int(np.searchsorted(counts, (1.0 - min_fraction) * counts[-1])), cv2.CMP_GE)
    return _off_line_median(small, mask if within is None else cv2.bitwise_and(mask, within))


def _off_line_median(small: np.ndarray, mask: np.ndarray) -> float:
    """:func:`off_stain_line` of the median colour of **RGB** ``small`` over ``mask`` (uint8, non-zero)."""
    return off_stain_line(_departure(np.array([histogram_median(plane, mask) for plane in cv2.split(small)])))


#: Least :func:`tissue_magenta` a field may have to be called. Both H&E stains absorb green most,
#: so stained tissue is less green than it is red and blue: 224 camera-sized fields (480×270 px at
#: 4 µm/px) of the 28 complete slides read 0.12–0.49, and under a 15 % red or blue cast none reads
#: below 0.02. Training's strongest red/blue gains (0.75 or 1.25) bring 6 % of fields below it,
#: the palest to 0.006; a green cast of 35 % brings 66 % below it, one of 50 % 90 %, where the
#: shipped model's decisions on the rest agree with the clean field's on as little as 40 %.
MIN_TRAINED_TISSUE_MAGENTA = 0.02


def tissue_magenta(rgb: np.ndarray, tissue_px: np.ndarray, min_px: int = 5_000) -> float:
    """How much less green than red and blue a field's stained tissue is: ``((R + B) / 2 − G) / mean``
    of the mean colour of its tissue pixels (**RGB** uint8 ``rgb``, uint8 ``tissue_px`` non-zero on
    tissue), so exposure does not count. Positive for H&E; near or below 0 under a green or yellow
    cast. Read on every second pixel and row; NaN when fewer than ``min_px`` tissue pixels (of the
    full-size image) are there to judge."""
    mask = every_second(np.asarray(tissue_px, np.uint8))
    if 4 * cv2.countNonZero(mask) < min_px:
        return float("nan")
    r, g, b = cv2.mean(every_second(rgb), mask=mask)[:3]
    level = (r + g + b) / 3.0
    return float(((r + b) / 2.0 - g) / level) if level > 0 else float("nan")


@dataclass(frozen=True)
class DriftReading:
    """The glass colour of one frame against the reference.

    Attributes:
        glass_rgb: median glass colour now (RGB), or None when too little glass is in view.
        change: largest relative change of a channel, ``|now / reference - 1|`` (0.05 = 5 %).
        drifted: True when ``change`` exceeds the monitor's limit.
    """

    glass_rgb: Optional[Tuple[float, float, float]]
    change: float
    drifted: bool


class GlassDrift:
    """Watches the glass beside the tissue and tells when its colour drifts from the reference.

    Feed it the **balanced** RGB frame at the model's scale (what the detector sees); with a
    calibration applied, glass should stay at ``reference_rgb``. :meth:`update` returns a warning
    text once when the change first exceeds ``max_change`` (and again only after it came back
    below), so a run's log is not flooded.

    Args:
        reference_rgb: the glass colour expected (the calibration's target).
        max_change: largest relative change of any channel before warning (0.08 = 8 %).
        min_glass_fraction: least share of glass pixels in the frame to judge at all.
    """

    def __init__(self, reference_rgb: Sequence[float] = TRAINING_GLASS_RGB, max_change: float = 0.08,
                 min_glass_fraction: float = 0.02):
        from . import validate

        self.reference = np.array(_rgb3(reference_rgb, "reference glass colour"))
        # checked as numbers: text failed inside the comparison with a bare TypeError, and a NaN or
        # infinite glass share switched the drift check off without a word (no frame ever had that much)
        if (isinstance(max_change, bool) or not isinstance(max_change, numbers.Real)
                or not 0.0 < max_change < 1.0):
            raise OptionError(f"glass drift limit must be between 0 and 1 (a fraction), got {max_change!r:.40}",
                              option="max_change")
        self.max_change = float(max_change)
        self.min_glass_fraction = validate.probability("min_glass_fraction", min_glass_fraction)
        self._warned = False

    def measure(self, rgb: np.ndarray) -> DriftReading:
        """The glass colour of ``rgb`` (uint8 **RGB**) against the reference, without warning state."""
        mask = glass_pixels(rgb)
        if mask.mean() < self.min_glass_fraction:
            return DriftReading(None, 0.0, False)
        now = np.median(rgb[mask], axis=0).astype(np.float64)
        change = float(np.max(np.abs(now / self.reference - 1.0)))
        return DriftReading((float(now[0]), float(now[1]), float(now[2])), change, change > self.max_change)

    def update(self, rgb: np.ndarray) -> Optional[str]:
        """A warning text the first time the glass drifts past the limit, else None."""
        reading = self.measure(rgb)
        if reading.glass_rgb is None:
            return None
        if reading.drifted and not self._warned:
            self._warned = True
            r, g, b = reading.glass_rgb
            return (f"the glass colour drifted {100 * reading.change:.0f} % from the white reference "
                    f"(now RGB {r:.0f}, {g:.0f}, {b:.0f}; limit {100 * self.max_change:.0f} %): the lamp or the "
                    f"camera's exposure or white balance changed; lock them and run `idc-edge calibrate white` again")
        if not reading.drifted:
            self._warned = False
        return None
