"""Dense mode: one convolutional pass per frame gives the same windows and scores as patch mode.

The model is a tiny fully convolutional one trained in a fixture (tests/dense_model.py, output
stride 5); frames are real data-set mosaics when ../shared is present, synthetic otherwise.
"""
from __future__ import annotations

import json
import os
import shutil

import cv2
import numpy as np
import pytest

from idc_edge import Detector
from idc_edge.classifier import PatchClassifier
from idc_edge.dataset import scan_dataset
from idc_edge.dense import DENSE_TILE_PX, bands, check_dense_stride, dense_strides, plan_dense
from idc_edge.errors import ModelError, OptionError
from idc_edge.focus import ExposureOptions, FocusOptions
from idc_edge.reuse import ScoreCache
from idc_edge.sources.stage import build_mosaic
from idc_edge.spec import ModelSpec, read_spec, sidecar_path
from idc_edge.tiling import make_grid, window_view

from dense_model import OUTPUT_STRIDE
from tiny_model import PINK, PURPLE

#: the focus and exposure gates off: these tests are about the model's scores, and the smooth synthetic
#: frames would be no call as out of focus (the gates judge the frame the same way in both modes)
UNGATED = {"focus": FocusOptions(enabled=False), "exposure": ExposureOptions(enabled=False)}

#: a small complete patient of the data set (every patch of its slide): real tissue, fast to read
MOSAIC_PATIENT = "14306"


def mixed_slide(height: int, width: int, seed: int = 0) -> np.ndarray:
    """BGR frame: pink and purple tissue regions (a few across the frame) with smooth borders and
    patches of glass, so window scores of the tiny model cover the whole range from 0 to 1."""
    rng = np.random.default_rng(seed)

    def field(cells):
        low = rng.random((cells, cells)).astype(np.float32)
        return cv2.resize(low, (width, height), interpolation=cv2.INTER_CUBIC)

    mix = (1 / (1 + np.exp(-12 * (field(5) - 0.5))))[..., None]
    rgb = (1 - mix) * np.array(PINK, np.float32) + mix * np.array(PURPLE, np.float32)
    rgb[field(7) < 0.2] = 245
    rgb += rng.normal(0, 3, rgb.shape)  # camera grain well within the noise gate (σ 10 is no call there)
    return np.clip(rgb, 0, 255).astype(np.uint8)[..., ::-1].copy()


def one_step(path) -> float:
    """One output quantization step of a model (its score resolution); float32 models get 1e-5."""
    with PatchClassifier(path) as clf:
        return clf.output_format.scale if clf.output_format.quantized else 1e-5


def assert_same_as_patch_mode(model, frame, *, step: float, min_spread: float = 0.5, **options):
    """Dense and patch mode on one frame: same windows, tissue and boxes; scores within ``step``."""
    options = {**UNGATED, **options}
    with Detector(model_path=str(model), dense=True, **options) as dense, \
            Detector(model_path=str(model), dense=False, **options) as patches:
        assert dense.dense and not patches.dense
        a, b = dense.detect(frame), patches.detect(frame)
    assert a.probabilities.shape == b.probabilities.shape
    np.testing.assert_array_equal(a.tissue, b.tissue)
    np.testing.assert_array_equal(a.boxes, b.boxes)
    np.testing.assert_array_equal(np.isnan(a.probabilities), np.isnan(b.probabilities))
    assert a.n_tissue > 0
    diff = np.abs(a.probabilities - b.probabilities)[a.tissue]
    assert diff.max() <= step * 1.001, f"dense and patch scores differ by {diff.max():.5f} > one step {step:.5f}"
    scores = b.probabilities[b.tissue]
    # the comparison means something only if the scores are spread out, not all 0 or all 1
    assert np.ptp(scores) >= min_spread, f"scores span only {np.ptp(scores):.2f}"
    near = np.abs(b.probabilities - b.threshold) <= step
    np.testing.assert_array_equal(a.idc[~near], b.idc[~near])
    return a, b


# -- equivalence ---------------------------------------------------------------------------------

