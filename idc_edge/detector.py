"""The IDC detector: BGR frames in, per-patch IDC maps out.

    with Detector() as det:                       # the shipped int8 model
        result = det.detect(frame_bgr)            # one frame, BGR as OpenCV gives it
        for result in det.stream(open_source("slide.mp4")):
            ...

One frame goes: normalise to uint8 BGR → rescale from the camera's µm/px to the model's and
convert to RGB → tissue mask → cut the tissue patches → one batched interpreter call → the
probability grid. The model, the interpreter buffers and the patch grid of the last frame
size are created once and reused.

A model whose sidecar has ``dense`` is run in **dense mode** by default: one convolutional pass
over the rescaled frame scores every window at once (see :mod:`idc_edge.dense`); the windows,
the tissue mask and the result mean exactly what they mean in patch mode.
"""
from __future__ import annotations

import math
import numbers
import os
import time
import warnings
import weakref
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Iterable, Iterator, Optional

import cv2
import numpy as np

from . import dense as dense_plan
from . import validate
from .budget import check_buffer
from .classifier import PatchClassifier
from .colour import WhiteBalance
from .context import field_context
from .dense import DensePlan, check_dense_stride, default_dense_stride, plan_dense
from .errors import ClosedError, FrameError, ModelError, OptionError
from .fileio import short
from .frames import StreamDepth, to_bgr8
from .record import MAX_INDEX, MAX_TIME_S
from .rescale import rescale
from .reuse import ReuseOptions, ScoreCache, patch_signatures
from .results import FrameResult, StageTimes
from .tiling import TileGrid, extract_patches, make_grid, pad_to, rescaled_size, tiny_note
from .focus import ColourOptions, ExposureOptions, FocusOptions, NoiseOptions, assess
from .tissue import (NoColourWarning, TissueMaskOptions, colourless, no_colour_message, patch_fractions, tissue_pixels,
                     tissue_windows)
from .waitclock import steady_time


MAX_PATCHES_IN_MEMORY = 4096  # ≈ 30 MB of 50×50 RGB patches per chunk
# per grid position: box (16 B), probability, tissue and IDC flags, reuse signature (<= 100 B), slack
_BYTES_PER_GRID_PATCH = 160


#: said once per stream whose source fills its buffers again (kept images would show later frames)
SHARED_BUFFER_MESSAGE = ("the frames given to stream() are buffers filled again: each result's image is a copy "
                         "from here on, but results already given may show a later frame, not their own; give each "
                         "frame its own array (copy it) in the source")
#: how many recent kept frames a new frame is checked against: a driver's ring of up to this many buffers is noticed
RING_BUFFERS_NOTICED = 16


def _buffer_given_again(image: np.ndarray, kept: Iterable) -> Optional[np.ndarray]:
    """The pixel sample taken when a still-kept array that ``image`` overlaps was given, else None.

    ``kept`` holds ``(weakref to an array, its [::16, ::16] sample)`` of recent frames.
    """
    for ref, sample in kept:
        old = ref()
        if old is not None and _same_buffer(image, old):
            return sample
    return None


