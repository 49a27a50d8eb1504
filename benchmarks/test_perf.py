"""pytest-benchmark cases of the real-time benchmarks and the ratio guards (large regressions only, same run).

Timings land in pytest-benchmark's table (``--benchmark-json`` to keep them); the ``test_guard_*``
cases measure both sides of a ratio interleaved and fail only when the ratio collapses. The
Markdown/JSON/PNG report with the same measurements is ``python -m benchmarks.perf_report``.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

import perf
from conftest import QUICK
from idc_edge import bench
from idc_edge.classifier import PatchClassifier
from idc_edge.detector import Detector
from idc_edge.overlay import draw_overlay

ALL = os.cpu_count() or 1
ROUNDS = 5 if QUICK else 15
THREADS = [1] if QUICK else sorted({1, ALL})
FRAME_CASES = [(640, 480, 1.0, 25, True), (1920, 1080, 1.0, 25, True)] if QUICK else [
    (w, h, um, s, m) for (w, h) in ((640, 480), (1280, 720), (1920, 1080)) for um in (1.0, 0.5)
    for s in (50, 25) for m in (True, False)]


def _patches(b):
    return np.random.default_rng(b).integers(0, 256, (b, 50, 50, 3), dtype=np.uint8)


# -- 1. patch latency ------------------------------------------------------------------------

@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("batch", [1, 64])
@pytest.mark.parametrize("variant", ["int8", "float32"])
def test_patch_latency(benchmark, variant, batch, threads, int8_path, float32_path):
    path = int8_path if variant == "int8" else float32_path
    x = _patches(batch)
    with PatchClassifier(path, num_threads=threads) as clf:
        benchmark.pedantic(clf.predict, args=(x,), rounds=ROUNDS, iterations=max(1, 256 // batch), warmup_rounds=1)
    benchmark.extra_info["ms_per_patch"] = benchmark.stats.stats.median * 1000 / batch


@pytest.mark.parametrize("batch", [1, 64])
def test_keras_predict_latency(benchmark, batch, int8_path):
    keras_mod = pytest.importorskip("keras", reason="Keras float predict needs the [train] extra (tensorflow)")
    source, desc = __import__("perf").keras_model_for(int8_path, None)
    if source is None:
        pytest.skip(desc)
    if source.startswith("arch:"):
        from train.architectures import build

        model = build(source[5:], keras_mod)
    else:
        model = keras_mod.saving.load_model(source, compile=False)
    x = _patches(batch).astype(np.float32)
    benchmark.pedantic(lambda: model.predict(x, batch_size=batch, verbose=0), rounds=ROUNDS, iterations=1,
                       warmup_rounds=1)
    benchmark.extra_info.update(model=desc, threads="TensorFlow default (all)",
                                ms_per_patch=benchmark.stats.stats.median * 1000 / batch)


# -- 2. frame latency ------------------------------------------------------------------------

@pytest.mark.parametrize("case", FRAME_CASES, ids=lambda c: f"{c[0]}x{c[1]}-{c[2]}um-s{c[3]}-{'mask' if c[4] else 'nomask'}")
def test_frame_latency(benchmark, case, int8_path, frames_cache):
    w, h, um, stride, mask = case
    frames = frames_cache(w, h, um)
    with Detector(model_path=str(int8_path), um_per_px=um, stride=stride, tissue_mask=mask) as det:
        state = {"i": 0, "times": []}

        def one():
            f = frames[state["i"] % len(frames)]
            state["i"] += 1
            state["times"].append(det.detect(f).times)
        benchmark.pedantic(one, rounds=ROUNDS * 2, iterations=1, warmup_rounds=2)
    t = state["times"]
    benchmark.extra_info.update({k: float(np.median([getattr(s, k) for s in t]))
                                 for k in ("prepare", "mask", "tiling", "invoke", "post")})


@pytest.mark.parametrize("size", [(640, 480), (1920, 1080)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_overlay_latency(benchmark, size, int8_path, frames_cache):
    frame = frames_cache(*size, 1.0)[0]
    with Detector(model_path=str(int8_path), um_per_px=1.0, stride=25) as det:
        result = det.detect(frame)
    benchmark.pedantic(draw_overlay, args=(frame, result), rounds=ROUNDS * 2, iterations=1, warmup_rounds=1)


@pytest.mark.parametrize("sequence", ["still", "moving"])
@pytest.mark.parametrize("reuse", [True, False], ids=["reuse", "no_reuse"])
def test_stream_latency(benchmark, sequence, reuse, int8_path, frames_cache):
    frames = frames_cache(1920, 1080, 1.0, 8, still=sequence == "still")
    with Detector(model_path=str(int8_path), um_per_px=1.0, stride=25) as det:
        benchmark.pedantic(lambda: list(det.stream(frames, keep_image=False, reuse=reuse)),
                           rounds=ROUNDS, iterations=1, warmup_rounds=1)
    benchmark.extra_info["ms_per_frame"] = benchmark.stats.stats.median * 1000 / len(frames)


# -- guards: same-run ratios ----------------------------------------------------------------------

def test_guard_int8_faster_than_float32(int8_path, float32_path):
    _, raw = bench.patch_latency({"int8": int8_path, "float32": float32_path}, batches=(64,), threads=(1,),
                                 rounds=ROUNDS)
    r = bench.ratio(raw[(64, 1)]["float32"], raw[(64, 1)]["int8"])
    print(f"int8 vs float32, batch 64, 1 thread: {r:.2f}x")
    assert r > 1.0


def test_guard_int8_much_faster_than_keras(int8_path):
    pytest.importorskip("tensorflow", reason="needs the [train] extra")
    import perf

    source, desc = perf.keras_model_for(int8_path, None)
    if source is None:
        pytest.skip(desc)
    (k,) = perf.keras_latency(int8_path, source, batches=(64,), threads=(1,), rounds=3)
    r = k["batches"]["64"]["int8_vs_keras_predict"]
    print(f"int8 vs {desc}, batch 64, 1 thread: {r:.1f}x")
    assert r > 3.0


def test_guard_pipeline_overhead(int8_path, frames_cache):
    # stride 10, patch by patch: the per-patch pipeline's overhead, not the per-frame stages every path shares
    o = bench.overhead(str(int8_path), frames_cache(480, 270, 4.0, 1)[0], 4.0, stride=10, case="model scale",
                       rounds=ROUNDS)
    print(f"detect() keeps {100 * o.efficiency:.0f} % of the bare interpreter's patches per second")
    assert o.efficiency > 0.45


def test_guard_reuse(int8_path, frames_cache):
    seqs = {"still": frames_cache(1920, 1080, 1.0, 8, still=True), "moving": frames_cache(1920, 1080, 1.0, 8)}
    rows = {r.sequence: r for r in bench.reuse_latency(str(int8_path), stride=10, sequences=seqs, rounds=ROUNDS,
                                                       dense=False)}
    print({k: round(v.speedup, 2) for k, v in rows.items()})
    assert rows["still"].speedup > 1.5 and rows["moving"].speedup > 0.8


def test_guard_dense_pass_not_slower_than_patches(int8_path, frames_cache):
    from idc_edge.spec import read_spec

    if read_spec(int8_path).dense is None:
        pytest.skip(f"{int8_path.name} has no dense pass (its sidecar has no \"dense\")")
    rows = bench.dense_vs_patch(str(int8_path), frames_cache(1920, 1080, 1.0, 4), 1.0, 25, masks=(True,),
                                rounds=ROUNDS)
    print(f"dense vs patches, detect() CPU: {rows[0].speedup:.2f}x (model step {rows[0].model_speedup:.2f}x)")
    assert rows[0].speedup > 1.0


# -- guard: peak memory that saving the overlay video adds (same run, not a timing) ------------------

@pytest.mark.parametrize("suffix", perf.BUDGETED_VIDEO_SUFFIXES)
def test_guard_save_video_memory_within_budget(suffix, int8_path, frames_cache, tmp_path):
    """A threaded 1080p ``idc-edge run --save-video`` peaks at most ``VIDEO_EXTRA_MB`` above the same
    run without it (``LOSSLESS_VIDEO_EXTRA_MB`` for ``.mkv``), and its video holds every frame of the run."""
    import cv2

    n = 40 if QUICK else 90
    video = bench.write_video(tmp_path / "moving.avi", perf.stage_frames(1920, 1080, 1.0, n, step=40)[0])
    out = tmp_path / f"overlay{suffix}"
    args = ["--source", video, "--um-per-px", 1.0, "--stride", 25, "--model", int8_path]
    plain = bench.run_process(args)
    run = bench.run_process([*args, "--save-video", out])
    cap = cv2.VideoCapture(str(out))
    written = 0
    while cap.grab():
        written += 1
    cap.release()
    print(f"--save-video {suffix}: peak {run.peak_rss_mb:.0f} MB (without it {plain.peak_rss_mb:.0f} MB), "
          f"{run.frames} frames, {written} in the video")
    assert run.frames == n and written == n
    assert run.peak_rss_mb - plain.peak_rss_mb < (perf.LOSSLESS_VIDEO_EXTRA_MB if suffix == ".mkv" else perf.VIDEO_EXTRA_MB)
