"""What a camera does to real slide frames, end to end: still right, or "no call" said plainly.

Real fields are validation slides rebuilt from the data set (``benchmarks.camera_conditions``,
skipped without the data), altered by ``train.camera_sim`` and run through ``Detector.detect`` and
through ``python -m idc_edge run`` on a video written here. The full table (every condition family,
several severities) is ``python -m benchmarks.camera_conditions``; these are a few frames of it.
"""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from benchmarks.camera_conditions import decision_grid, slide_fields
from conftest import run_recorded
from idc_edge.colour import (MIN_TRAINED_TISSUE_MAGENTA, PALE_TISSUE_DIRECTION, TRAINING_GLASS_RGB, WhiteBalance,
                             field_casts, glass_cast, measure_white, off_stain_line, pale_cast, tissue_magenta)
from idc_edge.errors import OptionError
from idc_edge.detector import Detector
from idc_edge.focus import ColourOptions, NoiseOptions
from idc_edge.overlay import status_text
from train import camera_sim as cs

COOL_30 = cs.cool_cast(0.30)  # beyond the casts the shipped model was trained on (gains 0.75-1.25)


@pytest.fixture
def fields(data_dir):
    found = slide_fields(data_dir, ("8867", "9023"), per_patient=1, min_tissue=0.3)
    if len(found) < 2:
        pytest.skip("patients 8867 and 9023 gave too few tissue fields")
    return found


def bgr(rgb):
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


def agreement(a, b) -> float:
    da, db = decision_grid(a), decision_grid(b)
    called = (da <= 1) & (db <= 1)
    return float((da[called] == db[called]).mean()) if called.any() else float("nan")


@pytest.mark.data
def test_clean_fields_are_called_and_conditions_that_change_the_answer_are_no_call(fields):
    with Detector(um_per_px=4.0, stride=50) as det:
        for f in fields:
            clean = det.detect(bgr(f.rgb))
            assert clean.in_focus and clean.exposure_ok and clean.colour_ok, (f.patient, clean.to_dict())
            assert clean.n_no_call <= 0.05 * clean.n_tissue
            # mild conditions keep the answer
            for mild in (cs.CONDITIONS["jpeg"][1], cs.CONDITIONS["exposure"][0], cs.CONDITIONS["gamma"][0]):
                r = det.detect(bgr(mild(f.rgb, np.random.default_rng(0))))
                assert r.n_no_call <= 0.1 * r.n_tissue and agreement(clean, r) >= 0.9, mild.label
            # a 30 % cool cast without a white profile: no call, named as colour
            cast = det.detect(bgr(cs.colour_cast(f.rgb, COOL_30)))
            assert not cast.colour_ok and cast.n_no_call == cast.n_tissue > 0 and cast.n_idc == 0
            record = json.loads(json.dumps(cast.to_dict()))
            assert record["colour_ok"] is False and record["no_call_patches"]["colour"] > 0
            assert sum(record["no_call_patches"].values()) == cast.n_tissue  # each patch has one reason
            assert status_text(cast).startswith("COLOUR CAST: no call")
            # 30 % of the light without a white profile: too dark, no call
            dark = det.detect(bgr(cs.exposure(f.rgb, 0.3)))
            assert not dark.exposure_ok and dark.n_idc == 0 and dark.n_no_call == dark.n_tissue
            # defocus of 8 µm: out of focus, no call
            blurred = det.detect(bgr(cs.defocus(f.rgb, sigma_um=8.0)))
            assert not blurred.in_focus and blurred.n_idc == 0


@pytest.mark.data
def test_a_white_profile_made_through_the_same_cast_gives_the_call_back(fields):
    # a cool lamp with the camera exposing a little under (so the glass's blue does not clip)
    lamp = tuple(0.75 * g for g in COOL_30)
    glass = np.full((120, 160, 3), TRAINING_GLASS_RGB, np.float64).round().astype(np.uint8)
    balance = WhiteBalance.from_calibration(measure_white(bgr(cs.colour_cast(glass, lamp))))
    with Detector(um_per_px=4.0, stride=50) as plain, \
            Detector(um_per_px=4.0, stride=50, white_balance=balance) as profiled:
        for f in fields:
            clean = plain.detect(bgr(f.rgb))
            r = profiled.detect(bgr(cs.colour_cast(f.rgb, lamp)))
            assert r.colour_ok and r.exposure_ok and r.in_focus
            assert agreement(clean, r) >= 0.9


