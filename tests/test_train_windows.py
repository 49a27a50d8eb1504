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
