"""train.camera_sim: each simulated camera effect does what its physics says (numpy + OpenCV only)."""
from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest

from train import camera_sim as cs


def _tissue(seed: int = 0, size: int = 50) -> np.ndarray:
    """A textured RGB uint8 image: random blobs of purple on pink, like H&E at 4 µm/px."""
    rng = np.random.default_rng(seed)
    img = np.empty((size, size, 3), np.uint8)
    img[:] = (230, 170, 200)
    for _ in range(size * size // 40):
        y, x = rng.integers(0, size, 2)
        cv2.circle(img, (int(x), int(y)), int(rng.integers(1, 3)), (90, 40, 140), -1)
    return img


def _sharpness(rgb: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())


def test_srgb_round_trip_is_exact_for_every_byte():
    v = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)
    assert np.array_equal(cs.to_srgb(cs.to_linear(v)), v)


def test_defocus_lowers_sharpness_more_for_larger_blur_and_keeps_the_mean():
    img = _tissue()
    s0 = _sharpness(img)
    s_small = _sharpness(cs.defocus(img, sigma_um=2.0))
    s_large = _sharpness(cs.defocus(img, sigma_um=8.0))
    s_disk = _sharpness(cs.defocus(img, disk_radius_um=8.0))
    assert s0 > s_small > s_large
    assert s_disk < s_small
    assert abs(cs.defocus(img, sigma_um=4.0).mean() - img.mean()) < 1.5


def test_defocus_is_given_in_micrometres_at_the_images_scale():
    img = _tissue()
    # 4 µm at 4 µm/px is sigma 1 px; the same 4 µm at 1 µm/px is sigma 4 px
    assert np.array_equal(cs.defocus(img, sigma_um=4.0, um_per_px=4.0), cs.defocus(img, sigma_um=1.0, um_per_px=1.0))
    assert _sharpness(cs.defocus(img, sigma_um=4.0, um_per_px=1.0)) < _sharpness(cs.defocus(img, sigma_um=4.0))


def test_disk_kernel_is_normalised_round_and_of_the_right_area():
    k = cs.disk_kernel(3.0)
    assert k.shape == (7, 7) and k.sum() == pytest.approx(1.0, abs=1e-6)
    assert np.allclose(k, k.T) and np.allclose(k, k[::-1])
    assert (k >= k.max() / 2).sum() == pytest.approx(np.pi * 9, rel=0.15)  # half-covered edge pixels count


def test_colour_cast_applies_each_gain_to_its_own_channel_in_linear_light():
    img = np.full((8, 8, 3), 128, np.uint8)
    out = cs.colour_cast(img, (0.5, 1.0, 2.0))
    lin = cs.to_linear(img)[0, 0, 0]
    assert cs.to_linear(out)[0, 0, 0] == pytest.approx(0.5 * lin, abs=3e-3)
    assert out[0, 0, 1] == 128
    assert cs.to_linear(out)[0, 0, 2] == pytest.approx(2.0 * lin, abs=3e-3)
    r, g, b = cs.cool_cast(0.2)
    assert (r, g, b) == pytest.approx((0.8, 1.0, 1.2))


def test_shot_noise_variance_grows_with_signal_in_linear_light_and_with_less_light():
    rng = np.random.default_rng(0)
    levels = {}
    for byte in (60, 200):
        img = np.full((200, 200, 3), byte, np.uint8)
        out = cs.sensor_noise(img, rng, full_well_e=1000.0, read_noise_e=0.0)
        electrons = cs.to_linear(out).astype(np.float64) * 1000.0
        levels[byte] = (electrons.mean(), electrons.var())
    for mean, var in levels.values():  # Poisson: variance ≈ mean, in electrons
        assert var == pytest.approx(mean, rel=0.25)
    assert levels[200][1] > 3 * levels[60][1]
    img = _tissue(1, 200)
    noisy_dark = cs.sensor_noise(img, np.random.default_rng(1), full_well_e=100.0)
    noisy_bright = cs.sensor_noise(img, np.random.default_rng(1), full_well_e=10_000.0)
    err = lambda x: np.abs(x.astype(float) - img).mean()  # noqa: E731
    assert err(noisy_dark) > 3 * err(noisy_bright)


