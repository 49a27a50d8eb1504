"""White balance, exposure check, glass drift, profiles and micrometer scale: real PNGs written and read back."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from idc_edge.colour import (TRAINING_GLASS_RGB, CalibrationError, ExposureCheckOptions, GlassDrift, WhiteBalance,
                             measure_white)
from idc_edge.sources.modes import CameraMode
from idc_edge.micrometer import measure_ticks
from idc_edge.profiles import Profile, ProfileError, load_or_new_profile, load_profile, profile_path, save_profile


def glass_frame(rgb, shape=(480, 640), noise=3.0, seed=0):
    """A BGR frame of blank glass of colour ``rgb`` with camera noise and a few dust specks."""
    rng = np.random.default_rng(seed)
    frame = np.empty((*shape, 3), np.float32)
    frame[:] = rgb[::-1]
    frame += rng.normal(0, noise, frame.shape)
    for _ in range(20):
        y, x = rng.integers(0, shape[0] - 6), rng.integers(0, shape[1] - 6)
        frame[y:y + 5, x:x + 5] = 40
    return np.clip(frame + 0.5, 0, 255).astype(np.uint8)


def roundtrip_png(tmp_path, image, name="frame.png"):
    path = tmp_path / name
    assert cv2.imwrite(str(path), image)
    back = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert back is not None
    return back


def test_white_gains_undo_a_known_cast_and_exposure(tmp_path):
    # glass that should be the training glass, seen through a cool cast (R ×0.8, B ×1.05) at 0.7 exposure
    cast = np.array([0.8, 1.0, 1.05]) * 0.7
    seen = np.array(TRAINING_GLASS_RGB) * cast
    frame = roundtrip_png(tmp_path, glass_frame(seen))
    cal = measure_white(frame)
    np.testing.assert_allclose(cal.gains_rgb, 1.0 / cast, rtol=0.01)
    balanced = WhiteBalance.from_calibration(cal).apply(frame)
    glass_now = np.median(balanced.reshape(-1, 3), axis=0)[::-1]
    np.testing.assert_allclose(glass_now, TRAINING_GLASS_RGB, atol=2.0)
    assert cal.uniformity > 0.95 and cal.clipped_fraction == 0.0


def lit_glass(shape=(720, 1280), spots=(), noise=3.0, vignette=0.3, seed=0):
    """BGR blank glass lit unevenly (corners ``vignette`` darker in the square of the radius), with
    camera noise and soft dust shadows ``(y, x, radius_px, share_of_light_taken)``."""
    rng = np.random.default_rng(seed)
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    light = 1.0 - vignette * ((xx - w / 2) ** 2 + (yy - h / 2) ** 2) / ((w / 2) ** 2 + (h / 2) ** 2)
    for cy, cx, radius, depth in spots:
        light *= 1.0 - depth * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * radius ** 2))
    frame = np.stack([light * c for c in (240, 238, 242)], -1) + rng.normal(0, noise, (h, w, 3))
    return np.clip(frame + 0.5, 0, 255).astype(np.uint8)


def test_white_calibration_counts_dust_spots_and_not_vignetting_or_noise():
    for clean in (lit_glass(), lit_glass(noise=8.0), lit_glass(vignette=0.6), lit_glass(shape=(480, 640))):
        cal = measure_white(clean)
        assert (cal.dust_spots, cal.darkest_spot) == (0, 0.0)
    dusty = measure_white(lit_glass(spots=[(200, 300, 12, 0.4), (500, 900, 20, 0.6), (360, 640, 8, 0.3)]))
    assert dusty.dust_spots == 3 and dusty.darkest_spot == pytest.approx(0.6, abs=0.05)
    # a dark field-stop edge is not dust
    stopped = lit_glass()
    stopped[:, :40] = 10
    assert measure_white(stopped).dust_spots == 0


def test_white_balance_lut_equals_the_float_gain_and_rgb_order_is_kept():
    rng = np.random.default_rng(2)
    bgr = rng.integers(0, 256, (37, 41, 3), dtype=np.uint8)
    wb = WhiteBalance((1.2, 1.0, 0.8))  # R, G, B
    out = wb.apply(bgr)
    expect = np.clip(np.round(bgr.astype(np.float64) * np.array([0.8, 1.0, 1.2])), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(out, expect)
    np.testing.assert_array_equal(wb.apply_rgb(bgr[..., ::-1].copy()), expect[..., ::-1])


def test_a_frame_of_noise_is_refused_as_not_glass_not_as_overexposed():
    # a camera's pure noise (lens cap on with the gain up, a broken stream) has 2-3 % of its pixels at 255:
    # it was refused as "overexposed", sending the user to lower an exposure that was not the fault
    noise = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    with pytest.raises(CalibrationError, match="does not look like blank glass"):
        measure_white(noise)
    half_clipped = glass_frame(np.array((250.0, 250.0, 250.0)), noise=0.0)
    half_clipped[:, : half_clipped.shape[1] // 2] = 255  # flat glass, half of it clipped: still overexposure
    with pytest.raises(CalibrationError, match="overexposed"):
        measure_white(half_clipped)


@pytest.mark.parametrize("level, match", [((255, 255, 255), "overexposed"), ((40, 45, 50), "too dark"),
                                          ((200, 62, 200), "gain of")])
def test_white_calibration_fails_with_bad_exposure(level, match):
    frame = glass_frame(np.array(level, float), noise=0.0)
    with pytest.raises(CalibrationError, match=match):
        measure_white(frame, options=ExposureCheckOptions(max_gain=3.0))


def test_glass_drift_warns_once_when_the_glass_colour_moves():
    drift = GlassDrift(max_change=0.08)
    rgb = glass_frame(np.array(TRAINING_GLASS_RGB))[..., ::-1].copy()
    assert drift.update(rgb) is None
    warm = np.clip(rgb * np.array([1.0, 0.95, 0.8]), 0, 255).astype(np.uint8)
    message = drift.update(warm)
    assert message is not None and "drifted" in message and "calibrate white" in message
    assert drift.update(warm) is None              # said once
    assert drift.update(rgb) is None                # back within the limit
    assert drift.update(warm) is not None           # drifts again: said again
    # a frame full of tissue has no glass to judge
    assert drift.measure(np.full((50, 50, 3), (180, 90, 160), np.uint8)).glass_rgb is None


def test_profile_round_trip_through_the_xdg_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    p = Profile(name="olympus-10x", camera='/dev/v4l/by-id/usb-"odd"\\name', mode=CameraMode(1920, 1080, 30.0, "mjpg"),
                white_gains_rgb=(1.1, 1.0, 0.9), glass_rgb=(220.0, 238.0, 266.7), target_rgb=TRAINING_GLASS_RGB,
                exposure={"clipped_fraction": 0.0, "uniformity": 0.93, "locked": True})
    p = p.with_scale(1.0125, (1920, 1080), 10.0)
    path = save_profile(p)
    assert path == tmp_path / "cfg" / "idc-edge" / "profiles" / "olympus-10x.toml"
    back = load_profile("olympus-10x")
    assert back == p
    assert back.mode.fourcc == "MJPG"
    back.check_frame_size(1920, 1080)
    with pytest.raises(ProfileError, match=r"ask the camera for size=1920x1080 ") as e:
        back.check_frame_size(1280, 720)
    assert "--" not in str(e.value).split("`")[0]  # the command line says --size (tests/test_option_words.py)
    assert load_or_new_profile("new-one") == Profile(name="new-one")


@pytest.mark.parametrize("text, match", [
    (None, "does not exist"),
    ("camera = [1, 2\n", "not valid TOML"),
    ("[scale]\num_per_px = -1.0\nframe_width = 10\nframe_height = 10\n", "scale.um_per_px must be a number > 0"),
    ("[scale]\num_per_px = 1.0\n", "frame size it was measured at"),
    ("[white]\ngains_rgb = [1.0, 2.0]\n", "white.gains_rgb must be three numbers"),
    ("[mode]\nwidth = 640\n", "both width and height"),
    ("mode = 3\n", r"\[mode\] must be a table"),
])
def test_load_profile_fails_with_a_missing_or_corrupt_file_naming_it(tmp_path, monkeypatch, text, match):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    path = profile_path("scope")
    if text is not None:
        path.parent.mkdir(parents=True)
        path.write_text(text)
    with pytest.raises(ProfileError, match=match) as info:
        load_profile("scope")
    assert str(path) in str(info.value)


def test_profile_names_cannot_escape_the_folder():
    with pytest.raises(ProfileError, match="may use only"):
        profile_path("..")
    assert profile_path("some/dir/x.toml").name == "x.toml"


def ruler_image(period_px, angle_deg, shape=(600, 800), seed=0, long_every=5):
    """A BGR stage micrometer: dark ticks ``period_px`` apart on bright glass, every 5th longer, rotated."""
    h, w = shape
    scale = 8  # draw at 8× and shrink, so tick positions are sub-pixel exact
    big = np.full((h * scale, w * scale), 235, np.uint8)
    cy = h * scale // 2
    n = int(w / period_px) + 2
    for i in range(-n // 2, n + n // 2):
        x = int(round((i * period_px) * scale))
        length = 90 if i % long_every == 0 else 55
        cv2.rectangle(big, (x - scale, cy - length * scale // 2), (x + scale, cy + length * scale // 2), 40, -1)
    cv2.line(big, (0, cy + 46 * scale), (w * scale, cy + 46 * scale), 40, 2 * scale)
    img = cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA)
    rot = cv2.getRotationMatrix2D((w / 2, h / 2), angle_deg, 1.0)
    img = cv2.warpAffine(img, rot, (w, h), flags=cv2.INTER_LINEAR, borderValue=235)
    img = cv2.GaussianBlur(img, (0, 0), 0.7)
    rng = np.random.default_rng(seed)
    img = np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8)
    return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)


@pytest.mark.parametrize("period, angle", [(12.37, 3.0), (9.8, -7.5), (41.3, 1.0), (30.0, 0.0), (5.5, 45.0)])
def test_micrometer_period_is_found_on_a_rotated_ruler(tmp_path, period, angle):
    image = roundtrip_png(tmp_path, ruler_image(period, angle))
    m = measure_ticks(image)
    assert m.period_px == pytest.approx(period, rel=0.003)
    assert abs(((m.angle_deg + 90) % 180) - 90 + angle) < 1.0 or abs(((m.angle_deg + 90) % 180) - 90 - angle) < 1.0
    assert m.um_per_px(10.0) == pytest.approx(10.0 / period, rel=0.003)


def test_micrometer_image_without_ticks_is_a_calibration_error(tmp_path):
    blank = roundtrip_png(tmp_path, glass_frame(np.array([230.0, 230, 230]), noise=4.0))
    with pytest.raises(CalibrationError, match="no regular ruler ticks"):
        measure_ticks(blank)
    rng = np.random.default_rng(5)
    texture = cv2.GaussianBlur(rng.integers(0, 255, (400, 500), dtype=np.uint8), (0, 0), 3)
    with pytest.raises(CalibrationError, match="no regular ruler ticks"):
        measure_ticks(roundtrip_png(tmp_path, texture, "texture.png"))


def test_a_white_reference_of_tissue_or_a_few_pixels_is_refused_and_noisy_or_tinted_glass_is_not(data_dir):
    """Gains measured on tissue read its pink as the glass and tinted every frame of the run; the
    frame must be blank glass (flat, not coloured like stained tissue), and big enough to judge."""
    from benchmarks.camera_conditions import slide_fields

    fields = slide_fields(data_dir, ("8867", "9076"), per_patient=2, min_tissue=0.9)
    assert fields
    for f in fields:
        for frame in (f.rgb, cv2.resize(f.rgb, (2000, 1200), interpolation=cv2.INTER_LINEAR)):  # 4 and 1 µm/px
            with pytest.raises(CalibrationError, match="does not look like blank glass"):
                measure_white(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    with pytest.raises(CalibrationError, match="at least 32 px"):
        measure_white(np.full((1, 1, 3), 240, np.uint8))
    for rgb, noise in (((218, 214, 216), 8.0), ((150, 215, 240), 3.0), ((240, 215, 165), 3.0)):
        cal = measure_white(glass_frame(np.array(rgb, float), noise=noise))  # noisy glass, cool and warm lamps
        np.testing.assert_allclose(np.array(cal.glass_rgb), rgb, atol=6)  # the brighter half: a little above
