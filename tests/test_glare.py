"""Stray light that washes the tissue out is no call, said as such.

Veiling glare (an uncapped eyepiece, room light, a condenser opened too far) adds the same light to
every pixel: the glass stays white and the colours stay put, so no other gate saw it, and the model
called pale IDC benign. :func:`idc_edge.glare.darkest_tissue` reads how much light the darkest tissue
lets through; checked on synthetic slides (no data needed), on the validation slides, and through
``python -m idc_edge run`` on PNG frames written here.
"""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from benchmarks.camera_conditions import decision_grid, glare
from conftest import run_recorded
from idc_edge.bench import synthetic_slide
from idc_edge.detector import Detector
from idc_edge.errors import OptionError
from idc_edge.focus import ColourOptions, ExposureOptions
from idc_edge.glare import MAX_DARKEST_TISSUE, MAX_WASHED_COLOUR_STRENGTH, darkest_faint_tissue, darkest_tissue
from idc_edge.overlay import status_text
from idc_edge.tissue import tissue_pixels


def slide_rgb(seed: int, height: int = 300, width: int = 500) -> np.ndarray:
    """A synthetic H&E-like slide (``idc_edge.bench.synthetic_slide`` gives BGR) in RGB order."""
    return synthetic_slide(height, width, seed=seed)[..., ::-1].copy()


def reading(rgb: np.ndarray) -> float:
    return darkest_tissue(rgb, tissue_pixels(rgb))


def test_the_darkest_tissue_reads_the_added_light_and_not_the_lamp_or_its_colour():
    rgb = slide_rgb(4)
    clean = reading(rgb)
    assert clean < 0.1
    readings = [reading(glare(rgb, g)) for g in (0.2, 0.3, 0.45, 0.6)]
    assert readings == sorted(readings)
    for g, r in zip((0.2, 0.3, 0.45, 0.6), readings):
        assert g <= r <= g + 0.1, (g, r)  # at least the light added (the tissue mask loses the palest as g grows)
    # each channel is read against its own brightest level: a cast and the exposure cancel
    cast = np.clip(np.rint(rgb * np.array([1.0, 0.85, 0.9])), 0, 255).astype(np.uint8)
    dim = np.clip(np.rint(rgb * 0.5), 0, 255).astype(np.uint8)
    assert reading(cast) == pytest.approx(clean, abs=0.02) and reading(dim) == pytest.approx(clean, abs=0.02)
    glass = np.full((300, 500, 3), 240, np.uint8)
    glass[:40, :40] = rgb[:40, :40]  # too little tissue to judge
    assert math.isnan(reading(glass))


