"""Training windows at random offsets: labels follow the area rule, pixels come from the right
cells, and random camera augmentation keeps shape and labels' images plausible."""
from __future__ import annotations

import numpy as np
import pytest

from idc_edge.dataset import PatchRecord
from train.camera_augment import CAMERA_FAMILIES, CameraAugment
from train.config import AUGMENTATIONS, CAMERA_AUGMENTATIONS, parse_augment
from train.windows import NO_CELL, WindowRule, assemble, patch_samples, random_windows


def _grid(labels: dict[tuple[int, int], int], patient: str = "p1") -> list[PatchRecord]:
    return [PatchRecord(f"/nowhere/{patient}_{cx}_{cy}.png", patient, lab, cx * 50, cy * 50)
            for (cx, cy), lab in labels.items()]


def test_rule_labels_by_the_idc_share_of_the_labelled_area_and_drops_the_rest():
    rule = WindowRule(min_labelled=0.75, benign_at_most=0.25, idc_at_least=0.75)
    assert rule.label(2500, 2500, 2500) == 1
    assert rule.label(2500, 0, 2500) == 0
    assert rule.label(2500, 1250, 2500) is None  # a boundary runs through it
    assert rule.label(1000, 1000, 2500) is None  # mostly outside the known patches
    assert rule.label(2000, 1600, 2500) == 1  # 80 % of the labelled part is IDC
    with pytest.raises(ValueError):
        WindowRule(benign_at_most=0.8, idc_at_least=0.5)


def test_windows_on_a_uniform_slide_take_its_label_and_offsets_are_off_grid():
    records = _grid({(x, y): 1 for x in range(6) for y in range(6)})
    s = random_windows(records, 2.0, np.random.default_rng(0))
    assert len(s) > 0 and (s.labels == 1).all()
    assert ((s.dy > 0) & (s.dy < 50) & (s.dx > 0) & (s.dx < 50)).all()
    assert set(s.patients) == {"p1"}


def test_windows_across_an_idc_boundary_are_labelled_by_area_or_dropped():
    # left half IDC (columns 0-2), right half benign (3-5)
    records = _grid({(x, y): int(x < 3) for x in range(6) for y in range(6)})
    s = random_windows(records, 4.0, np.random.default_rng(1))
    for cells, dx, lab in zip(s.cells, s.dx, s.labels):
        idc_cols = [records[c].label for c in cells if c != NO_CELL]
        if all(v == lab for v in idc_cols):
            continue
        # a mixed window: its IDC share must agree with its label
        left, right = records[cells[0]].label, records[cells[1]].label if cells[1] != NO_CELL else None
        share_left = (50 - dx) / 50
        frac = share_left * left + (1 - share_left) * (right if right is not None else 0)
        assert (lab == 1 and frac >= 0.75) or (lab == 0 and frac <= 0.25)
    assert {0, 1} <= set(s.labels.tolist())


def test_windows_mostly_outside_known_patches_are_dropped():
    records = _grid({(0, 0): 1})  # one lonely patch: every window is < 75 % labelled unless tiny offsets
    s = random_windows(records, 8.0, np.random.default_rng(2))
    for dy, dx in zip(s.dy, s.dx):
        assert (50 - dy) * (50 - dx) >= 0.75 * 2500


def test_assemble_cuts_the_window_from_the_four_cells_and_white_where_none():
    cells = [np.full((50, 50, 3), v, np.uint8) for v in (10, 20, 30)] + [None]
    w = assemble(cells, 20, 30)
    assert w.shape == (50, 50, 3)
    assert (w[:30, :20] == 10).all() and (w[:30, 20:] == 20).all()
    assert (w[30:, :20] == 30).all() and (w[30:, 20:] == 255).all()
    assert assemble(cells, 0, 0) is cells[0]


def test_plain_patches_are_samples_of_their_own_cell():
    records = _grid({(0, 0): 0, (1, 0): 1})
    s = patch_samples(records)
    assert s.cells[:, 0].tolist() == [0, 1] and (s.cells[:, 1:] == NO_CELL).all()
    assert s.labels.tolist() == [0, 1] and len(s.concat(s)) == 4


