"""Work per frame: MACs of the patch path and the dense path of a model for one camera frame."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..macs import model_macs


@dataclass(frozen=True)
class FrameWork:
    """MACs of one frame, patch path against dense path, for the same windows.

    Attributes:
        width, height, um_per_px, stride: the frame (camera pixels, µm per pixel) and stride (model px).
        windows: windows of the frame's grid (all of them: tissue mask off, the worst case).
        macs_per_patch: MACs of one patch (the model at its own input size).
        patch_macs: the patch path: windows × MACs per patch.
        dense_macs: the dense path: the passes the detector runs (tiles and edge strips) when every
            window is scored by a dense pass; None for a model without a dense pass.
        dense_passes: number of dense passes (interpreter calls) per frame.
    """

    width: int
    height: int
    um_per_px: float
    stride: int
    windows: int
    macs_per_patch: int
    patch_macs: int
    dense_macs: Optional[int]
    dense_passes: int

    @property
    def ratio(self) -> Optional[float]:
        """How many times fewer MACs the dense path needs (None without a dense path)."""
        return None if not self.dense_macs else self.patch_macs / self.dense_macs


def frame_macs(model_path: Optional[str], width: int = 1920, height: int = 1080, um_per_px: float = 1.0,
               stride: int = 25) -> FrameWork:
    """MACs of one ``width × height`` frame at ``um_per_px`` and ``stride`` for both paths of a model."""
    from ..classifier import resolve_model_path
    from ..dense import plan_dense
    from ..spec import read_spec
    from ..tiling import make_grid

    path = resolve_model_path(model_path)
    spec = read_spec(path)
    content = path.read_bytes()
    grid = make_grid((height, width), spec.patch_size_px, stride, um_per_px / spec.um_per_px)
    per_patch = model_macs(content)
    dense_total, passes = None, 0
    if spec.dense is not None:
        plan = plan_dense(grid, spec.dense.output_stride_px)
        cost = {hw: model_macs(content, hw) for hw in plan.shapes_px()}
        dense_total = sum(cost[p.shape_px] for p in plan.passes)
        passes = len(plan.passes)
    return FrameWork(width, height, um_per_px, stride, grid.size, per_patch, grid.size * per_patch, dense_total, passes)