def test_a_washed_out_frame_is_no_call_said_as_such_and_the_option_decides():
    rgb = slide_rgb(4)
    with Detector(um_per_px=4.0, stride=25) as det, \
            Detector(um_per_px=4.0, stride=25, exposure=ExposureOptions(max_darkest_tissue=1.0)) as off:
        clean = det.detect(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        assert not clean.washed_out and clean.exposure_ok and clean.n_no_call == 0 and clean.n_idc > 0
        assert clean.darkest_tissue < MAX_DARKEST_TISSUE
        washed = det.detect(cv2.cvtColor(glare(rgb, 0.5), cv2.COLOR_RGB2BGR))
        assert washed.washed_out and not washed.exposure_ok and washed.darkest_tissue > MAX_DARKEST_TISSUE
        assert washed.n_idc == 0 and washed.n_tissue > 0 and washed.no_call_exposure == washed.n_tissue
        # the other gates pass it: the glass is white and the colours are H&E's
        assert washed.colour_ok and washed.stain_ok and washed.noise_ok and washed.in_focus
        assert status_text(washed).startswith("WASHED OUT: no call")
        record = washed.to_dict()
        assert record["washed_out"] is True and record["darkest_tissue"] > MAX_DARKEST_TISSUE
        unchecked = off.detect(cv2.cvtColor(glare(rgb, 0.5), cv2.COLOR_RGB2BGR))
        assert not unchecked.washed_out and math.isnan(unchecked.darkest_tissue)
        # stray light fades the colours too: without the stray-light check, the faint-colour one says no call
        assert unchecked.faint_colour and unchecked.n_no_call == unchecked.n_tissue > 0
    with Detector(um_per_px=4.0, stride=25, exposure=ExposureOptions(max_darkest_tissue=1.0),
                  colour=ColourOptions(min_colour_strength=0)) as off:
        unchecked = off.detect(cv2.cvtColor(glare(rgb, 0.5), cv2.COLOR_RGB2BGR))
        assert not unchecked.washed_out and not unchecked.faint_colour and unchecked.n_no_call == 0
    with pytest.raises(OptionError, match="max_darkest_tissue"):
        ExposureOptions(max_darkest_tissue=1.5)


def test_tissue_washed_too_pale_for_the_tissue_mask_is_still_said_washed_out_and_bare_glass_is_not():
    """Under veiling glare of 70 % the synthetic slide's tissue falls below the tissue mask's
    saturation: the frame showed no tissue and made no call, without a word. Its faint tissue (darker
    than the glass, a trace of colour) is read instead: the frame is washed out. Bare glass dimmed by
    vignetting or flicker, or with dust, has no such tissue and is not."""
    from benchmarks.camera_conditions import dust, flicker, vignetting

    washed = glare(slide_rgb(4), 0.7)
    assert cv2.countNonZero(tissue_pixels(washed)) < 5_000 and math.isnan(reading(washed))
    assert darkest_faint_tissue(washed) > 0.7
    glass = np.full((300, 500, 3), (240, 236, 238), np.uint8)
    for bare in (glass, vignetting(glass, 0.6), flicker(glass, 0.2), dust(glass, np.random.default_rng(0), 10, 0.7)):
        assert math.isnan(darkest_faint_tissue(bare))
    with Detector(um_per_px=4.0, stride=25) as det:
        result = det.detect(cv2.cvtColor(washed, cv2.COLOR_RGB2BGR))
        assert result.n_tissue == 0 and result.washed_out and not result.exposure_ok
        assert status_text(result).startswith("WASHED OUT: no call")
        assert not det.detect(cv2.cvtColor(vignetting(glass, 0.6), cv2.COLOR_RGB2BGR)).washed_out


@pytest.mark.data
def test_real_slides_are_called_and_under_strong_glare_they_are_no_call(validation_fields):
    with Detector(um_per_px=4.0, stride=50) as det:
        for f in validation_fields:
            clean = det.detect(cv2.cvtColor(f.rgb, cv2.COLOR_RGB2BGR))
            assert not clean.washed_out and clean.darkest_tissue < 0.3, (f.patient, clean.darkest_tissue)
            assert (decision_grid(clean) <= 1).sum() > 0
            # 45 % of the glass's light added: the model alone agreed 85 % with the clean field, IDC recall 0.63
            washed = det.detect(cv2.cvtColor(glare(f.rgb, 0.45), cv2.COLOR_RGB2BGR))
            assert washed.washed_out and washed.n_idc == 0 and washed.n_no_call == washed.n_tissue > 0, f.patient
            # 60 %: on some fields no tissue is left for the mask, and the frame is still said washed out
            paler = det.detect(cv2.cvtColor(glare(f.rgb, 0.6), cv2.COLOR_RGB2BGR))
            assert paler.washed_out and paler.n_idc == 0 and paler.n_no_call == paler.n_tissue, f.patient


def test_run_says_once_that_stray_light_washes_the_frames_out_and_records_it(tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    for i, seed in enumerate((1, 4, 7)):
        cv2.imwrite(str(frames / f"{i}_clean.png"), synthetic_slide(300, 500, seed=seed))
        washed = glare(slide_rgb(seed), 0.5)
        cv2.imwrite(str(frames / f"{i}_washed.png"), cv2.cvtColor(washed, cv2.COLOR_RGB2BGR))
    warned, records = run_recorded(frames, tmp_path / "run.jsonl", "--um-per-px", "4", "--stride", "25")
    said = [line for line in warned if "washed out" in line]
    assert len(said) == 1 and "stray light" in said[0] and "eyepiece" in said[0], warned
    assert not [line for line in warned if "too dark or clipped" in line]  # not told to set the lamp
    assert [r["washed_out"] for r in records] == [False, True] * 3
    assert all(r["idc_patches"] == 0 and r["no_call_patches"]["exposure"] == r["tissue_patches"] > 0
               for r in records if r["washed_out"])


@pytest.mark.data
def test_a_small_field_of_pale_stroma_is_not_washed_out_but_the_same_field_under_stray_light_is(data_dir):
    """A 640×480 camera at 1 µm/px (160×120 model pixels) can show pale stroma edge to edge, whose
    darkest hundredth lets through as much light as stray light leaves (0.49–0.51 against the 0.42
    limit): the field was no call as washed out. Stray light desaturates; the stroma keeps its pink
    (colour strength 79–98 against at most 55 under 45 % glare), so it is called, and the same field
    under 45 % glare is still washed out."""
    from benchmarks.camera_conditions import slide_fields

    fields = slide_fields(data_dir, ("8975",), size=(160, 120), per_patient=10, exact=True, seed=11)
    with Detector(um_per_px=4.0, stride=50) as det:
        pale = [r for r in (det.detect(cv2.cvtColor(f.rgb, cv2.COLOR_RGB2BGR)) for f in fields)
                if r.darkest_tissue > MAX_DARKEST_TISSUE]
        assert len(pale) >= 2
        for r in pale:
            assert not r.washed_out and r.exposure_ok and r.colour_strength >= MAX_WASHED_COLOUR_STRENGTH, r.to_dict()
        for f in fields:
            stray = det.detect(cv2.cvtColor(glare(f.rgb, 0.45), cv2.COLOR_RGB2BGR))
            assert stray.washed_out or math.isnan(stray.darkest_tissue), f.patient
    with pytest.raises(OptionError, match="max_washed_colour_strength"):
        ExposureOptions(max_washed_colour_strength=300)
