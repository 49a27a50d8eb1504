"""One colour out of focus (a lens that focuses colours apart) is no call, said as such.

The grey the focus gate reads stays sharp when only red or blue is blurred, and the model, which
reads nuclei in red, called IDC benign there. :func:`idc_edge.focus.channel_sharpness` compares the
colours; checked on synthetic slides (no data needed), on the validation slides, and through
``python -m idc_edge run`` on PNG frames written here.
"""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from conftest import run_recorded
from idc_edge.bench import synthetic_slide
from idc_edge.detector import Detector
from idc_edge.errors import OptionError
from idc_edge.focus import FocusOptions, channel_sharpness
from idc_edge.overlay import status_text
from idc_edge.tiling import make_grid, patch_sums
from idc_edge.tissue import tissue_pixels


def blur_colours(rgb: np.ndarray, channels, sigma_px: float) -> np.ndarray:
    """``rgb`` with the given channels (0 red, 1 green, 2 blue) blurred by a Gaussian of ``sigma_px``."""
    out = rgb.copy()
    for c in channels:
        out[..., c] = cv2.GaussianBlur(rgb[..., c], (0, 0), sigma_px)
    return out


def ratio(rgb: np.ndarray) -> float:
    grid = make_grid(rgb.shape[:2], 50, 25, 1.0)
    counts = patch_sums(cv2.integral(tissue_pixels(rgb).astype(np.uint8), sdepth=cv2.CV_32S), grid)
    sharp = channel_sharpness(rgb, grid, counts)
    return float(sharp.min() / sharp.max())


def slide_rgb(height: int, width: int, seed: int) -> np.ndarray:
    """A synthetic H&E-like slide (``idc_edge.bench.synthetic_slide`` gives BGR) in RGB order."""
    return synthetic_slide(height, width, seed=seed)[..., ::-1].copy()


def test_channel_sharpness_finds_one_blurred_colour_not_an_evenly_blurred_frame():
    rgb = slide_rgb(300, 500, seed=4)
    assert ratio(rgb) > 0.9
    assert ratio(cv2.GaussianBlur(rgb, (0, 0), 1.0)) > 0.9  # defocus: the focus gate's, not this check's
    for channels in ((0,), (1,), (2,), (0, 2)):
        assert ratio(blur_colours(rgb, channels, 1.0)) < FocusOptions().min_channel_ratio, channels
    glass = np.full((300, 500, 3), 240, np.uint8)
    glass[:40, :40] = rgb[:40, :40]  # too little tissue to judge
    assert math.isnan(ratio(glass))


def test_a_frame_with_one_colour_out_of_focus_is_no_call_and_the_option_decides():
    rgb = slide_rgb(300, 500, seed=4)
    red_blurred = blur_colours(rgb, (0,), 1.0)  # σ 4 µm at the model's 4 µm/px
    with Detector(um_per_px=4.0, stride=25) as det:
        clean = det.detect(rgb[..., ::-1].copy())
        assert clean.in_focus and not clean.colour_blurred and clean.channel_ratio > 0.9
        assert clean.colour_ok and clean.stain_ok and clean.n_no_call == 0 and clean.n_idc > 0
        r = det.detect(red_blurred[..., ::-1].copy())
        assert not r.in_focus and r.colour_blurred and r.channel_ratio < FocusOptions().min_channel_ratio
        assert r.sharpness > FocusOptions().frame_threshold  # the grey alone says sharp
        assert r.n_tissue > 0 and r.no_call[r.tissue].all() and not r.idc.any()
        record = r.to_dict()
        assert record["colour_blurred"] is True and record["in_focus"] is False
        assert record["channel_ratio"] == pytest.approx(r.channel_ratio, abs=1e-3)
        assert status_text(r).startswith("COLOUR BLUR: no call")
    with Detector(um_per_px=4.0, stride=25, focus=FocusOptions(min_channel_ratio=0.0, min_channel_band_ratio=0.0)) as det:
        r = det.detect(red_blurred[..., ::-1].copy())
        assert r.in_focus and not r.colour_blurred and math.isnan(r.channel_ratio) and math.isnan(r.channel_band_ratio)
    with pytest.raises(OptionError, match="min_channel_ratio"):
        FocusOptions(min_channel_ratio=1.5)
    with pytest.raises(OptionError, match="min_channel_band_ratio"):
        FocusOptions(min_channel_band_ratio=-0.1)


