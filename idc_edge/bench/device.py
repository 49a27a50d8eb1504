"""The device benchmark ``idc-edge bench``: every measurement in one run, as tables or JSON."""
from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional

from .. import validate
from ..classifier import resolve_model_path
from ..machine import machine, machine_line
from ..spec import read_spec
from .frame import frame_latency
from .overhead import overhead
from .patch import models_to_time, patch_latency
from .process import run_process
from .reuse import reuse_latency
from .synthetic import camera_frames, slide_for, write_video
from .timing import ratio
from .work import ASSUMED_EFFICIENCY, DEVICES, dense_vs_patch, frame_macs, project


@dataclass
class DeviceBench:
    """Everything ``idc-edge bench`` measures; ``to_dict()`` is its ``--json`` output."""

    machine: dict
    model: dict
    patch: list = field(default_factory=list)
    int8_vs_float32: dict = field(default_factory=dict)
    frames: list = field(default_factory=list)
    reuse: list = field(default_factory=list)
    overhead: list = field(default_factory=list)
    startup: list = field(default_factory=list)
    work: list = field(default_factory=list)
    dense: list = field(default_factory=list)
    projections: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def device_bench(model_path: Optional[str] = None, quick: bool = False, threads: Optional[int] = None,
                 progress: Optional[Callable[[str], None]] = None) -> DeviceBench:
    """Run the device-relevant measurements (patch latency, frame latency, reuse, overhead, start-up).

    Args:
        model_path: the model to time, labelled by its real input type (an int8 model's sidecar
            ``float_model`` names its float32 twin, timed beside it); None for the shipped one.
        quick: fewer frame sizes, rounds and frames (about half the time; the full run takes about
            20 s on a 2-core x86 VM, several times that on a Raspberry Pi).
        threads: "all threads" for the patch latency (default: the CPU count).
    """
    if threads is not None:
        threads = validate.threads("threads", threads)
    say = progress or (lambda text: None)
    path = resolve_model_path(model_path)
    spec = read_spec(path)
    models = models_to_time(model_path)
    twin = models.get("float32") if "int8" in models else None
    all_threads = threads or os.cpu_count() or 1
    rounds = 5 if quick else 9
    result = DeviceBench(machine=machine(), model={
        "path": str(path), "size_kb": round(path.stat().st_size / 1024, 1),
        "float32": str(twin) if twin else None, "summary": spec.provenance.get("summary", ""),
        "architecture": spec.provenance.get("architecture", "")})

    say("patch latency")
    rows, raw = patch_latency(models, batches=(1, 64), threads=sorted({1, all_threads}), rounds=rounds)
    result.patch = rows
    if {"int8", "float32"} <= set(models):
        result.int8_vs_float32 = {f"batch{b}_threads{t}": round(ratio(v["float32"], v["int8"]), 3)
                                  for (b, t), v in raw.items()}

    say("frame latency")
    if quick:
        result.frames = frame_latency(model_path, sizes=((640, 480), (1920, 1080)), scales=(1.0,), strides=(25,),
                                      masks=(True, False), n_frames=6, repeats=2)
    else:
        result.frames = frame_latency(model_path)

    say("still and moving stage")
    result.reuse = reuse_latency(model_path, n_frames=8 if quick else 12, rounds=3 if quick else 5)

    say("overhead")
    w, h, um = 1920, 1080, 1.0
    frame = camera_frames(slide_for(w, h, um, 1, 0), w, h, um, 1)[0]
    model_scale = camera_frames(slide_for(480, 270, 4.0, 1, 0), 480, 270, 4.0, 1)[0]
    result.overhead = [overhead(model_path, model_scale, 4.0, case="480×270 at 4 µm/px (no rescale)", rounds=rounds),
                       overhead(model_path, frame, um, case="1920×1080 at 1 µm/px", rounds=rounds)]

    say("work per frame")
    result.work = [frame_macs(model_path, w, h, um, 25)]
    result.projections = project(result.work[0])
    if spec.dense is not None:
        say("dense pass against patches")
        n = 4 if quick else 8
        frames = camera_frames(slide_for(w, h, um, n, 48), w, h, um, n, step_px=48)
        result.dense = dense_vs_patch(model_path, frames, um, 25, rounds=5 if quick else 9)

    say("start-up")
    with tempfile.TemporaryDirectory() as tmp:
        video = write_video(Path(tmp) / "stage.avi", camera_frames(slide_for(w, h, um, 30, 48), w, h, um, 30, 48))
        args = ["--source", video, "--um-per-px", um, "--stride", 25]
        if model_path is not None:
            args += ["--model", path]
        result.startup = [run_process([*args, "--max-frames", 1])]
    return result


