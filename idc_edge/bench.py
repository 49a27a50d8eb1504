"""Speed measurements for the device at hand: ``idc-edge bench`` and the ``benchmarks/`` report.

What is measured, with the shipped (or a given) model and frames made here (no data set needed):

1. **Patch latency**: the int8 model vs its float32 twin (the sidecar's ``float_model``), batch 1
   and 64, one and all CPU threads, in ms per 50×50 patch.
2. **Frame latency** end to end and per stage (rescale, tissue mask, tiling, invoke, post-
   processing, overlay) for camera frames at real microscope scales; video decoding is timed
   apart. Also still and moving stage sequences with and without motion-aware reuse.
3. **Overhead**: the detector's patches per second against a bare interpreter loop over the
   same pre-cut patches in the same batches.
5. **Start-up**: from process start to the first result of ``idc-edge run``, and the process's
   peak resident memory.

Timing on a busy machine: variants that are compared run **interleaved**, round by round in a
rotating order, and a ratio is the median of the per-round ratios, so a slow-down from another
process hits both sides of a ratio alike. Absolute times are medians and vary with the load;
ratios are what the guards in ``benchmarks/`` check.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import cv2
import numpy as np

from .classifier import PatchClassifier, padded_batch, resolve_model_path
from .spec import read_spec

MODEL_UM_PER_PX = 4.0


# -- timing ---------------------------------------------------------------------------------

def interleaved(funcs: dict[str, Callable[[], Any]], rounds: int = 7, min_round_s: float = 0.05,
                max_calls: int = 10_000) -> dict[str, np.ndarray]:
    """Seconds per call of each function, one value per round, measured interleaved.

    Each function is first called once (warm-up) and its calls per round are set so one round
    takes about ``min_round_s``. Every round then runs each function in turn, starting with a
    different one each round so none always runs first.

    Returns:
        name → float64 ``[rounds]`` seconds per call.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    names = list(funcs)
    calls = {}
    for name in names:
        t = time.perf_counter()
        funcs[name]()
        once = max(time.perf_counter() - t, 1e-6)
        calls[name] = int(min(max_calls, max(1, round(min_round_s / once))))
    out = {name: np.empty(rounds) for name in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            fn, n = funcs[name], calls[name]
            t = time.perf_counter()
            for _ in range(n):
                fn()
            out[name][r] = (time.perf_counter() - t) / n
    return out


def ratio(slow: np.ndarray, fast: np.ndarray) -> float:
    """Median over rounds of ``slow / fast`` (how many times faster ``fast`` is)."""
    return float(np.median(np.asarray(slow) / np.asarray(fast)))


def machine() -> dict[str, Any]:
    """What the numbers were measured on: CPU model, cores, OS, Python, library versions."""
    cpu = platform.processor() or platform.machine()
    info: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, sep, value = line.partition(":")
                if sep:
                    info.setdefault(key.strip().lower(), value.strip())
    except OSError:
        pass
    # x86: "model name"; Raspberry Pi OS: "Model" (the board) or "Hardware"; other ARM: "CPU part"
    for key in ("model name", "hardware", "model", "cpu part"):
        if info.get(key) and not info[key].isdigit():
            cpu = info[key]
            break
    try:
        model = Path("/proc/device-tree/model").read_bytes().rstrip(b"\0").decode()
    except OSError:
        model = None
    from .backend import get_backend

    backend = get_backend()
    return {"cpu": cpu, "board": model, "cores": os.cpu_count(), "machine": platform.machine(),
            "system": f"{platform.system()} {platform.release()}", "python": platform.python_version(),
            "numpy": np.__version__, "opencv": cv2.__version__, "backend": f"{backend.name} {backend.version}",
            "opencv_threads": cv2.getNumThreads()}


# -- frames made here (no data set needed) ---------------------------------------------------

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


# -- 1. patch latency ----------------------------------------------------------------------

@dataclass(frozen=True)
class PatchLatency:
    """ms per patch of one model at one batch size and thread count (median over rounds)."""

    model: str
    dtype: str
    batch: int
    threads: int
    ms_per_patch: float
    patches_per_s: float


def float_twin(model_path: Optional[str]) -> Optional[Path]:
    """The float32 model with the same weights named by the sidecar's ``float_model``, if it exists."""
    path = resolve_model_path(model_path)
    name = read_spec(path).float_model
    if not name:
        return None
    twin = path.parent / name
    return twin if twin.is_file() else None


def patch_latency(model_paths: dict[str, Path], batches: Sequence[int] = (1, 64),
                  threads: Sequence[int] = (1,), rounds: int = 7, min_round_s: float = 0.05,
                  seed: int = 0) -> tuple[list[PatchLatency], dict[tuple[int, int], dict[str, np.ndarray]]]:
    """Per-patch latency of each model (label → path), interleaved per (batch, threads).

    Returns:
        (rows, raw): raw[(batch, threads)][label] is seconds per call per round, for ratios.
    """
    rng = np.random.default_rng(seed)
    rows, raw = [], {}
    for t in threads:
        clfs = {label: PatchClassifier(path, num_threads=t, max_batch=max(64, max(batches)))
                for label, path in model_paths.items()}
        try:
            for b in batches:
                x = rng.integers(0, 256, (b, 50, 50, 3), dtype=np.uint8)
                timings = interleaved({label: (lambda c=c: c.predict(x)) for label, c in clfs.items()},
                                      rounds=rounds, min_round_s=min_round_s)
                raw[(b, t)] = timings
                for label, secs in timings.items():
                    ms = float(np.median(secs)) * 1000 / b
                    rows.append(PatchLatency(label, str(clfs[label].input_format.dtype), b, t, ms, 1000 / ms))
        finally:
            for c in clfs.values():
                c.close()
    return rows, raw


# -- 2. frame latency ----------------------------------------------------------------------

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
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (w, h))
    for f in frames:
        writer.write(f)
    writer.release()
    cap = cv2.VideoCapture(str(path))
    times = []
    try:
        while True:
            t = time.perf_counter()
            ok, _ = cap.read()
            if not ok:
                break
            times.append(time.perf_counter() - t)
    finally:
        cap.release()
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
    from .detector import Detector
    from .overlay import draw_overlay

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


