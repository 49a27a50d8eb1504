"""What a hostile tester, a flaky device and a careless user do to the library (one class per block):
byte file names and special files, outputs that could destroy data, frames of other bit depths,
threads, memory, hangs, and the model probe's isolation. Real files, FIFOs, videos and the real
LiteRT interpreter throughout; anything that crashed the process before the fix runs in a child.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest

from conftest import ROOT, frame_with_blob, write_patch
from tiny_model import PURPLE

from idc_edge.budget import check_buffer
from idc_edge.dataset import read_patch_rgb, scan_dataset
from idc_edge.errors import DatasetError, MemoryBudgetError, OptionError, RecordError, SourceError
from idc_edge.fileio import check_distinct, opencv_path, read_image, short
from idc_edge.frames import to_bgr8
from idc_edge.record import JsonlRecorder, VideoRecorder, read_records

LATIN1 = b"caf\xe9_\xff"  # not valid UTF-8: how a Windows share's Latin-1 names arrive


def child(code: str, cwd=None, timeout=60) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env=env)


def byte_path(folder, name: bytes) -> str:
    return os.fsdecode(os.path.join(os.fsencode(str(folder)), name))


# -- 1. any file name, special files -----------------------------------------------------------

def test_images_and_videos_with_undecodable_byte_names_are_read_not_a_crash(tmp_path):
    """OpenCV segfaulted on a surrogate-escaped name; now bytes are read here and videos opened via a link."""
    image = byte_path(tmp_path, LATIN1 + b".png")
    video = byte_path(tmp_path, LATIN1 + b"%d.avi")  # '%d' would also make OpenCV look for an image sequence
    out = byte_path(tmp_path, LATIN1 + b"_out.avi")
    p = child(f"""
        import cv2, numpy as np
        from idc_edge.fileio import read_image, opencv_path
        from idc_edge.record import VideoRecorder
        from idc_edge.dataset import read_patch_rgb
        ok, png = cv2.imencode(".png", np.full((50, 50, 3), 77, np.uint8))
        open({image!r}, "wb").write(png.tobytes())
        assert read_image({image!r})[0, 0, 0] == 77 and read_patch_rgb({image!r}).shape == (50, 50, 3)
        with opencv_path({video!r}) as where:
            w = cv2.VideoWriter(where, cv2.VideoWriter_fourcc(*"MJPG"), 5, (64, 48))
            for i in range(3):
                w.write(np.full((48, 64, 3), 40 * i, np.uint8))
            w.release()
        with opencv_path({video!r}) as where:
            cap = cv2.VideoCapture(where)
            n = 0
            while cap.read()[0]:
                n += 1
        rec = VideoRecorder({out!r}, fps=5)
        rec.write(np.zeros((48, 64, 3), np.uint8))
        rec.close()
        print(n)
    """)
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.split() == ["3"]
    assert os.path.getsize(os.fsencode(out)) > 0
    assert sorted(os.listdir(os.fsencode(str(tmp_path)))) == sorted(
        [LATIN1 + b".png", LATIN1 + b"%d.avi", LATIN1 + b"_out.avi"])  # the temporary links are gone


@pytest.mark.parametrize("kind", ["folder", "fifo", "dev_zero", "too_long", "missing", "empty_name"])
def test_special_files_and_impossible_names_are_a_source_error_not_a_hang(tmp_path, kind):
    path = {"folder": str(tmp_path), "dev_zero": "/dev/zero", "missing": str(tmp_path / "nope.png"),
            "too_long": str(tmp_path / ("x" * 300 + ".png")), "empty_name": "",
            "fifo": str(tmp_path / "f.png")}[kind]
    if kind == "fifo":
        os.mkfifo(path)  # nobody ever writes: a blocking open would hang for ever
    error = OptionError if kind == "empty_name" else SourceError
    with pytest.raises(error) as e:
        read_image(path)
    message = str(e.value)
    expected = {"folder": "is a folder", "dev_zero": "character device", "missing": "does not exist",
                "too_long": "name is too long", "empty_name": "is empty", "fifo": "FIFO"}[kind]
    assert expected in message and len(message) < 400
    with pytest.raises(error):
        read_patch_rgb(path)


# -- 2. outputs that destroy data ----------------------------------------------------------------

def test_recording_onto_a_file_that_is_not_a_results_file_is_refused_and_leaves_it_untouched(tmp_path):
    for content in (b"my thesis\n", b"{\n  \"pretty\": 1\n}\n", b'{"other":1}\n', b"\x00\x01binary", b"no newline"):
        target = tmp_path / "notes.jsonl"
        target.write_bytes(content)
        with pytest.raises(RecordError, match="not an idc-edge results file"):
            JsonlRecorder(target)
        assert target.read_bytes() == content
    # results followed by another program's unfinished text: not cut either
    target.write_bytes(b'{"index":0}\nappended by a script, no newline')
    with pytest.raises(RecordError, match="not a results record"):
        JsonlRecorder(target)
    assert target.read_bytes() == b'{"index":0}\nappended by a script, no newline'
    # a crash leftover of our own (first record cut mid-way) is recognised and repaired
    target.write_bytes(b'{"index":0,"time":1.')
    with JsonlRecorder(target) as rec:
        rec.write({"index": 0})
    assert read_records(target) == [{"index": 0}]


def test_a_second_writer_of_one_results_file_waits_then_refuses_naming_the_first(tmp_path):
    path = tmp_path / "r.jsonl"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from idc_edge.record import JsonlRecorder
        rec = JsonlRecorder({str(path)!r})
        rec.write({{"index": 0}})
        print("locked", flush=True)
        sys.stdin.readline()
        rec.write({{"index": 1}})
        rec.close()
    """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        with pytest.raises(RecordError, match=f"being written by process {holder.pid}"):
            JsonlRecorder(path, lock_wait_s=0.3)
        assert time.monotonic() - started >= 0.3
    finally:
        holder.communicate("go\n", timeout=30)
    assert [r["index"] for r in read_records(path)] == [0, 1]
    with JsonlRecorder(path, lock_wait_s=0) as rec:  # free again once the first run ended
        rec.write({"index": 2})
    assert [r["index"] for r in read_records(path)] == [0, 1, 2]


