"""Conversion that cannot ship what it did not calibrate (red-team items 2, 3, 7, 8, 9).

Real files, a real tiny Keras model, real TFLite conversions and real command-line runs:

- a failed or interrupted rerun into an existing ``--out`` leaves it as it was (staged folder);
- ``convert.ship`` refuses a file that is not the calibrated one ``variants.json`` records;
- the validation patients are the training run's (``model_card.json``), or ``--val-patients``;
- unreadable validation patches are counted and refused above 1 %, as is a class too small;
- a ``--model`` that is not a Keras file, a folder, or of the wrong input size: one line, nothing written.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import needs_tensorflow
from test_convert import _write_layout, train_tiny

# convert is a development tool: every case here trains or converts a tiny model, which needs TensorFlow
pytestmark = needs_tensorflow

ROOT = Path(__file__).resolve().parents[1]
VAL = "1004"  # the training run's validation patient (not a literature one)
PATIENTS = {"1001": 30, "1002": 30, "1003": 30, VAL: 40}


def _run(*args: str, timeout: int = 240) -> subprocess.CompletedProcess:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def _error_line(proc: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and len(lines) == 1, proc.stderr[-2000:]
    return lines[0]


def _hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def training_run(tmp_path_factory):
    """A tiny model in a training run's folder, with the model card naming its validation patient."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    run = tmp_path_factory.mktemp("run")
    train_tiny(run / "model.keras")
    (run / "model_card.json").write_text(json.dumps({"validation_patients": [VAL], "split_method": "given"}))
    return run


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data") / "idc"
    _write_layout(root, PATIENTS)
    return root


@pytest.fixture(scope="module")
def converted(training_run, data, tmp_path_factory):
    """One real conversion (no QAT) through the command line; one unreadable training patch."""
    bad = next((data / "1001" / "0").glob("*.png"))
    saved = bad.read_bytes()
    bad.write_text("not a png")
    out = tmp_path_factory.mktemp("conv") / "out"
    try:
        proc = _run("-m", "convert", "--model", str(training_run / "model.keras"), "--data", str(data),
                    "--out", str(out), "--report", str(out / "report"), "--no-qat", "--no-charts",
                    "--representative", "40", "--latency-rounds", "0")
    finally:
        bad.write_bytes(saved)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc, bad


# ---------------------------------------------------------------- item 3: the training run's split
@pytest.mark.slow
@needs_tensorflow
def test_thresholds_are_chosen_on_the_training_run_s_validation_patients(converted):
    from idc_edge.spec import read_spec

    out, _, _ = converted
    info = json.loads((out / "variants.json").read_text())
    assert info["data"]["validation_patients"] == [VAL] and "model_card.json" in info["data"]["split"]
    assert info["data"]["val_patches"] == PATIENTS[VAL]
    spec = read_spec(out / "idc_int8_ptq.tflite")
    assert spec.provenance["validation_metrics"]["n_patches"] == PATIENTS[VAL]
    assert (out / "report" / "report.md").is_file()  # the report inside --out was staged with it


def test_a_model_without_a_recorded_split_needs_val_patients(tmp_path, data):
    model = tmp_path / "model.keras"
    model.write_bytes(b"PK\x03\x04 a zip as far as the first check goes")
    line = _error_line(_run("-m", "convert", "--model", str(model), "--data", str(data), "--out", str(tmp_path / "o")))
    assert "--val-patients" in line and "validated on" in line
    assert not (tmp_path / "o").exists()


def test_val_patients_contradicting_the_training_run_are_refused(training_run, data, tmp_path):
    line = _error_line(_run("-m", "convert", "--model", str(training_run / "model.keras"), "--data", str(data),
                            "--out", str(tmp_path / "o"), "--val-patients", "1001"))
    assert "1001" in line and VAL in line and "model_card.json" in line


# ---------------------------------------------------------------- item 7: unreadable patches
@pytest.mark.slow
@needs_tensorflow
def test_an_unreadable_training_patch_is_counted_and_named(converted):
    out, proc, bad = converted
    assert bad.name in proc.stderr and "unreadable" in proc.stderr
    info = json.loads((out / "variants.json").read_text())
    assert info["data"]["unreadable_patches"] == 1 and info["data"]["unreadable_examples"] == [str(bad)]