def format_tables(bench: DeviceBench) -> str:
    """Plain-text tables of a :class:`DeviceBench` (what ``idc-edge bench`` prints)."""
    out = [f"machine: {machine_line(bench.machine)}",
           f"model:   {bench.model['path']} ({bench.model['size_kb']} KB)"
           + (f" - {bench.model['summary']}" if bench.model.get("summary") else ""), ""]
    out.append("patch latency (ms per 50x50 patch, median)")
    out.append(f"  {'model':<8} {'batch':>5} {'threads':>7} {'ms/patch':>9} {'patches/s':>10}")
    for r in bench.patch:
        out.append(f"  {r.model:<8} {r.batch:>5} {r.threads:>7} {r.ms_per_patch:>9.4f} {r.patches_per_s:>10.0f}")
    if bench.int8_vs_float32:
        out.append("  int8 speed-up over float32 (same run, interleaved): "
                   + ", ".join(f"{k.replace('_', ' ')} {v:.2f}x" for k, v in bench.int8_vs_float32.items()))
    out += ["", "frame latency, one interpreter thread (ms, median; decode is apart, not in fps)"]
    out.append(f"  {'frame':>9} {'um/px':>5} {'stride':>6} {'mask':>4} {'tissue':>10} {'decode':>6} {'rescale':>7} "
               f"{'mask':>5} {'tiling':>6} {'invoke':>6} {'post':>5} {'total':>6} {'overlay':>7} {'fps':>6} "
               f"{'fps+ovl':>7}")
    for r in bench.frames:
        out.append(f"  {r.width:>4}x{r.height:<4} {r.um_per_px:>5.2f} {r.stride:>6} {'on' if r.mask else 'off':>4} "
                   f"{r.tissue_patches:>4.0f}/{r.patches:<5} {r.decode_ms:>6.2f} {r.rescale_ms:>7.2f} {r.mask_ms:>5.2f} "
                   f"{r.tiling_ms:>6.2f} {r.invoke_ms:>6.2f} {r.post_ms:>5.2f} {r.detect_ms:>6.2f} {r.overlay_ms:>7.2f} "
                   f"{r.fps:>6.1f} {r.fps_with_overlay:>7.1f}")
    if bench.reuse:
        out += ["", "motion-aware reuse (stream of frames; ms per frame, median)"]
        out.append(f"  {'sequence':<8} {'frame':>9} {'um/px':>5} {'stride':>6} {'reused':>6} {'reuse':>6} "
                   f"{'no reuse':>8} {'speed-up':>8} {'max |dp|':>8}")
        for r in bench.reuse:
            out.append(f"  {r.sequence:<8} {r.width:>4}x{r.height:<4} {r.um_per_px:>5.2f} {r.stride:>6} "
                       f"{100 * r.reused_fraction:>5.0f}% {r.ms_reuse:>6.2f} {r.ms_no_reuse:>8.2f} "
                       f"{r.speedup:>7.2f}x {r.max_score_error:>8.3f}")
    if bench.overhead:
        out += ["", "pipeline overhead (detect() vs a bare interpreter loop on the same patches)"]
        for r in bench.overhead:
            out.append(f"  {r.case}: {r.patches} patches, bare {r.bare_patches_per_s:.0f}/s, pipeline "
                       f"{r.pipeline_patches_per_s:.0f}/s -> {100 * r.efficiency:.0f} % of bare")
    if bench.work:
        out += ["", "work per frame (multiply-accumulates counted from the model's conv and fully connected ops; "
                "every window, mask off)"]
        for r in bench.work:
            dense = (f", dense path {r.dense_macs / 1e6:,.0f} M in {r.dense_passes} pass(es) -> {r.ratio:.2f}x fewer"
                     if r.dense_macs else ", no dense path (the model's sidecar has no \"dense\")")
            out.append(f"  {r.width}x{r.height} at {r.um_per_px:g} um/px, stride {r.stride}: {r.windows} windows, "
                       f"{r.macs_per_patch / 1e6:.2f} M per patch; patch path {r.patch_macs / 1e6:,.0f} M{dense}")
    if bench.dense:
        out += ["", "dense pass against patches, same model, same frames, interleaved (CPU ms per frame, median)"]
        out.append(f"  {'frame':>9} {'mask':>4} {'tissue':>10} {'detect dense':>12} {'patches':>8} {'speed-up':>8} "
                   f"{'model dense':>11} {'patches':>8} {'speed-up':>8}")
        for r in bench.dense:
            out.append(f"  {r.width:>4}x{r.height:<4} {'on' if r.mask else 'off':>4} {r.tissue_patches:>4.0f}/{r.patches:<5} "
                       f"{r.dense_cpu_ms:>12.2f} {r.patch_cpu_ms:>8.2f} {r.speedup:>7.2f}x {r.dense_model_cpu_ms:>11.2f} "
                       f"{r.patch_model_cpu_ms:>8.2f} {r.model_speedup:>7.2f}x")
    if bench.projections:
        out += ["", f"ESTIMATED frames per second elsewhere (model compute only, from published CPU peaks at an assumed "
                f"{100 * ASSUMED_EFFICIENCY:.0f} % of int8 peak; not measured)"]
        for p in bench.projections:
            dense = f", dense {p.dense_fps:,.0f}" if p.dense_fps else ""
            out.append(f"  {p.device:<17} {p.threads} thread(s): patches {p.patch_fps:,.1f}{dense}")
        out.append("  sources:")
        out += [f"    {src}" for d in DEVICES for src in d.sources]
    if bench.startup:
        out += ["", "start-up (process start to first result)"]
        for r in bench.startup:
            out.append(f"  {r.first_result_s:.2f} s to the first result, peak memory {r.peak_rss_mb:.0f} MB: {r.command}")
    return "\n".join(out)