def test_a_roll_back_never_cuts_lines_another_program_appended(tmp_path):
    """RLIMIT_FSIZE cuts our write part-way; another program's line arrived meanwhile and stays."""
    path = tmp_path / "r.jsonl"
    p = child(f"""
        import os, resource
        from idc_edge.errors import RecordError
        from idc_edge.record import JsonlRecorder
        rec = JsonlRecorder({str(path)!r}, fsync=False)
        rec.write({{"index": 0}})
        with open({str(path)!r}, "ab") as other:   # not an idc-edge writer: ignores the lock
            other.write(b'{{"index":"theirs"}}\\n')
        resource.setrlimit(resource.RLIMIT_FSIZE, (os.path.getsize({str(path)!r}) + 10,) * 2)
        try:
            rec.write({{"index": 1, "pad": "x" * 100}})
        except RecordError as e:
            print("error", e)
    """)
    assert "error" in p.stdout, p.stderr
    lines = path.read_bytes().split(b"\n")
    assert lines[:2] == [b'{"index":0}', b'{"index":"theirs"}']


def test_check_distinct_refuses_an_output_that_is_an_input_by_any_name(tmp_path):
    source = tmp_path / "in.avi"
    source.write_bytes(b"video")
    os.link(source, tmp_path / "hard.avi")
    os.symlink(source, tmp_path / "soft.avi")
    for alias in ("in.avi", "hard.avi", "soft.avi", "./sub/../in.avi"):
        (tmp_path / "sub").mkdir(exist_ok=True)
        with pytest.raises(OptionError, match="same file as --source"):
            check_distinct([("--source", source)], [("--save-video", str(tmp_path / alias))])
    with pytest.raises(OptionError, match="same file as --record"):
        check_distinct([("--source", source)], [("--record", tmp_path / "new"), ("--save-video", tmp_path / "new")])
    check_distinct([("--source", source)], [("--record", tmp_path / "a.jsonl"), ("--save-video", tmp_path / "b.avi")])
    assert source.read_bytes() == b"video"


