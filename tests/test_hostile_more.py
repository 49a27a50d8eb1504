"""A second hostile round, of the same classes as the first: empty values of every option,
profiles that are not profiles, outputs that would replace someone else's file, signed frames.
Fast: the command line runs in this process where no signal can be involved.
"""
from __future__ import annotations

import argparse
import os

import cv2
import numpy as np
import pytest

from test_hostile_cli import one_error_line, run_here

from idc_edge import cli


def _value_options():
    """(command, option) for every option of every command that takes a value."""
    parser = cli.build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    for command, sub in commands.items():
        for action in sub._actions:
            if action.option_strings and action.nargs != 0:
                yield command, action.option_strings[-1]


_LEADING = {"calibrate": ["white"], "report": ["r.jsonl"], "classify": ["a.png"], "evaluate": ["data"]}


@pytest.mark.parametrize("command,option", sorted(set(_value_options())))
@pytest.mark.parametrize("value", ["", "  "])
def test_every_option_refuses_an_empty_value_instead_of_meaning_a_default(command, option, value):
    # `--serve "$PORT"` with PORT unset served nothing, without a word
    line = one_error_line(run_here(command, *_LEADING.get(command, []), f"{option}={value}"))
    assert "empty" in line and option in line


# -- profiles: a file that is not a profile, or a field of the wrong kind, is never silently used ------

from idc_edge.micrometer import measure_ticks  # noqa: E402
from idc_edge.colour import CalibrationError  # noqa: E402
from idc_edge.profiles import ProfileError, load_profile  # noqa: E402


@pytest.mark.parametrize("text,expected", [
    ("[scale]\num_per_pix = 2.0\n", "um_per_pix' in [scale] (did you mean um_per_px?)"),  # a typo: no scale at all
    ("[build-system]\nrequires = []\n", "unknown key 'build-system'"),                    # another program's TOML
    ("camra = \"0\"\n", "did you mean camera?"),
    ("[exposure]\nlocked = \"no\"\n", "exposure.locked must be true or false"),          # "no" read as locked
    ("[exposure]\nuniformity = [1, 2]\n", "exposure.uniformity must be a number >= 0"),
    ("[exposure]\nclipped_fraction = nan\n", "exposure.clipped_fraction must be a number from 0 to 1"),
    # hand-edited gains calibration could never give: every frame clipped, said only as "too dark or clipped"
    ("[white]\ngains_rgb = [1e300, 1.0, 1.0]\n", "white.gains_rgb must be three numbers from 0.25 to 4"),
    ("[white]\ngains_rgb = [0.001, 1.0, 1.0]\n", "white.gains_rgb must be three numbers from 0.25 to 4"),
])
def test_a_profile_with_unknown_keys_or_wrong_kinds_is_refused_by_name(tmp_path, text, expected):
    path = tmp_path / "p.toml"
    path.write_text(text)
    with pytest.raises(ProfileError, match="p.toml") as e:
        load_profile(str(path))
    assert expected in str(e.value)
    assert expected in one_error_line(run_here("run", "--source", "x.png", "--profile", str(path)))


@pytest.mark.parametrize("kind", ["fifo", "device", "binary"])
def test_a_profile_that_is_a_fifo_device_or_binary_is_refused_without_blocking(tmp_path, kind):
    path = tmp_path / "p.toml"
    if kind == "fifo":
        os.mkfifo(path)  # reading it blocked until a writer came
    elif kind == "device":
        path.symlink_to("/dev/zero")  # reading it never ended
    else:
        path.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    line = one_error_line(run_here("calibrate", "white", "--source", "x.png", "--profile", str(path)))
    assert "p.toml" in line and {"fifo": "FIFO", "device": "device", "binary": "not UTF-8"}[kind] in line


def test_a_profile_saved_by_a_windows_editor_is_read(tmp_path):
    # a byte-order mark and CRLF line ends (Notepad) gave "Invalid statement (at line 1, column 1)"
    path = tmp_path / "p.toml"
    path.write_bytes(b"\xef\xbb\xbf[scale]\r\num_per_px = 2.0\r\nframe_width = 600\r\nframe_height = 400\r\n")
    assert load_profile(str(path)).um_per_px == 2.0