@pytest.mark.parametrize("width,height,um_per_px,stride,mask,min_spread", [
    (1920, 1080, 1.0, 25, True, 0.5),    # the 1080p camera case; last row and column off the lattice
    (640, 480, 1.0, 50, True, 0.4),      # 12 windows
    (333, 251, 4.0, 15, False, 0.5),     # odd sizes: 283 % 5 and 201 % 5 leave both edges off the lattice
    (260, 140, 4.0, 5, True, 0.5),       # stride = output stride: every lattice window
    (37, 29, 4.0, 50, False, 0.0),       # smaller than one patch: padded to one window, as in patch mode
])
def test_dense_scores_equal_patch_scores_on_synthetic_frames(dense_int8, width, height, um_per_px, stride, mask,
                                                             min_spread):
    frame = mixed_slide(height, width, seed=width)
    assert_same_as_patch_mode(dense_int8, frame, step=one_step(dense_int8), min_spread=min_spread,
                              um_per_px=um_per_px, stride=stride, tissue_mask=mask)


def mosaic_crops(labels: np.ndarray, rows: int, cols: int) -> list[tuple[int, int]]:
    """(y, x) in model pixels of three crops of ``rows × cols`` cells of 50 px: the one with most IDC
    cells, the one with most tissue cells, and the one with most tissue among the last rows."""
    idc, tissue = (labels == 1).astype(int), (labels >= 0).astype(int)

    def best(score, row_from=0):
        h, w = score.shape
        sums = {(r, c): score[r:r + rows, c:c + cols].sum() for r in range(row_from, max(1, h - rows + 1))
                for c in range(max(1, w - cols + 1))}
        r, c = max(sums, key=sums.get)
        return r * 50, c * 50
    return [best(idc), best(tissue), best(tissue, row_from=max(0, labels.shape[0] - rows - 1))]


def test_dense_scores_equal_patch_scores_on_real_mosaic_frames(dense_int8, data_dir):
    mosaic, labels, _ = build_mosaic(scan_dataset(data_dir, [MOSAIC_PATIENT]))
    step = one_step(dense_int8)
    checked = 0
    for y0, x0 in mosaic_crops(labels, 6, 10):
        crop = mosaic[y0:y0 + 270, x0:x0 + 480]
        # a 1 µm/px camera sees each model pixel as 4×4 camera pixels
        frame = cv2.resize(crop, (crop.shape[1] * 4, crop.shape[0] * 4), interpolation=cv2.INTER_LINEAR)
        a, _ = assert_same_as_patch_mode(dense_int8, frame, step=step, min_spread=0.1, um_per_px=1.0, stride=25)
        checked += a.n_tissue
        odd = mosaic[y0:y0 + 213, x0:x0 + 347]   # model scale, odd size: both edges off the lattice
        assert_same_as_patch_mode(dense_int8, odd, step=step, min_spread=0.1, stride=10, tissue_mask=False)
    assert checked > 200


def test_float32_dense_scores_equal_its_patch_scores(dense_models):
    frame = mixed_slide(180, 260, seed=7)
    assert_same_as_patch_mode(dense_models[1], frame, step=1e-5, stride=10)


def test_predict_dense_scores_every_lattice_window_like_predict(dense_int8):
    rgb = cv2.cvtColor(mixed_slide(123, 211, seed=3), cv2.COLOR_BGR2RGB)
    with PatchClassifier(dense_int8) as clf:
        assert clf.dense_stride == OUTPUT_STRIDE
        dense = clf.predict_dense(rgb)
        windows = window_view(rgb, 50)[::OUTPUT_STRIDE, ::OUTPUT_STRIDE]
        assert dense.shape == windows.shape[:2] == clf.dense_output_shape(123, 211) == (15, 33)
        patch = clf.predict(np.ascontiguousarray(windows.reshape(-1, 50, 50, 3))).reshape(dense.shape)
        assert np.abs(dense - patch).max() <= clf.output_format.scale * 1.001
        with pytest.raises(ValueError, match="H, W >= 50"):
            clf.predict_dense(rgb[:40])


def test_classify_patches_keeps_its_meaning_for_a_dense_model(dense_int8):
    rgb = cv2.cvtColor(mixed_slide(100, 150, seed=4), cv2.COLOR_BGR2RGB)
    patches = np.ascontiguousarray(window_view(rgb, 50)[::25, ::25].reshape(-1, 50, 50, 3))
    with Detector(model_path=str(dense_int8), **UNGATED) as det, PatchClassifier(dense_int8) as clf:
        out = det.classify_patches(patches)
        assert out.shape == (len(patches),) and out.dtype == np.float32
        np.testing.assert_array_equal(out, clf.predict(patches))


