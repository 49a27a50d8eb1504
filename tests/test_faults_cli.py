"""Faults through the real ``idc-edge`` command: signals, kill -9, a camera that goes away, damaged
inputs. Every test runs the command as a subprocess on real files and checks what is left on disk.
"""
import csv
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from conftest import ROOT, frame_with_blob, write_patch
from idc_edge.record import read_records
from idc_edge.spec import sidecar_path
from test_faults import jpeg_starts, write_numbered_video
from tiny_model import PURPLE

CMD = [sys.executable, "-m", "idc_edge"]


def start(*args, **kwargs):
    return subprocess.Popen([*CMD, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            **kwargs)


def run(*args, timeout=180):
    return subprocess.run([*CMD, *map(str, args)], capture_output=True, text=True, timeout=timeout)


def wait_for_lines(path, n, proc, timeout=120):
    """Wait until ``path`` holds ``n`` complete lines (or the process ended); returns its bytes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = path.read_bytes() if path.exists() else b""
        if data.count(b"\n") >= n or proc.poll() is not None:
            return data
        time.sleep(0.01)
    proc.kill()
    pytest.fail(f"no {n} lines in {path} after {timeout} s")


def frame_count(path):
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


@pytest.fixture(scope="module")
def long_video(tmp_path_factory):
    """600 frames, 320×240 MJPG: far longer than any test lets a run go."""
    path = tmp_path_factory.mktemp("video") / "stage.avi"
    tile = frame_with_blob(shape=(240, 320), box=(60, 40, 260, 200))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (320, 240))
    for i in range(600):
        writer.write(np.roll(tile, 2 * i, axis=1))
    writer.release()
    return path


def assert_runs_are_whole(path):
    """Every line is JSON and the file is one or more runs, each a session header followed by frame
    indices 0, 1, 2, ...; returns each run's indices."""
    data = path.read_bytes()
    assert data == b"" or data.endswith(b"\n"), f"unfinished last line: {data[-80:]!r}"
    runs = []
    for line in data.splitlines():
        record = json.loads(line)
        if "session" in record:
            runs.append([])
        else:
            assert runs, "a frame record before any session header"
            runs[-1].append(record["index"])
    for r in runs:
        assert r == list(range(len(r))), f"a frame is missing or repeated: {r}"
    return runs


# -- Ctrl-C, SIGTERM, SIGHUP: the recording and the video are finalised ------------------------

@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT])
def test_a_stop_signal_finalises_the_results_and_the_video(tiny_int8, long_video, tmp_path, signum):
    rec, out = tmp_path / "r.jsonl", tmp_path / "overlay.mp4"  # an MP4 without its index is unreadable
    proc = start("run", "--source", long_video, "--model", tiny_int8, "--record", rec, "--save-video", out)
    wait_for_lines(rec, 4, proc)  # the session header and 3 frames
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr and "idc-edge: interrupted; results so far are saved" in stderr
    (frames,) = assert_runs_are_whole(rec)
    assert 3 <= len(frames) < 600
    assert frame_count(out) == len(frames)  # the frame the stop landed on is in both or in neither
    assert f"{len(frames)} frame(s) in " in stderr and f"; {len(frames)} result(s) in {rec}" in stderr


@pytest.mark.parametrize("first,then", [(signal.SIGINT, signal.SIGINT), (signal.SIGTERM, signal.SIGINT),
                                         (signal.SIGTERM, signal.SIGTERM)])
