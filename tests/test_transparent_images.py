"""Image files with an alpha channel: their transparent parts are read over white, as empty glass.

An exported region (QuPath, a slide viewer's snapshot, a mask applied in an editor) keeps the pixels
under its transparent parts; OpenCV dropped the alpha channel and the detector scored those pixels as
tissue. Real files written here (PNG, lossless WebP, TIFF, a palette PNG with ``tRNS``), read through
the real decoders, sources and detector.
"""
from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest

from idc_edge.bench.synthetic import synthetic_slide
from idc_edge.detector import Detector
from idc_edge.fileio import read_image
from idc_edge.frames import over_white
from idc_edge.sources import ImageSource


def test_over_white_mixes_by_alpha_and_drops_an_alpha_that_is_padding():
    px = np.array([[[10, 20, 200, 0], [10, 20, 200, 255], [10, 20, 200, 128]]], np.uint8)
    out, transparent = over_white(px)
    assert transparent and out.dtype == np.uint8
    np.testing.assert_array_equal(out[0, 0], [255, 255, 255])
    np.testing.assert_array_equal(out[0, 1], [10, 20, 200])
    np.testing.assert_array_equal(out[0, 2], [132, 137, 227])  # (c·128 + 255·127) / 255, rounded
    deep, _ = over_white(px.astype(np.uint16) * 257)
    np.testing.assert_array_equal(deep[0, 0], [65535] * 3)
    np.testing.assert_array_equal(deep[0, 1], [2570, 5140, 51400])
    padding = px.copy()
    padding[..., 3] = 0  # a 32-bit BMP's fourth byte: no transparency at all
    out, transparent = over_white(padding)
    assert not transparent and np.array_equal(out, px[..., :3])
    out, transparent = over_white(np.dstack([px[..., :3], np.full((1, 3, 1), 255, np.uint8)]))
    assert not transparent and out.flags.c_contiguous


def half_transparent(tmp_path, suffix):
    """A slide field whose right half is transparent (its tissue still stored under it)."""
    bgr = synthetic_slide(300, 480, seed=5)
    alpha = np.full(bgr.shape[:2], 255, np.uint8)
    alpha[:, 240:] = 0
    path = tmp_path / f"region{suffix}"
    params = [cv2.IMWRITE_WEBP_QUALITY, 101] if suffix == ".webp" else []  # 101: lossless
    assert cv2.imwrite(str(path), np.dstack([bgr, alpha]), params)
    return path, bgr


@pytest.mark.parametrize("suffix", [".png", ".webp", ".tiff"])
def test_the_transparent_part_of_an_image_is_glass_not_the_tissue_stored_under_it(tmp_path, suffix, caplog):
    path, bgr = half_transparent(tmp_path, suffix)
    with caplog.at_level(logging.WARNING):
        (frame,) = list(ImageSource(path))
        colour = read_image(path, "image", flags=cv2.IMREAD_COLOR)  # what classify and the data set read
    assert sum("transparent pixels" in r.getMessage() for r in caplog.records) == 1  # said once per image
    for image in (frame.image, colour):
        assert image.shape == (300, 480, 3) and image.dtype == np.uint8
        assert (image[:, 240:] == 255).all()
        np.testing.assert_array_equal(image[:, :240], bgr[:, :240])
    with Detector(um_per_px=4.0, stride=50) as det:
        stored = det.detect(bgr)  # what was scored before: the whole slide, tissue on both halves
        read = det.detect(frame.image)
    right = read.boxes[..., 0] >= 240
    assert stored.tissue[right].sum() > 10
    assert not read.tissue[right].any() and not read.idc[right].any()
    left = read.boxes[..., 2] <= 240
    np.testing.assert_array_equal(read.idc[left], stored.idc[left])


def test_a_palette_png_with_a_transparent_colour_reads_it_as_white(tmp_path):
    image = pytest.importorskip("PIL.Image")
    pal = image.new("P", (20, 10))
    pal.putpalette([200, 20, 10, 120, 40, 160] + [0] * 762)
    pal.paste(1, (10, 0, 20, 10))
    pal.save(tmp_path / "pal.png", transparency=1)
    read = read_image(tmp_path / "pal.png", "image", flags=cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(read[0, 0], [10, 20, 200])
    np.testing.assert_array_equal(read[0, 19], [255, 255, 255])


def test_opaque_images_and_jpegs_read_as_before(tmp_path):
    bgr = synthetic_slide(60, 80, seed=1)
    cv2.imwrite(str(tmp_path / "opaque.png"), np.dstack([bgr, np.full(bgr.shape[:2], 255, np.uint8)]))
    cv2.imwrite(str(tmp_path / "plain.png"), bgr)
    for name in ("opaque.png", "plain.png"):
        for flags in (None, cv2.IMREAD_COLOR):
            np.testing.assert_array_equal(read_image(tmp_path / name, "image", flags=flags), bgr)
    cv2.imwrite(str(tmp_path / "plain.jpg"), bgr)
    np.testing.assert_array_equal(read_image(tmp_path / "plain.jpg", "image", flags=cv2.IMREAD_COLOR),
                                  cv2.imread(str(tmp_path / "plain.jpg"), cv2.IMREAD_COLOR))
