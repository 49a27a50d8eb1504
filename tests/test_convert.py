"""Conversion on a tiny model in seconds, and the pure parts of convert/ (no real data needed).

The tiny model has the real model's shape of contract: raw RGB bytes in, ``Rescaling(1/255)``
inside, one sigmoid out; it is trained for a few seconds on synthetic pink/purple patches.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

from conftest import needs_tensorflow  # noqa: E402
from tiny_model import synthetic_patches  # noqa: E402

from convert import report as report_mod  # noqa: E402
from convert.data import sample_indices  # noqa: E402
from convert.evaluate import Agreement, Latency, VariantEvaluation, agreement  # noqa: E402
from convert.ptq import representative_batches  # noqa: E402
from convert.select import check_targets, choose_int8  # noqa: E402
from idc_edge.jsonready import dumps  # noqa: E402
from idc_edge.metrics import binary_metrics  # noqa: E402

TINY_BUILDER = '''
def tiny_builder(k):
    """A tiny IDC-like CNN in keras (Keras 3) or tf_keras, with the real models' layer patterns."""
    inp = k.Input(shape=(50, 50, 3), name="rgb_bytes")
    x = k.layers.Rescaling(1.0 / 255.0, name="rescale")(inp)
    x = k.layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False, name="c1_conv")(x)
    x = k.layers.BatchNormalization(momentum=0.8, name="c1_bn")(x)
    x = k.layers.ReLU(name="c1_relu")(x)
    x = k.layers.MaxPooling2D(2, name="pool1")(x)
    x = k.layers.Conv2D(16, 3, padding="same", use_bias=False, name="c2_conv")(x)
    x = k.layers.BatchNormalization(momentum=0.8, name="c2_bn")(x)
    x = k.layers.ReLU(name="c2_relu")(x)
    x = k.layers.GlobalAveragePooling2D(name="gap")(x)
    out = k.layers.Dense(1, activation="sigmoid", name="p_idc")(x)
    return k.Model(inp, out, name="tiny")


def train_tiny(path, n=384, epochs=4):
    import keras
    from tiny_model import synthetic_patches

    keras.utils.set_random_seed(0)
    model = tiny_builder(keras)
    model.compile(keras.optimizers.Adam(0.01), "binary_crossentropy")
    x, y = synthetic_patches(n, seed=0)
    model.fit(x.astype("float32"), y, epochs=epochs, batch_size=32, verbose=0)
    model.save(path)
    return model