@pytest.mark.data
def test_a_too_large_um_per_px_is_not_a_silent_benign_answer(fields):
    # told 3× the true µm/px, the frame is magnified 3× for the model: it must not come back as
    # "no IDC" with every patch called
    with Detector(um_per_px=12.0, stride=50) as det:
        for f in fields:
            r = det.detect(bgr(f.rgb))
            assert not r.in_focus and r.n_no_call == r.n_tissue and r.n_idc == 0


def test_the_colour_gate_can_be_switched_off_and_its_option_is_checked():
    with pytest.raises(Exception, match="max_glass_cast"):
        ColourOptions(max_glass_cast=0)
    rgb = np.full((300, 400, 3), 200, np.uint8)
    rgb[:, :200] = cs.colour_cast(np.full((300, 200, 3), TRAINING_GLASS_RGB, np.uint8), COOL_30)
    rgb[:, 200:] = (190, 120, 180)
    with Detector(um_per_px=1.0, colour=ColourOptions(enabled=False)) as det:
        assert det.detect(bgr(rgb)).colour_ok


@pytest.mark.data
def test_run_on_a_cast_video_says_no_call_once_and_records_it(fields, tmp_path):
    video = tmp_path / "cast.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5, (500, 300))
    for f in fields:
        for _ in range(2):
            writer.write(bgr(cs.colour_cast(f.rgb, COOL_30)))
    writer.release()
    warned, frames = run_recorded(video, tmp_path / "run.jsonl", "--um-per-px", "4")
    warnings = [line for line in warned if "colour cast" in line]
    assert len(warnings) == 1 and "calibrate white" in warnings[0], warned
    assert len(frames) == 2 * len(fields)
    flagged = [r for r in frames if r["colour_ok"] is False]
    assert len(flagged) >= len(frames) // 2  # MJPG moves the glass's colour a little; a 30 % cast is near the limit
    assert all(r["idc_patches"] == 0 and r["no_call_patches"]["colour"] > 0 for r in flagged)


def test_the_glass_cast_from_the_detector_s_own_hsv_is_the_one_it_measures_alone():
    """The detector hands the colour gate the HSV image it made for the tissue mask; the cast must
    be exactly what ``glass_cast`` measures from the RGB frame alone, whatever the cast."""
    from idc_edge.bench import synthetic_slide
    from idc_edge.colour import glass_cast

    for seed, gains in enumerate(((1.0, 1.0, 1.0), (0.9, 1.0, 1.1), (1.1, 1.0, 0.9))):
        rgb = np.clip(synthetic_slide(271, 481, seed=seed)[..., ::-1] * np.array(gains), 0, 255).astype(np.uint8)
        alone = glass_cast(rgb)
        assert alone == alone  # there is glass to judge
        assert glass_cast(rgb, hsv=cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)) == alone
    # the gate's one-pass reading is the two functions: the pale part only where no glass is found
    from idc_edge.colour import field_casts

    rgb = synthetic_slide(271, 481, seed=3)[..., ::-1].copy()
    for frame in (rgb, cs.colour_cast(rgb, cs.cool_cast(0.5))):
        glass, pale, *_ = field_casts(frame, cv2.cvtColor(frame, cv2.COLOR_RGB2HSV))
        assert np.array_equal([glass, pale], [glass_cast(frame), pale_cast(frame) if glass != glass else np.nan],
                              equal_nan=True)
    assert glass != glass and pale > 0  # the cast frame's glass is not recognised, its pale part is judged


def test_grain_does_not_hide_a_cast_from_the_glass_rule():
    """Chosen pixel by pixel, the least saturated glass of a grainy frame is where the grain cancelled
    the cast: 250 e⁻ of shot noise read a 30 % cool cast as 0.07 (under the 0.10 limit) instead of
    0.11. The glass is chosen and read on its 5×5 means, so grain moves the reading little."""
    from idc_edge.bench import synthetic_slide

    rng = np.random.default_rng(0)
    for seed in range(3):
        rgb = synthetic_slide(271, 481, seed=seed)[..., ::-1].copy()
        for gains in (cs.cool_cast(0.2), cs.cool_cast(0.25), cs.cool_cast(-0.25)):
            cast = cs.colour_cast(rgb, gains)
            still = glass_cast(cast)
            assert 0.07 < still < ColourOptions().max_glass_cast
            for full_well in (1000.0, 250.0):
                # what is left is the clip: grain on the brightest channel of bright glass is cut at 255
                grainy = glass_cast(cs.sensor_noise(cast, rng, full_well_e=full_well, read_noise_e=8.0))
                assert grainy == pytest.approx(still, abs=0.012), (seed, gains, full_well)  # 0.03 low before


