"""``--save-video`` never loses a video that is already on disk: another program's file is refused
untouched, idc-edge's own earlier overlay video is replaced only once the new one is finished (a run
killed hard leaves it whole), a frame size the codec refuses is named as the cause, and a stop
counts the frames every output holds. Real OpenCV writers and readers, real ``idc-edge`` processes.
"""
import hashlib
import os
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from conftest import frame_with_blob
from test_faults_cli import frame_count, start, wait_for_lines

CMD = [sys.executable, "-m", "idc_edge"]


def run(*args):
    return subprocess.run([*CMD, *map(str, args)], capture_output=True, text=True, timeout=180)


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def camera_recording(path, n=10, shape=(120, 160)):
    """A video another program wrote (no frame index beside it): ``n`` shaded MJPG frames."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (shape[1], shape[0]))
    assert writer.isOpened()
    for i in range(n):
        writer.write(frame_with_blob(shape=shape, box=(10 + 3 * i, 20, 90 + 3 * i, 100)))
    writer.release()
    return path


def partials(folder):
    return sorted(p.name for p in folder.iterdir() if ".partial-" in p.name)


def wait_for_bytes(folder, proc, timeout=120):
    """Wait until the partial video in ``folder`` holds data (the writers flush in blocks of up to
    256 KiB), or fail when the run ends first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if any((folder / name).stat().st_size > 0 for name in partials(folder)):
            return
        time.sleep(0.01)
    proc.kill()
    pytest.fail("the run wrote nothing to a partial video before it ended")


@pytest.fixture(scope="module")
def long_source(tmp_path_factory):
    """2,000 frames, 320×240 MJPG: far longer than any test here lets a run go (400 ran out within the
    second run's 2 s wait for the lock on a fast machine, and the second run then got the name)."""
    return camera_recording(tmp_path_factory.mktemp("src") / "stage.avi", n=2000, shape=(240, 320))


@pytest.mark.parametrize("index", [None, b"0,0\n1,1\n", b"# idc-edge frame index: something else\n0\t0\n"])
def test_a_video_idc_edge_did_not_write_is_refused_untouched_before_anything_is_made(tiny_int8, tmp_path, index):
    """A camera's recording given to --save-video (a typo, shell history) was replaced by the overlay,
    exit 0. A frames.tsv beside it that is not idc-edge's index does not make it idc-edge's."""
    source = camera_recording(tmp_path / "in.avi", n=3)
    video = camera_recording(tmp_path / "keep.avi")
    if index is not None:
        (tmp_path / "keep.avi.frames.tsv").write_bytes(index)
    before = digest(video)
    p = run("run", "--source", source, "--model", tiny_int8, "--quiet", "--record", tmp_path / "r.jsonl",
            "--save-video", video)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    (line,) = p.stderr.splitlines()
    assert line.startswith("idc-edge: error: video file ") and "keep.avi' already exists and is not an overlay " \
        "video written by idc-edge" in line and "choose another name" in line
    assert digest(video) == before and frame_count(video) == 10
    assert not (tmp_path / "r.jsonl").exists() and partials(tmp_path) == []  # refused before anything was made


@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_idc_edge_s_own_earlier_overlay_video_is_replaced(tiny_int8, tmp_path, suffix):
    source = camera_recording(tmp_path / "in.avi", n=8)
    video = tmp_path / f"overlay{suffix}"
    for n in (3, 5):
        p = run("run", "--source", source, "--model", tiny_int8, "--quiet", "--max-frames", n, "--save-video", video)
        assert p.returncode == 0, p.stderr
        assert frame_count(video) == n and partials(tmp_path) == []
        assert len((tmp_path / f"overlay{suffix}.frames.tsv").read_text().splitlines()) == n + 2  # + header, session