def test_camera_augmentation_keeps_shape_dtype_and_is_seeded():
    x = np.random.default_rng(0).integers(0, 256, (16, 50, 50, 3), dtype=np.uint8)
    aug = CameraAugment(p=1.0, p_colour=1.0)
    a = aug.apply(x, np.random.default_rng(3))
    b = aug.apply(x, np.random.default_rng(3))
    assert a.shape == x.shape and a.dtype == np.uint8 and np.array_equal(a, b)
    assert not np.array_equal(a, x)
    assert np.array_equal(CameraAugment(p=0.0, p_colour=0.0).apply(x, np.random.default_rng(3)), x)
    with pytest.raises(ValueError):
        CameraAugment(("fog",))


def test_grain_drawn_with_a_cast_only_when_asked_and_the_default_draws_are_unchanged():
    from train.camera_augment import CameraAugment

    def draws(aug, n=400):
        rng = np.random.default_rng(3)
        return [aug.draw(rng)[0] for _ in range(n)]

    default, none, always = (draws(CameraAugment()), draws(CameraAugment(grain_with_cast=0.0)),
                             draws(CameraAugment(grain_with_cast=1.0)))
    assert default == none  # 0 draws nothing more: the shipped recipe's cameras are the same
    assert sum(c.cast != (1.0, 1.0, 1.0) and c.full_well_e is None for c in default) > 50
    cast = [c for c in always if c.cast != (1.0, 1.0, 1.0)]
    assert all(c.full_well_e is not None for c in cast)  # every cast with grain
    assert sum(c.full_well_e <= 600 for c in cast) > 0.5 * len(cast)  # most of it low-light grain
    with pytest.raises(ValueError, match="probability"):
        CameraAugment(grain_with_cast=1.5)


def test_augment_names_and_presets_include_the_camera_families():
    assert set(CAMERA_FAMILIES) == set(CAMERA_AUGMENTATIONS) <= set(AUGMENTATIONS)
    assert parse_augment("all") == AUGMENTATIONS
    assert parse_augment("all-jpeg") == tuple(a for a in AUGMENTATIONS if a != "jpeg")
    assert "defocus" not in parse_augment("classic")


def _draws(aug, n=600, seed=3):
    rng = np.random.default_rng(seed)
    return [aug.draw_image(rng) for _ in range(n)]


def test_the_combined_draws_at_zero_leave_every_camera_of_the_shipped_recipe_unchanged():
    shipped = CameraAugment(grain_with_cast=0.35)
    same = CameraAugment(grain_with_cast=0.35, hue_with_cast=0.0, dim_with_grain=0.0, weak_haematoxylin=0.0)
    assert _draws(shipped) == _draws(same)
    assert [shipped.draw(r) for r in [np.random.default_rng(5)] for _ in range(50)] == \
        [c[:2] for c in _draws(shipped, 50, 5)]  # draw() is draw_image() without the slide's factor
    # and the images: one batch through each is the same array
    x = np.random.default_rng(0).integers(0, 256, (16, 50, 50, 3), dtype=np.uint8)
    assert np.array_equal(shipped.apply(x, np.random.default_rng(1)), same.apply(x, np.random.default_rng(1)))


def test_hue_with_cast_turns_the_hue_of_every_cast_image_by_15_to_30_degrees_and_of_no_other():
    always = _draws(CameraAugment(grain_with_cast=0.35, hue_with_cast=1.0))
    cast = [c for c, _, _ in always if c.cast != (1.0, 1.0, 1.0)]
    plain = [c for c, _, _ in always if c.cast == (1.0, 1.0, 1.0)]
    assert len(cast) > 200 and len(plain) > 100
    assert all(15.0 <= abs(c.hue_deg) <= 30.0 for c in cast)
    assert sum(c.hue_deg < 0 for c in cast) > 0.3 * len(cast) and sum(c.hue_deg > 0 for c in cast) > 0.3 * len(cast)
    assert all(c.hue_deg == 0.0 for c in plain)
    some = _draws(CameraAugment(hue_with_cast=0.35))
    share = np.mean([c.hue_deg != 0 for c, _, _ in some if c.cast != (1.0, 1.0, 1.0)])
    assert 0.25 < share < 0.45
    with pytest.raises(ValueError, match="probability"):
        CameraAugment(hue_with_cast=1.5)