'''
exec(TINY_BUILDER)  # defines tiny_builder and train_tiny here too


# ---------------------------------------------------------------- pure parts, no TensorFlow
def test_sample_indices_are_seeded_distinct_sorted_and_capped():
    a = sample_indices(1000, 300, seed=3)
    np.testing.assert_array_equal(a, sample_indices(1000, 300, seed=3))
    assert len(set(a.tolist())) == 300 and np.all(np.diff(a) > 0) and a.max() < 1000
    assert not np.array_equal(a, sample_indices(1000, 300, seed=4))
    assert len(sample_indices(10, 300, seed=0)) == 10


def test_representative_batches_yield_float_patches_and_a_full_range_anchor():
    x, _ = synthetic_patches(5, seed=1)
    batches = [b[0] for b in representative_batches(x)()]
    assert len(batches) == 6 and all(b.shape == (1, 50, 50, 3) and b.dtype == np.float32 for b in batches)
    np.testing.assert_array_equal(batches[0][0], x[0].astype(np.float32))
    assert batches[-1].min() == 0 and batches[-1].max() == 255
    assert np.sum(batches[-1][0] != x[0]) <= 6  # the anchor differs from a real patch in two pixels only
    assert len(list(representative_batches(x, anchor=False)())) == 5


def test_representative_batches_fail_with_float_images():
    with pytest.raises(ValueError, match="uint8"):
        representative_batches(np.zeros((2, 50, 50, 3), np.float32))


def test_agreement_counts_decisions_at_own_and_reference_thresholds():
    ref = np.array([0.1, 0.4, 0.6, 0.9])
    p = np.array([0.1, 0.5, 0.55, 0.9])
    a = agreement(p, 0.45, ref, 0.5)
    assert a.at_reference_threshold == 0.75  # 0.5 >= 0.5 flips patch 2 at the float threshold
    assert a.at_own_thresholds == 0.75  # 0.5 >= 0.45 flips it at its own threshold too
    assert a.max_abs_diff == pytest.approx(0.1)
    assert agreement(p, 0.52, ref, 0.5).at_own_thresholds == 1.0


def _fake_eval(name, bal_shift, *, full_integer, reference="float32", size=100_000, thr=0.5):
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(80, int), np.ones(20, int)]
    p = np.clip(y * 0.6 + rng.uniform(0, 0.4, 100) + bal_shift, 0, 1)
    m = binary_metrics(y, p, thr)
    a = Agreement(0.985, 0.996, 0.02, 0.003)  # shipped thresholds may disagree more; the target uses the float's
    return VariantEvaluation(name, f"{name} method", full_integer, f"idc_{name}.tflite", size, "uint8", thr, m,
                             m.balanced_accuracy, a, reference, a, Latency(0.1, 0.05, 1, 3))


def _with_bal(e: VariantEvaluation, bal: float) -> VariantEvaluation:
    from dataclasses import replace

    return replace(e, metrics=replace(e.metrics, balanced_accuracy=bal))


def test_choose_int8_prefers_best_balanced_accuracy_then_smaller_drop_then_ptq():
    f = _with_bal(_fake_eval("float32", 0, full_integer=False, size=400_000), 0.860)
    fq = _with_bal(_fake_eval("float32_qat", 0, full_integer=False, reference="float32_qat"), 0.870)
    ptq = _with_bal(_fake_eval("int8_ptq", 0, full_integer=True), 0.858)
    qat = _with_bal(_fake_eval("int8_qat", 0, full_integer=True, reference="float32_qat"), 0.868)
    s = choose_int8([f, fq, ptq, qat])
    assert (s.chosen, s.reference) == ("int8_qat", "float32_qat") and "best validation balanced accuracy" in s.reason
    # within 0.1 point: tie, smaller drop against its own float wins (PTQ drops 0.2, QAT 0.2 + 0.05)
    qat2 = _with_bal(qat, 0.8585)
    fq2 = _with_bal(fq, 0.8610)
    s = choose_int8([f, fq2, ptq, qat2])
    assert s.chosen == "int8_ptq" and "tie" in s.reason
    # exact tie on both: PTQ, the simpler to reproduce
    assert choose_int8([f, _with_bal(fq, 0.860), ptq, _with_bal(qat, 0.858)]).chosen == "int8_ptq"
    with pytest.raises(ValueError, match="no full-integer"):
        choose_int8([f])


def test_check_targets_flags_each_target():
    f = _with_bal(_fake_eval("float32", 0, full_integer=False, size=400_000), 0.860)
    ok = _with_bal(_fake_eval("int8_ptq", 0, full_integer=True, size=100_000), 0.857)
    checks = {t.name: t for t in check_targets([f, ok], "int8_ptq")}
    assert all(t.passed for t in checks.values())
    bad = _with_bal(_fake_eval("int8_ptq", 0, full_integer=True, size=200_000), 0.850)
    checks = {t.name: t for t in check_targets([f, bad], "int8_ptq")}
    assert not checks["balanced-accuracy drop (points)"].passed
    assert checks["balanced-accuracy drop (points)"].value == pytest.approx(1.0)
    assert not checks["size ratio float32 / int8"].passed


def test_report_markdown_has_every_variant_threshold_policy_and_qat_explanation():
    f = _with_bal(_fake_eval("float32", 0, full_integer=False, size=400_000), 0.860)
    fq = _with_bal(_fake_eval("float32_qat", 0, full_integer=False, reference="float32_qat"), 0.855)
    ptq = _with_bal(_fake_eval("int8_ptq", 0, full_integer=True), 0.859)
    qat = _with_bal(_fake_eval("int8_qat", 0, full_integer=True, reference="float32_qat"), 0.852)
    evals = [f, fq, ptq, qat]
    sel = choose_int8(evals)
    rep = report_mod.build(evals, sel, {"date": "today", "machine": "test"})
    md = report_mod.render_markdown(json.loads(dumps(rep)))
    for name in ("float32", "float32_qat", "int8_ptq", "int8_qat"):
        assert f"| {name} |" in md
    assert "own sidecar threshold" in md and "## Quantization targets" in md and "**int8_ptq**" in md
    assert "QAT is less accurate than PTQ" in rep["qat_vs_ptq"]["text"]
    assert "Fine-tuning changed the float model" in rep["qat_vs_ptq"]["text"]


# ---------------------------------------------------------------- command line errors
def test_qat_fine_tunes_with_the_training_run_s_augmentation_strengths(tmp_path):
    """A run trained with a wider stain jitter (``--stain-scale``) is QAT-tuned with it, not with the
    defaults; strengths the training code does not know are refused before any TensorFlow work."""
    from convert.__main__ import _qat_augment
    from convert.qat import QatConfig
    from idc_edge.errors import OptionError
    from train.config import AugmentStrength

    model = tmp_path / "model.keras"
    (tmp_path / "train_config.json").write_text(json.dumps({
        "config": {"augment": ["flip", "stain"]}, "augment_strength": {"stain_scale": 0.45, "hue": 0.04}}))
    names, strength = _qat_augment("training", model)
    assert names == ("flip", "stain") and strength == {"stain_scale": 0.45, "hue": 0.04}
    config = QatConfig(augment=names, augment_strength=strength)
    assert config.strength() == AugmentStrength(stain_scale=0.45)
    assert config.to_dict()["augment_strength"]["stain_scale"] == 0.45
    assert _qat_augment("flip,rot90", model) == (("flip", "rot90"), {})      # a given list: default strengths
    assert QatConfig().strength() == AugmentStrength()
    with pytest.raises(OptionError, match="unknown field"):
        QatConfig(augment_strength={"stain_range": 0.45})
    with pytest.raises(OptionError, match="numbers"):
        QatConfig(augment_strength={"stain_scale": "wide"})


def test_cli_fails_with_missing_model_in_one_line(tmp_path, capsys):
    from convert.__main__ import main

    assert main(["--model", str(tmp_path / "nope.keras")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: trained model") and "\n" not in err


def test_cli_fails_with_missing_data_in_one_line(tmp_path, capsys):
    from convert.__main__ import main

    model = tmp_path / "m.keras"
    model.write_bytes(b"PK\x03\x04")  # passes the model's first check (a zip); the data's comes next
    assert main(["--model", str(model), "--data", str(tmp_path / "nodata")]) == 2
    err = capsys.readouterr().err.strip()
    assert "data folder" in err and "\n" not in err


def test_cli_fails_with_bad_option_in_one_line():
    proc = subprocess.run([sys.executable, "-m", "convert", "--input-type", "float"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "--input-type" in proc.stderr and "Traceback" not in proc.stderr


def test_ship_fails_with_missing_conversion_folder(tmp_path, capsys):
    from convert.ship import main

    assert main(["--from", str(tmp_path / "none"), "--dest", str(tmp_path / "models")]) == 2
    assert "variants.json" in capsys.readouterr().err


# ---------------------------------------------------------------- real conversions of the tiny model
@pytest.fixture(scope="module")
def tiny_keras(tmp_path_factory):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    path = tmp_path_factory.mktemp("tiny") / "model.keras"
    model = train_tiny(path)
    return model, path


@pytest.mark.slow
@needs_tensorflow
def test_ptq_uint8_model_takes_raw_bytes_and_agrees_with_float(tiny_keras, tmp_path):
    from convert import ptq, tflite
    from idc_edge.classifier import PatchClassifier
    from idc_edge.spec import ModelSpec, write_spec

    model, _ = tiny_keras
    saved = tflite.export_saved_model(model, tmp_path / "saved")
    rep, _ = synthetic_patches(64, seed=5)
    i8 = tmp_path / "i8.tflite"
    i8.write_bytes(ptq.full_integer(tflite.saved_model_converter(saved), rep, "uint8"))
    f32 = tmp_path / "f32.tflite"
    f32.write_bytes(tflite.float32(saved))
    for p in (i8, f32):
        write_spec(p, ModelSpec())
    x, y = synthetic_patches(256, seed=9)
    with PatchClassifier(i8) as c8, PatchClassifier(f32) as c32:
        assert c8.input_format.dtype == np.uint8
        assert (c8.input_format.scale, c8.input_format.zero_point) == (1.0, 0)  # raw camera bytes go in
        p8, p32 = c8.predict(x), c32.predict(x)
    keras_p = model.predict(x.astype(np.float32), verbose=0).ravel()
    assert np.abs(keras_p - p32).max() < 1e-4
    assert np.mean((p8 >= 0.5) == (p32 >= 0.5)) >= 0.98
    assert np.abs(p8 - p32).max() < 0.08
    assert np.mean((p8 >= 0.5) == y) >= 0.95
    assert i8.stat().st_size < f32.stat().st_size


def _write_layout(root: Path, patients: dict[str, int]) -> None:
    """Synthetic patches in the data set's layout (BGR PNGs, no real pixels)."""
    for k, (patient, n) in enumerate(patients.items()):
        x, y = synthetic_patches(n, seed=100 + k)
        for i in range(n):
            d = root / patient / str(int(y[i]))
            d.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(d / f"{patient}_idx5_x{50 * i}_y0_class{int(y[i])}.png"), x[i][..., ::-1])


def test_convert_context_adds_a_fitted_field_context_to_a_converted_model(tiny_int8, tmp_path, capsys):
    """``python -m convert.context`` (LiteRT only) writes the sidecar's context with the threshold of
    best balanced accuracy on the validation patients, and records the metrics ``evaluate`` then
    reports for them in the field; a missing model is one line and exit 2."""
    import shutil

    from convert.context import main
    from idc_edge.classifier import PatchClassifier
    from idc_edge.evaluate import evaluate_folder
    from idc_edge.spec import read_spec, sidecar_path

    data = tmp_path / "data"
    _write_layout(data, {"1001": 30, "8867": 40, "8914": 40})  # 8867, 8914: validation patients
    model = tmp_path / "m.tflite"
    shutil.copy(tiny_int8, model)
    shutil.copy(sidecar_path(tiny_int8), sidecar_path(model))
    assert read_spec(model).context is None
    assert main(["--model", str(model), "--data", str(data)]) == 0
    assert "in the field" in capsys.readouterr().out
    spec = read_spec(model)
    fitted = spec.provenance["validation_metrics_in_field"]
    assert spec.context is not None and fitted["threshold"] == spec.context.threshold
    with PatchClassifier(model) as clf:
        in_field = evaluate_folder(clf, data, patients=["8867", "8914"]).in_field.metrics
    assert in_field.n_patches == fitted["n_patches"] == 80
    assert in_field.balanced_accuracy == pytest.approx(fitted["balanced_accuracy"])
    assert main(["--model", str(tmp_path / "missing.tflite"), "--data", str(data)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "missing.tflite" in err[0]


@pytest.mark.slow
@needs_tensorflow
def test_cli_without_qat_converts_reports_and_ships_on_a_tiny_model(tiny_keras, tmp_path, capsys):
    from convert.__main__ import main
    from convert.ship import ship
    from convert.variants import read_manifest
    from idc_edge.classifier import PatchClassifier
    from idc_edge.spec import read_spec

    _, model_path = tiny_keras
    data = tmp_path / "data"
    _write_layout(data, {"1001": 40, "1002": 40, "1003": 40, "8867": 40, "8914": 40})  # 8867, 8914: validation
    out, rep = tmp_path / "out", tmp_path / "report"
    t = time.perf_counter()
    rc = main(["--model", str(model_path), "--data", str(data), "--out", str(out), "--report", str(rep),
               "--no-qat", "--representative", "50", "--latency-rounds", "2", "--val-patients", "8867,8914"])
    assert rc == 0, capsys.readouterr().err[-2000:]
    assert time.perf_counter() - t < 90
    variants, info = read_manifest(out)
    assert [v.name for v in variants] == ["float32", "float16", "dynamic_int8", "int8_ptq"]
    assert info["selection"]["chosen"] == "int8_ptq" and info["data"]["val_patients"] == 2
    for v in variants:
        spec = read_spec(v.path)
        assert spec.provenance["validation_metrics"]["n_patches"] == 80
        assert (spec.float_model is None) == (v.name == "float32")
        # the field context's threshold is chosen like the patch threshold, on the validation patients
        assert spec.context is not None and spec.context.sigma_px == 50.0
        assert spec.provenance["validation_metrics_in_field"]["threshold"] == spec.context.threshold
    for name in ("report.md", "report.json", "roc.png", "confusion.png", "tradeoff.png"):
        assert (rep / name).is_file(), name
    r = json.loads((rep / "report.json").read_text())
    assert {v["name"] for v in r["variants"]} == {"float32", "float16", "dynamic_int8", "int8_ptq"}
    assert all(v["latency"]["batch64_ms"] > 0 for v in r["variants"])

    dest = tmp_path / "models"
    a, b = ship(out, dest=dest)
    assert (a.name, b.name) == ("idc_int8.tflite", "idc_float32.tflite")
    spec = read_spec(a)
    assert spec.float_model == "idc_float32.tflite" and spec.provenance["variant"] == "int8_ptq"
    assert spec.provenance["validation_metrics_float"]["n_patches"] == 80
    with PatchClassifier(a) as c:
        assert c.input_format.dtype == np.uint8


QAT_SCRIPT = TINY_BUILDER + '''
import sys, time
import numpy as np
from tiny_model import synthetic_patches
from convert import qat, kerasenv, tflite
from idc_edge.classifier import PatchClassifier
from idc_edge.spec import ModelSpec, write_spec
from pathlib import Path

