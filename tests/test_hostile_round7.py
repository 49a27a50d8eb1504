"""Red-team round 7: hostile option values (camera settings, scales), hostile patches for `evaluate`,
repeated frames in results files, and odd inputs of the API and the command line.

Everything is real: the command line runs in this process (``idc_edge.cli.main``) on the committed
tiny LiteRT model, cameras are video files opened as capture devices, images are real PNGs.
"""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest


from hostile import TINY, cli, fake_camera, one_error_line, tissue_frame
from idc_edge.cli import main
from idc_edge.errors import OptionError


# -- camera settings: absurd values are refused where they enter, never handed to the driver ------------

@pytest.mark.parametrize("args,expected", [
    (["--fps", "1e308"], "--fps must be a number from 0.01 to 1000 (camera frame rate, frames per second), got 1e+308"),
    (["--fps", "1e-300"], "--fps must be a number from 0.01 to 1000"),
    (["--size", "99999999x1"], "a frame size is at most 32768x32768 px"),
    (["--lock-exposure", "--exposure-us", "1e308"], "--exposure-us must be a number from 1 to 1e+08 (microseconds), "
                                                    "got 1e+308"),
    (["--lock-exposure", "--exposure-us", "0.001"], "--exposure-us must be a number from 1 to 1e+08"),
    (["--colour-gains", "1e308,1"], "--colour-gains must be two numbers (red, blue) from 0.001 to 32, got (1e+308, 1.0)"),
    (["--colour-gains", "0,1"], "--colour-gains must be two numbers (red, blue) from 0.001 to 32"),
])
def test_absurd_camera_settings_are_one_line_naming_the_option_value_and_range(tmp_path, capsys, args, expected):
    """They reached the driver (which refused the open: "no camera at ...: check the cable")."""
    camera = fake_camera(tmp_path / "cam")
    code, err = cli(capsys, "run", "--camera", camera, "--model", TINY, "--max-frames", 2, "--quiet", *args)
    assert code == 2 and expected in one_error_line(err)
    assert "no camera" not in err and "check the cable" not in err
    # the same camera at sane settings runs
    code, err = cli(capsys, "run", "--camera", camera, "--model", TINY, "--max-frames", 2, "--quiet", "--fps", "5")
    assert code == 0, err


def test_the_api_refuses_absurd_camera_settings_naming_the_field():
    from idc_edge.sources import CameraControls, CameraMode

    for kwargs, option in (({"fps": math.inf}, "fps"), ({"fps": 1e308}, "fps"), ({"width": 10 ** 9, "height": 1}, "width"),
                           ({"fps": float("nan")}, "fps")):
        with pytest.raises(OptionError) as e:
            CameraMode(**kwargs)
        assert e.value.option == option and str(e.value).startswith(option)
    for kwargs, option in (({"exposure_us": 1e308}, "exposure_us"), ({"gain": 1e308}, "gain"),
                           ({"gain": float("nan")}, "gain"), ({"wb_temperature_k": 1e9}, "wb_temperature_k"),
                           ({"wb_temperature_k": -5000}, "wb_temperature_k"),
                           ({"colour_gains_rb": (float("inf"), 1.0)}, "colour_gains_rb")):
        with pytest.raises(OptionError) as e:
            CameraControls(**kwargs)
        assert e.value.option == option and str(e.value).startswith(option) and "from" in str(e.value)
    sane = CameraControls(lock_exposure=True, exposure_us=8000, gain=2.0, lock_white_balance=True,
                          wb_temperature_k=5000.4, colour_gains_rb=(np.float32(1.5), 1.8))
    assert (sane.exposure_us, sane.gain, sane.wb_temperature_k, sane.colour_gains_rb) == (8000.0, 2.0, 5000, (1.5, 1.8))
    assert CameraMode(1920, 1080, 30.0, "mjpg").describe() == "1920x1080 at 30 fps, MJPG"


def test_a_profile_with_an_absurd_camera_mode_is_refused_naming_the_profile(tmp_path, capsys):
    profile = tmp_path / "scope.toml"
    profile.write_text('camera = "0"\n[mode]\nwidth = 640\nheight = 480\nfps = 1e308\n')
    code, err = cli(capsys, "run", "--profile", profile, "--model", TINY, "--quiet")
    line = one_error_line(err)
    assert code == 2 and f"profile '{profile}'" in line and "fps must be a number from 0.01 to 1000" in line


# -- --um-per-px / um_per_px: range-checked where it enters --------------------------------------------

