"""MACs counted from a .tflite model's ops: known tiny models, and the work of one frame per path."""
from __future__ import annotations

import numpy as np
import pytest

from idc_edge.bench.work import frame_macs
from idc_edge.macs import count_macs, model_macs, total_macs

# the committed tiny patch model (tests/make_tiny_models.py), by hand from its layers:
#   conv 3×3 stride 2, 3 → 8 channels, valid: 24×24×8 outputs × 27  = 124,416
#   max pool 2 → 12×12×8; conv 3×3, 8 → 8, valid: 10×10×8 outputs × 72 = 57,600
#   global average pool; dense 8 → 1: 8
TINY_MACS = 124_416 + 57_600 + 8
# the committed tiny dense model (tests/dense_model.py), on one 50×50 patch:
#   conv 5×5 stride 5, 3 → 8: 10×10×8 × 75 = 60,000; conv 3×3, 8 → 8: 8×8×8 × 72 = 36,864;
#   conv 8×8, 8 → 1: 1 × 512 = 512
DENSE_MACS = 60_000 + 36_864 + 512


def test_count_macs_of_conv_depthwise_and_fully_connected_shapes():
    ops = [{"op_name": "CONV_2D", "inputs": [0, 1, 2], "outputs": [3]},
           {"op_name": "DEPTHWISE_CONV_2D", "inputs": [3, 4, 5], "outputs": [6]},
           {"op_name": "MAX_POOL_2D", "inputs": [6], "outputs": [7]},
           {"op_name": "FULLY_CONNECTED", "inputs": [7, 8, 9], "outputs": [10]}]
    shapes = {0: (2, 10, 10, 3), 1: (16, 3, 3, 3), 3: (2, 8, 8, 16), 4: (1, 3, 3, 16), 6: (2, 6, 6, 16),
              7: (2, 16), 8: (4, 16), 10: (2, 4)}
    per_op = count_macs(ops, shapes)
    assert per_op == {"CONV_2D": 2 * 8 * 8 * 16 * 27, "DEPTHWISE_CONV_2D": 2 * 6 * 6 * 16 * 9,
                      "FULLY_CONNECTED": 2 * 4 * 16, "other ops": 1}
    assert total_macs(per_op) == 2 * 8 * 8 * 16 * 27 + 2 * 6 * 6 * 16 * 9 + 2 * 4 * 16


def test_model_macs_of_the_tiny_models_match_their_layers(tiny_models, dense_models):
    for path in tiny_models:
        assert model_macs(str(path)) == TINY_MACS
        assert model_macs(path.read_bytes(), batch=3) == 3 * TINY_MACS
    for path in dense_models:
        assert model_macs(str(path)) == DENSE_MACS
    # a dense pass over 100×200: 20×40 cells, 18×38 second-layer outputs, 11×31 windows
    assert model_macs(str(dense_models[0]), (100, 200)) == 20 * 40 * 8 * 75 + 18 * 38 * 8 * 72 + 11 * 31 * 512


def test_frame_work_counts_every_window_as_patches_and_the_detectors_passes_as_dense(tiny_int8, dense_int8):
    plain = frame_macs(str(tiny_int8), 1920, 1080, 1.0, 25)
    assert (plain.windows, plain.macs_per_patch) == (190, TINY_MACS)
    assert plain.patch_macs == 190 * TINY_MACS and plain.dense_macs is None and plain.ratio is None
    dense = frame_macs(str(dense_int8), 1920, 1080, 1.0, 25)
    # 480×270 model pixels: 430 and 220 are multiples of the output stride 5, so one pass covers all
    assert dense.dense_passes == 1
    assert dense.dense_macs == model_macs(str(dense_int8), (270, 480))
    odd = frame_macs(str(dense_int8), 333, 251, 4.0, 15)
    assert odd.dense_passes == 4      # the frame, the strips along the right and bottom edges, the corner
    assert odd.ratio == pytest.approx(odd.patch_macs / odd.dense_macs)
    assert np.isfinite(odd.ratio)


def test_projections_scale_the_published_peak_by_the_assumed_efficiency():
    from idc_edge.bench.work import DEVICES, FrameWork, project

    work = FrameWork(1920, 1080, 1.0, 25, 190, 1_000_000, 190_000_000, 50_000_000, 4)
    rows = project(work, efficiency=0.5, threads=(1, 4))
    pi4 = [p for p in rows if p.device == "Raspberry Pi 4"]
    assert [p.threads for p in pi4] == [1, 4]
    # 1.5 GHz × 8 int8 MACs per cycle × 50 % = 6 G MACs/s on one core
    assert pi4[0].patch_fps == pytest.approx(6e9 / 190e6) and pi4[0].dense_fps == pytest.approx(6e9 / 50e6)
    assert pi4[1].patch_fps == pytest.approx(4 * pi4[0].patch_fps)
    assert all(d.sources and d.cores >= 4 for d in DEVICES)
    plain = project(FrameWork(1920, 1080, 1.0, 25, 190, 1, 190, None, 0))
    assert all(p.dense_fps is None for p in plain)


def test_dense_vs_patch_times_both_paths_of_the_same_model_and_reports_cpu(dense_int8, tiny_int8):
    import time

    from idc_edge.bench import camera_frames, interleaved, slide_for
    from idc_edge.bench.work import dense_vs_patch

    frames = camera_frames(slide_for(320, 240, 4.0, 2, 8), 320, 240, 4.0, 2, step_px=8)
    rows = dense_vs_patch(str(dense_int8), frames, um_per_px=4.0, stride=5, masks=(False,), rounds=2)
    (row,) = rows
    assert (row.width, row.height, row.stride, row.mask) == (320, 240, 5, False)
    assert row.patches == row.tissue_patches == 55 * 39
    assert row.dense_cpu_ms > 0 and row.patch_cpu_ms > 0 and row.speedup > 0 and row.model_speedup > 0
    assert dense_vs_patch(str(tiny_int8), frames, um_per_px=4.0) == []   # no dense pass: nothing to compare
    spent = interleaved({"busy": lambda: sum(range(20000))}, rounds=2, min_round_s=0.0, clock=time.process_time)
    assert (spent["busy"] > 0).all()


def test_bench_tables_show_work_dense_timing_and_labelled_estimates(dense_int8):
    from idc_edge.bench import DeviceBench, format_tables, machine
    from idc_edge.bench.work import DenseVsPatch, frame_macs, project

    work = frame_macs(str(dense_int8))
    bench = DeviceBench(machine=machine(), model={"path": str(dense_int8), "size_kb": 5.5}, work=[work],
                        dense=[DenseVsPatch(1920, 1080, 1.0, 25, True, 120.0, 190, 2.0, 5.0, 2.5, 1.0, 4.0, 4.0)],
                        projections=project(work))
    text = format_tables(bench)
    assert "190 windows" in text and "patch path" in text and "dense path" in text
    assert "2.50x" in text and "4.00x" in text
    assert "ESTIMATED frames per second" in text and "not measured" in text
    assert "Raspberry Pi 5" in text and "Jetson Orin Nano" in text and "product brief" in text