def test_calibrate_saves_to_the_profile_path_given_and_never_over_another_programs_toml(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    glass = tmp_path / "glass.png"
    cv2.imwrite(str(glass), np.full((120, 160, 3), (200, 215, 225), np.uint8))
    target = tmp_path / "scope" / "olympus.toml"
    target.parent.mkdir()
    assert run_here("calibrate", "white", "--source", str(glass), "--profile", str(target)).returncode == 0
    assert load_profile(str(target)).white_gains_rgb is not None  # it went to the given path ...
    assert not (tmp_path / "config").exists()  # ... not into the config folder under the same name
    other = tmp_path / "pyproject.toml"
    other.write_text("[project]\nname = \"x\"\n")
    before = other.read_bytes()
    assert "unknown key 'project'" in one_error_line(
        run_here("calibrate", "white", "--source", str(glass), "--profile", str(other)))
    assert other.read_bytes() == before


def test_a_blank_image_has_no_ruler_ticks_not_a_negative_period():
    # a perfectly flat frame has an all-zero spectrum: its peak ratio was NaN, and NaN passed the gate
    for frame in (np.full((240, 320, 3), (200, 210, 230), np.uint8), np.zeros((64, 64), np.uint8)):
        with pytest.raises(CalibrationError, match="no regular ruler ticks"):
            measure_ticks(frame)


# -- outputs that replace a file replace only their own kind ------------------------------------------

from conftest import ROOT  # noqa: E402
from test_faults import write_numbered_video  # noqa: E402


def _results(tmp_path):
    """A real results file of one short run."""
    patch = tmp_path / "rec.png"
    cv2.imwrite(str(patch), np.full((50, 50, 3), 200, np.uint8))
    path = tmp_path / "r.jsonl"
    assert run_here("run", "--source", str(patch), "--quiet", "--record", str(path)).returncode == 0
    return path


@pytest.mark.parametrize("command", ["report --html", "classify --out", "run --save-video"])
@pytest.mark.parametrize("victim", ["video", "model", "photo", "hard link to the video"])
def test_an_output_never_replaces_a_file_of_another_kind(tmp_path, command, victim):
    # `report r.jsonl --html slide.avi` replaced the recording with a web page, `--html model.tflite`
    # the model, `classify --out photo.png` the photo, `--save-video slide.avi` the recording: each exit 0
    video = tmp_path / "slide.avi"
    write_numbered_video(str(video), n=3)
    patch = tmp_path / "patch.png"
    cv2.imwrite(str(patch), np.full((50, 50, 3), 200, np.uint8))
    model = tmp_path / "m.tflite"
    model.write_bytes((ROOT / "idc_edge" / "models" / "idc_int8.tflite").read_bytes()[:4096])
    target = {"video": video, "model": model, "photo": tmp_path / "photo.png"}.get(victim, tmp_path / "link.mp4")
    if victim == "photo":
        cv2.imwrite(str(target), np.full((60, 60, 3), 90, np.uint8))
    elif victim.startswith("hard"):
        os.link(video, target)
    if command == "run --save-video" and "video" not in victim:
        target = target.rename(target.with_suffix(".mp4"))  # a video's name, another program's bytes
    before = target.read_bytes()
    args = {"report --html": ["report", str(_results(tmp_path)), "--html", str(target)],
            "classify --out": ["classify", str(patch), "--quiet", "--out", str(target)],
            "run --save-video": ["run", "--source", str(patch), "--quiet", "--save-video", str(target)]}[command]
    p = run_here(*args)  # a video too: one idc-edge did not write (no frame index beside it) is a camera's own
    assert "already exists and is not" in one_error_line(p)
    assert target.read_bytes() == before


@pytest.mark.parametrize("command", ["report --html", "classify --out", "run --save-video"])
def test_an_output_still_replaces_its_own_earlier_output(tmp_path, command):
    patch = tmp_path / "patch.png"
    cv2.imwrite(str(patch), np.full((50, 50, 3), 200, np.uint8))
    out = tmp_path / {"report --html": "r.html", "classify --out": "c.csv", "run --save-video": "v.avi"}[command]
    args = {"report --html": ["report", str(_results(tmp_path)), "--html", str(out)],
            "classify --out": ["classify", str(patch), "--quiet", "--out", str(out)],
            "run --save-video": ["run", "--source", str(patch), "--quiet", "--save-video", str(out)]}[command]
    assert run_here(*args).returncode == 0 and out.stat().st_size > 0
    assert run_here(*args).returncode == 0 and out.stat().st_size > 0


def test_a_snapshots_folder_that_cannot_be_one_is_refused_at_start_not_at_the_first_click(tmp_path):
    from idc_edge.errors import RecordError
    from idc_edge.sinks.snapshot import SnapshotSink

    source = tmp_path / "in.avi"
    write_numbered_video(str(source), n=2)
    for bad in (source, tmp_path / "no" / "such"):  # the source video itself; a folder under a missing one
        with pytest.raises(RecordError, match="cannot save snapshots"):
            SnapshotSink(bad)
    line = one_error_line(run_here("run", "--source", str(source), "--quiet", "--serve", "8099",
                                   "--snapshots", str(source)))
    assert "it is a file, not a folder" in line and "give --snapshots a folder (made if missing)" in line
    assert source.stat().st_size > 0


# -- a results file with hostile fields: one line naming the field, never a crash or a hang -----------

import json  # noqa: E402


def _edit(path, line, key, value):
    lines = path.read_text().splitlines()
    record = json.loads(lines[line])
    target = record["session"] if "session" in record else record
    *tables, last = key.split(".")
    for t in tables:
        target = target.setdefault(t, {})
    if value is _DROP:
        target.pop(last)
    else:
        target[last] = value
    lines[line] = json.dumps(record)
    path.write_text("\n".join(lines) + "\n")


_DROP = object()


@pytest.mark.parametrize("line,key,value", [
    (1, "time", "abc"), (1, "time", None), (1, "time", 1e308), (1, "index", -1), (1, "index", 1.5),
    (1, "idc_fraction", "x"), (1, "idc_fraction", 1e308), (1, "idc_patches", [1]), (1, "idc_area_mm2", "1"),
    (1, "no_call_patches", {"out_of_focus": "x"}), (1, "no_call_patches", 3),
    (0, "started", 5), (0, "threshold", "x"), (0, "model", "m"), (0, "model.name", _DROP),
    (0, "source.description", _DROP), (0, "outputs", ["x"]), (0, "outputs.snapshots.folder", 123),
])
def test_a_results_file_with_a_field_of_the_wrong_kind_is_one_line_naming_it(tmp_path, line, key, value):
    # each was an "internal error" (a TypeError, a KeyError, numpy summing text) in report
    results = _results(tmp_path)
    _edit(results, line, key, value)
    for extra in ([], ["--json"], ["--html", str(tmp_path / "r.html")]):
        text = one_error_line(run_here("report", str(results), *extra))
        assert f"line {line + 1}: field {key!r} must be" in text


def test_json_and_toml_nested_thousands_deep_are_one_line_naming_the_file(tmp_path):
    # each was "internal error (RecursionError ...)": a results line, a profile, a snapshot's record
    deep = "[" * 100000 + "]" * 100000
    results = _results(tmp_path)
    whole = results.read_text()
    results.write_text(whole + deep + "\n")
    assert "line 3 is not valid JSON" in one_error_line(run_here("report", str(results)))
    from idc_edge.errors import RecordError
    from idc_edge.record import read_records

    with pytest.raises(RecordError, match="line 3"):
        read_records(results)
    (tmp_path / "other.jsonl").write_text(deep + "\n")  # not appended to, not a crash
    line = one_error_line(run_here("run", "--source", str(tmp_path / "rec.png"), "--quiet", "--record",
                                   str(tmp_path / "other.jsonl")))
    assert "is not an idc-edge results file" in line
    (tmp_path / "lab.toml").write_text("[white]\ngains_rgb = " + deep + "\n")
    line = one_error_line(run_here("run", "--source", str(tmp_path / "rec.png"), "--quiet", "--profile",
                                   str(tmp_path / "lab.toml")))
    assert "nested too deep" in line and "lab.toml" in line
    results.write_text(whole)
    folder = tmp_path / "snaps"
    folder.mkdir()
    _edit(results, 0, "outputs", {"snapshots": {"folder": str(folder)}})
    (folder / "idc-1.json").write_text(deep)
    assert run_here("report", str(results), "--html", str(tmp_path / "r.html")).returncode == 0


@pytest.mark.parametrize("kind", ["fifo", "zero"])
def test_a_snapshot_record_that_is_a_fifo_or_endless_is_skipped_not_waited_on(tmp_path, kind):
    # the report hung on a FIFO named like a snapshot's JSON, and read /dev/zero until the OOM killer came
    results = _results(tmp_path)
    folder = tmp_path / "snaps"
    folder.mkdir()
    _edit(results, 0, "outputs", {"snapshots": {"folder": str(folder)}})
    if kind == "fifo":
        os.mkfifo(folder / "idc-1.json")
    else:
        (folder / "idc-1.json").symlink_to("/dev/zero")
    p = run_here("report", str(results), "--html", str(tmp_path / "r.html"))
    assert p.returncode == 0, p.stderr


# -- a folder's special files named like images are skipped and counted, never silently left out ------

def _folder_with_special_files(folder):
    folder.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(folder / "p1_idx5_x100_y100_class0.png"), np.full((50, 50, 3), 200, np.uint8))
    os.mkfifo(folder / "p1_idx5_x50_y50_class0.png")
    (folder / "p1_idx5_x150_y50_class0.png").symlink_to("/dev/zero")
    (folder / "p1_idx5_x200_y50_class0.png").symlink_to(folder / "gone.png")


