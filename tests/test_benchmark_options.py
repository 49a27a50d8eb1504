"""The benchmark commands refuse bad input in one line with exit 2 (real files, the commands as subprocesses)."""
from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from dataclasses import replace

import pytest

from conftest import ROOT


def bench(module: str, *args, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", f"benchmarks.{module}", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, cwd=str(ROOT))


def one_line(p: subprocess.CompletedProcess) -> str:
    assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    return lines[0]


@pytest.fixture
def conversion(tiny_models, tmp_path):
    """A ``python -m convert`` output folder of the tiny int8 model and its float32 twin, with ``variants.json``."""
    from convert.variants import Variant, write_manifest

    out = tmp_path / "conv"
    out.mkdir()
    variants = []
    for kind, model in (("int8_ptq", tiny_models[0]), ("float32", tiny_models[1])):
        shutil.copy(model, out / model.name)
        shutil.copy(model.with_suffix(".json"), out / model.with_suffix(".json").name)
        variants.append(Variant.of(kind, out / model.name))
    write_manifest(out, variants, {"source_model_sha256": "0" * 64})
    return out


def test_quantization_report_refuses_a_variant_that_is_not_the_file_variants_json_records(conversion, synthetic_dataset,
                                                                                          tmp_path):
    """``--variants DIR`` scored whatever ``.tflite`` files lay there: a model swapped in by another run
    (with a sidecar to match, so it loads) was reported under the variant's name. It is now refused
    by the check ``convert.ship`` makes (one function, ``convert.variants.check_recorded``)."""
    from convert.ship import ship
    from idc_edge.errors import ModelError
    from idc_edge.spec import file_sha256, read_spec, write_spec

    args = ("--variants", conversion, "--data", synthetic_dataset, "--out", tmp_path / "rep", "--latency-rounds", 0)
    intact = bench("quantization_report", *args, "--no-charts")  # charts need the train extra
    assert "SHA-256" not in intact.stderr  # the files are the recorded ones (the synthetic data then fail on their own)
    int8 = conversion / "tiny_int8.tflite"
    shutil.copy(conversion / "tiny_float32.tflite", int8)  # another model under the variant's name, loadable
    write_spec(int8, replace(read_spec(int8), model_sha256=file_sha256(int8)))
    line = one_line(bench("quantization_report", *args[:-4], "--out", tmp_path / "rep2", "--latency-rounds", 0,
                          "--no-charts"))
    assert line == (f"error: tiny_int8.tflite in '{conversion}' is not the file variants.json records (SHA-256 differs: "
                    f"another or an unfinished run); run python -m convert --out {conversion} again")
    with pytest.raises(ModelError) as shipped:  # the same check, the same words
        ship(conversion, "int8_ptq", tmp_path / "dest")
    assert line == f"error: {shipped.value}"
    assert not (tmp_path / "rep2").exists()


def test_quantization_report_refuses_a_sidecar_of_another_file(conversion, synthetic_dataset, tmp_path):
    import json

    sidecar = conversion / "tiny_int8.json"
    spec = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps({**spec, "model_sha256": "1" * 64}))
    line = one_line(bench("quantization_report", "--variants", conversion, "--data", synthetic_dataset, "--no-charts"))
    assert "the sidecar of tiny_int8.tflite" in line and "belongs to another file" in line


def test_quantization_report_on_too_few_patches_to_time_is_one_line(conversion, synthetic_dataset, tmp_path):
    """Latency needs batches of 64 patches: a smaller validation set was a ``ValueError`` traceback."""
    p = bench("quantization_report", "--variants", conversion, "--data", synthetic_dataset, "--out", tmp_path / "rep",
              "--no-charts")
    assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr
    line = p.stderr.strip().splitlines()[-1]  # after the progress line that announced the timing
    assert [x for x in p.stderr.splitlines() if "error" in x] == [line]
    assert line.startswith("error: latency is timed on batches of 64 patches, but the validation set has ")
    assert line.endswith("; use a larger data set, or skip timing with --latency-rounds 0")
    assert bench("quantization_report", "--variants", conversion, "--data", synthetic_dataset, "--out",
                 tmp_path / "rep", "--latency-rounds", 0, "--no-charts").returncode == 0  # charts need matplotlib


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is not None,
                    reason="matplotlib is installed here: the device install (no train extra) checks this")
def test_quantization_report_without_matplotlib_asks_for_it_or_no_charts_before_any_work(conversion, synthetic_dataset,
                                                                                          tmp_path):
    """On the device install (no train extra) the charts' import was a traceback after the scoring."""
    p = bench("quantization_report", "--variants", conversion, "--data", synthetic_dataset, "--out", tmp_path / "rep")
    assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr
    assert p.stderr.strip().splitlines()[-1].startswith("error: the charts need matplotlib, which is not installed")
    assert not (tmp_path / "rep").exists()