def test_noise_is_reproducible_from_the_generator():
    img = _tissue()
    a = cs.sensor_noise(img, np.random.default_rng(5), full_well_e=250.0)
    b = cs.sensor_noise(img, np.random.default_rng(5), full_well_e=250.0)
    assert np.array_equal(a, b)


def test_exposure_gain_is_linear_light_and_gamma_darkens_mid_tones():
    img = np.full((4, 4, 3), 180, np.uint8)
    half = cs.exposure(img, 0.5)
    assert cs.to_linear(half)[0, 0, 0] == pytest.approx(0.5 * cs.to_linear(img)[0, 0, 0], abs=3e-3)
    assert cs.exposure(img, 1.0, 1.5)[0, 0, 0] < 180 < cs.exposure(img, 1.0, 0.7)[0, 0, 0]


def test_jpeg_at_the_camera_scale_before_the_rescale_costs_less_than_at_the_model_scale():
    img = _tissue(2)
    at_model = cs.jpeg(img, 50)
    cam = cs.Camera(um_per_px=1.0, jpeg_quality=50).apply(img, np.random.default_rng(0))
    plain = cs.Camera(um_per_px=1.0).apply(img, np.random.default_rng(0))  # rescale alone
    err = lambda x: np.abs(x.astype(float) - plain).mean()  # noqa: E731
    assert cam.shape == img.shape
    assert err(cam) < 0.5 * err(at_model)


def test_camera_at_one_micron_per_pixel_without_effects_gives_the_same_image():
    img = _tissue(3)
    assert np.array_equal(cs.Camera(um_per_px=1.0).apply(img, np.random.default_rng(0)), img)


def test_scale_jitter_keeps_the_size_and_magnifies_about_the_centre():
    img = np.zeros((51, 51, 3), np.uint8)
    img[20:31, 20:31] = 255  # an 11-px white square in the middle
    big = cs.scale_jitter(img, 1.2)
    small = cs.scale_jitter(img, 0.8)
    assert big.shape == small.shape == img.shape
    assert (big > 127).all(-1).sum() > (img > 127).all(-1).sum() > (small > 127).all(-1).sum()
    assert big[25, 25].tolist() == [255, 255, 255]


def test_conditions_have_three_severities_that_keep_shape_and_dtype_and_get_worse():
    img = _tissue(4)
    for family, severities in cs.CONDITIONS.items():
        assert len(severities) == 3, family
        errs = []
        for sev in severities:
            out = sev(img, np.random.default_rng(0))
            assert out.shape == img.shape and out.dtype == np.uint8, (family, sev.label)
            errs.append(np.abs(out.astype(float) - img).mean())
        if family != "scale":  # scale severities are magnifications both ways
            assert errs[0] < errs[2], (family, errs)


def test_typical_usb_camera_changes_colour_and_detail_but_not_the_size():
    img = _tissue(5, 100)
    out = cs.typical_usb_camera(img, np.random.default_rng(0))
    assert out.shape == img.shape
    assert out[..., 0].mean() < img[..., 0].mean() and out[..., 2].mean() > img[..., 2].mean()  # cool cast
    assert _sharpness(out) < _sharpness(img)


def test_batches_and_bad_input():
    batch = np.stack([_tissue(i) for i in range(3)])
    out = cs.apply_to_batch(cs.CONDITIONS["noise"][1], batch, np.random.default_rng(0))
    assert out.shape == batch.shape
    with pytest.raises(ValueError, match="RGB uint8"):
        cs.defocus(batch.astype(np.float32)[0], sigma_um=1.0)
    with pytest.raises(ValueError, match="quality"):
        cs.jpeg(batch[0], 0)
    with pytest.raises(ValueError, match="full_well_e"):
        cs.sensor_noise(batch[0], np.random.default_rng(0), full_well_e=0)


def test_importing_camera_sim_does_not_import_tensorflow():
    code = "import sys, train.camera_sim; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