def test_stop_signals_repeated_while_the_run_finishes_still_end_it_cleanly(tiny_int8, long_video, tmp_path, first,
                                                                           then):
    """Ctrl-C pressed again (or a service manager's SIGTERM repeated) while the outputs close or the
    process exits: the first stops the run, the rest only say it is stopping; never a traceback or
    an exit by the signal, and the results and the MP4 are whole."""
    rec, out = tmp_path / "r.jsonl", tmp_path / "overlay.mp4"
    proc = start("run", "--source", long_video, "--model", tiny_int8, "--record", rec, "--save-video", out)
    wait_for_lines(rec, 4, proc)
    proc.send_signal(first)
    for _ in range(60):  # a burst over the next 0.6 s covers closing and exiting
        if proc.poll() is not None:
            break
        time.sleep(0.01)
        proc.send_signal(then)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    (frames,) = assert_runs_are_whole(rec)
    assert len(frames) - 1 <= frame_count(out) <= len(frames)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_stop_signal_while_classify_writes_its_csv_keeps_the_earlier_one_and_leaves_no_part_file(tmp_path,
                                                                                                   signum):
    """SIGTERM or SIGHUP (a service manager, a closed terminal) while classify --out works: the command
    stops as on Ctrl-C (one line, exit 130), the earlier CSV stays and its hidden half-written
    replacement is removed; killed by the signal, it left one .part file behind at every stop."""
    folder = tmp_path / "patches"
    folder.mkdir()
    rng = np.random.default_rng(3)
    for i in range(1500):
        write_patch(folder / f"p1_idx5_x{50 * i}_y0_class0.png", rng.integers(60, 230, (50, 50, 3), dtype=np.uint8))
    out = tmp_path / "out.csv"
    earlier = b"path,patient,label,probability,idc,x,y,tissue\nx.png,,,0.5,1,0,0,1\n"
    out.write_bytes(earlier)
    proc = start("classify", folder, "--out", out, "--quiet")
    deadline = time.monotonic() + 60
    # rows on disk in the hidden file: the model is loaded and classify is in its loop
    while not [p for p in tmp_path.iterdir() if p.name.endswith(".part") and p.stat().st_size] and proc.poll() is None:
        assert time.monotonic() < deadline, "classify never began writing"
        time.sleep(0.005)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == "idc-edge: interrupted" and "Traceback" not in stderr
    assert out.read_bytes() == earlier
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv", "patches"]


# -- kill -9 at random moments: whole lines, nothing reported is lost -------------------------

def test_kill_9_at_random_moments_never_loses_a_reported_frame(tiny_int8, long_video, tmp_path):
    """Each run appends to the same file and is killed at a random moment; lines are ~15 KB (every
    patch of a stride-10 grid is called IDC), so a kill can land inside a multi-page write."""
    rec = tmp_path / "r.jsonl"
    rng = random.Random(9)
    args = ["run", "--source", long_video, "--model", tiny_int8, "--record", rec, "--threshold", 0, "--no-mask",
            "--stride", 10]
    seen_before_kill = []
    for delay in [rng.uniform(0.0, 0.6) for _ in range(4)]:
        proc = start(*args)
        before = wait_for_lines(rec, (rec.read_bytes().count(b"\n") if rec.exists() else 0) + 2, proc)  # header, frame
        time.sleep(delay)
        seen = rec.read_bytes()
        proc.send_signal(signal.SIGKILL)
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL, stderr
        after = rec.read_bytes()
        whole = seen[:seen.rfind(b"\n") + 1]
        assert after.startswith(whole), "a line that was on disk before the kill changed or vanished"
        assert len(before) <= len(after)
        # what the run reported on stderr is on disk
        for line in stderr.splitlines():
            if line.startswith("frame "):
                reported = int(line.split()[1].rstrip(":"))
                assert reported < len(read_records(rec)), line
        seen_before_kill.append(whole.count(b"\n"))
    assert all(json.loads(line) for line in rec.read_bytes().split(b"\n")[:-1])  # an unfinished tail is allowed
    p = run(*args, "--max-frames", 3, "--quiet")  # the next run repairs a cut tail and appends
    assert p.returncode == 0, p.stderr
    runs = assert_runs_are_whole(rec)
    assert len(runs) == 5 and len(runs[-1]) == 3
    assert sum(len(r) + 1 for r in runs[:-1]) >= seen_before_kill[-1]  # + 1: each run's header


# -- the camera goes away: a clean message, exit 3, everything saved --------------------------

