"""Speed measurements for the device at hand: ``idc-edge bench`` and the ``benchmarks/`` report.

What is measured, with the shipped (or a given) model and frames made here (no data set needed):

1. **Patch latency**: the int8 model vs its float32 twin (the sidecar's ``float_model``), batch 1
   and 64, one and all CPU threads, in ms per 50×50 patch.
2. **Frame latency** end to end and per stage (rescale, tissue mask, tiling, invoke, post-
   processing, overlay) for camera frames at real microscope scales; video decoding is timed
   apart. Also still and moving stage sequences with and without motion-aware reuse.
3. **Overhead**: the detector's patches per second against a bare interpreter loop over the
   same pre-cut patches in the same batches.
4. **Start-up**: from process start to the first result of ``idc-edge run``, and the process's
   peak resident memory.

Timing on a busy machine: variants that are compared run **interleaved**, round by round in a
rotating order, and a ratio is the median of the per-round ratios, so a slow-down from another
process hits both sides of a ratio alike. Absolute times are medians and vary with the load;
ratios are what the guards in ``benchmarks/`` check.

One module per job: :mod:`.timing` (interleaved rounds, ratios),
:mod:`.synthetic` (frames and videos made here), :mod:`.patch`, :mod:`.frame`, :mod:`.reuse`,
:mod:`.overhead`, :mod:`.process` (measurements), :mod:`.work` (MACs per frame, the dense pass against
patches, estimated frame rates on other devices), :mod:`.device` (``idc-edge bench`` and its tables).
"""
from __future__ import annotations

from .device import DeviceBench, device_bench, format_tables
from .frame import FrameLatency, frame_latency
from ..machine import machine
from .overhead import Overhead, overhead
from .patch import PatchLatency, float_twin, model_kind, models_to_time, patch_latency
from .process import ProcessRun, run_process
from .reuse import ReuseRow, reuse_latency
from .synthetic import MODEL_UM_PER_PX, camera_frames, slide_for, synthetic_slide, write_video
from .timing import interleaved, ratio
from .work import DEVICES, DenseVsPatch, Device, FrameWork, Projection, dense_vs_patch, frame_macs, project

__all__ = [
    "DEVICES", "DenseVsPatch", "Device", "FrameWork", "Projection", "dense_vs_patch", "frame_macs", "project",
    "DeviceBench", "FrameLatency", "MODEL_UM_PER_PX", "Overhead", "PatchLatency", "ProcessRun", "ReuseRow",
    "camera_frames", "device_bench", "float_twin", "format_tables", "frame_latency", "interleaved", "machine", "model_kind", "models_to_time",
    "overhead", "patch_latency", "ratio", "reuse_latency", "run_process", "slide_for", "synthetic_slide",
    "write_video",
]