def test_classify_and_an_image_folder_count_special_files_named_like_images(tmp_path):
    # classify and run --source FOLDER listed only regular files: 3 of 4 "images" vanished without a word
    _folder_with_special_files(tmp_path / "imgs")
    p = run_here("classify", str(tmp_path / "imgs"), "--quiet")
    assert p.returncode == 0 and len(p.stdout.splitlines()) == 2
    assert "skipped 3 unreadable image(s)" in p.stderr.decode()
    p = run_here("run", "--source", str(tmp_path / "imgs"), "--quiet")
    assert p.returncode == 0 and "3 unusable frame(s) skipped" in p.stderr.decode()


# -- Ctrl-C while the program is still loading ----------------------------------------------------------

_CTRL_C_AT_IMPORT = """
import builtins, os, runpy, signal, sys
real, target = builtins.__import__, sys.argv[1]
def ctrl_c_at(name, *args, **kwargs):
    if name == target and not getattr(builtins, "_fired", False):
        builtins._fired = True
        os.kill(os.getpid(), signal.SIGINT)  # the user's Ctrl-C, exactly while this module loads
    return real(name, *args, **kwargs)
builtins.__import__ = ctrl_c_at
sys.argv = ["idc-edge", *sys.argv[2:]]
runpy.run_module("idc_edge", run_name="__main__", alter_sys=True)
"""