def test_a_camera_that_goes_away_ends_the_run_with_exit_3_and_saved_results(tiny_int8, long_video, tmp_path):
    """A video file opened as a capture device plays like a live camera; deleting it is the cable
    being pulled: reads fail at its end and every re-open fails. (Without a suffix: ``--camera x.avi``
    is refused as a file, ``--source`` reads it.)"""
    device = tmp_path / "camera"
    shutil.copy(long_video, device)
    rec, out = tmp_path / "r.jsonl", tmp_path / "overlay.avi"
    proc = start("run", "--camera", device, "--camera-timeout", 1, "--model", tiny_int8, "--record", rec,
                 "--save-video", out)
    wait_for_lines(rec, 4, proc)  # the session header and 3 frames
    device.unlink()
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 3, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr
    assert lines[-1].startswith("idc-edge: error: camera") and "gave no frame for 1 s" in lines[-1]
    assert any(line.startswith("idc-edge: warning: camera") and "no frame" in line for line in lines)
    assert any(" frame(s) in " in line for line in lines)
    frames = [r["index"] for r in read_records(rec)]  # newest frame wins: a live camera's indices have gaps
    assert rec.read_bytes().endswith(b"\n") and frames == sorted(set(frames))
    assert len(frames) >= 3
    times = [r["time"] for r in read_records(rec)]  # the video plays as long as the recording (capture times)
    cap = cv2.VideoCapture(str(out))
    fps = cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    recorded, saved = times[-1] - times[0], frame_count(out) / fps
    assert abs(saved - recorded) <= max(0.1 * recorded, 1.5 / fps), (saved, recorded, fps)
    assert f"; {len(frames)} result(s) in {rec}" in stderr


def test_a_camera_path_that_does_not_exist_is_one_line(tmp_path):
    p = run("run", "--camera", tmp_path / "video9")
    assert p.returncode == 2 and p.stderr.strip().count("\n") == 0 and "no camera at" in p.stderr


# -- damaged inputs: skipped, counted, reported ---------------------------------------------

def test_run_skips_a_corrupt_video_frame_and_says_so(tiny_int8, tmp_path):
    path = write_numbered_video(tmp_path / "v.avi", n=12)
    data = bytearray(path.read_bytes())
    starts = jpeg_starts(bytes(data))
    data[starts[5]:starts[6] - 8] = bytes(starts[6] - 8 - starts[5])
    path.write_bytes(bytes(data))
    rec = tmp_path / "r.jsonl"
    p = run("run", "--source", path, "--model", tiny_int8, "--record", rec, "--quiet")
    assert p.returncode == 0, p.stderr
    assert [r["index"] for r in read_records(rec)] == [0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11]
    assert "idc-edge: warning: video" in p.stderr and "frame 5 cannot be decoded; skipped" in p.stderr
    assert "11 frame(s) in" in p.stderr and "1 unusable frame(s) skipped" in p.stderr
    assert "[mjpeg" not in p.stderr  # FFmpeg's own noise is ours, in one line


@pytest.fixture
def dataset_with_a_corrupt_png(synthetic_dataset):
    bad = synthetic_dataset / "p2" / "1" / "p2_idx5_x501_y501_class1.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))  # a PNG signature and then nothing usable
    write_patch(synthetic_dataset / "p2" / "1" / "p2_idx5_x551_y501_class1.png", np.full((50, 50, 3), PURPLE, np.uint8))
    return synthetic_dataset, bad


def test_run_on_a_data_set_with_a_corrupt_png_skips_and_reports_it(tiny_int8, dataset_with_a_corrupt_png, tmp_path):
    root, bad = dataset_with_a_corrupt_png
    rec = tmp_path / "r.jsonl"
    p = run("run", "--source", root, "--patient", "p2", "--model", tiny_int8, "--record", rec, "--quiet")
    assert p.returncode == 0, p.stderr
    assert f"idc-edge: warning: cannot read patch image {str(bad)!r}" in p.stderr
    assert "1 unreadable patch image(s) skipped" in p.stderr
    assert len(read_records(rec)) >= 1
    assert all(line.startswith("idc-edge: ") or " frame(s) in " in line for line in p.stderr.splitlines())


