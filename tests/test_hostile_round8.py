"""Red-team round 8: hostile model files (valid TFLite of the wrong kind), the training and
conversion command lines, and a video file given as a camera.

Everything is real: models are built here with TensorFlow (skipped without it) or edited from the
committed tiny model, and loaded by the real LiteRT interpreter; the command line runs in this
process (``idc_edge.cli.main``).
"""
from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, needs_tensorflow, write_patch
from hostile import cli, one_error_line
from idc_edge.classifier import PatchClassifier
from idc_edge.errors import ModelError
from idc_edge.spec import ModelSpec, read_spec, write_spec

TINY = ROOT / "tests" / "models" / "tiny_int8.tflite"
GREY = np.full((3, 50, 50, 3), 120, np.uint8)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """A fresh model-check cache per test: every model really meets the probe."""
    monkeypatch.setenv("IDC_EDGE_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def odd_models(tmp_path_factory):
    """Valid TFLite models, each with a valid sidecar, that are not what idc-edge runs."""
    tf = pytest.importorskip("tensorflow", reason="making odd models needs the [train] extra (tensorflow)")
    out = tmp_path_factory.mktemp("round8_models")

    def convert(name, signature, fn, int8=False):
        concrete = tf.function(fn, input_signature=signature).get_concrete_function()
        converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
        if int8:
            def representative():
                for k in range(4):
                    yield [np.full((1, 50, 50, 3), 60 * k, np.float32)]
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = representative
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = converter.inference_output_type = tf.int8
        path = out / f"{name}.tflite"
        path.write_bytes(converter.convert())
        write_spec(path, ModelSpec())
        return path

    def mean(x):
        return tf.reduce_mean(tf.cast(x, tf.float32), axis=[1, 2, 3])[:, None]  # 0-255: a logit, not a probability

    def score(x):
        return tf.sigmoid(mean(x) / 255.0)

    patches = [tf.TensorSpec([None, 50, 50, 3], tf.float32)]
    return {
        "logit": convert("logit", patches, mean),
        "logit_int8": convert("logit_int8", patches, mean, int8=True),
        "nan": convert("nan", patches, lambda x: score(x) * np.nan),
        "any_size": convert("any_size", [tf.TensorSpec([None, None, None, 3], tf.float32)], score),
        "any_size_conv": convert("any_size_conv", [tf.TensorSpec([None, None, None, 3], tf.float32)],
                                 lambda x: score(tf.nn.conv2d(x, tf.fill([3, 3, 3, 4], 0.1), 1, "SAME"))),
        "two_outputs": convert("two_outputs", patches, lambda x: (score(x), score(x))),
    }


# -- a model whose output is no probability: said, never passed on as a score --------------------------

@pytest.mark.parametrize("name,match", [
    ("logit", r"gave 120 as a patch's probability of IDC, not a number from 0 to 1: its last layer needs a sigmoid"),
    ("nan", r"gave nan as a patch's probability of IDC"),
])
def test_a_float_model_whose_output_is_no_probability_is_a_model_error(odd_models, name, match):
    """A float model without a final sigmoid gave 120 (and one with NaN weights NaN) as the probability."""
    with PatchClassifier(odd_models[name]) as clf, pytest.raises(ModelError, match=match):
        clf.predict(GREY)


def test_a_quantized_model_whose_output_range_is_no_probability_is_refused_at_load(odd_models):
    """An int8 logit output (0 to 128) loaded and gave 119.9 as a probability."""
    with pytest.raises(ModelError, match=r"has output of type int8 ranging 0 to \d+, not a probability"):
        PatchClassifier(odd_models["logit_int8"])


def output_scale_offset(model_bytes: bytes) -> int:
    """Byte offset of the first output tensor's quantization scale (a float32) in the flatbuffer."""
    schema = pytest.importorskip("ai_edge_litert.schema_py_generated")
    graph = schema.Model.GetRootAs(bytearray(model_bytes), 0).Subgraphs(0)
    quant = graph.Tensors(graph.Outputs(0)).Quantization()
    assert quant is not None and quant.ScaleLength() >= 1
    at = quant._tab.Vector(quant._tab.Offset(8))  # field 2 of QuantizationParameters (min, max, scale)
    assert struct.unpack("<f", model_bytes[at:at + 4])[0] == quant.Scale(0)
    return at


@pytest.mark.parametrize("scale", [1e-4, 0.05])
def test_a_quantized_output_scale_that_cannot_hold_probabilities_is_refused_in_one_line(tmp_path, capsys, scale):
    """An output scale edited to 1e-4 scored every patch under 0.03 (every frame "no IDC"); 0.05 gave up to 12.75."""
    data = bytearray(TINY.read_bytes())
    at = output_scale_offset(bytes(data))
    data[at:at + 4] = struct.pack("<f", scale)
    model = tmp_path / "odd_scale.tflite"
    model.write_bytes(bytes(data))
    write_spec(model, read_spec(TINY))
    with pytest.raises(ModelError, match=r"has output of type uint8 ranging 0 to [\d.]+, not a probability from 0 to 1"):
        PatchClassifier(model)
    code, err = cli(capsys, "info", "--model", model)
    assert code == 2 and "not a probability from 0 to 1" in one_error_line(err)


# -- a model saved for any input size ([None, None, None, 3]) ------------------------------------------

def test_a_model_saved_for_any_input_size_runs_on_the_sidecars_patch_size(odd_models):
    """LiteRT allocated its open height and width as 1 px: refused as "takes input of shape [1, 1, 1, 3]",
    although the model takes 50×50 patches as well as any other size."""
    with PatchClassifier(odd_models["any_size"]) as clf:
        scores = clf.predict(np.stack([np.full((50, 50, 3), v, np.uint8) for v in (0, 255)]))
    assert scores == pytest.approx([0.5, 1 / (1 + np.exp(-1))], abs=1e-5)  # sigmoid(mean / 255)


def test_a_model_with_two_outputs_is_refused_naming_them(odd_models, capsys):
    code, err = cli(capsys, "info", "--model", odd_models["two_outputs"])
    assert code == 2 and "has 1 inputs and 2 outputs; expected one of each" in one_error_line(err)


# -- python -m train: absurd sizes, and a stop signal while it trains -----------------------------------

TRAIN_ENV = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
                 TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
QUICK = ("--arch", "s2_16_24_48_96", "--no-latency", "--teacher", "none", "--ema", "0", "--progress", "none")


def tiny_data(root):
    """Three patients, 10 pink (no IDC) and 10 purple (IDC) 50 px patches each; returns the folder."""
    from tiny_model import synthetic_patches

    x, y = synthetic_patches(200, seed=8)
    for pid in ("7001", "7002", "7003"):
        for c in (0, 1):
            for k, patch in enumerate(x[y == c][:10]):
                write_patch(root / pid / str(c) / f"{pid}_idx5_x{50 * k}_y0_class{c}.png", patch)
    return root


@pytest.mark.parametrize("option,value,expected", [
    ("--batch-size", "3000000000", "--batch-size must be from 1 to 65536 patches, got 3000000000"),
    ("--epochs", "99999999999999", "--epochs must be from 1 to 10000, got 99999999999999"),
    ("--logical-cpus", "99999999", "--logical-cpus must be from 1 to 256, got 99999999"),
])
def test_train_refuses_absurd_sizes_in_one_line_before_any_work(tmp_path, option, value, expected):
    """--batch-size 3e9 hung TensorFlow's batching for ever without a word; --epochs 1e14 trained for ever;
    --logical-cpus 1e8 made TensorFlow build a device of each until the kernel killed it (exit 137)."""
    proc = subprocess.run([sys.executable, "-m", "train", "--data", str(tmp_path / "none"), "--out",
                           str(tmp_path / "out"), option, value], cwd=ROOT, env=TRAIN_ENV, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == f"python -m train: error: {expected}"
    assert not (tmp_path / "out").exists()


@needs_tensorflow
def test_sigterm_while_training_stops_it_as_ctrl_c_does_and_leaves_no_partial_folder(tmp_path):
    """SIGTERM (a service manager, `timeout`) ended training by the signal (exit 143) without a word and
    left the unfinished run's `.out.partial-*` folder behind."""
    data = tiny_data(tmp_path / "data")
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "train", "--data", str(data), "--out", str(out), "--epochs", "5000",
                             "--batch-size", "8", *QUICK], cwd=ROOT, env=TRAIN_ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:  # training is under way once an epoch is reported
            if line.startswith("epoch 2:"):
                break
        assert list(tmp_path.glob(".out.partial-*")), "the run's partial folder should exist while it trains"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130 and "Traceback" not in err
    assert err.strip().splitlines()[-1] == (f"python -m train: interrupted by SIGTERM; nothing of this run is kept, "
                                            f"{str(out)!r} left as it was")
    assert not out.exists() and not list(tmp_path.glob(".out.partial-*"))


# -- python -m convert on a training run's own model -----------------------------------------------------

@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A real training run (1 epoch of 60 tiny patches, about 8 s): its folder and its data folder."""
    pytest.importorskip("tensorflow", reason="training needs the [train] extra (tensorflow)")
    root = tmp_path_factory.mktemp("round8_train")
    data = tiny_data(root / "data")
    proc = subprocess.run([sys.executable, "-m", "train", "--data", str(data), "--out", str(root / "run"), "--epochs",
                           "1", "--batch-size", "8", "--val-patients", "7001", *QUICK], cwd=ROOT, env=TRAIN_ENV,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-1500:]
    return root / "run", data


def convert_command(run, data, out):
    return [sys.executable, "-m", "convert", "--model", str(run / "model.keras"), "--data", str(data), "--out", str(out),
            "--no-charts", "--latency-rounds", "0", "--qat-epochs", "1"]


def test_convert_takes_the_model_of_a_default_training_run(trained_run, tmp_path):
    """Training records haematoxylin_scale null when --haematoxylin-scale is not given (it follows
    --stain-scale); convert refused every such run: "augment_strength must hold numbers"."""
    run, data = trained_run
    assert json.loads((run / "train_config.json").read_text())["augment_strength"]["haematoxylin_scale"] is None
    proc = subprocess.run(convert_command(run, data, tmp_path / "out"), cwd=ROOT, env=TRAIN_ENV, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-1500:]
    variants = json.loads((tmp_path / "out" / "variants.json").read_text())
    assert (tmp_path / "out" / "idc_int8_qat.tflite").is_file() and "int8_qat" in json.dumps(variants)


def test_sigterm_while_converting_stops_it_as_ctrl_c_does_and_keeps_the_earlier_out(trained_run, tmp_path):
    """SIGTERM ended convert by the signal (exit 143) without a word, its partial folder left behind."""
    run, data = trained_run
    out = tmp_path / "out"
    out.mkdir()
    (out / "variants.json").write_text("earlier")
    proc = subprocess.Popen([*convert_command(run, data, out), "--qat-epochs", "1000"], cwd=ROOT, env=TRAIN_ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stderr:  # converting is under way once it reads the data
            if line.startswith("[convert") and "reading" in line:
                break
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130 and "Traceback" not in err
    assert err.strip().splitlines()[-1] == "error: interrupted by SIGTERM; the previous --out was left as it was"
    assert (out / "variants.json").read_text() == "earlier" and not list(tmp_path.glob(".out.partial-*"))


# -- a video file given as a camera ------------------------------------------------------------------------

def looping_camera(path, n=3):
    """A Motion-JPEG video of ``n`` different tissue frames under a name without a suffix, so that
    ``--camera`` opens it as a capture device (as the tests simulate cameras)."""
    import cv2

    writer = cv2.VideoWriter(str(path) + ".avi", cv2.VideoWriter_fourcc(*"MJPG"), 10, (200, 150))
    assert writer.isOpened()
    for k in range(n):
        frame = np.full((150, 200, 3), (200, 150, 220), np.uint8)
        frame[40 + 10 * k: 110, 50: 150] = (150, 60, 160)
        writer.write(frame)
    writer.release()
    (path.parent / (path.name + ".avi")).rename(path)
    return path


def test_a_video_file_given_as_a_camera_is_said_once_to_be_replayed(tmp_path, capsys):
    """It replayed for ever as a camera that keeps dropping out, never said to be a file read in a loop."""
    camera = looping_camera(tmp_path / "cam")
    code, err = cli(capsys, "run", "--camera", camera, "--model", TINY, "--max-frames", 12, "--quiet")
    said = [line for line in err.splitlines() if "is a video file, not a camera" in line]
    assert code == 0 and len(said) == 1, err
    assert said[0] == (f"idc-edge: warning: camera {str(camera)!r} is a video file, not a camera: at its end it is "
                       "opened again and replayed from its start until stopped; read it as a video source to read "
                       "it once")


@pytest.mark.parametrize("option,value,expected", [
    ("--qat-epochs", "99999999999", "--qat-epochs must be a whole number from 1 to 10000, got 99999999999"),
    ("--qat-batch", "99999999999", "QAT batch size must be from 1 to 65536 patches, got 99999999999"),
    ("--qat-lr", "inf", "--qat-lr must be a number in (0, 1], got inf"),
    ("--latency-rounds", "99999999999", "--latency-rounds must be from 0 to 10000, got 99999999999"),
])
def test_convert_refuses_absurd_numbers_in_one_line_before_converting(trained_run, tmp_path, option, value, expected):
    """A QAT batch of 1e11 hung in TensorFlow's batching and 1e11 epochs or latency rounds ran for ever, without a
    word; a learning rate of inf was taken (NaN weights)."""
    run, data = trained_run
    proc = subprocess.run([*convert_command(run, data, tmp_path / "out"), option, value], cwd=ROOT, env=TRAIN_ENV,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == f"error: {expected}"
    assert "int8_ptq" not in proc.stderr and not (tmp_path / "out").exists()  # nothing was converted


def test_the_work_of_a_patch_of_a_model_saved_for_any_input_size_is_counted_at_the_patch_size(odd_models, tiny_models):
    """Its multiply-accumulates per patch were counted on a 1×1 px input (what LiteRT allocates for an open size),
    which the detector weighs against a dense pass, and bench reports."""
    from idc_edge.bench.work import frame_macs

    with PatchClassifier(odd_models["any_size_conv"]) as clf:
        per_patch = clf.macs()
    assert per_patch == 50 * 50 * 4 * 3 * 3 * 3  # a 3×3 convolution of 3 into 4 channels at every pixel of a patch
    assert frame_macs(str(odd_models["any_size_conv"]), 100, 100, 4.0, 50).macs_per_patch == per_patch
    with PatchClassifier(tiny_models[1]) as fixed:  # a fixed-size model counts as before
        assert fixed.macs() == frame_macs(str(tiny_models[1]), 100, 100, 4.0, 50).macs_per_patch > 0


def test_convert_says_a_validation_set_too_small_to_time_before_converting(trained_run, tmp_path):
    """20 validation patches cannot fill the 64-patch batch latency is timed on: said only after every variant,
    QAT fine-tuning included, had been made (half a minute here, hours on the real data)."""
    run, data = trained_run
    command = [a for a in convert_command(run, data, tmp_path / "out") if a not in ("--latency-rounds", "0")]
    proc = subprocess.run(command, cwd=ROOT, env=TRAIN_ENV, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == ("error: latency is timed on batches of 64 patches, but the validation "
                                                    "set has 20; use a larger data set, or skip timing with "
                                                    "--latency-rounds 0")
    assert "int8_ptq" not in proc.stderr and "QAT" not in proc.stderr  # nothing was converted
