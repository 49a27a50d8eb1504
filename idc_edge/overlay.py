"""Drawing an IDC heat map on the full-resolution frame.

Probabilities are painted per patch cell at the model's (small) scale — each pixel takes the
patch whose centre is nearest — coloured, resized once to the frame and blended only where
there is tissue; IDC regions get an outline and the frame a status line. All heavy work is
OpenCV on whole images, none per patch.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

from .errors import OptionError
from .results import FrameResult


@dataclass(frozen=True)
class OverlayStyle:
    """How the overlay looks. Colours are **BGR** tuples."""

    alpha: float = 0.4                      # heat-map opacity over tissue, 0–1
    colormap: int = cv2.COLORMAP_JET        # probability 0 → blue, 1 → red
    outline_bgr: tuple[int, int, int] = (0, 0, 255)
    outline_px: int = 2
    status: bool = True

    def __post_init__(self):
        if not 0.0 <= self.alpha <= 1.0:
            raise OptionError(f"overlay alpha must be between 0 and 1, got {self.alpha!r}")


def draw_overlay(frame_bgr: np.ndarray, result: FrameResult, style: OverlayStyle = OverlayStyle(),
                 fps: Optional[float] = None) -> np.ndarray:
    """A copy of the BGR frame with the IDC heat map, IDC outlines and a status line.

    Args:
        frame_bgr: the frame the result was computed on, uint8 BGR ``[H, W, 3]``.
        result: the detector's result for that frame.
        style: colours and opacity.
        fps: frames per second to show in the status line (omitted when None).
    """
    h, w = result.frame_shape
    if frame_bgr.shape[:2] != (h, w):
        raise ValueError(f"frame is {frame_bgr.shape[1]}×{frame_bgr.shape[0]}, result is for {w}×{h}")
    # work at a small scale: about one pixel per 4 frame pixels is plenty for patch-sized cells
    boxes = result.boxes
    rows, cols = result.tissue.shape
    cell_w = max(1, int(boxes[0, 0, 2] - boxes[0, 0, 0]))
    factor = max(1, cell_w // 12)
    sh, sw = max(1, h // factor), max(1, w // factor)
    centres_x = (boxes[0, :, 0] + boxes[0, :, 2]) / 2.0 / factor
    centres_y = (boxes[:, 0, 1] + boxes[:, 0, 3]) / 2.0 / factor
    ix = _nearest(sw, centres_x)
    iy = _nearest(sh, centres_y)
    probs = np.nan_to_num(result.probabilities, nan=0.0)
    prob_small = probs[iy[:, None], ix[None, :]]
    tissue_small = result.tissue[iy[:, None], ix[None, :]].astype(np.uint8)
    idc_small = result.idc[iy[:, None], ix[None, :]].astype(np.uint8)
    if tissue_small.any():
        # full-frame passes kept to four (resize heat, resize mask, blend, restore background);
        # the colour map is a cached 256-entry table applied to the small image
        grey = np.clip(prob_small * 255.0 + 0.5, 0, 255).astype(np.uint8)
        heat = cv2.LUT(cv2.merge((grey, grey, grey)), _colormap_lut(style.colormap))
        heat = cv2.resize(heat, (w, h), interpolation=cv2.INTER_LINEAR)
        out = cv2.addWeighted(frame_bgr, 1.0 - style.alpha, heat, style.alpha, 0.0, dst=heat)  # in place
        if not tissue_small.all():
            background = cv2.resize(1 - tissue_small, (w, h), interpolation=cv2.INTER_NEAREST)
            cv2.copyTo(frame_bgr, background, out)
    else:
        out = frame_bgr.copy()
    if idc_small.any() and style.outline_px > 0:
        contours, _ = cv2.findContours(idc_small, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        scaled = [np.round(c.astype(np.float32) * np.array([w / sw, h / sh], np.float32)).astype(np.int32)
                  for c in contours]
        # the outline follows the patch grid (axis-aligned steps): anti-aliasing would only cost time
        cv2.polylines(out, scaled, True, style.outline_bgr, style.outline_px, cv2.LINE_8)
    if style.status:
        draw_status(out, result, fps)
    return out


@functools.lru_cache(maxsize=8)
def _colormap_lut(colormap: int) -> np.ndarray:
    """uint8 ``[256, 1, 3]`` BGR table of an OpenCV colour map (``applyColorMap`` rebuilds it every call)."""
    lut = cv2.applyColorMap(np.arange(256, dtype=np.uint8).reshape(256, 1), colormap)
    lut.flags.writeable = False
    return lut


def _nearest(length: int, centres: np.ndarray) -> np.ndarray:
    """For pixels 0..length-1 along one axis, the index of the nearest of ``centres`` (sorted)."""
    if len(centres) == 1:
        return np.zeros(length, np.intp)
    mids = (centres[:-1] + centres[1:]) / 2.0
    return np.searchsorted(mids, np.arange(length) + 0.5).astype(np.intp)


def status_text(result: FrameResult, fps: Optional[float] = None) -> str:
    """``"12.3 fps  IDC 18.0 %  tissue 64.2 %"`` for one result."""
    parts = [] if fps is None else [f"{fps:.1f} fps"]
    parts += [f"IDC {100 * result.idc_fraction:.1f} %", f"tissue {100 * result.tissue_fraction:.1f} %"]
    return "  ".join(parts)


def draw_status(image_bgr: np.ndarray, result: FrameResult, fps: Optional[float] = None) -> None:
    """Write the status line in the top-left corner of ``image_bgr`` (in place)."""
    text = status_text(result, fps)
    scale = max(0.4, image_bgr.shape[1] / 1600.0)
    thickness = max(1, int(round(scale * 2)))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    cv2.rectangle(image_bgr, (0, 0), (tw + 12, th + base + 12), (0, 0, 0), -1)
    cv2.putText(image_bgr, text, (6, th + 6), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness, cv2.LINE_AA)
