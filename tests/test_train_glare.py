"""Veiling glare for training (``python -m train --glare P``): the physics of ``Camera.glare`` (stray
light added in linear light with the lamp's colour, after the optics and before noise and gamma),
the draw of ``CameraAugment(glare=P)``, and the option where it enters."""
from __future__ import annotations

import numpy as np
import pytest

from train import camera_sim as cs
from train.camera_augment import CameraAugment


def _card(levels=(0, 40, 120, 200, 255)) -> np.ndarray:
    """Grey patches of ``levels`` side by side (5 x 5 px each), plus a stained row."""
    img = np.concatenate([np.full((5, 5, 3), v, np.uint8) for v in levels], axis=1)
    img[4] = (150, 60, 170)  # haematoxylin-ish purple
    return img


@pytest.mark.parametrize("g", [0.05, 0.2, 0.4])
def test_glare_keeps_the_glass_and_lifts_black_to_g_of_the_glass_in_linear_light(g):
    img = _card()
    out = cs.Camera(um_per_px=cs.MODEL_UM_PER_PX, glare=g).apply(img, np.random.default_rng(0))
    assert np.array_equal(out[:4, 20:], img[:4, 20:])  # glass (255) stays at its level
    assert cs.to_linear(out[0, 0]) == pytest.approx([g] * 3, abs=4e-3)  # black -> g of the glass
    lin_in, lin_out = cs.to_linear(img), cs.to_linear(out)
    assert lin_out == pytest.approx(lin_in * (1 - g) + g, abs=4e-3)  # every pixel, linear light
    assert (out[:4, :20].astype(int) > img[:4, :20]).all()  # everything darker than the glass rises


def test_glare_has_the_lamps_colour_a_cast_scales_the_stray_light_too():
    img = _card()
    g, cast = 0.3, (0.8, 1.0, 0.9)
    out = cs.Camera(um_per_px=cs.MODEL_UM_PER_PX, glare=g, cast=cast, gain=0.9).apply(img, np.random.default_rng(0))
    white = np.asarray(cast) * 0.9
    assert cs.to_linear(out[0, 24]) == pytest.approx(white, abs=4e-3)  # glass at the lamp's white
    assert cs.to_linear(out[0, 0]) == pytest.approx(g * white, abs=4e-3)  # black at g of that white
    # not a grey pedestal added after the cast: black's colour is the lamp's
    assert out[0, 0, 0] < out[0, 0, 2] < out[0, 0, 1]


def test_glare_comes_after_the_optics_and_before_the_tone_curve_and_noise():
    img = _card()
    rng = np.random.default_rng(0)
    g = 0.25
    blurred_then_glare = cs.Camera(um_per_px=cs.MODEL_UM_PER_PX, glare=g).apply(
        cs.defocus(img, sigma_um=6.0), rng)
    assert np.array_equal(cs.Camera(um_per_px=cs.MODEL_UM_PER_PX, blur_sigma_um=6.0, glare=g).apply(img, rng),
                          blurred_then_glare)
    glare_then_gamma = cs.exposure(cs.Camera(um_per_px=cs.MODEL_UM_PER_PX, glare=g).apply(img, rng), 1.0, 1.2)
    assert np.array_equal(cs.Camera(um_per_px=cs.MODEL_UM_PER_PX, glare=g, gamma=1.2).apply(img, rng),
                          glare_then_gamma)
    # noise after glare: the lifted black is noisy around g, not clipped at 0 as noise on black then glare
    noisy = cs.Camera(um_per_px=cs.MODEL_UM_PER_PX, glare=g, full_well_e=200.0).apply(np.zeros((40, 40, 3), np.uint8),
                                                                                     np.random.default_rng(1))
    lin = cs.to_linear(noisy)
    assert lin.mean() == pytest.approx(g, abs=0.01) and lin.std() > 0.02


def test_no_glare_is_the_camera_unchanged_and_a_bad_share_is_refused():
    img = _card()
    kw = dict(um_per_px=1.0, blur_sigma_um=1.5, cast=cs.cool_cast(0.15), full_well_e=2000.0, jpeg_quality=80)
    assert np.array_equal(cs.Camera(**kw).apply(img, np.random.default_rng(4)),
                          cs.Camera(glare=0.0, **kw).apply(img, np.random.default_rng(4)))
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match="glare"):
            cs.Camera(glare=bad)