def test_unreadable_validation_patches_above_one_percent_are_refused(training_run, tmp_path):
    data = tmp_path / "idc"
    _write_layout(data, PATIENTS)
    for p in sorted((data / VAL).rglob("*.png"))[:2]:
        p.write_text("junk")
    line = _error_line(_run("-m", "convert", "--model", str(training_run / "model.keras"), "--data", str(data),
                            "--out", str(tmp_path / "o"), "--no-qat"))
    assert "2 of 40 validation patches cannot be read" in line
    assert not (tmp_path / "o").exists()


def test_a_validation_class_too_small_for_a_threshold_is_refused(training_run, tmp_path):
    data = tmp_path / "idc"
    _write_layout(data, {**PATIENTS, VAL: 12})  # a handful of patches of each class
    line = _error_line(_run("-m", "convert", "--model", str(training_run / "model.keras"), "--data", str(data),
                            "--out", str(tmp_path / "o"), "--no-qat"))
    assert "a threshold needs at least 10 of each" in line


# ---------------------------------------------------------------- items 8, 9: the model, checked first
@pytest.mark.parametrize("content, expected", [(b"this is not a model", "is not a Keras .keras file (zip)"),
                                               (b"", "is empty"),
                                               (b"TFL3" + bytes(60), "is not a Keras .keras file (zip)")])
def test_a_model_that_is_not_a_keras_file_is_named_before_the_data(tmp_path, content, expected):
    model = tmp_path / "model.keras"
    model.write_bytes(content)
    line = _error_line(_run("-m", "convert", "--model", str(model), "--data", str(tmp_path / "no-data"),
                            "--out", str(tmp_path / "o"), timeout=60))
    assert expected in line and "File not found" not in line  # checked before the (missing) data


def test_a_model_folder_is_called_a_folder(training_run, tmp_path):
    line = _error_line(_run("-m", "convert", "--model", str(training_run), "--out", str(tmp_path / "o"), timeout=60))
    assert "is a folder" in line and "model.keras" in line


@pytest.mark.parametrize("option", ["--out", "--report"])
def test_out_or_report_that_is_a_file_is_refused_before_any_work(training_run, data, tmp_path, option):
    target = tmp_path / "target"
    target.write_text("x")
    args = {"--out": str(tmp_path / "o"), option: str(target)}
    line = _error_line(_run("-m", "convert", "--model", str(training_run / "model.keras"), "--data", str(data),
                            *[x for kv in args.items() for x in kv], timeout=60))
    assert option in line and "is a file" in line


def test_a_zip_that_is_not_a_keras_model_is_not_called_missing(training_run, data, tmp_path):
    import zipfile

    model = tmp_path / "model.keras"
    with zipfile.ZipFile(model, "w") as z:
        z.writestr("readme.txt", "not a model")
    shutil.copy(training_run / "model_card.json", tmp_path / "model_card.json")
    line = _error_line(_run("-m", "convert", "--model", str(model), "--data", str(data), "--out", str(tmp_path / "o")))
    assert "cannot load Keras model" in line and "written by python -m train" in line and "File not found" not in line
    assert not (tmp_path / "o").exists()


@needs_tensorflow
def test_a_keras_model_of_the_wrong_input_size_is_refused_before_writing(tmp_path, data):
    import keras

    run = tmp_path / "run64"
    run.mkdir()
    inp = keras.Input(shape=(64, 64, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255)(inp))
    keras.Model(inp, keras.layers.Dense(1, activation="sigmoid")(x)).save(run / "model.keras")
    (run / "model_card.json").write_text(json.dumps({"validation_patients": [VAL]}))
    line = _error_line(_run("-m", "convert", "--model", str(run / "model.keras"), "--data", str(data),
                            "--out", str(tmp_path / "o"), "--no-qat"))
    assert "[None, 64, 64, 3]" in line and "expected [None, 50, 50, 3]" in line
    assert not (tmp_path / "o").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".o.")]


