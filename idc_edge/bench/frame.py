"""Frame latency: end to end and per stage for camera frames at real microscope scales."""
from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import cv2
import numpy as np

from ..fileio import opencv_path
from .synthetic import camera_frames, slide_for


@dataclass(frozen=True)
class FrameLatency:
    """One frame configuration: median ms per stage, end to end, and with the overlay drawn."""

    width: int
    height: int
    um_per_px: float
    stride: int
    mask: bool
    patches: int
    tissue_patches: float
    decode_ms: float
    rescale_ms: float
    mask_ms: float
    tiling_ms: float
    invoke_ms: float
    post_ms: float
    detect_ms: float
    overlay_ms: float
    fps: float
    fps_with_overlay: float


def _decode_ms(frames: Sequence[np.ndarray], workdir: Path) -> float:
    """Median ms to decode one frame of these frames written as an MJPG video (as cameras send)."""
    path = workdir / f"decode_{frames[0].shape[1]}x{frames[0].shape[0]}.avi"
    h, w = frames[0].shape[:2]
    times = []
    try:
        with opencv_path(path, "video") as where:  # a temporary folder may have any name
            writer = cv2.VideoWriter(where, cv2.VideoWriter_fourcc(*"MJPG"), 30, (w, h))
            for f in frames:
                writer.write(f)
            writer.release()
            cap = cv2.VideoCapture(where)
            try:
                while True:
                    t = time.perf_counter()
                    ok, _ = cap.read()
                    if not ok:
                        break
                    times.append(time.perf_counter() - t)
            finally:
                cap.release()
    finally:
        path.unlink(missing_ok=True)
    return float(np.median(times)) * 1000 if times else float("nan")


def frame_latency(model_path: Optional[str], sizes: Sequence[tuple[int, int]] = ((640, 480), (1280, 720), (1920, 1080)),
                  scales: Sequence[float] = (1.0, 0.5), strides: Sequence[int] = (50, 25),
                  masks: Sequence[bool] = (True, False), n_frames: int = 8, repeats: int = 3,
                  threads: int = 1, decode: bool = True, frames_for: Optional[Callable] = None) -> list[FrameLatency]:
    """End-to-end and per-stage latency of :meth:`Detector.detect` (no reuse) plus the overlay.

    Args:
        frames_for: ``(width, height, um_per_px, n) -> list of BGR frames``; default synthetic
            frames of a moving stage (so every frame is new).
        repeats: passes over the frames; stage times are medians over all passes. The stride and
            mask configurations of one frame size are timed interleaved, frame by frame.
    """
    from ..detector import Detector
    from ..overlay import draw_overlay

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for (w, h) in sizes:
            for um in scales:
                if frames_for is None:
                    step = max(1, w // 40)
                    frames = camera_frames(slide_for(w, h, um, n_frames, step), w, h, um, n_frames, step_px=step)
                else:
                    frames = frames_for(w, h, um, n_frames)
                dec = _decode_ms(frames, Path(tmp)) if decode else float("nan")
                configs = [(stride, mask) for stride in strides for mask in masks]
                dets = {c: Detector(model_path=model_path, um_per_px=um, stride=c[0], tissue_mask=c[1],
                                    num_threads=threads) for c in configs}
                samples: dict = {c: {"times": [], "detect": [], "overlay": [], "tissue": [], "patches": 0}
                                 for c in configs}
                try:
                    for det in dets.values():
                        det.detect(frames[0])  # warm-up: interpreters for the batch sizes this frame needs
                    # every configuration of this frame size runs on each frame in turn (rotating
                    # order), so a burst of load from another process hits all of them alike
                    for rep in range(repeats):
                        for i, f in enumerate(frames):
                            k = (rep * len(frames) + i) % len(configs)
                            for c in configs[k:] + configs[:k]:
                                t0 = time.perf_counter()
                                r = dets[c].detect(f)
                                t1 = time.perf_counter()
                                draw_overlay(f, r)
                                t2 = time.perf_counter()
                                q = samples[c]
                                q["times"].append(r.times)
                                q["detect"].append(t1 - t0)
                                q["overlay"].append(t2 - t1)
                                q["tissue"].append(r.n_tissue)
                                q["patches"] = r.n_patches
                finally:
                    for det in dets.values():
                        det.close()
                med = lambda xs: float(np.median(xs))  # noqa: E731
                for (stride, mask), q in samples.items():
                    stages = q["times"]
                    detect_ms = med(q["detect"]) * 1000
                    rows.append(FrameLatency(
                        w, h, um, stride, mask, q["patches"], float(np.mean(q["tissue"])), dec,
                        med([x.prepare for x in stages]), med([x.mask for x in stages]),
                        med([x.tiling for x in stages]), med([x.invoke for x in stages]),
                        med([x.post for x in stages]), detect_ms, med(q["overlay"]) * 1000,
                        1000 / detect_ms, 1000 / (med(np.add(q["detect"], q["overlay"])) * 1000)))
    return rows
