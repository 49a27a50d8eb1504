"""Red-team round 10: results files joined or saved by hand, the API given frames and arguments of the
kinds it takes elsewhere, outputs used for a second run, and files whose suffix is not what they hold.

Everything is real: results files are written by real runs of the committed tiny LiteRT model and
then changed as an editor or ``cat`` would, the command line runs in this process
(``idc_edge.cli.main``), videos are real files written by OpenCV, images real PNGs.
"""
from __future__ import annotations

import json
import logging

import cv2
import numpy as np
import pytest

from hostile import TINY, cli, one_error_line, tissue_frame, write_video
from idc_edge.cli import main
from idc_edge.errors import OptionError
from idc_edge.record import JsonlRecorder, read_records, read_sessions


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("IDC_EDGE_CACHE_DIR", str(tmp_path / "cache"))


def record_run(capsys, path, video, frames: int) -> None:
    """A real run of ``frames`` frames of ``video`` appended to the results file ``path``."""
    code, err = cli(capsys, "run", "--source", video, "--model", TINY, "--um-per-px", 4, "--quiet",
                    "--max-frames", frames, "--record", path)
    assert code == 0, err


@pytest.fixture
def two_runs(tmp_path, capsys):
    """(first, second): the bytes of two real results files, of 3 frames and of 2."""
    video = write_video(tmp_path / "v.avi", 3)
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    record_run(capsys, first, video, 3)
    record_run(capsys, second, video, 2)
    return first.read_bytes(), second.read_bytes()


def report(capsys, path) -> tuple[int, str, str]:
    """(exit code, standard output, standard error) of ``idc-edge report PATH``."""
    code = main(["report", str(path)])
    out = capsys.readouterr()
    return code, out.out, out.err


def frames_per_session(path) -> list[int]:
    return [len(s.records) for s in read_sessions(path)]


# -- results files saved or joined by hand --------------------------------------------------------------

def test_a_whole_last_record_without_its_newline_is_read_as_the_recorder_keeps_it(tmp_path, capsys, two_runs):
    # an editor that saves without a final newline (or `head -c -1`): the readers took the whole last frame
    # for a crash's unfinished record and left it out ("2 frame(s)" for 3), while the recorder kept it
    first, _ = two_runs
    path = tmp_path / "r.jsonl"
    path.write_bytes(first.rstrip(b"\n"))
    assert frames_per_session(path) == [3]
    assert len(read_records(path)) == 3
    code, out, err = report(capsys, path)
    assert code == 0 and "3 frame(s)" in out, err
    # a record a crash really cut is still left out
    path.write_bytes(first[:-40])
    assert frames_per_session(path) == [2]
    # and a run appended to the file keeps the whole one: both readers and the recorder count it
    video = write_video(tmp_path / "v.avi", 2)
    path.write_bytes(first.rstrip(b"\n"))
    record_run(capsys, path, video, 1)
    assert frames_per_session(path) == [3, 1]


def test_results_files_joined_where_the_first_ended_without_a_newline_are_read_apart(tmp_path, capsys, two_runs,
                                                                                    caplog):
    # `cat a.jsonl b.jsonl > all.jsonl` where a.jsonl ended without its newline put b's session header on
    # the line of a's last record: "line 4 is not valid JSON", exit 2, and no session of either was reported
    first, second = two_runs
    path = tmp_path / "all.jsonl"
    path.write_bytes(first.rstrip(b"\n") + second)  # a whole last record, saved without its newline
    assert frames_per_session(path) == [3, 2]
    code, out, err = report(capsys, path)
    assert code == 0 and "3 frame(s)" in out and "2 frame(s)" in out, err
    # a record a crash cut at the end of the first file: left out and said, everything else read
    path.write_bytes(first[:-40] + second)
    with caplog.at_level(logging.WARNING, logger="idc_edge.record"):
        assert frames_per_session(path) == [2, 2]
    assert "cut record" in caplog.text and "line 4" in caplog.text
    code, out, err = report(capsys, path)
    assert code == 0 and "session 2" in out and "cut record" in err, err
    # the joined line as a file's last line, its second record cut by a crash in turn
    path.write_bytes(first.rstrip(b"\n") + second[:-40])
    assert frames_per_session(path) == [3, 1]
    # a line of something else is still refused
    path.write_bytes(first + b'garbage{"index": 1}\n')
    code, err = cli(capsys, "report", path)
    assert code == 2 and "line 5 is not valid JSON" in one_error_line(err)


# -- the API given what it takes elsewhere ---------------------------------------------------------------

@pytest.fixture(scope="module")
def detector():
    from idc_edge import Detector

    with Detector(model_path=TINY) as d:
        yield d


