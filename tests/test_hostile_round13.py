"""Red-team round 13: float frames whose values overshoot their range by a few pixels.

Everything is real: fields of the validation slides rebuilt from the data set, the shipped int8 model in
the real LiteRT interpreter, TIFF files OpenCV writes, the CLI run in this process.
"""
from __future__ import annotations

import warnings

import cv2
import numpy as np
import pytest

from hostile import TINY, cli, one_error_line, tissue_frame


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("IDC_EDGE_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def shipped():
    from idc_edge.detector import Detector

    with Detector(reuse=False) as det:
        yield det


def _decisions(result) -> tuple:
    return result.tissue.tolist(), result.idc.tolist(), (result.no_call if result.no_call is not None
                                                         else np.zeros_like(result.tissue)).tolist()


# -- float frames: a few values past 0-1 (resampling, sharpening, colour gains) ---------------------------------

def test_a_0_to_1_float_frame_with_a_few_values_past_1_or_below_0_is_read_as_0_to_1(shipped, validation_fields):
    """One pixel at 1.01 (a bicubic resize's overshoot: 1.047 on these fields) had the whole frame read as
    0-255: black, no tissue, no IDC, and no warning once a 0-255 frame had been warned about; one pixel at
    -0.01 (a Lanczos resize's undershoot) had it read as -1..1: washed out, every tissue patch no call."""
    import idc_edge.frames as frames

    frames._warned.clear()
    words = []
    for field in validation_fields:
        bgr = cv2.cvtColor(field.rgb, cv2.COLOR_RGB2BGR)
        expected = _decisions(shipped.detect(bgr))
        assert sum(map(sum, expected[0])) > 0  # tissue to lose
        unit = bgr.astype(np.float32) / 255
        over, under = unit.copy(), unit.copy()
        over[0, 0, 0], under[0, 0, 0] = 1.01, -0.01
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            shipped.detect(bgr.astype(np.float32))  # a 0-255 frame first: its guess warned, once
            got_over, got_under = shipped.detect(over), shipped.detect(under)
        words += [str(w.message) for w in said]
        assert _decisions(got_over) == expected and _decisions(got_under) == expected
        up = cv2.resize(unit, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)  # overshoots 1
        up8 = cv2.resize(bgr, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert np.abs(frames.to_bgr8(up).astype(int) - up8.astype(int)).max() <= 1
    assert any("mostly within 0-1 and some beyond it" in w for w in words), words


def test_white_balance_gains_or_sharpening_on_a_0_to_1_frame_keep_its_tissue(shipped, validation_fields):
    """Gains that push the glass past 1 and an unsharp mask (-0.14 to 1.21) were read as 0-255 (no tissue)."""
    for field in validation_fields[:4]:
        unit = cv2.cvtColor(field.rgb, cv2.COLOR_RGB2BGR).astype(np.float32) / 255
        gained = unit * np.array([0.97, 1.0, 1.08], np.float32)
        sharp = cv2.addWeighted(unit, 1.5, cv2.GaussianBlur(unit, (0, 0), 2), -0.5, 0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for frame in (gained, sharp):
                assert frame.max() > 1
                got = shipped.detect(frame)
                expected = shipped.detect(np.clip(frame * 255 + 0.5, 0, 255).astype(np.uint8))
                assert _decisions(got) == _decisions(expected)


def test_normalised_minus_1_to_1_frames_and_0_to_255_frames_are_read_as_before():
    from idc_edge.frames import float_range, to_bgr8

    rng = np.random.default_rng(3)
    eight = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    eight[0, 0], eight[0, 1] = 0, 255
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for frame in (eight / 127.5 - 1, (eight / 127.5 - 1) * 1.03, eight.astype(np.float32)):
            assert np.abs(to_bgr8(frame.astype(np.float32)).astype(int) - eight.astype(int)).max() <= 4
    assert float_range(0.0, 1.0) == (0.0, 1.0) and float_range(-0.9, 0.8) == (-1.0, 1.0)
    assert float_range(0.0, 2.5) is None and float_range(-3.0, 1.0) is None


def test_classify_reads_a_0_to_1_float_tiff_with_overshoot_as_its_picture(tmp_path, capsys, validation_fields):
    """A float TIFF written by an image tool after resampling (values to 1.05) was classified as black."""
    bgr = cv2.cvtColor(validation_fields[0].rgb, cv2.COLOR_RGB2BGR)
    unit = bgr.astype(np.float32) / 255
    unit[5, 5] = 1.05
    assert cv2.imwrite(str(tmp_path / "field.tiff"), unit)
    assert cv2.imwrite(str(tmp_path / "field.png"), bgr)
    rows = {}
    for name in ("field.tiff", "field.png"):
        code, _ = cli(capsys, "classify", tmp_path / name, "--quiet", "--um-per-px", 4, "--out", tmp_path / f"{name}.csv")
        assert code == 0
        rows[name] = [line.split(",", 1)[1] for line in (tmp_path / f"{name}.csv").read_text().splitlines()[1:]]
    assert rows["field.tiff"] == rows["field.png"] and len(rows["field.png"]) > 1


# -- a GIF whose logical screen is huge: decoded before any budget check ---------------------------------------

def _gif_claiming(path, side: int) -> None:
    """A real 2×2 GIF (OpenCV writes it) whose logical screen is edited to ``side``×``side`` px: OpenCV's
    decoder allocates and fills that screen."""
    ok, data = cv2.imencode(".gif", np.full((2, 2, 3), 200, np.uint8))
    assert ok
    data = bytearray(data.tobytes())
    data[6:10] = side.to_bytes(2, "little") * 2
    path.write_bytes(bytes(data))


def test_a_gif_claiming_a_huge_screen_is_refused_by_the_budget_before_it_is_decoded(tmp_path, capsys, monkeypatch):
    """A 45-byte GIF claiming 30000×30000 px was decoded (6 GB resident, 14 s) before the rescale's budget
    check refused it; on a 2 GB board the kernel killed the process. Its screen is now read from the header
    as every other format's size is, and refused before OpenCV allocates it."""
    import resource

    monkeypatch.setenv("IDC_EDGE_MEMORY_MB", "64")
    _gif_claiming(tmp_path / "bomb.gif", 8000)  # 256 MB as BGRA: over a 64 MB budget
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    code, err = cli(capsys, "classify", tmp_path / "bomb.gif", "--quiet", "--out", tmp_path / "rows.csv")
    assert code == 2
    line = one_error_line(err)
    assert "decoding input" in line or "decoding image" in line, line
    assert "8000×8000 px" in line and "memory budget" in line, line
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000  # KB: never decoded
    folder = tmp_path / "frames"
    folder.mkdir()
    (tmp_path / "bomb.gif").rename(folder / "0.gif")
    assert cv2.imwrite(str(folder / "1.png"), tissue_frame())
    code, err = cli(capsys, "run", "--source", folder, "--model", TINY, "--quiet", "--record", tmp_path / "r.jsonl")
    assert code == 0 and "0.gif' (8000×8000 px)" in err and "1 unusable frame(s) skipped" in err, err


# -- a terminal or pipe whose encoding is not UTF-8 -----------------------------------------------------------

@pytest.mark.parametrize("encoding", ["ascii", "latin-1"])
def test_report_and_classify_print_whole_to_a_terminal_that_is_not_utf8(tmp_path, encoding):
    """Under a locale that is not UTF-8 (or ``PYTHONIOENCODING=ascii`` in a service's environment) standard
    output could not encode "…", "≥", "µm" or a file name's "é": `report` stopped half way through its summary
    with "internal error (UnicodeEncodeError ...)", exit 2; `classify` lost its rows the same way."""
    import os
    import subprocess
    import sys

    from conftest import run_recorded

    image = tmp_path / "café ×2.png"
    assert cv2.imwrite(str(image), tissue_frame())
    run_recorded(image, tmp_path / "r.jsonl", "--model", TINY, "--quiet")
    env = {**os.environ, "PYTHONIOENCODING": encoding, "IDC_EDGE_CACHE_DIR": str(tmp_path / "cache")}

    def idc_edge(*args):
        return subprocess.run([sys.executable, "-m", "idc_edge", *map(str, args)], capture_output=True, env=env,
                              timeout=180)

    utf8 = subprocess.run([sys.executable, "-m", "idc_edge", "report", tmp_path / "r.jsonl"], capture_output=True,
                          env={**env, "PYTHONIOENCODING": "utf-8"}, timeout=180)
    assert utf8.returncode == 0 and "≥" in utf8.stdout.decode()
    p = idc_edge("report", tmp_path / "r.jsonl")
    assert p.returncode == 0 and p.stderr == b"", p.stderr
    text = p.stdout.decode(encoding)
    assert len(text.splitlines()) == len(utf8.stdout.decode().splitlines())  # every line, none cut off
    assert "(stage at rest >= 0.5 s)" in text and "Traceback" not in text
    p = idc_edge("classify", image, "--model", TINY, "--quiet")
    assert p.returncode == 0, p.stderr
    rows = p.stdout.decode(encoding).splitlines()
    assert len(rows) > 2 and all(r.startswith(str(tmp_path)) for r in rows[1:]), rows
    # a name the stream cannot hold is escaped, never spelt as another file's name ("café x2.png")
    shown = "café ×2.png," if encoding == "latin-1" else "caf\\xe9 \\xd72.png,"
    assert all(shown in r for r in rows[1:]), rows


# -- a working folder that no longer exists -------------------------------------------------------------------

def _in_a_deleted_folder(tmp_path, *args) -> "subprocess.CompletedProcess":
    """``idc-edge ARGS`` started in a folder that is deleted first (a shell left in a folder another
    program removed: a sync tool, a ``rm -rf build && mkdir build`` in another terminal)."""
    import os
    import subprocess
    import sys

    from conftest import ROOT

    gone = tmp_path / "gone"
    gone.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "IDC_EDGE_CACHE_DIR": str(tmp_path / "cache")}
    return subprocess.run(["sh", "-c", 'cd "$1" && rmdir "$1" && shift && exec "$@"', "sh", str(gone), sys.executable,
                           "-m", "idc_edge", *map(str, args)], capture_output=True, text=True, env=env, timeout=180)


@pytest.mark.parametrize("args,named", [
    (("run", "--source", "{image}", "--record", "r.jsonl"), "--record 'r.jsonl'"),
    (("run", "--source", "{image}", "--save-video", "v.avi"), "--save-video 'v.avi'"),
    (("run", "--source", "field.png"), "--source 'field.png'"),
    (("classify", "{image}", "--out", "rows.csv"), "--out 'rows.csv'"),
    (("report", "r.jsonl"), "'r.jsonl'"),
])
def test_a_relative_path_in_a_working_folder_that_no_longer_exists_is_named(tmp_path, args, named):
    """Every relative path failed as "idc-edge: error: it does not exist", naming neither the path nor the
    folder; an absolute path still works."""
    image = tmp_path / "field.png"
    assert cv2.imwrite(str(image), tissue_frame())
    model = ("--model", TINY) if args[0] != "report" else ()
    p = _in_a_deleted_folder(tmp_path, *(a.format(image=image) for a in args), *model)
    assert p.returncode == 2, p.stderr
    line = one_error_line(p.stderr)
    assert named in line and "working folder, which no longer exists" in line and "full path" in line, line
    ok = _in_a_deleted_folder(tmp_path, "run", "--source", image, "--record", tmp_path / "r.jsonl", "--model", TINY,
                              "--quiet")
    assert ok.returncode == 0 and (tmp_path / "r.jsonl").is_file(), ok.stderr


def test_the_api_names_a_relative_path_when_the_working_folder_is_gone(tmp_path, monkeypatch):
    from idc_edge.errors import OptionError
    from idc_edge.sinks import JsonlSink
    from idc_edge.sources import open_source

    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    with pytest.raises(OptionError, match=r"source 'field.png' is relative to the working folder, which no longer"):
        open_source("field.png")
    with pytest.raises(OptionError, match=r"'r.jsonl' is relative to the working folder"):
        JsonlSink("r.jsonl")


# -- the process stopped (Ctrl-Z, then fg) during a live run --------------------------------------------------

def test_a_live_run_stopped_with_ctrl_z_and_resumed_goes_on(tmp_path):
    """SIGSTOP then SIGCONT (Ctrl-Z and ``fg`` at the terminal, a debugger, a paused virtual machine) for
    longer than the camera timeout: the monotonic clock ran on while the process was stopped, so on resume the
    run ended at once with "camera ... stopped answering: no frame and no error for 1 s", exit 3, though the
    camera had sent frames all along."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from conftest import ROOT
    from hostile import fake_camera

    camera = fake_camera(tmp_path / "cam", 40)
    record = tmp_path / "r.jsonl"
    env = {**os.environ, "IDC_EDGE_CACHE_DIR": str(tmp_path / "cache")}
    with subprocess.Popen([sys.executable, "-m", "idc_edge", "run", "--camera", str(camera), "--camera-timeout", "1",
                           "--model", TINY, "--quiet", "--record", str(record), "--max-frames", "150"],
                          cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True) as p:
        deadline = time.monotonic() + 60
        while (not record.exists() or len(record.read_text().splitlines()) < 10) and time.monotonic() < deadline:
            time.sleep(0.1)  # running, frames recorded
        p.send_signal(signal.SIGSTOP)
        time.sleep(5)  # longer than the camera timeout and its 2 s of grace
        p.send_signal(signal.SIGCONT)
        _, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    assert "stopped answering" not in err and len(record.read_text().splitlines()) == 1 + 150


def test_the_wait_clock_counts_a_long_gap_as_one_step():
    from idc_edge.waitclock import WaitClock

    clock = WaitClock(0.05)
    import time

    time.sleep(0.3)  # as if the process were stopped between two readings
    assert 0.05 <= clock.waited() < 0.1


# -- the wall clock set mid-run (a board without a real-time clock, set from the network) ----------------------

def test_a_live_runs_frame_times_do_not_jump_when_the_wall_clock_is_set_mid_run(tmp_path, monkeypatch, capsys):
    """A board without a real-time clock starts near 1970 and its clock steps to the present when the network
    sets it, minutes into a run: the camera's frames were stamped with the wall clock, so the results file said
    "300 frame(s) over 1795992841.8 s" and its plot spanned 57 years. The wall clock here steps 56 years forward
    once the run's fifth frame is written, on the real camera reader (a video file opened as a camera). (It
    stepped after one second of the run, and a quiet machine ran all 40 frames within that second.)"""
    import time

    from hostile import fake_camera
    from idc_edge.record import read_records
    from idc_edge.session import RunConfig, run_session
    from idc_edge.sinks import JsonlSink
    from idc_edge.detector import DetectorOptions

    real, offset = time.time, [0.0]
    monkeypatch.setattr(time, "time", lambda: real() + offset[0])

    class SetsTheClock(JsonlSink):
        written = 0

        def write(self, frame):
            super().write(frame)
            self.written += 1
            if self.written == 5:
                offset[0] = 56 * 365.25 * 86400

    camera = fake_camera(tmp_path / "cam", 20)
    summary = run_session(RunConfig(camera=str(camera), max_frames=40, detector=DetectorOptions(model_path=TINY)),
                          [SetsTheClock(tmp_path / "r.jsonl")])
    assert offset[0] > 0 and summary.frames == 40  # the clock was set during the run
    times = [r["time"] for r in read_records(tmp_path / "r.jsonl")]
    assert times == sorted(times) and times[-1] - times[0] < summary.elapsed_s + 1.0
    import re

    from idc_edge.cli import main

    capsys.readouterr()
    code = main(["report", str(tmp_path / "r.jsonl")])
    out = capsys.readouterr().out
    over = re.search(r"40 frame\(s\) over ([0-9.]+) s", out)
    assert code == 0 and over and float(over.group(1)) < summary.elapsed_s + 1.0, out


# -- an image folder copied from a Mac: hidden AppleDouble files, .DS_Store, .Trashes -----------------------------

def _copied_from_a_mac(folder) -> None:
    """Two images as macOS leaves them on a USB stick: an AppleDouble ``._NAME`` beside each (its metadata,
    magic 0x00051607, named like the image), ``.DS_Store``, and a deleted image in ``.Trashes``."""
    folder.mkdir()
    for i, name in enumerate(("a.png", "b.png")):
        assert cv2.imwrite(str(folder / name), tissue_frame(width=200 + i))
        (folder / f"._{name}").write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        " + bytes(4000))
    (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1" + bytes(100))
    (folder / ".Trashes" / "501").mkdir(parents=True)
    assert cv2.imwrite(str(folder / ".Trashes" / "501" / "deleted.png"), tissue_frame(width=300))


def test_an_image_folder_copied_from_a_mac_reads_its_images_only(tmp_path, capsys):
    """`run --source` warned "cannot read image '._a.png'" for every image and counted as many unusable frames;
    `classify` counted them as corrupt images and classified the deleted image in `.Trashes`. Hidden files and
    folders are now left out of a folder's images, as the data-set reader already left them out."""
    from idc_edge.record import read_records

    folder = tmp_path / "stick"
    _copied_from_a_mac(folder)
    code, err = cli(capsys, "run", "--source", folder, "--model", TINY, "--quiet", "--record", tmp_path / "r.jsonl")
    assert code == 0 and "warning" not in err and "skipped" not in err, err
    assert [r["frame"]["width"] for r in read_records(tmp_path / "r.jsonl")] == [200, 201]
    code, err = cli(capsys, "classify", folder, "--model", TINY, "--quiet", "--out", tmp_path / "rows.csv")
    assert code == 0 and "skipped" not in err, err
    listed = {line.split(",")[0] for line in (tmp_path / "rows.csv").read_text().splitlines()[1:]}
    assert listed == {str(folder / "a.png"), str(folder / "b.png")}
    code, _ = cli(capsys, "classify", folder / "._a.png", "--model", TINY, "--quiet")  # named: read as given
    assert code == 2
