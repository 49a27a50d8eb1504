"""The hostile tester's cases through the real ``idc-edge`` command (subprocesses: a segfault, a
hang or a traceback would show): byte file names, outputs onto inputs, closed standard streams,
extreme numbers, malformed sidecars, empty path arguments.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import ROOT, write_patch
from test_faults import write_numbered_video
from test_hostile import silent_server  # noqa: F401 (a fixture)

from idc_edge.classifier import DEFAULT_MODEL
from idc_edge.fileio import opencv_path
from idc_edge.spec import sidecar_path

LATIN1 = b"caf\xe9"


def run(*args, timeout=120, shell=None, cwd=None):
    if shell is not None:  # for redirections such as >&- and pipes
        return subprocess.run(shell, shell=True, capture_output=True, timeout=timeout, cwd=cwd or str(ROOT),
                              executable="/bin/bash")
    return subprocess.run([sys.executable, "-m", "idc_edge", *args], capture_output=True, timeout=timeout,
                          cwd=cwd or str(ROOT))


def run_here(*args):
    """The command in this process (``idc_edge.cli.main``): for cases that raised a traceback, not a
    signal, it is as faithful as a subprocess and much faster."""
    import contextlib
    import io
    import types

    from idc_edge import cli

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(args))
    return types.SimpleNamespace(returncode=code, stdout=out.getvalue().encode(), stderr=err.getvalue().encode())


def one_error_line(p, code=2):
    err = p.stderr.decode("utf-8", "replace")
    assert p.returncode == code, err
    assert "Traceback" not in err and "internal error" not in err
    lines = [line for line in err.splitlines() if line.startswith("idc-edge: error:")]
    assert len(lines) == 1 and len(lines[0]) < 700, err
    return lines[0]


def b(folder, name: bytes) -> bytes:
    return os.path.join(os.fsencode(str(folder)), name)


def digest(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


# -- 1. byte file names everywhere ---------------------------------------------------------------

@pytest.fixture
def latin1_inputs(tmp_path, synthetic_dataset):
    """A data set, an image folder and a video whose names are Latin-1 bytes (not UTF-8)."""
    data = b(tmp_path, b"data_" + LATIN1)
    shutil.copytree(str(synthetic_dataset), os.fsdecode(data))
    images = b(tmp_path, b"images_" + LATIN1)
    os.mkdir(images)
    for i in range(2):
        ok, png = cv2.imencode(".png", np.full((60, 80, 3), 200, np.uint8))
        open(os.path.join(images, b"frame_%d_" % i + LATIN1 + b".png"), "wb").write(png.tobytes())
    video = b(tmp_path, b"clip_" + LATIN1 + b".avi")
    write_numbered_video(str(tmp_path / "plain.avi"), n=4)  # OpenCV itself cannot take the byte name
    os.rename(str(tmp_path / "plain.avi"), video)
    return data, images, video


def test_byte_file_names_are_read_everywhere_without_a_crash(latin1_inputs, tmp_path):
    data, images, video = latin1_inputs
    out_video = b(tmp_path, b"out_" + LATIN1 + b".avi")
    record = b(tmp_path, b"r_" + LATIN1 + b".jsonl")
    for source in (data, images, video):
        p = run("run", "--source", os.fsdecode(source), "--max-frames", "3", "--quiet", "--save-video",
                os.fsdecode(out_video), "--record", os.fsdecode(record))
        assert p.returncode == 0, p.stderr.decode("utf-8", "replace")[-1500:]
        with opencv_path(os.fsdecode(out_video)) as where:  # (OpenCV itself cannot take the byte name)
            assert cv2.VideoCapture(where).isOpened()
    p = run("classify", os.fsdecode(images), "--quiet")
    assert p.returncode == 0 and LATIN1 in p.stdout, p.stderr  # the names come back as the same bytes
    p = run("evaluate", os.fsdecode(data), "--json")
    assert p.returncode == 0 and json.loads(p.stdout)["n_patches"] == 41, p.stderr


# -- 2. outputs that destroy data -----------------------------------------------------------------------

def test_an_output_onto_an_input_or_another_output_is_refused_before_anything_opens(tmp_path):
    video = tmp_path / "in.avi"
    write_numbered_video(str(video), n=5)
    before = digest(video)
    os.link(video, tmp_path / "hard.avi")
    os.symlink(video, tmp_path / "soft.avi")
    for alias in ("in.avi", "hard.avi", "soft.avi"):
        line = one_error_line(run("run", "--source", str(video), "--save-video", str(tmp_path / alias), "--quiet"))
        assert "same file as --source" in line
    line = one_error_line(run("run", "--source", str(video), "--save-video", str(tmp_path / "o.avi"),
                              "--record", str(tmp_path / "o.avi"), "--quiet"))
    assert "same file as --record" in line
    assert digest(video) == before and not (tmp_path / "o.avi").exists()
    # classify --out onto one of its own input images
    img = write_patch(tmp_path / "p" / "a.png", np.full((50, 50, 3), 90, np.uint8))
    before = digest(img)
    assert "same file as an input image" in one_error_line(run("classify", str(img.parent), "--out", str(img)))
    assert digest(img) == before


def test_recording_onto_another_programs_file_is_refused_and_the_file_kept(tmp_path):
    video = tmp_path / "in.avi"
    write_numbered_video(str(video), n=3)
    notes = tmp_path / "notes.txt"
    notes.write_text("field notes, not results\n" * 3)
    line = one_error_line(run("run", "--source", str(video), "--record", str(notes), "--quiet"))
    assert "not an idc-edge results file" in line
    assert notes.read_text() == "field notes, not results\n" * 3


def test_results_to_standard_output_are_streamed_whole(tmp_path):
    video = tmp_path / "in.avi"
    write_numbered_video(str(video), n=3)
    p = run(shell=f"{sys.executable} -m idc_edge run --source {video} --record /dev/stdout --quiet | cat")
    assert p.returncode == 0, p.stderr
    lines = [json.loads(line) for line in p.stdout.splitlines()]
    assert "session" in lines[0] and [r["index"] for r in lines[1:]] == [0, 1, 2]


# -- 6. one line, never a traceback ------------------------------------------------------------------------

@pytest.mark.parametrize("args,expected", [
    (["run", "--source", "x.avi", "--um-per-px", "1e308"], "--um-per-px must be from 0.01 to 100"),
    (["run", "--source", "x.avi", "--um-per-px", "-0"], "--um-per-px must be from 0.01 to 100"),
    (["run", "--source", "x.avi", "--stride", "9" * 5000], "--stride must be a whole number"),
    (["run", "--camera", "0", "--camera-timeout", "1e300"], "at most"),
    (["run", "--source", "x" * 5000 + ".avi"], "too long"),
    (["run", "--camera", "²"], "no camera"),
    (["run", "--source", ""], "empty"),
    (["run", "--source", "x.avi", "--record", ""], "empty"),
    (["classify", ""], "empty"),
    (["evaluate", "   "], "empty"),
    (["info", "--model", ""], "empty"),
    (["run", "--source", "x.avi", "--profile", ""], "empty"),
    (["calibrate", "white", "--source", " "], "empty"),
    (["run", "--source", "x.avi", "--patient", ""], "empty"),
    (["classify", "IMG", "--out", "/"], "folder"),
    (["classify", "IMG", "--out", "/no/such/folder/x.csv"], "does not exist"),
    # "-" is standard output to most tools: it wrote a file named "-" in the working folder
    (["run", "--source", "IMG", "--record", "-"], "--record '-' is not standard output here: name /dev/stdout"),
    (["classify", "IMG", "--out", "-"], "--out '-' is not standard output here: omit --out"),
    (["report", "-"], "RESULTS.jsonl '-' is not standard input here"),
    # an output inside a file: it said "folder ... does not exist" of a file that does
    (["classify", "IMG", "--out", "IMG/x.csv"], "a.png' is a file, not a folder"),
    (["run", "--source", "IMG", "--record", "IMG/r.jsonl"], "a.png' is a file, not a folder"),
    (["run", "--source", "IMG", "--save-video", "IMG/v.avi"], "a.png' is a file, not a folder"),
])
def test_extreme_and_empty_arguments_are_one_line(args, expected, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    img = str(write_patch(tmp_path / "a.png", np.full((50, 50, 3), 90, np.uint8)))
    assert expected in one_error_line(run_here(*[a.replace("IMG", img) for a in args]))
    assert not (tmp_path / "-").exists()


def test_huge_scales_on_a_real_source_are_a_memory_budget_error(tmp_path, synthetic_dataset, monkeypatch):
    video = tmp_path / "in.avi"
    write_numbered_video(str(video), n=2)
    # scales outside 0.01-100 µm/px are refused where they enter (test_hostile_round7.py); within it, a
    # frame or slide too large for the budget at that scale is still refused before it is allocated
    monkeypatch.setenv("IDC_EDGE_MEMORY_MB", "16")
    assert "memory budget" in one_error_line(run("run", "--source", str(video), "--um-per-px", "100", "--quiet"))
    assert "memory budget" in one_error_line(run("run", "--source", str(synthetic_dataset), "--um-per-px", "100",
                                                 "--quiet"))
    monkeypatch.delenv("IDC_EDGE_MEMORY_MB")
    # a mistyped coordinate: that file is skipped and named (tests/test_quiet_failures.py); a slide that is
    # over the budget without it is still refused, naming the file that reaches farthest
    name = "p1_idx5_x99999999_y1_class0.png"
    write_patch(synthetic_dataset / "p1" / "0" / name, np.full((50, 50, 3), 200, np.uint8))
    monkeypatch.setenv("IDC_EDGE_MEMORY_MB", "2")  # p1's slide is 1050×1050 px (3.2 MiB) with its edge patch
    line = one_error_line(run("run", "--source", str(synthetic_dataset), "--quiet", "--patient", "p1"))
    assert "memory budget" in line and "mistyped" in line


@pytest.mark.parametrize("field,value", [
    ("patch_size_px", "50"), ("patch_size_px", True), ("patch_size_px", 10 ** 400), ("um_per_px", [4]),
    ("um_per_px", 10 ** 400), ("channel_order", ["RGB"]), ("threshold", {"a": 1}), ("threshold", None),
    ("class_names", "ab"), ("class_names", [1, 2]), ("float_model", 7), ("provenance", [["a", 1]]),
    ("model_sha256", 12), ("dense", "x" * 100000), ("format_version", "x" * 100000),
    ("context", {"sigma_px": 1e-300, "weight": 1.0, "threshold": 0.4}),  # its square underflowed: 0/0 weights
])
def test_a_sidecar_with_a_field_of_the_wrong_type_is_one_short_line(tmp_path, field, value):
    model = tmp_path / "m.tflite"
    shutil.copy(DEFAULT_MODEL, model)
    spec = json.loads(sidecar_path(DEFAULT_MODEL).read_text())
    spec[field] = value
    sidecar_path(model).write_text(json.dumps(spec))
    line = one_error_line(run_here("info", "--model", str(model)))
    assert field in line and len(line) < 300


def test_closed_standard_streams_and_an_early_closed_pipe_are_handled(tmp_path):
    cmd = f"{sys.executable} -m idc_edge"
    p = run(shell=f"{cmd} info >&-")
    assert "standard output is closed" in one_error_line(p)
    p = run(shell=f"{cmd} info 2>&-")
    assert p.returncode == 0 and b"backend" in p.stdout
    p = run(shell=f"{cmd} run --source nope.avi 2>&-")
    assert p.returncode == 2 and p.stderr == b""
    p = run(shell=f"{cmd} info | head -c 1; exit ${{PIPESTATUS[0]}}")
    assert p.returncode in (0, 141) and b"Traceback" not in p.stderr and p.stderr == b"", p.stderr
    # a results file opened while stdout is closed must not become descriptor 1
    video = tmp_path / "in.avi"
    write_numbered_video(str(video), n=2)
    rec = tmp_path / "r.jsonl"
    p = run(shell=f"{cmd} run --source {video} --record {rec} --quiet >&-")
    assert p.returncode == 0, p.stderr
    assert [json.loads(line).get("index") for line in rec.read_text().splitlines()][-2:] == [0, 1]


# -- 8. selections that match nothing -----------------------------------------------------------------------

def test_selections_that_match_nothing_name_the_selection(synthetic_dataset):
    line = one_error_line(run("run", "--source", str(synthetic_dataset), "--patient", "p9", "--quiet"))
    assert "p9" in line and "p1, p2" in line and "expected <patient>" not in line
    line = one_error_line(run("evaluate", str(synthetic_dataset), "--patients", "p9"))
    assert "p9" in line and "expected <patient>" not in line
    line = one_error_line(run("evaluate", str(synthetic_dataset), "--validation", "--patients", "p1"))
    assert "validation" in line and "p1" in line
    p = run("evaluate", str(synthetic_dataset), "--patients", "p1", "p7", "--json")  # partly matched: said, not guessed
    assert p.returncode == 0 and b"warning: 1 of the selected patient(s) have no patches in DATA_DIR: p7" in p.stderr


# -- 5. hangs, through the real command ------------------------------------------------------------------------

@pytest.mark.parametrize("scheme", ["http", "tcp", "rtsp"])
def test_a_stalled_network_camera_is_one_error_line_within_the_timeout_and_no_signal_death(silent_server, scheme):
    """FFmpeg's open returned just after our deadline; the abandoned open then aborted the process (SIGABRT)."""
    url = f"{scheme}://127.0.0.1:{silent_server}/stream"
    line = one_error_line(run("run", "--camera", url, "--camera-timeout", "1", "--quiet", timeout=60))
    assert "no camera at" in line