@pytest.mark.data
def test_a_cast_beyond_the_limit_on_a_grainy_frame_is_still_no_call(fields):
    """A 30 % cool cast with 250 e⁻ of shot noise (each alone: no call, and ok): more than half of
    the validation slides' fields were called before, agreeing 77 % with the clean field."""
    rng = np.random.default_rng(1)
    with Detector(um_per_px=4.0, stride=50) as det:
        for f in fields:
            frame = cs.sensor_noise(cs.colour_cast(f.rgb, COOL_30), rng, full_well_e=250.0, read_noise_e=8.0)
            r = det.detect(bgr(frame))
            assert not r.colour_ok and r.n_idc == 0 and r.n_no_call == r.n_tissue > 0, (f.patient, r.to_dict())
            assert r.glass_cast > ColourOptions().max_glass_cast or r.pale_cast > ColourOptions().max_pale_cast
            grain_only = det.detect(bgr(cs.sensor_noise(f.rgb, rng, full_well_e=250.0, read_noise_e=8.0)))
            assert grain_only.colour_ok  # the grain alone is no colour cast


@pytest.mark.data
def test_grain_one_stop_under_is_no_call_with_a_cast_as_without(data_dir):
    """One stop under with 200 e⁻ at white: no call for its grain. With a 20 % cool cast as well the
    glass was too coloured for the noise gate's glass (nothing clips one stop under), went unread, and
    the frame was scored (82 % of the decisions kept, benign called IDC); now it is no call the same."""
    found = [f for f in slide_fields(data_dir, ("8867", "9023", "8914", "9076"), per_patient=2, min_tissue=0.3, seed=3)
             if not np.isnan(glass_cast(f.rgb))]
    assert len(found) >= 5
    rng = np.random.default_rng(2)
    judged = flagged = 0
    with Detector(um_per_px=4.0, stride=50) as det:
        for f in found:
            dim = cs.exposure(f.rgb, 0.5)
            plain = det.detect(bgr(cs.sensor_noise(dim, rng, full_well_e=200.0)))
            if np.isnan(plain.noise):  # too little glass for the gate even without the cast
                continue
            assert plain.noise > NoiseOptions().max_noise and not plain.noise_ok, f.patient
            judged += 1
            r = det.detect(bgr(cs.sensor_noise(cs.colour_cast(dim, cs.cool_cast(0.20)), rng, full_well_e=200.0)))
            if r.noise > NoiseOptions().max_noise:
                assert not r.noise_ok and r.n_idc == 0 and r.n_no_call == r.n_tissue > 0, (f.patient, r.to_dict())
                flagged += 1
    assert judged >= 5 and flagged >= 0.8 * judged, (judged, flagged)


def test_tissue_magenta_is_how_much_less_green_the_tissue_is_whatever_the_exposure():
    tissue = np.zeros((100, 200), np.uint8)
    tissue[:, 100:] = 1
    rgb = np.empty((100, 200, 3), np.uint8)
    rgb[:, :100] = (60, 220, 60)            # green glass beside the tissue is not counted
    rgb[:, 100:150] = (170, 120, 180)       # haematoxylin-purple
    rgb[:, 150:] = (232, 186, 214)          # pale eosin-pink stroma
    r, g, b = (170 + 232) / 2, (120 + 186) / 2, (180 + 214) / 2
    assert tissue_magenta(rgb, tissue) == pytest.approx(((r + b) / 2 - g) / ((r + g + b) / 3), rel=1e-6)
    # exposure scales every channel alike: the measure does not move
    darker = (rgb.astype(np.float32) * 0.5).round().astype(np.uint8)
    assert tissue_magenta(darker, tissue) == pytest.approx(tissue_magenta(rgb, tissue), abs=0.01)
    # a strong green cast makes the tissue as green as it is red and blue
    assert tissue_magenta(rgb, tissue) > 0.2
    assert tissue_magenta(cs.colour_cast(rgb, (0.75, 1.5, 0.75)), tissue) < MIN_TRAINED_TISSUE_MAGENTA
    # too little tissue to judge
    assert np.isnan(tissue_magenta(rgb, tissue, min_px=int(tissue.sum()) + 1))
    assert np.isnan(tissue_magenta(rgb, np.zeros_like(tissue)))
    for bad in ("0.1", float("nan"), 2.0, None):
        with pytest.raises(OptionError, match="min_tissue_magenta"):
            ColourOptions(min_tissue_magenta=bad)


