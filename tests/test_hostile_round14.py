"""Red-team round 14: a data set's mistyped coordinate in the field context, an optional count written as null,
stream cameras that send one picture per connection or nothing that decodes, a data set one level down or with
underscores in its patient ids, and a snapshot that does not fit on the disk.

Everything is real: patches of the data set copied into folders written here, the shipped int8 model and the tiny
test model in the real LiteRT interpreter, HTTP servers on localhost sockets, a small tmpfs, the CLI run in this
process or as a child process.
"""
from __future__ import annotations

import json
import shutil

import pytest

from hostile import TINY
from idc_edge.cli import main


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("IDC_EDGE_CACHE_DIR", str(tmp_path / "cache"))


def _run(capsys, *args) -> tuple[int, str, str]:
    """(exit code, standard output, standard error) of ``idc-edge ARGS`` run in this process."""
    code = main([str(a) for a in args])
    got = capsys.readouterr()
    return code, got.out, got.err


def _copy_patient(data_dir, root, patient="8863", per_class=15):
    """``per_class`` patches of each class of ``patient`` copied into ``root`` in the data set's layout."""
    for label in ("0", "1"):
        out = root / patient / label
        out.mkdir(parents=True)
        for path in sorted((data_dir / patient / label).iterdir())[:per_class]:
            shutil.copy(path, out / path.name)
    return root


# -- evaluate: one patch whose name has a mistyped coordinate -----------------------------------------------------

def test_evaluate_reads_the_field_context_of_a_patient_with_a_mistyped_coordinate(data_dir, tmp_path, capsys):
    """One copy of a patch renamed to ``x999999950_y999999950`` (a typo, within the 9 digits a name may
    have) made the field context ask for one grid from the slide's corner to it, 20 million patches on a
    side: "idc-edge: error: out of memory", every score of the evaluation lost. Patches further apart than
    the context reaches are read on grids of their own: the others score as without it."""
    root = _copy_patient(data_dir, tmp_path / "ds")
    code, out, err = _run(capsys, "evaluate", root, "--json")
    assert code == 0, err
    before = json.loads(out)
    first = sorted((root / "8863" / "0").iterdir())[0]
    shutil.copy(first, root / "8863" / "0" / "8863_idx5_x999999950_y999999950_class0.png")
    code, out, err = _run(capsys, "evaluate", root, "--json")
    assert code == 0, err
    after = json.loads(out)
    assert after["n_patches"] == before["n_patches"] + 1
    assert after["in_field"]["n_patches"] == before["in_field"]["n_patches"] + 1
    # the far copy has no neighbour: read alone it is scored as alone; the others' calls are unchanged
    (tn, fp), (fn, tp) = before["in_field"]["confusion"]
    alone_fp = after["confusion"][0][1] - before["confusion"][0][1]
    assert after["in_field"]["confusion"] == [[tn + 1 - alone_fp, fp + alone_fp], [fn, tp]]


# -- report: an optional count written as null ---------------------------------------------------------------------

def test_report_reads_an_optional_count_written_as_null_as_missing(tmp_path, capsys):
    """A results file passed through a notebook (pandas writes a missing number as ``null``) or written by a
    caller's own recorder with ``"reused_patches": null``: the header says such counts may be null, and
    every other reader took null as missing, but the fields-viewed count compared it with a number:
    "internal error (TypeError ...)", exit 2, nothing of the file summarised."""
    from conftest import run_recorded
    from hostile import write_video

    record = tmp_path / "r.jsonl"
    run_recorded(write_video(tmp_path / "v.avi", 12), record, "--model", TINY)
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    nulled, missing = tmp_path / "null.jsonl", tmp_path / "missing.jsonl"
    with open(nulled, "w") as n, open(missing, "w") as m:
        for i, line in enumerate(lines):
            if i % 2 == 0 and "index" in line:  # every other frame: null in one file, left out in the other
                for key in ("reused_patches", "idc_patches"):
                    line[key] = None
                n.write(json.dumps(line) + "\n")
                m.write(json.dumps({k: v for k, v in line.items() if v is not None}) + "\n")
            else:
                n.write(json.dumps(line) + "\n")
                m.write(json.dumps(line) + "\n")
    for args in ((), ("--json",)):
        code, out_null, err = _run(capsys, "report", tmp_path / "null.jsonl", *args)
        assert code == 0 and "error" not in err, err
        code, out_missing, err = _run(capsys, "report", tmp_path / "missing.jsonl", *args)
        assert code == 0, err
        assert out_null.replace("null.jsonl", "X") == out_missing.replace("missing.jsonl", "X")