# -- edges, tiles and memory -----------------------------------------------------------------------

@pytest.mark.parametrize("length,stride,tile_px", [(480, 25, 1024), (283, 15, 1024), (2000, 50, 300), (50, 50, 1024),
                                                   (1203, 5, 120)])
def test_bands_score_every_grid_start_exactly_once_within_the_tile_size(length, stride, tile_px):
    grid = make_grid((length, 60), 50, stride, 1.0)
    found = np.zeros(len(grid.ys), int)
    for band in bands(grid.ys, length, 50, OUTPUT_STRIDE, tile_px):
        assert band.span_px(50, OUTPUT_STRIDE) <= max(tile_px, 50)
        assert band.origin_px + band.span_px(50, OUTPUT_STRIDE) <= length
        np.testing.assert_array_equal(band.origin_px + OUTPUT_STRIDE * band.local, grid.ys[band.grid_index])
        found[band.grid_index] += 1
    assert (found == 1).all()


def test_a_huge_frame_is_scored_in_bounded_tiles_and_still_equals_patch_mode(dense_int8, monkeypatch):
    import idc_edge.dense

    monkeypatch.setattr(idc_edge.dense, "DENSE_TILE_PX", 160)
    frame = mixed_slide(430, 610, seed=5)
    grid = make_grid(frame.shape[:2], 50, 15, 1.0)
    plan = plan_dense(grid, OUTPUT_STRIDE, 160)
    assert len(plan.passes) > 6
    assert all(h <= 160 and w <= 160 for h, w in plan.shapes_px())
    assert len(plan.shapes_px()) <= 4   # a few interpreter sizes serve every tile
    assert_same_as_patch_mode(dense_int8, frame, step=one_step(dense_int8), stride=15)
    assert DENSE_TILE_PX >= 480     # a 1080p frame at 1 µm/px (480×270 model pixels) is one pass by default


# -- stride -------------------------------------------------------------------------------------------

def test_dense_strides_are_multiples_of_the_output_stride():
    assert dense_strides(50, 25) == [25, 50]
    assert dense_strides(50, 5)[:3] == [5, 10, 15]
    check_dense_stride(75, 50, 25)
    with pytest.raises(OptionError, match=r"stride 30 px is not a multiple of this model's output stride \(25 px\): "
                                          r"use one of 25, 50") as e:
        check_dense_stride(30, 50, 25)
    assert "patch by patch (dense=False)" in str(e.value) and "--" not in str(e.value)  # the CLI says --no-dense


def test_a_stride_off_the_output_stride_is_refused_in_dense_mode_and_allowed_in_patch_mode(dense_int8):
    with pytest.raises(OptionError, match="use one of 5, 10, 15"):
        Detector(model_path=str(dense_int8), **UNGATED, stride=23)
    with Detector(model_path=str(dense_int8), **UNGATED, stride=23, dense=False) as det:
        assert not det.dense and det.stride == 23
    with Detector(model_path=str(dense_int8), **UNGATED) as det:
        assert det.dense and det.stride == 50


# -- sidecars -------------------------------------------------------------------------------------------

def copy_model(src, dst_dir, edit):
    """Copy a model and its sidecar, changing the sidecar's JSON with ``edit``."""
    dst = dst_dir / src.name
    shutil.copy(src, dst)
    data = json.loads(sidecar_path(src).read_text())
    edit(data)
    sidecar_path(dst).write_text(json.dumps(data))
    return dst


def test_a_sidecar_without_dense_runs_the_same_model_patch_by_patch(dense_int8, tmp_path):
    plain = copy_model(dense_int8, tmp_path, lambda d: d.pop("dense"))
    assert read_spec(plain).dense is None
    frame = mixed_slide(200, 300, seed=6)
    with Detector(model_path=str(plain), **UNGATED, stride=25) as det, \
            Detector(model_path=str(dense_int8), **UNGATED, stride=25, dense=False) as ref:
        assert not det.dense
        np.testing.assert_array_equal(det.detect(frame).probabilities, ref.detect(frame).probabilities)
    with pytest.raises(ModelError, match="has no dense pass"):
        Detector(model_path=str(plain), **UNGATED, dense=True)