@pytest.mark.data
def test_a_green_cast_on_tissue_from_edge_to_edge_is_no_call(data_dir):
    """Where tissue fills the view, no glass is there for the glass rule to judge; a 50 % green
    cast then changed the shipped model's answer on a quarter of the windows (IDC called benign),
    silently. The tissue's own colour says it (H&E tissue is never as green as it is red and blue),
    and so does the colour of its brightest part. The clean fields stay called."""
    found = slide_fields(data_dir, ("8914", "9023", "8917", "9078"), per_patient=2, min_tissue=0.97)
    if len(found) < 4:
        pytest.skip("too few fields filled with tissue")
    agree = []
    with Detector(um_per_px=4.0, stride=50) as det:
        for f in found:
            clean = det.detect(bgr(f.rgb))
            assert clean.colour_ok and clean.tissue_magenta > 0.1, (f.patient, clean.to_dict())
            cast = cs.colour_cast(f.rgb, (0.75, 1.5, 0.75))
            r = det.detect(bgr(cast))
            assert r.to_dict()["tissue_magenta"] == round(r.tissue_magenta, 4)
            if r.colour_ok:
                assert r.tissue_magenta >= MIN_TRAINED_TISSUE_MAGENTA
                agree.append(agreement(clean, r))
            else:
                assert r.n_idc == 0 and r.n_no_call == r.n_tissue > 0 and r.no_call_colour > r.n_tissue // 2
    assert len(agree) <= 3 * len(found) // 4 and (not agree or min(agree) >= 0.85), agree


@pytest.mark.data
@pytest.mark.parametrize("gains", [cs.cool_cast(0.4), cs.cool_cast(0.5), cs.cool_cast(-0.4)], ids=["cool40", "cool50", "warm40"])
def test_a_cast_too_strong_for_the_glass_rule_is_still_no_call(fields, gains):
    """Past about 35 % the glass is too saturated to be told from tissue by the glass rule; the
    palest flat part of the field is judged instead, at the data set's scale and through a camera
    at 1 µm/px (a 1080p frame, whose grid padding is white and must not pass for glass)."""
    with Detector(um_per_px=4.0, stride=50) as det, Detector(um_per_px=1.0, stride=25) as camera:
        for f in fields:
            rgb = cs.colour_cast(f.rgb, gains)
            assert glass_cast(rgb) != glass_cast(rgb)  # the glass rule finds no glass
            for d, frame in ((det, rgb), (camera, cv2.resize(rgb, (1920, 1080), interpolation=cv2.INTER_LINEAR))):
                r = d.detect(bgr(frame))
                assert not r.colour_ok and r.n_idc == 0 and r.n_no_call == r.n_tissue > 0, (f.patient, r.to_dict())
                assert r.pale_cast > ColourOptions().max_pale_cast and r.to_dict()["pale_cast"] == round(r.pale_cast, 4)
            assert det.detect(bgr(f.rgb)).colour_ok  # and the clean field stays called


@pytest.mark.data
@pytest.mark.parametrize("gains", [cs.cool_cast(0.4), cs.cool_cast(-0.4), (0.75, 0.75, 1.5)], ids=["cool40", "warm40", "blue50"])
def test_a_strong_cast_on_tissue_from_edge_to_edge_is_no_call(data_dir, gains):
    """With tissue in the whole view and the data set's textured tissue, nothing pale is flat, and
    the palest-part rule read nothing: a third of the frames under a 40-50 % cast were called, 12-17 %
    of their windows changed. The brightest twentieth of the pixels is judged then: clean fields
    filled with tissue read at most 0.067 off the stain line, 40 % cool or warm casts and a 50 % blue
    cast at least 0.17."""
    found = slide_fields(data_dir, ("8914", "9023", "8917", "9078", "8956"), per_patient=2, min_tissue=0.97)
    if len(found) < 4:
        pytest.skip("too few fields filled with tissue")
    by_brightest = 0
    with Detector(um_per_px=4.0, stride=50) as det:
        for f in found:
            assert det.detect(bgr(f.rgb)).colour_ok, f.patient
            r = det.detect(bgr(cs.colour_cast(f.rgb, gains)))
            assert not r.colour_ok and r.n_idc == 0 and r.n_no_call == r.n_tissue > 0, (f.patient, r.to_dict())
            by_brightest += bool(np.isnan(r.glass_cast) and r.pale_cast > ColourOptions().max_brightest_cast)
    assert by_brightest >= len(found) // 2