def test_results_to_a_pipe_are_streamed_and_a_fifo_nobody_reads_is_refused_at_once(tmp_path, monkeypatch):
    fifo = str(tmp_path / "results.fifo")
    os.mkfifo(fifo)
    started = time.monotonic()
    with pytest.raises(RecordError, match="nobody reading"):
        JsonlRecorder(fifo)
    assert time.monotonic() - started < 5
    # /dev/stdout on a pipe: a stream, written line by line, never truncated or rolled back
    p = child("""
        from idc_edge.record import JsonlRecorder
        with JsonlRecorder("/dev/stdout") as rec:
            rec.write({"index": 0})
            rec.write({"index": 1})
    """)
    assert p.returncode == 0 and p.stdout.splitlines() == ['{"index":0}', '{"index":1}'], p.stderr
    # a reader that stops reading: the run stops with an error instead of blocking for ever
    import idc_edge.record as record

    monkeypatch.setattr(record, "WRITE_TIMEOUT_S", 0.3)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        rec = JsonlRecorder(fifo)
        with pytest.raises(RecordError, match="took nothing"):
            for i in range(100000):
                rec.write({"index": i, "pad": "x" * 1000})
        rec.close()
    finally:
        os.close(reader)


def test_a_video_recorder_refuses_a_folder_or_fifo_and_leaves_no_empty_file(tmp_path):
    os.mkfifo(tmp_path / "v.avi")
    with pytest.raises(RecordError):
        VideoRecorder(tmp_path / "v.avi")
    (tmp_path / "d.avi").mkdir()
    with pytest.raises(RecordError, match="folder"):
        VideoRecorder(tmp_path / "d.avi")
    VideoRecorder(tmp_path / "never.avi").close()
    assert not (tmp_path / "never.avi").exists()


# -- 3. silent wrong answers ------------------------------------------------------------------------

@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("dtype,factor", [(np.uint16, 16), (np.uint16, 4), (np.uint16, 257), (np.float32, 1.0),
                                          (np.float64, 1 / 255), (np.int32, 16)])
def test_frames_of_more_than_8_bits_are_scaled_by_their_real_range(dtype, factor):
    """A 12-bit camera in a 16-bit container (values <= 4095) was read as near black."""
    rng = np.random.default_rng(0)
    bgr = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    bgr[0, 0] = 255  # the sensor's full range is used somewhere
    wide = (bgr.astype(np.float64) * factor).astype(dtype) if factor != 257 else bgr.astype(np.uint16) * 257
    out = to_bgr8(wide)
    assert np.abs(out.astype(int) - bgr.astype(int)).max() <= 1


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_float_frames_normalised_to_minus_1_to_1_are_not_half_black():
    bgr = np.random.default_rng(1).integers(0, 256, (10, 12, 3), dtype=np.uint8)
    bgr[0, 0], bgr[0, 1] = 0, 255
    out = to_bgr8(bgr.astype(np.float32) / 127.5 - 1.0)
    assert np.abs(out.astype(int) - bgr.astype(int)).max() <= 1


def test_a_deep_frame_warns_once_about_the_depth_it_chose():
    import idc_edge.frames as frames

    frames._warned.clear()
    with pytest.warns(UserWarning, match="12-bit"):
        to_bgr8(np.full((4, 4), 4000, np.uint16))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        to_bgr8(np.full((4, 4), 4000, np.uint16))  # the same guess again: no second warning
        assert to_bgr8(np.full((4, 4), 4000, np.uint16), bits=16)[0, 0, 0] == 4000 >> 8


