"""The run loop as a library: sinks fed by their delivery, a slow sink never stalls the run,
faults and interrupts still finalise every output. Real LiteRT (the shipped model), real videos."""
import threading
import time

import cv2
import numpy as np
import pytest

from conftest import frame_with_blob
from idc_edge.detector import DetectorOptions
from idc_edge.errors import IdcEdgeError, OptionError, RecordError
from idc_edge.record import read_records, read_sessions
from idc_edge.session import RunConfig, Session, run_session
from idc_edge.sinks import JsonlSink, Sink, VideoSink


def write_video(path, n, fps=10, shape=(240, 320)):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (shape[1], shape[0]))
    for i in range(n):
        writer.write(frame_with_blob(shape=shape, box=(5 * i % 100, 40, 5 * i % 100 + 150, 200)))
    writer.release()
    return path


@pytest.fixture
def video(tmp_path):
    return write_video(tmp_path / "stage.avi", 30)


class Collect(Sink):
    name = "collect"

    def __init__(self, delivery):
        self.delivery = delivery
        self.indices = []
        self.closed = False

    def write(self, frame):
        self.indices.append(frame.result.index)

    def close(self):
        self.closed = True


class BlockedUntilTheRunIsRecorded(Sink):
    """A sink stuck in its first write until the results file holds every frame (or 60 s pass): if it
    stalled capture or inference, the file would never fill and this would time out."""

    name = "stuck"
    delivery = "latest"

    def __init__(self, results, n):
        self.results, self.n = results, n
        self.seen, self.timed_out = [], False

    def write(self, frame):
        self.seen.append(frame.result.index)
        if len(self.seen) == 1:
            deadline = time.monotonic() + 60
            while not (self.results.exists() and self.results.read_bytes().count(b"\n") >= self.n + 1):
                if time.monotonic() > deadline:
                    self.timed_out = True
                    return
                time.sleep(0.02)


def test_a_slow_sink_never_stalls_capture_inference_or_the_results(video, tmp_path):
    rec = tmp_path / "r.jsonl"
    stuck = BlockedUntilTheRunIsRecorded(rec, 30)
    every, inline = Collect("every"), Collect("inline")
    summary = run_session(RunConfig(source=video), [JsonlSink(rec), stuck, every, inline])
    assert not stuck.timed_out, "the run waited for a slow newest-wins sink"
    assert [r["index"] for r in read_records(rec)] == list(range(30))
    assert summary.frames == 30 and summary.stopped == "end"
    assert every.indices == inline.indices == list(range(30)) and every.closed and inline.closed
    assert 1 <= len(stuck.seen) < 30 and summary.dropped["stuck"] == 30 - len(stuck.seen)
    assert stuck.seen == sorted(stuck.seen) and stuck.seen[-1] == 29  # it got the newest frame at the end


class Failing(Sink):
    name = "failing"

    def __init__(self, delivery, after):
        self.delivery, self.after, self.n = delivery, after, 0

    def write(self, frame):
        self.n += 1
        if self.n > self.after:
            raise RecordError("the disk is full")


@pytest.mark.parametrize("delivery", ["inline", "every", "latest"])
def test_a_failing_sink_ends_the_run_with_its_error_after_finalising_the_others(video, tmp_path, delivery):
    rec, out = tmp_path / "r.jsonl", tmp_path / "v.avi"
    session = Session(RunConfig(source=video), [JsonlSink(rec), VideoSink(out), Failing(delivery, 3)])
    with pytest.raises(RecordError, match="the disk is full"):
        session.run()
    assert session.summary.stopped == "error" and isinstance(session.summary.error, RecordError)
    n = len(read_records(rec))
    assert 3 <= n < 30 and session.summary.frames == n
    cap = cv2.VideoCapture(str(out))
    assert cap.isOpened() and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) >= n - 1  # finalised, playable
    cap.release()


class InterruptAt(Sink):
    name = "ctrl-c"
    delivery = "inline"

    def __init__(self, at):
        self.at = at

    def write(self, frame):
        if frame.result.index == self.at:
            raise KeyboardInterrupt


def test_ctrl_c_ends_the_run_cleanly_with_everything_saved(video, tmp_path):
    rec = tmp_path / "r.jsonl"
    summary = run_session(RunConfig(source=video), [JsonlSink(rec), InterruptAt(5)])
    assert summary.stopped == "interrupted" and summary.frames == 6
    assert [r["index"] for r in read_records(rec)] == list(range(6))
    assert summary.line().startswith("6 frame(s) in ") and f"; 6 result(s) in {rec}" in summary.line()