@pytest.mark.data
def test_a_small_camera_frame_is_judged_for_colour_and_grain(data_dir):
    """An 800×600 camera at 1 µm/px is 200×150 px at the model's scale. The colour and noise gates
    judged only fields of 300×200, so such a camera passed a 40 % cool cast, a 50 % blue cast and
    grain the model cannot read (6 e⁻ at white per camera pixel) without a word."""
    found = slide_fields(data_dir, ("8914", "9023", "8867", "9078"), size=(200, 150), per_patient=3, min_tissue=0.3)
    rng = np.random.default_rng(4)
    with Detector(um_per_px=1.0, stride=25) as det:
        for f in found:
            camera = cs.to_camera_scale(f.rgb, 1.0)
            assert camera.shape[:2] == (600, 800)
            clean = det.detect(bgr(camera))
            assert clean.colour_ok and clean.noise_ok and clean.n_tissue > 0, (f.patient, clean.to_dict())
            for gains in (cs.cool_cast(0.4), (0.75, 0.75, 1.5)):
                r = det.detect(bgr(cs.colour_cast(camera, gains)))
                assert not r.colour_ok and r.n_idc == 0 and r.n_no_call == r.n_tissue > 0, (f.patient, gains)
            grainy = det.detect(bgr(cs.sensor_noise(camera, rng, full_well_e=6.0, read_noise_e=2.0)))
            assert not grainy.noise_ok and grainy.n_no_call == grainy.n_tissue > 0, f.patient


def test_glass_clipped_in_one_channel_is_judged_against_the_lower_limit():
    """A cast cannot raise a channel that is already clipped: on glass clipped white a 50 % blue
    cast reads 0.085, under the 0.10 limit, and was called silently (benign called IDC). Glass
    clipped in one or two channels is judged against ``max_clipped_glass_cast``; a typical USB
    camera's 15 % cool cast on the same glass stays called, and so does glass clipped in all three."""
    from idc_edge.bench import synthetic_slide

    rgb = synthetic_slide(300, 480, seed=5)[..., ::-1].copy()
    rgb[:, :200] = 255  # the data set's glass is often scanned clipped white
    with Detector(um_per_px=4.0, stride=50) as det:
        assert det.detect(bgr(rgb)).colour_ok
        blue = cs.colour_cast(rgb, (0.75, 0.75, 1.5))
        casts = field_casts(blue)
        assert casts.glass_clipped and ColourOptions().max_clipped_glass_cast < casts.glass < ColourOptions().max_glass_cast
        r = det.detect(bgr(blue))
        assert not r.colour_ok and r.n_idc == 0 and r.n_no_call == r.n_tissue > 0
        usb = cs.colour_cast(rgb, cs.cool_cast(0.15))
        assert field_casts(usb).glass_clipped and det.detect(bgr(usb)).colour_ok
    # glass clipped in all three channels is white, not tinted; unclipped glass is judged as before
    assert not field_casts(rgb).glass_clipped
    assert not field_casts(cs.colour_cast(rgb, (0.9, 0.9, 0.9))).glass_clipped
    for name in ("max_clipped_glass_cast", "max_brightest_cast"):
        with pytest.raises(OptionError, match=name):
            ColourOptions(**{name: 0})


def test_glass_clipped_white_in_part_of_the_field_does_not_hide_the_cast_of_the_rest():
    """White at the clip has no colour left to read, and as the brightest glass it was the glass read:
    a white border (or a lamp's hot spot) beside glass showing a 25 % cool cast read 0.008, no cast,
    where the glass alone reads 0.098. The glass below the clip is read where enough of it is in view;
    all-white glass is read as before."""
    from idc_edge.bench import synthetic_slide

    rgb = synthetic_slide(300, 480, seed=5)[..., ::-1].copy()
    cast = cs.colour_cast(rgb, cs.cool_cast(0.25))
    alone = field_casts(cast).glass
    assert alone > ColourOptions().max_clipped_glass_cast
    bordered = cast.copy()
    bordered[:, :160] = 255  # a third of the field white: a border, a hot spot clipped
    assert field_casts(bordered).glass == pytest.approx(alone, abs=0.01)
    with Detector(um_per_px=4.0, stride=50) as det:
        r = det.detect(bgr(bordered))
        assert not r.colour_ok and r.n_idc == 0
        white = rgb.copy()
        white[:, :160] = 255
        assert det.detect(bgr(white)).colour_ok  # no cast: still called
    assert field_casts(np.full_like(rgb, 255)).glass < 0.01  # nothing but white: read as white, as before