@pytest.mark.parametrize("value", ["nan", "inf", "0", "-4", "1e308", "1e-300", "0.001", "101"])
def test_a_scale_outside_what_a_microscope_camera_has_is_one_line_naming_the_range(tmp_path, capsys, value):
    """1e-300 and 1e308 became a memory-budget error about a frame or a one-pixel frame warning."""
    image = tmp_path / "field.png"
    cv2.imwrite(str(image), tissue_frame())
    for command in (["classify", image], ["run", "--source", image, "--record", tmp_path / "r.jsonl"]):
        code, err = cli(capsys, *command, "--model", TINY, "--quiet", f"--um-per-px={value}")
        line = one_error_line(err)
        assert code == 2 and line.startswith("idc-edge: error: --um-per-px must be from 0.01 to 100 µm per pixel")
        assert "memory budget" not in line
    assert not (tmp_path / "r.jsonl").exists()
    for value in (0.01, 4.0, 100.0):
        code, err = cli(capsys, "classify", image, "--model", TINY, "--quiet", "--um-per-px", value)
        assert code == 0, err


def test_the_api_refuses_a_scale_outside_the_range_as_an_option_error():
    from idc_edge.detector import DetectorOptions

    for bad in (1e308, 1e-300, 0.0, -1.0, float("nan"), float("inf"), 150.0):
        with pytest.raises(OptionError) as e:
            DetectorOptions(model_path=TINY, um_per_px=bad)
        assert e.value.option == "um_per_px" and "from 0.01 to 100" in str(e.value)
    assert DetectorOptions(model_path=TINY, um_per_px=np.float32(0.25)).um_per_px == 0.25


# -- evaluate says of grey and tiny patches what classify says of the same files -------------------------

def _patch_folder(root):
    """One patient: a grey (single-channel) patch, a 50×1 px strip of tissue colour, a whole purple patch."""
    rng = np.random.default_rng(0)
    grey = root / "p1" / "0" / "p1_idx5_x0_y0_class0.png"
    strip = root / "p1" / "1" / "p1_idx5_x50_y0_class1.png"
    whole = root / "p1" / "1" / "p1_idx5_x100_y0_class1.png"
    for path in (grey, strip):
        path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(grey), rng.integers(60, 200, (50, 50)).astype(np.uint8))
    assert cv2.imwrite(str(strip), np.full((1, 50, 3), (150, 60, 160), np.uint8))
    assert cv2.imwrite(str(whole), np.full((50, 50, 3), (150, 60, 160), np.uint8))
    return grey, strip


def _warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("idc-edge: warning:")]


def test_evaluate_warns_of_grey_and_tiny_patches_as_classify_does(tmp_path, capsys):
    """evaluate scored a grey patch and a 1-row strip and counted them without a word."""
    grey, strip = _patch_folder(tmp_path / "ds")
    code, err = cli(capsys, "evaluate", tmp_path / "ds", "--model", TINY, "--quiet", "--json")
    assert code == 0
    said = _warnings(err)
    assert any(f"1 patch(es) have no colour" in w and str(grey) in w for w in said), err
    assert any("1 patch(es) are too small" in w and "50×1 px, less than a quarter of one 50 px patch" in w
               and str(strip) in w for w in said), err
    # classify of the same files, every patch scored as evaluate scores them, says the same of each
    code, err = cli(capsys, "classify", grey, strip, "--model", TINY, "--quiet", "--no-mask")
    assert code == 0
    by_classify = _warnings(err)
    colour = [w for w in by_classify if "have no colour" in w]
    assert len(colour) == 1 and colour[0].replace("image(s)", "patch(es)") in said
    small = [w for w in by_classify if "are too small" in w]
    assert len(small) == 1 and small[0].split("; ")[0].replace("image(s)", "patch(es)") in [w.split("; ")[0] for w in said]


def test_evaluate_folder_lists_the_patches_whose_score_means_little(tmp_path):
    import warnings

    from idc_edge.classifier import PatchClassifier
    from idc_edge.evaluate import evaluate_folder

    grey, strip = _patch_folder(tmp_path / "ds")
    with PatchClassifier(TINY) as clf, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ev = evaluate_folder(clf, tmp_path / "ds")
    assert ev.metrics.n_patches == 3 and ev.colourless == (str(grey),) and ev.tiny == (str(strip),)
    assert sum("have no colour" in str(w.message) for w in caught) == 1
    assert sum("are too small" in str(w.message) for w in caught) == 1


# -- report: frame numbers repeated within a session are told, copies counted once -----------------------

@pytest.fixture(scope="module")
def recorded_video(tmp_path_factory):
    """The lines of a real results file of a 6-frame video: a session header and frames 0-5."""
    import json

    folder = tmp_path_factory.mktemp("recorded7")
    video = fake_camera(folder / "v")
    video = video.rename(folder / "v.avi")
    results = folder / "r.jsonl"
    assert main(["run", "--source", str(video), "--model", TINY, "--quiet", "--record", str(results)]) == 0
    lines = results.read_text().splitlines()
    assert [json.loads(line).get("index") for line in lines] == [None, 0, 1, 2, 3, 4, 5]
    return lines