@pytest.mark.parametrize("module", ["numpy", "cv2", "argparse"])
@pytest.mark.parametrize("command", [["info"], ["report", "r.jsonl"], ["calibrate", "white", "--source", "g.png"]])
def test_ctrl_c_while_the_program_loads_is_interrupted_not_a_traceback(module, command):
    # a Ctrl-C in the first second (numpy and OpenCV loading) printed a 30-line traceback
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-c", _CTRL_C_AT_IMPORT, module, *command], capture_output=True, text=True,
                       cwd=str(ROOT), timeout=60)
    assert "Traceback" not in p.stderr and p.returncode == 130, p.stderr
    assert p.stderr.strip().endswith("idc-edge: interrupted")


def test_a_cache_folder_that_cannot_be_used_only_costs_a_probe(tmp_path, monkeypatch):
    # IDC_EDGE_CACHE_DIR with a name too long for the file system stopped every command (exit 2)
    monkeypatch.setenv("IDC_EDGE_CACHE_DIR", str(tmp_path / ("y" * 300)))
    p = run_here("info")
    assert p.returncode == 0, p.stderr


# -- signed frames: int8 is byte - 128; negative values of wider types are said, not silently black ------

def test_an_int8_frame_is_read_as_byte_minus_128_and_negative_values_are_warned():
    import warnings

    from idc_edge import frames

    rng = np.random.default_rng(3)
    eight = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    centred = (eight.astype(np.int16) - 128).astype(np.int8)  # was read with everything below 128 black
    frames._warned.clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        np.testing.assert_array_equal(frames.to_bgr8(centred), eight)
        np.testing.assert_array_equal(frames.to_bgr8(centred, bits=8), eight)
        wide = eight.astype(np.int32) - 20  # a dark-subtracted camera: its negatives stay black ...
        np.testing.assert_array_equal(frames.to_bgr8(wide), np.maximum(eight.astype(int) - 20, 0))
    said = " ".join(str(w.message) for w in caught)
    assert "byte - 128" in said and "negative values (down to -20)" in said  # ... and that is said