@pytest.mark.filterwarnings("ignore:uint16 frames", "ignore:the frames have no colour")
def test_draw_overlay_takes_every_frame_detect_takes_and_names_what_it_cannot_draw_on(detector):
    # detect() takes grey, BGRA, 16-bit and float frames; drawing on the same frame failed inside OpenCV
    # (cv2.error "Sizes of input arguments do not match"), and detect()'s result.image (None unless
    # keep_image=True) or a wrong argument was an AttributeError
    from idc_edge import draw_overlay
    from idc_edge.errors import FrameError
    from idc_edge.overlay import OverlayInfo

    bgr = tissue_frame()
    result = detector.detect(bgr)
    expected = draw_overlay(bgr, result)
    for frame in (cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA), bgr.astype(np.uint16) * 257, bgr.astype(np.float32) / 255,
                  np.asfortranarray(bgr)):
        drawn = draw_overlay(frame, detector.detect(frame))
        assert drawn.dtype == np.uint8 and drawn.shape == bgr.shape
        assert np.abs(drawn.astype(int) - expected).max() <= 1
    grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    assert draw_overlay(grey, detector.detect(grey)).shape == bgr.shape
    with pytest.raises(FrameError, match="keep_image=True"):
        draw_overlay(result.image, result)
    with pytest.raises(FrameError, match="result is for 200×150"):
        draw_overlay(bgr[:, :50], result)
    with pytest.raises(OptionError, match="result must be the FrameResult"):
        draw_overlay(bgr, result.to_dict())
    with pytest.raises(OptionError, match="style must be an OverlayStyle"):
        draw_overlay(bgr, result, style="red")
    with pytest.raises(OptionError, match="fps must be"):
        draw_overlay(bgr, result, fps="30")
    with pytest.raises(OptionError, match="um_per_px"):
        OverlayInfo(um_per_px="1.0")


# -- outputs given to a second run -----------------------------------------------------------------------

def test_a_video_sink_or_live_view_an_earlier_run_closed_is_refused_not_run_dead_or_stale(tmp_path):
    # sinks reused for a second slide, `for slide in slides: run_session(RunConfig(source=slide), sinks)`:
    # the LiveView's closed server died on its thread (a traceback) while the run went on and printed its
    # address, and the VideoSink wrote the second run's frames under a frame index naming the first run's
    # session, so `report` took the second run's pictures for the first
    import urllib.request

    from idc_edge import DetectorOptions
    from idc_edge.errors import OptionError
    from idc_edge.session import RunConfig, run_session
    from idc_edge.sinks import JsonlSink, LiveView, VideoSink

    config = RunConfig(source=str(write_video(tmp_path / "slide.avi", 3)),
                       detector=DetectorOptions(model_path=TINY, um_per_px=4.0))
    results, video, view = JsonlSink(tmp_path / "r.jsonl"), VideoSink(tmp_path / "out.avi"), LiveView(port=0)
    assert run_session(config, [results, video, view]).frames == 3
    index = (tmp_path / "out.avi.frames.tsv").read_bytes()
    for reused in (video, view):
        fresh = VideoSink(tmp_path / "second.avi")
        with pytest.raises(OptionError, match=f"{type(reused).__name__}.* was given to an earlier run.*make a new"):
            run_session(config, [results, fresh, reused])
        assert not (tmp_path / "second.avi").exists() and not (tmp_path / "second.avi.lock").exists()
    assert (tmp_path / "out.avi.frames.tsv").read_bytes() == index
    # new ones serve the second run, and a results file appends its session as before
    view = LiveView(port=0)
    assert run_session(config, [results, VideoSink(tmp_path / "out.avi"), view]).frames == 3
    assert frames_per_session(tmp_path / "r.jsonl") == [3, 3]
    session_ids = [s.header["id"] for s in read_sessions(tmp_path / "r.jsonl")]
    assert session_ids[1].encode() in (tmp_path / "out.avi.frames.tsv").read_bytes()
    with pytest.raises(OSError):  # the second run's view was closed with it, not left serving
        urllib.request.urlopen(view.url + "status.json", timeout=2)


def test_patient_ids_given_as_numbers_select_those_patients_everywhere(tmp_path):
    # patients are numbers (8867, 10253): open_source(folder, patients=[10253]) raised a bare TypeError
    # "sequence item 0: expected str instance, int found"; RunConfig took 8867.0 and looked for "8867.0"
    from conftest import write_patch
    from idc_edge import PatchClassifier
    from idc_edge.errors import OptionError
    from idc_edge.evaluate import evaluate_folder
    from idc_edge.session import RunConfig
    from idc_edge.sources import open_source

    patch = cv2.cvtColor(cv2.resize(tissue_frame(), (50, 50)), cv2.COLOR_BGR2RGB)
    for patient in ("10253", "10254"):
        for label in (0, 1):
            for x in (1, 51):
                write_patch(tmp_path / patient / str(label) / f"{patient}_idx5_x{x}_y{1 + 50 * label}_class{label}.png",
                            patch)
    with open_source(str(tmp_path), patients=[np.int64(10254), 10253]) as source:
        assert list(source.patients) == ["10254", "10253"]
    assert RunConfig(source=str(tmp_path), patients=(10253,)).patients == ("10253",)
    with PatchClassifier(TINY) as classifier:
        assert list(evaluate_folder(classifier, tmp_path, patients=[10253]).per_patient) == ["10253"]
    for bad in (["10253", 10254.0], [None], "10253", 10253):
        with pytest.raises(OptionError, match="patients must be"):
            open_source(str(tmp_path), patients=bad)
        with pytest.raises(OptionError, match="patients must be"):
            RunConfig(source=str(tmp_path), patients=bad)


