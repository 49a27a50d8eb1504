"""Durable results: whole JSON lines, appended, never truncated."""
import json
import os

import cv2
import numpy as np
import pytest

from idc_edge.errors import OptionError, RecordError
from idc_edge.record import JsonlRecorder, VideoRecorder


def test_every_record_is_one_whole_json_line(tmp_path):
    path = tmp_path / "r.jsonl"
    with JsonlRecorder(path) as rec:
        for i in range(5):
            rec.write({"index": i, "boxes": [[1, 2, 3, 4]]})
            # visible on disk immediately, before close
            assert len(path.read_text().splitlines()) == i + 1
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [d["index"] for d in lines] == list(range(5))


def test_an_existing_file_is_appended_to_and_a_cut_last_record_is_removed(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"index": 0}\n{"index": 1, "cut')
    with JsonlRecorder(path) as rec:
        rec.write({"index": 2})
    lines = path.read_text().splitlines()
    # the unfinished record was never reported; keeping it would leave a line that is not JSON
    assert lines[0] == '{"index": 0}' and json.loads(lines[-1]) == {"index": 2} and len(lines) == 2


def test_the_recorder_takes_a_file_as_the_readers_do_past_blank_lines_and_a_byte_order_mark(tmp_path):
    """The recorder appends only to what read_records reads: a BOM and blank lines are skipped by both,
    another program's text after blank lines is still refused untouched."""
    from idc_edge.record import read_records

    ours, theirs, cut = tmp_path / "ours.jsonl", tmp_path / "theirs.txt", tmp_path / "cut.jsonl"
    ours.write_bytes(b'\xef\xbb\xbf\n \r\n{"index": 0}\n\n\t')
    theirs.write_bytes(b"\n\nname,value\n")
    cut.write_bytes(b'\xef\xbb\xbf{"index": 0, "cu')  # a BOM, then a first record a crash cut
    with JsonlRecorder(ours) as rec:
        rec.write({"index": 1})
    assert [r["index"] for r in read_records(ours)] == [0, 1]
    with pytest.raises(RecordError, match="not an idc-edge results file"):
        JsonlRecorder(theirs)
    assert theirs.read_bytes() == b"\n\nname,value\n"
    with JsonlRecorder(cut) as rec:
        rec.write({"index": 0})
    assert cut.read_bytes() == b'{"index":0}\n' and read_records(cut) == [{"index": 0}]


def test_nan_is_refused_rather_than_written_as_invalid_json(tmp_path):
    with JsonlRecorder(tmp_path / "r.jsonl") as rec, pytest.raises(ValueError):
        rec.write({"x": float("nan")})


def test_recorder_fails_with_a_missing_folder(tmp_path):
    with pytest.raises(RecordError, match="does not exist"):
        JsonlRecorder(tmp_path / "no" / "r.jsonl")


def test_a_full_disk_gives_a_clear_error():
    if not os.path.exists("/dev/full"):
        pytest.skip("/dev/full (a device whose every write fails with ENOSPC) is not available here")
    with JsonlRecorder("/dev/full", fsync=False) as rec:
        with pytest.raises(RecordError, match="disk is full"):
            rec.write({"index": 0})


def test_write_after_close_fails(tmp_path):
    rec = JsonlRecorder(tmp_path / "r.jsonl")
    rec.close()
    rec.close()
    with pytest.raises(RecordError, match="closed"):
        rec.write({})


@pytest.mark.parametrize("suffix", [".mp4", ".avi", ".mkv"])
def test_video_recorder_writes_a_playable_file(tmp_path, suffix):
    path = tmp_path / f"out{suffix}"
    with VideoRecorder(path, fps=15) as vid:
        for i in range(6):
            vid.write(np.full((120, 160, 3), 40 * i, np.uint8))
        vid.write(np.zeros((60, 80, 3), np.uint8))  # another size is resized
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    assert n == 7


def test_video_recorder_fails_with_an_unknown_extension(tmp_path):
    with pytest.raises(OptionError, match=".avi"):
        VideoRecorder(tmp_path / "out.gif")


def test_an_interrupt_after_a_whole_line_keeps_it_and_one_inside_a_line_cuts_it(tmp_path, monkeypatch):
    """Python raises KeyboardInterrupt between any two steps: after the write (during fsync) the
    line is whole and stays counted; between two partial writes the part is cut off."""
    import idc_edge.record as record

    path = tmp_path / "r.jsonl"
    rec = JsonlRecorder(path)
    rec.write({"index": 0})

    def interrupted_fsync(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(record.os, "fsync", interrupted_fsync)
    with pytest.raises(KeyboardInterrupt):
        rec.write({"index": 1})
    assert rec.lines == 2 and [json.loads(x)["index"] for x in path.read_text().splitlines()] == [0, 1]

    real_write = os.write
    calls = []

    def half_then_interrupt(fd, data):
        if calls:
            raise KeyboardInterrupt
        calls.append(1)
        return real_write(fd, bytes(data[: len(data) // 2]))

    monkeypatch.setattr(record.os, "write", half_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        rec.write({"index": 2, "pad": "x" * 100})
    monkeypatch.undo()
    rec.write({"index": 3})
    rec.close()
    assert rec.lines == 3 and [json.loads(x)["index"] for x in path.read_text().splitlines()] == [0, 1, 3]