def test_each_run_appends_its_own_session_with_a_header(video, tmp_path):
    rec = tmp_path / "r.jsonl"
    run_session(RunConfig(source=video, max_frames=4), [JsonlSink(rec)])
    run_session(RunConfig(source=video, max_frames=2, detector=DetectorOptions(threshold=0.9, stride=25)),
                [JsonlSink(rec)])
    first, second = read_sessions(rec)
    assert [r["index"] for r in first.records] == [0, 1, 2, 3] and [r["index"] for r in second.records] == [0, 1]
    for s in (first, second):
        h = s.header
        assert h["format"] == 1 and len(h["model"]["sha256"]) == 64
        assert h["source"]["description"].startswith("video") and h["um_per_px"] == 4.0
        assert h["started"].endswith("Z") and h["idc_edge"]
    assert second.header["threshold"] == 0.9 and second.header["options"]["stride"] == 25
    assert all(r["idc_area_mm2"] >= 0 and r["tissue_area_mm2"] > 0 for r in first.records)


def test_run_config_fails_with_bad_options():
    with pytest.raises(OptionError, match="exactly one of a source"):
        RunConfig()
    with pytest.raises(OptionError, match="exactly one of a source"):
        RunConfig(source="a.mp4", camera=0)
    with pytest.raises(OptionError, match="max_frames must be >= 1"):
        RunConfig(source="a.mp4", max_frames=0)
    with pytest.raises(OptionError, match="camera_timeout_s must be > 0"):
        RunConfig(camera=0, camera_timeout_s=float("nan"))
    c = RunConfig(source="a.mp4", max_frames=np.int64(3), camera_timeout_s=np.float32(2.5))  # numpy scalars
    assert (c.max_frames, c.camera_timeout_s) == (3, 2.5) and type(c.max_frames) is int
    with pytest.raises(OptionError, match="Sink"):
        Session(RunConfig(source="a.mp4"), [object()])


def test_a_bad_source_fails_before_any_output_is_touched(tmp_path):
    rec = tmp_path / "r.jsonl"
    with pytest.raises(IdcEdgeError, match="does not exist"):
        run_session(RunConfig(source=str(tmp_path / "missing.mp4")), [JsonlSink(rec)])
    assert not rec.exists()


def test_readme_session_example_runs():
    import re
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    if not (root.parent / "shared" / "idc_patches" / "8867").is_dir():
        pytest.skip("the README example reads ../shared/idc_patches/8867, which is absent")
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", (root / "README.md").read_text(), re.S)
                if "run_session" in b]
    p = subprocess.run([sys.executable, "-c", block], cwd=root, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert re.match(r"60 frame\(s\) in .*; 60 result\(s\) in /tmp/idc_session.jsonl; video in /tmp/idc_session.avi",
                    p.stdout), p.stdout


@pytest.mark.parametrize("delivery", ["inline", "latest"])
def test_a_failing_sink_that_is_not_essential_is_a_warning_and_the_run_goes_on(video, tmp_path, delivery, caplog):
    rec = tmp_path / "r.jsonl"
    viewer = Failing(delivery, 2)
    viewer.essential, viewer.name = False, "viewer"
    with caplog.at_level("WARNING", logger="idc_edge"):
        summary = run_session(RunConfig(source=video), [JsonlSink(rec), viewer])
    assert summary.stopped == "end" and [r["index"] for r in read_records(rec)] == list(range(30))
    assert viewer.n == 3  # fed until it failed, then no more
    warnings = [r.getMessage() for r in caplog.records if "viewer stopped" in r.getMessage()]
    assert warnings == ["viewer stopped (RecordError: the disk is full); the run goes on without it"]


class Keep(Sink):
    """Keeps what it was given, to see which frames the session let it hold."""

    name = "keep"
    delivery = "every"

    def __init__(self, needs_overlay=False, needs_image=False):
        self.needs_overlay, self.needs_image = needs_overlay, needs_image
        self.frames = []

    def write(self, frame):
        self.frames.append(frame)


def test_sinks_hold_no_raw_frame_unless_one_asked_for_it(video):
    drawn = Keep(needs_overlay=True)
    run_session(RunConfig(source=video, max_frames=3), [drawn])
    # the raw frame was kept only to draw on: a queued or encoding frame holds the overlay alone
    assert all(f.result.image is None and f.overlay is not None for f in drawn.frames)
    drawn, raw = Keep(needs_overlay=True), Keep(needs_image=True)
    run_session(RunConfig(source=video, max_frames=3), [drawn, raw])
    for a, b in zip(drawn.frames, raw.frames):
        assert a.result.image is not None and b.result.image is not None
        assert not np.shares_memory(a.overlay, a.result.image)  # the overlay is drawn on a copy
