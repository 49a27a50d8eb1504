"""What the detector reports for one frame."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np


@dataclass(frozen=True)
class StageTimes:
    """Milliseconds spent in each stage of one frame."""

    prepare: float = 0.0     # frame normalisation, rescale to the model's µm/px, BGR→RGB
    mask: float = 0.0        # tissue mask
    tiling: float = 0.0      # choosing patches (change detection for reuse) and cutting them
    invoke: float = 0.0      # interpreter calls (including input quantization)
    post: float = 0.0        # probability grid, decisions

    @property
    def total(self) -> float:
        return self.prepare + self.mask + self.tiling + self.invoke + self.post

    def to_dict(self) -> dict[str, float]:
        return {"prepare": self.prepare, "mask": self.mask, "tiling": self.tiling,
                "invoke": self.invoke, "post": self.post, "total": self.total}


@dataclass(frozen=True)
class FrameResult:
    """The IDC map of one frame.

    Attributes:
        index: frame number in its source, from 0.
        timestamp: seconds (source time for files; for cameras the wall-clock time, carried on by the
            monotonic clock from the process's first frame: the clock being set mid-run moves no frame, see
            :func:`idc_edge.waitclock.steady_time`).
        probabilities: float32 ``[rows, cols]`` probability of IDC per patch, the score the call is
            made on (read with the neighbouring windows when the detector uses field context, see
            :mod:`idc_edge.context`); NaN for background and no call.
        window_probabilities: with field context, float32 ``[rows, cols]`` the model's own score of
            each window alone (what :meth:`~idc_edge.detector.Detector.classify_patches` gives for
            it); None without context, where it equals ``probabilities``.
        tissue: bool ``[rows, cols]``, True where the patch shows tissue (classified, unless ``no_call``).
        idc: bool ``[rows, cols]``, True where ``probabilities`` >= threshold (never on background).
        boxes: int32 ``[rows, cols, 4]`` patch boxes (x0, y0, x1, y1) in frame pixels, x1/y1 exclusive.
        threshold: decision threshold used.
        frame_shape: (height, width) of the frame in pixels.
        times: per-stage timings in ms.
        reused: number of tissue patches whose score was reused from an earlier frame because
            they did not change (motion-aware reuse in :meth:`Detector.stream`).
        image: the BGR frame the result belongs to (None from :meth:`Detector.detect` unless kept).
        no_call: bool ``[rows, cols]`` tissue patches where no call was made because the region is
            out of focus or badly exposed, or the frame's colour or noise is beyond the model (not
            classified, never IDC, NaN probability); None = none.
        in_focus: False when the whole frame is out of focus, streaked by motion or blurred in one
            colour (its tissue is then all no call).
        isotropy: the tissue's sharpness along its weakest direction over its strongest (see
            :func:`idc_edge.focus.isotropy`), NaN when not measured.
        streaked: True when the frame is not in focus because it is streaked (the stage moved
            during the exposure), not evenly blurred.
        channel_ratio: sharpness of the least sharp colour channel over the sharpest's (see
            :func:`idc_edge.focus.channel_sharpness`), NaN when not measured.
        channel_band_ratio: the same one octave coarser, at the size of a nucleus (see
            :func:`idc_edge.focus.band_sharpness`), NaN when not measured.
        colour_blurred: True when the frame is not in focus because one or two colours are blurred
            while the rest is sharp (a lens that focuses colours apart).
        exposure_ok: False when the frame is too dark or washed out, or most of its tissue is clipped.
        washed_out: True when the frame is not well exposed because stray light washes its tissue out:
            the darkest hundredth of the tissue lets through more than
            ``ExposureOptions.max_darkest_tissue`` of the glass's light and the field keeps little colour
            (``colour_strength`` below ``ExposureOptions.max_washed_colour_strength``: stray light
            desaturates, pale stroma does not); its tissue is then all no call.
        darkest_tissue: that share (linear light, see :func:`idc_edge.glare.darkest_tissue`), NaN when
            not measured.
        sharpness: the frame's sharpness at the model's scale (1/px, see :mod:`idc_edge.focus`),
            NaN when not measured or too little tissue to judge.
        no_call_ink: tissue patches without a call because marker ink covers more than
            ``ColourOptions.max_ink_fraction`` of them (and they are neither blurred nor badly exposed).
        no_call_focus, no_call_exposure: tissue patches without a call for each reason (a badly
            exposed patch counts as exposure even when it also looks blurred: clipping flattens texture).
        colour_ok: False when the glass in view is tinted beyond what the model was trained on
            (no white profile, or one that no longer fits), or the tissue is greener than any it was
            trained on (a strong green or yellow cast): every tissue patch is then no call.
        glass_cast: the glass's measured cast (fraction, see :func:`idc_edge.colour.glass_cast`),
            NaN when not measured or no glass in view.
        pale_cast: with no glass recognised, the cast of the field's palest flat part (see
            :func:`idc_edge.colour.pale_cast`), else NaN.
        tissue_magenta: how much less green than red and blue the tissue is (see
            :func:`idc_edge.colour.tissue_magenta`), NaN when not measured (colour gate off, too little tissue).
        stain_ok: False when the tissue's two stains are not coloured as H&E's: red and blue swapped
            (RGB frames given where BGR is expected) or a camera's hue turned; ``colour_ok`` is then
            False too (see :func:`idc_edge.stains.stain_blueness`).
        stain_blueness: how much bluer the tissue's less-green stain (haematoxylin) is than its other
            one (eosin), a log ratio (:attr:`idc_edge.stains.StainReading.contrast`), NaN when not measured.
        faint_colour: True when the colours are too faint for stained tissue (a camera's saturation
            turned down, a grey stream; ``colour_ok`` is then False too), which the tissue mask may
            not even find, so the frame can show little or no tissue (see :mod:`idc_edge.faint`).
        no_colour: True when the frame shows something but no colour at all (a monochrome camera, a
            colour camera giving R = G = B, a raw sensor stream read as grey; see
            :func:`idc_edge.tissue.colourless`), judged where no tissue was found or the tissue mask is
            off. Such a frame is not also ``faint_colour``: one cause, one flag.
        colour_strength: how coloured the parts of the field that absorb light are (HSV saturation,
            OpenCV's 0–255 scale, :func:`idc_edge.faint.colour_strength`), NaN when not measured.
        no_call_colour: tissue patches without a call only because of the colour.
        noise_ok: False when the glass or the tissue in view is grainier than the model copes with
            (too little light for the exposure and gain): every tissue patch is then no call.
        noise: the noise measured on the glass (σ, grey levels at the model's scale, see
            :func:`idc_edge.noise.glass_noise`), NaN when not measured or nothing flat in view.
        tissue_noise: the noise measured on the tissue (σ, levels of one channel at the model's
            scale, see :func:`idc_edge.noise.tissue_noise`), NaN when not measured or too little tissue.
        no_call_noise: tissue patches without a call only because of the noise.
        damage: libjpeg's words when the frame's JPEG data were damaged (``"premature end of data
            segment"``: decoded in part, the part the data did not reach grey and so not tissue); None
            for an intact frame. In the results file as ``jpeg_damage``, only on such frames.
        cell_area_mm2: float64 ``[rows, cols]`` mm² of the frame each patch stands for: the part
            nearer its centre than any other patch's (:meth:`~idc_edge.tiling.TileGrid.frame_shares`),
            so they add up to the frame's area however the patches overlap or a stride spaces them;
            None in a result made without a detector (areas then count a stride × stride square each).
    """

    index: int
    timestamp: float
    probabilities: np.ndarray
    tissue: np.ndarray
    idc: np.ndarray
    boxes: np.ndarray
    threshold: float
    frame_shape: tuple[int, int]
    times: StageTimes
    reused: int = 0
    image: Optional[np.ndarray] = None
    no_call: Optional[np.ndarray] = None
    in_focus: bool = True
    exposure_ok: bool = True
    washed_out: bool = False
    darkest_tissue: float = float("nan")
    sharpness: float = float("nan")
    no_call_focus: int = 0
    no_call_exposure: int = 0
    no_call_ink: int = 0
    colour_ok: bool = True
    glass_cast: float = float("nan")
    no_call_colour: int = 0
    noise_ok: bool = True
    noise: float = float("nan")
    tissue_noise: float = float("nan")
    no_call_noise: int = 0
    pale_cast: float = float("nan")
    tissue_magenta: float = float("nan")
    isotropy: float = float("nan")
    streaked: bool = False
    channel_ratio: float = float("nan")
    channel_band_ratio: float = float("nan")
    colour_blurred: bool = False
    stain_ok: bool = True
    stain_blueness: float = float("nan")
    faint_colour: bool = False
    no_colour: bool = False
    colour_strength: float = float("nan")
    window_probabilities: Optional[np.ndarray] = None
    damage: Optional[str] = None
    cell_area_mm2: Optional[np.ndarray] = None

    @property
    def n_patches(self) -> int:
        return int(self.tissue.size)

    @property
    def n_tissue(self) -> int:
        return int(self.tissue.sum())

    @property
    def n_idc(self) -> int:
        return int(self.idc.sum())

    @property
    def n_no_call(self) -> int:
        """Tissue patches without a call (out of focus, badly exposed, colour cast or noise)."""
        return 0 if self.no_call is None else int(self.no_call.sum())

    @property
    def n_called(self) -> int:
        """Tissue patches that were classified (or kept a reused score)."""
        return self.n_tissue - self.n_no_call

    @property
    def idc_fraction(self) -> float:
        """Share of called tissue patches that are IDC (0 when none was called); no-call patches
        count neither as IDC nor as benign."""
        return self.n_idc / self.n_called if self.n_called else 0.0

    @property
    def tissue_fraction(self) -> float:
        """Share of patches that show tissue."""
        return self.n_tissue / self.n_patches if self.n_patches else 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary: counts, IDC fraction, and every IDC patch box with its score."""
        rows, cols = np.nonzero(self.idc)
        return {
            "index": self.index,
            "time": round(self.timestamp, 6),
            "frame": {"width": self.frame_shape[1], "height": self.frame_shape[0]},
            "patches": self.n_patches,
            "tissue_patches": self.n_tissue,
            "idc_patches": self.n_idc,
            "reused_patches": self.reused,
            "idc_fraction": round(self.idc_fraction, 6),
            "in_focus": bool(self.in_focus),
            "streaked": bool(self.streaked),
            "isotropy": None if self.isotropy != self.isotropy else round(float(self.isotropy), 3),
            "colour_blurred": bool(self.colour_blurred),
            "channel_ratio": None if self.channel_ratio != self.channel_ratio else round(float(self.channel_ratio), 3),
            "channel_band_ratio": None if self.channel_band_ratio != self.channel_band_ratio
            else round(float(self.channel_band_ratio), 3),
            "exposure_ok": bool(self.exposure_ok),
            "washed_out": bool(self.washed_out),
            "darkest_tissue": None if self.darkest_tissue != self.darkest_tissue else round(float(self.darkest_tissue), 3),
            "colour_ok": bool(self.colour_ok),
            "glass_cast": None if self.glass_cast != self.glass_cast else round(float(self.glass_cast), 4),
            "pale_cast": None if self.pale_cast != self.pale_cast else round(float(self.pale_cast), 4),
            "tissue_magenta": None if self.tissue_magenta != self.tissue_magenta else round(float(self.tissue_magenta), 4),
            "stain_ok": bool(self.stain_ok),
            "stain_blueness": None if self.stain_blueness != self.stain_blueness else round(float(self.stain_blueness), 3),
            "faint_colour": bool(self.faint_colour),
            "no_colour": bool(self.no_colour),
            "colour_strength": None if self.colour_strength != self.colour_strength else round(float(self.colour_strength), 1),
            "noise_ok": bool(self.noise_ok),
            "noise": None if self.noise != self.noise else round(float(self.noise), 3),
            "tissue_noise": None if self.tissue_noise != self.tissue_noise else round(float(self.tissue_noise), 3),
            "sharpness": None if self.sharpness != self.sharpness else round(float(self.sharpness), 4),
            "no_call_patches": {"out_of_focus": int(self.no_call_focus), "exposure": int(self.no_call_exposure),
                                "ink": int(self.no_call_ink),
                                "colour": int(self.no_call_colour), "noise": int(self.no_call_noise)},
            "threshold": self.threshold,
            "idc_boxes": [[int(v) for v in self.boxes[r, c]] for r, c in zip(rows, cols)],
            "idc_scores": [round(float(self.probabilities[r, c]), 4) for r, c in zip(rows, cols)],
            "ms": {k: round(v, 3) for k, v in self.times.to_dict().items()},
            **({"jpeg_damage": self.damage} if self.damage is not None else {}),
        }