def test_evaluate_and_classify_skip_a_corrupt_png_and_report_it(tiny_int8, dataset_with_a_corrupt_png, tmp_path):
    root, bad = dataset_with_a_corrupt_png
    p = run("evaluate", root, "--model", tiny_int8, "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["skipped_files"] == 1 and out["n_patches"] == 42
    assert ("idc-edge: warning: skipped 1 unreadable patch image(s) (corrupt, not images or larger than a patch), "
            f"e.g. {bad}") in p.stderr
    assert all(line.startswith("idc-edge: warning:") for line in p.stderr.splitlines()), p.stderr
    csv_path = tmp_path / "p.csv"
    p = run("classify", root, "--model", tiny_int8, "--out", csv_path, "--quiet")
    assert p.returncode == 0, p.stderr
    rows = list(csv.DictReader(io.StringIO(csv_path.read_text())))
    assert len(rows) == 42 and str(bad) not in {r["path"] for r in rows}
    assert "idc-edge: warning: skipped 1 unreadable image(s)" in p.stderr
    assert all(line.startswith("idc-edge: warning:") for line in p.stderr.splitlines()), p.stderr


def test_an_image_folder_with_a_corrupt_image_is_skipped_and_counted(tiny_int8, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"f{i}.png"), frame_with_blob(shape=(120, 160)))
    (folder / "f1.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    rec = tmp_path / "r.jsonl"
    p = run("run", "--source", folder, "--model", tiny_int8, "--record", rec, "--quiet")
    assert p.returncode == 0, p.stderr
    assert [r["index"] for r in read_records(rec)] == [0, 2]
    assert "idc-edge: warning: cannot read image" in p.stderr and "1 unusable frame(s) skipped" in p.stderr


def test_a_source_with_no_usable_frame_is_an_error_not_an_empty_success(tiny_int8, tmp_path):
    """A video of no frames, a folder of broken images: nothing was classified, so the command says so in
    one line (exit 2), after the summary, which does not call an earlier run's video this run's; the
    results file keeps its session header, the earlier video and CSV stay as they were."""
    empty = tmp_path / "empty.avi"
    cv2.VideoWriter(str(empty), cv2.VideoWriter_fourcc(*"MJPG"), 10, (160, 120)).release()
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    earlier_video = write_numbered_video(tmp_path / "overlay.avi", n=3).read_bytes()
    # an earlier run's overlay: idc-edge's frame index beside it (another program's video is refused outright)
    (tmp_path / "overlay.avi.frames.tsv").write_bytes(b"# idc-edge frame index: results record index "
                                                      b"<TAB> video frame (from 0)\n0\t0\n1\t1\n2\t2\n")
    earlier_csv = b"path,patient,label,probability,idc,x,y,tissue\nx.png,,,0.5,1,0,0,1\n"
    (tmp_path / "out.csv").write_bytes(earlier_csv)
    rec = tmp_path / "r.jsonl"
    for source, skipped in ((empty, ""), (broken, " (1 unusable frame(s) skipped)")):
        p = run("run", "--source", source, "--model", tiny_int8, "--record", rec, "--save-video",
                tmp_path / "overlay.avi", "--quiet")
        errors = [line for line in p.stderr.splitlines() if line.startswith("idc-edge: error:")]
        assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr
        assert errors == [f"idc-edge: error: {'video' if source == empty else 'folder'} '{source}' gave no frame "
                          f"to classify{skipped}: pass a video, image or folder that holds readable pictures"]
        assert f"no video written to {tmp_path / 'overlay.avi'} (no frame)" in p.stderr
        assert (tmp_path / "overlay.avi").read_bytes() == earlier_video
    assert [len(r) for r in assert_runs_are_whole(rec)] == [0, 0]
    p = run("classify", broken, "--model", tiny_int8, "--out", tmp_path / "out.csv", "--quiet")
    assert p.returncode == 2 and "none of the 1 image(s) could be read" in p.stderr, p.stderr
    assert (tmp_path / "out.csv").read_bytes() == earlier_csv


def test_a_full_disk_stops_the_run_with_one_clear_error():
    if not os.path.exists("/dev/full"):
        pytest.skip("/dev/full (a device whose every write fails with ENOSPC) is not available here")
    video = None
    try:
        import tempfile

        video = tempfile.NamedTemporaryFile(suffix=".avi", delete=False)
        video.close()
        write_numbered_video(video.name, n=5)
        p = run("run", "--source", video.name, "--record", "/dev/full", "--quiet")
    finally:
        if video is not None:
            os.unlink(video.name)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith("idc-edge: error: cannot write results to '/dev/full': the disk is full; 0 frame(s)")


# -- bad input: one line, exit 2 ------------------------------------------------------------

@pytest.fixture
def bad_models(tiny_int8, tmp_path):
    def model(name, data=None, sidecar=True, sidecar_text=None):
        path = tmp_path / f"{name}.tflite"
        path.write_bytes(tiny_int8.read_bytes() if data is None else data)
        if sidecar_text is not None:
            sidecar_path(path).write_text(sidecar_text)
        elif sidecar:
            shutil.copy(sidecar_path(tiny_int8), sidecar_path(path))
        return path

    good = tiny_int8.read_bytes()
    spec = json.loads(sidecar_path(tiny_int8).read_text())
    return {
        "missing": (tmp_path / "nope.tflite", "does not exist"),
        "empty": (model("empty", b""), "is empty"),
        "truncated": (model("truncated", good[: len(good) // 2]), "damaged"),
        "not tflite": (model("png", cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))[1].tobytes()),
                       "not a TFLite model"),
        "no sidecar": (model("nosidecar", sidecar=False), "sidecar"),
        "malformed sidecar": (model("badjson", sidecar_text="{"), "not valid JSON"),
        "threshold 1.5": (model("thr", sidecar_text=json.dumps({**spec, "threshold": 1.5})),
                          "threshold must be a probability between 0 and 1"),
        "threshold -0.1": (model("thrneg", sidecar_text=json.dumps({**spec, "threshold": -0.1})),
                           "threshold must be a probability between 0 and 1"),
    }


@pytest.mark.parametrize("case", ["missing", "empty", "truncated", "not tflite", "no sidecar", "malformed sidecar",
                                  "threshold 1.5", "threshold -0.1"])
def test_bad_models_are_one_line_with_exit_2(bad_models, case, tmp_path):
    path, message = bad_models[case]
    p = run("run", "--source", tmp_path, "--model", path)
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert p.returncode == 2 and len(lines) == 1 and lines[0].startswith("idc-edge: error:"), p.stderr
    assert message in lines[0]


@pytest.mark.parametrize("args,message", [
    (["--max-frames", "0"], "--max-frames must be >= 1"),
    (["--camera-timeout", "0"], "--camera-timeout applies to a camera only"),
    (["--um-per-px", "-2"], "--um-per-px must be from 0.01 to 100"),
    (["--um-per-px", "nan"], "--um-per-px must be from 0.01 to 100"),
    (["--threads", "-1"], "--threads must be >= 1"),
    (["--stride", "2.5"], "--stride must be a whole number"),
    (["--save-video", "out.gif"], "use one of"),
    (["--record", "/no/folder/r.jsonl"], "does not exist"),
    (["--max-frame", "3"], "unknown option --max-frame (did you mean --max-frames?)"),
])
def test_bad_run_options_are_one_line_with_exit_2(tiny_int8, long_video, args, message):
    p = run("run", "--source", long_video, "--model", tiny_int8, *args)
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert p.returncode == 2 and len(lines) == 1 and lines[0].startswith("idc-edge: error:"), p.stderr
    assert message in lines[0]


@pytest.mark.parametrize("args,message", [
    (["run", "--sourc", "x"], "unknown option --sourc (did you mean --source?); see `idc-edge run --help`"),
    (["evaluate", "/x", "--patient", "1"], "unknown option --patient (did you mean --patients?)"),
    (["classify", "x.png", "--thresold", "0.3"], "unknown option --thresold (did you mean --threshold?)"),
    (["info", "--jsn"], "unknown option --jsn (did you mean --json?); see `idc-edge info --help`"),
    (["run", "--source", "x", "--save_video", "o.mp4"], "did you mean --save-video?"),
    (["evaluate", "/x", "--camera-timeout", "3"], "unknown option --camera-timeout; see `idc-edge evaluate"),
])
def test_unknown_options_of_subcommands_get_a_hint_from_that_subcommand(args, message):
    p = run(*args)
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert p.returncode == 2 and len(lines) == 1, p.stderr
    assert message in lines[0]


@pytest.mark.parametrize("make,message", [
    (lambda d: d / "missing.avi", "does not exist"),
    (lambda d: (d / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(30)) and d / "corrupt.png",
     "cannot read image"),
    (lambda d: (d / "empty").mkdir() or d / "empty", "has no images"),
    (lambda d: (d / "notes.mp4").write_text("not a video") and d / "notes.mp4", "cannot open"),
])
def test_bad_sources_are_one_line_with_exit_2(tiny_int8, tmp_path, make, message):
    p = run("run", "--source", make(tmp_path), "--model", tiny_int8)
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert p.returncode == 2 and len(lines) == 1 and lines[0].startswith("idc-edge: error:"), p.stderr
    assert message in lines[0]


def tissue_video(path, n=8, size=(320, 240)):
    """An MJPG video whose frames are tissue from edge to edge (purple with a light grain)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, size)
    assert writer.isOpened()
    for _ in range(n):
        writer.write(frame_with_blob(shape=size[::-1], box=(0, 0, *size)))
    writer.release()
    return path


def end_half_way(path, frames):
    """Damage ``frames`` of an MJPG video as a dropped USB transfer does: each one's data end half way
    through its scan (an end-of-image marker there), so libjpeg decodes the top and fills the rest grey."""
    data = bytearray(path.read_bytes())
    starts = jpeg_starts(bytes(data))
    for f in frames:
        seg = bytes(data[starts[f]:starts[f + 1]])
        mid = starts[f] + (seg.index(b"\xff\xda") + seg.rindex(b"\xff\xd9")) // 2
        data[mid:mid + 2] = b"\xff\xd9"
    path.write_bytes(bytes(data))
    return path


def test_libjpeg_s_own_lines_never_reach_the_terminal_and_damaged_frames_are_said_once(tiny_int8, tmp_path):
    """libjpeg printed "Corrupt JPEG data: premature end of data segment" (and "bad Huffman code", "N
    extraneous bytes before marker") itself on the terminal, once per damaged frame, beside idc-edge's
    lines (OpenCV's log level does not reach it). Now its lines are taken off descriptor 2 around each
    decode; the first damaged frame is one warning in idc-edge's words and the summary counts them all.
    Anything else written on standard error in the meantime is still shown."""
    video = end_half_way(tissue_video(tmp_path / "v.avi"), (2, 5))
    bad = bytearray(video.read_bytes())
    starts = jpeg_starts(bytes(bad))
    bad[(starts[6] + starts[7]) // 2:starts[7] - 8] = bytes([0x55]) * (starts[7] - 8 - (starts[6] + starts[7]) // 2)
    video.write_bytes(bytes(bad))  # frame 6: garbage in its scan ("bad Huffman code"), cannot be decoded
    p = run("run", "--source", video, "--model", tiny_int8, "--record", tmp_path / "r.jsonl")
    assert p.returncode == 0, p.stderr
    assert "JPEG data:" not in p.stderr.replace("damaged JPEG data", "") and "Huffman" not in p.stderr, p.stderr
    warnings = [line for line in p.stderr.splitlines() if line.startswith("idc-edge: warning:") and "damaged JPEG" in line]
    assert warnings == [f"idc-edge: warning: video '{video}': frame 2 has damaged JPEG data (premature end of data "
                        "segment): what could be decoded is used; a part the data did not reach is grey and not "
                        "classified; the summary counts such frames"], p.stderr
    assert "7 frame(s) in" in p.stderr and "1 unusable frame(s) skipped, 2 with damaged JPEG data (decoded in part)" \
        in p.stderr, p.stderr


def test_c_level_lines_other_than_libjpeg_s_pass_through_a_capture():
    """Only libjpeg's warnings are kept back: another line written on descriptor 2 during a decode reaches
    the real standard error, in a child process whose standard error is a pipe."""
    code = ("import os, cv2, numpy as np\n"
            "from idc_edge.jpegnotes import jpeg_warnings, damage\n"
            "j = cv2.imencode('.jpg', np.full((64, 64, 3), 200, np.uint8))[1].tobytes()\n"
            "k = j.index(b'\\xff\\xdb')\n"
            "with jpeg_warnings() as notes:\n"
            "    cv2.imdecode(np.frombuffer(j[:k] + b'\\x00\\x01' + j[k:], np.uint8), cv2.IMREAD_COLOR)\n"
            "    os.write(2, b'another C library line\\n')\n"
            "print(damage(notes))\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=str(ROOT))
    assert p.returncode == 0 and p.stdout == "2 extraneous bytes before marker 0xdb\n", p.stderr
    assert p.stderr == "another C library line\n"


def test_a_frame_decoded_in_part_is_marked_damaged_in_its_record_and_only_its_decoded_part_is_tissue(tiny_int8,
                                                                                                     tmp_path):
    """A frame whose JPEG data end half way was scored like any other, with nothing in its record to say
    half of it was the decoder's grey fill. libjpeg says exactly when its data ran out (the one reliable
    sign: a picture cannot tell grey fill from grey glass), so that frame's record carries ``jpeg_damage``
    and only its decoded top is tissue; intact frames' records are unchanged."""
    from idc_edge import Detector
    from idc_edge.sources import open_source

    video = end_half_way(tissue_video(tmp_path / "v.avi"), (3,))
    rec = tmp_path / "r.jsonl"
    p = run("run", "--source", video, "--model", tiny_int8, "--record", rec, "--quiet")
    assert p.returncode == 0, p.stderr
    records = {r["index"]: r for r in read_records(rec)}
    assert sorted(records) == list(range(8))
    assert records[3]["jpeg_damage"] == "premature end of data segment"
    assert all("jpeg_damage" not in r for i, r in records.items() if i != 3)
    whole = records[2]["tissue_patches"]
    assert records[2]["patches"] == records[3]["patches"] and whole == records[2]["patches"]
    assert 0 < records[3]["tissue_patches"] < 0.75 * whole  # the grey fill is not tissue
    with Detector(model_path=tiny_int8) as det, open_source(video) as source:
        damage = [r.damage for r in det.stream(source)]
    assert damage == [None, None, None, "premature end of data segment", None, None, None, None]


def test_a_frame_decoded_in_part_gives_no_advice_its_grey_fill_set_off(tiny_int8, tmp_path):
    """The grey fill's sharp edge made a half-decoded frame read as stains not coloured as H&E's, and
    the run advised swapping red and blue; the damage itself is said (once), no gate's advice is."""
    video = end_half_way(tissue_video(tmp_path / "v.avi"), (3,))
    p = run("run", "--source", video, "--model", tiny_int8, "--record", tmp_path / "r.jsonl", "--quiet")
    assert p.returncode == 0, p.stderr
    damaged = [line for line in p.stderr.splitlines() if "damaged JPEG data" in line]
    assert len(damaged) == 2 and "frame 3" in damaged[0]  # the warning and the summary
    assert not [line for line in p.stderr.splitlines() if line.startswith("idc-edge: warning: frame 3:")], p.stderr
    record = [r for r in read_records(tmp_path / "r.jsonl") if r["index"] == 3][0]
    assert record["jpeg_damage"] and record["stain_ok"] is False  # the readings are still recorded