# -- files whose name is not what they hold --------------------------------------------------------------

@pytest.mark.parametrize("suffix, fourcc, container", [(".avi", "MJPG", "AVI"), (".mp4", "mp4v", "MP4/MOV"),
                                                       (".mkv", "HFYU", "Matroska/WebM")])
def test_a_video_named_like_an_image_is_run_as_the_video_it_is_and_named_as_one_where_images_are_read(
        tmp_path, capsys, suffix, fourcc, container):
    # a screen recorder's or a phone app's video saved as scan.png: `run --source scan.png` said "cannot read
    # image: the file is empty, corrupt or not an image format OpenCV reads", exit 2; classify counted it
    # among "unreadable image(s) (corrupt or not images)"
    from idc_edge.sources.sniff import file_video_format

    video = write_video(tmp_path / f"v{suffix}", 3, fourcc=fourcc)
    named = video.rename(tmp_path / "scan.png")
    assert file_video_format(str(named)) == container
    code, err = cli(capsys, "run", "--source", named, "--model", TINY, "--um-per-px", 4, "--quiet",
                    "--record", tmp_path / "r.jsonl")
    assert code == 0, err
    assert frames_per_session(tmp_path / "r.jsonl") == [3]
    code, err = cli(capsys, "classify", named, "--model", TINY)
    line = one_error_line(err)
    assert code == 2 and f"holds a video ({container}), not an image" in line and "corrupt" not in line
    folder = tmp_path / "patches"
    folder.mkdir()
    named.rename(folder / "scan.png")
    cv2.imwrite(str(folder / "patch.png"), cv2.resize(tissue_frame(), (50, 50)))
    code, err = cli(capsys, "classify", folder, "--model", TINY)
    assert code == 0 and "skipped 1 video(s) named like images" in err and "unreadable" not in err, err
    # a real image keeps being read as one whatever its suffix, and a corrupt image is still "corrupt"
    assert file_video_format(str(folder / "patch.png")) is None
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64 + b"IEND")
    code, err = cli(capsys, "run", "--source", tmp_path / "bad.png", "--model", TINY, "--quiet")
    assert code == 2 and "corrupt" in one_error_line(err)


@pytest.mark.filterwarnings("ignore:uint16 frames")
def test_a_dark_frame_streamed_as_a_bare_array_keeps_the_depth_its_stream_has_shown(detector):
    # a caller's own 12-bit camera loop, detector.stream(frames()) of uint16 arrays: each frame's depth was
    # guessed alone, so a dark frame (values up to 784) was read as 10-bit, 4x brighter than it is, and one up
    # to 200 as 8-bit, 16x, though the stream had shown 12-bit frames (idc-edge's own sources kept the depth)
    from idc_edge.frames import to_bgr8
    from idc_edge.threads import ThreadedStream

    bright = tissue_frame().astype(np.uint16) * 16  # 12-bit: values up to 3520
    dim, dark = bright // 5, bright // 18          # up to 704 and 195
    for results in (list(detector.stream(iter([bright, dim, dark]), keep_image=True)),
                    list(ThreadedStream(detector, iter([bright, dim, dark]), keep_image=True))):
        for result, frame in zip(results, (bright, dim, dark)):
            assert np.array_equal(result.image, to_bgr8(frame, bits=12)), result.index
        assert results[2].image.max() < 20  # as dark as it was taken, not stretched to 8 bits
    # each stream starts afresh: a dark frame alone is read at the depth it shows
    alone = next(iter(detector.stream([dark], keep_image=True)))
    assert np.array_equal(alone.image, to_bgr8(dark))


def test_evaluate_folder_refuses_a_progress_that_is_no_function_before_reading_the_folder(tmp_path):
    """``evaluate_folder(progress=5)`` raised a bare TypeError from deep inside, after the folder
    was scanned; ``context="no"`` was taken as true."""
    from idc_edge.classifier import PatchClassifier
    from idc_edge.evaluate import evaluate_folder

    with PatchClassifier(TINY) as clf:
        for kwargs, option in (({"progress": 5}, "progress"), ({"context": "no"}, "context")):
            with pytest.raises(OptionError, match=option) as e:
                evaluate_folder(clf, tmp_path / "not-read", **kwargs)
            assert e.value.option == option