# -- 7. options checked where they enter, whatever the inputs turn out to be -------------------------------

@pytest.mark.parametrize("option,value,expected", [
    ("--um-per-px", "nan", "--um-per-px must be from 0.01 to 100"), ("--um-per-px", "0", "--um-per-px must be from 0.01 to 100"),
    ("--stride", "0", "--stride must be >= 1"), ("--stride", "30", "not a multiple of this model's output stride"),
])
def test_classify_refuses_a_tiling_option_it_could_never_use_even_with_patch_images_only(tmp_path, option, value,
                                                                                          expected):
    """--um-per-px and --stride act only on images larger than a patch; a value that can never work is
    refused before any row, not accepted for a folder of patches and refused at the first large image."""
    patch = str(write_patch(tmp_path / "a.png", np.full((50, 50, 3), 90, np.uint8)))
    p = run_here("classify", "--quiet", patch, option, value)
    assert expected in one_error_line(p)
    assert p.stdout == b""
    if "output stride" in expected:  # the way out it names is one classify has
        assert "(--no-dense)" in one_error_line(p)
        assert run_here("classify", "--quiet", patch, option, value, "--no-dense").returncode == 0


def test_classify_reads_a_linked_folder_as_evaluate_does_and_each_folder_once(tmp_path):
    """A data set put together from links (class 0 linked in from elsewhere): classify listed only the
    real folder's patches, leaving every linked one out without a word; a link back up is read once."""
    real, linked = tmp_path / "data" / "p1" / "1", tmp_path / "elsewhere" / "0"
    for folder, n, label in ((real, 2, 1), (linked, 3, 0)):
        folder.mkdir(parents=True)
        for i in range(n):
            write_patch(folder / f"p1_idx5_x{50 * i}_y0_class{label}.png", np.full((50, 50, 3), 90 + i, np.uint8))
    (tmp_path / "data" / "p1" / "0").symlink_to(linked, target_is_directory=True)
    (tmp_path / "data" / "p1" / "loop").symlink_to(tmp_path / "data", target_is_directory=True)
    p = run_here("classify", str(tmp_path / "data"), "--quiet")
    assert p.returncode == 0, p.stderr
    rows = p.stdout.decode().splitlines()[1:]
    assert sorted(r.split(",")[2] for r in rows) == ["0", "0", "0", "1", "1"]


def test_a_png_cut_short_is_one_warning_line_without_the_decoder_s_own_message(tmp_path):
    """libpng printed "PNG input buffer is incomplete" on the terminal beside idc-edge's line about the
    file (OpenCV's log level does not reach it); a PNG without its end chunk is now refused before decoding."""
    good = write_patch(tmp_path / "images" / "a.png", np.full((50, 50, 3), 90, np.uint8))
    data = good.read_bytes()
    (tmp_path / "images" / "b.png").write_bytes(data[: len(data) // 2])
    p = run("classify", str(tmp_path / "images"), "--quiet")
    err = p.stderr.decode()
    assert p.returncode == 0 and err.splitlines() == [
        f"idc-edge: warning: skipped 1 unreadable image(s) (corrupt or not images), e.g. '{tmp_path / 'images' / 'b.png'}'"]
    p = run("run", "--source", str(tmp_path / "images" / "b.png"), "--quiet")
    assert "the PNG file is cut short" in one_error_line(p) and "libpng" not in p.stderr.decode()
