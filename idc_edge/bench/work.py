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
        macs_per_patch: MACs of one patch (the model at its own input size, or at the patch size where it leaves that open).
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
    per_patch = model_macs(content, (spec.patch_size_px, spec.patch_size_px))  # a model of open size too
    dense_total, passes = None, 0
    if spec.dense is not None:
        plan = plan_dense(grid, spec.dense.output_stride_px)
        cost = {hw: model_macs(content, hw) for hw in plan.shapes_px()}
        dense_total = sum(cost[p.shape_px] for p in plan.passes)
        passes = len(plan.passes)
    return FrameWork(width, height, um_per_px, stride, grid.size, per_patch, grid.size * per_patch, dense_total, passes)


# -- projected frame rates on devices this machine is not -------------------------------------------

@dataclass(frozen=True)
class Device:
    """A target CPU described by published figures: cores, clock and peak int8 MACs per cycle.

    Attributes:
        name: the board.
        cpu: its CPU cores as the vendor names them.
        cores: CPU cores (LiteRT runs on the CPU here; GPUs, NPUs and DLAs are not used).
        ghz: the vendor's maximum CPU clock.
        int8_macs_per_cycle: peak int8 multiply-accumulates per cycle and core of the NEON unit.
        sources: where the figures come from.
    """

    name: str
    cpu: str
    cores: int
    ghz: float
    int8_macs_per_cycle: int
    sources: tuple[str, ...]

    def peak_macs_per_s(self, threads: int = 1) -> float:
        return self.ghz * 1e9 * self.int8_macs_per_cycle * min(threads, self.cores)


#: Cortex-A72 (Armv8.0) has no dot-product instruction: int8 runs as widening multiply-accumulates
#: (SMLAL, 8 per instruction), one per cycle on its one multiply pipe. Cortex-A76 and A78 (Armv8.2)
#: issue two 128-bit SDOT per cycle, 16 int8 MACs each.
DEVICES = (
    Device("Raspberry Pi 4", "4× Cortex-A72", 4, 1.5, 8, (
        "Raspberry Pi 4 Model B product brief: BCM2711, quad-core Cortex-A72 (Armv8) @ 1.5 GHz "
        "(https://datasheets.raspberrypi.com/rpi4/raspberry-pi-4-product-brief.pdf)",
        "Arm Cortex-A72 Software Optimization Guide: ASIMD multiply-accumulate long, throughput 1 per cycle (F0 pipe)")),
    Device("Raspberry Pi 5", "4× Cortex-A76", 4, 2.4, 32, (
        "Raspberry Pi 5 product brief: BCM2712, quad-core Cortex-A76 @ 2.4 GHz "
        "(https://datasheets.raspberrypi.com/rpi5/raspberry-pi-5-product-brief.pdf)",
        "Arm Cortex-A76 Software Optimization Guide (PJDOC-466751330-7215): ASIMD dot product, throughput 2 per cycle "
        "(V0/V1 pipes)")),
    Device("Jetson Orin Nano", "6× Cortex-A78AE", 6, 1.5, 32, (
        "NVIDIA Jetson Orin Nano series data sheet: 6-core Arm Cortex-A78AE v8.2 CPU, up to 1.5 GHz "
        "(https://developer.nvidia.com/embedded/jetson-modules)",
        "Arm Cortex-A78 Software Optimization Guide: ASIMD dot product, throughput 2 per cycle")),
)

#: Assumed share of the NEON int8 peak that LiteRT/XNNPACK reaches on these small conv models. On
#: this project's x86 development machine it reaches about 64 % of one core's int8 peak (see the
#: project's design notes); smaller in-order-ish ARM memory systems are assumed to do worse.
ASSUMED_EFFICIENCY = 0.5


@dataclass(frozen=True)
class Projection:
    """An **estimate** of a device's frame rate from MACs per frame and its published peak; model
    compute only (rescaling, tissue mask, decoding and drawing are not in it)."""

    device: str
    threads: int
    patch_fps: float
    dense_fps: Optional[float]
    efficiency: float


