"""Drawing the IDC map on a frame so that a pathologist can read it.

- **Colour**: probability of IDC through a viridis-like map (blue → teal → green → yellow;
  perceptually ordered and readable with the common colour-vision deficiencies), built here as a
  256-entry table from a few anchor colours. Below ``style.show_below`` nothing is painted, so
  benign tissue keeps its H&E colours; glass is never painted.
- **Outlines** around the patches called IDC (probability >= the threshold), black: inside they
  border the map's yellow-green, outside unpainted H&E or blue.
- **Legend**: a colour bar from 0 to 1 with the threshold marked, a scale bar in µm (when the
  frame's µm/px is known), and a status line led by the IDC area (mm² and % of tissue) with the
  model's name and "research use only"; frames per second small in a corner.
- **No call**: a frame flagged out of focus, colour-cast or noisy (``result.in_focus``,
  ``colour_ok`` or ``noise_ok`` False) says so in the status line and counts no IDC; patches flagged ``result.no_call`` (bool grid) are painted grey.

Probabilities are painted per patch cell at a small scale (each pixel takes the patch whose centre
is nearest), resized once and blended only inside the bounding box of what is painted; the legend
is drawn once per frame size and pasted. The frame may be smaller than the one the result was
computed on (same aspect ratio): a browser view draws on a downscaled copy.
"""
from __future__ import annotations

import functools
import math
import numbers
from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

from . import validate
from .errors import FrameError, OptionError
from .frames import to_bgr8
from .results import FrameResult

#: viridis-like anchors, RGB, evenly spaced from 0 to 1 (the published map's values at these points)
_VIRIDIS_RGB = ((68, 1, 84), (72, 40, 120), (62, 74, 137), (49, 104, 142), (38, 130, 142), (31, 158, 137),
                (53, 183, 121), (109, 205, 89), (180, 222, 44), (253, 231, 37))
_MAP_START = 0.25
NO_CALL_BGR = (150, 150, 150)
_FONT = cv2.FONT_HERSHEY_SIMPLEX


@dataclass(frozen=True)
class OverlayStyle:
    """How the overlay looks. Colours are **BGR** tuples.

    Attributes:
        alpha: opacity of the colour map where it is painted, 0–1.
        show_below: probabilities below this stay unpainted (benign tissue keeps its colours), 0–1.
        outline: draw outlines around the patches called IDC.
        outline_px: outline width in frame pixels.
        outline_bgr: the outline's colour: black reads on the yellow-green of IDC inside it and on the
            unpainted or blue tissue outside.
        outline_halo: draw a light edge around the outline too (costs a second line).
        legend: draw the colour bar and the scale bar.
        status: draw the status line (IDC area, model, research use only) and frames per second.
    """

    alpha: float = 0.45
    show_below: float = 0.25
    outline: bool = True
    outline_px: int = 2
    outline_bgr: tuple[int, int, int] = (0, 0, 0)
    outline_halo: bool = False
    legend: bool = True
    status: bool = True

    def __post_init__(self):
        for name in ("alpha", "show_below"):
            object.__setattr__(self, name, validate.probability(name, getattr(self, name)))
        # at most what OpenCV draws (1e9 failed in cv2.polylines at the first frame drawn, mid-run)
        object.__setattr__(self, "outline_px", validate.whole_number("outline_px", self.outline_px, maximum=1000,
                                                                     unit="pixels"))
        for name in ("outline", "outline_halo", "legend", "status"):  # "no" drew them, as any text is true
            object.__setattr__(self, name, validate.flag(name, getattr(self, name)))
        # a colour OpenCV takes: "red" failed in cv2.polylines mid-run; nan, 300 or two numbers drew some colour
        bgr = self.outline_bgr
        if (isinstance(bgr, (str, bytes)) or not hasattr(bgr, "__len__") or len(bgr) != 3
                or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and 0 <= v <= 255 for v in bgr)):
            raise OptionError(f"outline_bgr must be three whole numbers from 0 to 255 (blue, green, red), got "
                              f"{bgr!r:.60}", option="outline_bgr")
        object.__setattr__(self, "outline_bgr", tuple(int(v) for v in bgr))