def _same_buffer(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two frames overlap in memory (one buffer handed out again); in doubt, yes."""
    if a is b:
        return True
    if not np.may_share_memory(a, b):
        return False
    try:
        return bool(np.shares_memory(a, b, max_work=10_000))
    except np.exceptions.TooHardError:
        return True


@dataclass(frozen=True)
class DetectorOptions:
    """Options of a :class:`Detector`, validated when created.

    Attributes:
        model_path: ``.tflite`` model with its sidecar; None for the shipped int8 model.
        um_per_px: microns per pixel of the frames (the camera's scale); None means the
            frames are already at the model's scale (no rescale).
        um_per_px_from: where ``um_per_px`` came from, named by messages that question the scale
            (e.g. ``"the scale of profile 'olympus.toml'"``); None names the option um_per_px.
        stride: distance between patches in model pixels; None means one patch (no overlap).
        threshold: decision threshold in [0, 1]; None takes the sidecar's (its field-context
            threshold when the windows are decided with their neighbours).
        num_threads: interpreter threads.
        tissue_mask: skip background patches (glass, dark borders) before the model.
        tissue: thresholds of the tissue mask.
        max_batch: largest batch per interpreter call (power of two).
        reuse: in :meth:`Detector.stream`, keep the score of a tissue patch whose pixels barely
            changed since it was classified instead of classifying it again (motion-aware reuse,
            see :mod:`idc_edge.reuse`); on by default. :meth:`Detector.detect` alone never reuses.
        reuse_options: when a patch counts as unchanged.
        dense: score windows with one convolutional pass per frame (dense mode). None (default):
            when the model's sidecar says it supports it, each pass (the frame, or its tiles and
            edge strips) runs where it costs fewer multiply-accumulates than its windows as
            patches; True: every window by dense passes; False: patch by patch. With a dense
            model (None or True), ``stride`` must be a multiple of its output stride.
        context: decide each window with its neighbours' scores (field context, see
            :mod:`idc_edge.context`). None (default): when the model's sidecar has a ``context``;
            True: require it; False: every window alone, on the model's own score.
        white_balance: per-channel gains (from ``idc-edge calibrate white``) applied through a
            lookup table to the frame at the model's scale; None leaves colours as they come.
        focus: the focus gate (out-of-focus frames and patches are no call, see :mod:`idc_edge.focus`).
        exposure: the exposure gate (too dark frames, clipped patches are no call).
        colour: the colour gate (a frame whose glass is tinted beyond the training glass is no call).
        noise: the noise gate (a frame whose glass or tissue is grainier than the model copes with is no call).
    """

    model_path: Optional[str] = None
    um_per_px: Optional[float] = None
    um_per_px_from: Optional[str] = None
    stride: Optional[int] = None
    threshold: Optional[float] = None
    num_threads: int = 1
    tissue_mask: bool = True
    tissue: TissueMaskOptions = field(default_factory=TissueMaskOptions)
    max_batch: int = 64
    reuse: bool = True
    reuse_options: ReuseOptions = field(default_factory=ReuseOptions)
    dense: Optional[bool] = None
    context: Optional[bool] = None
    white_balance: Optional[WhiteBalance] = None
    focus: FocusOptions = field(default_factory=FocusOptions)
    exposure: ExposureOptions = field(default_factory=ExposureOptions)
    colour: ColourOptions = field(default_factory=ColourOptions)
    noise: NoiseOptions = field(default_factory=NoiseOptions)

    def __post_init__(self):
        def set_(name, value):
            object.__setattr__(self, name, value)  # the validated plain value (numpy scalars become int/float)

        if self.um_per_px is not None:
            set_("um_per_px", validate.um_per_px("um_per_px", self.um_per_px))
        if self.um_per_px_from is not None and not isinstance(self.um_per_px_from, str):
            raise OptionError(f"um_per_px_from must be text, got {type(self.um_per_px_from).__name__}",
                              option="um_per_px_from")
        if self.stride is not None:
            set_("stride", validate.whole_number("stride", self.stride, unit="model pixels between patches"))
        if self.threshold is not None:
            set_("threshold", validate.probability("threshold", self.threshold))
        set_("num_threads", validate.threads("num_threads", self.num_threads))
        set_("max_batch", validate.power_of_two("max_batch", self.max_batch))
        set_("tissue_mask", validate.flag("tissue_mask", self.tissue_mask))
        set_("reuse", validate.flag("reuse", self.reuse))
        if not isinstance(self.tissue, TissueMaskOptions):
            raise OptionError(f"tissue must be a TissueMaskOptions, got {type(self.tissue).__name__}", option="tissue")
        if not isinstance(self.reuse_options, ReuseOptions):
            raise OptionError(f"reuse_options must be a ReuseOptions, got {type(self.reuse_options).__name__}",
                              option="reuse_options")
        for name in ("dense", "context"):
            if getattr(self, name) is not None:
                set_(name, validate.flag(name, getattr(self, name)))
        for name, kind in (("white_balance", WhiteBalance), ("focus", FocusOptions), ("exposure", ExposureOptions),
                           ("colour", ColourOptions), ("noise", NoiseOptions)):
            value = getattr(self, name)
            if not isinstance(value, kind) and not (name == "white_balance" and value is None):
                raise OptionError(f"{name} must be a {kind.__name__}, got {type(value).__name__}", option=name)


def frame_index(index) -> int:
    """``index`` (a frame's number) as an ``int``: a whole number from 0 to
    :data:`~idc_edge.record.MAX_INDEX`, the range the results file's reader accepts (numpy integers
    too; booleans, fractions and text are refused, never truncated or read as 0 and 1).

    Raises:
        FrameError: naming the index and the range.
    """
    if isinstance(index, (bool, np.bool_)) or not isinstance(index, numbers.Integral) or not 0 <= index <= MAX_INDEX:
        raise FrameError(f"frame index {short(index)} is not a frame number: it must be a whole number from 0 to "
                         f"{MAX_INDEX} (a results file holds no other)")
    return int(index)


def frame_time(index: int, timestamp) -> Optional[float]:
    """``timestamp`` (the frame's time, seconds) as a ``float``, or None (for now): a finite number
    within ±:data:`~idc_edge.record.MAX_TIME_S`, the range the results file's reader accepts.

    Raises:
        FrameError: naming frame ``index``, the time and the range (nanosecond stamps are out of it).
    """
    if timestamp is None:
        return None
    if isinstance(timestamp, (bool, np.bool_)) or not isinstance(timestamp, numbers.Real) \
            or not math.isfinite(timestamp):
        # a frame source's NaN or inf time later broke the results line and the video's timing
        raise FrameError(f"frame {index} has timestamp {short(timestamp)}: a frame's time must be a finite "
                         "number of seconds (or None for now)")
    if abs(timestamp) > MAX_TIME_S:
        # a sensor's nanoseconds were written, then the results file's own reader refused it
        raise FrameError(f"frame {index} has timestamp {short(timestamp)}: a frame's time must be seconds from "
                         f"{-MAX_TIME_S:g} to {MAX_TIME_S:g}; divide a sensor's nanosecond stamps by 1e9")
    return float(timestamp)


class Detector:
    """Classifies every tissue patch of a frame as IDC or not.

    Args:
        options: a :class:`DetectorOptions`; keyword arguments override its fields, so
            ``Detector(um_per_px=1.0, stride=25)`` works too.

    Raises:
        ModelError: the model breaks the model contract.
        OptionError: an option is out of range.
    """

    def __init__(self, options: Optional[DetectorOptions] = None, **overrides):
        if options is not None and not isinstance(options, DetectorOptions):
            # Detector("model.tflite") read as options gave AttributeError: 'str' object has no attribute ...
            raise OptionError(f"Detector's first argument is a DetectorOptions, got {short(options)}; "
                              "give a model as Detector(model_path=...)")
        if overrides:
            unknown = sorted(set(overrides) - set(DetectorOptions.__dataclass_fields__))
            if unknown:
                raise OptionError(f"unknown detector option(s): {', '.join(unknown)}")
            base = options or DetectorOptions()
            options = DetectorOptions(**{**base.__dict__, **overrides})
        self.options = options or DetectorOptions()
        self.classifier = PatchClassifier(self.options.model_path, num_threads=self.options.num_threads,
                                          max_batch=self.options.max_batch)
        spec = self.classifier.spec
        self.patch = spec.patch_size_px
        if self.options.dense and spec.dense is None:
            self.classifier.close()
            raise ModelError(f"model {str(self.classifier.model_path)!r} has no dense pass (its sidecar has no "
                             "\"dense\"); leave dense at None or False to run it patch by patch")
        if self.options.context and spec.context is None:
            self.classifier.close()
            raise ModelError(f"model {str(self.classifier.model_path)!r} has no field context (its sidecar has no "
                             "\"context\"); leave context at None or False to decide every window alone")
        #: how windows are read with their neighbours; None decides each window alone
        self.context = None if self.options.context is False else spec.context
        #: model pixels between the windows of one dense pass; None in patch mode
        self.output_stride = spec.dense.output_stride_px if spec.dense is not None and self.options.dense is not False \
            else None
        if self.output_stride is None:
            self.stride = self.options.stride or self.patch
        else:
            self.stride = self.options.stride or default_dense_stride(self.patch, self.output_stride)
            check_dense_stride(self.stride, self.patch, self.output_stride)
        self._check_cell(spec.um_per_px)
        self.um_per_px = self.options.um_per_px or spec.um_per_px
        default_threshold = spec.threshold if self.context is None else self.context.threshold
        self.threshold = default_threshold if self.options.threshold is None else float(self.options.threshold)
        if self.stride > self.patch:
            warnings.warn(f"stride {self.stride} px is larger than the {self.patch} px patch: "
                          f"{self.stride - self.patch} px between patches are never classified", stacklevel=2)
        self.scale = self.um_per_px / spec.um_per_px
        # grid, boxes and dense plan of the last frame size, stored and read as one tuple
        self._grid_boxes: Optional[tuple[TileGrid, np.ndarray, Optional[DensePlan], np.ndarray]] = None
        self._warned_colourless = False
        self._closed = False

    def _check_cell(self, model_um_per_px: float) -> None:
        """Refuse a stride whose cell (``stride`` model px × the model's µm/px) is wider than a results
        file holds (:data:`idc_edge.record.MAX_CELL_UM`, a metre): ``--stride 1000000`` ran and wrote a
        header whose ``cell_um`` its own ``report`` then refused.

        Raises:
            OptionError: naming the stride, its cell in µm and the largest stride the model takes.
        """
        from .record import MAX_CELL_UM

        cell_um = self.stride * model_um_per_px
        if cell_um > MAX_CELL_UM:
            self.classifier.close()
            raise OptionError(f"stride {self.stride} px is {cell_um:.7g} µm between patches at the model's "
                              f"{model_um_per_px:g} µm/px, more than the {MAX_CELL_UM:.7g} µm (a metre) a results "
                              f"file holds; use a stride of at most {int(MAX_CELL_UM // model_um_per_px)} px (the "
                              f"{self.patch} px patch, the default, leaves no gaps)", option="stride")

    @property
    def dense(self) -> bool:
        """True when frames are scored by one convolutional pass (dense mode), False patch by patch."""
        return self.output_stride is not None

    @property
    def spec(self):
        """The model's sidecar (:class:`~idc_edge.spec.ModelSpec`)."""
        return self.classifier.spec

    def _check_budget(self, shape: tuple[int, int]) -> None:
        """Refuse a frame whose rescaled copy or patch grid would exceed the memory budget."""
        h, w = float(shape[0]) * self.scale, float(shape[1]) * self.scale
        check_buffer((h, w, 3), 1, f"a {shape[1]}×{shape[0]} px frame at {self.um_per_px:g} µm/px rescaled to the "
                     f"model's {self.spec.um_per_px:g} µm/px", f"{self._check_scale()} or use smaller frames")
        rows = (max(h, self.patch) - self.patch) / self.stride + 1
        cols = (max(w, self.patch) - self.patch) / self.stride + 1
        check_buffer((rows, cols, _BYTES_PER_GRID_PATCH), 1, f"the patch grid of a {shape[1]}×{shape[0]} px frame at "
                     f"stride {self.stride}", "raise the stride or use smaller frames")

    def _warn_if_tiny(self, shape: tuple[int, int]) -> None:
        """Say so when a frame shrinks to less than a quarter of one patch at the model's scale (a
        mistyped um_per_px): its one padded patch is mostly padding, so "no tissue" means nothing."""
        w, h = rescaled_size(shape[1], shape[0], self.scale)
        note = tiny_note(w, h, self.patch)
        if note:
            warnings.warn(f"a {shape[1]}×{shape[0]} px frame at {self.um_per_px:g} µm/px is only {w}×{h} px at the "
                          f"model's {self.spec.um_per_px:g} µm/px, {note}; {self._check_scale()}", stacklevel=4)

    def _check_scale(self) -> str:
        """What to check when the frames' scale looks wrong: where it came from (an option, a profile)."""
        return f"check {self.options.um_per_px_from or 'um_per_px'} (microns per pixel of the camera)"

    def _grid_for(self, shape: tuple[int, int]) -> tuple[TileGrid, np.ndarray]:
        # grid and boxes are stored and read as one tuple: threads detecting frames of different
        # sizes each get a matching pair (never one frame's grid with another's boxes)
        cached = self._grid_boxes
        if cached is None or cached[0].frame_shape != shape:
            self._check_budget(shape)
            self._warn_if_tiny(shape)
            grid = make_grid(shape, self.patch, self.stride, self.scale)
            boxes = grid.boxes()
            boxes.flags.writeable = False
            plan = plan_dense(grid, self.output_stride, dense_plan.DENSE_TILE_PX) if self.dense else None
            cached = self._grid_boxes = (grid, boxes, plan, self._cell_areas(grid))
        return cached[0], cached[1]

    def _plan_for(self, grid: TileGrid) -> DensePlan:
        """The dense plan of ``grid`` (cached with it; made afresh if another thread's frame size
        replaced the cache in between)."""
        cached = self._grid_boxes
        if cached is not None and cached[0] is grid:
            return cached[2]
        return plan_dense(grid, self.output_stride, dense_plan.DENSE_TILE_PX)

    def _cell_areas(self, grid: TileGrid) -> np.ndarray:
        """Read-only float64 ``[rows, cols]``: mm² of the frame each window stands for
        (:meth:`~idc_edge.tiling.TileGrid.frame_shares`); cached with ``grid`` (see :meth:`_areas_for`)."""
        h, w = grid.frame_shape
        areas = grid.frame_shares() * (h * w * self.um_per_px ** 2 / 1e6)
        areas.flags.writeable = False  # one array shared by every result of this frame size
        return areas

    def _areas_for(self, grid: TileGrid) -> np.ndarray:
        """The cell areas of ``grid`` (cached with it; made afresh if another thread's frame size
        replaced the cache in between)."""
        cached = self._grid_boxes
        return cached[3] if cached is not None and cached[0] is grid else self._cell_areas(grid)

    def prepare(self, bgr: np.ndarray) -> tuple[np.ndarray, TileGrid, np.ndarray]:
        """(RGB frame at the model's scale, padded to its grid; the grid; patch boxes in frame pixels).

        ``bgr`` is already uint8 BGR ``[H, W, 3]`` (see :func:`~idc_edge.frames.to_bgr8`); :meth:`detect`
        normalises once before calling this. The white balance, when set, is applied here (after
        the rescale, on the small frame: a lookup table per channel).
        """
        grid, boxes = self._grid_for(bgr.shape[:2])
        if self.scale != 1.0:
            bgr = rescale(bgr, rescaled_size(bgr.shape[1], bgr.shape[0], self.scale))
        rgb = pad_to(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), grid.padded_shape)
        balance = self.options.white_balance
        if balance is not None and not balance.is_identity:
            rgb = balance.apply_rgb(rgb)
        return rgb, grid, boxes

    def detect(self, frame_bgr: np.ndarray, index: int = 0, timestamp: Optional[float] = None,
               keep_image: bool = False, cache: Optional[ScoreCache] = None) -> FrameResult:
        """The IDC map of one frame.

        Args:
            frame_bgr: the frame in **BGR** order as OpenCV gives it (uint8 ``[H, W, 3]``;
                grayscale, BGRA and 16-bit frames are converted).
            index: frame number to report: a whole number from 0 to
                :data:`~idc_edge.record.MAX_INDEX`, as a results file holds it.
            timestamp: seconds to report (within ±:data:`~idc_edge.record.MAX_TIME_S`); now when None.
            keep_image: attach the BGR frame to the result (for drawing later): the array given (or its
                8-bit conversion), not a copy.
            cache: the stream's :class:`~idc_edge.reuse.ScoreCache`: unchanged tissue patches keep
                their stored score (counted in ``result.reused``) and fresh scores are stored.
                None classifies every tissue patch.

        Raises:
            FrameError: the frame is empty or not an image, or its index or time is not one a results
                file can hold (:func:`frame_index`, :func:`frame_time`).
            ClosedError: :meth:`close` was called.
        """
        self._check_open()
        keep_image = validate.flag("keep_image", keep_image)  # "no" is true: the frame was kept
        index = frame_index(index)
        timestamp = frame_time(index, timestamp)
        t0 = time.perf_counter()
        frame_bgr = to_bgr8(frame_bgr)
        rgb, grid, boxes = self.prepare(frame_bgr)
        t1 = time.perf_counter()
        gated = self.options.focus.enabled or self.options.exposure.enabled
        # the gates judge tissue pixels only (glass has no structure and may be clipped), mask or not
        # one HSV image serves the tissue mask and the colour gate's glass
        hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV) if (self.options.tissue_mask or gated
                                                       or self.options.colour.enabled) else None
        tissue_px = tissue_pixels(rgb, self.options.tissue, hsv) if (self.options.tissue_mask or gated) else None
        fractions = patch_fractions(tissue_px, grid) if tissue_px is not None else None
        if self.options.tissue_mask:
            tissue = tissue_windows(fractions, self.options.tissue)
        else:
            tissue = np.ones(grid.shape, bool)
        no_colour = self._no_colour(hsv, tissue)
        quality = assess(rgb, grid, tissue_px, tissue, self.options.focus, self.options.exposure,
                         clip_levels_rgb=self._clip_levels(), tissue_fractions=fractions, colour=self.options.colour,
                         hsv=hsv, noise=self.options.noise)
        no_call = quality.no_call
        callable_ = tissue & ~no_call if no_call.any() else tissue  # no call: not classified, never IDC
        t2 = time.perf_counter()
        reused = None
        if cache is not None:
            signatures = patch_signatures(rgb, grid, cache.options.cell_px)
            reused = cache.reusable(grid, signatures, callable_)
            if not reused.any():
                reused = None
        todo = callable_ if reused is None else callable_ & ~reused
        fresh = np.zeros(grid.shape, bool)           # windows scored in this frame
        new_scores = np.empty(grid.shape, np.float32)
        choose = time.perf_counter() - t2            # change detection counts as choosing patches
        if self.dense:
            cut, invoke = self._score_dense(rgb, grid, todo, fresh, new_scores)
        else:
            cut, invoke = self._score_patches(rgb, grid, todo, fresh, new_scores)
        t4 = time.perf_counter()
        fresh &= callable_
        probs = np.full(grid.shape, np.nan, np.float32)
        probs[fresh] = new_scores[fresh]
        kept = None
        if reused is not None:
            kept = reused & ~fresh
            probs[kept] = cache.scores()[kept]
        if cache is not None:
            cache.update(signatures, fresh, probs[fresh])  # the windows' own scores: context is per frame
        window_probs = None
        if self.context is not None:
            window_probs = probs
            probs = field_context(probs, self.stride, self.context.sigma_px, self.context.weight)
        idc = np.zeros(grid.shape, bool)
        np.greater_equal(probs, self.threshold, out=idc, where=~np.isnan(probs))
        t5 = time.perf_counter()
        ms = 1000.0
        # each patch without a call has one reason: exposure, focus, ink, then colour, then noise
        inked = quality.inked & ~quality.blurred & ~quality.badly_exposed if quality.inked is not None \
            else np.zeros(grid.shape, bool)
        whole_frame = int((no_call & ~quality.blurred & ~quality.badly_exposed & ~inked).sum())
        return FrameResult(
            index=index, timestamp=steady_time() if timestamp is None else timestamp,
            probabilities=probs, window_probabilities=window_probs, tissue=tissue, idc=idc, boxes=boxes,
            threshold=self.threshold,
            frame_shape=grid.frame_shape,
            times=StageTimes((t1 - t0) * ms, (t2 - t1) * ms, (choose + cut) * ms, invoke * ms, (t5 - t4) * ms),
            reused=0 if kept is None else int(kept.sum()),
            image=frame_bgr if keep_image else None,
            no_call=no_call if no_call.any() else None, in_focus=quality.in_focus,
            exposure_ok=quality.exposure_ok, washed_out=quality.washed_out, darkest_tissue=quality.darkest_tissue,
            sharpness=quality.sharpness,
            no_call_focus=int((quality.blurred & ~quality.badly_exposed).sum()),
            no_call_exposure=int(quality.badly_exposed.sum()), no_call_ink=int(inked.sum()),
            colour_ok=quality.colour_ok, glass_cast=quality.glass_cast, pale_cast=quality.pale_cast,
            tissue_magenta=quality.tissue_magenta, isotropy=quality.isotropy, streaked=quality.streaked,
            channel_ratio=quality.channel_ratio,
            channel_band_ratio=quality.channel_band_ratio, colour_blurred=quality.colour_blurred,
            stain_ok=quality.stain_ok, stain_blueness=quality.stains.contrast,
            # a frame without any colour is said as that, not also as faint: one cause, one flag and one warning
            faint_colour=quality.faint_colour and not no_colour, no_colour=no_colour,
            colour_strength=quality.colour_strength,
            no_call_colour=0 if quality.colour_ok else whole_frame,
            noise_ok=quality.noise_ok, noise=quality.noise, tissue_noise=quality.tissue_noise,
            no_call_noise=whole_frame if quality.colour_ok and not quality.noise_ok else 0,
            cell_area_mm2=self._areas_for(grid),
        )

    def _no_colour(self, hsv: Optional[np.ndarray], tissue: np.ndarray) -> bool:
        """True when the frame (``hsv``: its OpenCV HSV at the model's scale, or None when not made) shows
        something but no colour at all (:func:`~idc_edge.tissue.colourless`: a monochrome camera, a grey
        stream). Judged only where it matters: no tissue found in ``tissue`` (bool windows), or every window
        classified without the mask. Warned once per detector: every frame of such a camera is the same."""
        if hsv is None or (self.options.tissue_mask and tissue.any()) or not colourless(hsv):
            return False
        if not self._warned_colourless:
            self._warned_colourless = True
            scored = not (self.options.tissue_mask or self.options.colour.enabled)  # else the colour gate stops them
            warnings.warn(no_colour_message("the frames", scored), NoColourWarning, stacklevel=3)
        return True

    def _clip_levels(self) -> tuple[int, int, int]:
        """The exposure gate's clip level per channel (RGB) after the white balance's lookup table."""
        level = self.options.exposure.clip_level
        balance = self.options.white_balance
        if balance is None:
            return (level, level, level)
        return tuple(int(min(255, round(level * g))) for g in balance.gains_rgb)  # type: ignore[return-value]

    def _score_patches(self, rgb: np.ndarray, grid: TileGrid, todo: np.ndarray, fresh: np.ndarray,
                       out: np.ndarray) -> tuple[float, float]:
        """Classify the ``todo`` windows patch by patch into ``out``, marking them in ``fresh``;
        returns (seconds cutting patches, seconds in the interpreter)."""
        index_flat = np.flatnonzero(todo)
        cut = invoke = 0.0
        # very large frames (whole images) go in chunks so memory stays bounded
        for start in range(0, index_flat.size, MAX_PATCHES_IN_MEMORY):
            part = index_flat[start:start + MAX_PATCHES_IN_MEMORY]
            ta = time.perf_counter()
            patches = extract_patches(rgb, grid, part)
            tb = time.perf_counter()
            out.flat[part] = self.classifier.predict(patches)
            cut += tb - ta
            invoke += time.perf_counter() - tb
        fresh.flat[index_flat] = True
        return cut, invoke

    def _score_dense(self, rgb: np.ndarray, grid: TileGrid, todo: np.ndarray, fresh: np.ndarray,
                     out: np.ndarray) -> tuple[float, float]:
        """Score the ``todo`` windows by dense passes into ``out`` (see :mod:`idc_edge.dense`): each
        pass holding one of them is run and all its windows get fresh scores (marked in ``fresh``;
        they cost nothing more). Unless ``options.dense`` is True, a pass whose few windows cost
        fewer MACs as patches (little tissue, reused scores, a stride wider than the output stride)
        leaves them to the patch path. Returns (seconds cutting, seconds in the interpreter)."""
        plan = self._plan_for(grid)
        need = np.bincount(plan.owner[todo], minlength=len(plan.passes))
        per_patch = None if self.options.dense else self.classifier.macs()
        as_patches = None
        cut = invoke = 0.0
        for k in np.flatnonzero(need):
            dense_pass = plan.passes[k]
            if per_patch is not None and need[k] * per_patch < self.classifier.macs(dense_pass.shape_px):
                if as_patches is None:
                    as_patches = np.zeros(grid.shape, bool)
                as_patches[dense_pass.block] = todo[dense_pass.block]
                continue
            ta = time.perf_counter()
            tile = rgb[dense_pass.ys, dense_pass.xs]
            tb = time.perf_counter()
            scores = self.classifier.predict_dense(tile)
            cut += tb - ta
            invoke += time.perf_counter() - tb
            out[dense_pass.block] = scores[dense_pass.local]
            fresh[dense_pass.block] = True
        if as_patches is not None:
            c, v = self._score_patches(rgb, grid, as_patches, fresh, out)
            cut, invoke = cut + c, invoke + v
        return cut, invoke

    def stream(self, frames: Iterable, keep_image: bool = True, reuse: Optional[bool] = None) -> Iterator[FrameResult]:
        """Detect on every frame of a source (see :func:`idc_edge.sources.open_source`).

        ``frames`` yields :class:`~idc_edge.sources.Frame` objects or bare BGR arrays. Sources skip
        and count unusable frames themselves; a bare array that is not an image raises
        :class:`~idc_edge.errors.FrameError`. Integer frames wider than 8 bits are read at the
        deepest bit depth the stream has shown (:class:`~idc_edge.frames.StreamDepth`), as sources
        read them: a dark frame of a 12-bit camera is not stretched to look bright. With ``reuse`` (default: ``options.reuse``, on),
        tissue patches that did not change since they were classified keep their score; a
        moving stage changes them, so they are classified again in the same frame. The scores
        live in this call's own :class:`~idc_edge.reuse.ScoreCache`, nothing is stored on the
        detector, so two streams do not interfere. A source that fills its arrays again (one buffer,
        or a driver's ring of up to :data:`RING_BUFFERS_NOTICED`) is noticed when a buffer a kept
        result still holds comes back: from then on each kept image is a copy, and a warning says
        the results already given may show a later frame.

        Raises:
            FrameError: ``frames`` is one image (an array), not frames: use :meth:`detect`.
            OptionError: ``frames`` is not iterable, or is a path (give ``open_source(path)``).
        """
        self._check_open()
        if isinstance(frames, np.ndarray):
            # iterating one image gave its rows, each detected as a grey frame, without a word
            raise FrameError(f"stream() takes an iterable of frames, got one {short(frames.shape)} array; for one "
                             "frame use detect(frame)")
        if isinstance(frames, (str, bytes, os.PathLike)):
            # a path was iterated character by character: "a frame must be a numpy image array, got str"
            raise OptionError(f"stream() takes frames, got the path {short(frames)}; open it as a source: "
                              "stream(open_source(path))")
        try:
            items = iter(frames)
        except TypeError:
            raise OptionError(f"stream() takes an iterable of frames (a source, a list of arrays), got "
                              f"{type(frames).__name__}") from None
        # flags, not truth values: reuse="no" turned score reuse on, keep_image="no" kept every frame
        keep_image = validate.flag("keep_image", keep_image)
        use = self.options.reuse if reuse is None else validate.flag("reuse", reuse)
        return self._stream(items, keep_image, ScoreCache(self.options.reuse_options) if use else None)

    def _stream(self, frames: Iterator, keep_image: bool, cache: Optional[ScoreCache]) -> Iterator[FrameResult]:
        depth = StreamDepth()  # a dark frame of a 12-bit camera is read at the depth the stream has shown
        # the caller's arrays kept in recent results (weakly: a result dropped cannot show a wrong frame) and a
        # sparse sample of each, to tell a buffer handed out again: one buffer, or a driver's ring of a few
        kept: deque = deque(maxlen=RING_BUFFERS_NOTICED)
        shared = False
        for i, item in enumerate(frames):
            if hasattr(item, "image"):  # a source's Frame, or a caller's own object like it
                image, index, timestamp = item.image, getattr(item, "index", i), getattr(item, "timestamp", None)
                damage = getattr(item, "damage", None)  # a source's frame decoded in part: said in its result
            else:  # a bare image, numbered by its place; a list's or tuple's own .index() is no frame number
                image, index, timestamp, damage = item, i, None, None
            if keep_image and isinstance(image, np.ndarray) and image.ndim >= 2:
                if not shared:
                    sample = _buffer_given_again(image, kept)
                    if sample is not None:
                        shared = True  # each result keeps its own frame from here on
                        if not np.array_equal(image[::16, ::16], sample):  # refilled, not one frame given twice
                            warnings.warn(SHARED_BUFFER_MESSAGE, stacklevel=2)
                if shared:
                    image = image.copy()
                else:
                    kept.append((weakref.ref(image), image[::16, ::16].copy()))
            if isinstance(image, np.ndarray) and image.dtype.kind in "iu" and image.dtype != np.uint8:
                image = depth.to_bgr8(image)
            result = self.detect(image, index=index, timestamp=timestamp, keep_image=keep_image, cache=cache)
            yield result if damage is None else replace(result, damage=str(damage))

    def classify_patches(self, patches_rgb: np.ndarray) -> np.ndarray:
        """Probability of IDC per patch, for uint8 **RGB** patches ``[N, P, P, 3]``, each patch alone
        (no field context: compare with the sidecar's ``threshold``, ``detector.spec.threshold``).

        Raises:
            PatchError: ``patches_rgb`` has the wrong type, shape or dtype.
            ClosedError: :meth:`close` was called.
        """
        self._check_open()
        return self.classifier.predict(patches_rgb)

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError("this Detector is closed; make a new one")

    def close(self) -> None:
        """Release the model; safe to call twice. Later calls raise :class:`ClosedError`."""
        self._closed = True
        self.classifier.close()

    def __enter__(self) -> "Detector":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