@pytest.mark.parametrize("args, expected", [
    (("--families", "bogus"), "argument --families: invalid choice: 'bogus' (choose from 'defocus', 'defocus_disk', "
                              "'noise', 'jpeg', 'exposure', 'gamma', 'cast', 'scale', 'usb_camera')"),
    (("--families", "noise", "blur"), "invalid choice: 'blur'"),
    (("--seed", "-1"), "--seed must be 0 or more, got -1"),
    (("--seed", "x"), "--seed must be a whole number, got 'x'"),
    (("--max-patches", "1.5"), "--max-patches must be a whole number, got '1.5'"),
    (("--margin", "nan"), "--margin is points of balanced accuracy, 0 to 100, got nan"),
    (("--margin", "-1"), "--margin is points of balanced accuracy, 0 to 100, got -1"),
])
def test_camera_robustness_refuses_bad_options_in_one_line(args, expected, tmp_path):
    """``--families bogus`` (and a negative ``--seed``) was a traceback after loading the data."""
    line = one_line(bench("camera_robustness", *args, "--out", tmp_path / "rep"))
    assert line.startswith("camera_robustness: error: ") and expected in line, line


def test_camera_robustness_refuses_an_output_folder_it_cannot_make_before_any_work(tmp_path):
    """``--out`` naming a file was a ``FileExistsError`` traceback after minutes of scoring."""
    a_file = tmp_path / "report.md"
    a_file.write_text("mine")
    line = one_line(bench("camera_robustness", "--out", a_file))
    assert line == f"camera_robustness: error: --out '{a_file}' is a file, not a folder: give a folder for the report"
    line = one_line(bench("camera_robustness", "--out", "/proc/no/such"))
    assert "--out '/proc/no/such': the folder cannot be made" in line and a_file.read_text() == "mine"


def test_camera_robustness_evaluate_refuses_an_unknown_family_with_an_option_error(tiny_models):
    import numpy as np

    from benchmarks.camera_robustness import ValidationPatches, evaluate
    from idc_edge.errors import OptionError

    data = ValidationPatches(np.zeros((2, 50, 50, 3), np.uint8), np.array([0, 1]), ("p", "p"))
    with pytest.raises(OptionError, match="unknown condition families bogus; known: defocus, "):
        evaluate({"m": str(tiny_models[0])}, data, ["bogus"])


@pytest.mark.parametrize("size, expected", [
    ("99x300", "each side of a field is at least 100 px at 4 µm/px (two windows); got 99x300"),
    ("160x99", "each side of a field is at least 100 px at 4 µm/px (two windows); got 160x99"),
    ("160", "a frame size is WIDTHxHEIGHT in pixels, e.g. 1920x1080; got '160'"),
    ("0x0", "a frame size is WIDTHxHEIGHT in pixels"),
])
def test_camera_conditions_refuses_a_field_size_it_cannot_measure_in_one_line(size, expected, tmp_path):
    """``--size`` is the field in model pixels (4 µm/px); under two windows a side there is no field to tile."""
    line = one_line(bench("camera_conditions", "--size", size, "--out", tmp_path / "rep"))
    assert line.startswith("camera_conditions: error: argument --size: ") and expected in line, line
    assert not (tmp_path / "rep").exists()



def test_camera_conditions_defaults_are_taken_as_given(tmp_path):
    """The default run (no ``--size``, ``--only``) gets past its options to the data: the one-line
    parser refuses a blank value, and a blank default had been read as one."""
    (tmp_path / "data").mkdir()
    line = one_line(bench("camera_conditions", "--data", tmp_path / "data", "--out", tmp_path / "rep"))
    assert line.startswith("camera_conditions: error: no patches found under "), line

@pytest.mark.data
def test_camera_conditions_cuts_fields_of_the_size_asked_and_records_it(data_dir, tmp_path):
    """A 640×480 camera at 1 µm/px gives 160×120 px at the model's scale: the fields are that size (not
    cut down to whole 50 px cells, 150×100), the windows the tiling shifts back to the edge are
    unlabelled, and the report says which size it measured (``field_px``)."""
    import json

    import cv2
    import numpy as np

    from benchmarks.camera_conditions import slide_fields
    from idc_edge.detector import Detector

    fields = slide_fields(data_dir, ("8867", "9023"), size=(160, 120), per_patient=2, exact=True)
    assert len(fields) == 4
    with Detector(um_per_px=4.0, stride=50) as det:
        for f in fields:
            assert f.rgb.shape == (120, 160, 3) and f.labels.shape == (3, 4)
            assert (f.labels[-1] == -1).all() and (f.labels[:, -1] == -1).all() and (f.labels[:2, :3] >= 0).any()
            assert det.detect(cv2.cvtColor(f.rgb, cv2.COLOR_RGB2BGR)).tissue.shape == f.labels.shape
    whole = slide_fields(data_dir, ("8867",), size=(500, 300), per_patient=2)
    same = slide_fields(data_dir, ("8867",), size=(500, 300), per_patient=2, exact=True)
    assert all(np.array_equal(a.rgb, b.rgb) and np.array_equal(a.labels, b.labels) for a, b in zip(whole, same))

    p = bench("camera_conditions", "--size", "160x120", "--fields-per-patient", 1, "--only", "jpeg",
              "--data", data_dir, "--out", tmp_path / "rep", timeout=600)
    assert p.returncode == 0, p.stderr
    report = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert report["field_px"] == [160, 120] and report["fields"] == 9
    assert [r["family"] for r in report["rows"]] == ["clean", "jpeg", "jpeg", "jpeg"]
