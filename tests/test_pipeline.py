"""Capture, inference and drawing on their own threads give the same results as one thread."""
import json
import subprocess
import sys
import threading
import time
import warnings

import cv2
import numpy as np
import pytest

from conftest import frame_with_blob
from idc_edge.detector import Detector
from idc_edge.errors import SourceError
from idc_edge.record import read_records
from idc_edge.threads import ThreadedStream
from idc_edge.sources import Frame, FrameSource, VideoSource


@pytest.fixture
def detector(tiny_int8):
    with Detector(model_path=str(tiny_int8), stride=25) as det:
        yield det


def moving_frames(n, shape=(240, 320)):
    return [frame_with_blob(shape=shape, box=(15 * i, 40, 15 * i + 150, 200)) for i in range(n)]


@pytest.fixture
def video(tmp_path):
    path = tmp_path / "stage.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 240))
    frames = moving_frames(10)
    for f in frames + [frames[-1]] * 4:  # the stage moves, then stands still for 4 frames
        writer.write(f)
    writer.release()
    return path


def test_threaded_results_equal_single_thread_results_in_order(detector, video):
    with VideoSource(video) as src:
        plain = list(detector.stream(src))
    with VideoSource(video) as src, ThreadedStream(detector, src) as threaded:
        got = list(threaded)
    assert [r.index for r in got] == [r.index for r in plain] == list(range(14))
    for a, b in zip(got, plain):
        np.testing.assert_array_equal(a.idc, b.idc)
        np.testing.assert_array_equal(np.isnan(a.probabilities), np.isnan(b.probabilities))
        np.testing.assert_array_equal(a.image, b.image)
        assert a.reused == b.reused
    assert got[-1].reused > 0 and got[1].reused < got[1].n_tissue


def one_buffer_filled_again(frames):
    """A caller's camera loop as vendor SDKs and ``cap.read(buf)`` write it: every frame into one array."""
    buffer = np.empty_like(frames[0])
    for frame in frames:
        buffer[...] = frame
        yield buffer


def ring_of_buffers_filled_again(frames, n):
    """A V4L2-style driver: ``n`` buffers mapped once, each handed out as a fresh view in turn."""
    ring = [np.empty_like(frames[0]) for _ in range(n)]
    for i, frame in enumerate(frames):
        ring[i % n][...] = frame
        yield ring[i % n][:]  # a new array object over the same memory


def test_threaded_frames_of_a_caller_that_refills_one_buffer_keep_their_own_pixels(detector):
    frames = moving_frames(8)
    with ThreadedStream(detector, one_buffer_filled_again(frames)) as threaded:
        got = list(threaded)
    alone = [detector.detect(f) for f in frames]
    for r, frame, expected in zip(got, frames, alone):
        np.testing.assert_array_equal(r.image, frame)  # the overlay is drawn on this frame, not a later one
        np.testing.assert_array_equal(r.idc, expected.idc)
    with ThreadedStream(detector, _Frames(frames)) as threaded:  # a source's own arrays are not copied
        assert all(r.image is f for r, f in zip(threaded, frames))


def test_a_stream_given_one_buffer_again_says_so_and_keeps_each_later_frame(detector):
    frames = moving_frames(5)
    with pytest.warns(UserWarning, match="buffers filled again") as said:
        got = list(detector.stream(one_buffer_filled_again(frames)))
    assert len([w for w in said if "filled again" in str(w.message)]) == 1
    for r, frame in zip(got[1:], frames[1:]):
        np.testing.assert_array_equal(r.image, frame)
    with warnings.catch_warnings():  # one frame given twice is no refill: nothing to say
        warnings.simplefilter("error")
        twice = list(detector.stream([frames[0], frames[0]]))
    assert twice[0].image is frames[0] and np.array_equal(twice[1].image, frames[0])


def test_a_stream_given_a_ring_of_buffers_says_so_when_one_comes_round(detector):
    frames = moving_frames(9)
    with pytest.warns(UserWarning, match="buffers filled again") as said:
        got = list(detector.stream(ring_of_buffers_filled_again(frames, 3)))
    assert len([w for w in said if "filled again" in str(w.message)]) == 1
    for r, frame in zip(got[3:], frames[3:]):  # from the buffer that came round on, each keeps its own frame
        np.testing.assert_array_equal(r.image, frame)
    with warnings.catch_warnings():  # frames of their own, whatever memory numpy hands out: nothing to say
        warnings.simplefilter("error")
        for r in detector.stream(f.copy() for f in frames):
            del r  # a dropped result frees its frame, and the next copy may be put at the same address


