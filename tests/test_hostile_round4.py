"""Red-team round 4: what a file's metadata and a destination running out of room did to a run.

Everything is real: videos are written with OpenCV and their headers edited as a damaged or
foreign file has them; the command line runs as the program (a subprocess where a signal or the
file system matters, in-process otherwise).
"""
from __future__ import annotations

import json
import struct
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import ROOT

from idc_edge.sources.video import VideoSource

RED = (0, 0, 255)


def marked_frames(n=4, size=(160, 120)):
    """Grey frames with a red block in the top-left corner: which way up a frame is can be seen."""
    w, h = size
    frames = []
    for i in range(n):
        frame = np.full((h, w, 3), 180 + i, np.uint8)
        frame[:30, :50] = RED
        frames.append(frame)
    return frames


def write(path, fourcc, frames, fps=10):
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
    assert writer.isOpened()
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


#: the MP4/MOV track header's display matrix (a, b, c, d as 16.16 fixed point) for each rotation
_MATRIX = {90: (0, 1, -1, 0), 180: (-1, 0, 0, -1), 270: (0, -1, 1, 0)}


def set_display_rotation(path, degrees):
    """Write a rotation into the track header's display matrix, as a phone or a camera mounted on
    its side records it (OpenCV's writer always writes the identity)."""
    data = bytearray(path.read_bytes())
    at = data.find(b"tkhd")
    assert at > 0
    version = data[at + 4]
    matrix = at + 8 + (32 if version == 1 else 20) + 16  # times and ids, then reserved, layer, group, volume
    a, b, c, d = _MATRIX[degrees]
    values = [a << 16, b << 16, 0, c << 16, d << 16, 0, 0, 0, 1 << 30]
    struct.pack_into(">9I", data, matrix, *(v & 0xFFFFFFFF for v in values))
    path.write_bytes(bytes(data))


def opencv_frames(path):
    """The frames as OpenCV's own decoder gives them (it turns them by the container's rotation)."""
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            return frames
        frames.append(frame)


@pytest.mark.parametrize("suffix", [".mov", ".mp4"])
@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_a_rotated_motion_jpeg_video_reads_upright_like_every_other_codec(tmp_path, suffix, degrees):
    # Motion-JPEG frames are taken raw and decoded here (each at its own size), and OpenCV's turn by
    # the container's rotation was lost: a MOV recorded on its side came sideways, the same file in
    # another codec upright; a profile's frame size then failed in the middle of the run
    path = write(tmp_path / f"rotated{suffix}", "MJPG", marked_frames())
    set_display_rotation(path, degrees)
    source = VideoSource(path)
    assert source.codec.upper() in {"MJPG", "JPEG"}  # the raw path is the one under test
    got = [frame.image for frame in source]
    expected = opencv_frames(path)
    assert len(got) == len(expected) == 4
    for mine, theirs in zip(got, expected):
        assert mine.shape == theirs.shape
        assert np.abs(mine.astype(int) - theirs).mean() < 3
    corner = {90: (5, -5), 180: (-5, -5), 270: (-5, 5)}[degrees]  # where the top-left block went
    assert tuple(got[0][corner]) == pytest.approx(RED, abs=40)
    # and it is the picture another codec of the same container gives
    other = write(tmp_path / f"other{suffix}", "mp4v", marked_frames())
    set_display_rotation(other, degrees)
    assert next(iter(VideoSource(other))).image.shape == got[0].shape


def test_run_records_a_rotated_motion_jpeg_video_at_its_upright_size(tmp_path):
    path = write(tmp_path / "rotated.mov", "MJPG", marked_frames())
    set_display_rotation(path, 90)
    record = tmp_path / "r.jsonl"
    p = subprocess.run([sys.executable, "-m", "idc_edge", "run", "--source", str(path), "--record", str(record),
                        "--model", str(ROOT / "tests" / "models" / "tiny_int8.tflite"), "--quiet", "--sequential"],
                       capture_output=True, text=True, timeout=120, cwd=str(ROOT))
    assert p.returncode == 0, p.stderr
    frames = [json.loads(line) for line in record.read_text().splitlines()][1:]
    assert [f["frame"] for f in frames] == [{"width": 120, "height": 160}] * 4