# -- a 12-bit image file is read at its depth by every reader that asks for colour ----------------------

def test_a_12_bit_image_file_is_classified_as_its_8_bit_picture(tmp_path):
    # classify, evaluate and the data-set stage decode with IMREAD_COLOR, whose 16 -> 8 bit conversion
    # divides by 256: a 12-bit image came out nearly black, "no tissue, no IDC", without a word
    from idc_edge.fileio import read_image

    rng = np.random.default_rng(5)
    eight = np.dstack([rng.integers(120, 230, (150, 200)), rng.integers(40, 160, (150, 200)),
                       rng.integers(130, 240, (150, 200))]).astype(np.uint8)  # BGR, H&E-like pinks and purples
    eight[0, 0] = 255
    cv2.imwrite(str(tmp_path / "eight.png"), eight)
    cv2.imwrite(str(tmp_path / "twelve.png"), eight.astype(np.uint16) * 16)
    np.testing.assert_array_equal(read_image(tmp_path / "twelve.png", flags=cv2.IMREAD_COLOR), eight)
    rows = [run_here("classify", str(tmp_path / f"{n}.png"), "--quiet").stdout.decode().splitlines()[1:]
            for n in ("eight", "twelve")]
    assert [r.split(",", 1)[1] for r in rows[0]] == [r.split(",", 1)[1] for r in rows[1]]
    assert any(r.split(",")[7] == "1" for r in rows[0])  # some tissue to be lost


def test_an_image_of_float_samples_is_read_by_classify_as_by_run(tmp_path):
    # a TIFF of 32-bit floats (what a scientific camera or an analysis script saves): OpenCV's colour
    # conversion refuses it, so classify skipped it as "corrupt or not images" while run read it
    from idc_edge.fileio import read_image

    rng = np.random.default_rng(6)
    eight = np.dstack([rng.integers(120, 230, (150, 200)), rng.integers(40, 160, (150, 200)),
                       rng.integers(130, 240, (150, 200))]).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "eight.png"), eight)
    assert cv2.imwrite(str(tmp_path / "float.tif"), eight.astype(np.float32) / 255)
    assert cv2.imwrite(str(tmp_path / "grey.tif"), eight[..., 1].astype(np.float32) / 255)
    assert np.abs(read_image(tmp_path / "float.tif", flags=cv2.IMREAD_COLOR).astype(int) - eight).max() <= 1
    assert read_image(tmp_path / "grey.tif", flags=cv2.IMREAD_COLOR).shape == (150, 200, 3)
    p = run_here("classify", str(tmp_path / "eight.png"), str(tmp_path / "float.tif"), "--quiet")
    # (random pixels are grain to the noise gate, which may say so; the float TIFF must not be skipped)
    assert p.returncode == 0 and b"not images" not in p.stderr and b"skipped" not in p.stderr, p.stderr
    rows = p.stdout.decode().splitlines()[1:]
    of = {n: [r.split(",", 1)[1] for r in rows if r.split(",", 1)[0].endswith(n)] for n in ("eight.png", "float.tif")}
    assert of["eight.png"] and of["eight.png"] == of["float.tif"]


def test_saving_a_profile_keeps_its_link_and_permissions_and_makes_no_mistyped_folder(tmp_path):
    # the atomic replace turned a link to a shared profile into a private copy (the shared file never
    # updated), made every profile 0600, and created a whole folder tree from a mistyped path
    from idc_edge.profiles import Profile, save_profile

    shared = tmp_path / "shared.toml"
    shared.write_text("")
    shared.chmod(0o640)
    link = tmp_path / "scope.toml"
    link.symlink_to(shared)
    save_profile(Profile(name="scope", white_gains_rgb=(1.0, 1.1, 1.2)), str(link))
    assert link.is_symlink() and load_profile(str(shared)).white_gains_rgb == (1.0, 1.1, 1.2)
    assert shared.stat().st_mode & 0o777 == 0o640
    fresh = tmp_path / "fresh.toml"
    save_profile(Profile(name="fresh"), str(fresh))
    assert fresh.stat().st_mode & 0o777 == 0o644
    with pytest.raises(ProfileError, match="does not exist"):
        save_profile(Profile(name="x"), str(tmp_path / "typo" / "x.toml"))
    assert not (tmp_path / "typo").exists()


