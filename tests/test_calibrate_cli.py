"""idc-edge calibrate white|scale and run --profile, end to end in subprocesses on real PNGs and videos.

The white-balance round trip uses real slide frames (the data set rebuilt as a slide, skipped
without the data): a cast and under-exposed copy of the video, run with the profile that blank
glass seen through the same cast gives, must call the same patches IDC as the original.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest

from idc_edge.colour import TRAINING_GLASS_RGB
from idc_edge.record import read_records
from idc_edge.sources import MosaicSource
from test_calibration import glass_frame, ruler_image

CAST_RGB = np.array([0.78, 0.9, 0.96])  # a warm lamp seen through an under-exposing camera


def cli(tmp_path, *args, timeout=180):
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config")}
    return subprocess.run([sys.executable, "-m", "idc_edge", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env)


def one_error_line(p) -> str:
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert p.returncode == 2 and len(lines) == 1 and lines[0].startswith("idc-edge: error:"), (p.returncode, p.stderr)
    return lines[0]


def test_calibrate_white_and_scale_fill_one_profile(tmp_path):
    glass = tmp_path / "glass.png"
    cv2.imwrite(str(glass), glass_frame(np.array(TRAINING_GLASS_RGB) * CAST_RGB))
    ruler = tmp_path / "ruler.png"
    cv2.imwrite(str(ruler), ruler_image(12.37, 2.0))
    white = cli(tmp_path, "calibrate", "white", "--source", glass, "--profile", "scope", "--json")
    assert white.returncode == 0, white.stderr
    gains = json.loads(white.stdout)["gains_rgb"]
    np.testing.assert_allclose(gains, 1.0 / CAST_RGB, rtol=0.01)
    scale = cli(tmp_path, "calibrate", "scale", "--source", ruler, "--spacing-um", 10, "--profile", "scope", "--json")
    assert scale.returncode == 0, scale.stderr
    out = json.loads(scale.stdout)
    assert out["um_per_px"] == pytest.approx(10 / 12.37, rel=0.003) and out["frame"] == [800, 600]
    text = (tmp_path / "config" / "idc-edge" / "profiles" / "scope.toml").read_text()
    assert "[white]" in text and "[scale]" in text and "frame_width = 800" in text
    # a run on frames of another size than the scale was measured at is refused, in one line
    other = tmp_path / "small.png"
    cv2.imwrite(str(other), cv2.resize(cv2.imread(str(ruler)), (400, 300)))
    line = one_error_line(cli(tmp_path, "run", "--source", other, "--profile", "scope", "--quiet"))
    assert "400x300" in line and "800x600" in line
    # a new scale on the command line replaces the profile's, and the run goes
    assert cli(tmp_path, "run", "--source", other, "--profile", "scope", "--um-per-px", 2, "--quiet").returncode == 0


def test_calibrate_white_warns_of_dust_on_the_glass(tmp_path):
    from test_calibration import lit_glass

    clean, dusty = tmp_path / "clean.png", tmp_path / "dusty.png"
    cv2.imwrite(str(clean), lit_glass())
    cv2.imwrite(str(dusty), lit_glass(spots=[(200, 300, 12, 0.5), (500, 900, 20, 0.7)]))
    ok = cli(tmp_path, "calibrate", "white", "--source", clean, "--profile", "a", "--json")
    assert ok.returncode == 0 and "dust" not in ok.stderr and json.loads(ok.stdout)["dust_spots"] == 0
    p = cli(tmp_path, "calibrate", "white", "--source", dusty, "--profile", "b", "--json")
    assert p.returncode == 0 and json.loads(p.stdout)["dust_spots"] == 2
    warning = [line for line in p.stderr.splitlines() if "dark spot" in line]
    assert len(warning) == 1 and "2 dark spot(s)" in warning[0] and "70 %" in warning[0], p.stderr


@pytest.mark.parametrize("setup, args, message", [
    ("blank", ["calibrate", "scale", "--source", "{blank}", "--spacing-um", 10, "--profile", "p"], "no regular ruler ticks"),
    ("blank", ["calibrate", "scale", "--source", "{blank}", "--profile", "p"], "needs --spacing-um"),
    ("blank", ["calibrate", "white", "--source", "{blank}"], "needs --profile"),
    ("bright", ["calibrate", "white", "--source", "{bright}", "--profile", "p"], "overexposed"),
    (None, ["run", "--source", "x.png", "--profile", "missing"], "missing.toml' does not exist"),
    ("corrupt", ["run", "--source", "x.png", "--profile", "broken"], "broken.toml' is not valid TOML"),
    (None, ["run", "--profile", "../etc"], "may use only"),
])
def test_bad_calibration_input_and_profiles_are_one_line_with_exit_2(tmp_path, setup, args, message):
    files = {"blank": tmp_path / "blank.png", "bright": tmp_path / "bright.png"}
    cv2.imwrite(str(files["blank"]), glass_frame(np.array([230.0, 230, 230])))
    cv2.imwrite(str(files["bright"]), np.full((120, 160, 3), 255, np.uint8))
    if setup == "corrupt":
        folder = tmp_path / "config" / "idc-edge" / "profiles"
        folder.mkdir(parents=True)
        (folder / "broken.toml").write_text("[white\ngains_rgb = 1")
    args = [str(a).format(**{k: str(v) for k, v in files.items()}) for a in args]
    assert message in one_error_line(cli(tmp_path, *args))


def idc_boxes(path):
    return [{tuple(b) for b in r["idc_boxes"]} for r in read_records(path) if "idc_boxes" in r]


def write_lossless(path, frames):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), 5.0, frames[0].shape[1::-1])
    assert writer.isOpened()
    for f in frames:
        writer.write(f)
    writer.release()


@pytest.mark.data
def test_a_cast_video_run_with_its_white_profile_gives_the_same_idc_map(tmp_path, data_dir):
    with MosaicSource(data_dir, patients=["8867"], width=640, height=480, step=320) as src:
        frames = [f.image for _, f in zip(range(40), src)]
    cast_bgr = CAST_RGB[::-1]
    cast = [np.clip(f * cast_bgr + 0.5, 0, 255).astype(np.uint8) for f in frames]
    write_lossless(tmp_path / "clean.mkv", frames)
    write_lossless(tmp_path / "cast.mkv", cast)
    glass = tmp_path / "glass.png"
    cv2.imwrite(str(glass), glass_frame(np.array(TRAINING_GLASS_RGB) * CAST_RGB))
    assert cli(tmp_path, "calibrate", "white", "--source", glass, "--profile", "scope").returncode == 0
    runs = {"clean": ["--source", tmp_path / "clean.mkv"],
            "cast": ["--source", tmp_path / "cast.mkv"],
            "cast_profile": ["--source", tmp_path / "cast.mkv", "--profile", "scope"]}
    boxes = {}
    for name, args in runs.items():
        p = cli(tmp_path, "run", *args, "--record", tmp_path / f"{name}.jsonl", "--quiet", "--no-reuse", "--stride", 25)
        assert p.returncode == 0, p.stderr
        boxes[name] = idc_boxes(tmp_path / f"{name}.jsonl")

    def agreement(a, b):  # IDC patches called by both over those called by either, all frames
        both = sum(len(x & y) for x, y in zip(boxes[a], boxes[b]))
        either = sum(len(x | y) for x, y in zip(boxes[a], boxes[b]))
        return both / max(either, 1)

    assert sum(map(len, boxes["clean"])) > 30  # the sweep shows IDC to compare
    with_profile, without = agreement("clean", "cast_profile"), agreement("clean", "cast")
    print(f"IDC patch agreement with the clean run: cast + profile {with_profile:.3f}, cast alone {without:.3f}")
    assert with_profile >= 0.9, (with_profile, without)
    assert with_profile > without


def _ruler_png(tmp_path, period_px=10):
    """A 640×480 picture of ruler ticks ``period_px`` apart (a stage micrometer seen by the camera)."""
    ruler = np.full((480, 640, 3), 230, np.uint8)
    ruler[:, ::period_px] = 30
    path = tmp_path / "ruler.png"
    cv2.imwrite(str(path), ruler)
    return path


@pytest.mark.parametrize("spacing, said", [
    ("0.01", "0.01 µm is not a stage micrometer's tick spacing (1 to 5000 µm); mm typed as µm? 0.01 mm is 10 µm"),
    ("1e-300", "1e-300 µm is not a stage micrometer's tick spacing (1 to 5000 µm)"),
    ("1e308", "1e+308 µm is not a stage micrometer's tick spacing (1 to 5000 µm); nm typed as µm?"),
    ("2000", "measured scale (ticks 10 px apart, --spacing-um 2000 µm) is 200 µm/px, outside the 0.01 to 100 µm/px"),
])
def test_calibrate_scale_refuses_an_implausible_spacing_or_scale_and_saves_no_profile(tmp_path, spacing, said):
    profile = tmp_path / "olympus.toml"
    p = cli(tmp_path, "calibrate", "scale", "--source", _ruler_png(tmp_path), "--spacing-um", spacing,
            "--profile", profile)
    assert p.returncode == 2 and said in one_error_line(p) and "--spacing-um" in p.stderr
    assert len(p.stderr) < 300 and not profile.exists()


def test_a_scale_from_a_profile_is_named_by_its_profile_not_as_um_per_px(tmp_path):
    """A hand-edited profile scale is refused naming the file; a plausible one that still makes a frame too
    large names the profile it came from, never --um-per-px that was not given."""
    profile, edited = tmp_path / "macro.toml", tmp_path / "edited.toml"
    ruler = _ruler_png(tmp_path)
    assert cli(tmp_path, "calibrate", "scale", "--source", ruler, "--spacing-um", 500, "--profile", profile).returncode == 0
    edited.write_text(re.sub(r"(?m)^um_per_px = .*$", "um_per_px = 1e308", profile.read_text()))
    p = cli(tmp_path, "run", "--source", ruler, "--profile", edited, "--quiet")
    assert p.returncode == 2 and f"profile '{edited}': scale.um_per_px is 1e+308 µm/px, outside" in one_error_line(p)
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config"), "IDC_EDGE_MEMORY_MB": "100"}
    p = subprocess.run([sys.executable, "-m", "idc_edge", "run", "--source", str(ruler), "--profile", str(profile),
                        "--quiet"], capture_output=True, text=True, timeout=180, env=env)
    (line,) = [line for line in p.stderr.splitlines() if line.startswith("idc-edge: error: ")]  # after the summary
    assert p.returncode == 2 and "at 50 µm/px" in line and f"check the scale of profile '{profile}'" in line
    assert "--um-per-px" not in line


def test_an_implausible_sidecar_scale_is_refused_naming_the_sidecar(tmp_path, tiny_int8):
    """A sidecar um_per_px of 1e-300 was accepted, and a later memory error blamed --um-per-px."""
    import shutil

    model = tmp_path / "m.tflite"
    shutil.copy(tiny_int8, model)
    spec = json.loads(tiny_int8.with_suffix(".json").read_text())
    (tmp_path / "m.json").write_text(json.dumps({**spec, "um_per_px": 1e-300, "model_sha256": None}))
    for command in (("info",), ("run", "--source", _ruler_png(tmp_path), "--um-per-px", 1, "--quiet")):
        p = cli(tmp_path, *command, "--model", model)
        line = one_error_line(p)
        assert f"model sidecar '{tmp_path / 'm.json'}': um_per_px is 1e-300 µm/px, outside the 0.01 to 100" in line
        assert "--um-per-px" not in line and len(line) < 300