def state_frame_count(path, count):
    """Write ``count`` into an AVI's main header and stream header, as a damaged or hand-edited file has it."""
    data = bytearray(path.read_bytes())
    struct.pack_into("<I", data, data.find(b"avih") + 8 + 16, count)   # dwTotalFrames
    struct.pack_into("<I", data, data.find(b"strh") + 8 + 32, count)   # dwLength
    path.write_bytes(bytes(data))


def test_a_frame_count_the_file_cannot_hold_is_not_counted_as_frames_lost(tmp_path, caplog, capsys):
    # a 10 KB file stating 4e9 frames ended "12 frame(s) ..., 3999999988 unusable frame(s) skipped"
    from test_hostile_cli import run_here

    path = write(tmp_path / "v.avi", "MJPG", marked_frames(12))
    state_frame_count(path, 4_000_000_000)
    assert cv2.VideoCapture(str(path)).get(cv2.CAP_PROP_FRAME_COUNT) == 4e9  # what OpenCV says
    source = VideoSource(path)
    assert [f.index for f in source] == list(range(12)) and source.skipped == 0
    assert "states 4000000000 frames, more than its" in caplog.text and "damaged header" in caplog.text
    p = run_here("run", "--source", str(path), "--model", str(ROOT / "tests" / "models" / "tiny_int8.tflite"),
                 "--quiet", "--no-gates")
    err = p.stderr.decode()
    assert p.returncode == 0 and "12 frame(s)" in p.stdout.decode() + err and "skipped" not in err, err
    # a count the file can hold is still believed: the frames it never gave are counted as lost
    short = write(tmp_path / "short.avi", "MJPG", marked_frames(12))
    state_frame_count(short, 20)
    source = VideoSource(short)
    assert len(list(source)) == 12 and source.skipped == 8


# -- a destination that fills up after the run has started ---------------------------------------

def test_a_results_file_that_fills_up_mid_run_says_how_many_frames_it_holds(tmp_path):
    # the session header was counted as a frame: "152 frame(s) of this run were saved" over a
    # summary of "151 result(s)" and a file whose report showed 151 frames
    import resource

    video = write(tmp_path / "v.avi", "MJPG", marked_frames(60))
    record = tmp_path / "r.jsonl"

    def small_disk():  # every write past 6 KB fails as on a full disk (EFBIG; Python ignores SIGXFSZ)
        resource.setrlimit(resource.RLIMIT_FSIZE, (6000, 6000))

    p = subprocess.run([sys.executable, "-m", "idc_edge", "run", "--source", str(video), "--record", str(record),
                        "--model", str(ROOT / "tests" / "models" / "tiny_int8.tflite"), "--quiet", "--sequential",
                        "--no-gates"], capture_output=True, text=True, timeout=120, cwd=str(ROOT),
                       preexec_fn=small_disk)
    assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr
    lines = record.read_text().splitlines()
    frames = len(lines) - 1
    assert 0 < frames < 60 and "session" in json.loads(lines[0])
    assert f"{frames} result(s) in" in p.stdout + p.stderr
    assert p.stderr.strip().splitlines()[-1].endswith(f"{frames} frame(s) of this run were saved before it")
    report = subprocess.run([sys.executable, "-m", "idc_edge", "report", str(record)], capture_output=True, text=True,
                            timeout=60, cwd=str(ROOT))
    assert report.returncode == 0 and f"{frames} frame(s) over" in report.stdout, report.stderr


# -- an overlay video of frames the encoder cannot take safely -------------------------------------

