"""Motion-aware reuse: still and moving stage sequences streamed with reuse on and off."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from .synthetic import camera_frames, slide_for
from .timing import ratio


@dataclass(frozen=True)
class ReuseRow:
    """A sequence streamed with and without reuse (median ms per frame, interleaved)."""

    sequence: str
    width: int
    height: int
    um_per_px: float
    stride: int
    tissue_patches: float
    reused_fraction: float
    ms_reuse: float
    ms_no_reuse: float
    speedup: float
    max_score_error: float


def _interleaved_streams(det, frames: Sequence[np.ndarray], rounds: int) -> dict[str, np.ndarray]:
    """Seconds per pass over ``frames`` with reuse on and off, interleaved **frame by frame**: two
    streams of the same detector advance in turn (streams do not share state), so a burst of
    load from another process hits both within a few milliseconds."""
    out = {"reuse": np.zeros(rounds), "no_reuse": np.zeros(rounds)}
    for r in range(rounds):
        streams = {"reuse": det.stream(frames, keep_image=False, reuse=True),
                   "no_reuse": det.stream(frames, keep_image=False, reuse=False)}
        for i in range(len(frames)):
            # who goes first alternates frame by frame: the second run of a frame finds its pixels
            # in the cache, and an unbalanced order would bias the ratio by a few per cent
            order = list(streams) if (i + r) % 2 == 0 else list(streams)[::-1]
            for name in order:
                t = time.perf_counter()
                next(streams[name])
                out[name][r] += time.perf_counter() - t
    return out


def reuse_latency(model_path: Optional[str], width: int = 1920, height: int = 1080, um_per_px: float = 1.0,
                  stride: int = 25, n_frames: int = 12, rounds: int = 5, threads: int = 1,
                  sequences: Optional[dict[str, list[np.ndarray]]] = None,
                  dense: Optional[bool] = None) -> list[ReuseRow]:
    """Still and moving stage sequences through ``Detector.stream`` with reuse on and off.

    ``max_score_error`` is the largest |reused score − fresh score| over all frames: what reuse
    costs in accuracy. ``dense`` is the detector's option (None: dense mode when the model has it).
    """
    from ..detector import Detector

    if sequences is None:
        step = max(1, width // 40)
        slide = slide_for(width, height, um_per_px, n_frames, step)
        sequences = {"still": camera_frames(slide, width, height, um_per_px, n_frames, step_px=0),
                     "moving": camera_frames(slide, width, height, um_per_px, n_frames, step_px=step)}
    rows = []
    with Detector(model_path=model_path, um_per_px=um_per_px, stride=stride, num_threads=threads,
                  dense=dense) as det:
        for name, frames in sequences.items():
            on = list(det.stream(frames, keep_image=False, reuse=True))
            off = list(det.stream(frames, keep_image=False, reuse=False))
            err = 0.0
            for a, b in zip(on, off):
                both = a.tissue & b.tissue
                if both.any():
                    err = max(err, float(np.nanmax(np.abs(a.probabilities[both] - b.probabilities[both]))))
            timings = _interleaved_streams(det, frames, rounds)
            tissue = float(np.mean([r.n_tissue for r in on]))
            reused = sum(r.reused for r in on[1:]) / max(1, sum(r.n_tissue for r in on[1:]))
            rows.append(ReuseRow(name, width, height, um_per_px, stride, tissue, reused,
                                 float(np.median(timings["reuse"])) * 1000 / len(frames),
                                 float(np.median(timings["no_reuse"])) * 1000 / len(frames),
                                 ratio(timings["no_reuse"], timings["reuse"]), err))
    return rows
