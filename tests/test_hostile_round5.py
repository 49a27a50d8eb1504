"""Red-team round 5: stop signals before the first frame, a working folder deeper than PATH_MAX,
and option values, host names and frames no earlier round tried.

Everything is real: videos and images are written with OpenCV, the command line runs as the
program (a subprocess where a signal matters, in-process otherwise), the model is the committed
tiny LiteRT model.
"""
from __future__ import annotations

import contextlib
import os

import cv2
import numpy as np
import pytest

from conftest import ROOT

from idc_edge.cli import main

TINY = str(ROOT / "tests" / "models" / "tiny_int8.tflite")


def tissue_frame(width=200, height=150):
    """A pink field with a purple block: tissue the tiny model scores."""
    frame = np.full((height, width, 3), (200, 150, 220), np.uint8)
    frame[height // 4: 3 * height // 4, width // 4: 3 * width // 4] = (150, 60, 160)
    return frame


def write_video(path, frames=5, fourcc="MJPG"):
    frame = tissue_frame()
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10, (frame.shape[1], frame.shape[0]))
    assert writer.isOpened()
    for _ in range(frames):
        writer.write(frame)
    writer.release()
    return path


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("idc-edge: error: "), err
    return lines[0]


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