@dataclass(frozen=True)
class OverlayInfo:
    """What the overlay says about the run (all optional).

    Attributes:
        um_per_px: microns per pixel of the frame the *result* was computed on (scale bar).
        cell_um: side in µm of the square each classified patch stands for (its stride): IDC area.
        model_name: shown in the status line.
    """

    um_per_px: Optional[float] = None
    cell_um: Optional[float] = None
    model_name: Optional[str] = None

    def __post_init__(self):
        # checked when made: text or NaN here failed inside the scale bar's arithmetic at the first frame drawn
        if self.um_per_px is not None:
            object.__setattr__(self, "um_per_px", validate.um_per_px("um_per_px", self.um_per_px))
        if self.cell_um is not None:
            object.__setattr__(self, "cell_um", validate.positive_number("cell_um", self.cell_um, "µm"))
        if self.model_name is not None and not isinstance(self.model_name, str):
            raise OptionError(f"model_name must be text, got {type(self.model_name).__name__}", option="model_name")


def colour_table() -> np.ndarray:
    """The colour map: uint8 ``[256, 3]`` **BGR**, entry i for probability i / 255."""
    return _table().copy()


@functools.lru_cache(maxsize=1)
def _table() -> np.ndarray:
    anchors = np.array(_VIRIDIS_RGB, np.float64)
    x = np.linspace(0.0, 1.0, len(anchors))
    # probability 0..1 runs over the map's upper three quarters (blue → yellow): its darkest purples
    # would read as haematoxylin on H&E
    t = _MAP_START + (1.0 - _MAP_START) * np.arange(256) / 255.0
    rgb = np.stack([np.interp(t, x, anchors[:, c]) for c in range(3)], axis=1)
    lut = np.round(rgb[:, ::-1]).astype(np.uint8)
    lut.flags.writeable = False
    return lut


def idc_area_mm2(result: FrameResult, cell_um: float) -> tuple[float, float]:
    """(IDC area, tissue area) in mm²: each classified patch stands for its share of the frame
    (``result.cell_area_mm2``), so neither exceeds the frame's own area. Counted as ``cell_um``
    squares (stride × model µm/px), a patch on a frame narrower than the stride stood for more than
    the whole frame (``--stride 500``: 8 times a 0.48 mm² frame), and the last row and column, moved
    back to end on the frame's edge, were counted whole over the row before. A result without
    ``cell_area_mm2`` (made by hand) counts ``cell_um`` squares."""
    areas = getattr(result, "cell_area_mm2", None)
    if areas is not None and np.shape(areas) == np.shape(result.tissue):
        return float(areas[result.idc].sum()), float(areas[result.tissue].sum())
    cell = (cell_um / 1000.0) ** 2
    return result.n_idc * cell, result.n_tissue * cell


def whole_frame_no_call(result) -> bool:
    """True when a frame-wide gate (focus, colour, noise, stray light) made the whole frame no call, or the
    frame has no colour at all (nothing in it can be judged)."""
    return any(getattr(result, flag, None) is False for flag in ("in_focus", "colour_ok", "noise_ok")) \
        or any(getattr(result, flag, False) is True for flag in ("washed_out", "no_colour"))


