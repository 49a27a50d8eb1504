"""Motion-aware reuse: a still stage reuses scores, a moving one gets fresh scores in the same frame."""
import numpy as np
import pytest

from conftest import frame_with_blob
from idc_edge.detector import Detector
from idc_edge.errors import OptionError
from idc_edge.focus import ColourOptions, ExposureOptions
from idc_edge.reuse import ReuseOptions, ScoreCache, patch_signatures, signature_change
from idc_edge.tiling import make_grid
from tiny_model import PINK, PURPLE


@pytest.fixture
def detector(tiny_int8):
    with Detector(model_path=str(tiny_int8), stride=25) as det:
        yield det


def noisy(frame, sigma, seed):
    rng = np.random.default_rng(seed)
    return np.clip(frame + rng.normal(0, sigma, frame.shape), 0, 255).astype(np.uint8)


def textured_slide(shape=(600, 900), seed=0):
    """A BGR 'slide': pink tissue with purple nuclei-sized dots on the left 2/3, a purple IDC band."""
    rng = np.random.default_rng(seed)
    h, w = shape
    img = np.empty((h, w, 3), np.float32)
    img[:] = (245, 245, 245)
    img[:, : 2 * w // 3] = PINK[::-1]
    img[150:300, 100:500] = PURPLE[::-1]
    ys, xs = rng.integers(0, h, 15000), rng.integers(0, 2 * w // 3, 15000)
    img[ys, xs] = (90, 30, 60)  # BGR: haematoxylin-dark nuclei, bluer than the eosin around them
    for dy, dx in ((0, 1), (1, 0), (1, 1)):
        img[np.minimum(ys + dy, h - 1), np.minimum(xs + dx, w - 1)] = (90, 30, 60)
    return np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8)


def test_signatures_are_the_cell_means_of_each_patch():
    rgb = np.random.default_rng(0).integers(0, 256, (120, 170, 3), dtype=np.uint8)
    grid = make_grid((120, 170), 50, 25, 1.0)
    sig = patch_signatures(rgb, grid, cell_px=5)
    assert sig.shape == (*grid.shape, 10, 10, 3) and sig.dtype == np.uint8
    for r, c in ((0, 0), (1, 2), (len(grid.ys) - 1, len(grid.xs) - 1)):
        y, x = grid.ys[r], grid.xs[c]
        cells = rgb[y:y + 50, x:x + 50].astype(float).reshape(10, 5, 10, 5, 3).mean(axis=(1, 3))  # R, G, B kept
        assert np.abs(sig[r, c].astype(float) - cells).max() <= 1.0


def test_signature_change_is_mean_and_max_absolute_difference():
    a = np.zeros((1, 2, 2, 2), np.uint8)  # any trailing shape: cells (and channels) of each patch
    b = a.copy()
    b[0, 1] = [[4, 0], [0, 200]]
    mean, peak = signature_change(b, a)
    np.testing.assert_allclose(mean, [[0, 51]])
    np.testing.assert_allclose(peak, [[0, 200]])


def test_a_white_balance_change_that_keeps_brightness_invalidates_stale_scores():
    # the failure this guards: reuse on grey levels alone kept the IDC scores of a frame after the
    # camera's white balance changed (29.5 % IDC reported where a fresh frame gave 1.1 %). Here the
    # cast moves red up and blue down with the grey level (0.299 R + 0.587 G + 0.114 B) nearly unchanged.
    slide = textured_slide()
    rgb = slide[..., ::-1].astype(np.float32)
    cast = rgb * np.array([1.08, 1.0, 1.0], np.float32)
    cast[..., 2] -= 0.299 * 0.08 * rgb[..., 0] / 0.114
    cast = np.clip(cast, 0, 255).astype(np.uint8)
    grey_change = np.abs(cast.astype(float) @ [0.299, 0.587, 0.114] - rgb @ [0.299, 0.587, 0.114])
    assert grey_change[slide[..., 1] < 200].mean() < 1.0  # the grey signature alone would not see it
    grid = make_grid(slide.shape[:2], 50, 25, 1.0)
    cache = ScoreCache()
    tissue = np.ones(grid.shape, bool)
    before = patch_signatures(slide[..., ::-1].copy(), grid)
    cache.reusable(grid, before, tissue)
    cache.update(before, tissue, np.full(tissue.sum(), 0.9, np.float32))
    assert cache.reusable(grid, before, tissue).all()
    after = patch_signatures(cast, grid)
    pink = slide[grid.ys + 25][:, grid.xs + 25][..., 1] < 200  # patch centres on tissue
    assert not cache.reusable(grid, after, tissue)[pink].any()


def test_a_still_noisy_stage_reuses_almost_every_score_and_keeps_the_result(detector):
    frame = textured_slide()
    frames = [noisy(frame, 4, seed) for seed in range(6)]
    results = list(detector.stream(frames, keep_image=False))
    fresh = detector.detect(frames[0])
    assert results[0].reused == 0
    n_tissue = results[0].n_tissue
    assert n_tissue > 50
    for r in results[1:]:
        assert r.reused >= 0.9 * r.n_tissue
        np.testing.assert_array_equal(r.idc, fresh.idc)
        np.testing.assert_array_equal(r.tissue, fresh.tissue)


def test_a_moving_stage_gets_fresh_scores_in_the_same_frame(detector):
    slide = textured_slide()
    frames = [slide[:480, x:x + 640].copy() for x in (0, 30, 60, 90)]
    for prev, r, f in zip([None, *frames], detector.stream(frames, keep_image=False), frames):
        fresh = detector.detect(f)
        assert r.reused <= 0.05 * r.n_tissue
        np.testing.assert_array_equal(r.idc, fresh.idc)
        np.testing.assert_allclose(np.nan_to_num(r.probabilities, nan=-1), np.nan_to_num(fresh.probabilities, nan=-1),
                                   atol=0.02)


def test_a_change_in_part_of_a_still_field_is_classified_in_that_frame(detector):
    still = textured_slide()[:480, :640].copy()
    changed = still.copy()
    changed[330:480, 50:300] = PURPLE[::-1]  # IDC-coloured tissue appears in the lower left
    results = list(detector.stream([still, still, changed], keep_image=False))
    fresh = detector.detect(changed)
    last = results[-1]
    assert 0 < last.reused < last.n_tissue
    np.testing.assert_array_equal(last.idc, fresh.idc)
    assert last.idc[-2:, 1:5].any() and not results[1].idc[-2:, 1:5].any()


def test_slow_drift_is_compared_with_the_scored_frame_not_the_previous_one(tiny_int8):
    import cv2

    # a 1 µm/px camera drifting 1 px (a quarter of a model pixel) per frame, 24 px in all
    slide = cv2.resize(textured_slide()[:300, :400], None, fx=4, fy=4, interpolation=cv2.INTER_LINEAR)
    frames = [slide[:1080, x:x + 1400].copy() for x in range(0, 25)]
    cache = ScoreCache()
    reused = []
    # the synthetic tissue has nothing as bright as real glass or lumen: the exposure gate's white
    # level for large fields (chosen on real slides) would call it too dark, so the old level is used;
    # and its palest pink, taken for white, leaves the stains' colours unreadable (the colour gate is off)
    with Detector(model_path=str(tiny_int8), stride=25, um_per_px=1.0, exposure=ExposureOptions(min_white=100),
                  colour=ColourOptions(enabled=False)) as det:
        for f in frames:
            r = det.detect(f, cache=cache)
            fresh = det.detect(f)
            both = r.tissue & fresh.tissue
            # a reused score never drifts far from what the model says now
            assert np.abs(r.probabilities[both] - fresh.probabilities[both]).max() < 0.1
            reused.append(r.reused / max(1, r.n_tissue))
    assert 0.3 < np.mean(reused[1:]) < 0.95


def test_cache_compares_with_the_signature_a_score_was_computed_on():
    grid = make_grid((100, 100), 50, 50, 1.0)
    tissue = np.ones(grid.shape, bool)
    cache = ScoreCache(ReuseOptions(max_mean_change=2.0, max_cell_change=255))
    sig = np.full((*grid.shape, 10, 10), 100, np.uint8)
    assert not cache.reusable(grid, sig, tissue).any()
    cache.update(sig, tissue, np.arange(4, dtype=np.float32))
    reused_at = []
    for step in range(1, 5):  # one grey level brighter per frame: each step alone is tiny
        now = sig + np.uint8(step)
        keep = cache.reusable(grid, now, tissue)
        reused_at.append(bool(keep.all()))
        cache.update(now, ~keep, np.full(int((~keep).sum()), 9.0, np.float32))
    assert reused_at == [True, True, False, True]   # 3 levels from the scored frame: classify again
    np.testing.assert_array_equal(cache.scores(), np.full(grid.shape, 9.0))


def test_reuse_can_be_switched_off(tiny_int8):
    frame = textured_slide()[:480, :640].copy()
    with Detector(model_path=str(tiny_int8), stride=25, reuse=False) as det:
        assert all(r.reused == 0 for r in det.stream([frame, frame, frame]))
        assert any(r.reused > 0 for r in det.stream([frame, frame], reuse=True))


def test_a_new_frame_size_starts_afresh(detector):
    big = textured_slide()
    results = list(detector.stream([big[:480, :640], big[:480, :640], big[:360, :500]], keep_image=False))
    assert results[1].reused > 0 and results[2].reused == 0


def test_background_is_never_reused_as_tissue(detector):
    frame = frame_with_blob(box=(100, 100, 400, 300))
    results = list(detector.stream([frame, frame], keep_image=False))
    assert results[1].reused == results[1].n_tissue
    assert np.isnan(results[1].probabilities[~results[1].tissue]).all()
    assert results[1].reused <= results[1].n_tissue < results[1].n_patches


@pytest.mark.parametrize("kwargs, match", [
    ({"max_mean_change": -1}, "max_mean_change"), ({"max_cell_change": 300}, "max_cell_change"),
    ({"cell_px": 0}, "cell_px"), ({"max_mean_change": True}, "max_mean_change")])
def test_reuse_options_fail_with_out_of_range_values(kwargs, match):
    with pytest.raises(OptionError, match=match):
        ReuseOptions(**kwargs)


def test_detector_option_reuse_fails_with_a_non_bool(tiny_int8):
    with pytest.raises(OptionError, match="reuse must be True or False"):
        Detector(model_path=str(tiny_int8), reuse="yes")


def test_real_slide_still_stage_reuses_and_moving_stage_does_not(detector, data_dir):
    from idc_edge.sources import MosaicSource

    src = MosaicSource(data_dir, patients=[sorted(p.name for p in data_dir.iterdir() if p.is_dir())[0]],
                       width=640, height=480, step=80)
    moving = [f.image for _, f in zip(range(6), src)]
    still = [noisy(moving[2], 3, s) for s in range(4)]
    rm = list(detector.stream(moving, keep_image=False))
    rs = list(detector.stream(still, keep_image=False))
    tissue = sum(r.n_tissue for r in rm[1:])
    if tissue == 0:
        pytest.skip("the first patient's first frames show no tissue")
    assert sum(r.reused for r in rm[1:]) <= 0.1 * tissue
    assert all(r.reused >= 0.9 * r.n_tissue for r in rs[1:])
