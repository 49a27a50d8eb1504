"""The fast paths of the runtime give the same answers as the plain ones (no timing here)."""
import cv2
import numpy as np
import pytest

from idc_edge.classifier import PatchClassifier, padded_batch
from idc_edge.rescale import rescale
from tiny_model import synthetic_patches


@pytest.mark.parametrize("n, expected", [(1, 1), (2, 2), (3, 4), (5, 8), (8, 8), (9, 16), (17, 24), (43, 48),
                                         (57, 64), (64, 64)])
def test_padded_batch_is_a_power_of_two_up_to_8_then_a_multiple_of_8(n, expected):
    assert padded_batch(n, 64) == expected


def test_padded_batch_never_exceeds_max_batch():
    assert padded_batch(12, 16) == 16
    assert padded_batch(3, 2) == 2


@pytest.mark.parametrize("n", [5, 9, 43, 108, 130])
def test_short_batches_written_into_the_interpreter_buffer_score_like_single_patches(tiny_int8, n):
    x, _ = synthetic_patches(n, seed=n)
    with PatchClassifier(tiny_int8, max_batch=64) as clf:
        batched = clf.predict(x)
        single = np.concatenate([clf.predict(x[i:i + 1]) for i in range(n)])
        again = clf.predict(x)  # the reused buffers hold the previous frame's patches: no leak
    np.testing.assert_allclose(batched, single, atol=1e-6)
    np.testing.assert_array_equal(again, batched)


def test_a_short_batch_after_a_long_one_does_not_see_its_patches(tiny_int8):
    purple, _ = synthetic_patches(200, seed=1)
    with PatchClassifier(tiny_int8) as clf:
        first = clf.predict(purple[:48])
        clf.predict(purple[100:148])
        np.testing.assert_array_equal(clf.predict(purple[:40]), first[:40])


def _frame(h, w, seed=0, feature_px=8):
    """A BGR frame of random colour blobs about ``feature_px`` across (nuclei at 1 µm/px are ~8 px)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (h // feature_px + 1, w // feature_px + 1, 3), dtype=np.uint8)
    return np.ascontiguousarray(cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC))


@pytest.mark.parametrize("shape, size", [((1080, 1920), (480, 270)), ((2160, 3840), (480, 270)),
                                         ((480, 640), (160, 120)), ((481, 641), (160, 120)),
                                         ((1080, 1920), (312, 176)), ((720, 1280), (640, 360))])
def test_rescale_shrinks_like_one_area_resize(shape, size):
    exact_factor = shape[1] % size[0] == 0 and shape[0] % size[1] == 0
    frame = _frame(*shape, feature_px=8 if exact_factor else 16)
    ours = rescale(frame, size)
    area = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
    assert ours.shape == area.shape and ours.dtype == np.uint8
    diff = np.abs(ours.astype(int) - area.astype(int))
    # exact power-of-two factors: only rounding of the halvings; otherwise a slightly wider box on
    # a frame with 8 px texture, so single pixels differ but the image does not
    assert diff.max() <= (2 if exact_factor else 48)
    assert diff.mean() < (0.6 if exact_factor else 3.0)


def test_rescale_keeps_channel_order_and_returns_the_same_size_unchanged():
    frame = np.zeros((200, 400, 3), np.uint8)
    frame[..., 0] = 255  # blue in BGR
    out = rescale(frame, (100, 50))
    assert (out[..., 0] == 255).all() and (out[..., 1:] == 0).all()
    assert rescale(frame, (400, 200)) is frame


def test_rescale_enlarges_bilinearly():
    frame = _frame(60, 80)
    np.testing.assert_array_equal(rescale(frame, (160, 120)),
                                  cv2.resize(frame, (160, 120), interpolation=cv2.INTER_LINEAR))


def test_rescale_fails_with_an_empty_size():
    with pytest.raises(ValueError, match="width, height"):
        rescale(np.zeros((10, 10, 3), np.uint8), (0, 5))