def test_glare_matches_the_benchmarks_glare_condition():
    from benchmarks.camera_conditions import glare

    img = _card()
    for g in (0.1, 0.3):
        assert np.array_equal(cs.Camera(um_per_px=cs.MODEL_UM_PER_PX, glare=g).apply(img, np.random.default_rng(0)),
                              glare(img, g))


def _draws(aug, n=2000, seed=3):
    rng = np.random.default_rng(seed)
    return [aug.draw(rng) for _ in range(n)]


def test_glare_is_drawn_only_when_asked_and_leaves_every_other_draw_unchanged():
    default, none = _draws(CameraAugment()), _draws(CameraAugment(glare=0.0))
    assert default == none and all(c.glare == 0.0 for c, _ in default)  # 0: the shipped recipe's draws
    # nothing more is taken from the generator at 0: with every family off a draw is its six coin flips
    a, b = np.random.default_rng(5), np.random.default_rng(5)
    CameraAugment(p=0.0, p_colour=0.0).draw(a)
    b.random(6)
    assert a.random() == b.random()
    always = _draws(CameraAugment(glare=1.0))
    shares = np.array([c.glare for c, _ in always])
    assert ((shares >= 0.05) & (shares <= 0.40)).all()
    assert shares.min() < 0.08 and shares.max() > 0.37 and 0.2 < shares.mean() < 0.25  # U(0.05, 0.40)
    # glare is drawn last: from the same generator state, the rest of a camera (and its scale) is the default's
    for seed in range(300):
        (c, s), = _draws(CameraAugment(glare=1.0), 1, seed)
        (c0, s0), = _draws(CameraAugment(), 1, seed)
        assert c.glare > 0 and (c.__class__(**{**c.__dict__, "glare": 0.0}), s) == (c0, s0)


@pytest.mark.parametrize("p", [0.1, 0.25, 0.5])
def test_glare_probability_is_the_share_of_images_with_glare(p):
    n = 4000
    share = sum(c.glare > 0 for c, _ in _draws(CameraAugment(glare=p), n)) / n
    assert share == pytest.approx(p, abs=4 * (p * (1 - p) / n) ** 0.5)


def test_glare_draws_with_grain_with_cast_and_without_camera_families():
    both = _draws(CameraAugment(grain_with_cast=0.35, glare=0.25))
    assert any(c.glare > 0 and c.cast != (1.0, 1.0, 1.0) for c, _ in both)
    # not a camera family: glare comes even with every family off
    assert sum(c.glare > 0 for c, _ in _draws(CameraAugment(p=0.0, p_colour=0.0, glare=0.5), 400)) > 150
    img = _card()
    out = CameraAugment(p=0.0, p_colour=0.0, glare=1.0).apply(img[None], np.random.default_rng(0))[0]
    assert (out[0, :5] > 0).all() and np.array_equal(out[:4, 20:], img[:4, 20:])


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_a_glare_probability_outside_0_1_is_refused_where_it_enters(bad, tmp_path):
    from idc_edge.errors import OptionError
    from train.run import TrainConfig

    with pytest.raises(ValueError, match="glare"):
        CameraAugment(glare=bad)
    with pytest.raises(OptionError, match="--glare must be a probability"):
        TrainConfig(data=str(tmp_path), out=str(tmp_path / "o"), teacher=None, glare=bad).validate()


def test_the_command_line_carries_glare_into_the_run_and_its_augmentation():
    from train.__main__ import config_from_args, parser

    argv = ["--out", "runs/x", "--glare", "0.25"]
    cfg = config_from_args(parser().parse_args(argv), argv)
    assert cfg.glare == 0.25 and cfg.strength().glare == 0.25 and "--glare 0.25" in cfg.command
    argv = ["--out", "runs/x"]
    cfg = config_from_args(parser().parse_args(argv), argv)
    assert cfg.glare == 0.0 and cfg.strength().glare == 0.0
