"""Fully convolutional ("dense") architectures: one pass over a large input gives, at every window
position, the score of the same model run on that 50×50 window alone (Keras, float32)."""
from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from train import architectures  # noqa: E402

DENSE = [n for n in architectures.names() if architectures.output_stride_px(n)]


def _randomised(model, seed: int):
    """Random weights and batch-norm statistics, so that the check exercises every layer."""
    rng = np.random.default_rng(seed)
    weights = []
    for w in model.get_weights():
        if w.ndim == 1:  # BN gamma/beta/mean/var and biases: keep variances positive
            weights.append(rng.uniform(0.5, 1.5, w.shape).astype(np.float32))
        else:
            fan_in = int(np.prod(w.shape[:-1]))
            weights.append(rng.normal(0, (2.0 / fan_in) ** 0.5, w.shape).astype(np.float32))
    model.set_weights(weights)
    return model


@pytest.mark.parametrize("name", DENSE)
def test_dense_pass_equals_the_patch_model_on_every_window(name):
    stride = architectures.output_stride_px(name)
    h, w = 50 + 3 * stride + 7, 50 + 4 * stride + 13  # not a multiple of the stride: leftovers dropped
    patch_model = _randomised(architectures.build(name, keras), seed=1)
    dense_model = architectures.build(name, keras, input_hw=(None, None))
    dense_model.set_weights(patch_model.get_weights())
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (1, h, w, 3)).astype(np.float32)

    dense = np.asarray(dense_model(frame, training=False))
    rows, cols = (h - 50) // stride + 1, (w - 50) // stride + 1
    assert dense.shape == (1, rows, cols, 1)
    windows = np.stack([frame[0, i * stride:i * stride + 50, j * stride:j * stride + 50]
                        for i in range(rows) for j in range(cols)])
    patch = np.asarray(patch_model(windows, training=False))
    assert patch.shape == (rows * cols, 1, 1, 1)
    np.testing.assert_allclose(dense.reshape(-1), patch.reshape(-1), rtol=0, atol=2e-5)
    assert np.ptp(patch) > 1e-3  # the random model is not constant, so the comparison means something


@pytest.mark.parametrize("name", DENSE)
def test_dense_model_has_no_padding_and_fits_the_size_budget(name):
    model = architectures.build(name, keras)
    for layer in model.layers:
        assert getattr(layer, "padding", "valid") == "valid", layer.name
        assert "Global" not in type(layer).__name__, layer.name
    assert model.count_params() < 300_000  # int8 ≈ 1 byte per weight after batch-norm folding


@pytest.mark.parametrize("name", DENSE)
def test_a_dense_pass_over_a_1080p_frame_needs_far_fewer_macs_than_its_190_windows(name):
    # 1920×1080 at 1 µm/px is 480×270 at the model's 4 µm/px; stride 25 gives 19×10 = 190 windows
    # when the last row/column is padded, i.e. a dense input of 500×275.
    patch_macs = architectures.conv_macs(architectures.build(name, keras))
    dense_macs = architectures.conv_macs(architectures.build(name, keras, input_hw=(275, 500)))
    assert patch_macs * 190 / dense_macs >= 2.5


def test_patch_only_models_refuse_other_input_sizes():
    with pytest.raises(ValueError, match="patch-only"):
        architectures.build("s2_deep", keras, input_hw=(100, 100))
    assert architectures.output_stride_px("s2_deep") is None
