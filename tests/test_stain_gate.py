"""Stains coloured as H&E's or not: red and blue swapped (RGB frames given as BGR) is no call, said so.

The reading (:func:`idc_edge.stains.stain_blueness`) is checked on validation_fields made by Beer–Lambert from
published H&E stain directions (no data needed) and on the data set's own slides; the gate end to
end through ``Detector.detect`` and through ``python -m idc_edge run`` on a video written here.
"""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from benchmarks.camera_conditions import decision_grid, hue_shift
from conftest import run_recorded
from idc_edge.detector import Detector
from idc_edge.focus import ColourOptions
from idc_edge.overlay import status_text
from idc_edge.stains import MIN_STAIN_BLUENESS, stain_reading
from idc_edge.tissue import tissue_pixels
from train import camera_sim as cs

# optical density per unit of stain, RGB (Ruifrok & Johnston, Anal Quant Cytol Histol 2001)
HAEMATOXYLIN = np.array([0.65, 0.70, 0.29])
EOSIN = np.array([0.07, 0.99, 0.11])
GLASS = np.array([242.0, 238.0, 240.0])


def he_field(seed: int = 0, size=(270, 480)) -> np.ndarray:
    """An RGB uint8 field of H&E by Beer–Lambert: eosin-stained stroma with haematoxylin nuclei
    (blobs of about 2–4 px, as at 4 µm/px), glass on the left fifth, a little camera grain."""
    rng = np.random.default_rng(seed)
    h, w = size
    eosin = 0.35 + 0.25 * cv2.GaussianBlur(rng.random(size).astype(np.float32), (0, 0), 4) * 4
    nuclei = np.zeros(size, np.float32)
    for y, x, r in zip(rng.integers(0, h, 900), rng.integers(0, w, 900), rng.uniform(1.0, 2.0, 900)):
        cv2.circle(nuclei, (int(x), int(y)), int(round(r)), float(rng.uniform(0.5, 1.2)), -1)
    nuclei = cv2.GaussianBlur(nuclei, (0, 0), 0.8)
    od = eosin[..., None] * EOSIN + nuclei[..., None] * HAEMATOXYLIN
    od[:, : w // 5] = 0.0
    rgb = GLASS * np.exp(-od) + rng.normal(0, 1.5, (h, w, 3))
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def swapped(image: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(image[..., ::-1])


def reading(rgb: np.ndarray):
    return stain_reading(rgb, tissue_pixels(rgb))


def pigmented(seed: int, width_share: float) -> np.ndarray:
    """:func:`he_field` with a strip of orange-brown pigment (haemosiderin, a marking dye: absorbs blue
    most, red least) ``width_share`` of the field wide on the glass beside the tissue."""
    rgb = he_field(seed).astype(np.float64)
    h, w = rgb.shape[:2]
    od = -np.log(np.maximum(rgb, 1.0) / GLASS)
    strip = int(width_share * w)
    x0 = w // 5 - strip - 2
    od[:, x0:x0 + strip] += (0.8 + 0.8 * np.random.default_rng(seed).random((h, strip)))[..., None] * BROWN
    return np.clip(np.rint(GLASS * np.exp(-od)), 0, 255).astype(np.uint8)


# optical density per unit of an orange-brown pigment, RGB
BROWN = np.array([0.30, 0.55, 0.95])


def test_a_third_colour_at_the_extremes_does_not_turn_the_reading_over():
    # brown took haematoxylin's place at the extremes: H&E read -0.8 to -1.1 (swapped) and swapped H&E +0.8
    for seed in range(2):
        for share in (0.02, 0.06):
            field = pigmented(seed, share)
            assert reading(field).contrast > 0.6 and reading(swapped(field)).contrast < MIN_STAIN_BLUENESS


# optical density per unit of blood in a vessel (red cells after H&E: absorbs blue more than green), RGB,
# as read on blood-filled vessels of patient 8867
BLOOD = np.array([0.32, 1.19, 1.31])


def with_vessel(seed: int) -> np.ndarray:
    """:func:`he_field` with a vessel filled with blood (a band of saturated red, 6 % of the field)
    across the tissue."""
    rng = np.random.default_rng(seed)
    rgb = he_field(seed).astype(np.float64)
    h, w = rgb.shape[:2]
    vessel = np.zeros((h, w), np.float32)
    cv2.ellipse(vessel, (w // 2 + 40, h // 2), (150, 14), 20, 0, 360, 1.0, -1)
    vessel = cv2.GaussianBlur(vessel, (0, 0), 1.0)[..., None]
    od = -np.log(np.maximum(rgb, 1.0) / GLASS) * (1.0 - vessel) + vessel * (1.0 + 0.4 * rng.random((h, w, 1))) * BLOOD
    return np.clip(np.rint(GLASS * np.exp(-od)), 0, 255).astype(np.uint8)


def test_blood_in_a_vessel_does_not_turn_the_reading_over_either_way():
    # the vessel's red took haematoxylin's place at the extremes: H&E read -1.3 (swapped), swapped H&E +1.3
    for seed in range(3):
        field = with_vessel(seed)
        assert reading(field).contrast > 0.6 and reading(swapped(field)).contrast < -0.6


@pytest.mark.data
def test_frames_of_the_first_command_with_blood_filled_vessels_are_h_and_e_and_swapped_they_are_not(data_dir):
    from idc_edge.sources import open_source

    with open_source(str(data_dir / "8867")) as source:
        frames = []  # README's first command: these two were no call as "red and blue swapped" (-1.3, -1.4)
        for frame in source:
            if frame.index in (65, 206):
                frames.append(frame.image)
            if frame.index >= 206:
                break
    assert len(frames) == 2
    with Detector() as det:
        for bgr in frames:
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            assert reading(rgb).contrast > 0.8 and reading(swapped(rgb)).contrast < -0.8
            assert det.detect(bgr).stain_ok and not det.detect(rgb).stain_ok


@pytest.mark.data
def test_a_field_of_the_data_set_with_pigment_is_h_and_e_and_swapped_it_is_not(data_dir):
    from idc_edge.dataset import scan_dataset
    from idc_edge.sources.stage import build_mosaic

    records = scan_dataset(data_dir, ["8867"])
    slide_bgr, _, _ = build_mosaic(records)  # its origin is the smallest patch x and y
    x, y = 100 - min(r.x for r in records), 100 - min(r.y for r in records)
    field = cv2.cvtColor(slide_bgr[y:y + 480, x:x + 640], cv2.COLOR_BGR2RGB)  # brown pigment at its left edge
    assert reading(field).contrast > 1.0 and reading(swapped(field)).contrast < -1.0  # read -1.2 / +1.2 before
    with Detector() as det:
        assert det.detect(cv2.cvtColor(field, cv2.COLOR_RGB2BGR)).stain_ok
        assert not det.detect(field).stain_ok


def test_h_and_e_reads_blue_haematoxylin_and_pink_eosin_and_swapped_channels_read_their_negatives():
    for seed in range(3):
        rgb = he_field(seed)
        clean, flipped = reading(rgb), reading(swapped(rgb))
        # Ruifrok's directions: haematoxylin log(0.65 / 0.29) = 0.81, eosin log(0.07 / 0.11) = -0.45; every
        # nucleus lies on stroma, so the extremes found mix the two a little (0.53 and -0.53 here)
        assert 0.3 < clean.haematoxylin < 0.9 and -0.8 < clean.eosin < -0.3
        assert clean.contrast > 0.5
        assert flipped.haematoxylin == pytest.approx(-clean.haematoxylin, abs=0.05)
        assert flipped.eosin == pytest.approx(-clean.eosin, abs=0.05)
        assert flipped.contrast == pytest.approx(-clean.contrast, abs=0.1) and flipped.contrast < MIN_STAIN_BLUENESS


def test_casts_exposure_and_gamma_do_not_move_the_reading_across_the_limit():
    rgb = he_field(4)
    clean = reading(rgb)
    for changed in (cs.colour_cast(rgb, (0.85, 1.0, 1.15)), cs.colour_cast(rgb, (1.15, 1.0, 0.85)),
                    cs.exposure(rgb, 0.6), cs.exposure(rgb, 1.0, 1.4)):
        r = reading(changed)
        assert r.contrast > 0.5 * clean.contrast and r.eosin < 0.5 * clean.eosin


def test_too_little_stained_tissue_is_not_judged():
    rgb = he_field(5)
    glass = np.full((270, 480, 3), GLASS, np.uint8)
    for image, mask in ((rgb, np.zeros(rgb.shape[:2], np.uint8)), (glass, np.ones((270, 480), np.uint8)),
                        (rgb[:1, :1], np.ones((1, 1), np.uint8))):  # no tissue; no density anywhere; one pixel
        r = stain_reading(image, mask)
        assert np.isnan(r.haematoxylin) and np.isnan(r.eosin) and np.isnan(r.contrast)


def test_a_swapped_frame_is_no_call_named_as_stain_colours_and_the_gate_can_be_switched_off():
    rgb = he_field(6)
    with Detector(um_per_px=4.0, stride=50) as det, \
            Detector(um_per_px=4.0, stride=50, colour=ColourOptions(enabled=False)) as ungated:
        clean = det.detect(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        assert clean.stain_ok and clean.colour_ok and clean.stain_blueness > 0.5
        bad = det.detect(rgb)  # RGB given where BGR is expected
        assert not bad.stain_ok and not bad.colour_ok
        assert bad.n_tissue > 0 and bad.n_no_call == bad.n_tissue and bad.n_idc == 0
        record = json.loads(json.dumps(bad.to_dict()))
        assert record["stain_ok"] is False and record["stain_blueness"] < MIN_STAIN_BLUENESS
        assert record["no_call_patches"]["colour"] == bad.n_tissue
        assert status_text(bad).startswith("STAIN COLOURS: no call")
        assert status_text(clean).startswith("IDC")
        off = ungated.detect(rgb)
        assert off.stain_ok and np.isnan(off.stain_blueness) and off.n_no_call == 0


@pytest.mark.data
def test_real_slides_are_called_and_swapped_or_hue_turned_they_are_no_call(validation_fields):
    turned_no_call = 0
    with Detector(um_per_px=4.0, stride=50) as det:
        for f in validation_fields:
            clean = det.detect(cv2.cvtColor(f.rgb, cv2.COLOR_RGB2BGR))
            assert clean.stain_ok and clean.stain_blueness > 0.3, (f.patient, clean.stain_blueness)
            bad = det.detect(f.rgb)
            assert not bad.stain_ok and bad.n_idc == 0 and bad.n_no_call == bad.n_tissue > 0, f.patient
            assert bad.stain_blueness == pytest.approx(-clean.stain_blueness, abs=0.1)
            turned = det.detect(cv2.cvtColor(hue_shift(f.rgb, 40), cv2.COLOR_RGB2BGR))  # the camera's hue control
            turned_no_call += not turned.stain_ok
            # the grain the model copes with is not read as a stain problem
            grainy = det.detect(cv2.cvtColor(cs.CONDITIONS["noise"][1].apply(f.rgb, np.random.default_rng(0)),
                                             cv2.COLOR_RGB2BGR))
            assert grainy.stain_ok, (f.patient, grainy.stain_blueness)
            assert (decision_grid(grainy) <= 1).sum() > 0
    assert turned_no_call >= 0.75 * len(validation_fields)  # 260 of 264 fields of 33 slides


@pytest.mark.data
def test_run_on_an_rgb_video_says_the_channels_look_swapped_once_and_records_no_call(validation_fields, tmp_path):
    video = tmp_path / "rgb.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5, (500, 300))
    for f in validation_fields[:3]:
        for _ in range(2):
            writer.write(f.rgb)  # RGB written where OpenCV's writer expects BGR
    writer.release()
    warned, frames = run_recorded(video, tmp_path / "run.jsonl", "--um-per-px", "4")
    stain = [line for line in warned if "stains are not coloured" in line]
    assert len(stain) == 1 and "BGR" in stain[0] and "swapped" in stain[0], warned
    assert not [line for line in warned if "colour cast" in line]  # not told to calibrate white
    assert len(frames) == 6
    assert all(r["stain_ok"] is False and r["idc_patches"] == 0 and r["no_call_patches"]["colour"] > 0
               for r in frames)
