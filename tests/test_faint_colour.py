"""Colours too faint for stained tissue (a camera's saturation turned down, a grey stream) are no call.

At saturation ×0.2 the tissue mask lost most of the tissue, showed it as background, and the model
agreed 83–88 % with the clean field on what was left (IDC recall 0.94 → 0.36 on training patients'
slides), without a word. :func:`idc_edge.faint.colour_strength` reads how coloured the parts of
the field that absorb light are; checked on synthetic slides (no data needed), through
``python -m idc_edge run`` and ``report``, and on the validation slides.
"""
from __future__ import annotations

import json
import math
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import run_recorded
from idc_edge.bench import synthetic_slide
from idc_edge.detector import Detector
from idc_edge.errors import OptionError
from idc_edge.faint import MIN_COLOUR_STRENGTH, colour_strength
from idc_edge.focus import ColourOptions
from idc_edge.overlay import status_text


def saturated(rgb: np.ndarray, factor: float) -> np.ndarray:
    """``rgb`` (uint8, RGB or BGR) with its HSV saturation times ``factor``, light and dark kept."""
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 1] *= factor
    return cv2.cvtColor(np.clip(np.rint(hsv), 0, 255).astype(np.uint8), cv2.COLOR_HSV2RGB)


def test_colour_strength_falls_with_the_saturation_and_glass_with_a_grey_edge_is_not_judged():
    rgb = synthetic_slide(300, 500, seed=1)[..., ::-1].copy()
    readings = [colour_strength(saturated(rgb, k)) for k in (1.0, 0.5, 0.2, 0.0)]
    assert readings[0] > 2 * MIN_COLOUR_STRENGTH and readings[1] > MIN_COLOUR_STRENGTH
    assert readings[2] < MIN_COLOUR_STRENGTH and readings[3] == 0.0
    assert readings == sorted(readings, reverse=True)
    # bare glass with a slide's grey edge along the bottom (6 % of the frame, as in the data set)
    glass = np.full((300, 500, 3), 245, np.uint8)
    glass[-18:] = 150
    assert math.isnan(colour_strength(glass))
    assert math.isnan(colour_strength(np.full((300, 500, 3), 245, np.uint8)))


def test_a_frame_of_faint_colours_is_no_call_said_as_such_and_the_option_decides():
    bgr = synthetic_slide(300, 500, seed=1)
    with Detector(um_per_px=4.0, stride=25) as det:
        clean = det.detect(bgr)
        assert not clean.faint_colour and clean.colour_ok and clean.n_no_call == 0 and clean.n_idc > 0
        for factor in (0.2, 0.0):
            grey = factor == 0.0  # no colour at all: said, flagged and shown as that instead (round 16)
            with pytest.warns(UserWarning, match="have no colour") if grey else _nothing():
                faint = det.detect(saturated(bgr, factor))
            assert faint.faint_colour is not grey and faint.no_colour is grey
            assert not faint.colour_ok and faint.colour_strength < MIN_COLOUR_STRENGTH
            assert faint.n_idc == 0 and faint.n_tissue < 0.1 * clean.n_tissue  # the mask lost it: hence the flag
            assert status_text(faint).startswith("NO COLOUR: no call" if grey else "FAINT COLOUR: no call")
            record = faint.to_dict()
            assert record["faint_colour"] is not grey and record["no_colour"] is grey and record["colour_ok"] is False
            assert record["colour_strength"] == pytest.approx(faint.colour_strength, abs=0.1)
        # saturation ×0.5: the model copes (95 % agreement on the validation slides), so no call it is not
        half = det.detect(saturated(bgr, 0.5))
        assert not half.faint_colour and half.colour_ok and half.n_no_call == 0
    with Detector(um_per_px=4.0, stride=25, colour=ColourOptions(min_colour_strength=0)) as det:
        r = det.detect(saturated(bgr, 0.2))
        # the check off: not faint, though the strength is still read (the stray-light rule weighs it)
        assert not r.faint_colour and r.colour_strength < MIN_COLOUR_STRENGTH
    with pytest.raises(OptionError, match="min_colour_strength"):
        ColourOptions(min_colour_strength=300)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_run_and_report_say_faint_colour_once_and_count_its_frames_as_not_called(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    bgr = synthetic_slide(300, 500, seed=2)
    for i, factor in enumerate((1.0, 0.1, 0.1, 1.0)):
        assert cv2.imwrite(str(folder / f"f{i}.png"), saturated(bgr, factor))
    warned, frames = run_recorded(folder, tmp_path / "run.jsonl", "--um-per-px", "4")
    said = [line for line in warned if "colours are too faint" in line]
    assert len(said) == 1 and "saturation" in said[0], warned
    assert not [line for line in warned if "colour cast" in line]  # said once, as what it is
    assert [r["faint_colour"] for r in frames] == [False, True, True, False]
    assert frames[0]["idc_patches"] > 0
    assert all(r["tissue_patches"] == 0 for r in frames[1:3])  # the mask found none: not "no tissue" either
    p = subprocess.run([sys.executable, "-m", "idc_edge", "report", str(tmp_path / "run.jsonl"), "--json"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    session = json.loads(p.stdout)["sessions"][0]
    assert session["frames_without_call"] == 2 and session["no_call_reasons"] == {"colour": 2}, session


@pytest.mark.data
def test_faded_colours_on_the_validation_slides_are_no_call_and_clean_fields_are_not(validation_fields):
    with Detector(um_per_px=4.0, stride=25) as det:
        for f in validation_fields:
            clean = det.detect(f.rgb[..., ::-1].copy())
            assert not clean.faint_colour and clean.colour_strength > 2 * MIN_COLOUR_STRENGTH, f.patient
            assert not det.detect(saturated(f.rgb, 0.5)[..., ::-1].copy()).faint_colour, f.patient
            faint = det.detect(saturated(f.rgb, 0.2)[..., ::-1].copy())
            assert faint.faint_colour and faint.n_idc == 0, (f.patient, faint.colour_strength)