def _heap_checked_env():
    """The environment with glibc's heap checks on where its debugging library is installed: a write
    outside a buffer then aborts the program at once, instead of now and then or never."""
    import ctypes.util
    import os

    env = dict(os.environ)
    if ctypes.util.find_library("c_malloc_debug"):
        env["LD_PRELOAD"] = "libc_malloc_debug.so.0"
        env["GLIBC_TUNABLES"] = "glibc.malloc.check=3"
    return env


@pytest.mark.parametrize("width,height", [(2, 60), (3, 1001), (7, 9)])
def test_an_avi_of_frames_a_few_pixels_wide_is_written_not_a_crash(tmp_path, width, height):
    # FFmpeg's Motion-JPEG encoder wrote outside its buffers for frames 2-7 px wide: the run died of
    # "free(): invalid pointer" (exit 134) or SIGSEGV, its video and summary never made
    image = tmp_path / "strip.png"
    frame = np.full((height, width, 3), (200, 120, 230), np.uint8)
    assert cv2.imwrite(str(image), frame)
    video = tmp_path / "overlay.avi"
    p = subprocess.run([sys.executable, "-m", "idc_edge", "run", "--source", str(image), "--save-video", str(video),
                        "--model", str(ROOT / "tests" / "models" / "tiny_int8.tflite"), "--quiet"],
                       capture_output=True, text=True, timeout=120, cwd=str(ROOT), env=_heap_checked_env())
    assert p.returncode == 0, (p.returncode, p.stderr)
    assert f"video in {video}" in p.stdout + p.stderr
    got = opencv_frames(video)
    # an odd side is made even with the last row or column repeated (the encoders need even sides)
    assert len(got) == 1 and got[0].shape == (height + height % 2, width + width % 2, 3)


# -- warnings from several threads at once ---------------------------------------------------------

class _SlowStream:
    """A terminal that takes a moment per write (a serial console, a busy ssh session): the other
    threads run in between, as they did when two warnings ran into one line."""

    def __init__(self):
        self.chunks: list[str] = []

    def write(self, text):
        self.chunks.append(text)
        import time

        time.sleep(0.0005)
        return len(text)

    def flush(self):
        pass

    def isatty(self):
        return False


def test_warnings_from_several_threads_are_whole_lines_each(monkeypatch):
    # print() wrote a warning and its newline apart: the capture and inference threads' warnings
    # ran into one line ("...calibrate scale`)idc-edge: warning: a 7×9 px frame ...") and an empty one
    import logging
    import threading
    import types

    from idc_edge import cli
    from idc_edge.sinks.progress import ProgressSink

    stream = _SlowStream()
    monkeypatch.setattr(sys, "stderr", stream)
    package = logging.getLogger("idc_edge")  # given back after the test: the handler wrote later tests' warnings
    monkeypatch.setattr(package, "handlers", list(package.handlers))
    monkeypatch.setattr(package, "propagate", package.propagate)
    cli._log_warnings_as_lines()  # as every command does first
    log = logging.getLogger("idc_edge.sources.video")
    progress = ProgressSink(stream=stream, every_s=0.0)
    result = types.SimpleNamespace(index=3, idc_fraction=0.2, n_called=5, n_tissue=5, tissue_fraction=0.5)
    frame = types.SimpleNamespace(result=result, fps=9.0)

    def warn(n):
        for i in range(20):
            log.warning("thread %d: warning %d", n, i)

    def show_progress():
        for _ in range(20):
            progress.write(frame)

    threads = [threading.Thread(target=warn, args=(n,)) for n in range(3)] + [threading.Thread(target=show_progress)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = "".join(stream.chunks).split("\n")
    assert lines[-1] == ""
    warned = [line for line in lines[:-1] if line.startswith("idc-edge: warning: thread ")]
    shown = [line for line in lines[:-1] if line.startswith("frame 3: IDC 20.0 % of tissue")]
    assert len(warned) == 60 and len(shown) == 20 and len(lines) == 81, lines
