"""Faults a device next to a microscope meets, through the real sources, detector and recorders.

Cameras are simulated with a scripted fake capture device (no camera exists here); videos are
real files written by OpenCV and then damaged on purpose.
"""
import json
import logging
import os
import re
import subprocess
import sys
import textwrap
import time

import cv2
import numpy as np
import pytest

from conftest import frame_with_blob
from idc_edge.detector import Detector
from idc_edge.errors import CameraLostError, FrameError, RecordError
from idc_edge.overlay import draw_overlay
from idc_edge.record import JsonlRecorder, read_records
from idc_edge.sources import CameraSource, VideoSource, open_source
from test_sources import FakeCapture, devices


# -- camera lost, back, gone -------------------------------------------------------------

class RaisingCapture(FakeCapture):
    """A device whose driver raises (as cv2 can) after its scripted frames: unplugged mid-read."""

    def read(self):
        if not self.script:
            raise cv2.error("VIDIOC_DQBUF: No such device")
        return super().read()


def test_camera_unplugged_mid_stream_is_reported_resumes_when_back_and_then_ends_cleanly(caplog):
    before = RaisingCapture([np.full((8, 8, 3), 1, np.uint8)] * 3)
    after = FakeCapture([np.full((8, 8, 3), 2, np.uint8)] * 3)
    gone = FakeCapture([], opened=False)

    def factory_raising_while_unplugged(device, queue=[before, gone, gone, after]):
        if queue:
            return queue.pop(0)
        raise cv2.error("can't open camera by index")  # the driver raises instead of returning closed

    cam = CameraSource(0, lost_timeout_s=1.0, capture_factory=factory_raising_while_unplugged)
    values = []
    with caplog.at_level(logging.WARNING, logger="idc_edge.sources"):
        with pytest.raises(CameraLostError, match=r"camera 0 gave no frame for 1 s.*raise lost_timeout_s"):
            for frame in cam:
                values.append(int(frame.image[0, 0, 0]))
    cam.close()
    assert values[0] == 1 and values[-1] == 2 and set(values) == {1, 2}
    assert cam.losses == 2 and cam.reconnects >= 1 and before.released and after.released
    messages = [r.getMessage() for r in caplog.records]
    assert any("no frame (unplugged or failing?)" in m for m in messages)
    assert any("frames again after" in m for m in messages)


def test_camera_that_never_gives_a_frame_ends_with_camera_lost_not_a_hang():
    cam = CameraSource(0, lost_timeout_s=0.3, capture_factory=devices(FakeCapture([None] * 1000)))
    started = time.monotonic()
    with pytest.raises(CameraLostError):
        next(iter(cam))
    cam.close()
    assert time.monotonic() - started < 30  # generous: only guards against waiting forever


def test_broken_camera_frames_are_skipped_and_counted_and_odd_formats_converted():
    good = np.full((8, 8, 3), 7, np.uint8)
    script = [good, np.zeros((0, 0, 3), np.uint8), np.zeros((8, 8, 5), np.uint8), good[..., 0],
              np.dstack([good, good[..., :1]]), good.astype(np.uint16) * 257, np.full((8, 8, 3), 0.5, np.float32),
              "not an image", good]
    # one frame per read, slower than the consumer, so none is dropped by newest-wins
    cap = FakeCapture([])
    cap.script = script
    cap.read = lambda s=script: (time.sleep(0.05), (True, s.pop(0)) if s else (False, None))[1]
    cam = CameraSource(0, lost_timeout_s=0.4, capture_factory=lambda device: cap)  # re-opens the same device
    got = []
    with pytest.raises(CameraLostError):
        for frame in cam:
            got.append(frame.image)
    cam.close()
    assert all(g.dtype == np.uint8 and g.shape == (8, 8, 3) for g in got)
    # an empty array or a non-array is a failed read (the device is re-opened); a 5-channel frame is
    # skipped and counted; grayscale, BGRA, 16-bit and float frames are converted and used
    assert len(got) + cam.dropped == 6 and cam.skipped == 1 and cam.losses >= 2


# -- videos with damaged frames -------------------------------------------------------------

def write_numbered_video(path, n=12, size=(160, 120)):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, size)
    assert writer.isOpened()
    for i in range(n):
        writer.write(np.full((size[1], size[0], 3), 20 * i, np.uint8))
    writer.release()
    return path


def jpeg_starts(data: bytes) -> list[int]:
    """Offsets of the JPEG start-of-image markers, one per MJPG frame."""
    out, at = [], data.find(b"\xff\xd8\xff")
    while at >= 0:
        out.append(at)
        at = data.find(b"\xff\xd8\xff", at + 3)
    return out


