"""Frames made here (no data set needed): an H&E-like synthetic slide, camera frames cut from
it as a still or moving stage, and those frames written as a video."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from ..fileio import opencv_path
MODEL_UM_PER_PX = 4.0


def synthetic_slide(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A BGR uint8 H&E-like slide at the model's 4 µm/px: ~60 % tissue in irregular islands on
    white glass, pink stroma with dark purple nuclei 2–3 px (8–12 µm) across, denser in some
    regions. Only its structure matters here (how much tissue, how it moves), not its diagnosis."""
    rng = np.random.default_rng(seed)

    def smooth_field(cell):
        low = rng.normal(size=(max(2, height // cell + 2), max(2, width // cell + 2))).astype(np.float32)
        return cv2.resize(low, (width, height), interpolation=cv2.INTER_CUBIC)

    outline = smooth_field(60)
    tissue = outline > np.quantile(outline, 0.55)
    dense = smooth_field(25) > 0.8
    shade = smooth_field(8)
    img = np.empty((height, width, 3), np.float32)
    img[:] = (244, 241, 243)
    pink = np.array((200, 165, 228), np.float32)  # BGR
    img[tissue] = pink + 12.0 * shade[tissue, None]
    p_nucleus = np.where(tissue, np.where(dense, 0.12, 0.025), 0.0)
    seeds = (rng.random((height, width)) < p_nucleus).astype(np.uint8)
    nuclei = cv2.dilate(seeds, np.ones((2, 2), np.uint8)).astype(bool)
    img[nuclei] = (135, 55, 95)
    img += rng.normal(0, 5, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def camera_frames(slide: np.ndarray, width: int, height: int, um_per_px: float, n: int, step_px: int = 0,
                  noise: float = 2.0, seed: int = 0) -> list[np.ndarray]:
    """``n`` BGR frames of ``width × height`` camera pixels at ``um_per_px``, cut from ``slide``
    (4 µm/px) along a row; the stage moves ``step_px`` camera pixels per frame (0: still, only
    the camera noise of ``noise`` grey levels changes)."""
    rng = np.random.default_rng(seed)
    zoom = MODEL_UM_PER_PX / um_per_px  # camera pixels per slide pixel
    win_w, win_h = int(np.ceil(width / zoom)) + 1, int(np.ceil(height / zoom)) + 1
    if slide.shape[0] < win_h or slide.shape[1] < win_w + int(np.ceil(n * step_px / zoom)) + 1:
        raise ValueError("slide too small for these frames; make a bigger synthetic_slide")
    frames = []
    y0 = (slide.shape[0] - win_h) // 2
    for i in range(n):
        shift = i * step_px / zoom  # slide pixels, may be fractional
        x0 = int(np.floor(shift))
        frac = shift - x0
        crop = slide[y0:y0 + win_h, x0:x0 + win_w + 1].astype(np.float32)
        # sub-pixel shift and zoom in one affine warp, as a camera on a moving stage would see it
        m = np.float32([[zoom, 0, -frac * zoom], [0, zoom, 0]])
        frame = cv2.warpAffine(crop, m, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        if noise:
            frame += rng.normal(0, noise, frame.shape).astype(np.float32)
        frames.append(np.clip(frame, 0, 255).astype(np.uint8))
    return frames


def slide_for(width: int, height: int, um_per_px: float, n: int, step_px: int, seed: int = 0) -> np.ndarray:
    """A synthetic slide just big enough for :func:`camera_frames` with these arguments."""
    zoom = MODEL_UM_PER_PX / um_per_px
    return synthetic_slide(int(height / zoom) + 40, int((width + n * step_px) / zoom) + 40, seed)

def write_video(path: Path, frames: Sequence[np.ndarray], fps: float = 30.0) -> Path:
    """Write BGR ``frames`` as an MJPG ``.avi`` (what USB microscope cameras send)."""
    h, w = frames[0].shape[:2]
    with opencv_path(path, "video") as where:
        writer = cv2.VideoWriter(where, cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
        for f in frames:
            writer.write(f)
        writer.release()
    return path
