"""Red-team round 9: hand-edited microscope profiles, the profiles folder, and options of the API
that were never checked where they enter.

Everything is real: the command line runs in this process (``idc_edge.cli.main``) on the committed
tiny LiteRT model, the camera is a Motion-JPEG video file opened as a capture device, images are
real PNGs.
"""
from __future__ import annotations

import os
import re

import cv2
import numpy as np
import pytest

from conftest import ROOT
from hostile import TINY, cli, fake_camera, one_error_line, tissue_frame, write_video
from idc_edge.profiles import ProfileError, load_profile

FRAME = tissue_frame(glass_rows=20)  # some glass for the drift check


@pytest.fixture(autouse=True)
def private_config(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("IDC_EDGE_CACHE_DIR", str(tmp_path / "cache"))


def run_refused_for_profile(tmp_path, capsys, profile) -> str:
    """The one error line of ``idc-edge run`` over a short video with ``--profile PROFILE`` (asserted: exit 2)."""
    video = write_video(tmp_path / "in.avi", 6, frame=FRAME)
    code, err = cli(capsys, "run", "--model", TINY, "--source", video, "--quiet", "--profile", profile)
    assert code == 2, err
    return one_error_line(err)


# -- hand-edited profiles -------------------------------------------------------------------------------

@pytest.mark.parametrize("white, expected", [
    ("target_rgb = [0, 0, 0]", "white.target_rgb must be three levels above 0 and at most 255"),
    ("target_rgb = [1e300, 240.0, 240.0]", "white.target_rgb must be three levels above 0 and at most 255"),
    ("target_rgb = [-5.0, 240.0, 240.0]", "white.target_rgb must be three levels above 0 and at most 255"),
    ("glass_rgb = [0, 0, 0]", "white.glass_rgb must be three levels above 0"),
])

def test_a_profile_white_level_of_zero_or_beyond_8_bits_is_refused_naming_the_profile(tmp_path, capsys, white,
                                                                                        expected):
    # a target of 0 stopped the run with "reference glass colour must be three numbers > 0", naming no
    # profile; 1e300 ran, warning "the glass colour drifted 4800 %" and blaming the lamp
    path = tmp_path / "scope.toml"
    path.write_text(f"[white]\ngains_rgb = [1.0, 1.0, 1.0]\n{white}\n")
    with pytest.raises(ProfileError, match=expected):
        load_profile(str(path))
    code, err = cli(capsys, "run", "--model", TINY, "--camera", fake_camera(tmp_path / "cam", frame=FRAME), "--max-frames", 2,
                    "--quiet", "--profile", path)
    line = one_error_line(err)
    assert code == 2 and expected in line and "scope.toml" in line and "drifted" not in err


@pytest.mark.parametrize("camera", ['""', '"   "'])
def test_a_profile_with_an_empty_camera_names_the_profile_not_an_option_never_given(tmp_path, capsys, camera):
    # it said "--camera is empty (an unset shell variable?)" to a user who had given no --camera
    path = tmp_path / "scope.toml"
    path.write_text(f"camera = {camera}\n")
    with pytest.raises(ProfileError, match="camera is empty"):
        load_profile(str(path))
    code, err = cli(capsys, "run", "--model", TINY, "--max-frames", 2, "--quiet", "--profile", path)
    line = one_error_line(err)
    assert code == 2 and "scope.toml" in line and "camera is empty" in line and "--camera" not in line


# -- options of the API checked where they enter ------------------------------------------------------------

@pytest.mark.parametrize("field", ["max_clipped_fraction", "clip_level", "min_glass_level", "max_gain",
                                   "max_texture", "min_side_px"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1, True, "3", 1e308])
def test_white_calibration_exposure_options_are_checked_when_made(field, bad):
    from idc_edge.colour import ExposureCheckOptions
    from idc_edge.errors import OptionError

    # every other options class refused these; this one took them all, so max_gain=nan passed any gain
    with pytest.raises(OptionError, match=field):
        ExposureCheckOptions(**{field: bad})


def test_white_calibration_with_an_unchecked_gain_limit_no_longer_hands_back_absurd_gains():
    from idc_edge.colour import ExposureCheckOptions, measure_white
    from idc_edge.errors import IdcEdgeError

    dim_glass = np.full((64, 64, 3), 12, np.uint8)
    # before: gains of 20 from glass at level 12, returned as a calibration (nan compares false)
    with pytest.raises(IdcEdgeError):
        measure_white(dim_glass, options=ExposureCheckOptions(min_glass_level=0, max_gain=float("nan")))
    assert ExposureCheckOptions(max_gain=4, clip_level=np.int64(250)).clip_level == 250  # plain numbers kept


# -- the profiles folder ----------------------------------------------------------------------------------

def glass_png(path):
    rng = np.random.default_rng(0)
    cv2.imwrite(str(path), (np.full((100, 100, 3), 232, np.uint8) + rng.integers(0, 3, (100, 100, 3)).astype(np.uint8)))
    return path


@pytest.mark.parametrize("kind, expected", [
    ("loop", "is a symbolic link that leads back to itself (a loop)"),
    ("file", "lies under a file: a part of its path is a file, not a folder"),
])
def test_a_profiles_folder_that_is_a_link_loop_or_under_a_file_is_named_as_such(tmp_path, capsys, monkeypatch,
                                                                                kind, expected):
    # a run said "profile ... does not exist: make it with `idc-edge calibrate ...`", and that calibration
    # then failed with "File exists" (a loop) or "a part of the path is not a folder"
    from idc_edge.profiles import Profile, save_profile

    cfg = tmp_path / "cfg"
    if kind == "loop":
        (cfg / "idc-edge").mkdir(parents=True)
        os.symlink("profiles", cfg / "idc-edge" / "profiles")
    else:
        cfg.write_text("not a folder\n")
    for call in (lambda: load_profile("scope"), lambda: save_profile(Profile(name="scope"))):
        with pytest.raises(ProfileError, match=re.escape(expected)):
            call()
    code, err = cli(capsys, "calibrate", "white", "--source", glass_png(tmp_path / "glass.png"), "--profile", "scope")
    assert code == 2 and expected in one_error_line(err)
    code, err = cli(capsys, "run", "--model", TINY, "--camera", fake_camera(tmp_path / "cam", frame=FRAME), "--max-frames", 2,
                    "--quiet", "--profile", "scope")
    line = one_error_line(err)
    assert code == 2 and expected in line and "does not exist" not in line


def test_a_profile_path_holding_a_nul_is_a_profile_error_not_a_value_error(tmp_path):
    from idc_edge.profiles import Profile, save_profile

    # save_profile raised a bare ValueError ("embedded null byte"); load_profile said it did not exist
    for call in (lambda: save_profile(Profile(name="x"), str(tmp_path / "a\0b.toml")),
                 lambda: load_profile(str(tmp_path / "a\0b.toml"))):
        with pytest.raises(ProfileError, match="holds a NUL character"):
            call()


# -- two calibrations of one profile at once ---------------------------------------------------------------

def test_a_calibration_keeps_what_another_saved_into_the_profile_while_it_measured(tmp_path):
    # a calibration read its profile when it started and, seconds later, saved that with its own result:
    # a scale saved meanwhile (a second `calibrate scale` of the same microscope) was silently dropped
    import signal
    import subprocess
    import sys

    from idc_edge.profiles import update_profile

    cam = tmp_path / "cam"
    writer = cv2.VideoWriter(str(cam) + ".avi", cv2.VideoWriter_fourcc(*"MJPG"), 30, (200, 150))
    rng = np.random.default_rng(0)
    for _ in range(1000):
        writer.write(np.full((150, 200, 3), 232, np.uint8) + rng.integers(0, 3, (150, 200, 3)).astype(np.uint8))
    writer.release()
    os.rename(str(cam) + ".avi", cam)
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "cfg"), "IDC_EDGE_CACHE_DIR": ""}
    proc = subprocess.Popen([sys.executable, "-m", "idc_edge", "calibrate", "white", "--camera", str(cam),
                             "--frames", "1000", "--profile", "scope"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # the profile is read before the camera opens: once the camera file is open, it has been read
        opened = False
        while not opened and proc.poll() is None:
            try:
                opened = any(os.readlink(f"/proc/{proc.pid}/fd/{fd}") == str(cam)
                             for fd in os.listdir(f"/proc/{proc.pid}/fd"))
            except OSError:
                pass
        os.kill(proc.pid, signal.SIGSTOP)
        assert proc.poll() is None and opened, "the calibration ended before it could be paused while measuring"
        profile_file = tmp_path / "cfg" / "idc-edge" / "profiles" / "scope.toml"
        assert not profile_file.exists()
        update_profile("scope", lambda p: p.with_scale(2.0, (200, 150), 10.0))  # another calibration saves meanwhile
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    saved = load_profile(str(profile_file))
    assert saved.white_gains_rgb is not None and saved.um_per_px == 2.0 and saved.frame_size == (200, 150)


# -- outputs ---------------------------------------------------------------------------------------------

def test_a_results_file_named_as_the_video_s_lock_file_is_refused_as_the_same_file_not_another_process(
        tmp_path, capsys):
    # the run's own video held `<video>.lock`, and the results file of that name was refused as "being
    # written by another process; wait for that run to end"
    from idc_edge.errors import OptionError
    from idc_edge.detector import DetectorOptions
    from idc_edge.session import RunConfig, run_session
    from idc_edge.sinks import JsonlSink, VideoSink

    video = tmp_path / "in.avi"
    write_video(video, 6, frame=FRAME)
    code, err = cli(capsys, "run", "--model", TINY, "--source", video, "--quiet", "--save-video", tmp_path / "out.avi",
                    "--record", tmp_path / "out.avi.lock")
    line = one_error_line(err)
    assert code == 2 and "the video's lock file" in line and "same file as --record" in line
    assert "another process" not in line and not list(tmp_path.glob("out.avi*"))
    with pytest.raises(OptionError, match="lock file .* is the same file as"):
        run_session(RunConfig(source=str(video), detector=DetectorOptions(model_path=TINY)),
                    [VideoSink(tmp_path / "api.avi"), JsonlSink(tmp_path / "api.avi.lock")])
    assert not list(tmp_path.glob("api.avi*"))


def test_a_profile_scale_measured_on_frames_larger_than_any_camera_is_refused_at_load(tmp_path, capsys):
    # it loaded, and a run then said "ask the camera for --size 99999999999x1", a size that --size refuses
    path = tmp_path / "scope.toml"
    path.write_text("[scale]\num_per_px = 2.0\nframe_width = 99999999999\nframe_height = 1\n")
    with pytest.raises(ProfileError, match="scale.frame_width must be at most 32768 px"):
        load_profile(str(path))
    line = run_refused_for_profile(tmp_path, capsys, path)
    assert "scope.toml" in line and "frame_width must be at most 32768" in line and "--size" not in line


@pytest.mark.parametrize("body", ["[white]\ngains_rgb = [" + "1.0, " * 300_000 + "1.0]\n",
                                  'camera = "' + "a" * 2_000_000 + '"\n'])
def test_a_profile_larger_than_any_profile_is_refused_before_it_is_parsed(tmp_path, capsys, body):
    # a 200 MB profile (within the memory budget as text) took 100 s and 5 GB of memory to parse before its
    # error, and the error echoed the whole array; a 50 MB camera name loaded
    path = tmp_path / "scope.toml"
    path.write_text(body)
    with pytest.raises(ProfileError, match=r"is [\d,]+ bytes, more than a profile can be \(1024 KiB"):
        load_profile(str(path))
    line = run_refused_for_profile(tmp_path, capsys, path)
    assert "more than a profile can be" in line and len(line) < 600
    path.write_text("# a comment\n" * 1000 + "[scale]\num_per_px = 2.0\nframe_width = 200\nframe_height = 150\n")
    assert load_profile(str(path)).um_per_px == 2.0  # a long hand-edited profile is still read


def test_a_profile_array_of_the_wrong_length_is_named_in_a_few_characters(tmp_path):
    path = tmp_path / "scope.toml"
    path.write_text("[white]\nglass_rgb = [" + "200.0, " * 20_000 + "200.0]\n")
    with pytest.raises(ProfileError, match="white.glass_rgb must be three numbers") as e:
        load_profile(str(path))
    assert len(str(e.value)) < 300  # it echoed all 20,001 numbers


@pytest.mark.parametrize("field, bad, expected", [
    ("reduce_mjpeg", 3, "reduce_mjpeg must be 1 (full size), 2, 4 or 8, got 3"),
    ("reduce_mjpeg", float("nan"), "reduce_mjpeg must be 1 (full size), 2, 4 or 8"),
    ("reduce_mjpeg", True, "reduce_mjpeg must be 1 (full size), 2, 4 or 8"),
    ("camera_mode", "640x480", "camera_mode must be a CameraMode or None, got str"),
    ("camera_controls", {"gain": 1}, "camera_controls must be a CameraControls or None, got dict"),
    ("profile", "scope", "profile must be a Profile or None, got str"),
])
def test_a_run_config_of_objects_of_the_wrong_kind_is_an_option_error_when_made(tmp_path, field, bad, expected):
    # each reached the run: a bare ValueError at the camera's opening ("reduced decoding is by 2, 4 or 8"),
    # "cannot convert float NaN to integer", or an AttributeError ("'str' object has no attribute 'width'")
    from idc_edge.detector import DetectorOptions
    from idc_edge.errors import OptionError
    from idc_edge.session import RunConfig, run_session

    camera = fake_camera(tmp_path / "cam", frame=FRAME)
    with pytest.raises(OptionError, match=re.escape(expected)) as e:
        RunConfig(camera=str(camera), detector=DetectorOptions(model_path=TINY), max_frames=2, **{field: bad})
    assert e.value.option == field
    assert run_session(RunConfig(camera=str(camera), detector=DetectorOptions(model_path=TINY), max_frames=2,
                                 reduce_mjpeg=np.int64(1))).frames == 2


@pytest.mark.parametrize("field, bad", [
    ("outline_bgr", "red"), ("outline_bgr", (float("nan"), 0, 0)), ("outline_bgr", (300, -5, 0)),
    ("outline_bgr", (0, 0)), ("outline_px", 10 ** 9), ("outline", "no"), ("legend", "no"), ("status", 0),
    ("outline_halo", "yes"),
])
def test_an_overlay_style_is_checked_when_made_not_at_the_first_frame_drawn(tmp_path, field, bad):
    # "red" and a 1e9 px outline failed inside cv2.polylines at the first frame drawn (mid-run, as a
    # cv2.error); nan, 300 and two numbers drew some colour; "no" drew the outline, legend and status
    from idc_edge.detector import DetectorOptions
    from idc_edge.errors import OptionError
    from idc_edge.overlay import OverlayStyle
    from idc_edge.session import RunConfig, run_session
    from idc_edge.sinks import VideoSink

    with pytest.raises(OptionError, match=field) as e:
        RunConfig(source=str(tmp_path / "in.avi"), detector=DetectorOptions(model_path=TINY),
                  overlay=OverlayStyle(**{field: bad}))
    assert e.value.option == field
    video = tmp_path / "in.avi"
    write_video(video, 6, frame=FRAME)
    style = OverlayStyle(outline_bgr=np.array([0, 0, 255]), outline_px=np.int64(3), legend=np.bool_(False))
    assert style.outline_bgr == (0, 0, 255) and style.legend is False
    summary = run_session(RunConfig(source=str(video), detector=DetectorOptions(model_path=TINY), overlay=style),
                          [VideoSink(tmp_path / "out.avi")])
    assert summary.frames == 6 and (tmp_path / "out.avi").stat().st_size > 0


def test_a_profile_made_in_code_is_held_to_what_a_profile_file_may_hold(tmp_path):
    # save_profile wrote a scale of 1e308 whose file every run then refused, and raised a bare ValueError for
    # nan ("TOML has no place for nan") or gains of text; a run took Profile(um_per_px=nan) without a word
    from idc_edge.detector import DetectorOptions
    from idc_edge.profiles import Profile, save_profile
    from idc_edge.session import RunConfig

    cases = [(Profile(name="x", um_per_px=1e308, frame_size=(200, 150)), "scale.um_per_px is 1e+308"),
             (Profile(name="x", um_per_px=float("nan"), frame_size=(200, 150)), "scale.um_per_px is nan"),
             (Profile(name="x", white_gains_rgb=(float("nan"), 1.0, 1.0)), "white.gains_rgb is nan"),
             (Profile(name="x", white_gains_rgb="abc"), "holds a value of the wrong kind"),
             (Profile(name="x", target_rgb=(0.0, 0.0, 0.0)), "white.target_rgb must be three levels"),
             (Profile(name="x", exposure={"locked": object()}), "cannot write a object into a profile")]
    for profile, expected in cases:
        with pytest.raises(ProfileError, match=re.escape(expected)):
            save_profile(profile, str(tmp_path / "x.toml"))
        assert not (tmp_path / "x.toml").exists()
        with pytest.raises(ProfileError, match=re.escape(expected)):
            RunConfig(source=str(tmp_path / "in.avi"), detector=DetectorOptions(model_path=TINY), profile=profile)
    good = Profile(name="x", white_gains_rgb=(1.0, 1.1, 0.9)).with_scale(2.0, (200, 150), 10.0)
    save_profile(good, str(tmp_path / "x.toml"))
    assert load_profile(str(tmp_path / "x.toml")) == good


def test_a_live_view_or_snapshot_sink_of_the_wrong_style_or_snapshot_is_refused_when_made(tmp_path):
    # accepted, they failed at the first frame drawn (the live view only warns: it went dark while the run
    # went on) or when the Snapshot button was pressed, with an AttributeError
    from idc_edge.errors import OptionError
    from idc_edge.overlay import OverlayStyle
    from idc_edge.sinks import LiveView, SnapshotSink

    with pytest.raises(OptionError, match="style must be an OverlayStyle, got str"):
        SnapshotSink(tmp_path / "snaps", style="outline")
    with pytest.raises(OptionError, match="style must be an OverlayStyle, got dict"):
        LiveView("127.0.0.1", 0, style={"alpha": 0.5})
    with pytest.raises(OptionError, match="snapshot must be a SnapshotSink or None, got PosixPath"):
        LiveView("127.0.0.1", 0, snapshot=tmp_path / "snaps")
    view = LiveView("127.0.0.1", 0, snapshot=SnapshotSink(tmp_path / "snaps", style=OverlayStyle(alpha=0.3)))
    view.close()


def test_a_results_file_that_is_the_run_s_profile_is_refused_before_anything_is_written(tmp_path, capsys):
    # an empty profile given as --record too was appended to: it became a results file, and every later
    # run with that profile failed as "not valid TOML"
    video = tmp_path / "in.avi"
    write_video(video, 6, frame=FRAME)
    profiles = tmp_path / "cfg" / "idc-edge" / "profiles"
    profiles.mkdir(parents=True)
    (profiles / "scope.toml").write_bytes(b"")
    os.symlink(profiles / "scope.toml", tmp_path / "link.jsonl")
    for profile, record in ((profiles / "scope.toml", profiles / "scope.toml"), ("scope", tmp_path / "link.jsonl")):
        code, err = cli(capsys, "run", "--model", TINY, "--source", video, "--quiet", "--profile", profile,
                        "--record", record)
        line = one_error_line(err)
        assert code == 2 and "is the same file as --profile" in line
        assert (profiles / "scope.toml").read_bytes() == b""
    assert load_profile("scope").um_per_px is None


@pytest.mark.parametrize("kwargs", [{"max_change": "0.1"}, {"max_change": np.array([0.1, 0.2])},
                                    {"min_glass_fraction": float("nan")}, {"min_glass_fraction": float("inf")},
                                    {"min_glass_fraction": "0.02"}, {"min_glass_fraction": -1}])
def test_a_glass_drift_watch_of_nonsense_limits_is_an_option_error_when_made(kwargs):
    # text failed at the first frame with a bare TypeError; a NaN or infinite glass share silently switched
    # the drift check off (no frame ever had that much glass, so a lamp's drift was never said)
    from idc_edge.colour import TRAINING_GLASS_RGB, GlassDrift
    from idc_edge.errors import OptionError

    with pytest.raises(OptionError, match=next(iter(kwargs)) if "min" in next(iter(kwargs)) else "drift limit"):
        GlassDrift(TRAINING_GLASS_RGB, **kwargs)
    warm = np.clip(np.full((64, 64, 3), TRAINING_GLASS_RGB) * np.array([1.0, 0.95, 0.8]), 0, 255).astype(np.uint8)
    assert GlassDrift(TRAINING_GLASS_RGB, max_change=np.float64(0.08), min_glass_fraction=0).update(warm) is not None


@pytest.mark.parametrize("config", ["/proc", "/sys"])
def test_a_profiles_folder_on_a_kernel_file_system_is_named_as_such(tmp_path, capsys, monkeypatch, config):
    # XDG_CONFIG_HOME=/proc: calibrating said "cannot write profile ...: it does not exist" (/sys:
    # "permission denied"), naming the wrong cause, where a profile path on /proc was already named as such
    from idc_edge.profiles import Profile, save_profile

    monkeypatch.setenv("XDG_CONFIG_HOME", config)
    with pytest.raises(ProfileError, match=f"it is in {config}, the kernel's"):
        save_profile(Profile(name="scope"))
    code, err = cli(capsys, "calibrate", "white", "--source", glass_png(tmp_path / "glass.png"), "--profile", "scope")
    line = one_error_line(err)
    assert code == 2 and f"{config}/idc-edge/profiles/scope.toml': it is in {config}, the kernel's" in line


def test_a_profile_name_too_long_for_the_file_system_is_said_on_reading_too(tmp_path, capsys):
    # a run said "profile ... does not exist: make it with `idc-edge calibrate ...`", and calibrating then
    # failed with "the name is too long for the file system"
    path = tmp_path / ("a" * 300 + ".toml")
    with pytest.raises(ProfileError, match="the name is too long for the file system; give a shorter name"):
        load_profile(str(path))
    line = run_refused_for_profile(tmp_path, capsys, path)
    assert "too long for the file system" in line and "make it with" not in line


def test_calibrating_through_a_link_to_a_profile_still_to_be_made_writes_its_target(tmp_path, capsys):
    # the link was taken for the profile itself: "cannot read profile ...: it does not exist"
    (tmp_path / "shared").mkdir()
    link = tmp_path / "scope.toml"
    os.symlink(tmp_path / "shared" / "scope.toml", link)
    code, err = cli(capsys, "calibrate", "white", "--source", glass_png(tmp_path / "glass.png"), "--profile", link)
    assert code == 0, err
    assert link.is_symlink() and load_profile(str(tmp_path / "shared" / "scope.toml")).white_gains_rgb is not None


@pytest.mark.parametrize("kwargs", [{"reuse": "no"}, {"reuse": 0}, {"keep_image": "no"}, {"keep_image": None}])
def test_stream_and_detect_flags_given_as_text_or_numbers_are_option_errors(kwargs):
    # reuse="no" turned score reuse on (truthy text: 30 patches of the second frame reused), keep_image="no"
    # kept every frame
    from idc_edge.detector import Detector, DetectorOptions
    from idc_edge.errors import OptionError
    from idc_edge.threads import ThreadedStream

    frame = tissue_frame(640, 480, glass_rows=20)
    with Detector(DetectorOptions(model_path=TINY)) as detector:
        with pytest.raises(OptionError, match=next(iter(kwargs))):
            detector.stream([frame, frame], **kwargs)
        with pytest.raises(OptionError, match=next(iter(kwargs))):
            ThreadedStream(detector, [frame, frame], **kwargs)
        if "keep_image" in kwargs:
            with pytest.raises(OptionError, match="keep_image"):
                detector.detect(frame, **kwargs)
        results = list(detector.stream([frame, frame], reuse=np.bool_(False), keep_image=False))
        assert results[1].reused == 0 and results[0].image is None
