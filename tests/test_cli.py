"""The ``idc-edge`` command as a user runs it: a real subprocess, real files."""
import csv
import io
import json
import os
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import frame_with_blob
from idc_edge.record import read_sessions

REQUIRED_EVAL_KEYS = {"accuracy", "balanced_accuracy", "recall_0", "recall_1", "precision_1", "f1_1", "roc_auc",
                      "n_patches", "n_patients", "threshold"}


def idc_edge(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "idc_edge", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture
def video(tmp_path):
    path = tmp_path / "stage.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 240))
    for i in range(8):
        writer.write(frame_with_blob(shape=(240, 320), box=(20 * i, 40, 20 * i + 150, 200)))
    writer.release()
    return path


def test_run_records_every_frame_and_saves_a_playable_video(tiny_int8, video, tmp_path):
    rec, out = tmp_path / "results.jsonl", tmp_path / "overlay.avi"
    p = idc_edge("run", "--source", video, "--model", tiny_int8, "--record", rec, "--save-video", out, "--quiet")
    assert p.returncode == 0, p.stderr
    (session,) = read_sessions(rec)
    lines = session.records
    assert session.header["source"]["description"].startswith("video") and session.header["model"]["sha256"]
    assert [d["index"] for d in lines] == list(range(8))
    assert all(d["idc_patches"] > 0 and d["tissue_patches"] > 0 for d in lines)
    assert all(0 < d["idc_fraction"] <= 1 for d in lines)
    cap = cv2.VideoCapture(str(out))
    ok, first = cap.read()
    cap.release()
    assert ok and first.shape == (240, 320, 3)
    assert "8 frame(s)" in p.stderr


def test_run_stops_after_max_frames(tiny_int8, video, tmp_path):
    rec = tmp_path / "r.jsonl"
    p = idc_edge("run", "--source", video, "--model", tiny_int8, "--max-frames", 3, "--record", rec, "--quiet")
    assert p.returncode == 0 and len(rec.read_text().splitlines()) == 1 + 3  # the session header, 3 frames


def test_classify_writes_a_csv_of_probabilities(tiny_int8, synthetic_dataset, tmp_path):
    out = tmp_path / "p.csv"
    p = idc_edge("classify", synthetic_dataset, "--model", tiny_int8, "--out", out, "--quiet")
    assert p.returncode == 0, p.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(rows) == 41
    correct = sum(int(r["idc"]) == int(r["label"]) for r in rows)
    assert correct >= 39
    assert {r["patient"] for r in rows} == {"p1", "p2"}


def test_evaluate_json_has_the_documented_keys(tiny_int8, synthetic_dataset):
    p = idc_edge("evaluate", synthetic_dataset, "--model", tiny_int8, "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert REQUIRED_EVAL_KEYS <= set(out)
    assert out["n_patches"] == 41 and out["n_patients"] == 2
    assert out["balanced_accuracy"] > 0.9
    assert set(out["per_patient"]) == {"p1", "p2"}


def test_evaluate_prints_a_table(tiny_int8, synthetic_dataset):
    p = idc_edge("evaluate", synthetic_dataset, "--model", tiny_int8)
    assert p.returncode == 0 and "balanced_accuracy" in p.stdout and "per patient" in p.stdout


@pytest.mark.data
def test_evaluate_on_one_class_says_so_and_gives_no_balanced_accuracy(data_dir, tmp_path):
    """Real no-IDC patches only: balanced accuracy and ROC AUC are nan (null in --json), said once."""
    folder = tmp_path / "only0" / "8867" / "0"
    folder.mkdir(parents=True)
    for patch in sorted((data_dir / "8867" / "0").glob("*.png"))[:20]:
        (folder / patch.name).write_bytes(patch.read_bytes())
    p = idc_edge("evaluate", tmp_path / "only0", "--quiet")
    assert p.returncode == 0, p.stderr
    assert re.search(r"balanced_accuracy\s+nan", p.stdout) and re.search(r"roc_auc\s+nan", p.stdout)
    said = [line for line in p.stderr.splitlines() if "one class only" in line]
    assert len(said) == 1 and said[0].startswith("idc-edge: warning: ") and "balanced accuracy" in said[0]
    out = json.loads(idc_edge("evaluate", tmp_path / "only0", "--json").stdout)
    assert out["balanced_accuracy"] is None and out["roc_auc"] is None and out["recall_0"] is not None


def test_info_json_names_backend_model_and_sidecar(tiny_int8):
    p = idc_edge("info", "--json", "--model", tiny_int8)
    assert p.returncode == 0, p.stderr
    info = json.loads(p.stdout)
    assert info["backend"]["name"] == "ai-edge-litert"
    assert info["model"]["path"] == str(tiny_int8)
    assert info["model"]["sidecar"]["um_per_px"] == 4.0
    assert info["model"]["input"]["dtype"] == "uint8"


def test_info_describes_the_shipped_model():
    p = idc_edge("info", "--json")
    assert p.returncode == 0, p.stderr
    info = json.loads(p.stdout)
    assert info["model"]["shipped_default"] and info["model"]["path"].endswith("idc_int8.tflite")


@pytest.mark.parametrize("args,message", [
    (["run", "--source", "/no/such/video.mp4"], "does not exist"),
    (["run", "--camera", "9"], "no camera at 9"),
    (["run", "--source", ".", "--model", "/no/model.tflite"], "model file"),
    (["run", "--source", ".", "--stride", "0"], "--stride must be >= 1"),
    (["run", "--source", ".", "--stride", "-5"], "--stride must be >= 1"),
    (["run", "--source", ".", "--um-per-px", "0"], "--um-per-px must be from 0.01 to 100"),
    (["run", "--source", ".", "--threads", "0"], "--threads must be >= 1"),
    (["run", "--source", ".", "--threads", "1000"], "--threads must be <= "),
    (["classify", ".", "--threads", "1000"], "--threads must be <= "),
    (["bench", "--threads", "1000"], "--threads must be <= "),
    (["classify", ".", "--threshold", "-0.5"], "--threshold must be between 0 and 1"),
    (["run", "--source", ".", "--threshold", "2"], "threshold must be between 0 and 1"),
    (["run", "--source", ".", "--strid", "25"], "did you mean --stride?"),
    (["rnu"], "did you mean run?"),
    (["evaluate", "/no/data"], "does not exist"),
    (["classify", "/no/patch.png"], "does not exist"),
])
def test_cli_errors_are_one_line_with_exit_code_2(args, message):
    p = idc_edge(*args)
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert "Traceback" not in p.stderr
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("idc-edge: error:"), p.stderr
    assert message in lines[0]


def test_cli_error_for_a_corrupt_model(tmp_path, tiny_int8):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\x00" * 64)
    p = idc_edge("info", "--model", bad)
    assert p.returncode == 2 and "not a TFLite model" in p.stderr and "Traceback" not in p.stderr


def test_stride_larger_than_a_patch_is_a_one_line_warning(tiny_int8, video):
    p = idc_edge("run", "--source", video, "--model", tiny_int8, "--stride", 80, "--max-frames", 1, "--quiet")
    assert p.returncode == 0
    assert "idc-edge: warning: stride 80 px is larger than the 50 px patch" in p.stderr


def test_show_without_a_display_or_a_gui_suggests_serve_in_one_line(tiny_int8, video, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    p = subprocess.run([sys.executable, "-m", "idc_edge", "run", "--source", str(video), "--model", str(tiny_int8),
                        "--show"], capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "Traceback" not in p.stderr
    assert "there is no display" in p.stderr and "--serve" in p.stderr
    env["DISPLAY"] = ":97"  # a display whose X server is not running: Qt would abort with exit 134
    p = subprocess.run([sys.executable, "-m", "idc_edge", "run", "--source", str(video), "--model", str(tiny_int8),
                        "--show"], capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode == 2 and "the display ':97' is not running" in p.stderr and "--serve" in p.stderr


def test_the_runtime_never_imports_tensorflow():
    code = ("import sys, idc_edge, idc_edge.cli, idc_edge.detector, idc_edge.sources, idc_edge.overlay, "
            "idc_edge.record, idc_edge.evaluate; from idc_edge.detector import Detector; Detector().close(); "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tf_keras')]; "
            "assert not bad, bad")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr


def test_classify_tiles_an_image_larger_than_a_patch_instead_of_cropping_it(tiny_int8, tmp_path):
    """A 320×240 frame with IDC-like tissue off its top-left corner: cropping to 50×50 would say no IDC."""
    big = tmp_path / "field.png"
    cv2.imwrite(str(big), frame_with_blob(shape=(240, 320), box=(150, 100, 300, 220)))
    patch = tmp_path / "patch.png"
    cv2.imwrite(str(patch), frame_with_blob(shape=(50, 50), box=(0, 0, 50, 50)))
    out = tmp_path / "p.csv"
    p = idc_edge("classify", patch, big, "--model", tiny_int8, "--out", out, "--quiet")
    assert p.returncode == 0, p.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert rows[0]["path"] == str(patch) and (rows[0]["x"], rows[0]["y"], rows[0]["tissue"]) == ("0", "0", "1")
    tiles = [r for r in rows if r["path"] == str(big)]
    assert len(tiles) == 7 * 5  # ceil(320 / 50) × ceil(240 / 50) windows, each with its top-left corner
    xs, ys = sorted({int(r["x"]) for r in tiles}), sorted({int(r["y"]) for r in tiles})
    assert (xs[0], xs[-1] + 50, len(xs)) == (0, 320, 7) and (ys[0], ys[-1] + 50, len(ys)) == (0, 240, 5)  # whole image
    idc = {(int(r["x"]), int(r["y"])) for r in tiles if r["idc"] == "1"}
    assert (200, 150) in idc and (0, 0) not in idc
    assert all(r["probability"] == "" and r["tissue"] == "0" for r in tiles if (int(r["x"]), int(r["y"])) == (0, 0))


def test_library_messages_name_options_and_the_cli_says_flags():
    from idc_edge.cli import build_parser
    from idc_edge.cli.options import in_cli_words

    build_parser()  # the flags are learnt from the parser, as main() does
    from idc_edge.errors import ModelError, OptionError, SourceError

    e = OptionError("num_threads must be >= 1, got 0", option="num_threads")
    assert in_cli_words(e) == "--threads must be >= 1, got 0"
    assert in_cli_words(SourceError("gave no frame for 3 s (or raise lost_timeout_s); check um_per_px")) == \
        "gave no frame for 3 s (or raise --camera-timeout); check --um-per-px"
    assert in_cli_words("a stride of 30 px") == "a stride of 30 px"  # plain words stay words
    sidecar = ModelError("sidecar: um_per_px must be a positive number")  # the sidecar's key, not the option
    assert in_cli_words(sidecar) == str(sidecar)
