"""The real LiteRT interpreter on a tiny real model, and every way a model file can be wrong."""
import json
import shutil

import numpy as np
import pytest

from idc_edge.classifier import PatchClassifier
from idc_edge.errors import ClosedError, IdcEdgeError, ModelError, OptionError, PatchError
from idc_edge.spec import ModelSpec, read_spec, sidecar_path, write_spec
from tiny_model import synthetic_patches


def test_int8_model_classifies_and_agrees_with_float(tiny_models):
    int8, f32 = tiny_models
    x, y = synthetic_patches(200, seed=11)
    with PatchClassifier(int8) as q, PatchClassifier(f32) as f:
        assert q.input_format.dtype == np.uint8 and q.output_format.quantized
        pq, pf = q.predict(x), f.predict(x)
    assert pq.dtype == np.float32 and pq.shape == (200,)
    assert np.all((pq >= 0) & (pq <= 1))
    assert ((pq >= 0.5) == y).mean() > 0.95
    assert np.abs(pq - pf).max() < 0.05


@pytest.mark.parametrize("n", [0, 1, 3, 64, 65, 200])
def test_predict_gives_the_same_scores_for_any_batch_size(tiny_int8, n):
    x, _ = synthetic_patches(200, seed=2)
    with PatchClassifier(tiny_int8, max_batch=64) as clf:
        full = clf.predict(x)
        part = clf.predict(x[:n])
    np.testing.assert_array_equal(part, full[:n])


def test_bgr_sidecar_flips_channels(tiny_int8, tmp_path):
    model = tmp_path / "bgr.tflite"
    shutil.copy(tiny_int8, model)
    spec = read_spec(tiny_int8)
    write_spec(model, ModelSpec(channel_order="BGR", threshold=spec.threshold))
    x, _ = synthetic_patches(20, seed=4)
    with PatchClassifier(tiny_int8) as rgb, PatchClassifier(model) as bgr:
        np.testing.assert_array_equal(bgr.predict(x[..., ::-1].copy()), rgb.predict(x))


def test_predict_fails_with_wrong_patch_shape(tiny_int8):
    with PatchClassifier(tiny_int8) as clf:
        with pytest.raises(PatchError, match=r"uint8 RGB \[N, 50, 50, 3\]") as e:
            clf.predict(np.zeros((2, 32, 32, 3), np.uint8))
        assert isinstance(e.value, IdcEdgeError)
        with pytest.raises(PatchError, match="float32"):
            clf.predict(np.zeros((2, 50, 50, 3), np.float32))
        with pytest.raises(PatchError, match="list"):
            clf.predict([[0]])


def _copy_model(src, dst_dir, name="m.tflite", data=None):
    dst = dst_dir / name
    if data is None:
        shutil.copy(src, dst)
    else:
        dst.write_bytes(data)
    shutil.copy(sidecar_path(src), sidecar_path(dst))
    return dst


def test_load_fails_with_missing_model(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        PatchClassifier(tmp_path / "nope.tflite")


def test_load_fails_with_empty_model(tiny_int8, tmp_path):
    with pytest.raises(ModelError, match="is empty"):
        PatchClassifier(_copy_model(tiny_int8, tmp_path, data=b""))


def test_load_fails_with_a_file_that_is_not_tflite(tiny_int8, tmp_path):
    with pytest.raises(ModelError, match="not a TFLite model"):
        PatchClassifier(_copy_model(tiny_int8, tmp_path, data=b"<html>not a model</html>" * 10))


def test_load_fails_with_a_truncated_model(tiny_int8, tmp_path):
    data = tiny_int8.read_bytes()
    with pytest.raises(ModelError):
        PatchClassifier(_copy_model(tiny_int8, tmp_path, data=data[: len(data) // 3]))


def test_load_fails_with_missing_sidecar(tiny_int8, tmp_path):
    model = tmp_path / "m.tflite"
    shutil.copy(tiny_int8, model)
    with pytest.raises(ModelError, match="sidecar .* is missing"):
        PatchClassifier(model)


@pytest.mark.parametrize("content,match", [
    ("{not json", "not valid JSON"),
    ("[]", "expected a JSON object"),
    ('{"patch_size_px": 50}', "missing key"),
    ('{"patch_size_px": 50, "um_per_px": 4, "channel_order": "RGB", "threshold": 1.5, "class_names": ["a", "b"]}',
     "threshold must be a probability"),
    ('{"patch_size_px": 50, "um_per_px": 0, "channel_order": "RGB", "threshold": 0.5, "class_names": ["a", "b"]}',
     "um_per_px"),
    ('{"patch_size_px": 50, "um_per_px": 4, "channel_order": "HSV", "threshold": 0.5, "class_names": ["a", "b"]}',
     "channel_order"),
])
def test_load_fails_with_malformed_sidecar(tiny_int8, tmp_path, content, match):
    model = tmp_path / "m.tflite"
    shutil.copy(tiny_int8, model)
    sidecar_path(model).write_text(content)
    with pytest.raises(ModelError, match=match):
        PatchClassifier(model)


def test_load_fails_when_sidecar_patch_size_does_not_fit_the_model(tiny_int8, tmp_path):
    model = tmp_path / "m.tflite"
    shutil.copy(tiny_int8, model)
    write_spec(model, ModelSpec(patch_size_px=64))
    with pytest.raises(ModelError, match=r"expected \[N, 64, 64, 3\]"):
        PatchClassifier(model)


def test_options_are_validated(tiny_int8):
    with pytest.raises(OptionError, match="threads"):
        PatchClassifier(tiny_int8, num_threads=0)
    with pytest.raises(OptionError, match="power of two"):
        PatchClassifier(tiny_int8, max_batch=48)


def test_sidecar_round_trips(tmp_path):
    spec = ModelSpec(threshold=0.37, float_model="f.tflite", provenance={"data": "x"})
    path = write_spec(tmp_path / "a.tflite", spec)
    assert json.loads(path.read_text())["format_version"] == 1
    assert read_spec(tmp_path / "a.tflite") == spec


def test_close_is_safe_twice_and_a_closed_classifier_refuses_work(tiny_int8):
    clf = PatchClassifier(tiny_int8)
    x, _ = synthetic_patches(3)
    clf.predict(x)
    clf.close()
    clf.close()
    for n in (3, 0):  # no interpreter is silently rebuilt, and even an empty batch is refused
        with pytest.raises(ClosedError, match="closed; make a new one"):
            clf.predict(x[:n])
    assert not clf._slots


def test_an_upper_case_model_hash_in_the_sidecar_is_accepted(tiny_int8, tmp_path):
    model = _copy_model(tiny_int8, tmp_path)
    side = json.loads(sidecar_path(model).read_text())
    side["model_sha256"] = side["model_sha256"].upper()
    sidecar_path(model).write_text(json.dumps(side))
    with PatchClassifier(model) as clf:
        assert clf.spec.model_sha256 == side["model_sha256"].lower()
    side["model_sha256"] = "g" * 64
    sidecar_path(model).write_text(json.dumps(side))
    with pytest.raises(ModelError, match="64 hexadecimal digits"):
        PatchClassifier(model)


def test_load_fails_with_a_damaged_model_whose_bytes_no_longer_match_the_sidecar(tiny_int8, tmp_path):
    model = tmp_path / "m.tflite"
    shutil.copy(tiny_int8, model)
    write_spec(model, read_spec(tiny_int8))
    assert read_spec(model).model_sha256
    PatchClassifier(model).close()  # intact: loads
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01  # one flipped bit in the weights
    model.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="does not match the SHA-256 in its sidecar"):
        PatchClassifier(model)
