"""Red-team round 15: a Motion-JPEG stream camera switched to another resolution mid-stream.

Everything is real: HTTP servers on localhost sockets, the shipped tiny test model in the real LiteRT
interpreter, the CLI run as a child process.
"""
from __future__ import annotations

import json
import subprocess
import sys

import cv2
import pytest

from hostile import TINY, mjpeg_stream, tissue_frame


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("IDC_EDGE_CACHE_DIR", str(tmp_path / "cache"))


# -- a Motion-JPEG stream whose camera is switched to another resolution mid-stream ---------------------------------

@pytest.fixture
def resolution_switching_stream():
    """An HTTP camera on localhost answering a Motion-JPEG stream (``multipart/x-mixed-replace``) of
    200×150 px frames, then, from its 15th frame on, 100×75 px frames (an ESP32-CAM's or a phone app's
    resolution changed on its web page while a viewer watches), until the client leaves."""
    large = cv2.imencode(".jpg", tissue_frame(200, 150))[1].tobytes()
    small = cv2.imencode(".jpg", tissue_frame(100, 75))[1].tobytes()
    with mjpeg_stream(lambda n: large if n < 15 else small, every_s=0.04) as url:
        yield url


def test_a_stream_switched_to_another_resolution_gives_frames_at_their_real_size(resolution_switching_stream, tmp_path):
    """OpenCV's decoder scales every frame of a stream to its first frame's size: a camera switched from
    200×150 to 100×75 px mid-stream came as 200×150 frames, the tissue magnified twice and read at the
    scale given for the first size, and even a profile's frame-size check passed them, silently. A
    Motion-JPEG stream's frames are now decoded by idc-edge, each at its real size (as a video file's
    are), and the change is said once."""
    record = tmp_path / "r.jsonl"
    p = subprocess.run([sys.executable, "-m", "idc_edge", "run", "--camera", resolution_switching_stream,
                        "--max-frames", "40", "--camera-timeout", "5", "--um-per-px", "4", "--model", TINY,
                        "--record", record, "--quiet"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    sizes = [(r["frame"]["width"], r["frame"]["height"]) for r in map(json.loads, record.read_text().splitlines()[1:])]
    assert len(sizes) == 40
    assert set(sizes) == {(200, 150), (100, 75)}, sizes
    assert sizes[-1] == (100, 75) and sizes.index((100, 75)) > 0  # the newest frames at their own size
    said = [line for line in p.stderr.splitlines() if "changed size" in line]
    assert len(said) == 1 and "200x150 to 100x75" in said[0], p.stderr
