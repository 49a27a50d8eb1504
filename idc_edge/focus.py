"""Focus, exposure, colour and noise gates: where the model's answer cannot be trusted, make no call.

Blurred cancer looks benign to the model (8 µm of defocus: IDC recall 0.05), so an
out-of-focus field must be reported as "no call", never as "no IDC". The same holds where
the camera clipped the tissue's colours or the field is too dark to see.

**Sharpness** is measured on the frame at the model's scale (4 µm/px, what the model sees),
on tissue pixels only (glass has no structure and would count as blur): per pixel the squared
Laplacian and the squared gradient of the grey level, after a light Gaussian (σ 0.5 px) that
takes the edge off camera noise; a patch's sharpness is

    sqrt(sum of Laplacian² / sum of gradient²)   over its tissue pixels, in 1/px,

an effective spatial frequency: it does not depend on stain strength or brightness (both
sums scale alike), and blur lowers it (a Gaussian blur of σ px removes the high frequencies
first). The frame's sharpness is the same ratio over all its tissue pixels. Sums per patch
come from integral images, so overlap costs nothing extra.

The thresholds were chosen from data by ``benchmarks/focus_threshold.py``: validation patches
blurred by ``train.camera_sim.defocus``, a model's IDC recall against the blur, and the
sharpness where that recall collapses (see the numbers in :class:`FocusOptions`).

**Exposure**: a frame is too dark when even its brightest part (99th percentile of grey) stays
below ``min_white``; a tissue patch is badly exposed when many of its tissue pixels have a
channel at the clip level (colour lost in the highlights).

**Colour** and **noise** judge the glass in view, for the whole frame: its cast
(:func:`~idc_edge.colour.glass_cast`) and its grain (:func:`~idc_edge.noise.glass_noise`).
Grain is judged on the tissue as well (:func:`~idc_edge.noise.tissue_noise`), so a field with no
glass in view is judged too.

All inputs are **RGB** uint8 at the model's scale, padded to the grid (as the detector makes them).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

from . import validate
from .colour import MIN_TRAINED_TISSUE_MAGENTA, field_casts, halved, halved_mask, tissue_magenta, white_levels
from .ink import MIN_STROKE_LENGTH_PX, ink_pixels, stroke_length_px
from .faint import MIN_COLOUR_STRENGTH, colour_strength
from .glare import MAX_DARKEST_TISSUE, MAX_WASHED_COLOUR_STRENGTH, darkest_channel, darkest_faint_tissue, darkest_tissue
from .stains import MIN_STAIN_BLUENESS, StainReading, stain_reading
from .noise import glass_noise, tissue_noise
from .tiling import TileGrid, patch_sums


@dataclass(frozen=True)
class FocusOptions:
    """When a field or patch counts as in focus.

    The defaults come from ``benchmarks/focus_threshold.py`` on 11,712 validation patches: in
    focus their sharpness has median 2.67 (5th percentile 2.07); the first-generation model's
    IDC recall fell from 0.91 to 0.80 at a Gaussian defocus of σ 3.4 µm, where the median
    sharpness is 1.18 (the frame threshold), and to 0.50 at σ 5.1 µm, median 0.82 (the patch
    threshold). The shipped camera-trained model holds up longer (IDC recall 0.90 in focus, 0.87
    at σ 4 µm, 0.80 at σ 6.1 µm, where the median sharpness is 0.71: ``benchmarks/focus_report``),
    so for it these thresholds are conservative; they are kept because a blurred field is better
    refused early, and a stricter gate also refuses fields magnified by a ``um_per_px`` 2–3× too large.

    A streak (the stage moving during the exposure) blurs one direction only and can leave the
    frame's sharpness above ``frame_threshold``: the sharpness along the weakest direction over the
    strongest (:func:`isotropy`) reads 0.81–0.95 on 224 clean fields of the 28 complete slides and
    at least 0.73 after mild defocus, noise, JPEG, sharpening, colour fringes or a USB camera; a
    streak of 16 µm reads 0.72–0.92 (the shipped model still agrees 98 %), of 32 µm 0.49–0.83 along
    the rows and 0.58–0.74 at 45° (on training patients' slides the model kept only 82–90 % of its
    decisions there), and of 64 µm in any direction 0.33–0.59, where its decisions agree only 85–90 %
    with the still field's (IDC called benign). Below ``min_isotropy`` the frame is not in focus.

    A lens that focuses colours apart (axial chromatic aberration of a camera adapter or an eyepiece
    camera) blurs one or two colour channels while the grey stays sharp; the model reads nuclei in
    red and called IDC benign when red alone was blurred (σ 4 µm: 79 % agreement, IDC recall 0.64;
    σ 8 µm: 50 %, 0.03). The least sharp channel's :func:`channel_sharpness` over the sharpest's
    reads 0.74–0.99 (1st–99th percentile) on 132–426 clean camera-sized fields of 33 slides, at
    least 0.50 after the USB cameras, noise, JPEG, casts, clipping and stain changes of the
    benchmark, and 0.30–0.53 with one or two channels blurred by σ 3 µm. Below
    ``min_channel_ratio`` the frame is not in focus. Through JPEG or YUV 4:2:0, which keep colour at
    less than the luma's resolution, a blurred red borrows the luma's fine detail and is mostly not
    seen (README).

    Attributes:
        frame_threshold: least frame sharpness (1/px at 4 µm/px) for a frame to be in focus.
        patch_threshold: least sharpness of one tissue patch; below it that patch is no call
            (a tilted slide or thick section can blur part of a field).
        min_tissue_px: fewest tissue pixels for a sharpness to be judged at all (a frame or
            patch with less tissue is not flagged).
        min_isotropy: least :func:`isotropy` of a frame's tissue; below it the frame is streaked
            (motion blur) and not in focus. 0 switches the streak check off.
        min_field_px: least pixels of the frame at the model's scale for its isotropy to be judged
            (in a smaller field one straight edge, a fold or the section's border, outweighs the
            texture). 19,200 is 160×120, a 640×480 camera at 1 µm/px: there 1 of 140 clean fields of
            the 28 complete slides reads below 0.70 (0.62), and every 64 µm streak does.
        min_channel_ratio: least sharpness of the least sharp colour channel over the sharpest's
            (:func:`channel_sharpness`); below it one colour is out of focus and so is the frame.
            0 switches the check off.
        min_channel_band_ratio: the same one octave coarser (:func:`band_sharpness`), which JPEG's
            and YUV 4:2:0's colour does not hide; 0 switches that check off.
        enabled: False switches the focus gate off (everything counts as in focus).
    """

    frame_threshold: float = 1.18
    patch_threshold: float = 0.82
    min_tissue_px: int = 200
    min_isotropy: float = 0.70
    min_field_px: int = 19_200
    min_channel_ratio: float = 0.48
    min_channel_band_ratio: float = 0.66
    enabled: bool = True

    def __post_init__(self):
        for name in ("frame_threshold", "patch_threshold"):
            object.__setattr__(self, name, validate.number(name, getattr(self, name), 0.0, math.inf, "sharpness, 1/px"))
        object.__setattr__(self, "min_tissue_px", validate.whole_number("min_tissue_px", self.min_tissue_px,
                                                                        unit="tissue pixels"))
        object.__setattr__(self, "min_isotropy", validate.number("min_isotropy", self.min_isotropy, 0.0, 1.0,
                                                                 "weakest over strongest direction's sharpness"))
        object.__setattr__(self, "min_field_px", validate.whole_number("min_field_px", self.min_field_px,
                                                                       unit="pixels at the model's scale"))
        object.__setattr__(self, "min_channel_ratio", validate.number(
            "min_channel_ratio", self.min_channel_ratio, 0.0, 1.0, "least over most sharp colour channel"))
        object.__setattr__(self, "min_channel_band_ratio", validate.number(
            "min_channel_band_ratio", self.min_channel_band_ratio, 0.0, 1.0,
            "least over most sharp colour channel, one octave coarser"))
        object.__setattr__(self, "enabled", validate.flag("enabled", self.enabled))


@dataclass(frozen=True)
class ExposureOptions:
    """When a field or patch counts as badly exposed. Levels are 0–255.

    ``min_white`` 170 comes from ``benchmarks/camera_gates.py`` and ``benchmarks/camera_conditions.py``:
    on real validation fields of 500×300 px at 4 µm/px the brightest part (glass, lumen, fat) is at
    208 or above (5th percentile 236); the shipped camera-trained model keeps ≥ 95 % of its
    decisions down to an exposure of ×0.4 (white level 170, median) but not at ×0.3 (149: 87 %) or
    in low light (×0.3 at 300 e⁻: 160, 66 %). A small field need not hold anything bright (13 % of
    50×50 px tissue fields stay below 200, none below 150), so fields under ``large_field_px`` are judged against
    ``min_white_medium`` (150) from ``medium_field_px`` (160×120, a 640×480 camera at 1 µm/px) and
    ``min_white_small`` (100: only a frame that is dark all over) below it. Fields of 160×120 to
    320×180 px of the 28 complete slides read 160 or more even when 95 % tissue (5 of 894 below
    165, none below 150); low light ×0.3 at 300 e⁻ reads 105–161 there, and with 100 such frames
    were judged by their grain alone, which let 27 % of 160×120 fields through at 72 % agreement.

    Black inside a window misleads the model far more than white (which it saw as glass in
    training): a black band 2 px wide along one side of a 50 px window (4 % of it) changes 21 % of
    the shipped model's decisions on 3,000 validation patches, a white one 4 %. A microscope camera
    often shows black: outside the round field stop, a black border or bar. So a tissue window with
    more than ``max_unlit_fraction`` of unlit pixels (every channel below ``unlit_level``) is no
    call (counted as exposure); 0.5 % of the tissue windows of 200 clean validation fields hold that
    much (ink, debris). Black seen through stray light is a flat grey above that level; wide grey
    regions darker than two thirds of the field's white count as unlit too (:func:`grey_black`).

    Attributes:
        min_white: the frame's 99th percentile of grey must reach this (else too dark).
        min_white_medium: the same for frames smaller than ``large_field_px`` but not than ``medium_field_px``.
        min_white_small: the same for frames smaller than ``medium_field_px``.
        large_field_px: least pixels at the model's scale for ``min_white`` (300×200 = 60,000).
        medium_field_px: least pixels at the model's scale for ``min_white_medium`` (160×120 = 19,200).
        clip_level: a channel at or above it counts as clipped.
        max_clipped_fraction: largest share of a patch's tissue pixels with a clipped channel.
        unlit_level: a pixel whose channels are all below it is unlit (0–255; the tissue mask's
            ``min_value`` 40 calls such a pixel not tissue, too dark to be stained slide); 0 marks
            nothing unlit, :func:`grey_black` included.
        max_unlit_fraction: largest share of a patch's pixels that may be unlit.
        max_darkest_tissue: the most light (a fraction of the field's brightest, linear) the darkest
            hundredth of the tissue may let through (:func:`~idc_edge.glare.darkest_tissue`); above it
            stray light washes the nuclei out and the frame is no call (1 switches it off).
        max_washed_colour_strength: the most colour (:func:`~idc_edge.faint.colour_strength`, 0–255) a
            field above ``max_darkest_tissue`` may keep and still count as washed out: stray light
            desaturates, pale stroma filling a small field does not (see
            :data:`~idc_edge.glare.MAX_WASHED_COLOUR_STRENGTH`); 255 judges the darkest tissue alone.
        min_tissue_px: least tissue pixels at the model's scale for the darkest tissue to be judged.
        enabled: False switches the exposure gate off.
    """

    min_white: int = 170
    min_white_medium: int = 150
    min_white_small: int = 100
    large_field_px: int = 60_000
    medium_field_px: int = 19_200
    clip_level: int = 250
    max_clipped_fraction: float = 0.3
    unlit_level: int = 40
    max_unlit_fraction: float = 0.02
    max_darkest_tissue: float = MAX_DARKEST_TISSUE
    max_washed_colour_strength: float = MAX_WASHED_COLOUR_STRENGTH
    min_tissue_px: int = 5_000
    enabled: bool = True

    def __post_init__(self):
        for name in ("large_field_px", "medium_field_px", "min_tissue_px"):
            object.__setattr__(self, name, validate.whole_number(name, getattr(self, name),
                                                                 unit="pixels at the model's scale"))
        for name in ("min_white", "min_white_medium", "min_white_small", "clip_level", "unlit_level"):
            object.__setattr__(self, name, validate.whole_number(name, getattr(self, name), minimum=0, maximum=255,
                                                                 unit="grey levels"))
        for name in ("max_clipped_fraction", "max_unlit_fraction", "max_darkest_tissue"):
            object.__setattr__(self, name, validate.probability(name, getattr(self, name)))
        object.__setattr__(self, "max_washed_colour_strength", validate.number(
            "max_washed_colour_strength", self.max_washed_colour_strength, 0.0, 255.0, "HSV saturation, 0-255"))
        object.__setattr__(self, "enabled", validate.flag("enabled", self.enabled))


@dataclass(frozen=True)
class ColourOptions:
    """When a field's colour cannot be trusted: its glass is tinted (a lamp, LED or camera white
    balance the model was never trained on, and no white profile to undo it).

    The default comes from ``benchmarks/camera_gates.py`` on real validation fields (clean fields
    measure at most 0.016) and from the shipped model, trained with red and blue gains of 0.75–1.25:
    0.10 is about a 30 % cast, beyond what it was trained on. See README ("What the camera does,
    and when idc-edge says no call").

    Where no glass is recognised (a cast of about 40 % makes it too saturated to be told from
    tissue, or tissue fills the view), the field's palest flat part is judged instead
    (:func:`~idc_edge.colour.pale_cast`): clean validation fields read at most 0.073 there, a 40 %
    cool or warm cast 0.18–0.28.

    Glass clipped in one or two channels hides part of a cast (the raised channel cannot rise past
    the clip level), so such glass is judged against ``max_clipped_glass_cast`` instead. Glass clipped
    white in all three shows none of it: where enough glass below the clip is in view (a lamp's hot
    spot, a white border) that glass is read instead; where all of it is white, it is judged as
    clipped glass, the brightest pixels below the clip with it.

    Whatever the glass shows, the tissue itself must be less green than it is red and blue
    (:func:`~idc_edge.colour.tissue_magenta` at least ``min_tissue_magenta``), as H&E-stained tissue
    always was in training, casts included (:data:`~idc_edge.colour.MIN_TRAINED_TISSUE_MAGENTA`):
    a strong green or yellow cast is no call even where no glass or pale part is in view.

    And the tissue's two stains must be coloured as H&E's are (:func:`~idc_edge.stains.stain_reading`):
    the one that absorbs less green the bluer, by at least ``min_stain_blueness``. Red and blue
    swapped (RGB frames given as BGR) or a camera's hue turned by +30 to +40° is no call, said apart
    from a cast (:attr:`FrameQuality.stain_ok`), since white balance cannot mend it.

    Attributes:
        max_glass_cast: largest relative departure of a channel of the glass's chromaticity from
            the training glass's (:func:`~idc_edge.colour.glass_cast`); above it the frame is no call.
        max_brightest_cast: the same limit where nothing pale is flat and the field's brightest
            pixels were judged instead (:attr:`~idc_edge.colour.FieldCasts.pale_brightest`): those
            are tissue, whose colour varies more than glass's (clean fields filled with tissue read
            at most 0.067, a synthetic field with lilac pale spaces 0.12, a typical USB camera's
            15 % cast up to 0.16), while 40 % cool or warm casts and a 50 % blue cast read at least
            0.17. Not judged on a grainy frame (its noise picks those pixels): that is no call for
            its grain.
        max_clipped_glass_cast: the same limit for glass at the clip level in one channel or more
            (:attr:`~idc_edge.colour.FieldCasts.glass_clipped`), whose reading is only a
            lower bound of the cast: glass clipped white reads a 15 % cool cast (a typical USB
            camera's) as 0.056 and a 20 % cool cast 0.073, where the shipped model agrees ≥ 96 %
            with the clean field, but a 50 % blue cast only 0.085 (0.21 unclipped) and a 50 % green
            one 0.094, where it called benign tissue IDC (blue) and IDC benign (green).
        max_pale_cast: largest distance of the palest flat part's chromaticity from the line between
            glass and pale eosin-stained tissue (:func:`~idc_edge.colour.pale_cast`), judged when no
            glass is recognised; above it the frame is no call.
        min_field_px: least pixels of the frame at the model's scale for its colour to be judged
            (a smaller field's brightest part is too often pale tissue: 13 % of 50×50 px fields).
            With 60,000 (300×200) a 640×480 camera at 1 µm/px (160×120 at the model's scale) was
            never judged, and 40-50 % casts passed it silently; at 8,000 no field of 982 clean
            160×120 and 120×90 ones of all 230 patients is no call, and a 40 % cool or 50 % blue
            cast is no call on all 462 of the 160×120 ones.
        min_tissue_magenta: least :func:`~idc_edge.colour.tissue_magenta` of the tissue in view
            (a fraction of its brightness, may be negative); below it the frame is no call.
        min_stain_blueness: least :attr:`~idc_edge.stains.StainReading.contrast` of the tissue in view
            (a log ratio, see :data:`~idc_edge.stains.MIN_STAIN_BLUENESS`); below it the frame is no call.
        min_tissue_px: least tissue pixels at the model's scale for the tissue's colour to be judged.
        max_ink_fraction: largest share of a window that may be marker ink (:func:`~idc_edge.ink.ink_pixels`:
            yellow, green, cyan or blue, which H&E never is, or a broad stretch that lets through too
            little red, as blue, violet and black ink over tissue do); a tissue window with more is no call
            (judged with the focus and exposure gates' per-window sums; 1 switches it off).
        min_colour_strength: least :func:`~idc_edge.faint.colour_strength` of a field of which at least
            :data:`~idc_edge.faint.MIN_ABSORBING_SHARE` absorbs light (OpenCV's 0–255 saturation); below
            it the colours are too faint for stained tissue (a camera's saturation turned down, a
            grey stream) and the frame is no call, said apart from a cast (:attr:`FrameQuality.faint_colour`).
            0 switches it off.
        min_ink_stroke_px: least length, in pixels at the model's scale (120 = 480 µm), of a marker
            stroke finer than the disc that finds broad ink (56 µm), found by its straight, unbroken
            run (:data:`~idc_edge.ink.MIN_STROKE_LENGTH_PX`, :func:`~idc_edge.ink.fine_strokes`); on a
            field smaller than 500×300 px less, down to 60 (:func:`~idc_edge.ink.stroke_length_px`); 0
            looks for broad ink only.
        enabled: False switches the colour gate off.
    """

    max_glass_cast: float = 0.10
    max_clipped_glass_cast: float = 0.08
    max_pale_cast: float = 0.12
    max_brightest_cast: float = 0.15
    min_field_px: int = 8_000
    min_tissue_magenta: float = MIN_TRAINED_TISSUE_MAGENTA
    min_stain_blueness: float = MIN_STAIN_BLUENESS
    min_tissue_px: int = 5_000
    max_ink_fraction: float = 0.05
    min_ink_stroke_px: int = MIN_STROKE_LENGTH_PX
    min_colour_strength: float = MIN_COLOUR_STRENGTH
    enabled: bool = True

    def __post_init__(self):
        object.__setattr__(self, "max_glass_cast", validate.positive_number("max_glass_cast", self.max_glass_cast,
                                                                            "largest glass cast, a fraction"))
        object.__setattr__(self, "max_brightest_cast", validate.positive_number(
            "max_brightest_cast", self.max_brightest_cast, "largest cast of the brightest pixels, a fraction"))
        object.__setattr__(self, "max_clipped_glass_cast", validate.positive_number(
            "max_clipped_glass_cast", self.max_clipped_glass_cast, "largest cast of clipped glass, a fraction"))
        object.__setattr__(self, "max_pale_cast", validate.positive_number("max_pale_cast", self.max_pale_cast,
                                                                           "largest cast of the palest part, a fraction"))
        object.__setattr__(self, "min_field_px", validate.whole_number("min_field_px", self.min_field_px,
                                                                       unit="pixels at the model's scale"))
        object.__setattr__(self, "min_tissue_magenta", validate.number(
            "min_tissue_magenta", self.min_tissue_magenta, -1.0, 1.0, "a fraction of the tissue's brightness"))
        object.__setattr__(self, "min_stain_blueness", validate.number(
            "min_stain_blueness", self.min_stain_blueness, -10.0, 10.0, "a log ratio of the stains' red and blue"))
        object.__setattr__(self, "min_tissue_px", validate.whole_number("min_tissue_px", self.min_tissue_px,
                                                                        unit="pixels at the model's scale"))
        object.__setattr__(self, "max_ink_fraction", validate.probability("max_ink_fraction", self.max_ink_fraction))
        object.__setattr__(self, "min_ink_stroke_px", validate.whole_number(
            "min_ink_stroke_px", self.min_ink_stroke_px, minimum=0, unit="pixels at the model's scale"))
        object.__setattr__(self, "min_colour_strength", validate.number(
            "min_colour_strength", self.min_colour_strength, 0.0, 255.0, "saturation, OpenCV's 0-255 scale"))
        object.__setattr__(self, "enabled", validate.flag("enabled", self.enabled))


@dataclass(frozen=True)
class NoiseOptions:
    """When a field is too noisy for the model: grain on its glass or on its tissue (a dim lamp, a
    short exposure, a high gain) beyond what the model was trained on. One gate: the frame is no
    call when either measure is above its threshold.

    The defaults come from ``benchmarks/camera_gates.py`` on 400 real validation fields and from
    the shipped model (``benchmarks/camera_conditions.py``): clean fields' glass measures at most
    0.05 grey levels (the data set's glass is nearly noiseless) and 250 e⁻ at white at 4 µm/px
    (model agreement 96–97 %) at most 4.1; the model's agreement falls below 90 % near 100 e⁻ at
    white (noise 5.0, median; 92 % at 120 e⁻, 4.5). A fifth of the fields show no glass to judge;
    their tissue is: clean fields' tissue measures 1.9–4.0 (median 2.6), 250 e⁻ at most 11.8,
    100 e⁻ at least 13.1 (median 16.6); at 1 µm/px 20 e⁻ at white per camera pixel (agreement 98 %)
    reads 7.9–13.0 (6 of 400 fields above 12.5), 6 e⁻ (agreement 77 %) at least 17.5. Grain so
    heavy that the glass itself breaks up (below about 30 e⁻ at white) also makes the tissue look
    sharper than any slide: clean fields reach 3.35 (1/px), 10 e⁻ at white at least 4.28. See
    :mod:`idc_edge.noise` and README ("What the camera does, and when idc-edge says no call").

    Attributes:
        max_noise: largest noise (σ in grey levels at the model's scale, :func:`~idc_edge.noise.glass_noise`);
            above it the frame is no call.
        min_glass_px: fewest pixels of glass interior at the model's scale for the noise to be judged
            (a field covered by tissue has nothing flat to measure on; its tissue is judged instead).
        max_tissue_noise: largest noise on the tissue (σ in levels of one channel at the model's scale,
            :func:`~idc_edge.noise.tissue_noise`); above it the frame is no call, glass or not.
        min_tissue_px: fewest usable tissue pixels at the model's scale for the tissue's noise to be judged.
        max_sharpness: largest frame sharpness (1/px at the model's scale, see :class:`FocusOptions`)
            before the tissue's fine structure counts as grain (measured while the focus gate is on).
        min_field_px: least pixels of the frame at the model's scale for any of these to be judged (the
            sharpness of a small field, a single patch, varies too much with what it shows). At 8,000
            (about three patches) no clean field of 982 at 160×120 and 120×90 px is no call, and
            100 e⁻ at white is on 98-100 % of 160×120 ones; with 60,000 a 640×480 camera at 1 µm/px
            was never judged.
        enabled: False switches the noise gate off.
    """

    max_noise: float = 4.5
    min_glass_px: int = 2000
    max_tissue_noise: float = 12.5
    min_tissue_px: int = 2000
    max_sharpness: float = 4.0
    min_field_px: int = 8_000
    enabled: bool = True

    def __post_init__(self):
        for name, unit in (("max_noise", "largest noise, grey levels"),
                           ("max_tissue_noise", "largest noise on tissue, levels of one channel"),
                           ("max_sharpness", "sharpness, 1/px")):
            object.__setattr__(self, name, validate.positive_number(name, getattr(self, name), unit))
        for name in ("min_glass_px", "min_tissue_px", "min_field_px"):
            object.__setattr__(self, name, validate.whole_number(name, getattr(self, name),
                                                                 unit="pixels at the model's scale"))
        object.__setattr__(self, "enabled", validate.flag("enabled", self.enabled))


@dataclass(frozen=True)
class FrameQuality:
    """Whether a frame's answer can be trusted.

    Attributes:
        sharpness: frame sharpness (1/px at the model's scale), NaN when too little tissue to judge.
        in_focus: False when the frame is out of focus, streaked or one colour is blurred (every tissue
            patch is then no call).
        exposure_ok: False when the frame is too dark or washed out, or most of its tissue is clipped.
        too_dark: the frame's brightest part stays below ``min_white``.
        darkest_tissue: the light the darkest hundredth of the tissue lets through
            (:func:`~idc_edge.glare.darkest_tissue`), NaN when not measured.
        washed_out: ``darkest_tissue`` above ``ExposureOptions.max_darkest_tissue`` (stray light; every
            tissue patch is then badly exposed).
        patch_sharpness: float32 ``[rows, cols]``, NaN where a patch has too little tissue.
        blurred: bool ``[rows, cols]`` tissue patches out of focus (all tissue when the frame is).
        badly_exposed: bool ``[rows, cols]`` tissue patches clipped or partly unlit (all tissue when the
            frame is too dark or washed out).
        colour_ok: False when the glass in view is tinted beyond ``ColourOptions.max_glass_cast``
            (``max_clipped_glass_cast`` where it is clipped in one channel or more),
            or, with no glass recognised, the palest flat part beyond ``max_pale_cast`` (its
            brightest pixels beyond ``max_brightest_cast`` where nothing pale is flat), or the
            tissue is greener than ``ColourOptions.min_tissue_magenta`` allows, or ``stain_ok`` is
            False (every tissue patch is then no call); True when within them or nothing to judge.
        glass_cast: the glass's measured cast (fraction), NaN when not measured.
        pale_cast: the palest flat part's cast (:func:`~idc_edge.colour.pale_cast`), measured only
            when ``glass_cast`` is NaN; NaN otherwise or when nothing is pale and flat.
        noise_ok: False when the glass in view is noisier than ``NoiseOptions.max_noise``, the tissue
            noisier than ``NoiseOptions.max_tissue_noise`` or sharper than ``NoiseOptions.max_sharpness``
            (every tissue patch is then no call); True when within them or nothing to judge.
        noise: the noise measured on the glass (σ, grey levels at the model's scale), NaN when not measured.
        tissue_noise: the noise measured on the tissue (σ, levels of one channel at the model's scale),
            NaN when not measured.
        tissue_magenta: the tissue's :func:`~idc_edge.colour.tissue_magenta`, NaN when not measured.
        stain_ok: False when the tissue's stains are not coloured as H&E's (red and blue swapped,
            a camera's hue turned): ``stains.contrast`` below ``ColourOptions.min_stain_blueness``.
            Not judged on a grainy frame (``noise_ok`` False), which is no call for its grain.
        stains: the tissue's :func:`~idc_edge.stains.stain_reading` (NaN when not measured).
        colour_strength: the field's :func:`~idc_edge.faint.colour_strength`, NaN when not measured.
        faint_colour: True when ``colour_strength`` is below ``ColourOptions.min_colour_strength``
            (``colour_ok`` is then False): colours too faint for stained tissue, which the tissue
            mask may not even find.
        inked: bool ``[rows, cols]`` tissue patches covered by marker ink beyond
            ``ColourOptions.max_ink_fraction`` (None when not judged).
        isotropy: the tissue's :func:`isotropy`, NaN when not measured.
        streaked: True when ``isotropy`` is below ``FocusOptions.min_isotropy`` (motion blur).
        channel_ratio: sharpness of the least sharp colour channel over the sharpest's
            (:func:`channel_sharpness`), NaN when not measured.
        channel_band_ratio: the same one octave coarser (:func:`band_sharpness`), NaN when not measured.
        colour_blurred: True when ``channel_ratio`` is below ``FocusOptions.min_channel_ratio`` or
            ``channel_band_ratio`` below ``FocusOptions.min_channel_band_ratio`` (one colour out of focus).
    """

    sharpness: float
    in_focus: bool
    exposure_ok: bool
    too_dark: bool
    patch_sharpness: np.ndarray
    blurred: np.ndarray
    badly_exposed: np.ndarray
    colour_ok: bool = True
    glass_cast: float = float("nan")
    tissue: Optional[np.ndarray] = None
    noise_ok: bool = True
    noise: float = float("nan")
    pale_cast: float = float("nan")
    tissue_noise: float = float("nan")
    tissue_magenta: float = float("nan")
    isotropy: float = float("nan")
    streaked: bool = False
    channel_ratio: float = float("nan")
    channel_band_ratio: float = float("nan")
    colour_blurred: bool = False
    stain_ok: bool = True
    stains: StainReading = StainReading()
    colour_strength: float = float("nan")
    faint_colour: bool = False
    inked: Optional[np.ndarray] = None
    darkest_tissue: float = float("nan")
    washed_out: bool = False

    @property
    def no_call(self) -> np.ndarray:
        """bool ``[rows, cols]``: tissue patches where no call is made (blurred, badly exposed,
        inked, miscoloured or noisy)."""
        out = self.blurred | self.badly_exposed
        if self.inked is not None:
            out = out | self.inked
        whole_frame = not (self.colour_ok and self.noise_ok)
        return out | self.tissue if whole_frame and self.tissue is not None else out


def _focus_derivatives(rgb: np.ndarray, grey: Optional[np.ndarray] = None) -> tuple[np.ndarray, ...]:
    """(smoothed grey, Laplacian, d/dx, d/dy), float32, of an **RGB** uint8 image's grey (``grey``,
    uint8, when already made), smoothed by σ 0.5 px so that single-pixel noise does not count as detail;
    derivatives in grey levels per pixel (per pixel²)."""
    if grey is None:
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    smooth = cv2.GaussianBlur(grey.astype(np.float32), (0, 0), 0.5, borderType=cv2.BORDER_REFLECT_101)
    lap = cv2.Laplacian(smooth, cv2.CV_32F, ksize=1, borderType=cv2.BORDER_REFLECT_101)
    gx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3, scale=0.125, borderType=cv2.BORDER_REFLECT_101)
    gy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3, scale=0.125, borderType=cv2.BORDER_REFLECT_101)
    return smooth, lap, gx, gy


def sharpness_terms(rgb: np.ndarray, grey: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray]:
    """(squared Laplacian, squared gradient magnitude) per pixel, float32, of an **RGB** uint8 image's grey
    (``grey``, uint8, when already made)."""
    return _squared(*_focus_derivatives(rgb, grey)[1:])


def _squared(lap: np.ndarray, gx: np.ndarray, gy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(squared Laplacian, squared gradient magnitude) from :func:`_focus_derivatives`."""
    return cv2.multiply(lap, lap), cv2.add(cv2.multiply(gx, gx), cv2.multiply(gy, gy))


#: cosines and sines of the directions :func:`isotropy` compares: every 5° of a half turn
_COS, _SIN = np.cos(np.deg2rad(np.arange(0.0, 180.0, 5.0))), np.sin(np.deg2rad(np.arange(0.0, 180.0, 5.0)))


def isotropy(rgb: np.ndarray, tissue_px: np.ndarray, grey: Optional[np.ndarray] = None,
             min_tissue_px: int = 200, unlit_level: int = ExposureOptions().unlit_level) -> float:
    """How alike the sharpness of a field's tissue is in every direction (0–1).

    Sharpness along one direction is measured as the focus gate's is, the second derivative over
    the first, summed over the tissue pixels (``tissue_px``, non-zero on tissue) of an **RGB** uint8
    image at the model's scale (``grey``: its uint8 grey, when already made); the result is the
    least over directions every 5° over the greatest, measured at half size, where 3×3 derivatives
    see every direction alike. Defocus blurs every direction alike; a streak (the stage moving during
    the exposure) only its own. Pixels near unlit ones (every channel below ``unlit_level``, 0–255)
    are left out (:func:`away_from`). NaN with fewer than ``min_tissue_px`` tissue pixels or no
    structure.
    """
    mask = cv2.compare(np.asarray(tissue_px, np.uint8), 0, cv2.CMP_GT)
    if cv2.countNonZero(mask) < min_tissue_px:
        return float("nan")
    unlit = cv2.inRange(rgb, np.zeros(3), np.full(3, unlit_level - 1.0))
    return _isotropy(_focus_derivatives(rgb, grey)[0], away_from(cv2.multiply(mask, 1.0 / 255.0, dtype=cv2.CV_32F),
                                                                 unlit))


#: Least tissue pixels at the model's scale (two windows' worth) for a frame's streaks to be judged: on
#: less, the tissue's own edge against the glass outweighs its texture (a sliver of one window at a
#: slide's edge read 0.69 in README's first command, and was called streaked).
MIN_ISOTROPY_TISSUE_PX = 5_000

#: Pixels next to black or ink left out of :func:`isotropy`: the edge's blur at the model's scale
#: reaches about this far.
NEAR_EDGE_PX = 4
_NEAR_EDGE = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * NEAR_EDGE_PX + 1, 2 * NEAR_EDGE_PX + 1))


def away_from(mask: np.ndarray, *others: Optional[np.ndarray]) -> np.ndarray:
    """float32 ``mask`` without the pixels within :data:`NEAR_EDGE_PX` of any pixel set in ``others``
    (uint8 masks, 255 = set; None or empty ones ignored): the black beyond a round field stop or a
    black border, or a marker stroke, has a single strong edge, curved or straight, which reads as a
    streak (a quarter of the fields behind a field stop, fields with a straight marker stroke)."""
    edges = [m for m in others if m is not None and cv2.countNonZero(m)]
    if not edges:
        return mask
    near = cv2.dilate(edges[0] if len(edges) == 1 else cv2.bitwise_or(*edges[:2]), _NEAR_EDGE)
    return cv2.multiply(mask, cv2.bitwise_not(near), scale=1.0 / 255.0, dtype=cv2.CV_32F)


def _isotropy(smooth: np.ndarray, mask: np.ndarray) -> float:
    """:func:`isotropy` from the focus gate's smoothed grey (:func:`_focus_derivatives`) and the
    float32 tissue ``mask`` (0 or 1).

    The second derivative along (c, s) is c²·dxx + s²·dyy + 2cs·dxy; every direction's sums come
    from the sums of products of the five derivatives (single-precision, of the masked half-size
    images; not BLAS, whose threads spin after each call), so more directions cost nothing per pixel.
    """
    # at half size (pyrDown smooths and halves) and σ 1 more px, where the 3×3 stencils see every
    # direction alike (at the model's own pixels a diagonal read blunter than an axis)
    small = cv2.GaussianBlur(cv2.pyrDown(smooth), (0, 0), 0.85, borderType=cv2.BORDER_REFLECT_101)
    quarter = cv2.resize(mask, (small.shape[1], small.shape[0]), interpolation=cv2.INTER_NEAREST)
    gx, gy, xx, yy, xy = (cv2.multiply(cv2.Sobel(small, cv2.CV_32F, dx, dy, ksize=3, scale=0.125 if dx + dy == 1 else 0.25,
                                                 borderType=cv2.BORDER_REFLECT_101), quarter).ravel()
                          for dx, dy in ((1, 0), (0, 1), (2, 0), (0, 2), (1, 1)))

    def total(a, b):  # one sum of products
        return float(np.einsum("i,i", a, b))

    c, s = _COS, _SIN
    first = c * c * total(gx, gx) + s * s * total(gy, gy) + 2 * c * s * total(gx, gy)
    second = (c ** 4 * total(xx, xx) + s ** 4 * total(yy, yy) + 4 * c * c * s * s * total(xy, xy)
              + 2 * c * c * s * s * total(xx, yy) + 4 * c ** 3 * s * total(xx, xy) + 4 * c * s ** 3 * total(yy, xy))
    if first.min() <= 1e-9:
        return float("nan")
    along = np.sqrt(np.maximum(second, 0.0) / first)
    return float(along.min() / along.max()) if along.max() > 0 else float("nan")


def tissue_patch_stack(rgb: np.ndarray, grid: TileGrid, tissue_px_per_patch: np.ndarray, n_patches: int = 8,
                       min_fraction: float = 0.5, min_patches: int = 3) -> Optional[np.ndarray]:
    """uint8 ``[n, patch, patch, 3]``: the ``n_patches`` patches of an **RGB** uint8 frame at the model's
    scale with the most tissue (``tissue_px_per_patch``, ``[rows, cols]`` tissue pixels per patch of
    ``grid``), those at least ``min_fraction`` tissue; None when fewer than ``min_patches`` are."""
    area = grid.patch * grid.patch
    counts = np.asarray(tissue_px_per_patch, np.float64).ravel()
    order = np.argsort(counts)[::-1][:n_patches]
    order = order[counts[order] >= min_fraction * area]
    if len(order) < min_patches:
        return None
    rows, cols = np.unravel_index(order, grid.shape)
    p = grid.patch
    return np.stack([rgb[y:y + p, x:x + p] for y, x in zip(grid.ys[rows], grid.xs[cols])])


def channel_sharpness(rgb: np.ndarray, grid: TileGrid, tissue_px_per_patch: np.ndarray, n_patches: int = 8,
                      min_fraction: float = 0.5, min_patches: int = 3) -> np.ndarray:
    """Sharpness of each colour channel (R, G, B; arbitrary but common units) of an **RGB** uint8 frame
    at the model's scale, over its ``n_patches`` patches with the most tissue (:func:`tissue_patch_stack`):
    the root of the summed squared Laplacian over the summed squared gradient, as the frame's sharpness
    is measured on grey.

    Axial chromatic aberration (a camera adapter's or an eyepiece camera's simple lens) leaves one
    or two colours out of focus while the grey the focus gate reads stays sharp; the model reads
    nuclei in the red the haematoxylin absorbs, and calls IDC benign when that alone is blurred.
    NaN (three) when fewer than ``min_patches`` patches are at least ``min_fraction`` tissue.

    Args:
        tissue_px_per_patch: ``[rows, cols]`` tissue pixels per patch of ``grid``.
    """
    stack = tissue_patch_stack(rgb, grid, tissue_px_per_patch, n_patches, min_fraction, min_patches)
    return np.full(3, np.nan) if stack is None else stack_sharpness(stack)


def stack_sharpness(stack: np.ndarray) -> np.ndarray:
    """:func:`channel_sharpness` of a :func:`tissue_patch_stack` (R, G, B). The patches' 1 px rims are
    left out (their derivatives would reach outside the patch); NaN for a channel with no gradient at
    all (clipped flat)."""
    n, p = stack.shape[:2]
    flat = stack.reshape(n * p, p, 3)

    def energy(d: np.ndarray) -> np.ndarray:  # per channel, summed over the patches' insides
        rims = d.reshape(n, p, p, 3)
        rims[:, [0, -1]] = 0
        rims[:, :, [0, -1]] = 0
        d = d.astype(np.float32)
        return np.array(cv2.sumElems(cv2.multiply(d, d))[:3])
    lap = energy(cv2.Laplacian(flat, cv2.CV_16S, ksize=1))
    grad = energy(cv2.Sobel(flat, cv2.CV_16S, 1, 0, ksize=3)) + energy(cv2.Sobel(flat, cv2.CV_16S, 0, 1, ksize=3))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(grad > 0, np.sqrt(lap / grad), np.nan)


#: Gaussian σ (px at the model's scale) of the three smoothings whose differences are the finer and the
#: coarser band of :func:`band_sharpness`: detail of about 1.5–3 px (6–12 µm, a nucleus) against 3–6 px.
BAND_SIGMAS_PX = (0.7, 1.4, 2.8)
#: Pixels of each patch's rim left out of :func:`band_sharpness` (the widest smoothing reaches about
#: this far outside the patch).
BAND_RIM_PX = 6
#: Least mean squared signal per pixel in the coarser band (grey levels²) for a channel to be judged by
#: :func:`band_sharpness`: a channel clipped flat, or of no structure, has none.
MIN_BAND_SIGNAL = 1.0


def band_sharpness(stack: np.ndarray) -> np.ndarray:
    """Sharpness of each colour channel (R, G, B) of a :func:`tissue_patch_stack` one octave coarser than
    :func:`stack_sharpness`'s: the root of the signal between Gaussians of 0.7 and 1.4 px over the
    signal between 1.4 and 2.8 px (:data:`BAND_SIGMAS_PX`), each patch's :data:`BAND_RIM_PX` rim left out.

    Through JPEG or YUV 4:2:0, which keep colour at less than the luma's resolution, a blurred red
    is rebuilt from the luma with the green's finest detail, which :func:`stack_sharpness` reads, but
    not with the detail of a nucleus's size, which this band reads and the model needs. NaN for a
    channel with less than :data:`MIN_BAND_SIGNAL` in the coarser band.
    """
    n, p = stack.shape[:2]
    if p <= 2 * BAND_RIM_PX:
        return np.full(3, np.nan)
    flat = stack.reshape(n * p, p, 3).astype(np.float32)
    fine, mid, coarse = (cv2.GaussianBlur(flat, (0, 0), s, borderType=cv2.BORDER_REFLECT_101) for s in BAND_SIGMAS_PX)
    inside = (slice(None), slice(BAND_RIM_PX, p - BAND_RIM_PX), slice(BAND_RIM_PX, p - BAND_RIM_PX))

    def signal(a: np.ndarray, b: np.ndarray) -> np.ndarray:  # mean squared difference per channel, insides only
        d = cv2.subtract(a, b).reshape(n, p, p, 3)[inside].reshape(-1, 3)
        return np.einsum("ic,ic->c", d, d) / len(d)
    upper, lower = signal(fine, mid), signal(mid, coarse)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(lower >= MIN_BAND_SIGNAL, np.sqrt(upper / lower), np.nan)


def least_over_most(values: np.ndarray) -> float:
    """The least of three channels' sharpness over the greatest; NaN unless all three are finite."""
    return float(values.min() / values.max()) if np.isfinite(values).all() and values.max() > 0 else float("nan")


def image_sharpness(rgb: np.ndarray, tissue_px: Optional[np.ndarray] = None) -> float:
    """Sharpness (1/px) of a whole **RGB** uint8 image at the model's scale over ``tissue_px`` (bool/uint8
    mask; all pixels when None); NaN when the image has no structure at all."""
    lap2, grad2 = sharpness_terms(rgb)
    if tissue_px is not None:
        m = tissue_px.astype(bool)
        lap2, grad2 = lap2[m], grad2[m]
    g = float(grad2.sum())
    return math.sqrt(float(lap2.sum()) / g) if g > 1e-6 else float("nan")


def _colour_ok(colour: ColourOptions, cast: float, pale: float, glass_clipped: bool, pale_brightest: bool,
               magenta: float, noise_ok: bool) -> bool:
    """The colour gate's verdict on its readings (NaN: nothing to judge, passes). In a grainy frame its
    noise picks, and tints, the brightest pixels: such a frame is no call for its grain only."""
    pale_limit = colour.max_brightest_cast if pale_brightest else colour.max_pale_cast
    return not (cast > (colour.max_clipped_glass_cast if glass_clipped else colour.max_glass_cast)
                or (pale > pale_limit and (noise_ok or not pale_brightest))
                or magenta < colour.min_tissue_magenta)


def _stain_ok(colour: ColourOptions, stains: StainReading, noise_ok: bool) -> bool:
    """The stains' verdict (NaN: nothing to judge, passes). A grainy frame's noise spreads the tissue's
    colours and can tip the stains' directions: such a frame is no call for its grain only."""
    return not (noise_ok and stains.contrast < colour.min_stain_blueness)


#: :func:`grey_black`: most HSV saturation (0–255) of a grey region, at most this share of the field's
#: white level (the grey's 99th percentile), at least this wide (pixels at the model's scale, 4 µm/px)
GREY_BLACK_SATURATION = 30
GREY_BLACK_VALUE_SHARE = 0.65
GREY_BLACK_WIDTH_PX = 7


def grey_black(hsv: np.ndarray, white: float) -> np.ndarray:
    """uint8 mask (255) of regions that are black seen through stray light: grey (saturation below
    :data:`GREY_BLACK_SATURATION`), darker than :data:`GREY_BLACK_VALUE_SHARE` of the field's white
    level ``white`` (0–255: its grey's 99th percentile, :func:`~idc_edge.colour.white_levels`) and at
    least :data:`GREY_BLACK_WIDTH_PX` wide (a morphological opening: nuclei and specks are narrower).
    ``hsv``: OpenCV's HSV of the **RGB** field.

    A field stop's black ring or a black marker stroke is unlit, every channel near 0; stray light (an
    uncapped eyepiece, room light: 20 % of the glass's light added) lifts it to a flat grey of about
    half the glass, above the unlit level, and windows reaching into it were scored (a field stop at
    80 % of the half-diagonal with 20 % glare: 89 % of the decisions kept on the validation slides, 79–83 %
    on small fields, silently). Stained tissue is coloured; nothing of a section is a wide flat grey.
    """
    dark_grey = cv2.inRange(hsv, (0, 0, 0), (180, GREY_BLACK_SATURATION - 1, int(GREY_BLACK_VALUE_SHARE * white)))
    if cv2.countNonZero(dark_grey) < GREY_BLACK_WIDTH_PX ** 2:  # too few for one region (the usual frame): no opening
        return np.zeros_like(dark_grey)
    return cv2.morphologyEx(dark_grey, cv2.MORPH_OPEN, np.ones((GREY_BLACK_WIDTH_PX, GREY_BLACK_WIDTH_PX), np.uint8))


def assess(rgb: np.ndarray, grid: TileGrid, tissue_px: np.ndarray, tissue: np.ndarray,
           focus: FocusOptions = FocusOptions(), exposure: ExposureOptions = ExposureOptions(),
           clip_levels_rgb: Optional[tuple[int, int, int]] = None,
           tissue_fractions: Optional[np.ndarray] = None, colour: ColourOptions = ColourOptions(),
           hsv: Optional[np.ndarray] = None, noise: NoiseOptions = NoiseOptions()) -> FrameQuality:
    """Focus, exposure, colour and noise of one frame at the model's scale.

    Args:
        rgb: **RGB** uint8 frame at the model's scale, padded to ``grid.padded_shape`` (after white balance).
        grid: the patch grid.
        tissue_px: uint8/bool tissue mask of ``rgb``'s pixels (1 = tissue).
        tissue: bool ``[rows, cols]`` tissue patches.
        focus, exposure: the gates' options.
        clip_levels_rgb: per-channel level (RGB) at which ``rgb`` counts as clipped; where a white
            balance scaled the channels, the camera's clip level times each gain (default
            ``exposure.clip_level`` for all three).
        tissue_fractions: float ``[rows, cols]`` share of tissue pixels per patch, when the caller
            already has it (:func:`~idc_edge.tissue.patch_fractions` of ``tissue_px``).
        colour: the colour gate's options (the glass's cast, see :class:`ColourOptions`).
        hsv: ``rgb`` in OpenCV's HSV, when the caller already has it (made here when needed).
        noise: the noise gate's options (noise on the glass and the tissue, see :class:`NoiseOptions`).
    """
    shape = grid.shape
    h, w = grid.rescaled_shape  # the field at the model's scale, without the grid's padding
    clip_levels = clip_levels_rgb or (exposure.clip_level,) * 3
    judge_colour = colour.enabled and h * w >= colour.min_field_px
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if (focus.enabled or exposure.enabled or noise.enabled) else None
    # judged on the field without the grid's padding (white, which would pass for untinted glass)
    cast, pale, glass_clipped, pale_brightest = (field_casts(rgb[:h, :w], hsv[:h, :w] if hsv is not None else None,
                                                            clip_levels_rgb=clip_levels)
                                                if judge_colour else (float("nan"), float("nan"), False, False))
    judge_tissue = colour.enabled and tissue_px is not None
    magenta = tissue_magenta(rgb[:h, :w], tissue_px[:h, :w], colour.min_tissue_px) if judge_tissue else float("nan")
    judge_noise = noise.enabled and h * w >= noise.min_field_px
    noise_level = glass_noise(grey[:h, :w], rgb[:h, :w], noise.min_glass_px) if judge_noise else float("nan")
    on_tissue_noise = tissue_noise(rgb[:h, :w], tissue_px[:h, :w], noise.min_tissue_px) \
        if judge_noise and tissue_px is not None else float("nan")
    # either measure above its threshold is grain; NaN (nothing to judge on) counts as ok
    noise_ok = not (noise_level > noise.max_noise or on_tissue_noise > noise.max_tissue_noise)
    casts = (cast, pale, glass_clipped, pale_brightest, magenta)  # the colour is decided once noise_ok is final
    # the stains, the ink and the darkest tissue are read on 2×2 means, made once; none is judged on a grainy frame
    half = halved(rgb) if (colour.enabled or exposure.enabled) and noise_ok and min(rgb.shape[:2]) >= 2 else None
    half_tissue = halved_mask(tissue_px) if half is not None and tissue_px is not None else None
    stains = stain_reading(rgb[:h, :w], tissue_px[:h, :w], colour.min_tissue_px, half=half, half_tissue=half_tissue) \
        if judge_tissue and half is not None else StainReading()
    judge_strength = judge_colour and colour.min_colour_strength > 0
    judge_stray_light = exposure.enabled and exposure.max_darkest_tissue < 1.0
    # each pixel's darkest channel on the 2×2 means, made once for the colour's strength and the stray light
    dark_half = darkest_channel(np.ascontiguousarray(half[: h // 2, : w // 2])) if half is not None and min(h, w) >= 2 \
        and (judge_strength or judge_stray_light) else None
    # the strength tells faint colour and, with the darkest tissue, stray light (which desaturates) from pale tissue
    strength = colour_strength(rgb[:h, :w], half=half, darkest=dark_half) \
        if (judge_strength or judge_stray_light) and dark_half is not None else float("nan")
    faint = judge_strength and strength < colour.min_colour_strength
    if not (focus.enabled or exposure.enabled):
        nothing = np.zeros(shape, bool)
        stain_ok = _stain_ok(colour, stains, noise_ok)
        return FrameQuality(float("nan"), True, True, False, np.full(shape, np.nan, np.float32), nothing, nothing,
                            _colour_ok(colour, *casts, noise_ok) and stain_ok and not faint, cast, tissue,
                            bool(noise_ok), noise_level, pale, on_tissue_noise, magenta, stain_ok=stain_ok, stains=stains,
                            colour_strength=strength, faint_colour=bool(faint))
    on_tissue = cv2.compare(tissue_px.astype(np.uint8, copy=False), 0, cv2.CMP_GT)  # 255 on tissue pixels
    mask = cv2.multiply(on_tissue, 1.0 / 255.0, dtype=cv2.CV_32F)
    area = float(grid.patch * grid.patch)
    n_px = tissue_fractions * area if tissue_fractions is not None else \
        patch_sums(cv2.integral(on_tissue // 255, sdepth=cv2.CV_32S), grid).astype(np.float64)
    # the per-patch sums of the focus terms (and of clipped tissue and unlit pixels, where any) from one integral image
    planes, clipped, unlit = [], None, None
    if focus.enabled:
        smooth, *first_and_second = _focus_derivatives(rgb, grey)
        planes += [cv2.multiply(term, mask) for term in _squared(*first_and_second)]
    if exposure.enabled:
        white = int(white_levels(grey[..., None])[0])  # the grey's 99th percentile
        levels = np.array(clip_levels, np.float64)
        # a pixel is clipped when any channel reaches its level: inRange marks the others (all channels
        # below their level) in one pass; numpy's any(axis=2) over the 3 channels took 2.4 ms at 480×270
        clipped_px = cv2.bitwise_and(cv2.bitwise_not(cv2.inRange(rgb, np.zeros(3), levels - 1)), on_tissue)
        # planes only where there is something to sum (nothing clipped or unlit is the usual case);
        # clipped and unlit hold their plane's index
        if cv2.countNonZero(clipped_px):
            clipped = len(planes)
            planes.append(cv2.multiply(clipped_px, 1.0 / 255.0, dtype=cv2.CV_32F))
        unlit_px = cv2.inRange(rgb, np.zeros(3), np.full(3, exposure.unlit_level - 1.0))  # every channel below it
        if exposure.unlit_level > 0:  # black seen through stray light is grey: unlit all the same
            unlit_px = cv2.bitwise_or(unlit_px, grey_black(cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV) if hsv is None else hsv,
                                                           white))
        if cv2.countNonZero(unlit_px):  # an unlit_level of 0 marks nothing
            unlit = len(planes)
            planes.append(cv2.multiply(unlit_px, 1.0 / 255.0, dtype=cv2.CV_32F))
    ink = None
    # ink is judged only on frames whose colour and grain pass (below): as far as known yet
    if half is not None and colour.enabled and colour.max_ink_fraction < 1.0 and _colour_ok(colour, *casts, True) \
            and _stain_ok(colour, stains, True) and not faint:
        ink_px = ink_pixels(rgb, tissue_px, half=half, half_tissue=half_tissue,
                            min_stroke_px=stroke_length_px(colour.min_ink_stroke_px, w, h))
        # a plane only where some window could be over the limit: fewer ink pixels in all cannot be
        if cv2.countNonZero(ink_px) > colour.max_ink_fraction * grid.patch * grid.patch:
            ink = len(planes)
            planes.append(cv2.multiply(ink_px, 1.0 / 255.0, dtype=cv2.CV_32F))
    if planes:
        integral = cv2.integral(cv2.merge(planes) if len(planes) > 1 else planes[0], sdepth=cv2.CV_64F)
        sums = patch_sums(integral, grid).reshape(*shape, len(planes))
        totals = integral[-1, -1].reshape(-1)  # the whole frame's sums
    if focus.enabled:
        lap_sum, grad_sum = sums[..., 0], sums[..., 1]
        judged = (n_px >= min(focus.min_tissue_px, 0.5 * grid.patch * grid.patch)) & (grad_sum > 1e-6)
        patch_sharp = np.full(shape, np.nan, np.float32)
        patch_sharp[judged] = np.sqrt(lap_sum[judged] / grad_sum[judged])
        total_px = float(cv2.countNonZero(on_tissue))
        total_lap, total_grad = float(totals[0]), float(totals[1])
        frame_sharp = math.sqrt(total_lap / total_grad) \
            if total_px >= focus.min_tissue_px and total_grad > 1e-6 else float("nan")
        # read on blurred frames too: a long streak also lowers the sharpness, and is said as motion
        # black and ink are left out: their single strong edges are not the tissue's texture
        judge_streaks = (focus.min_isotropy > 0 and h * w >= focus.min_field_px
                         and total_px >= max(focus.min_tissue_px, MIN_ISOTROPY_TISSUE_PX))
        iso = _isotropy(smooth, away_from(mask, unlit_px if unlit is not None else None,
                                          ink_px if ink is not None else None)) if judge_streaks else float("nan")
        streaked = iso < focus.min_isotropy
        # not on a grainy frame: grain fills the finer band of a weak channel (that frame is no call for its grain)
        judge_colours = (focus.min_channel_ratio > 0 or focus.min_channel_band_ratio > 0) and noise_ok \
            and not (frame_sharp < focus.frame_threshold or streaked)
        # read on the windows with the most tissue and no ink: a stroke's edges are sharp in the colours it absorbs
        stack = tissue_patch_stack(rgb, grid, n_px if ink is None else np.where(sums[..., ink] > 0, 0.0, n_px)) \
            if judge_colours else None
        ratio, band_ratio = (float("nan"), float("nan")) if stack is None else \
            (least_over_most(stack_sharpness(stack)), least_over_most(band_sharpness(stack)))
        colour_blurred = ratio < focus.min_channel_ratio or band_ratio < focus.min_channel_band_ratio
        # NaN (nothing to judge) counts as in focus
        in_focus = not (frame_sharp < focus.frame_threshold or streaked or colour_blurred)
        # tissue sharper than any slide is grain, not detail (where the grain also hides the glass)
        noise_ok = noise_ok and not (judge_noise and frame_sharp > noise.max_sharpness)
        blurred = tissue & ((patch_sharp < focus.patch_threshold) | (not in_focus))
    else:
        patch_sharp = np.full(shape, np.nan, np.float32)
        frame_sharp, in_focus, blurred = float("nan"), True, np.zeros(shape, bool)
        iso, streaked, ratio, band_ratio, colour_blurred = float("nan"), False, float("nan"), float("nan"), False
    if exposure.enabled:
        least = exposure.min_white if h * w >= exposure.large_field_px else \
            exposure.min_white_medium if h * w >= exposure.medium_field_px else exposure.min_white_small
        too_dark = white < least
        judge_glare = half is not None and exposure.max_darkest_tissue < 1.0 and not too_dark
        darkest = darkest_tissue(rgb[:h, :w], tissue_px[:h, :w], min_px=exposure.min_tissue_px, half=half,
                                 half_tissue=half_tissue, darkest=dark_half) if judge_glare else float("nan")
        if judge_glare and math.isnan(darkest):  # too little tissue for the mask: is it washed too pale for it?
            darkest = darkest_faint_tissue(rgb[:h, :w], min_px=exposure.min_tissue_px, half=half, darkest=dark_half)
        # pale and strongly coloured is pale tissue filling the view, not stray light (NaN strength: judged on the darkness)
        washed_out = darkest > exposure.max_darkest_tissue and not strength >= exposure.max_washed_colour_strength
        # judged only where a fifth of the patch is tissue: a few noisy glass pixels are not tissue to lose
        clipped_share = (np.where(n_px >= 0.2 * area, sums[..., clipped] / np.maximum(n_px, 1), 0.0)
                         if clipped is not None else np.zeros(shape))
        unlit_share = sums[..., unlit] / area if unlit is not None else np.zeros(shape)
        badly = tissue & ((clipped_share > exposure.max_clipped_fraction)
                          | (unlit_share > exposure.max_unlit_fraction) | bool(too_dark or washed_out))
        exposure_ok = not (too_dark or washed_out) and not (badly.sum() > 0.5 * max(int(tissue.sum()), 1))
    else:
        too_dark, exposure_ok, badly = False, True, np.zeros(shape, bool)
        darkest, washed_out = float("nan"), False
    stain_ok = _stain_ok(colour, stains, noise_ok)
    faint = faint and not washed_out  # stray light fades colours too: said as what it is
    colour_ok = _colour_ok(colour, *casts, noise_ok) and stain_ok and not faint
    # judged on frames whose colour and grain are fine: a cast or grain tints whole windows ink-coloured
    inked = tissue & (sums[..., ink] / area > colour.max_ink_fraction) \
        if ink is not None and colour_ok and noise_ok else None
    return FrameQuality(sharpness=frame_sharp, in_focus=bool(in_focus), exposure_ok=bool(exposure_ok),
                        too_dark=bool(too_dark), patch_sharpness=patch_sharp, blurred=blurred, badly_exposed=badly,
                        colour_ok=colour_ok, glass_cast=cast, tissue=tissue, noise_ok=bool(noise_ok),
                        noise=noise_level, pale_cast=pale, tissue_noise=on_tissue_noise, tissue_magenta=magenta,
                        isotropy=iso, streaked=bool(streaked), channel_ratio=ratio,
                        channel_band_ratio=band_ratio, colour_blurred=bool(colour_blurred), stain_ok=stain_ok, stains=stains,
                        colour_strength=strength, faint_colour=bool(faint),
                        inked=inked, darkest_tissue=darkest, washed_out=bool(washed_out))
