"""The noise gate: a frame grainier than the model copes with is "no call", said plainly, whether
or not glass is in view.

The estimates are checked on synthetic frames built here (flat glass beside textured tissue; an
H&E-like field of two stains with no glass at all; with Gaussian or sensor noise of a known
level), which always run, and on validation slides rebuilt from the data set (skipped without
it), noised by ``train.camera_sim.sensor_noise`` at the model's 4 µm/px and at a camera's 1 µm/px,
through the real detector and model and through ``python -m idc_edge run`` on a folder of PNG frames.
"""
from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest

from benchmarks.camera_conditions import slide_fields
from conftest import run_recorded
from idc_edge.colour import TRAINING_GLASS_RGB
from idc_edge.detector import Detector
from idc_edge.errors import OptionError
from idc_edge.focus import ColourOptions, NoiseOptions
from idc_edge.noise import glass_noise, tissue_noise
from idc_edge.overlay import status_text
from idc_edge.tissue import tissue_pixels
from train import camera_sim as cs

LIMIT = NoiseOptions().max_noise
TISSUE_LIMIT = NoiseOptions().max_tissue_noise
#: optical density of one unit of haematoxylin and of eosin per channel (RGB), unit vectors
STAINS = np.array([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11]])
STAINS /= np.linalg.norm(STAINS, axis=1, keepdims=True)


def synthetic_field(rng, glass_share=0.5, size=(300, 500)) -> np.ndarray:
    """RGB uint8 at the model's scale: textured purple-pink "tissue" on the left, flat glass
    (the training glass's colour, a little below clipping) on the right."""
    h, w = size
    rgb = np.empty((h, w, 3), np.uint8)
    rgb[:] = np.round(np.asarray(TRAINING_GLASS_RGB) * 0.95).astype(np.uint8)
    cut = int(round(w * (1.0 - glass_share)))
    texture = cv2.GaussianBlur(rng.normal(0, 40, (h, cut)).astype(np.float32), (0, 0), 1.0)
    tissue = np.stack([170 + texture, 90 + texture, 160 + texture], axis=-1)  # RGB, stained, fine structure
    rgb[:, :cut] = np.clip(tissue, 0, 255).astype(np.uint8)
    return rgb


def he_field(rng, size=(300, 500)) -> np.ndarray:
    """RGB uint8 at the model's scale: H&E-like tissue edge to edge, no glass. Eosin stroma varying
    on coarse and fine scales, haematoxylin nuclei 4–6 px across, a few pale spaces still faintly
    stained; light through both stains by Beer–Lambert (10^-OD), white at 245."""
    h, w = size

    def texture(sigma, scale):
        x = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), sigma)
        return x / x.std() * scale

    eosin = np.clip(0.45 + texture(6, 0.2) + texture(1.0, 0.12), 0.05, None)
    nuclei = np.zeros((h, w), np.float32)
    for _ in range(h * w // 120):
        cv2.circle(nuclei, (int(rng.integers(0, w)), int(rng.integers(0, h))), int(rng.integers(2, 4)), 1.0, -1)
    haematoxylin = 0.12 + 0.9 * cv2.GaussianBlur(nuclei, (0, 0), 0.7) * (0.7 + texture(1.5, 0.15))
    pale = texture(10, 1.0) > 1.6
    eosin[pale] *= 0.15
    haematoxylin[pale] *= 0.15
    od = haematoxylin[..., None] * STAINS[0] + eosin[..., None] * STAINS[1]
    return np.clip(np.round(245.0 * np.power(10.0, -od)), 0, 255).astype(np.uint8)


def png_roundtrip(tmp_path, rgb, name="field.png") -> np.ndarray:
    """The frame as the detector gets it from a PNG file: BGR uint8."""
    path = tmp_path / name
    assert cv2.imwrite(str(path), bgr(rgb))
    return cv2.imread(str(path), cv2.IMREAD_COLOR)


def add_noise(rgb, sigma, rng):
    return np.clip(np.round(rgb + rng.normal(0, sigma, rgb.shape)), 0, 255).astype(np.uint8)


def measure(rgb) -> float:
    return glass_noise(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), rgb)