@pytest.mark.parametrize("suffix", [".mp4", ".avi", ".mkv"])
def test_a_run_killed_hard_leaves_the_earlier_video_whole_and_its_frames_under_a_partial_name(
        tiny_int8, long_source, tmp_path, suffix):
    """kill -9 (an OOM kill, a power cut): the video was written in place, so the earlier one was
    truncated at the start and an .mp4 (index written at the end) was left unplayable."""
    video, rec = tmp_path / f"overlay{suffix}", tmp_path / "r.jsonl"
    assert run("run", "--source", long_source, "--model", tiny_int8, "--quiet", "--max-frames", 3,
               "--save-video", video).returncode == 0
    before, index_before = digest(video), digest(tmp_path / f"overlay{suffix}.frames.tsv")
    proc = start("run", "--source", long_source, "--model", tiny_int8, "--quiet", "--sequential", "--record", rec,
                 "--save-video", video)
    wait_for_lines(rec, 12, proc)  # the session header and 11 frames: the new video is being written
    wait_for_bytes(tmp_path, proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert digest(video) == before and frame_count(video) == 3
    assert digest(tmp_path / f"overlay{suffix}.frames.tsv") == index_before
    (partial,) = partials(tmp_path)
    assert partial.startswith("overlay.partial-") and partial.endswith(suffix)
    if suffix != ".mp4":  # .avi and .mkv keep the frames on disk; an .mp4 without its index is unreadable
        assert frame_count(tmp_path / partial) >= 1


@pytest.mark.parametrize("suffix,shape", [(".mp4", (20, 10000))])
def test_a_frame_size_the_codec_refuses_is_named_as_the_cause(tiny_int8, tmp_path, suffix, shape):
    """MPEG-4 takes no 10000 px wide overlay: the message said the encoder was missing and the summary
    "(no frame)", although the frame was read and 640×480 works. (A 1×1 overlay, refused the same way
    before, is now written, made 2×2: see the odd-sides test.)"""
    image = tmp_path / "field.png"
    assert cv2.imwrite(str(image), np.full((*shape, 3), (200, 170, 230), np.uint8))
    video = tmp_path / f"v{suffix}"
    p = run("run", "--source", image, "--model", tiny_int8, "--quiet", "--save-video", video)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    h, w = shape
    assert f"no video written to {video}\n" in p.stderr and "(no frame)" not in p.stderr
    error = p.stderr.splitlines()[-1]
    assert error.startswith("idc-edge: error: cannot write video ") and f"its frames are {w}x{h} px" in error
    assert "no encoder" not in error and "try .avi (MJPG)" in error
    assert not video.exists() and partials(tmp_path) == []


def test_a_stop_while_a_frame_is_handed_to_the_outputs_is_taken_after_every_output_has_it(tiny_int8, tmp_path):
    """SIGTERM landing between the results line and the video: the summary said 51 frames, the results
    held 51 and the video 50 (or the summary 43, the results 42)."""
    from idc_edge.cli.run import _StopOnce
    from idc_edge.detector import DetectorOptions
    from idc_edge.session import STOP_SIGNALS, RunConfig, Session
    from idc_edge.sinks import JsonlSink, Sink, VideoSink

    class SignalOnThirdFrame(Sink):  # fed first, inline: the signal lands while the others wait for the frame
        delivery = "inline"
        seen = 0

        def write(self, frame):
            self.seen += 1
            if self.seen == 3:
                os.kill(os.getpid(), signal.SIGTERM)

    source = camera_recording(tmp_path / "in.avi", n=20)
    rec, video = tmp_path / "r.jsonl", tmp_path / "v.avi"
    session = Session(RunConfig(source=str(source), detector=DetectorOptions(model_path=tiny_int8)),
                      [SignalOnThirdFrame(), JsonlSink(rec), VideoSink(video, fps=10.0)])
    handlers = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    try:
        with _StopOnce(session):
            summary = session.run()
    finally:
        for s, handler in handlers.items():
            signal.signal(s, handler)
    assert summary.stopped == "interrupted" and summary.frames == 3 and summary.cut_off == 0
    assert len(rec.read_text().splitlines()) == 1 + 3
    assert len((tmp_path / "v.avi.frames.tsv").read_text().splitlines()) == 2 + 3 and frame_count(video) == 3


def test_a_bare_interrupt_that_cuts_a_frame_off_says_so_and_does_not_count_it(tiny_int8, tmp_path):
    """Without a front end (Ctrl-C in a program that uses the library), a frame some outputs hold and
    others not is counted (the results file has it) and said to be cut off."""
    from idc_edge.detector import DetectorOptions
    from idc_edge.session import RunConfig, Session
    from idc_edge.sinks import JsonlSink, Sink

    class InterruptOnThirdFrame(Sink):
        delivery = "inline"
        seen = 0

        def write(self, frame):
            self.seen += 1
            if self.seen == 3:
                raise KeyboardInterrupt

    source = camera_recording(tmp_path / "in.avi", n=20)
    rec = tmp_path / "r.jsonl"
    summary = Session(RunConfig(source=str(source), detector=DetectorOptions(model_path=tiny_int8)),
                      [JsonlSink(rec), InterruptOnThirdFrame()]).run()
    assert summary.frames == 3 and summary.cut_off == 1 and len(rec.read_text().splitlines()) == 1 + 3
    assert summary.line().startswith("3 frame(s) in ") and ", the last one cut off by the stop (not in every " \
        f"output); 3 result(s) in {rec}" in summary.line()


def test_a_second_run_saving_to_the_same_video_is_refused_before_it_reads_a_frame(tiny_int8, long_source, tmp_path):
    """Two runs with one --save-video at once both exited 0 and said "video in c.avi"; the last to
    close replaced the other's video without a word, and the loser's results pointed at the winner's
    video. The name is now held for the whole run, as --record's results file is."""
    video, first_rec, second_rec = tmp_path / "c.avi", tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first = start("run", "--source", long_source, "--model", tiny_int8, "--quiet", "--sequential", "--record",
                  first_rec, "--save-video", video)
    wait_for_lines(first_rec, 6, first)  # the session header and 5 frames: the first run holds the name
    assert first.poll() is None, first.communicate()
    p = run("run", "--source", long_source, "--model", tiny_int8, "--quiet", "--max-frames", 3, "--record",
            second_rec, "--save-video", video)
    first.send_signal(signal.SIGINT)
    first.communicate(timeout=60)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    (line,) = p.stderr.splitlines()
    assert line == (f"idc-edge: error: video file '{video}' is being written by process {first.pid}; wait for that "
                    "run to end or save the video under another name")
    assert not second_rec.exists()  # refused before its results file was made or a frame read
    assert frame_count(video) == len(first_rec.read_text().splitlines()) - 1  # the first run's video, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jsonl", "c.avi", "c.avi.frames.tsv"]  # no lock left
    assert run("run", "--source", long_source, "--model", tiny_int8, "--quiet", "--max-frames", 3,
               "--save-video", video).returncode == 0  # the name is free again


@pytest.mark.parametrize("suffix", [".mp4", ".avi", ".mkv"])
@pytest.mark.parametrize("shape", [(481, 641), (5, 3), (1, 1)])
def test_a_frame_with_an_odd_side_is_saved_whole(tmp_path, suffix, shape):
    """The encoders need even sides: MPEG-4, MJPG and HuffYUV cut an odd frame's last row and column
    without a word (a 641×481 overlay came back 640×480), and refused a 1×1 one. The side is made even
    with the last row or column repeated, so every pixel of the frame is in the video."""
    from idc_edge.record import VideoRecorder

    h, w = shape
    frame = np.full((h, w, 3), 128, np.uint8)
    frame[-1, :] = (0, 0, 255)  # the last row red, the last column blue (BGR)
    frame[:, -1] = (255, 0, 0)
    rec = VideoRecorder(tmp_path / f"v{suffix}", fps=5)
    for _ in range(3):
        rec.write(frame)
    rec.close()
    cap = cv2.VideoCapture(str(tmp_path / f"v{suffix}"))
    ok, got = cap.read()
    cap.release()
    assert ok and got.shape == (h + h % 2, w + w % 2, 3)
    if min(h, w) > 2:  # lossy codecs: the colours of the last row and column, not the exact bytes
        assert got[h - 1, : w // 2, 2].mean() > 200 and got[h - 1, : w // 2, 0].mean() < 60
        assert got[: h // 2, w - 1, 0].mean() > 200 and got[: h // 2, w - 1, 2].mean() < 60


@pytest.mark.parametrize("suffix", [".mp4", ".avi", ".mkv"])
@pytest.mark.parametrize("how", ["deleted", "moved", "replaced"])
def test_a_video_whose_unfinished_file_is_deleted_or_moved_during_the_run_keeps_every_frame(tmp_path, caplog,
                                                                                           suffix, how):
    """A clean-up of stray files, or a user, removes ``NAME.partial-*`` while the run writes it: OpenCV
    writes on into the unnamed file, so the frames are copied from it into a new partial file at the end
    and the video is put in place with every frame (it was lost, and the run said its frames were "in"
    the file that had been deleted)."""
    from idc_edge.record import VideoRecorder

    frames = [frame_with_blob(shape=(120, 160), box=(10 + 6 * i, 20, 90 + 6 * i, 100)) for i in range(12)]
    rec = VideoRecorder(tmp_path / f"v{suffix}", fps=5)
    for frame in frames[:6]:
        rec.write(frame)
    (partial,) = partials(tmp_path)
    if how == "deleted":
        os.unlink(tmp_path / partial)
    elif how == "moved":
        os.rename(tmp_path / partial, tmp_path / "elsewhere.bin")
    else:
        os.unlink(tmp_path / partial)
        (tmp_path / partial).write_bytes(b"another program's file")
    for frame in frames[6:]:
        rec.write(frame)
    with caplog.at_level("WARNING", logger="idc_edge"):
        rec.close()
    assert f"{partial}' was deleted or moved during the run; its 12 frame(s) were kept" in caplog.text
    assert frame_count(tmp_path / f"v{suffix}") == 12
    assert partials(tmp_path) == ([partial] if how == "replaced" else [])  # another's file at that name untouched
    if how == "replaced":
        assert (tmp_path / partial).read_bytes() == b"another program's file"