def test_black_seen_through_stray_light_is_unlit_and_nuclei_and_tissue_are_not():
    """A field stop's black ring under 20 % glare is a flat grey of about half the glass: above the
    unlit level, so windows reaching into it were scored. Wide dark grey regions are unlit now; dark
    nuclei-sized specks and stained tissue, however dark, are not."""
    from benchmarks.camera_conditions import black_through_stray_light as grey_of, field_stop, glare
    from idc_edge.bench.synthetic import synthetic_slide

    rgb = synthetic_slide(300, 480, seed=5)[..., ::-1].copy()

    assert not grey_of(rgb).any()
    assert not grey_of(cs.exposure(rgb, 0.5)).any()  # a dark frame's tissue is still coloured
    stopped = glare(field_stop(rgb, 0.8), 0.2)
    stop = field_stop(np.full_like(rgb, 255), 0.8).max(axis=2)
    ring = stop < 40
    assert stopped[ring].min() > 100  # the black is grey now, far above the unlit level
    found = grey_of(stopped)
    assert found[ring].mean() > 0.9 and not found[stop == 255].any()  # the ring and its soft edge only
    specks = rgb.copy()
    for y, x in ((50, 60), (120, 300), (200, 400)):
        specks[y:y + 5, x:x + 5] = 60  # nuclei-sized dark grey specks
    assert not grey_of(specks).any()
    with Detector(um_per_px=4.0, stride=50) as det:
        clean, r = det.detect(bgr(rgb)), det.detect(bgr(stopped))
        reaching = np.array([ring[y0:y1, x0:x1].mean() > 0.02 for x0, y0, x1, y1 in r.boxes.reshape(-1, 4)])
        called = (r.tissue & ~r.no_call).reshape(-1) if r.no_call is not None else r.tissue.reshape(-1)
        assert clean.tissue.reshape(-1)[reaching].sum() > 5 and not called[reaching].any()


@pytest.mark.data
def test_a_field_stop_through_stray_light_is_no_call_where_it_reaches(data_dir):
    """Stray light (20 % of the glass's light) over a round field stop at 80 % of the half-diagonal:
    the validation fields kept 89 % of their decisions (79–83 % on small fields), silently; the
    windows reaching into the grey ring are no call now, and the rest agree."""
    from benchmarks.camera_conditions import field_stop, glare

    found = slide_fields(data_dir, ("8867", "9023", "8914", "9076"), per_patient=2, min_tissue=0.3, seed=3)
    kept = total = 0
    with Detector(um_per_px=4.0, stride=50) as det:
        for f in found:
            clean = det.detect(bgr(f.rgb))
            r = det.detect(bgr(glare(field_stop(f.rgb, 0.8), 0.2)))
            da, db = decision_grid(clean), decision_grid(r)
            both = (da <= 1) & (db <= 1)
            kept, total = kept + int((da[both] == db[both]).sum()), total + int(both.sum())
    assert total > 100 and kept / total >= 0.93


@pytest.mark.data
def test_a_lamp_s_hot_spot_does_not_hide_a_cast(data_dir):
    """A hot spot (the centre at 1.6× the light, clipped white) with a 30 % cool cast: the white centre
    was read as the glass, and 7 of 10 fields with glass in view passed the colour gate (one called
    whole, the others partly: 77–100 % of the decisions kept). Now every such field is no call; the hot spot alone keeps
    the call."""
    from benchmarks.camera_conditions import hot_spot

    found = [f for f in slide_fields(data_dir, ("8867", "9023", "8914", "9076", "8956", "9022"), per_patient=2,
                                     min_tissue=0.3, seed=3)
             if not np.isnan(glass_cast(f.rgb))]
    assert len(found) >= 10
    with Detector(um_per_px=4.0, stride=50) as det:
        for f in found:
            r = det.detect(bgr(hot_spot(cs.colour_cast(f.rgb, COOL_30), 1.6)))
            assert not r.colour_ok and r.n_idc == 0, (f.patient, r.to_dict())
            assert det.detect(bgr(hot_spot(f.rgb, 1.3))).colour_ok, f.patient


