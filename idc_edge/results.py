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

    def as_dict(self) -> dict[str, float]:
        return {"prepare": self.prepare, "mask": self.mask, "tiling": self.tiling,
                "invoke": self.invoke, "post": self.post, "total": self.total}


@dataclass(frozen=True)
class FrameResult:
    """The IDC map of one frame.

    Attributes:
        index: frame number in its source, from 0.
        timestamp: seconds (source time for files, wall-clock time for cameras).
        probabilities: float32 ``[rows, cols]`` probability of IDC per patch; NaN for background.
        tissue: bool ``[rows, cols]``, True where the patch shows tissue and was classified.
        idc: bool ``[rows, cols]``, True where probability >= threshold (never on background).
        boxes: int32 ``[rows, cols, 4]`` patch boxes (x0, y0, x1, y1) in frame pixels, x1/y1 exclusive.
        threshold: decision threshold used.
        frame_shape: (height, width) of the frame in pixels.
        times: per-stage timings in ms.
        reused: number of tissue patches whose score was reused from an earlier frame because
            they did not change (motion-aware reuse in :meth:`Detector.stream`).
        image: the BGR frame the result belongs to (None from :meth:`Detector.detect` unless kept).
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
    def idc_fraction(self) -> float:
        """Share of tissue patches called IDC (0 when there is no tissue)."""
        return self.n_idc / self.n_tissue if self.n_tissue else 0.0

    @property
    def tissue_fraction(self) -> float:
        """Share of patches that show tissue."""
        return self.n_tissue / self.n_patches if self.n_patches else 0.0

    def to_record(self) -> dict[str, Any]:
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
            "threshold": self.threshold,
            "idc_boxes": [[int(v) for v in self.boxes[r, c]] for r, c in zip(rows, cols)],
            "idc_scores": [round(float(self.probabilities[r, c]), 4) for r, c in zip(rows, cols)],
            "ms": {k: round(v, 3) for k, v in self.times.as_dict().items()},
        }
