"""A model sidecar that contradicts itself or the model is refused in one line, never read silently
(real model files copied beside their sidecar, the command as a subprocess)."""
import json
import shutil
import subprocess
import sys
import warnings

import pytest

from idc_edge.bench import models_to_time
from idc_edge.classifier import resolve_model_path
from idc_edge.errors import ModelError
from idc_edge.spec import ModelSpec, read_spec, sidecar_path, write_spec

SHIPPED = resolve_model_path(None)


def idc_edge(*args):
    return subprocess.run([sys.executable, "-m", "idc_edge", *map(str, args)], capture_output=True, text=True,
                          timeout=180)


def _copy_with_sidecar(tmp_path, text: str):
    model = tmp_path / SHIPPED.name
    shutil.copyfile(SHIPPED, model)
    sidecar_path(model).write_text(text)
    return model


def _base() -> dict:
    return json.loads(sidecar_path(SHIPPED).read_text())


def _refused(tmp_path, text: str, *words: str):
    p = idc_edge("info", "--model", _copy_with_sidecar(tmp_path, text))
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and p.stderr.startswith("idc-edge: error: model sidecar")
    assert all(w in p.stderr for w in words), p.stderr


def test_reversed_class_names_are_refused(tmp_path):
    _refused(tmp_path, json.dumps({**_base(), "class_names": ["IDC", "no IDC"]}), "class_names", "IDC second")


@pytest.mark.parametrize("names,ok", [(["no IDC", "IDC"], True), (["non-IDC", "IDC positive"], True),
                                      (["0_benign", "class1_idc"], True), (["IDC", "no IDC"], False),
                                      (["IDC negative", "IDC-"], True), (["benign", "malignant"], False),
                                      (["IDC", "IDC"], False), (["a", "b"], False)])
def test_class_names_must_name_idc_second_and_only_second(names, ok):
    data = {**_base(), "class_names": names}
    if ok:
        assert ModelSpec.from_dict(data).class_names == tuple(names)
    else:
        with pytest.raises(ModelError, match="class_names must name the negative class first and IDC second"):
            ModelSpec.from_dict(data)


def test_a_key_given_twice_is_refused_at_any_depth(tmp_path):
    text = json.dumps(_base())
    _refused(tmp_path, text[:-1] + ', "threshold": 0.99}', "key 'threshold' is given twice")
    nested = json.dumps({**_base(), "provenance": {"a": 1}}).replace('"a": 1', '"a": 1, "a": 2')
    _refused(tmp_path, nested, "key 'a' is given twice")


def test_an_unknown_key_is_refused_with_a_did_you_mean(tmp_path):
    _refused(tmp_path, json.dumps({**_base(), "thresold": 0.5}), "unknown key 'thresold' (did you mean threshold?)")
    _refused(tmp_path, json.dumps({**_base(), "zzz": 1}), "unknown key 'zzz'; a sidecar holds only format_version")


def test_every_sidecar_the_project_writes_or_ships_still_loads(tmp_path):
    from pathlib import Path

    shipped = sorted(SHIPPED.parent.glob("*.json")) + sorted((Path(__file__).parent / "models").glob("*.json"))
    assert len(shipped) >= 4
    for sidecar in shipped:
        read_spec(sidecar.with_suffix(".tflite"))
    # the writer train/ and convert/ use, with every optional part filled
    spec = read_spec(SHIPPED)
    model = tmp_path / "written.tflite"
    shutil.copyfile(SHIPPED, model)
    assert read_spec(sidecar_path(write_spec(model, spec))) == spec


def test_a_missing_float_model_is_said_when_bench_would_compare(tmp_path):
    model = _copy_with_sidecar(tmp_path, json.dumps({**_base(), "float_model": "nope.tflite"}))
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        assert list(models_to_time(str(model))) == ["int8"]
    (message,) = [str(w.message) for w in said]
    assert "float_model 'nope.tflite' is not a file" in message and "float32 comparison is left out" in message


def test_a_float_model_that_is_no_model_is_an_error_naming_the_sidecar_field(tmp_path):
    not_a_model = tmp_path / "notes.txt"
    not_a_model.write_text("not a model")
    model = _copy_with_sidecar(tmp_path, json.dumps({**_base(), "float_model": "notes.txt"}))
    p = idc_edge("bench", "--quick", "--model", model)
    assert p.returncode == 2 and p.stderr.count("\n") == 1
    assert ".json', float_model: model file" in p.stderr and "notes.txt' is not a TFLite model" in p.stderr