def status_text(result: FrameResult, fps: Optional[float] = None, info: OverlayInfo = OverlayInfo()) -> str:
    """``"IDC 0.42 mm² (18.0 % of tissue) · s2_deep · research use only"`` (fps last, when given)."""
    no_call = getattr(result, "no_call", None)
    if getattr(result, "streaked", False):
        parts = ["MOTION BLUR: no call (hold the stage still)"]
    elif getattr(result, "colour_blurred", False):
        parts = ["COLOUR BLUR: no call (one colour out of focus: the camera's lens)"]
    elif getattr(result, "in_focus", None) is False:
        parts = ["OUT OF FOCUS: no call"]
    elif getattr(result, "washed_out", False):
        parts = ["WASHED OUT: no call (stray light: cap the eyepieces, shade the stand)"]
    elif getattr(result, "no_colour", False):
        parts = ["NO COLOUR: no call (a monochrome camera or grey mode? use its colour mode)"]
    elif getattr(result, "faint_colour", False):
        parts = ["FAINT COLOUR: no call (camera saturation turned down? colour mode?)"]
    elif getattr(result, "stain_ok", None) is False:
        parts = ["STAIN COLOURS: no call (red and blue swapped? camera hue?)"]
    elif getattr(result, "colour_ok", None) is False:
        parts = ["COLOUR CAST: no call (calibrate white)"]
    elif getattr(result, "noise_ok", None) is False:
        parts = ["NOISY: no call (more light or a longer exposure)"]
    elif info.cell_um:
        area, _ = idc_area_mm2(result, info.cell_um)
        parts = [f"IDC {area:.2f} mm² ({100 * result.idc_fraction:.1f} % of tissue)"]
    else:
        parts = [f"IDC {100 * result.idc_fraction:.1f} % of tissue"]
    if no_call is not None and np.any(no_call) and not whole_frame_no_call(result):
        parts.append(f"{int(np.sum(no_call))} patch(es) without a call")
    if getattr(result, "exposure_ok", None) is False and not getattr(result, "washed_out", False):
        parts.append("check exposure")
    if info.model_name:
        parts.append(info.model_name)
    parts.append("research use only")
    if fps is not None:
        parts.append(f"{fps:.1f} fps")
    return " · ".join(parts)