def test_a_corrupt_frame_inside_a_video_is_skipped_counted_and_the_rest_read(tmp_path, caplog):
    path = write_numbered_video(tmp_path / "v.avi")
    data = bytearray(path.read_bytes())
    starts = jpeg_starts(bytes(data))
    assert len(starts) == 12
    n = starts[6] - 8 - starts[5]  # frame 5's JPEG up to the next frame's 8-byte AVI chunk header
    data[starts[5]:starts[5] + n] = bytes(n)  # zeroed, as by a bad block of the SD card
    path.write_bytes(bytes(data))
    src = VideoSource(path)
    with caplog.at_level(logging.WARNING, logger="idc_edge.sources"):
        frames = list(src)
    assert [f.index for f in frames] == [0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11]
    assert src.skipped == 1 and any("frame 5 cannot be decoded" in r.getMessage() for r in caplog.records)
    assert abs(float(frames[5].image.mean()) - 120) < 8  # frame 6 is frame 6, not a renumbered 5


def test_a_frame_the_demuxer_drops_inside_a_video_is_not_blamed_on_the_intact_last_frame(tmp_path, caplog):
    # random bytes over one frame's AVI chunk header: the demuxer skips the chunk without a trace, so the
    # reads run out one early; the last frame is whole and must not be named as the one lost
    path = write_numbered_video(tmp_path / "v.avi")
    data = bytearray(path.read_bytes())
    starts = jpeg_starts(bytes(data))
    data[starts[5] - 8:starts[5] + 200] = np.random.default_rng(1).integers(0, 256, 208, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    src = VideoSource(path)
    with caplog.at_level(logging.WARNING, logger="idc_edge.sources"):
        frames = list(src)
    said = [r.getMessage() for r in caplog.records]
    assert len(frames) == 11 and src.skipped == 1
    assert not any("cannot be decoded" in m for m in said), said
    assert any("gives 11 of the 12 frames it states; 1 missing" in m and "corrupt data inside it" in m for m in said), said


def test_a_video_cut_short_gives_what_is_there_and_ends(tmp_path):
    path = write_numbered_video(tmp_path / "v.avi", n=12)
    data = path.read_bytes()
    path.write_bytes(data[:jpeg_starts(data)[7] + 100])  # copy interrupted inside frame 7
    src = VideoSource(path)
    frames = list(src)
    assert [f.index for f in frames] == list(range(7))
    assert src.skipped == 5  # the frames the header promises but the file no longer has


# -- frames of every size through the detector and the overlay -------------------------------

@pytest.fixture(scope="module")
def detector(tiny_int8):
    with Detector(model_path=str(tiny_int8)) as det:
        yield det


def tiled_frame(height, width):
    """A big BGR frame built without big temporaries: a noisy tile with a purple block, repeated."""
    tile = frame_with_blob(shape=(240, 320), box=(40, 40, 200, 180))
    return np.tile(tile, (-(-height // 240), -(-width // 320), 1))[:height, :width]


def test_an_8k_frame_is_detected_and_drawn_with_boxes_inside(detector):
    frame = tiled_frame(4320, 7680)
    r = detector.detect(frame)
    assert r.frame_shape == (4320, 7680) and r.probabilities.shape == (87, 154)
    assert r.n_tissue > 5000 and r.n_idc > 1000
    assert r.boxes[..., 0].min() >= 0 and r.boxes[..., 2].max() <= 7680 and r.boxes[..., 3].max() <= 4320
    out = draw_overlay(frame, r)
    assert out.shape == frame.shape and out.dtype == np.uint8
    json.dumps(r.to_dict())


@pytest.mark.parametrize("shape", [(1, 1), (1, 300), (300, 1), (49, 49), (20, 30, 4), (10, 60)])
@pytest.mark.parametrize("um_per_px", [None, 1.0, 16.0])
def test_frames_smaller_than_a_patch_give_one_padded_patch_and_draw(tiny_int8, shape, um_per_px):
    frame = np.full(shape, 120, np.uint8)
    with Detector(model_path=str(tiny_int8), um_per_px=um_per_px, tissue_mask=False) as det:
        r = det.detect(frame)
    h, w = shape[:2]
    assert r.frame_shape == (h, w) and r.tissue.all()
    boxes = r.boxes.reshape(-1, 4)
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 1] >= 0).all()
    assert (boxes[:, 2] <= w).all() and (boxes[:, 3] <= h).all()
    out = draw_overlay(frame if frame.ndim == 3 and frame.shape[2] == 3 else cv2.cvtColor(
        frame, cv2.COLOR_BGRA2BGR if frame.ndim == 3 else cv2.COLOR_GRAY2BGR), r)
    assert out.shape == (h, w, 3)


@pytest.mark.parametrize("frame", [None, np.zeros((0, 10), np.uint8), np.zeros((4, 4, 2), np.uint8),
                                   np.zeros((4, 4), np.complex64), np.zeros((2, 2, 2, 2), np.uint8), [[1, 2]]])
def test_unusable_frames_are_a_frame_error_from_the_api(detector, frame):
    with pytest.raises(FrameError):
        detector.detect(frame)


# -- power cut and full disk -----------------------------------------------------------------

def test_a_record_cut_by_a_crash_is_dropped_on_read_and_truncated_on_the_next_open(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_bytes(b'{"index":0}\n{"index":1}\n{"index":2,"idc_bo')  # power cut inside line 2
    assert [r["index"] for r in read_records(path)] == [0, 1]
    with JsonlRecorder(path) as rec:
        rec.write({"index": 2})
    assert path.read_text() == '{"index":0}\n{"index":1}\n{"index":2}\n'


def test_a_last_line_without_newline_that_is_whole_json_is_kept(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_bytes(b'{"index":0}\n{"note":"written by hand"}')
    with JsonlRecorder(path) as rec:
        rec.write({"index": 1})
    assert [json.loads(line) for line in path.read_text().splitlines()] == [
        {"index": 0}, {"note": "written by hand"}, {"index": 1}]


def test_a_write_that_fills_the_file_system_is_rolled_back_to_whole_lines(tmp_path):
    """RLIMIT_FSIZE makes the kernel refuse (EFBIG) and cut writes at a byte count, like a disk
    filling up mid-line; the recorder must leave only whole lines and say how many are saved."""
    path = tmp_path / "r.jsonl"
    code = textwrap.dedent(f"""
        import resource
        from idc_edge.errors import RecordError
        from idc_edge.record import JsonlRecorder
        resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))
        rec = JsonlRecorder({str(path)!r})
        n = 0
        try:
            while True:
                rec.write({{"index": n, "pad": "x" * 70}})
                n += 1
        except RecordError as e:
            print(n, e)
    """)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    n, message = p.stdout.split(" ", 1)
    assert "cannot write results" in message and f"{n} frame(s) of this run were saved" in message
    assert "file is too large" in message
    data = path.read_bytes()
    assert data.endswith(b"\n") and len(data) <= 1000
    assert [json.loads(line)["index"] for line in data.splitlines()] == list(range(int(n)))


def test_a_full_disk_is_a_clear_record_error():
    if not os.path.exists("/dev/full"):
        pytest.skip("/dev/full (a device whose every write fails with ENOSPC) is not available here")
    with JsonlRecorder("/dev/full") as rec:
        with pytest.raises(RecordError, match="the disk is full; 0 frame"):
            rec.write({"index": 0})


def test_a_disk_filling_up_under_the_video_stops_the_run_with_the_video_finalised(tmp_path, tiny_int8, monkeypatch):
    """OpenCV drops the frames it cannot write without a word: a run on a 6 MB file system ended "done"
    with a video of 9 readable frames of 297 and no index. The free space is read before each frame;
    below the floor the run stops with a RecordError while there is still room to finalise the file.
    The file system's free-space report is the stand-in here (a small file system needs root to
    mount); the writer, the file and the session are real."""
    import idc_edge.record as record
    from idc_edge.detector import DetectorOptions
    from idc_edge.session import RunConfig, Session
    from idc_edge.sinks import JsonlSink, VideoSink

    video, out, results = tmp_path / "in.avi", tmp_path / "out.avi", tmp_path / "r.jsonl"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 240))
    tile = frame_with_blob(shape=(240, 320), box=(60, 40, 260, 200))
    for i in range(40):
        writer.write(np.roll(tile, 4 * i, axis=1))
    writer.release()
    real_statvfs = os.statvfs

    class Filling:  # 6 MB, less what the overlay video has taken so far (out.partial-XXXXXXXX.avi until it ends)
        def __init__(self, path):
            st = real_statvfs(path)
            self.f_frsize = st.f_frsize
            self.f_bavail = max(0, 6_000_000 - sum(f.stat().st_size for f in tmp_path.glob("out*.avi"))) // st.f_frsize

    monkeypatch.setattr(record.os, "statvfs", Filling)
    monkeypatch.setattr(record, "VIDEO_SPACE_FLOOR_BYTES", 5_800_000)  # 200 KB of room (FFmpeg writes 256 KB at a time)
    session = Session(RunConfig(source=str(video), detector=DetectorOptions(model_path=tiny_int8)),
                      [JsonlSink(results), VideoSink(out, fps=10.0)])
    with pytest.raises(RecordError, match=r"the disk is full \(.* MB free\); the video holds the first \d+ frame"):
        session.run()
    kept = int(re.search(r"first (\d+) frame", str(session.summary.error)).group(1))
    cap = cv2.VideoCapture(str(out))
    readable = 0
    while cap.read()[0]:
        readable += 1
    assert 0 < kept == readable < 40  # finalised: every frame it says it holds plays
    assert len(read_records(results)) >= kept


def test_the_readme_fault_table_names_only_tests_that_exist():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    text = (root / "README.md").read_text(encoding="utf-8")
    section = text.split("## Faults and bad input covered", 1)[1].split("\n## ", 1)[0]
    refs = re.findall(r"`(test_[a-z_]+\.py)::(test_[A-Za-z0-9_]+)(\*?)`", section)
    assert len(refs) >= 30
    for file, name, glob in refs:
        source = (root / "tests" / file).read_text(encoding="utf-8")
        assert re.search(rf"^def {name}{'' if glob else '[(]'}", source, re.M), f"{file}::{name} is not a test"