def camera_jpeg_bgr(rgb: np.ndarray, channels, sigma_um: float, quality: int = 80, camera_um_per_px: float = 1.0):
    """``rgb`` (4 µm/px) as a camera at ``camera_um_per_px`` sends it as JPEG (an MJPG stream, 4:2:0 colour),
    with ``channels`` blurred by a Gaussian of ``sigma_um`` µm at the sensor: BGR uint8 at the camera's scale."""
    f = 4.0 / camera_um_per_px
    big = cv2.resize(rgb, None, fx=f, fy=f, interpolation=cv2.INTER_NEAREST)
    big = blur_colours(big, channels, sigma_um / camera_um_per_px)
    ok, buf = cv2.imencode(".jpg", big[..., ::-1].copy(), [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)


def test_red_blurred_through_a_jpeg_camera_is_caught_one_octave_coarser():
    """JPEG rebuilds a blurred red from the full-resolution luma, with the green's finest detail: the
    Laplacian ratio reads it as nearly sharp, the band at a nucleus's size does not."""
    options = FocusOptions()
    with Detector(um_per_px=1.0, stride=25) as det:
        for seed in (1, 2, 3):
            rgb = slide_rgb(300, 500, seed=seed)
            clean = det.detect(camera_jpeg_bgr(rgb, (), 0.0))
            assert clean.in_focus and not clean.colour_blurred and clean.channel_band_ratio > 0.85, seed
            r = det.detect(camera_jpeg_bgr(rgb, (0,), 4.0))
            assert r.channel_ratio > options.min_channel_ratio, seed  # the finest detail came back from the luma
            assert r.channel_band_ratio < options.min_channel_band_ratio, seed
            assert r.colour_blurred and not r.in_focus and r.no_call[r.tissue].all() and not r.idc.any(), seed
            assert r.to_dict()["channel_band_ratio"] == pytest.approx(r.channel_band_ratio, abs=1e-3)
    with Detector(um_per_px=1.0, stride=25, focus=FocusOptions(min_channel_band_ratio=0.0)) as det:
        r = det.detect(camera_jpeg_bgr(slide_rgb(300, 500, seed=1), (0,), 4.0))
        assert r.in_focus and not r.colour_blurred


@pytest.mark.data
def test_red_blurred_on_the_validation_slides_is_no_call_and_clean_fields_are_not(validation_fields):
    """Red alone blurred by σ 4 µm: the model agreed 79 % with the sharp field, IDC recall 0.64."""
    with Detector(um_per_px=4.0, stride=25) as det:
        for f in validation_fields:
            clean = det.detect(f.rgb[..., ::-1].copy())
            assert not clean.colour_blurred and clean.channel_ratio > 0.7, f.patient
            for channels in ((0,), (0, 2)):
                r = det.detect(blur_colours(f.rgb, channels, 1.0)[..., ::-1].copy())
                assert r.colour_blurred and not r.in_focus and not r.idc.any(), (f.patient, channels)


def test_run_on_frames_with_red_out_of_focus_says_so_once_and_records_it(tmp_path):
    """A camera at 1 µm/px whose lens blurs red by σ 4 µm, saved as PNGs. (Through JPEG, whose luma
    keeps full resolution and its colours half, red takes back some of the green's detail.)"""
    folder = tmp_path / "frames"
    folder.mkdir()
    for seed in range(3):
        camera = cv2.resize(slide_rgb(150, 250, seed), None, fx=4, fy=4, interpolation=cv2.INTER_NEAREST)
        assert cv2.imwrite(str(folder / f"{seed}.png"), blur_colours(camera, (0,), 4.0)[..., ::-1].copy())
    warned, frames = run_recorded(folder, tmp_path / "run.jsonl", "--um-per-px", "1")
    said = [line for line in warned if "one colour out of focus" in line]
    assert len(said) == 1, warned
    assert not [line for line in warned if "a frame is out of focus" in line]  # said once, as what it is
    assert len(frames) == 3 and all(r["colour_blurred"] and not r["in_focus"] for r in frames)
    assert all(r["idc_patches"] == 0 for r in frames)


@pytest.mark.data
def test_red_blurred_through_a_jpeg_camera_on_the_validation_slides_is_no_call_where_idc_is(validation_fields):
    """Red σ 4 µm through a 1 µm/px camera sending JPEG 80: the model agreed 79 % with the sharp
    field (IDC recall 0.66), and the Laplacian ratio alone caught no field. Red carries the detail
    of nuclei, so fields with IDC lose most band signal in red and are caught; pale benign fields may
    pass. The clean fields through the same camera stay called."""
    caught = 0
    with Detector(um_per_px=1.0, stride=25) as det:
        for f in validation_fields:
            clean = det.detect(camera_jpeg_bgr(f.rgb, (), 0.0))
            assert not clean.colour_blurred and clean.channel_band_ratio > FocusOptions().min_channel_band_ratio, f.patient
            r = det.detect(camera_jpeg_bgr(f.rgb, (0,), 4.0))
            caught += r.colour_blurred
            if clean.idc.sum() >= 20:
                assert r.colour_blurred and not r.idc.any(), (f.patient, int(clean.idc.sum()), r.channel_band_ratio)
    assert caught >= len(validation_fields) // 2, (caught, len(validation_fields))