# -- a stream camera's address that sends one picture per connection ------------------------------------------------

@pytest.fixture
def snapshot_server():
    """An HTTP camera's snapshot address on localhost: every GET answers one JPEG (``image/jpeg``) and closes."""
    import cv2

    from hostile import tissue_frame
    from test_hostile_round11 import http_camera

    jpeg = cv2.imencode(".jpg", tissue_frame())[1].tobytes()
    server, port = http_camera(lambda path, headers: (200, {"Content-Type": "image/jpeg", "Connection": "close"}, jpeg))
    yield f"http://127.0.0.1:{port}/snapshot.jpg"
    server.shutdown()
    server.server_close()


def test_a_stream_address_that_sends_one_picture_per_connection_is_said_once(snapshot_server, tmp_path):
    """``--camera http://cam/snapshot.jpg`` (a camera's snapshot address pasted for its stream): every frame
    was a drop-out and a reconnection, two warnings a frame ("no frame (the stream stopped ...)", "frames
    again after 0.1 s"), thousands an hour burying every other warning. It is said once what the address is
    and that it is read one connection a frame; every frame is still read and recorded."""
    import subprocess
    import sys

    record = tmp_path / "r.jsonl"
    p = subprocess.run([sys.executable, "-m", "idc_edge", "run", "--camera", snapshot_server, "--max-frames", "20",
                        "--camera-timeout", "5", "--model", TINY, "--record", record, "--quiet"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert len(record.read_text().splitlines()) == 21  # the header and every frame
    said = [line for line in p.stderr.splitlines() if "warning" in line and "scale is not calibrated" not in line]
    assert sum("one picture per connection" in line for line in said) == 1, p.stderr
    assert len(said) <= 5, p.stderr  # the first drop-outs before it could be told, then the one line


# -- a stream that keeps sending what is not video ------------------------------------------------------------------

@pytest.fixture
def noise_stream():
    """An HTTP "camera" on localhost answering a Motion-JPEG stream whose parts are random bytes, sent until
    the client leaves (a wrong path serving another kind of data, a broken encoder)."""
    import os

    from hostile import mjpeg_stream

    with mjpeg_stream(lambda n: os.urandom(5000)) as url:
        yield url


def test_a_stream_that_answers_with_what_is_not_video_is_not_called_stopped(noise_stream):
    """A stream whose server answers every connection and keeps sending, but nothing that decodes as a frame,
    ended with "gave no frame for 3 s: check that the camera's machine is on and still streaming, and the
    network between": the machine, the network and the stream were all there, the data was not video. When
    the stream opened again in that time, the line says its server answers and what it sends is no video."""
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-m", "idc_edge", "run", "--camera", noise_stream, "--max-frames", "3",
                        "--camera-timeout", "3", "--model", TINY, "--quiet"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 3, p.stderr
    error = [line for line in p.stderr.splitlines() if line.startswith("idc-edge: error: ")]
    assert len(error) == 1 and "Traceback" not in p.stderr, p.stderr
    assert "server answers" in error[0] and "does not decode as video" in error[0], error[0]
    assert "machine is on" not in error[0], error[0]


# -- the data set one level down, as its archive unpacks ------------------------------------------------------------

def test_a_data_set_one_level_down_as_its_archive_unpacks_is_named(data_dir, tmp_path, capsys):
    """The "Breast Histopathology Images" archive unpacks into ``IDC_regular_ps50_idx5/<patient>/<0|1>/``; the
    folder it was unpacked in, passed to ``evaluate`` or ``run --source``, was "no patches found ...: expected
    <patient>/<0|1>/..." or "has no images", naming nothing there to pass instead. Both name the sub-folder."""
    from hostile import one_error_line

    inner = _copy_patient(data_dir, tmp_path / "archive" / "IDC_regular_ps50_idx5", per_class=2)
    for args in (("evaluate", tmp_path / "archive"), ("run", "--source", tmp_path / "archive", "--model", TINY)):
        code, out, err = _run(capsys, *args)
        line = one_error_line(err)
        assert code == 2 and "one level down" in line and str(inner) in line and line.endswith("pass that folder"), err
    code, out, err = _run(capsys, "evaluate", inner, "--json")
    assert code == 0 and json.loads(out)["n_patches"] == 4, err


# -- a snapshot whose last file does not fit on the disk ------------------------------------------------------------

def _post_snapshot(url: str) -> tuple[int, dict]:
    """(status, JSON answer) of the live view's Snapshot button, posted as its page posts it."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url + "snapshot", data=b"", method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_a_snapshot_that_does_not_fit_on_the_disk_leaves_none_of_its_files(tmp_path):
    """A snapshot is three files (overlay PNG, raw PNG, JSON). On a disk with room for the pictures but not the
    JSON, the pictures stayed: half a snapshot no report shows, holding the last free space, so every later
    snapshot (and any results file on that disk) failed too. Its files are removed: the disk has its room
    back, and a snapshot is whole or absent. Needs a small file system (a tmpfs: root)."""
    import os
    import subprocess

    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    (tmp_path / "probe").mkdir()
    status, saved, _ = _snapshot_of_a_run(tmp_path / "probe")
    assert status == 200, saved
    page = 4096
    pictures = sum(-(-os.path.getsize(saved[key]) // page) for key in ("png", "raw_png"))  # whole pages
    snaps = tmp_path / "full" / "snaps"
    snaps.mkdir(parents=True)
    size = pictures * page  # room for both pictures, not for the JSON beside them
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(snaps)]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        status, said, running = _snapshot_of_a_run(tmp_path / "full")
        assert status == 503, said
        assert list(snaps.iterdir()) == []  # nothing of it left, the disk's room back
        assert "disk is full" in said["error"] and "none of its files kept" in said["error"], said
        assert running.snapshot.taken == []
    finally:
        subprocess.run(["umount", str(snaps)])


def _snapshot_of_a_run(folder):
    """(status, JSON answer, the run) of one Snapshot press on a live view's run of one picture (a textured blob on
    glass, 640×480: every snapshot alike) saving snapshots in ``folder / "snaps"``, its results beside them."""
    import time

    from conftest import frame_with_blob
    from test_live_view import Running

    running = Running(folder, frames=[frame_with_blob(shape=(480, 640), box=(128, 96, 384, 384))])
    try:
        while running.frames_recorded() < 3:
            time.sleep(0.05)
        status, answer = _post_snapshot(running.view.url)
    finally:
        running.stop()
    return status, answer, running


# -- patient ids holding an underscore ------------------------------------------------------------------------------

def test_patient_ids_holding_an_underscore_are_read(data_dir, tmp_path, capsys):
    """An anonymised data set in the layout whose patient ids hold an underscore (``case_01/0/case_01_idx5_x0_y0
    _class0.png``): every patch was "not named <patient>_idx5_x<X>_y<Y>_class<0|1>.png" (they were named just so),
    ``evaluate`` refused the whole set and ``classify`` gave no patient or label. A patient id is the shortest
    prefix the rest of the name follows."""
    import csv
    import io

    root = tmp_path / "anonymised"
    for patient, source in (("case_01", "8863"), ("case_02", "8865")):
        for label in ("0", "1"):
            (root / patient / label).mkdir(parents=True)
            for i, path in enumerate(sorted((data_dir / source / label).iterdir())[:3]):
                shutil.copy(path, root / patient / label / f"{patient}_idx5_x{50 * i}_y{100 * int(label)}_class{label}.png")
    code, out, err = _run(capsys, "evaluate", root, "--json")
    assert code == 0, err
    got = json.loads(out)
    assert got["n_patches"] == 12 and sorted(got["per_patient"]) == ["case_01", "case_02"] and got["misnamed_files"] == 0
    code, out, err = _run(capsys, "classify", root / "case_02" / "1")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 3 and {(r["patient"], r["label"]) for r in rows} == {("case_02", "1")}