def test_a_camera_hue_setting_is_applied_after_the_cast_as_the_benchmark_turns_hue():
    from benchmarks import camera_conditions as cc
    from train import camera_sim as cs

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    cam = cs.Camera(um_per_px=cs.MODEL_UM_PER_PX, cast=cs.cool_cast(0.2), hue_deg=-20.0)
    got = cam.apply(x, rng).astype(int)
    want = cc.hue_shift(cs.colour_cast(x, cs.cool_cast(0.2)), -20).astype(int)  # the search's hue-20+cool20
    assert np.abs(got - want).mean() < 1.0 and np.abs(got - want).max() <= 6  # the benchmark rounds to uint8 HSV
    wrong_order = cs.colour_cast(cc.hue_shift(x, -20), cs.cool_cast(0.2)).astype(int)
    assert np.abs(got - wrong_order).mean() > 2 * np.abs(got - want).mean()
    assert np.array_equal(cs.hue_saturation(x), x)  # no setting: the image as it was


def test_dim_with_grain_under_exposes_the_images_that_got_grain_with_their_cast_only():
    # no noise family: all grain comes with a cast
    both = _draws(CameraAugment(("exposure", "cast"), grain_with_cast=1.0, dim_with_grain=1.0))
    dimmed = [c for c, _, _ in both if c.cast != (1.0, 1.0, 1.0) and c.gamma == 1.0]  # cast, grain, no exposure drawn
    assert len(dimmed) > 100 and all(0.45 <= c.gain <= 0.8 and c.full_well_e <= 600 for c in dimmed)
    assert len({round(c.gain, 3) for c in dimmed}) > 50
    own = [c for c, _, _ in both if c.gamma != 1.0]  # the exposure family's gain, not replaced
    assert len(own) > 100 and max(c.gain for c in own) > 1.0
    assert all(c.gain == 1.0 for c, _, _ in both if c.cast == (1.0, 1.0, 1.0) and c.gamma == 1.0)
    # grain of the noise family is not dimmed, nor is anything without grain drawn with the cast
    noisy = _draws(CameraAugment(("noise", "cast"), p=1.0, grain_with_cast=1.0, dim_with_grain=1.0))
    assert all(c.gain == 1.0 for c, _, _ in noisy)
    assert _draws(CameraAugment(dim_with_grain=1.0)) == _draws(CameraAugment())
    with pytest.raises(ValueError, match="probability"):
        CameraAugment(dim_with_grain=-0.1)


def test_weak_haematoxylin_fades_the_nuclei_not_the_eosin_and_comes_with_one_second_loss():
    from train.camera_augment import weaken_haematoxylin

    always = _draws(CameraAugment(weak_haematoxylin=1.0))
    assert all(0.55 <= h <= 0.8 for _, _, h in always)
    seconds = [(c.blur_red_um > 0) + (c.saturation != 1.0) + (c.hue_deg != 0) for c, _, _ in always]
    assert all(s >= 1 for s in seconds)
    assert sum(c.blur_red_um > 0 for c, _, _ in always) > 100 and sum(c.saturation > 1.2 for c, _, _ in always) > 100
    assert all(h == 1.0 and c.blur_red_um == 0 and c.saturation == 1.0 for c, _, h in _draws(CameraAugment()))
    nucleus = np.full((4, 4, 3), (70, 50, 140), np.uint8)  # haematoxylin blue-purple
    eosin = np.full((4, 4, 3), (235, 140, 190), np.uint8)  # eosin pink
    faded = weaken_haematoxylin(nucleus, 0.6).astype(int)
    assert faded.mean() > nucleus.mean() + 20  # lighter nuclei
    assert np.abs(weaken_haematoxylin(eosin, 0.6).astype(int) - eosin).mean() < 0.4 * (faded.mean() - nucleus.mean())
    assert np.array_equal(weaken_haematoxylin(eosin, 1.0), eosin)
    x = np.random.default_rng(0).integers(0, 256, (8, 50, 50, 3), dtype=np.uint8)
    plain = CameraAugment(p=0.0, p_colour=0.0)
    assert np.array_equal(plain.apply(x, np.random.default_rng(1)), x)
    assert not np.array_equal(CameraAugment(p=0.0, p_colour=0.0, weak_haematoxylin=1.0).apply(x, np.random.default_rng(1)), x)