class _Frames(FrameSource):
    def __init__(self, frames):
        super().__init__("frames")
        self.frames = frames

    def _iter_frames(self):
        for i, image in enumerate(self.frames):
            yield Frame(i, i / 10, image)


class _FailingSource(FrameSource):
    def __init__(self, frames, fail_after):
        super().__init__("failing")
        self.frames, self.fail_after = frames, fail_after

    def __iter__(self):
        for i, f in enumerate(self.frames):
            if i == self.fail_after:
                raise SourceError("the camera cable was pulled")
            yield Frame(i, i / 30, f)


def test_a_source_error_on_the_capture_thread_reaches_the_caller(detector):
    got = []
    with ThreadedStream(detector, _FailingSource(moving_frames(6), fail_after=3)) as stream:
        with pytest.raises(SourceError, match="cable was pulled"):
            for r in stream:
                got.append(r.index)
    assert got == [0, 1, 2]


class _FastCamera(FrameSource):
    """A live source faster than the consumer: frame i shows the blob at x = 10 i."""

    live = True

    def __init__(self, n):
        super().__init__("fast camera")
        self.n = n

    def __iter__(self):
        for i in range(self.n):
            time.sleep(0.002)
            yield Frame(i, i / 500, frame_with_blob(shape=(120, 160), box=(0, 0, 50 + i % 100, 100)))


def test_a_live_source_keeps_only_the_newest_frame(detector):
    with ThreadedStream(detector, _FastCamera(300), keep_image=False) as stream:
        indexes = []
        for r in stream:
            indexes.append(r.index)
            time.sleep(0.02)  # a slow consumer (drawing, a window)
    assert stream.dropped > 0
    assert indexes == sorted(indexes) and len(indexes) < 300
    assert indexes[-1] == 299  # the last frame the camera gave is always shown


def test_close_stops_both_threads_midway_and_is_safe_twice(detector, video):
    before = {t.name for t in threading.enumerate()}
    src = VideoSource(video)
    stream = ThreadedStream(detector, src)
    it = iter(stream)
    next(it)
    stream.close()
    stream.close()
    alive = {t.name for t in threading.enumerate()} - before
    assert not {"idc-edge-capture", "idc-edge-inference"} & alive


def test_depth_fails_with_a_negative_number(detector):
    with pytest.raises(ValueError, match="depth"):
        ThreadedStream(detector, [], depth=-1)


def _run(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "idc_edge", "run", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def test_cli_threaded_and_sequential_runs_record_the_same_results(tiny_int8, video, tmp_path):
    outs = {}
    for mode in ("threaded", "sequential"):
        rec, vid = tmp_path / f"{mode}.jsonl", tmp_path / f"{mode}.avi"
        extra = ["--sequential"] if mode == "sequential" else []
        p = _run("--source", video, "--model", tiny_int8, "--stride", 25, "--record", rec, "--save-video", vid,
                 "--quiet", *extra)
        assert p.returncode == 0, p.stderr
        outs[mode] = read_records(rec)
        cap = cv2.VideoCapture(str(vid))
        assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 14
        cap.release()
    strip = [{k: v for k, v in d.items() if k not in ("ms", "time")} for d in outs["threaded"]]
    assert strip == [{k: v for k, v in d.items() if k not in ("ms", "time")} for d in outs["sequential"]]
    assert [d["index"] for d in outs["threaded"]] == list(range(14))


def test_cli_reuses_scores_while_the_stage_is_still_unless_told_not_to(tiny_int8, video, tmp_path):
    counts = {}
    for flag in ([], ["--no-reuse"]):
        rec = tmp_path / f"r{len(flag)}.jsonl"
        p = _run("--source", video, "--model", tiny_int8, "--stride", 25, "--record", rec, "--quiet", *flag)
        assert p.returncode == 0, p.stderr
        counts[bool(flag)] = [r["reused_patches"] for r in read_records(rec)]
    assert counts[True] == [0] * 14
    assert all(c > 0 for c in counts[False][-3:])  # the still frames at the end


def test_a_source_that_cannot_even_start_is_an_error_on_the_callers_thread_not_a_hang(detector, tmp_path):
    from idc_edge.errors import ClosedError

    video = tmp_path / "v.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    writer.write(np.zeros((48, 64, 3), np.uint8))
    writer.release()
    src = VideoSource(video)
    src.close()
    with pytest.raises(ClosedError, match="is closed"):
        with ThreadedStream(detector, src) as stream:
            list(stream)