def test_report_counts_a_pasted_line_once_and_tells_of_repeated_frame_numbers(tmp_path, capsys, recorded_video):
    """Frames 1 and 2 pasted again were counted as 8 frames of 6, without a word."""
    import json

    header, frames = recorded_video[0], recorded_video[1:]
    pasted = [header, *frames[:3], frames[1], frames[2], *frames[3:]]
    path = tmp_path / "pasted.jsonl"
    path.write_text("\n".join(pasted) + "\n")
    assert main(["report", str(path), "--json"]) == 0
    captured = capsys.readouterr()
    session = json.loads(captured.out)["sessions"][0]
    assert session["frames"] == 6 and session["repeated_frame_copies"] == 2 and session["repeated_frame_numbers"] == 0
    said = _warnings(captured.err)
    assert said == ["idc-edge: warning: session 1: 2 frame line(s) repeat a frame number of the session, e.g. frame 1 "
                    "is given 2 times: 2 exact copy(ies) of an earlier line (a line pasted twice, a file joined by "
                    "hand?) counted once"]
    # a number reused with results of its own (a caller's FrameSource) is a frame of its own, and told
    other = json.loads(frames[4])
    other["index"], other["time"] = 2, other["time"] + 0.5
    reused = [header, *frames, json.dumps(other)]
    path.write_text("\n".join(reused) + "\n")
    assert main(["report", str(path), "--json"]) == 0
    captured = capsys.readouterr()
    session = json.loads(captured.out)["sessions"][0]
    assert session["frames"] == 7 and session["repeated_frame_numbers"] == 1 and session["repeated_frame_copies"] == 0
    assert _warnings(captured.err) == ["idc-edge: warning: session 1: 1 frame line(s) repeat a frame number of the "
                                       "session, e.g. frame 2 is given 2 times: 1 with results of their own counted "
                                       "as frames of their own (a frame source that numbers frames as it likes?)"]
    # frames out of order but each number once: counted as written, nothing said
    path.write_text("\n".join([header, *reversed(frames)]) + "\n")
    assert main(["report", str(path), "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["sessions"][0]["frames"] == 6 and not _warnings(captured.err)


# -- calibrate --frames: a count that would run for years, or lose the float32 sum's precision ------------

def test_calibrate_refuses_a_frame_count_past_what_averaging_can_use(tmp_path, capsys):
    """--frames 99999999999 averaged a camera's frames for ever (a float32 sum past 2**24 loses precision)."""
    camera = fake_camera(tmp_path / "cam")
    profile = tmp_path / "scope.toml"
    for frames in ("1001", "99999999999"):  # without the bound, 1001 frames are averaged and saved
        code, err = cli(capsys, "calibrate", "white", "--camera", camera, "--profile", profile, "--frames", frames)
        assert code == 2 and one_error_line(err) == (f"idc-edge: error: --frames must be <= 1000 (camera frames to "
                                                     f"average), got {frames}")
        assert not profile.exists()
    code, err = cli(capsys, "calibrate", "white", "--camera", camera, "--profile", profile, "--frames", "3", "--json")
    assert code == 0 and profile.exists(), err


# -- image files holding more than one picture ------------------------------------------------------------

def test_an_image_file_of_several_pictures_says_only_the_first_is_read(tmp_path, capsys):
    """A 3-page TIFF of patches, an animated GIF, PNG or WebP: the first picture alone was scored, silently."""
    patch = np.full((50, 50, 3), (200, 150, 220), np.uint8)
    stack = tmp_path / "stack.tif"
    assert cv2.imwritemulti(str(stack), [patch, 255 - patch, patch // 2])
    animation = cv2.Animation()
    animation.frames, animation.durations = [patch, 255 - patch], [100, 100]
    clips = {}
    for suffix in ("gif", "png", "webp"):
        clips[suffix] = tmp_path / f"clip.{suffix}"
        assert cv2.imwriteanimation(str(clips[suffix]), animation)
    single = tmp_path / "single.tif"
    assert cv2.imwrite(str(single), patch)
    expected = {stack: "is a TIFF of 3 pages", clips["gif"]: "is an animated GIF of 2 frames",
                clips["png"]: "is an animated PNG of 2 frames", clips["webp"]: "is an animated WebP"}
    for path, kind in expected.items():
        code, err = cli(capsys, "classify", path, "--model", TINY, "--quiet")
        assert code == 0 and _warnings(err) == [f"idc-edge: warning: image '{path}' {kind}: only the first is read; "
                                                "save each picture as an image of its own (or the frames as a video)"]
    code, err = cli(capsys, "run", "--source", stack, "--model", TINY, "--quiet")
    assert code == 0 and any("is a TIFF of 3 pages: only the first is read" in w for w in _warnings(err))
    code, err = cli(capsys, "classify", single, "--model", TINY, "--quiet")
    assert code == 0 and not _warnings(err)
