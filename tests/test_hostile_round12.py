"""Red-team round 12: image folders as a capture tool leaves them, the report's average, the command line's
words when an option swallows a folder or standard output cannot be written.

Everything is real: PNG, JPEG, GIF and PNM files OpenCV writes, runs of the committed tiny model through the
CLI, standard output sent to ``/dev/full`` or past a real ``RLIMIT_FSIZE`` in a child process.
"""
from __future__ import annotations

import json
import resource
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import ROOT
from hostile import TINY, cli, one_error_line, tissue_frame
from idc_edge.record import read_records


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("IDC_EDGE_CACHE_DIR", str(tmp_path / "cache"))


def _out(capsys, *args) -> str:
    """Standard output of ``idc-edge ARGS`` run in this process (asserted to exit 0)."""
    from idc_edge.cli import main

    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


def _write(path, image, ext=None) -> None:
    ok, data = cv2.imencode(ext or path.suffix, image)
    assert ok
    path.write_bytes(data.tobytes())


# -- an image folder: every image in it, in the order its numbers say -----------------------------------------

def test_an_image_folder_numbered_without_padding_is_read_in_its_numbers_order(tmp_path, capsys):
    """frame_1 ... frame_12 (a capture tool's numbering): name order read frame_1, frame_10, frame_11, frame_12,
    frame_2, ...: the frames out of order in the results file, the video and the report's timeline."""
    folder = tmp_path / "captures"
    folder.mkdir()
    for i in range(1, 13):
        _write(folder / f"frame_{i}.png", tissue_frame(width=100 + i))  # each frame told by its width
    code, _ = cli(capsys, "run", "--source", folder, "--model", TINY, "--quiet", "--record", tmp_path / "r.jsonl")
    assert code == 0
    widths = [r["frame"]["width"] for r in read_records(tmp_path / "r.jsonl")]
    assert widths == [100 + i for i in range(1, 13)]
    code, _ = cli(capsys, "classify", folder, "--model", TINY, "--quiet", "--out", tmp_path / "rows.csv")
    listed = [line.split(",")[0] for line in (tmp_path / "rows.csv").read_text().splitlines()[1:]]
    assert code == 0 and list(dict.fromkeys(listed)) == [str(folder / f"frame_{i}.png") for i in range(1, 13)]


def test_images_in_a_folder_under_another_name_than_png_or_jpg_are_read_not_left_out(tmp_path, capsys):
    """A JPEG saved by a browser as .jfif, a GIF, a PNM, a JPEG without a suffix: left out of `run --source
    FOLDER` and `classify FOLDER` without a word (5 images, "2 frame(s)"); a text file stays out."""
    folder = tmp_path / "images"
    folder.mkdir()
    frame = tissue_frame()
    _write(folder / "a.png", frame)
    _write(folder / "b.jfif", frame, ".jpg")
    _write(folder / "c.gif", frame)
    _write(folder / "d.pnm", frame)
    _write(folder / "e_no_suffix", frame, ".jpg")
    _write(folder / "f.PNG", frame)
    (folder / "notes.txt").write_text("slide 3, left edge\n")
    code, err = cli(capsys, "run", "--source", folder, "--model", TINY, "--quiet", "--record", tmp_path / "r.jsonl")
    assert code == 0 and "6 frame(s)" in err
    assert len(read_records(tmp_path / "r.jsonl")) == 6
    code, _ = cli(capsys, "classify", folder, "--model", TINY, "--quiet", "--out", tmp_path / "rows.csv")
    listed = {line.split(",")[0] for line in (tmp_path / "rows.csv").read_text().splitlines()[1:]}
    assert code == 0 and listed == {str(folder / n) for n in ("a.png", "b.jfif", "c.gif", "d.pnm", "e_no_suffix", "f.PNG")}


# -- report: the IDC share of tissue averaged over frames that judged tissue ----------------------------------

