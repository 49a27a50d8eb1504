"""The saved overlay video plays back at the speed it was recorded, for files and cameras.

Cameras are a paced stand-in following cv2.VideoCapture's documented API (read, isOpened, set,
release), since no camera exists here; the video files are real, written and read by OpenCV.
"""
import time

import cv2
import numpy as np
import pytest

from conftest import frame_with_blob
from idc_edge.record import read_records
from idc_edge.session import RunConfig, run_session
from idc_edge.sinks import JsonlSink, Sink, VideoSink
from idc_edge.sinks.video import choose_fps, frame_slot
from idc_edge.sources import CameraSource
from test_session import write_video


def duration_s(path):
    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS)
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n / fps, n, fps


class PacedCamera:
    """A camera delivering ``fps`` frames a second in real time (the stage moving)."""

    def __init__(self, fps, shape=(240, 320)):
        self.period, self.shape, self.i, self.next = 1.0 / fps, shape, 0, time.monotonic()

    def isOpened(self):  # noqa: N802 - OpenCV's name
        return True

    def set(self, prop, value):
        return True

    def read(self):
        time.sleep(max(0.0, self.next - time.monotonic()))
        self.next += self.period
        self.i += 1
        x = 4 * self.i % 120
        return True, frame_with_blob(shape=self.shape, box=(x, 40, x + 150, 200))

    def release(self):
        pass


class SlowSink(Sink):
    """Makes the run slower than the camera, as a 1080p pipeline on a small board is."""

    name = "slow"
    delivery = "inline"

    def write(self, frame):
        time.sleep(0.12)


def test_a_camera_video_lasts_as_long_as_the_recording_although_the_run_is_slower(tmp_path):
    rec, out = tmp_path / "r.jsonl", tmp_path / "v.avi"
    camera = CameraSource(0, capture_factory=lambda device: PacedCamera(fps=25))
    run_session(RunConfig(camera=0, max_frames=20), [JsonlSink(rec), VideoSink(out), SlowSink()], source=camera)
    times = [r["time"] for r in read_records(rec)]
    frame_period = (times[-1] - times[0]) / (len(times) - 1)
    recorded = times[-1] - times[0] + frame_period
    saved, n, fps = duration_s(out)
    assert fps < 20  # measured from the run (about 8 fps here, up to 15 under load), not the camera's 25 or a fixed 30
    assert abs(saved - recorded) <= 0.10 * recorded, (saved, recorded, n, fps)


def test_a_file_video_lasts_as_long_as_the_source_and_holds_every_frame(tmp_path):
    src = write_video(tmp_path / "in.avi", 24, fps=12)
    out = tmp_path / "out.mp4"
    run_session(RunConfig(source=str(src)), [VideoSink(out)])
    saved, n, fps = duration_s(out)
    assert (n, fps) == (24, 12.0) and saved == pytest.approx(2.0)


def test_a_file_faster_than_the_video_s_most_frames_per_second_says_so_in_its_summary(tmp_path):
    """The video plays at 60 fps at most: a 240 fps file's frames share video frames, which the
    summary says (a video of a quarter of the results' frames read as a lost part before)."""
    src = write_video(tmp_path / "fast.avi", 24, fps=240)
    out = tmp_path / "out.mp4"
    sink = VideoSink(out)
    summary = run_session(RunConfig(source=str(src)), [sink])
    saved, n, fps = duration_s(out)
    assert fps == 60.0 and n in (6, 7) and sink.skipped == 24 - n
    assert f"{24 - n} of the frames fell in a video frame already written at 60 fps" in summary.line()
    slow = VideoSink(tmp_path / "slow.mp4")
    assert "fell in" not in run_session(RunConfig(source=str(write_video(tmp_path / "s.avi", 6, fps=12))),
                                        [slow]).line()


def test_frames_are_placed_by_their_timestamps():
    assert [frame_slot(t, 10.0, 10.0) for t in (10.0, 10.04, 10.06, 10.5, 11.0)] == [0, 0, 1, 5, 10]
    assert choose_fps(25.0, 0.2) == 25.0            # a file's declared rate wins
    assert choose_fps(0.0, 0.095) == 10.5           # else the measured one
    assert choose_fps(0.0, 5.0) == 1.0 and choose_fps(0.0, 0.001) == 60.0
    assert choose_fps(0.0, None) == 30.0


class _Result:
    def __init__(self, index, t):
        self.index, self.timestamp = index, t


class _Frame:
    def __init__(self, index, t):
        self.result, self.overlay = _Result(index, t), np.full((32, 48, 3), index % 250, np.uint8)


def test_gaps_are_filled_early_frames_skipped_and_a_long_pause_held_only_briefly(tmp_path):
    sink = VideoSink(tmp_path / "v.avi", fps=10, max_gap_s=2.0)
    times = [0.0, 0.1, 0.5, 0.52, 0.6, 100.0]  # a 0.3 s gap, a frame early, then a 99 s pause
    for i, t in enumerate(times):
        sink.write(_Frame(i, t))
    sink.close()
    assert sink.skipped == 1 and sink.frames == 1 + 1 + 4 + 1 + 21
    _, n, fps = duration_s(tmp_path / "v.avi")
    assert (n, fps) == (sink.frames, 10.0)


def test_the_saved_video_holds_every_drawn_frame_unchanged(tmp_path):
    """Frames handed between threads are never reused or altered: the lossless video read back
    equals the overlays the run drew, frame for frame."""
    from test_session import Keep

    out = tmp_path / "v.mkv"
    drawn = Keep(needs_overlay=True)
    run_session(RunConfig(source=str(write_video(tmp_path / "in.avi", 20))), [VideoSink(out), drawn])
    cap = cv2.VideoCapture(str(out))
    saved = []
    while (frame := cap.read())[0]:
        saved.append(frame[1])
    cap.release()
    assert len(saved) == len(drawn.frames) == 20
    assert all(np.array_equal(s, d.overlay) for s, d in zip(saved, drawn.frames))