@pytest.mark.data
def test_a_cast_that_clipped_glass_hides_is_read_on_the_brightest_tissue_below_the_clip(data_dir):
    """Glass clipped white cannot show the part of a cast that raises a channel past the clip: a
    35 % blue cast of such glass read 0.058, like a typical USB camera's 15 % cool cast, and fields
    of complete training slides were called with up to half their windows changed (benign called
    IDC). Where the glass is clipped in one or two channels, the brightest pixels below the clip are
    judged as tissue (``max_brightest_cast``): every such field is now no call, and the 15 % and 20 %
    cool casts of the USB cameras stay called on most."""
    found = [f for f in slide_fields(data_dir, ("8974", "9123", "8913", "9077", "8950"), size=(480, 270),
                                     per_patient=3, seed=7)
             if field_casts(cs.colour_cast(f.rgb, (0.825, 0.825, 1.35))).glass_clipped]
    assert len(found) >= 6
    called = hidden = 0
    with Detector(um_per_px=4.0, stride=50) as det:
        for f in found:
            assert det.detect(bgr(f.rgb)).colour_ok, f.patient
            r = det.detect(bgr(cs.colour_cast(f.rgb, (0.825, 0.825, 1.35))))
            assert not r.colour_ok and r.n_idc == 0 and r.n_no_call == r.n_tissue > 0, f.patient
            if r.glass_cast < ColourOptions().max_clipped_glass_cast:  # the glass alone passes it
                hidden += 1
                assert r.pale_cast > ColourOptions().max_brightest_cast, (f.patient, r.to_dict())
            called += det.detect(bgr(cs.colour_cast(f.rgb, cs.cool_cast(0.15)))).colour_ok
    assert hidden >= 0.5 * len(found) and called >= 0.8 * len(found)


def test_pale_glass_and_stroma_lie_on_the_stain_line_and_a_lamp_s_cast_does_not():
    # pure maths: glass itself, and any amount of the pale-tissue direction, are on the line
    assert off_stain_line((0.0, 0.0, 0.0)) == 0.0
    for t in (0.05, 0.2, 0.4):
        assert off_stain_line(t * np.asarray(PALE_TISSUE_DIRECTION)) < 1e-9
    # the opposite direction (greener, less red) is measured from the start of the line: its full length
    assert off_stain_line(-0.2 * np.asarray(PALE_TISSUE_DIRECTION)) == pytest.approx(0.2, rel=1e-3)
    # a field: flat glass beside pale pink stroma and darker purple tissue
    rng = np.random.default_rng(0)
    rgb = np.empty((300, 400, 3), np.uint8)
    rgb[:, :150] = np.round(TRAINING_GLASS_RGB).astype(np.uint8)
    rgb[:, 150:280] = (232, 186, 214)  # pale stroma
    rgb[:, 280:] = np.clip(rng.normal((150, 90, 160), 25, (300, 120, 3)), 0, 255).astype(np.uint8)
    assert pale_cast(rgb) < 0.02
    for gains in (cs.cool_cast(0.4), cs.cool_cast(-0.4), (0.8, 1.4, 0.8)):
        assert pale_cast(cs.colour_cast(rgb, gains)) > ColourOptions().max_pale_cast, gains
    # nothing bright and flat (textured tissue edge to edge): its brightest twentieth is judged, so
    # a field with anything in view always has a reading
    assert not np.isnan(pale_cast(rgb[:, 280:]))
    with pytest.raises(Exception, match="max_pale_cast"):
        ColourOptions(max_pale_cast=-1)


@pytest.mark.data
def test_a_tilted_slide_is_no_call_where_blurred_and_called_where_sharp(fields):
    """A focus gradient across the field (a tilted slide, a curved field): the gate judges each
    window, so the blurred side is no call rather than benign, and the sharp side keeps its calls."""
    from benchmarks.camera_conditions import focus_gradient

    with Detector(um_per_px=4.0, stride=50) as det:
        for f in fields:
            clean, tilted = det.detect(bgr(f.rgb)), det.detect(bgr(focus_gradient(f.rgb, 12.0)))
            assert tilted.in_focus, f.patient  # part of the field is sharp: not a frame-wide no call
            no_call = np.zeros_like(tilted.tissue) if tilted.no_call is None else tilted.no_call
            third = tilted.tissue.shape[1] // 3
            sharp, blurred = np.s_[:, :third], np.s_[:, -third:]
            assert no_call[sharp][tilted.tissue[sharp]].mean() <= 0.1, f.patient
            assert no_call[blurred][tilted.tissue[blurred]].mean() >= 0.8, f.patient
            assert not tilted.idc[blurred][no_call[blurred]].any()
            assert agreement(clean, tilted) >= 0.9, f.patient