def bgr(rgb):
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


def test_the_estimate_reads_the_noise_on_glass_and_ignores_the_tissue_texture():
    rng = np.random.default_rng(1)
    field = synthetic_field(rng)
    assert measure(field) < 0.1  # flat glass; the strong texture beside it does not count
    for sigma in (1.5, 3.0, 6.0):
        noisy = add_noise(field, sigma, rng)
        # grey averages the three channels' independent noise: σ_grey = σ · sqrt(0.299² + 0.587² + 0.114²)
        expected = sigma * math.sqrt(0.299 ** 2 + 0.587 ** 2 + 0.114 ** 2)
        assert measure(noisy) == pytest.approx(expected, rel=0.12), sigma


def test_glass_coloured_by_a_cast_in_a_dim_frame_still_shows_its_grain():
    # one stop under with a cool cast: nothing clips, so this glass reads HSV saturation 51 (the slides'
    # glass ~41 at a 20 % cast), past the colour gate's glass limit (45, with grain on most cells): no
    # reading at all, and grain that is no call without the cast was scored with it
    rng = np.random.default_rng(4)
    dim = cs.exposure(synthetic_field(rng), 0.5)
    cast = cs.colour_cast(dim, (0.75, 1.0, 1.25))
    for sigma in (2.0, 4.0):
        plain, coloured = measure(add_noise(dim, sigma, rng)), measure(add_noise(cast, sigma, rng))
        assert not math.isnan(coloured), sigma
        assert coloured == pytest.approx(plain, rel=0.1), sigma
    # tissue that is coloured and bright stays tissue: a field of it edge to edge is not read as glass
    assert math.isnan(measure(add_noise(cs.colour_cast(cs.exposure(he_field(rng), 0.5), (0.75, 1.0, 1.25)), 2.0, rng)))