def draw_overlay(frame_bgr: np.ndarray, result: FrameResult, style: OverlayStyle = OverlayStyle(),
                 fps: Optional[float] = None, info: OverlayInfo = OverlayInfo()) -> np.ndarray:
    """A copy of the BGR frame with the IDC map, outlines, legend and status line.

    Args:
        frame_bgr: the frame the result was computed on (BGR, as given to ``detect``), or a resized
            copy of it with the same aspect ratio.
        result: the detector's result for that frame.
        style: what to draw and how.
        fps: frames per second, shown small in the top-right corner (omitted when None).
        info: µm/px, cell size and model name for the scale bar and status line.

    The frame may be of any kind :meth:`~idc_edge.detector.Detector.detect` takes (grayscale, BGRA,
    16-bit, float, any memory layout): it is converted as ``detect`` converts it
    (:func:`~idc_edge.frames.to_bgr8`), so the frame given to ``detect`` can be drawn on as it is.

    Raises:
        FrameError: ``frame_bgr`` is None (``detect(..., keep_image=True)`` keeps the frame in
            ``result.image``) or not an image, or its aspect ratio differs from the result's frame.
        OptionError: ``result``, ``style``, ``info`` or ``fps`` is not of its kind.
    """
    if not isinstance(result, FrameResult):
        raise OptionError(f"result must be the FrameResult of the frame, got {type(result).__name__}", option="result")
    if not isinstance(style, OverlayStyle):
        raise OptionError(f"style must be an OverlayStyle, got {type(style).__name__}", option="style")
    if not isinstance(info, OverlayInfo):
        raise OptionError(f"info must be an OverlayInfo, got {type(info).__name__}", option="info")
    if fps is not None:
        fps = validate.number("fps", fps, 0.0, 1e6, "frames per second")
    if frame_bgr is None:
        raise FrameError("draw_overlay needs the frame the result was computed on, got None (detect(frame, "
                         "keep_image=True) keeps it in result.image)", options=["keep_image=True"])
    frame_bgr = to_bgr8(frame_bgr)  # as detect converted it: grey, BGRA, 16-bit and float frames are drawn on too
    rh, rw = result.frame_shape
    h, w = frame_bgr.shape[:2]
    if (h, w) != (rh, rw) and abs(w * rh - h * rw) > 0.02 * w * rh:
        raise FrameError(f"frame is {w}×{h}, result is for {rw}×{rh}: draw on that frame or a resized copy of it")
    sx, sy = w / rw, h / rh
    boxes = result.boxes
    cell_w = max(1, int((boxes[0, 0, 2] - boxes[0, 0, 0]) * sx))
    factor = max(1, cell_w // 12)  # about one small pixel per 4 frame pixels is plenty for patch-sized cells
    sh, sw = max(1, h // factor), max(1, w // factor)
    iy = _nearest(sh, (boxes[:, 0, 1] + boxes[:, 0, 3]) * (sy / 2.0 / factor))
    ix = _nearest(sw, (boxes[0, :, 0] + boxes[0, :, 2]) * (sx / 2.0 / factor))
    probs = np.nan_to_num(result.probabilities, nan=0.0)
    no_call = getattr(result, "no_call", None)  # tissue left without a call (out of focus, badly exposed)
    no_call = np.asarray(no_call, bool) if no_call is not None and np.any(no_call) else None
    shown = result.tissue & (probs >= style.show_below)
    colours = _table()[np.clip(probs * 255.0 + 0.5, 0, 255).astype(np.uint8)]  # per patch, [rows, cols, 3]
    if no_call is not None and no_call.any():
        colours[no_call] = NO_CALL_BGR
        shown = shown | no_call
    idc = result.idc & ~no_call if no_call is not None else result.idc
    if shown.any():
        rows = np.flatnonzero(shown.any(axis=1))
        cols = np.flatnonzero(shown.any(axis=0))
        # the painted cells' bounding box at the small scale, then in frame pixels
        ys, xs = np.flatnonzero(np.isin(iy, rows)), np.flatnonzero(np.isin(ix, cols))
        y0, y1, x0, x1 = ys[0], ys[-1] + 1, xs[0], xs[-1] + 1
        Y0, Y1 = int(y0 * h / sh), h if y1 == sh else int(math.ceil(y1 * h / sh))
        X0, X1 = int(x0 * w / sw), w if x1 == sw else int(math.ceil(x1 * w / sw))
        sub_iy, sub_ix = iy[y0:y1, None], ix[None, x0:x1]
        heat = cv2.resize(colours[sub_iy, sub_ix], (X1 - X0, Y1 - Y0), interpolation=cv2.INTER_LINEAR)
        src = frame_bgr[Y0:Y1, X0:X1]
        if (Y0, Y1, X0, X1) == (0, h, 0, w):
            out = cv2.addWeighted(frame_bgr, 1.0 - style.alpha, heat, style.alpha, 0.0, dst=heat)
            roi = out
        else:
            out = frame_bgr.copy()
            roi = out[Y0:Y1, X0:X1]
            cv2.addWeighted(src, 1.0 - style.alpha, heat, style.alpha, 0.0, dst=roi)  # into the view of ``out``
        keep = shown[sub_iy, sub_ix]
        if not keep.all():
            unpainted = cv2.resize((~keep).astype(np.uint8), (X1 - X0, Y1 - Y0), interpolation=cv2.INTER_NEAREST)
            cv2.copyTo(src, unpainted, roi)
    else:
        out = frame_bgr.copy()
    if style.outline and idc.any():
        small = idc[iy[:, None], ix[None, :]].astype(np.uint8)
        contours, _ = cv2.findContours(small, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        scale = np.array([w / sw, h / sh], np.float32)
        scaled = [np.round(c.astype(np.float32) * scale).astype(np.int32) for c in contours]
        # the outline follows the patch grid (axis-aligned steps): anti-aliasing would only cost time
        if style.outline_halo:  # a light edge around the line, for dark outline colours on dark tissue
            cv2.polylines(out, scaled, True, (255, 255, 255), style.outline_px + 2, cv2.LINE_8)
        cv2.polylines(out, scaled, True, style.outline_bgr, style.outline_px, cv2.LINE_8)
    if style.legend:
        um_per_px = info.um_per_px / sx if info.um_per_px else None
        _paste(out, _legend(w, h, result.threshold, style.show_below, um_per_px, no_call is not None))
    if style.status:
        draw_status(out, result, fps, info)
    return out


def _nearest(length: int, centres: np.ndarray) -> np.ndarray:
    """For pixels 0..length-1 along one axis, the index of the nearest of ``centres`` (sorted)."""
    if len(centres) == 1:
        return np.zeros(length, np.intp)
    mids = (centres[:-1] + centres[1:]) / 2.0
    return np.searchsorted(mids, np.arange(length) + 0.5).astype(np.intp)


# -- text with µ and ² (OpenCV's Hershey fonts have neither) ---------------------------------------

def _text_width(text: str, scale: float, thickness: int) -> int:
    width = 0
    for part, kind in _runs(text):
        s = scale * 0.6 if kind == "sup" else scale
        width += cv2.getTextSize(part, _FONT, s, thickness)[0][0]
    return width


def _runs(text: str):
    """(piece, kind) with kind "text", "mu" (µ, drawn as u with a descender) or "sup" (²)."""
    buf = ""
    for ch in text:
        if ch in "µ²":
            if buf:
                yield buf, "text"
                buf = ""
            yield ("u", "mu") if ch == "µ" else ("2", "sup")
        else:
            buf += ch
    if buf:
        yield buf, "text"


def put_text(image: np.ndarray, text: str, org: tuple[int, int], scale: float, colour, thickness: int = 1) -> int:
    """``cv2.putText`` that also draws µ and ², anti-aliased; returns the width drawn in pixels."""
    x, y = org
    (_, th), _ = cv2.getTextSize("u", _FONT, scale, thickness)
    for part, kind in _runs(text):
        if kind == "sup":
            s = scale * 0.6
            cv2.putText(image, part, (x, y - int(th * 0.75)), _FONT, s, colour, thickness, cv2.LINE_AA)
            x += cv2.getTextSize(part, _FONT, s, thickness)[0][0]
            continue
        cv2.putText(image, part, (x, y), _FONT, scale, colour, thickness, cv2.LINE_AA)
        pw = cv2.getTextSize(part, _FONT, scale, thickness)[0][0]
        if kind == "mu":  # the descender of µ on the left stem of the u
            stem = x + max(1, int(round(pw * 0.2)))
            cv2.line(image, (stem, y - th // 2), (stem, y + int(th * 0.45)), colour, thickness, cv2.LINE_AA)
        x += pw
    return x - org[0]


#: the smallest font scale of the status line (about 8 px capitals), however narrow the frame
MIN_STATUS_SCALE = 0.3


def draw_status(image_bgr: np.ndarray, result: FrameResult, fps: Optional[float] = None,
                info: OverlayInfo = OverlayInfo()) -> None:
    """The status line on a dark band across the top of ``image_bgr`` (in place); fps small, top right,
    where the status line leaves room for it (on a narrow frame the status, which says why a frame is no
    call, is what stays)."""
    w = image_bgr.shape[1]
    text = status_text(result, None, info)
    scale = max(0.4, w / 2400.0)
    thickness = max(1, int(round(scale * 1.6)))
    wide = cv2.getTextSize(text, _FONT, scale, thickness)[0][0]
    if wide > w - 16:  # a long reason on a narrow frame: smaller, so that its end (what to do) is not cut off
        scale = max(MIN_STATUS_SCALE, scale * (w - 16) / wide)
    (_, th), base = cv2.getTextSize("Ag", _FONT, scale, thickness)
    band = th + base + 10
    alert = whole_frame_no_call(result)
    cv2.rectangle(image_bgr, (0, 0), (w, band), (0, 0, 140) if alert else (32, 32, 32), -1)
    end = 8 + put_text(image_bgr, text, (8, th + 5), scale, (255, 255, 255), thickness)
    if fps is not None:
        small = scale * 0.75
        label = f"{fps:.1f} fps"
        fw = cv2.getTextSize(label, _FONT, small, 1)[0][0]
        if w - fw - 8 >= end + 8:  # drawn over the status line's end it made both unreadable
            cv2.putText(image_bgr, label, (w - fw - 8, th + 5), _FONT, small, (200, 200, 200), 1, cv2.LINE_AA)


# -- legend: colour bar with the threshold, scale bar -------------------------------------------------

def nice_length_um(um_per_px: float, target_px: float) -> float:
    """The 1-2-5 × 10^k length in µm whose bar is closest to ``target_px`` pixels (not longer)."""
    target_um = target_px * um_per_px
    best = None
    for k in range(-1, 6):
        for m in (1, 2, 5):
            length = m * 10.0 ** k
            if length <= target_um and (best is None or length > best):
                best = length
    return best or 0.1


def _paste(out: np.ndarray, legend) -> None:
    patch, (x, y) = legend
    ph, pw = patch.shape[:2]
    if x < 0 or y < 0 or y + ph > out.shape[0] or x + pw > out.shape[1]:
        return  # frame too small for a legend
    out[y:y + ph, x:x + pw] = patch


@functools.lru_cache(maxsize=16)
def _legend(w: int, h: int, threshold: float, show_below: float, um_per_px: Optional[float], no_call: bool):
    """(BGR patch, top-left) of the colour bar and scale bar for a w×h frame."""
    scale = max(0.35, w / 3200.0)
    thickness = max(1, int(round(scale * 1.6)))
    (_, th), base = cv2.getTextSize("0", _FONT, scale, thickness)
    pad = max(4, th // 2)
    bar_w, bar_h = max(60, w // 5), max(6, h // 90)
    scale_w = max(40, w // 7)
    height = pad * 4 + th * 2 + bar_h + base + (pad + th if no_call else 0)  # the no-call key gets a row
    width = pad * 5 + bar_w + scale_w + _text_width("1000 µm", scale, thickness)
    if width > w or height > h // 3:
        return np.zeros((1, 1, 3), np.uint8), (-1, -1)
    patch = np.full((height, width, 3), 32, np.uint8)
    # colour bar: 0..1, unpainted below show_below, threshold marked
    bx, by = pad * 2 + (scale_w + _text_width("1000 µm", scale, thickness) + pad if um_per_px else 0), pad * 2 + th
    xs = np.clip(np.round(np.linspace(0, 255, bar_w)).astype(np.int64), 0, 255)
    row = _table()[xs]
    row[xs < show_below * 255] = 32
    patch[by:by + bar_h, bx:bx + bar_w] = row[None]
    cv2.rectangle(patch, (bx - 1, by - 1), (bx + bar_w, by + bar_h), (200, 200, 200), 1)
    put_text(patch, "probability of IDC", (bx + bar_w // 2 - _text_width("probability of IDC", scale, thickness) // 2,
                                            by - pad // 2), scale, (255, 255, 255), thickness)
    put_text(patch, "0", (bx, by - pad // 2), scale, (255, 255, 255), thickness)
    put_text(patch, "1", (bx + bar_w - _text_width("1", scale, thickness), by - pad // 2), scale, (255, 255, 255),
             thickness)
    tx = bx + int(round(threshold * (bar_w - 1)))
    cv2.line(patch, (tx, by - pad // 2), (tx, by + bar_h + pad // 2), (255, 255, 255), max(2, thickness))
    label = f"IDC >= {threshold:.2f}"
    lx = min(max(bx, tx - _text_width(label, scale, thickness) // 2), bx + bar_w - _text_width(label, scale, thickness))
    put_text(patch, label, (lx, by + bar_h + pad + th), scale, (255, 255, 255), thickness)
    if no_call:
        put_text(patch, "grey: no call", (bx, by + bar_h + 2 * (pad + th)), scale, NO_CALL_BGR, thickness)
    if um_per_px:
        length = nice_length_um(um_per_px, scale_w)
        px = max(1, int(round(length / um_per_px)))
        sy = by + bar_h // 2
        cv2.rectangle(patch, (pad * 2, sy - max(2, bar_h // 3)), (pad * 2 + px, sy + max(2, bar_h // 3)),
                      (255, 255, 255), -1)
        text = f"{length:g} µm" if length < 1000 else f"{length / 1000:g} mm"
        put_text(patch, text, (pad * 2, by + bar_h + pad + th), scale, (255, 255, 255), thickness)
    patch.flags.writeable = False
    return patch, (w - width - pad, h - height - pad)