def test_a_float_frame_with_nan_or_infinite_pixels_says_so_once_not_silently_black():
    """NaN or infinite pixels come from a broken conversion upstream: they are read as black (NaN, -inf)
    or white (+inf) as documented, where no tissue is found, so the share lost is warned about."""
    import warnings

    import idc_edge.frames as frames

    frames._warned.clear()
    frame = np.full((10, 20, 3), 0.5, np.float32)
    frame[:, :5] = np.nan
    frame[0, 19] = np.inf
    with pytest.warns(UserWarning, match=r"NaN or infinite values \(25.5 % of the first such frame\) have them read "
                                         r"as black"):
        out = to_bgr8(frame)
    assert (out[:, :5] == 0).all() and (out[0, 19] == 255).all() and (out[:, 5:19] == 128).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        to_bgr8(frame)  # once per process, as the other guesses
        to_bgr8(np.full((10, 20, 3), 0.5, np.float32))  # finite frames never warn


@pytest.mark.parametrize("sink,kwargs,option", [
    ("VideoSink", {"fps": 1e9}, "fps"), ("VideoSink", {"fps": float("nan")}, "fps"),
    ("VideoSink", {"max_gap_s": float("nan")}, "max_gap_s"), ("VideoSink", {"max_gap_s": -5}, "max_gap_s"),
    ("JsonlSink", {"path": None}, None), ("JsonlSink", {"path": ""}, None),
    ("LiveView", {"port": "x"}, "port"), ("LiveView", {"port": 70000}, "port"),
    ("LiveView", {"host": 5, "port": 0}, "host"), ("LiveView", {"port": 0, "quality": float("nan")}, "quality"),
])
def test_a_sink_refuses_a_bad_option_when_made_with_a_typed_error(tmp_path, sink, kwargs, option):
    """Sinks validate their options where they enter, like the detector's: VideoSink(fps=1e9) filled
    the disk with gigabytes of repeated frames without end; the others raised TypeError or ValueError
    deep inside, or bound port 70000 modulo 65536."""
    import idc_edge.sinks as sinks

    if sink == "VideoSink":
        kwargs = {"path": tmp_path / "v.avi", **kwargs}
    with pytest.raises(OptionError) as e:
        getattr(sinks, sink)(**kwargs)
    assert e.value.option == option
    assert not (tmp_path / "v.avi").exists()


def test_a_run_config_reads_a_byte_or_path_source_as_that_file_and_refuses_patients_as_one_text(tmp_path, tiny_int8):
    """RunConfig(source=b"...") opened the file named "b'...'" (str of bytes); patients="8867" was read a
    character at a time and selected patients 8, 6 and 7; a Path as the model broke the results header."""
    from test_faults import write_numbered_video

    from idc_edge.detector import DetectorOptions
    from idc_edge.record import read_sessions
    from idc_edge.session import RunConfig, run_session
    from idc_edge.sinks import JsonlSink

    video = write_numbered_video(tmp_path / "v.avi", n=3)
    options = DetectorOptions(model_path=tiny_int8)
    for source in (os.fsencode(video), video):
        config = RunConfig(source=source, detector=options)
        assert config.source == str(video) and run_session(config).frames == 3
    # a Path as the model (the fixtures give one): its session header was "not JSON serializable"
    results = tmp_path / "r.jsonl"
    run_session(RunConfig(source=video, detector=options), [JsonlSink(results)])
    (session,) = read_sessions(results)
    assert session.header["options"]["model"] == str(tiny_int8) and len(session.records) == 3
    with pytest.raises(OptionError, match=r"patients must be a list of patient ids such as \['8867'\]") as e:
        RunConfig(source=str(tmp_path), patients="8867")
    assert e.value.option == "patients"
    from idc_edge.dataset import scan_files  # what open_source, evaluate and training select patients with

    with pytest.raises(OptionError, match=r"patients must be a list of patient ids") as e:
        scan_files(tmp_path, patients="8867")
    assert e.value.option == "patients"


def test_one_detector_used_from_many_threads_gives_the_same_answers_as_one_thread():
    from idc_edge.detector import Detector

    frames = [frame_with_blob((120 + 10 * i, 160 + 20 * i), box=(20, 20, 100 + 5 * i, 90)) for i in range(6)]
    with Detector(tissue_mask=False) as det:
        expected = [det.detect(f).probabilities for f in frames]
        with ThreadPoolExecutor(6) as pool:
            for _ in range(3):
                got = list(pool.map(lambda f: det.detect(f).probabilities, frames))
                for a, b in zip(expected, got):
                    np.testing.assert_array_equal(a, b)