def test_an_old_patch_only_model_keeps_working(tiny_int8):
    with Detector(model_path=str(tiny_int8), **UNGATED, stride=23) as det:
        assert not det.dense and det.output_stride is None
        assert det.detect(mixed_slide(120, 160)).n_patches > 0
    assert "dense" not in ModelSpec().to_dict()   # a patch-only sidecar is written as before


@pytest.mark.parametrize("dense", [0, -5, 2.5, "5", True, {}, [], {"output_stride_px": 5, "pad": 1},
                                   {"output_stride_px": 51}, {"output_stride_px": None}, 5])
def test_bad_dense_fields_are_a_model_error_naming_the_field(dense_int8, tmp_path, dense):
    value = dense if isinstance(dense, (dict, list)) or dense == 5 else {"output_stride_px": dense}
    bad = copy_model(dense_int8, tmp_path, lambda d: d.update(dense=value))
    with pytest.raises(ModelError, match="dense"):
        read_spec(bad)


def test_a_dense_stride_that_does_not_match_the_model_is_refused_at_load(dense_int8, tmp_path):
    for wrong in (4, 6, 10, 25):
        bad = copy_model(dense_int8, tmp_path, lambda d: d.update(dense={"output_stride_px": wrong}))
        with pytest.raises(ModelError, match="does not match the model"):
            PatchClassifier(bad)


# -- reuse -------------------------------------------------------------------------------------------------

def test_reuse_in_dense_mode_skips_the_pass_on_a_still_stage_and_rescores_a_moving_one(dense_int8):
    rng = np.random.default_rng(0)
    slide = mixed_slide(300, 500, seed=8)
    still = [np.clip(slide[:240, :320].astype(np.int16) + rng.integers(-1, 2, (240, 320, 3)), 0, 255).astype(np.uint8)
             for _ in range(3)]
    moving = [slide[:240, 20 * i:20 * i + 320] for i in range(3)]
    with Detector(model_path=str(dense_int8), **UNGATED, stride=25, dense=True) as det:
        assert det.dense
        on = list(det.stream(still, reuse=True, keep_image=False))
        off = [det.detect(f) for f in still]
        assert on[0].reused == 0 and on[1].reused == on[1].n_tissue > 0 and on[2].reused == on[2].n_tissue
        for a, b in zip(on, off):
            assert np.nanmax(np.abs(a.probabilities - b.probabilities)) <= 0.05
        assert on[1].times.invoke == 0.0     # no dense pass ran
        mov = list(det.stream(moving, reuse=True, keep_image=False))
        assert [r.reused for r in mov] == [0, 0, 0]
        for a, f in zip(mov, moving):
            np.testing.assert_array_equal(a.probabilities, det.detect(f).probabilities)
    cache = ScoreCache()
    with Detector(model_path=str(dense_int8), **UNGATED, stride=25, dense=True) as det:
        first = det.detect(still[0], cache=cache)
        assert np.array_equal(cache.scores(), first.probabilities, equal_nan=True)


# -- choosing the cheaper path per pass -------------------------------------------------------------

def test_by_default_each_pass_runs_dense_only_where_it_costs_fewer_macs_than_its_patches(dense_int8):
    frame = mixed_slide(200, 300, seed=9)
    with Detector(model_path=str(dense_int8), **UNGATED, stride=5, tissue_mask=False) as every, \
            Detector(model_path=str(dense_int8), **UNGATED, stride=50, tissue_mask=False) as sparse, \
            Detector(model_path=str(dense_int8), **UNGATED, stride=50, tissue_mask=False,
                     dense=False) as patches:
        clf = every.classifier
        # at stride 5 every lattice window is wanted: one pass shares the work of 1,311 windows
        assert clf.macs((200, 300)) < 0.2 * every.detect(frame).n_patches * clf.macs()
        every.detect(frame)
        assert len(clf._dense_slots) == 1
        # at stride 50 the pass would score 25 lattice windows per wanted one: patches are cheaper
        result = sparse.detect(frame)
        assert len(sparse.classifier._dense_slots) == 0
        np.testing.assert_array_equal(result.probabilities, patches.detect(frame).probabilities)