def test_a_closed_standard_output_is_refused_before_a_profile_or_report_is_written(tmp_path):
    # calibrate saved the profile and report wrote the HTML, then both failed on the summary line:
    # exit 2 for work that was done
    import subprocess
    import sys

    glass = tmp_path / "glass.png"
    cv2.imwrite(str(glass), np.full((120, 160, 3), (200, 215, 225), np.uint8))
    results = _results(tmp_path)
    cmd = f"{sys.executable} -m idc_edge"
    for line, made in ((f"calibrate white --source {glass} --profile {tmp_path / 'p.toml'}", tmp_path / "p.toml"),
                       (f"report {results} --html {tmp_path / 'r.html'}", tmp_path / "r.html")):
        p = subprocess.run(f"{cmd} {line} >&-", shell=True, capture_output=True, cwd=str(ROOT), timeout=120)
        assert "standard output is closed" in one_error_line(p) and not made.exists()
    p = subprocess.run(f"{cmd} classify {glass} --quiet --out {tmp_path / 'c.csv'} >&-", shell=True,
                       capture_output=True, cwd=str(ROOT), timeout=120)
    assert p.returncode == 0 and (tmp_path / "c.csv").stat().st_size > 0  # its results go to a file


def test_calibration_checks_its_working_buffers_against_the_memory_budget(tmp_path, monkeypatch):
    # a 12000×12000 micrometer image (under the decoding budget) grew past 3.5 GB in float copies
    from idc_edge.errors import MemoryBudgetError

    monkeypatch.setenv("IDC_EDGE_MEMORY_MB", "40")
    with pytest.raises(MemoryBudgetError, match="micrometer image"):
        measure_ticks(np.zeros((3500, 3500), np.uint8))  # 12 MB as bytes, 47 MB as floats
    ruler = tmp_path / "ruler.png"
    image = np.full((2000, 2000, 3), 200, np.uint8)
    image[:, ::20] = 30
    cv2.imwrite(str(ruler), image)  # 12 MB decoded, 48 MB averaged in floats
    line = one_error_line(run_here("calibrate", "scale", "--source", str(ruler), "--spacing-um", "10",
                                   "--profile", str(tmp_path / "p.toml")))
    assert "memory budget" in line and "calibration" in line and not (tmp_path / "p.toml").exists()


def test_a_frame_shrunk_below_a_quarter_patch_by_its_scale_is_warned_not_silently_no_tissue(tmp_path):
    # classify --um-per-px 0.01 (the finest scale taken) on a slide image: one empty row, "no tissue", without a word
    image = tmp_path / "slide.png"
    cv2.imwrite(str(image), np.full((400, 600, 3), (190, 110, 200), np.uint8))
    p = run_here("classify", str(image), "--quiet", "--um-per-px", "0.01")
    assert p.returncode == 0 and "only 2×1 px at the model's" in p.stderr.decode() and "--um-per-px" in p.stderr.decode()
    p = run_here("classify", str(image), "--quiet", "--um-per-px", "2")
    # at a sane scale no word about it (this flat field has no call: that is said, and only that)
    assert p.returncode == 0 and "at the model's" not in p.stderr.decode()


# -- a frame source's clock: NaN refused by name, a step back never drops the rest of the video ---------

def _timed_source(times):
    from idc_edge.sources.base import Frame, FrameSource

    image = np.full((60, 80, 3), (190, 110, 200), np.uint8)

    class Timed(FrameSource):
        def __init__(self):
            super().__init__("frames with given times")

        def __iter__(self):
            for i, t in enumerate(times):
                yield Frame(i, t, image)

    return Timed()


