import numpy as np
import pytest

from idc_edge.errors import OptionError
from idc_edge.tiling import extract_patches, make_grid, pad_to, positions, rescaled_size


@pytest.mark.parametrize("length,patch,stride,expected", [
    (200, 50, 50, [0, 50, 100, 150]),
    (210, 50, 50, [0, 50, 100, 150, 160]),
    (100, 50, 25, [0, 25, 50]),
    (50, 50, 7, [0]),
    (30, 50, 50, [0]),
    (120, 50, 100, [0, 70]),
])
def test_positions_cover_the_length_and_end_at_its_edge(length, patch, stride, expected):
    assert positions(length, patch, stride).tolist() == expected


@pytest.mark.parametrize("h,w,stride,scale", [(480, 640, 50, 1.0), (1080, 1920, 25, 0.25), (37, 91, 13, 1.0),
                                              (1000, 700, 50, 0.5), (20, 20, 50, 1.0)])
def test_grid_covers_every_frame_pixel_and_boxes_stay_inside(h, w, stride, scale):
    grid = make_grid((h, w), 50, stride, scale)
    boxes = grid.boxes()
    covered = np.zeros((h, w), bool)
    for x0, y0, x1, y1 in boxes.reshape(-1, 4):
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
        covered[y0:y1, x0:x1] = True
    assert covered.all()


def test_boxes_map_model_pixels_back_to_frame_pixels():
    grid = make_grid((1080, 1920), 50, 50, 0.25)  # 1 µm/px camera, 4 µm/px model
    assert grid.padded_shape == (270, 480)
    assert grid.boxes()[0, 0].tolist() == [0, 0, 200, 200]
    assert grid.boxes()[1, 2].tolist() == [400, 200, 600, 400]
    assert grid.boxes()[-1, -1].tolist() == [1720, 880, 1920, 1080]


def test_extract_patches_copies_exactly_the_grid_windows():
    rng = np.random.default_rng(0)
    grid = make_grid((130, 170), 50, 40, 1.0)
    image = rng.integers(0, 256, (*grid.padded_shape, 3), dtype=np.uint8)
    patches = extract_patches(image, grid)
    assert patches.shape == (grid.size, 50, 50, 3) and patches.flags.c_contiguous
    for k in range(grid.size):
        r, c = divmod(k, len(grid.xs))
        y, x = grid.ys[r], grid.xs[c]
        np.testing.assert_array_equal(patches[k], image[y:y + 50, x:x + 50])
    sub = extract_patches(image, grid, np.array([3, 0]))
    np.testing.assert_array_equal(sub[1], patches[0])
    np.testing.assert_array_equal(sub[0], patches[3])


def test_small_frames_are_padded_to_one_patch():
    grid = make_grid((20, 30), 50, 50, 1.0)
    assert grid.shape == (1, 1) and grid.padded_shape == (50, 50)
    padded = pad_to(np.zeros((20, 30, 3), np.uint8), grid.padded_shape)
    assert padded.shape == (50, 50, 3) and padded[25, 40].tolist() == [255, 255, 255]
    assert grid.boxes()[0, 0].tolist() == [0, 0, 30, 20]


def test_rescaled_size_rounds_and_never_reaches_zero():
    assert rescaled_size(1920, 1080, 0.25) == (480, 270)
    assert rescaled_size(3, 3, 0.01) == (1, 1)