def test_a_shading_ramp_or_a_few_specks_on_the_glass_are_not_noise():
    rng = np.random.default_rng(2)
    field = synthetic_field(rng).astype(np.float32)
    ramp = np.linspace(-12, 12, field.shape[1], dtype=np.float32)[None, :, None]  # uneven lighting
    shaded = np.clip(field + ramp, 0, 255).astype(np.uint8)
    specks = shaded.copy()
    ys, xs = rng.integers(0, field.shape[0], 60), rng.integers(field.shape[1] // 2, field.shape[1], 60)
    specks[ys, xs] = (120, 110, 115)  # dust: dark single pixels in the glass
    assert measure(shaded) < 0.1
    assert measure(specks) < 0.5


def test_too_little_glass_is_not_judged_on_the_glass_but_the_tissue_is():
    rng = np.random.default_rng(3)
    covered = add_noise(synthetic_field(rng, glass_share=0.02), 8.0, rng)  # tissue edge to edge, grainy
    assert math.isnan(measure(covered))
    with Detector(um_per_px=4.0) as det:
        r = det.detect(bgr(covered))
    assert math.isnan(r.noise) and r.to_dict()["noise"] is None
    # this tissue's texture is grey (one colour direction), so the other two carry only the noise
    assert r.tissue_noise == pytest.approx(8.0, rel=0.1) and r.to_dict()["tissue_noise"] == pytest.approx(8.0, rel=0.1)
    assert r.noise_ok == (r.tissue_noise <= TISSUE_LIMIT)


def test_the_tissue_estimate_reads_each_channels_noise_and_not_the_two_stains_texture():
    rng = np.random.default_rng(10)
    field = he_field(rng)
    tissue = tissue_pixels(field)
    assert tissue.mean() > 0.95 and math.isnan(measure(field))  # no glass to judge on
    assert tissue_noise(field, tissue) < 1.0  # the stains' fine structure lies in their own plane
    for sigma in (3.0, 6.0, 10.0):
        noisy = add_noise(field, sigma, rng)
        assert tissue_noise(noisy, tissue_pixels(noisy)) == pytest.approx(sigma, rel=0.1), sigma
    assert math.isnan(tissue_noise(field, np.zeros(field.shape[:2], np.uint8)))  # no tissue: nothing to judge
    # a channel clipped on the tissue varies by nothing there; such pixels are left out, not read as quiet
    clipped = add_noise(field, 10.0, rng)
    clipped[:, :200, 2] = 255
    assert tissue_noise(clipped, tissue_pixels(clipped)) == pytest.approx(10.0, rel=0.1)


def test_a_grainy_field_without_glass_is_no_call_and_the_clean_one_is_called(tmp_path):
    rng = np.random.default_rng(11)
    field = he_field(rng)
    clean_frame = png_roundtrip(tmp_path, field, "clean.png")
    # 60 e⁻ at white at the model's scale: beyond the model (it agrees < 90 % from about 100 e⁻)
    grainy_frame = png_roundtrip(tmp_path, cs.sensor_noise(field, rng, full_well_e=60.0), "grainy.png")
    with Detector(um_per_px=4.0) as det:
        clean, grainy = det.detect(clean_frame), det.detect(grainy_frame)
    assert math.isnan(clean.noise) and math.isnan(grainy.noise)  # neither shows glass
    assert clean.noise_ok and clean.tissue_noise < 0.25 * TISSUE_LIMIT
    assert clean.n_tissue > 0 and clean.n_no_call == 0
    assert not grainy.noise_ok and grainy.tissue_noise > TISSUE_LIMIT
    assert grainy.n_idc == 0 and grainy.n_no_call == grainy.n_tissue > 0
    assert grainy.to_dict()["no_call_patches"]["noise"] == grainy.n_tissue
    assert status_text(grainy).startswith("NOISY: no call")


def test_a_grainy_field_without_glass_from_a_camera_at_1_um_per_px_is_no_call():
    rng = np.random.default_rng(12)
    field = he_field(rng, size=(240, 250))  # 60,000 px at the model's scale
    camera = cs.to_camera_scale(field, 1.0)
    # per camera pixel: 100 e⁻ at white the model copes with (16 pixels averaged), 6 e⁻ it does not
    bright = cs.sensor_noise(camera, rng, full_well_e=100.0, read_noise_e=2.0)
    starved = cs.sensor_noise(camera, rng, full_well_e=6.0, read_noise_e=2.0)
    with Detector(um_per_px=1.0, stride=50) as det:
        ok, dark = det.detect(bgr(bright)), det.detect(bgr(starved))
    assert ok.noise_ok and ok.tissue_noise < 0.5 * TISSUE_LIMIT
    assert not dark.noise_ok and dark.tissue_noise > TISSUE_LIMIT and dark.n_no_call == dark.n_tissue > 0


def test_grain_that_hides_the_glass_is_caught_by_the_tissue_looking_sharper_than_any_slide():
    rng = np.random.default_rng(9)
    covered = synthetic_field(rng, glass_share=0.0)  # no glass to measure on
    with Detector(um_per_px=4.0) as det:
        clean = det.detect(bgr(covered))
        grainy = det.detect(bgr(add_noise(covered, 40.0, rng)))
    assert clean.noise_ok and clean.sharpness < NoiseOptions().max_sharpness
    assert math.isnan(grainy.noise) and grainy.sharpness > NoiseOptions().max_sharpness
    assert not grainy.noise_ok and grainy.n_no_call == grainy.n_tissue > 0
    # said as grain, not as the tint its noise gives the brightest pixels, whichever grain rule fires:
    # here only the sharpness one (the tissue's own reading switched off), decided after the colour's
    with Detector(um_per_px=4.0, noise=NoiseOptions(max_tissue_noise=1000.0)) as det:
        grainier = det.detect(bgr(add_noise(covered, 60.0, rng)))
    assert not grainier.noise_ok and grainier.pale_cast > ColourOptions().max_brightest_cast
    assert grainier.colour_ok and status_text(grainier).startswith("NOISY: no call"), grainier.to_dict()


def test_noise_options_are_checked_and_the_gate_can_be_switched_off():
    for bad in ({"max_noise": 0}, {"max_noise": float("nan")}, {"min_glass_px": 0}, {"max_sharpness": -1},
                {"max_tissue_noise": 0}, {"max_tissue_noise": float("inf")}, {"min_tissue_px": 1.5},
                {"enabled": "yes"}):
        with pytest.raises(OptionError, match=next(iter(bad))):
            NoiseOptions(**bad)
    with pytest.raises(OptionError, match="noise"):
        Detector(noise="loud")
    rng = np.random.default_rng(4)
    noisy = add_noise(synthetic_field(rng), 12.0, rng)
    with Detector(um_per_px=4.0, noise=NoiseOptions(enabled=False)) as det:
        r = det.detect(bgr(noisy))
    assert r.noise_ok and math.isnan(r.noise) and math.isnan(r.tissue_noise)


def test_a_noisy_synthetic_frame_is_no_call_for_every_tissue_patch_and_says_why():
    rng = np.random.default_rng(5)
    field = synthetic_field(rng)
    # a 1 µm/px camera: its frame is 4× larger, and the rescale averages 16 of its pixels into one,
    # so 4× the σ is needed at the camera for the same noise where the model looks
    camera = cv2.resize(field, None, fx=4, fy=4, interpolation=cv2.INTER_NEAREST)
    with Detector(um_per_px=1.0, stride=25) as det:
        quiet = det.detect(bgr(add_noise(camera, 4 * 1.0, rng)))
        loud = det.detect(bgr(add_noise(camera, 4 * 2.5 * LIMIT, rng)))
    assert quiet.noise_ok and quiet.noise < 0.5 * LIMIT
    assert not loud.noise_ok and loud.noise > LIMIT
    assert loud.n_tissue > 0 and loud.n_no_call == loud.n_tissue and loud.n_idc == 0
    assert np.isnan(loud.probabilities[loud.tissue]).all()
    record = json.loads(json.dumps(loud.to_dict()))
    assert record["noise_ok"] is False and record["noise"] > LIMIT
    assert record["no_call_patches"]["noise"] == loud.n_tissue == sum(record["no_call_patches"].values())
    assert status_text(loud).startswith("NOISY: no call (more light or a longer exposure)")


# -- real slides ---------------------------------------------------------------------------------

@pytest.fixture
def glass_fields(data_dir):
    """Validation fields that show enough glass for the noise to be judged."""
    found = [f for f in slide_fields(data_dir, ("8867", "8914", "9023", "9036"), per_patient=2, min_tissue=0.3, seed=3)
             if not math.isnan(measure(f.rgb))]
    if len(found) < 3:
        pytest.skip("too few validation fields with glass in view")
    return found[:4]


@pytest.mark.data
def test_real_clean_fields_pass_and_sensor_noise_beyond_the_model_is_no_call(glass_fields):
    rng = np.random.default_rng(6)
    with Detector(um_per_px=4.0, stride=50) as det:
        for f in glass_fields:
            clean = det.detect(bgr(f.rgb))
            assert clean.noise_ok and clean.noise < 1.0, (f.patient, clean.noise)
            mild = det.detect(bgr(cs.sensor_noise(f.rgb, rng, full_well_e=1000.0)))  # the model keeps 99 %
            assert mild.noise_ok, (f.patient, mild.noise)
            starved = det.detect(bgr(cs.sensor_noise(f.rgb, rng, full_well_e=70.0)))  # the model changes > 10 %
            assert not starved.noise_ok and starved.n_idc == 0 and starved.n_no_call == starved.n_tissue > 0, \
                (f.patient, starved.noise)


@pytest.mark.data
def test_the_noise_is_judged_at_the_models_scale_for_a_camera_at_1_um_per_px(glass_fields):
    rng = np.random.default_rng(7)
    with Detector(um_per_px=1.0, stride=50) as det:
        for f in glass_fields[:2]:
            camera = cs.to_camera_scale(f.rgb, 1.0)
            # 100 e⁻ at white per camera pixel is starved at 4 µm/px, but 16 pixels are averaged into one here
            fine = det.detect(bgr(cs.sensor_noise(camera, rng, full_well_e=100.0)))
            assert fine.noise_ok, (f.patient, fine.noise)
            dark = det.detect(bgr(cs.sensor_noise(camera, rng, full_well_e=4.0)))
            assert not dark.noise_ok and dark.n_idc == 0, (f.patient, dark.noise)


@pytest.mark.data
def test_real_fields_without_glass_are_judged_on_their_tissue(data_dir):
    found = [f for f in slide_fields(data_dir, ("8867", "9023", "9036", "9078"), per_patient=2, min_tissue=0.9, seed=5)
             if math.isnan(measure(f.rgb))]
    if len(found) < 2:
        pytest.skip("too few validation fields without glass in view")
    rng = np.random.default_rng(13)
    with Detector(um_per_px=4.0, stride=50) as det:
        for f in found[:3]:
            clean = det.detect(bgr(f.rgb))
            assert clean.noise_ok and math.isnan(clean.noise) and clean.tissue_noise < 0.5 * TISSUE_LIMIT, f.patient
            # 100 e⁻ at white at the model's scale: the model agrees with its clean answer on 89 % of patches
            starved = det.detect(bgr(cs.sensor_noise(f.rgb, rng, full_well_e=100.0)))
            assert not starved.noise_ok and math.isnan(starved.noise), (f.patient, starved.tissue_noise)
            assert starved.n_idc == 0 and starved.no_call_noise == starved.n_tissue > 0


@pytest.mark.data
def test_run_on_noisy_frames_warns_once_and_records_the_reason(glass_fields, tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    rng = np.random.default_rng(8)
    for i, f in enumerate(glass_fields[:2]):
        cv2.imwrite(str(frames / f"f{2 * i}.png"), bgr(f.rgb))
        cv2.imwrite(str(frames / f"f{2 * i + 1}.png"), bgr(cs.sensor_noise(f.rgb, rng, full_well_e=60.0)))
    warned, records = run_recorded(frames, tmp_path / "run.jsonl", "--um-per-px", "4")
    warnings = [line for line in warned if "too noisy" in line]
    assert len(warnings) == 1 and "more light" in warnings[0], warned
    assert [r["noise_ok"] for r in records] == [True, False, True, False]
    for r in records[1::2]:
        # every tissue patch without a call, each under one reason (a clipped one counts as exposure)
        assert r["idc_patches"] == 0 and sum(r["no_call_patches"].values()) == r["tissue_patches"] > 0
        assert r["no_call_patches"]["noise"] > 0


def test_run_on_grainy_frames_without_glass_records_the_tissue_reading_and_warns_once(tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    rng = np.random.default_rng(14)
    for i in range(2):
        field = he_field(rng)
        cv2.imwrite(str(frames / f"f{2 * i}.png"), bgr(field))
        cv2.imwrite(str(frames / f"f{2 * i + 1}.png"), bgr(cs.sensor_noise(field, rng, full_well_e=60.0)))
    warned, records = run_recorded(frames, tmp_path / "run.jsonl", "--um-per-px", "4")
    warnings = [line for line in warned if "too noisy" in line]
    assert len(warnings) == 1 and "glass or tissue" in warnings[0], warned
    assert [r["noise_ok"] for r in records] == [True, False, True, False]
    assert all(r["noise"] is None for r in records)  # no glass in any of them: the tissue judged
    assert all(r["tissue_noise"] < 0.25 * TISSUE_LIMIT for r in records[::2])
    for r in records[1::2]:
        assert r["tissue_noise"] > TISSUE_LIMIT and r["idc_patches"] == 0
        assert r["no_call_patches"]["noise"] == r["tissue_patches"] > 0
