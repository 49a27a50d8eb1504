"""``idc-edge bench`` and its helpers: what they measure and report (never how fast it is)."""
import json
import subprocess
import sys

import numpy as np
import pytest

from idc_edge.bench import (DeviceBench, camera_frames, format_tables, interleaved, machine, models_to_time, overhead, ratio,
                            run_process, slide_for, synthetic_slide, write_video)
from idc_edge.detector import Detector


def test_ratio_is_the_median_of_per_round_ratios():
    assert ratio(np.array([2.0, 4.0, 30.0]), np.array([1.0, 1.0, 1.0])) == 4.0
    assert ratio(np.array([1.0, 2.0]), np.array([2.0, 4.0])) == 0.5


def test_interleaved_runs_every_function_every_round_in_rotating_order():
    calls = []
    funcs = {name: (lambda name=name: calls.append(name)) for name in "abc"}
    out = interleaved(funcs, rounds=3, min_round_s=0.0)
    assert set(out) == {"a", "b", "c"} and all(v.shape == (3,) and (v > 0).all() for v in out.values())
    rounds = calls[3:]  # after one warm-up call each
    assert rounds == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]


def test_interleaved_fails_with_no_rounds():
    with pytest.raises(ValueError, match="rounds"):
        interleaved({"a": lambda: None}, rounds=0)


def test_synthetic_slide_has_tissue_and_glass_the_mask_tells_apart(tiny_int8):
    frames = camera_frames(slide_for(1920, 1080, 1.0, 3, 48), 1920, 1080, 1.0, 3, step_px=48)
    assert all(f.shape == (1080, 1920, 3) and f.dtype == np.uint8 for f in frames)
    with Detector(model_path=str(tiny_int8), um_per_px=1.0, stride=25) as det:
        fractions = [det.detect(f).tissue_fraction for f in frames]
    assert all(0.3 < t < 0.95 for t in fractions)


def test_camera_frames_of_a_moving_stage_shift_and_of_a_still_one_do_not():
    slide = synthetic_slide(200, 400, seed=1)
    moving = camera_frames(slide, 320, 240, 2.0, 2, step_px=10, noise=0)
    still = camera_frames(slide, 320, 240, 2.0, 2, step_px=0, noise=2.0)
    shifted = np.abs(moving[1][:, :-10].astype(int) - moving[0][:, 10:].astype(int)).mean()
    unshifted = np.abs(moving[1].astype(int) - moving[0].astype(int)).mean()
    assert shifted < 1.0 and unshifted > 5.0
    assert np.abs(still[1].astype(int) - still[0].astype(int)).mean() < 3.0


def test_camera_frames_fail_when_the_slide_is_too_small():
    with pytest.raises(ValueError, match="slide too small"):
        camera_frames(synthetic_slide(50, 50), 640, 480, 1.0, 2)


def test_overhead_counts_the_same_patches_on_both_sides(tiny_int8):
    frame = camera_frames(slide_for(480, 270, 4.0, 1, 0), 480, 270, 4.0, 1)[0]
    with Detector(model_path=str(tiny_int8), stride=25) as det:
        n_tissue = det.detect(frame).n_tissue
    o = overhead(str(tiny_int8), frame, 4.0, stride=25, case="model scale", rounds=2)
    assert o.patches == n_tissue > 0
    assert o.bare_patches_per_s > 0 and o.pipeline_patches_per_s > 0 and o.efficiency > 0


def test_run_process_reports_frames_first_result_and_peak_memory(tiny_int8, tmp_path):
    video = write_video(tmp_path / "v.avi", camera_frames(slide_for(640, 480, 1.0, 5, 16), 640, 480, 1.0, 5, 16))
    r = run_process(["--source", video, "--model", tiny_int8, "--um-per-px", 1.0, "--max-frames", 3])
    assert r.frames == 3
    assert 0 < r.first_result_s <= r.wall_s
    assert 20 < r.peak_rss_mb < 2000
    with pytest.raises(RuntimeError, match="does not exist"):
        run_process(["--source", tmp_path / "missing.avi", "--model", tiny_int8])


def test_machine_names_the_cpu_and_the_backend():
    m = machine()
    assert m["cpu"] and not m["cpu"].isdigit() and m["cores"] >= 1
    assert m["backend"].startswith(("ai-edge-litert", "tflite-runtime", "tensorflow.lite"))


def test_bench_json_has_every_measurement_for_the_model_and_its_float_twin(tiny_int8):
    p = subprocess.run([sys.executable, "-m", "idc_edge", "bench", "--quick", "--json", "--model", str(tiny_int8)],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    b = json.loads(p.stdout)
    assert set(b) == {"machine", "model", "patch", "int8_vs_float32", "frames", "reuse", "overhead", "startup",
                      "work", "dense", "projections"}
    (work,) = b["work"]
    assert work["windows"] == 190 and work["patch_macs"] == 190 * work["macs_per_patch"] > 0
    assert work["dense_macs"] is None and b["dense"] == []      # the tiny model has no dense pass
    assert {p["device"] for p in b["projections"]} == {"Raspberry Pi 4", "Raspberry Pi 5", "Jetson Orin Nano"}
    assert {(r["model"], r["batch"]) for r in b["patch"]} == {(m, n) for m in ("int8", "float32") for n in (1, 64)}
    assert all(r["ms_per_patch"] > 0 for r in b["patch"])
    assert b["model"]["float32"].endswith("tiny_float32.tflite")
    assert set(b["int8_vs_float32"]) >= {"batch1_threads1", "batch64_threads1"}
    sizes = {(r["width"], r["height"], r["mask"]) for r in b["frames"]}
    assert sizes == {(640, 480, True), (640, 480, False), (1920, 1080, True), (1920, 1080, False)}
    for r in b["frames"]:
        assert r["tissue_patches"] <= r["patches"] and r["invoke_ms"] > 0 and r["overlay_ms"] > 0
        assert r["detect_ms"] >= r["invoke_ms"] and r["fps"] >= r["fps_with_overlay"]
        if not r["mask"]:
            assert r["tissue_patches"] == r["patches"]
    reuse = {r["sequence"]: r for r in b["reuse"]}
    assert reuse["still"]["reused_fraction"] > 0.9 and reuse["moving"]["reused_fraction"] < 0.1
    assert [o["case"] for o in b["overhead"]] == ["480×270 at 4 µm/px (no rescale)", "1920×1080 at 1 µm/px"]
    (start,) = b["startup"]
    assert start["frames"] == 1 and start["first_result_s"] > 0 and start["peak_rss_mb"] > 0


def test_bench_tables_name_the_machine_and_every_section():
    bench = DeviceBench(machine=machine(), model={"path": "m.tflite", "size_kb": 1.0, "summary": "test"})
    text = format_tables(bench)
    assert text.startswith("machine: ") and "m.tflite" in text and "patch latency" in text


def test_bench_labels_each_model_by_its_real_input_type(tiny_models):
    int8, float32 = tiny_models
    assert models_to_time(str(int8)) == {"int8": int8, "float32": float32}
    assert models_to_time(str(float32)) == {"float32": float32}  # a float model is never called "int8"
