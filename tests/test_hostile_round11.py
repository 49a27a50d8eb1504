"""Red-team round 11: cameras, streams and outputs during a live run.

Everything is real where it can be: LiteRT runs the committed tiny model, videos are real files OpenCV
writes and reads, stream cameras are local HTTP servers on real sockets read through OpenCV's FFmpeg,
file-size limits are the kernel's (``RLIMIT_FSIZE`` in a child process). No CSI camera exists here, so
Picamera2 is a stand-in written from its documented API (``Picamera2(camera_num)`` acquires the camera
until ``close()``; a second ``Picamera2`` of it raises "Failed to acquire camera: Device or resource busy").
"""
from __future__ import annotations

import sys
import threading

import numpy as np
import pytest

from hostile import TINY, cli, one_error_line, tissue_frame, write_video
from idc_edge.errors import SourceError
from idc_edge.sources import open_source
from idc_edge.sinks import Sink
from idc_edge.sources.modes import CameraMode


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("IDC_EDGE_CACHE_DIR", str(tmp_path / "cache"))


# -- Picamera2 -------------------------------------------------------------------------------------------

class AcquiringPicamera2:
    """Picamera2 as documented, with the part that matters here: the camera is acquired by
    ``Picamera2(n)`` and let go only by ``close()``; ``failures`` lists steps ("configure", "start",
    "capture") that raise once each, in order, as libcamera does on a frontend timeout or a cable glitch."""

    acquired: set = set()
    failures: list = []
    made: list = []

    def __init__(self, camera_num=0):
        if camera_num in AcquiringPicamera2.acquired:
            raise RuntimeError("Failed to acquire camera: Device or resource busy")
        AcquiringPicamera2.acquired.add(camera_num)
        AcquiringPicamera2.made.append(self)
        self.num, self.config = camera_num, None

    @staticmethod
    def global_camera_info():
        return [{"Model": "imx477", "Num": 0}]

    def _step(self, name):
        if AcquiringPicamera2.failures and AcquiringPicamera2.failures[0] == name:
            AcquiringPicamera2.failures.pop(0)
            raise RuntimeError({"configure": "Camera frontend has timed out!",
                                "start": "Failed to start camera: Cannot allocate memory",
                                "capture": "Camera frontend has timed out!"}[name])

    def create_video_configuration(self, main=None, controls=None):
        return {"main": dict(main or {}), "controls": dict(controls or {})}

    def configure(self, config):
        self._step("configure")
        self.config = config

    def start(self):
        self._step("start")

    def camera_configuration(self):
        return self.config

    def capture_array(self, name="main"):
        self._step("capture")
        w, h = self.config["main"]["size"]
        return np.ascontiguousarray(np.resize(tissue_frame(), (h, w, 3)))

    def stop(self):
        pass

    def close(self):
        AcquiringPicamera2.acquired.discard(self.num)


@pytest.fixture
def acquiring_picamera2(monkeypatch):
    module = type(sys)("picamera2")
    module.Picamera2 = AcquiringPicamera2
    AcquiringPicamera2.acquired, AcquiringPicamera2.failures, AcquiringPicamera2.made = set(), [], []
    monkeypatch.setitem(sys.modules, "picamera2", module)
    return AcquiringPicamera2


@pytest.mark.parametrize("step", ["configure", "start"])
def test_a_pi_camera_that_fails_to_start_is_let_go_and_named_with_what_libcamera_said(acquiring_picamera2, step, capsys):
    # it was "no camera at 0: check the cable ...; list cameras" (camera 0 reads as /dev/video0, and
    # libcamera's own words were lost), and the camera stayed acquired by the process
    acquiring_picamera2.failures = [step]
    with pytest.raises(SourceError) as e:
        open_source(camera="picam:0", mode=CameraMode(200, 150))
    assert "picam:0" in str(e.value) and ("timed out" in str(e.value) or "Cannot allocate memory" in str(e.value))
    assert not acquiring_picamera2.acquired  # let go: another program (or a re-open) can have it
    acquiring_picamera2.failures = [step]
    code, err = cli(capsys, "run", "--camera", "picam", "--size", "200x150", "--model", TINY, "--um-per-px", 4,
                    "--max-frames", 2)
    assert code == 2 and "picam:0" in one_error_line(err)