def test_the_focus_and_exposure_gates_make_the_same_no_calls_in_both_modes(dense_int8):
    frame = mixed_slide(270, 480, seed=11)
    # the left half in focus: dark nuclei 2 px across (8 µm), as stained tissue shows them
    dots = cv2.dilate((np.random.default_rng(11).random(frame.shape[:2]) < 0.04).astype(np.uint8), np.ones((2, 2)))
    left = frame[:, :240]
    left[dots[:, :240] > 0] = (left[dots[:, :240] > 0] * 0.55).astype(np.uint8)
    frame[:, 240:] = cv2.GaussianBlur(frame[:, 240:], (0, 0), 3)   # the right half out of focus
    with Detector(model_path=str(dense_int8), stride=25, dense=True) as dense, \
            Detector(model_path=str(dense_int8), stride=25, dense=False) as patches:
        a, b = dense.detect(frame), patches.detect(frame)
    no_call = np.isnan(a.probabilities) & a.tissue
    assert 0 < no_call.sum() < a.n_tissue          # some tissue windows are no call, others scored
    np.testing.assert_array_equal(np.isnan(a.probabilities), np.isnan(b.probabilities))
    np.testing.assert_array_equal(a.idc, b.idc)


def test_an_int8_input_dense_model_is_fed_raw_bytes_minus_128_in_both_modes(tmp_path):
    from dense_model import INT8, INT8_INPUT, dense_model_files

    uint8_in, int8_in = dense_model_files(tmp_path, (INT8, INT8_INPUT))
    rgb = cv2.cvtColor(mixed_slide(150, 230, seed=12), cv2.COLOR_BGR2RGB)
    with PatchClassifier(uint8_in) as a, PatchClassifier(int8_in) as b:
        assert b.input_format.dtype == np.int8 and b.input_format.zero_point == -128
        step = max(a.output_format.scale, b.output_format.scale)
        dense_a, dense_b = a.predict_dense(rgb), b.predict_dense(rgb)
        assert np.ptp(dense_a) > 0.3
        assert np.abs(dense_a - dense_b).max() <= step * 1.001
        windows = np.ascontiguousarray(window_view(rgb, 50)[::OUTPUT_STRIDE, ::OUTPUT_STRIDE].reshape(-1, 50, 50, 3))
        assert np.abs(b.predict(windows).reshape(dense_b.shape) - dense_b).max() <= step * 1.001


@pytest.mark.filterwarnings("ignore:stride .* is larger than")
@pytest.mark.filterwarnings("ignore:a .* frame at .* is only")
def test_any_frame_size_scale_stride_and_tile_gives_patch_modes_windows_and_scores(dense_int8):
    pytest.importorskip("hypothesis", reason="property tests need hypothesis (the [test] extra)")
    from hypothesis import given, settings
    from hypothesis import strategies as st

    import idc_edge.dense

    step = one_step(dense_int8)

    @settings(max_examples=int(os.environ.get("IDC_EDGE_PROPERTY_EXAMPLES", "0")) or 25, deadline=None)
    @given(h=st.integers(1, 260), w=st.integers(1, 260), um=st.sampled_from([1.0, 2.0, 3.0, 4.0, 5.5]),
           k=st.integers(1, 12), mask=st.booleans(), tile=st.sampled_from([60, 120, 1024]), seed=st.integers(0, 99))
    def check(h, w, um, k, mask, tile, seed):
        frame = mixed_slide(h, w, seed=seed)
        old = idc_edge.dense.DENSE_TILE_PX
        idc_edge.dense.DENSE_TILE_PX = tile
        try:
            with Detector(model_path=str(dense_int8), dense=True, um_per_px=um, stride=5 * k, tissue_mask=mask,
                          **UNGATED) as dense, \
                    Detector(model_path=str(dense_int8), dense=False, um_per_px=um, stride=5 * k, tissue_mask=mask,
                             **UNGATED) as patches:
                a, b = dense.detect(frame), patches.detect(frame)
        finally:
            idc_edge.dense.DENSE_TILE_PX = old
        np.testing.assert_array_equal(a.boxes, b.boxes)
        np.testing.assert_array_equal(np.isnan(a.probabilities), np.isnan(b.probabilities))
        both = ~np.isnan(a.probabilities)
        if both.any():
            assert np.abs(a.probabilities - b.probabilities)[both].max() <= step * 1.001

    check()