def project(work: FrameWork, devices: tuple[Device, ...] = DEVICES, efficiency: float = ASSUMED_EFFICIENCY,
            threads: tuple[int, ...] = (1, 4)) -> list[Projection]:
    """Estimated frames per second of each device for one frame's MACs, patch and dense path, at
    ``efficiency`` of the device's int8 peak, on one thread and on ``threads`` (all cores scale
    linearly: optimistic)."""
    out = []
    for device in devices:
        for t in sorted({min(t, device.cores) for t in threads}):
            rate = device.peak_macs_per_s(t) * efficiency
            out.append(Projection(device.name, t, rate / work.patch_macs,
                                  None if not work.dense_macs else rate / work.dense_macs, efficiency))
    return out


# -- measured: the dense path against the patch path of the same model, same frames, same run -----------

@dataclass(frozen=True)
class DenseVsPatch:
    """Process CPU time per frame, dense mode (default: each pass where it costs fewer MACs) against
    patch by patch, same frames, interleaved; speed-ups are medians of per-round ratios.

    ``*_cpu_ms`` and ``speedup`` are whole :meth:`Detector.detect` calls (rescale, tissue mask,
    model, results); ``*_model_cpu_ms`` and ``model_speedup`` are the scoring step alone (cutting
    and running the model on the already rescaled frame), the part the dense pass changes.
    """

    width: int
    height: int
    um_per_px: float
    stride: int
    mask: bool
    tissue_patches: float
    patches: int
    dense_cpu_ms: float
    patch_cpu_ms: float
    speedup: float
    dense_model_cpu_ms: float
    patch_model_cpu_ms: float
    model_speedup: float


def dense_vs_patch(model_path: Optional[str], frames: list, um_per_px: float = 1.0, stride: int = 25,
                   masks: tuple[bool, ...] = (True, False), rounds: int = 7) -> list[DenseVsPatch]:
    """Process CPU time of :meth:`Detector.detect` over ``frames`` (BGR), dense mode against patch
    mode of the same model, for each tissue-mask setting. Empty for a model without a dense pass."""
    import time

    import numpy as np

    from ..detector import Detector
    from .timing import interleaved, ratio

    rows = []
    for mask in masks:
        with Detector(model_path=model_path, um_per_px=um_per_px, stride=stride, tissue_mask=mask) as dense, \
                Detector(model_path=model_path, um_per_px=um_per_px, stride=stride, tissue_mask=mask,
                         dense=False) as patches:
            if not dense.dense:
                return []
            results = [dense.detect(f) for f in frames]
            prepared = []
            for f, r in zip(frames, results):
                rgb, grid, _ = dense.prepare(f)
                prepared.append((rgb, grid, r.tissue))

            def run(det):
                for f in frames:
                    det.detect(f)

            def score(det):
                scorer = det._score_dense if det.dense else det._score_patches
                for rgb, grid, todo in prepared:
                    scorer(rgb, grid, todo, np.zeros(grid.shape, bool), np.empty(grid.shape, np.float32))

            whole = interleaved({"dense": lambda: run(dense), "patch": lambda: run(patches)}, rounds=rounds,
                                min_round_s=0.2, clock=time.process_time)
            model = interleaved({"dense": lambda: score(dense), "patch": lambda: score(patches)}, rounds=rounds,
                                min_round_s=0.2, clock=time.process_time)
            h, w = frames[0].shape[:2]
            ms = 1000 / len(frames)
            rows.append(DenseVsPatch(
                w, h, um_per_px, stride, mask, float(np.mean([r.n_tissue for r in results])), results[0].n_patches,
                float(np.median(whole["dense"])) * ms, float(np.median(whole["patch"])) * ms,
                ratio(whole["patch"], whole["dense"]), float(np.median(model["dense"])) * ms,
                float(np.median(model["patch"])) * ms, ratio(model["patch"], model["dense"])))
    return rows