def test_frames_that_change_size_mid_stream_each_get_their_own_grid():
    from idc_edge.detector import Detector

    sizes = [(100, 150), (300, 200), (100, 150), (60, 400)]
    with Detector(um_per_px=2.0, tissue_mask=False) as det:
        results = list(det.stream([np.full((*s, 3), 200, np.uint8) for s in sizes]))
    for (h, w), r in zip(sizes, results):
        assert r.frame_shape == (h, w)
        assert r.boxes[..., 2].max() == w and r.boxes[..., 3].max() == h
        assert r.probabilities.shape == (max(1, -(-round(h / 2) // 50)), max(1, -(-round(w / 2) // 50)))


# -- 4. memory without a bound ------------------------------------------------------------------------

def test_buffers_over_the_memory_budget_are_refused_before_they_are_allocated(tmp_path, monkeypatch):
    from idc_edge.detector import Detector

    with pytest.raises(MemoryBudgetError, match="would need 1.7 GiB.*check um_per_px"):
        with Detector(um_per_px=100.0) as det:
            det.detect(np.zeros((1000, 1000, 3), np.uint8))
    # an image whose header claims 60000×60000 pixels is refused from its header, before decoding
    ok, png = cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))
    data = bytearray(png.tobytes())
    data[16:24] = (60000).to_bytes(4, "big") * 2
    (tmp_path / "huge.png").write_bytes(bytes(data))
    with pytest.raises(MemoryBudgetError, match="60000×60000"):
        read_image(tmp_path / "huge.png")
    monkeypatch.setenv("IDC_EDGE_MEMORY_MB", "0.001")
    with pytest.raises(MemoryBudgetError, match="IDC_EDGE_MEMORY_MB"):
        check_buffer((100, 100, 3), 1, "a test buffer", "make it smaller")
    monkeypatch.setenv("IDC_EDGE_MEMORY_MB", "lots")
    with pytest.raises(MemoryBudgetError, match="positive number"):
        check_buffer((1,), 1, "x", "y")


# -- 7. the model probe runs isolated -------------------------------------------------------------------

def test_the_model_probe_never_imports_code_from_the_working_directory(tmp_path):
    marker = tmp_path / "PWNED"
    for module in ("json", "numpy", "importlib"):
        (tmp_path / f"{module}.py").write_text(f"open({str(marker)!r}, 'w').write('{module}')\nraise SystemExit(0)\n")
    p = child(f"""
        import logging, os, sys
        logging.basicConfig()
        from idc_edge.classifier import DEFAULT_MODEL
        from idc_edge.modelcheck import probe_model
        data = DEFAULT_MODEL.read_bytes()
        os.chdir({str(tmp_path)!r})
        sys.path.insert(0, "")
        print(probe_model(data, "m", "ai_edge_litert.interpreter"))
    """, cwd=str(ROOT))
    assert not marker.exists(), f"the probe ran {marker.read_text()}.py from the working directory"
    assert "ok=True" in p.stdout and "without the crash check" not in p.stderr, p.stderr


# -- 6. messages stay short -----------------------------------------------------------------------------

def test_values_echoed_in_messages_are_short_and_never_raw_bytes():
    assert short(b"\x00" * 600_000) == "<600000 bytes>"
    assert len(short("x" * 100_000)) <= 60
    assert short(3.5) == "3.5"


# -- 8. selections that match nothing say so ---------------------------------------------------------------

def test_a_patient_selection_that_matches_nothing_names_the_selection_not_the_layout(synthetic_dataset):
    with pytest.raises(DatasetError) as e:
        scan_dataset(synthetic_dataset, ["p9", "p10"])
    assert "p10, p9" in str(e.value) and "p1, p2" in str(e.value) and "expected <patient>" not in str(e.value)


# -- 5. hangs ---------------------------------------------------------------------------------------------

@pytest.fixture
def silent_server():
    """A local TCP server that accepts connections and never sends a byte (a stalled network camera)."""
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield server.getsockname()[1]
    stop.set()
    t.join(2)
    for c in held:
        c.close()
    server.close()


def test_a_stalled_network_camera_gives_up_within_the_camera_timeout(silent_server):
    from idc_edge.sources import CameraSource

    started = time.monotonic()
    with pytest.raises(SourceError, match="no camera at"):
        CameraSource(f"http://127.0.0.1:{silent_server}/video.mjpg", lost_timeout_s=1.5)
    assert time.monotonic() - started < 10


def test_ctrl_c_ends_the_wait_for_a_camera_that_never_opens():
    """A capture whose open blocks for ever (a driver stuck on a dead network share): Ctrl-C stops
    the wait at once although --camera-timeout is 60 s."""
    p = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import threading, time
        from idc_edge.sources import CameraSource
        def never_opens(device):
            threading.Event().wait()
        print("opening", flush=True)
        try:
            CameraSource("rtsp://stalled", lost_timeout_s=60, capture_factory=never_opens)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
    """)], stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert p.stdout.readline().strip() == "opening"
    time.sleep(0.5)
    started = time.monotonic()
    p.send_signal(2)
    out, _ = p.communicate(timeout=20)
    assert "interrupted" in out and time.monotonic() - started < 5


# -- 3. (videos) a frame size that changes mid-stream; 8. a cut-short video's real loss -------------------

def _resize_mjpg_frames(path, from_frame: int, size=(80, 60)) -> None:
    """Replace frames ``from_frame``.. of an MJPG AVI by smaller JPEGs (zero-padded to the chunk size):
    a stream whose frame size changes mid-way, as after a camera mode switch."""
    from test_faults import jpeg_starts

    data = bytearray(path.read_bytes())
    starts = jpeg_starts(bytes(data))
    for k in range(from_frame, len(starts)):
        s = starts[k]
        assert data[s - 8:s - 4] == b"00dc"
        n = int.from_bytes(data[s - 4:s], "little")
        ok, small = cv2.imencode(".jpg", np.full((size[1], size[0], 3), 20 * k, np.uint8))
        assert len(small) <= n
        data[s:s + n] = small.tobytes() + bytes(n - len(small))
    path.write_bytes(bytes(data))


def test_a_video_whose_frame_size_changes_mid_stream_gives_each_frame_at_its_real_size(tmp_path):
    """OpenCV's decoder stretches every frame to the first one's size (wrong µm/px for the rest)."""
    from idc_edge.detector import Detector
    from idc_edge.sources import VideoSource

    path = tmp_path / "v.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 240))
    for i in range(6):  # textured frames: their JPEGs have room for the smaller ones
        writer.write(np.random.default_rng(i).integers(0, 256, (240, 320, 3), dtype=np.uint8))
    writer.release()
    _resize_mjpg_frames(path, 3)
    frames = list(VideoSource(path))
    assert [f.image.shape[:2] for f in frames] == [(240, 320)] * 3 + [(60, 80)] * 3
    with Detector(um_per_px=2.0, tissue_mask=False) as det:
        results = list(det.stream(frames))
    assert [r.probabilities.shape for r in results] == [(3, 4)] * 3 + [(1, 1)] * 3


def test_a_video_cut_short_counts_every_frame_it_lost(tmp_path):
    """More frames missing than the run of bad reads it tolerates: all of them are counted."""
    from test_faults import jpeg_starts

    from idc_edge.sources import VideoSource

    path = tmp_path / "v.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (160, 120))
    for i in range(60):
        writer.write(np.full((120, 160, 3), 4 * i, np.uint8))
    writer.release()
    data = path.read_bytes()
    path.write_bytes(data[:jpeg_starts(data)[5] + 100])  # copy interrupted inside frame 5 of 60
    src = VideoSource(path)
    assert len(list(src)) == 5 and src.skipped == 55


def test_a_dark_frame_of_a_deep_camera_keeps_the_depth_its_stream_has_shown():
    """Guessed alone, a 12-bit frame whose brightest value is 800 looks 10-bit: 4× too bright."""
    import warnings

    from idc_edge.sources.base import FrameSource

    class Frames(FrameSource):
        def __init__(self, images):
            super().__init__("test frames")
            self.images = images

        def __iter__(self):
            for image in self.images:
                yield self._checked(image)

    bright = np.full((4, 4), 4095, np.uint16)
    dark = np.full((4, 4), 800, np.uint16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = list(Frames([bright, dark]))
    assert out[0][0, 0, 0] == 255 and out[1][0, 0, 0] == 800 >> 4


def test_a_camera_device_or_url_that_is_not_utf8_is_refused_not_a_crash():
    """OpenCV segfaulted on such a device path or stream URL; it is refused with a message instead."""
    p = child("""
        from idc_edge.errors import SourceError
        from idc_edge.sources import CameraSource
        for device in ("/dev/v4l/by-id/caf\\udce9", "rtsp://caf\\udce9/stream"):
            try:
                CameraSource(device, lost_timeout_s=1)
            except SourceError as e:
                print("refused", "not UTF-8" in str(e))
    """)
    assert p.returncode == 0, p.stderr[-1000:]
    assert p.stdout.split() == ["refused", "True", "refused", "True"]


def test_a_session_refuses_a_sink_writing_onto_its_source_before_any_frame(tmp_path):
    """The library path (no command line): a VideoSink onto the source video would cut it."""
    from test_faults import write_numbered_video

    from idc_edge.session import RunConfig, run_session
    from idc_edge.sinks import JsonlSink, VideoSink

    video = write_numbered_video(tmp_path / "in.avi", n=4)
    before = video.read_bytes()
    with pytest.raises(RecordError, match="not an overlay video written by idc-edge"):
        VideoSink(tmp_path / "in.avi")  # not idc-edge's: refused whatever it is
    for name in ("in.avi", "again.avi"):  # an overlay idc-edge wrote may be replaced, but never the source
        (tmp_path / (name + ".frames.tsv")).write_bytes(b"# idc-edge frame index: results record index "
                                                        b"<TAB> video frame (from 0)\n0\t0\n")
    with pytest.raises(OptionError, match="same file as the source"):
        run_session(RunConfig(source=str(video)), [VideoSink(tmp_path / "in.avi")])
    assert video.read_bytes() == before
    os.link(video, tmp_path / "again.avi")
    with pytest.raises(OptionError, match="same file as"):
        run_session(RunConfig(source=str(video)), [JsonlSink(tmp_path / "r.jsonl"), VideoSink(tmp_path / "again.avi")])
    assert video.read_bytes() == before and not (tmp_path / "r.jsonl").exists()


def test_the_video_s_frame_index_may_not_land_on_the_results_file(tmp_path):
    """The frame index written beside a video replaces its name at the end of the run; a results
    file (or source) under that name would be lost, so it is refused before anything is written."""
    from test_faults import write_numbered_video

    from idc_edge.session import RunConfig, run_session
    from idc_edge.sinks import JsonlSink, VideoSink

    video = write_numbered_video(tmp_path / "in.avi", n=3)
    results = tmp_path / "out.avi.frames.tsv"
    results.write_bytes(b'{"index": 0}\n')
    with pytest.raises(OptionError, match="frame index .* same file as JsonlSink"):
        run_session(RunConfig(source=str(video)), [JsonlSink(results), VideoSink(tmp_path / "out.avi")])
    assert results.read_bytes() == b'{"index": 0}\n'
    p = subprocess.run([sys.executable, "-m", "idc_edge", "run", "--source", str(video), "--record", str(results),
                        "--save-video", str(tmp_path / "out.avi")], capture_output=True, text=True, timeout=120,
                       cwd=ROOT)
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "frame index" in p.stderr, p.stderr
    assert results.read_bytes() == b'{"index": 0}\n'