# -- motion-aware reuse: still vs moving -----------------------------------------------------

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
                  sequences: Optional[dict[str, list[np.ndarray]]] = None) -> list[ReuseRow]:
    """Still and moving stage sequences through ``Detector.stream`` with reuse on and off.

    ``max_score_error`` is the largest |reused score − fresh score| over all frames: what reuse
    costs in accuracy.
    """
    from .detector import Detector

    if sequences is None:
        step = max(1, width // 40)
        slide = slide_for(width, height, um_per_px, n_frames, step)
        sequences = {"still": camera_frames(slide, width, height, um_per_px, n_frames, step_px=0),
                     "moving": camera_frames(slide, width, height, um_per_px, n_frames, step_px=step)}
    rows = []
    with Detector(model_path=model_path, um_per_px=um_per_px, stride=stride, num_threads=threads) as det:
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


# -- 3. overhead ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Overhead:
    """The detector's patches per second against a bare interpreter loop on the same patches."""

    case: str
    patches: int
    bare_patches_per_s: float
    pipeline_patches_per_s: float
    efficiency: float  # pipeline / bare, median of per-round ratios


def overhead(model_path: Optional[str], frame: np.ndarray, um_per_px: float, stride: int = 25, case: str = "",
             rounds: int = 9, threads: int = 1) -> Overhead:
    """How much of the bare interpreter's speed the whole ``detect`` keeps on ``frame``.

    The bare loop runs the same tissue patches, cut once beforehand, through interpreters of the
    same batch sizes the classifier uses (64 and the padded rest), with input arrays prepared in
    advance: only ``set_tensor``, ``invoke`` and ``get_tensor``.
    """
    from .backend import get_backend
    from .detector import Detector
    from .tiling import extract_patches

    with Detector(model_path=model_path, um_per_px=um_per_px, stride=stride, num_threads=threads) as det:
        r = det.detect(frame)
        rgb, grid, _ = det.prepare(frame)
        patches = extract_patches(rgb, grid, np.flatnonzero(r.tissue))
        x = det.classifier._prepare(patches)
        n = len(x)
        content = resolve_model_path(model_path).read_bytes()
        chunks, interps = [], {}
        for start in range(0, n, det.classifier.max_batch):
            part = x[start:start + det.classifier.max_batch]
            size = padded_batch(len(part), det.classifier.max_batch)
            if size != len(part):
                part = np.concatenate([part, np.zeros((size - len(part), *part.shape[1:]), part.dtype)])
            if size not in interps:
                it = get_backend().interpreter_class(model_content=content, num_threads=threads)
                inp = it.get_input_details()[0]
                it.resize_tensor_input(inp["index"], [size, *inp["shape"][1:]])
                it.allocate_tensors()
                interps[size] = (it, it.get_input_details()[0]["index"], it.get_output_details()[0]["index"])
            chunks.append((interps[size], np.ascontiguousarray(part)))

        def bare():
            for (it, i, o), batch in chunks:
                it.set_tensor(i, batch)
                it.invoke()
                it.get_tensor(o)

        timings = interleaved({"bare": bare, "pipeline": lambda: det.detect(frame)}, rounds=rounds)
    return Overhead(case, n, n / float(np.median(timings["bare"])), n / float(np.median(timings["pipeline"])),
                    ratio(timings["bare"], timings["pipeline"]))


# -- 4/5. the command line as a user runs it ----------------------------------------------------

def _peak_rss_kb(pid: int) -> float:
    """Peak resident memory so far (VmHWM) of a running process in KiB; 0 where /proc is absent."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return float(line.split()[1])
    except OSError:
        pass
    return 0.0


@dataclass(frozen=True)
class ProcessRun:
    """One ``idc-edge run`` process: wall time, first result, frames, peak memory.

    ``fps`` is frames per second from the first result to the end of the stream (start-up
    excluded; NaN for a single frame); ``wall_s`` is the whole process, start-up and exit included.
    """

    command: str
    frames: int
    wall_s: float
    first_result_s: float
    fps: float
    peak_rss_mb: float


def run_process(args: Sequence[str], timeout_s: float = 300.0) -> ProcessRun:
    """Run ``python -m idc_edge run ARGS --record TMP --quiet`` and measure it from the outside.

    ``first_result_s`` is from just before the process is started to the moment its first JSONL
    line (flushed right after the first result) appears; ``peak_rss_mb`` is the process's peak
    resident memory from the kernel (Linux/macOS).
    """
    with tempfile.TemporaryDirectory() as tmp:
        record = Path(tmp) / "first.jsonl"
        cmd = [sys.executable, "-m", "idc_edge", "run", *map(str, args), "--record", str(record), "--quiet"]
        t0 = time.perf_counter()
        with tempfile.TemporaryFile() as err:
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
            first, peak_kb, seen_at_first = float("nan"), 0.0, 0
            last_growth, seen, reader = float("nan"), 0, None
            while proc.poll() is None:
                if reader is None and record.exists():
                    reader = open(record, "rb")
                new = reader.read().count(b"\n") if reader is not None else 0
                if new:
                    seen, last_growth = seen + new, time.perf_counter() - t0
                    if np.isnan(first):
                        first = last_growth
                        seen_at_first = seen
                peak_kb = max(peak_kb, _peak_rss_kb(proc.pid))
                if time.perf_counter() - t0 > timeout_s:
                    proc.kill()
                    proc.wait()
                    break
                time.sleep(0.002 if np.isnan(first) else 0.02)
            wall = time.perf_counter() - t0
            if reader is not None:
                reader.close()
            err.seek(0)
            stderr = err.read().decode(errors="replace")
        if proc.returncode != 0:
            raise RuntimeError(f"idc-edge run failed ({proc.returncode}): {stderr.strip()[-500:]}")
        lines = record.read_text().splitlines() if record.exists() else []
        if np.isnan(first) and lines:
            first = wall
    # frames per second between the first and the last line seen while the process ran
    fps = (seen - seen_at_first) / (last_growth - first) if seen > seen_at_first and last_growth > first \
        else float("nan")
    return ProcessRun(" ".join(["idc-edge", "run", *map(str, args)]), len(lines), wall, first, fps, peak_kb / 1024.0)


def write_video(path: Path, frames: Sequence[np.ndarray], fps: float = 30.0) -> Path:
    """Write BGR ``frames`` as an MJPG ``.avi`` (what USB microscope cameras send)."""
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    for f in frames:
        writer.write(f)
    writer.release()
    return path


# -- the device benchmark: `idc-edge bench` ----------------------------------------------------

@dataclass
class DeviceBench:
    """Everything ``idc-edge bench`` measures; ``as_dict()`` is its ``--json`` output."""

    machine: dict
    model: dict
    patch: list = field(default_factory=list)
    int8_vs_float32: dict = field(default_factory=dict)
    frames: list = field(default_factory=list)
    reuse: list = field(default_factory=list)
    overhead: list = field(default_factory=list)
    startup: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def device_bench(model_path: Optional[str] = None, quick: bool = False, threads: Optional[int] = None,
                 progress: Optional[Callable[[str], None]] = None) -> DeviceBench:
    """Run the device-relevant measurements (patch latency, frame latency, reuse, overhead, start-up).

    Args:
        model_path: the int8 model (its sidecar's ``float_model`` is the float32 twin); None for
            the shipped one.
        quick: fewer frame sizes, rounds and frames (about half the time; the full run takes about
            20 s on a 2-core x86 VM, several times that on a Raspberry Pi).
        threads: "all threads" for the patch latency (default: the CPU count).
    """
    say = progress or (lambda text: None)
    path = resolve_model_path(model_path)
    spec = read_spec(path)
    models = {"int8": path}
    twin = float_twin(model_path)
    if twin is not None:
        models["float32"] = twin
    all_threads = threads or os.cpu_count() or 1
    rounds = 5 if quick else 9
    result = DeviceBench(machine=machine(), model={
        "path": str(path), "size_kb": round(path.stat().st_size / 1024, 1),
        "float32": str(twin) if twin else None, "summary": spec.provenance.get("summary", ""),
        "architecture": spec.provenance.get("architecture", "")})

    say("patch latency")
    rows, raw = patch_latency(models, batches=(1, 64), threads=sorted({1, all_threads}), rounds=rounds)
    result.patch = rows
    if "float32" in models:
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
    m = bench.machine
    out = [f"machine: {m['cpu']}{' (' + m['board'] + ')' if m.get('board') else ''}, {m['cores']} cores, "
           f"{m['system']}, Python {m['python']}, {m['backend']}, OpenCV {m['opencv']}",
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
    if bench.startup:
        out += ["", "start-up (process start to first result)"]
        for r in bench.startup:
            out.append(f"  {r.first_result_s:.2f} s to the first result, peak memory {r.peak_rss_mb:.0f} MB: {r.command}")
    return "\n".join(out)


def to_json(bench: DeviceBench) -> str:
    """``bench`` as one JSON line (NaN becomes null)."""
    def clean(v):
        if isinstance(v, float) and not np.isfinite(v):
            return None
        if isinstance(v, dict):
            return {str(k): clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        if isinstance(v, (np.floating, np.integer)):
            return clean(v.item())
        if isinstance(v, Path):
            return str(v)
        return v
    return json.dumps(clean(bench.as_dict()))