def test_a_pi_camera_that_fails_to_start_again_after_a_glitch_comes_back(acquiring_picamera2):
    # a read that times out, then a re-open whose start fails once: the failed opening kept the camera
    # acquired, so every later re-open was "Device or resource busy" and the run ended CameraLostError
    # with the camera in working order
    acquiring_picamera2.failures = ["capture", "start"]
    with open_source(camera="picam:0", mode=CameraMode(200, 150), camera_timeout_s=3.0) as cam:
        frames = []
        for frame in cam:
            frames.append(frame)
            if len(frames) == 5:
                break
        assert cam.reconnects >= 1 and cam.losses == 1
    assert len(frames) == 5 and not acquiring_picamera2.acquired


# -- the results file deleted, replaced or moved during a run ----------------------------------------------

class AtFrame(Sink):
    """An inline sink that does ``act()`` once, when frame ``n`` (from 0) has been recorded: the
    results file deleted, replaced or moved while the run goes on, as ``rm``, an editor or a log
    rotation would, at a frame known in advance (never a race)."""

    name, delivery = "at-frame", "inline"

    def __init__(self, n, act):
        self.n, self.act, self.seen = n, act, 0

    def write(self, frame):
        if self.seen == self.n:
            self.act()
        self.seen += 1


def run_with(tmp_path, results, act, frames=8):
    """A real run of ``frames`` frames of a video into ``results``, ``act`` done after frame 3's line."""
    from idc_edge.detector import DetectorOptions
    from idc_edge.session import RunConfig, Session
    from idc_edge.sinks import JsonlSink

    video = write_video(tmp_path / "v.avi", frames)
    session = Session(RunConfig(source=str(video), detector=DetectorOptions(model_path=TINY, um_per_px=4.0)),
                      [JsonlSink(results), AtFrame(3, act)])
    session.run()
    return session.summary


def test_a_results_file_deleted_during_the_run_is_made_again_with_every_line(tmp_path, caplog):
    # `rm results.jsonl` mid-run: the lines went on into the deleted file and vanished with it when the
    # run closed it; the summary said "8 result(s) in results.jsonl" of a file that was not there
    from idc_edge.record import read_records, read_sessions

    results = tmp_path / "results.jsonl"
    summary = run_with(tmp_path, results, results.unlink)
    assert [r["index"] for r in read_records(results)] == list(range(8))
    assert len(read_sessions(results)) == 1 and read_sessions(results)[0].header is not None
    assert f"8 result(s) in {results}" in summary.line()
    assert sum("was deleted during the run" in r.getMessage() for r in caplog.records) == 1


def test_a_results_file_replaced_or_moved_during_the_run_keeps_every_line_under_a_name_said(tmp_path, caplog):
    from idc_edge.record import read_records

    # an editor saving its copy over it (a new file under the name): ours is made again beside it
    results, theirs = tmp_path / "results.jsonl", tmp_path / "edited.jsonl"
    theirs.write_text('{"index": 0, "note": "an edited copy"}\n')
    summary = run_with(tmp_path, results, lambda: theirs.replace(results))
    restored = tmp_path / "results-restored.jsonl"
    assert [r["index"] for r in read_records(restored)] == list(range(8))
    assert results.read_text() == '{"index": 0, "note": "an edited copy"}\n'  # theirs, untouched
    assert f"in {restored}" in summary.line() and any("results-restored.jsonl" in r.getMessage() for r in caplog.records)
    # moved away (a log rotation's rename): the lines go on there, and the summary names it
    results, moved = tmp_path / "r2.jsonl", tmp_path / "r2.jsonl.1"
    summary = run_with(tmp_path, results, lambda: results.rename(moved))
    assert [r["index"] for r in read_records(moved)] == list(range(8)) and not results.exists()
    assert f"in {moved}" in summary.line()