def test_the_report_averages_the_idc_share_over_frames_with_tissue_not_over_glass(tmp_path, capsys):
    """A session whose frames alternate tissue and bare glass (the stage moving between fields) read half
    its IDC share of tissue ("8.3 %" for 16.7 %); a session of glass only read "0.0 % of tissue on
    average", as if none were IDC."""
    folder = tmp_path / "stage"
    folder.mkdir()
    glass = np.full((150, 200, 3), 245, np.uint8)
    for i in range(1, 7):
        _write(folder / f"f{i}.png", tissue_frame() if i % 2 else glass)
    results = tmp_path / "r.jsonl"
    assert cli(capsys, "run", "--source", folder, "--model", TINY, "--quiet", "--record", results)[0] == 0
    tissue = [r for r in read_records(results) if r["tissue_patches"]]
    assert len(tissue) == 3 and tissue[0]["idc_fraction"] > 0
    summary = json.loads(_out(capsys, "report", results, "--json"))["sessions"][0]
    assert summary["mean_idc_percent"] == pytest.approx(100 * tissue[0]["idc_fraction"], abs=0.01)

    glass_only = tmp_path / "glass"
    glass_only.mkdir()
    _write(glass_only / "g.png", glass)
    results = tmp_path / "glass.jsonl"
    assert cli(capsys, "run", "--source", glass_only, "--model", TINY, "--quiet", "--record", results)[0] == 0
    summary = json.loads(_out(capsys, "report", results, "--json"))["sessions"][0]
    assert summary["mean_idc_percent"] is None and summary["max_idc_mm2"] is None  # not "largest 0.00 mm²"
    text = _out(capsys, "report", results)
    assert "IDC: no tissue judged in any frame" in text and "0.0 %" not in text and "0.00 mm²" not in text


# -- the command line's words ---------------------------------------------------------------------------------

def test_evaluate_with_the_data_folder_typed_after_patients_says_patients_took_it(tmp_path, capsys):
    """`evaluate --patients 8863 8865 DATA_DIR`: --patients took the folder as a patient id and the one line
    said only "the following arguments are required: DATA_DIR", which was there."""
    data = tmp_path / "idc_patches"
    data.mkdir()
    code, err = cli(capsys, "evaluate", "--model", TINY, "--patients", "8863", "8865", data)
    line = one_error_line(err)
    assert code == 2 and f"--patients takes every word after it, so it took '{data}' as one of its values" in line
    assert "give DATA_DIR before --patients" in line
    code, err = cli(capsys, "evaluate", "--model", TINY, "--patients", "8863")  # no folder typed: as it was
    assert code == 2 and one_error_line(err) == ("idc-edge: error: the following arguments are required: DATA_DIR; "
                                                 "see `idc-edge evaluate --help`")


def _limit_file_size():
    resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))


@pytest.mark.parametrize("where", ["full disk", "file-size limit"])
def test_standard_output_that_cannot_be_written_is_named_as_standard_output(tmp_path, where):
    """`idc-edge report --json > out.json` on a full disk said "idc-edge: error: the disk is full", past
    `ulimit -f` "idc-edge: error: File too large": neither said that it was standard output, nor where it led,
    nor that what it holds is cut short."""
    patch = tmp_path / "patch.png"
    _write(patch, tissue_frame(400, 300))
    target = "/dev/full" if where == "full disk" else str(tmp_path / "rows.csv")
    with open(target, "w") as stdout:
        done = subprocess.run([sys.executable, "-m", "idc_edge", "classify", str(patch), "--model", TINY, "--quiet"],
                              cwd=ROOT, stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=120,
                              preexec_fn=None if where == "full disk" else _limit_file_size)
    line = one_error_line(done.stderr)
    assert done.returncode == 2 and line.startswith(f"idc-edge: error: cannot write standard output ('{target}'): ")
    assert ("the disk is full; what it holds is cut short" in line if where == "full disk" else
            "file-size limit (ulimit -f); what it holds is cut short: raise the limit" in line)