# ---------------------------------------------------------------- item 2: staged output, consistent ship
@pytest.mark.slow
@needs_tensorflow
def test_an_interrupted_rerun_leaves_the_previous_out_untouched(converted, training_run, data, tmp_path,
                                                                monkeypatch, capsys):
    from convert import pipeline
    from convert.__main__ import main

    out = tmp_path / "out"
    shutil.copytree(converted[0], out)
    before = _hashes(out)

    def interrupted(*a, **k):  # Ctrl-C after every variant was written, before thresholds
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "calibrate", interrupted)
    rc = main(["--model", str(training_run / "model.keras"), "--data", str(data), "--out", str(out),
               "--no-qat", "--representative", "40", "--latency-rounds", "0", "--input-type", "int8"])
    assert rc == 130 and "left as it was" in capsys.readouterr().err
    assert _hashes(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staged folder left behind


def _ship(src: Path, dest: Path) -> subprocess.CompletedProcess:
    return _run("-m", "convert.ship", "--from", str(src), "--dest", str(dest), timeout=60)


def _refused(out: Path, tmp_path: Path) -> str:
    """Ship ``out`` (a changed copy of a conversion): its one error line; nothing shipped."""
    line = _error_line(_ship(out, tmp_path / "models"))
    assert not (tmp_path / "models").exists()
    return line


@pytest.fixture
def copy_of(converted, tmp_path) -> Path:
    """A copy of the real conversion to spoil."""
    return Path(shutil.copytree(converted[0], tmp_path / "out"))


@pytest.mark.slow
@needs_tensorflow
def test_ship_installs_a_consistent_conversion(converted, tmp_path):
    proc = _ship(converted[0], tmp_path / "models")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "models" / "idc_int8.tflite").read_bytes() == (converted[0] / "idc_int8_ptq.tflite").read_bytes()


@pytest.mark.slow
@needs_tensorflow
def test_ship_refuses_a_file_that_is_not_the_one_variants_json_records(copy_of, tmp_path):
    from idc_edge.spec import read_spec, write_spec

    model = copy_of / "idc_int8_ptq.tflite"
    spec = read_spec(model)
    model.write_bytes((copy_of / "idc_dynamic_int8.tflite").read_bytes())  # another model under the chosen name
    write_spec(model, spec)  # with a sidecar that matches the file, as a rerun's provisional one would
    line = _refused(copy_of, tmp_path)
    assert "idc_int8_ptq.tflite" in line and "variants.json" in line


@pytest.mark.slow
@needs_tensorflow
def test_ship_refuses_an_uncalibrated_sidecar(copy_of, tmp_path):
    from dataclasses import replace

    from idc_edge.spec import read_spec, write_spec

    model = copy_of / "idc_float32.tflite"
    write_spec(model, replace(read_spec(model), threshold=0.5, provenance={}, model_sha256=None))
    line = _refused(copy_of, tmp_path)
    assert "no calibrated threshold" in line and "idc_float32.tflite" in line


@pytest.mark.slow
@needs_tensorflow
def test_ship_refuses_a_manifest_without_hashes(copy_of, tmp_path):
    manifest = json.loads((copy_of / "variants.json").read_text())
    for v in manifest["variants"]:
        del v["sha256"]
    (copy_of / "variants.json").write_text(json.dumps(manifest))
    assert "records no SHA-256" in _refused(copy_of, tmp_path)


# ---------------------------------------------------------------- item 8: camera_robustness
@pytest.mark.parametrize("n", ["0", "-5"])
def test_camera_robustness_refuses_max_patches_below_two(n, tmp_path):
    proc = _run("-m", "benchmarks.camera_robustness", "--max-patches", n, "--out", str(tmp_path), timeout=60)
    assert proc.returncode == 2 and "--max-patches" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_camera_robustness_missing_model_is_one_line(tmp_path):
    proc = _run("-m", "benchmarks.camera_robustness", "--model", str(tmp_path / "missing.tflite"),
                "--out", str(tmp_path), timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "missing.json" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_camera_robustness_guard_fails_on_an_unmeasured_loss():
    from benchmarks.camera_robustness import guard_holds

    assert guard_holds(1.0, 2.0) and not guard_holds(3.0, 2.0)
    assert not guard_holds(float("nan"), 2.0)