out = Path(sys.argv[1])
t0 = time.perf_counter()
model = train_tiny(out / "tiny.keras", n=256, epochs=3)
twin = qat.keras2_twin(model, tiny_builder)
x, y = synthetic_patches(256, seed=2)
np.testing.assert_allclose(twin(x.astype("float32"), training=False).numpy(),
                           np.asarray(model(x.astype("float32"), training=False)), atol=1e-5)
qm = qat.quantize_twin(twin)
qat.fine_tune(qm, x, y, qat.QatConfig(epochs=1, batch_size=64, learning_rate=1e-4))
h5 = qat.save_h5(qm, out / "qat.h5")
back = qat.load_h5(h5)
i8 = out / "qat_int8.tflite"
i8.write_bytes(qat.convert(back, x[:32]))
fm = tiny_builder(kerasenv.keras3())
fm.set_weights(qat.float_weights(qm, twin))
f32 = out / "qat_float32.tflite"
f32.write_bytes(tflite.float32(tflite.export_saved_model(fm, out / "saved")))
for p in (i8, f32):
    write_spec(p, ModelSpec())
xt, yt = synthetic_patches(256, seed=11)
with PatchClassifier(i8) as c8, PatchClassifier(f32) as c32:
    assert c8.input_format.dtype == np.uint8, c8.input_format
    p8, p32 = c8.predict(xt), c32.predict(xt)