def test_a_clock_set_back_mid_run_keeps_every_later_frame_in_the_video(tmp_path):
    # camera frames carry wall-clock time: after NTP set the clock back a minute, every frame until
    # the clock caught up went into "a slot already written" and was left out of the video
    from idc_edge.session import RunConfig, Session
    from idc_edge.sinks.video import VideoSink

    sink = VideoSink(tmp_path / "v.avi", fps=10.0)
    Session(RunConfig(source="x"), [sink], source=_timed_source([100, 100.1, 100.2, 100.3, 40, 40.1, 40.2, 40.3])).run()
    assert sink.skipped == 0 and sink.frames == 8


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "1.5"])
def test_a_frame_time_that_is_not_a_finite_number_is_a_frame_error_naming_it(tmp_path, bad):
    # NaN ended the run with ValueError "Out of range float values are not JSON compliant"
    from idc_edge.errors import FrameError
    from idc_edge.session import RunConfig, Session
    from idc_edge.sinks.jsonl import JsonlSink
    from idc_edge.sinks.video import VideoSink

    with pytest.raises(FrameError, match="frame 1 has timestamp"):
        Session(RunConfig(source="x"), [JsonlSink(tmp_path / "r.jsonl"), VideoSink(tmp_path / "v.avi")],
                source=_timed_source([0.0, bad, 0.2])).run()


def test_json_output_is_strict_json_even_with_nan_in_a_results_header(tmp_path):
    # report --json printed a header's NaN as the bare word NaN, which JSON parsers (and the browser's
    # JSON.parse, for the live view's status) refuse
    results = _results(tmp_path)
    _edit(results, 0, "options.threshold", float("nan"))
    p = run_here("report", str(results), "--json")
    assert p.returncode == 0
    json.loads(p.stdout, parse_constant=lambda word: pytest.fail(f"{word} in the JSON output"))


def test_a_snapshot_record_naming_a_picture_too_long_to_look_up_is_skipped(tmp_path):
    # Path.is_file() raises for a name too long for the file system: one such snapshot record
    # stopped the whole report ("the name is too long")
    results = _results(tmp_path)
    folder = tmp_path / "snaps"
    folder.mkdir()
    started = json.loads(results.read_text().splitlines()[0])["session"]["started"]
    (folder / "idc-1.json").write_text(json.dumps({"session": {"session": {"started": started}},
                                                   "snapshot": {"png": "p" * 300 + ".png"},
                                                   "frame": {"index": 0, "time": 0.0, "idc_fraction": 0.0}}))
    _edit(results, 0, "outputs", {"snapshots": {"folder": str(folder)}})
    p = run_here("report", str(results), "--html", str(tmp_path / "r.html"))
    assert p.returncode == 0, p.stderr


def test_a_report_holds_a_few_numbers_per_frame_not_every_parsed_line(tmp_path):
    # a 109 MB results file (7 minutes with many IDC boxes) took 1.4 GB to summarise: every line was
    # parsed into Python objects at once, boxes and all
    import tracemalloc

    from idc_edge.report import summarize

    results = _results(tmp_path)
    header, frame = results.read_text().splitlines()[:2]
    record = json.loads(frame)
    record["idc_boxes"] = [[x, y, x + 25, y + 25] for x in range(0, 1900, 25) for y in range(0, 500, 25)]
    with results.open("w") as f:
        f.write(header + "\n")
        for i in range(150):
            record["index"], record["time"] = i, i * 0.1
            f.write(json.dumps(record, separators=(",", ":")) + "\n")
    size = results.stat().st_size
    tracemalloc.start()
    try:
        summary, = summarize(results, pictures=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert summary.frames == 150 and peak < 3 * size, (peak, size)


def test_a_model_sidecar_saved_by_a_windows_editor_is_read(tiny_int8, tmp_path):
    # a byte-order mark (Notepad's UTF-8) made the sidecar "not valid JSON"; profiles and results files took one
    import shutil

    from idc_edge.spec import read_spec, sidecar_path

    model = tmp_path / "m.tflite"
    shutil.copy(tiny_int8, model)
    sidecar_path(model).write_bytes(b"\xef\xbb\xbf" + sidecar_path(tiny_int8).read_bytes().replace(b"\n", b"\r\n"))
    assert read_spec(model) == read_spec(tiny_int8)