def test_the_added_camera_conditions_do_what_they_say():
    from benchmarks.camera_conditions import flicker, focus_gradient, hot_pixels, lateral_colour, stain

    rng = np.random.default_rng(0)
    x = rng.integers(40, 220, (120, 200, 3)).astype(np.uint8)
    g = focus_gradient(x, 8.0)
    np.testing.assert_array_equal(g[:, 0], x[:, 0])                      # sharp at the left edge
    full = cs.defocus(x, sigma_um=8.0)
    assert np.abs(g[:, -1].astype(int) - full[:, -1]).max() <= 1          # σ 8 µm at the right edge
    bands = flicker(x, 0.2, period_px=40)
    row_gain = bands.reshape(120, -1).mean(1) / x.reshape(120, -1).mean(1)
    assert row_gain.max() > 1.08 and row_gain.min() < 0.92               # bright and dark bands
    np.testing.assert_array_equal(flicker(x, 0.0), x)
    fringed = lateral_colour(x, 2.0)
    np.testing.assert_array_equal(fringed[..., 1], x[..., 1])            # green is the reference
    assert (fringed[:10, :10, 0] != x[:10, :10, 0]).mean() > 0.5         # red moved at the corners
    hot = hot_pixels(x, np.random.default_rng(1), 0.02)
    changed = (hot != x).any(axis=2).mean()
    assert 0.05 < changed < 0.6                                          # 2 % of 16 camera pixels per model pixel
    assert np.abs(stain(x, 1.0, 1.0).astype(int) - x).max() <= 1           # unmixing and mixing back is exact
    purple = np.full((4, 4, 3), (120, 60, 160), np.uint8)                  # haematoxylin-rich
    faded = stain(purple, 0.6, 0.6)
    assert (faded.astype(int) > purple).all()                               # less dye lets more light through


@pytest.mark.data
def test_a_faded_slide_keeps_the_calls_of_the_clean_one(data_dir):
    """Stain strength is the slide's and no gate can tell a faded slide from a pale one, so the shipped
    model itself must cope: a slide faded to 0.6 of both stains gives the clean field's decisions and
    finds its IDC (the seed-0 model shipped before agreed 87.5 % and lost IDC here without a word: IDC
    recall 0.97 -> 0.81). IDC is counted against the labels: a call the clean field made on benign
    tissue and the faded one did not is a false alarm gone, not IDC lost."""
    from benchmarks.camera_conditions import COMPLETE_VALIDATION, stain

    fields = slide_fields(data_dir, COMPLETE_VALIDATION, per_patient=2)
    both = same = idc = found_clean = found_faded = 0
    with Detector(um_per_px=4.0, stride=50) as det:
        for f in fields:
            clean, faded = det.detect(bgr(f.rgb)), det.detect(bgr(stain(f.rgb, 0.6, 0.6)))
            assert faded.n_no_call <= 0.05 * faded.n_tissue, f.patient  # called, not refused
            da, db = decision_grid(clean), decision_grid(faded)
            called = (da <= 1) & (db <= 1)
            both += int(called.sum())
            same += int((da[called] == db[called]).sum())
            idc += int((f.labels == 1).sum())
            found_clean += int(((da == 1) & (f.labels == 1)).sum())
            found_faded += int(((db == 1) & (f.labels == 1)).sum())
    assert same / both >= 0.93, same / both
    assert found_faded / idc >= 0.90 and found_faded / idc >= found_clean / idc - 0.05, (found_clean / idc,
                                                                                          found_faded / idc)


@pytest.mark.data
def test_a_run_over_a_moving_stage_says_streaked_once_and_records_it(fields, tmp_path):
    """Through ``idc-edge run`` on an MJPG video: still fields are called, a 64 µm streak (in two
    directions) is no call, recorded as streaked, and said once as motion, not as focus."""
    from benchmarks.camera_conditions import motion_blur

    video = tmp_path / "stage.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5, fields[0].rgb.shape[1::-1])
    for f in fields:
        for altered in (f.rgb, motion_blur(f.rgb, 64), motion_blur(f.rgb, 64, degrees=45)):
            writer.write(bgr(altered))
    writer.release()
    warned, frames = run_recorded(video, tmp_path / "run.jsonl", "--um-per-px", "4")
    assert len(frames) == 3 * len(fields)
    still, streaked = frames[0::3], [r for i, r in enumerate(frames) if i % 3]
    assert all(r["streaked"] is False and r["in_focus"] and r["isotropy"] > 0.75 for r in still), still
    assert all(r["streaked"] is True and r["idc_patches"] == 0 and r["no_call_patches"]["out_of_focus"] ==
               r["tissue_patches"] > 0 and r["isotropy"] < 0.65 for r in streaked), streaked
    assert [line for line in warned if "streaked" in line] and not [line for line in warned if "out of focus" in line]