agree = float(np.mean((p8 >= 0.5) == (p32 >= 0.5)))
acc = float(np.mean((p8 >= 0.5) == yt))
print(f"RESULT agree={agree:.4f} acc={acc:.4f} maxdiff={np.abs(p8 - p32).max():.4f} "
      f"scale={c8.input_format.scale} seconds={time.perf_counter() - t0:.1f}")
'''


@pytest.mark.slow
@needs_tensorflow
def test_qat_on_a_tiny_model_round_trips_h5_and_converts_to_uint8(tmp_path):
    # A subprocess: importing tfmot sets TF_USE_LEGACY_KERAS=1 for its whole process.
    script = tmp_path / "qat_tiny.py"
    script.write_text(QAT_SCRIPT)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, str(script), str(tmp_path)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT"))
    vals = dict(kv.split("=") for kv in line.split()[1:])
    assert float(vals["agree"]) >= 0.97, line
    assert float(vals["acc"]) >= 0.95, line


@pytest.mark.slow
@needs_tensorflow
def test_dense_model_int8_runs_once_over_a_frame_and_equals_its_patch_mode_on_every_window(tmp_path):
    # The shared dense contract at the int8 level: the same .tflite, its input resized to a whole
    # frame, gives [1, (H-50)//S + 1, (W-50)//S + 1, 1] whose entries are the patch-mode scores.
    import keras
    from convert import ptq, tflite
    from idc_edge.backend import make_interpreter
    from train import architectures

    keras.utils.set_random_seed(0)
    model = architectures.build("dense25", keras)
    for layer in model.layers:  # batch-norm statistics must settle within a few steps
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.5
    model.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy")
    x, y = synthetic_patches(256, seed=3)
    model.fit(x.astype(np.float32), y.reshape(-1, 1, 1, 1).astype(np.float32), epochs=3, batch_size=32, verbose=0)
    saved = tflite.export_saved_model(model, tmp_path / "saved")
    path = tmp_path / "dense_int8.tflite"
    path.write_bytes(ptq.full_integer(tflite.saved_model_converter(saved), x[:64], "uint8"))

    stride, h, w = 25, 50 + 3 * 25 + 11, 50 + 5 * 25 + 4
    # pink and purple 20×20 tiles, so windows hold every mix of the two classes
    tiles, _ = synthetic_patches((h // 20 + 1) * (w // 20 + 1), seed=4)
    frame = tiles[:, :20, :20].reshape(h // 20 + 1, w // 20 + 1, 20, 20, 3).transpose(0, 2, 1, 3, 4)
    frame = np.ascontiguousarray(frame.reshape((h // 20 + 1) * 20, (w // 20 + 1) * 20, 3)[:h, :w])

    def run(batch):
        interp = make_interpreter(path, batch_size=batch.shape[0], input_hw=batch.shape[1:3])
        i = interp.get_input_details()[0]["index"]
        interp.set_tensor(i, batch)
        interp.invoke()
        return interp.get_tensor(interp.get_output_details()[0]["index"])

    dense = run(frame[None])
    rows, cols = (h - 50) // stride + 1, (w - 50) // stride + 1
    assert dense.shape == (1, rows, cols, 1)
    windows = np.stack([frame[i * stride:i * stride + 50, j * stride:j * stride + 50]
                        for i in range(rows) for j in range(cols)])
    patch = run(windows)
    assert patch.shape == (rows * cols, 1, 1, 1)
    assert np.abs(dense.reshape(-1).astype(int) - patch.reshape(-1).astype(int)).max() <= 1
    assert np.ptp(patch) > 2  # not a constant model
