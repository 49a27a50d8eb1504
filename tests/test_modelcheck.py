"""Models that are wrong in every way a user can get them wrong, loaded by the real interpreter.

The dangerous ones are well-formed flatbuffers with nonsense inside (a NaN quantization scale):
LiteRT's own structural check accepts them and then crashes in C++ (SIGSEGV). Each of those is
loaded here in a real subprocess, so a crash shows as a dead child and a failed test instead of
killing pytest.
"""
import random
import struct
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest

from idc_edge.classifier import PatchClassifier
from idc_edge.errors import ModelError
from idc_edge.modelcheck import cache_dir, probe_model
from idc_edge.spec import ModelSpec, read_spec, write_spec


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """A fresh verdict cache per test, so every test really starts the probe child."""
    monkeypatch.setenv("IDC_EDGE_CACHE_DIR", str(tmp_path / "cache"))


def with_sidecar(data: bytes, src_model, path):
    """``data`` as a model with ``src_model``'s sidecar, re-hashed so the probe (not the
    checksum) is what meets the damaged bytes."""
    path.write_bytes(data)
    write_spec(path, read_spec(src_model))
    return path


def input_scale_offset(model_bytes: bytes) -> int:
    """Byte offset of the first input tensor's quantization scale (a float32) in the flatbuffer."""
    schema = pytest.importorskip("ai_edge_litert.schema_py_generated")
    graph = schema.Model.GetRootAs(bytearray(model_bytes), 0).Subgraphs(0)
    quant = graph.Tensors(graph.Inputs(0)).Quantization()
    assert quant is not None and quant.ScaleLength() >= 1
    return quant._tab.Vector(quant._tab.Offset(8))  # field 2 of QuantizationParameters (min, max, scale): scale


def with_input_scale(model_bytes: bytes, scale: float) -> bytes:
    data = bytearray(model_bytes)
    at = input_scale_offset(model_bytes)
    data[at:at + 4] = struct.pack("<f", scale)
    return bytes(data)


def load_in_subprocess(*paths, timeout=240):
    """Load and run each model with the API in one real child process; one line per model:
    ``OK``, ``ModelError <message>`` or ``OTHER <exception>``. A crash ends the child."""
    code = textwrap.dedent("""
        import sys, numpy as np
        from idc_edge.classifier import PatchClassifier
        from idc_edge.errors import ModelError
        for path in sys.argv[1:]:
            try:
                with PatchClassifier(path) as clf:
                    p = clf.predict(np.zeros((3, clf.spec.patch_size_px, clf.spec.patch_size_px, 3), np.uint8))
                print("OK", p.shape, flush=True)
            except ModelError as e:
                print("ModelError", e, flush=True)
            except Exception as e:
                print("OTHER", type(e).__name__, e, flush=True)
    """)
    return subprocess.run([sys.executable, "-c", code, *map(str, paths)], capture_output=True, text=True,
                          timeout=timeout)


# -- well-formed flatbuffers that crash LiteRT --------------------------------------------

@pytest.mark.parametrize("scale", [-1.0, float("nan"), float("inf")])
def test_load_fails_with_a_model_that_would_crash_the_interpreter(tiny_int8, tmp_path, scale):
    bad = with_sidecar(with_input_scale(tiny_int8.read_bytes(), scale), tiny_int8, tmp_path / "bad.tflite")
    p = load_in_subprocess(bad)
    assert p.returncode == 0, f"the process died ({p.returncode}): {p.stderr[-500:]}"
    assert p.stdout.startswith("ModelError") and "crashes the" in p.stdout and "SIGSEGV" in p.stdout, p.stdout


@pytest.mark.parametrize("scale", [1e30, 1.0 / 255])
def test_load_fails_with_an_input_scale_that_cannot_hold_pixel_values(tiny_int8, tmp_path, scale):
    """LiteRT runs these, but 1e30 turns every pixel into the zero point (every patch scored alike) and
    1/255 clips every pixel above 1: a quantized input takes raw pixel values 0-255."""
    assert with_input_scale(tiny_int8.read_bytes(), scale) != tiny_int8.read_bytes()
    bad = with_sidecar(with_input_scale(tiny_int8.read_bytes(), scale), tiny_int8, tmp_path / "bad.tflite")
    p = load_in_subprocess(bad)
    assert p.returncode == 0, f"the process died ({p.returncode}): {p.stderr[-500:]}"
    assert p.stdout.startswith("ModelError") and "not pixel values 0-255" in p.stdout, p.stdout


def test_the_cli_reports_a_crashing_model_in_one_line(tiny_int8, tmp_path):
    bad = with_sidecar(with_input_scale(tiny_int8.read_bytes(), float("nan")), tiny_int8, tmp_path / "bad.tflite")
    patch = tmp_path / "patch.png"
    assert cv2.imwrite(str(patch), np.full((50, 50, 3), 200, np.uint8))
    for command in (["info", "--model", bad], ["classify", patch, "--model", bad]):
        p = subprocess.run([sys.executable, "-m", "idc_edge", *map(str, command)], capture_output=True, text=True,
                           timeout=120)
        assert p.returncode == 2, (p.returncode, p.stderr)
        lines = [line for line in p.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("idc-edge: error: model file") and "corrupt" in lines[0]


def test_probe_result_is_cached_only_for_models_that_load(tiny_int8, tmp_path):
    good = tiny_int8.read_bytes()
    first = probe_model(good, "m", "ai_edge_litert.interpreter", "litert", "x", batches=(1, 64))
    again = probe_model(good, "m", "ai_edge_litert.interpreter", "litert", "x", batches=(64, 1))
    assert first.ok and not first.cached and again.ok and again.cached
    assert len(list(cache_dir().iterdir())) == 1
    bad = with_input_scale(good, -1.0)
    for _ in range(2):  # never cached: probed (and refused) every time
        with pytest.raises(ModelError, match="crashes the litert interpreter"):
            probe_model(bad, "m", "ai_edge_litert.interpreter", "litert", "x")
    assert len(list(cache_dir().iterdir())) == 1


def test_probe_works_without_a_writable_cache(tiny_int8, tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("IDC_EDGE_CACHE_DIR", str(blocker))
    assert probe_model(tiny_int8.read_bytes(), "m", "ai_edge_litert.interpreter").ok
    monkeypatch.setenv("IDC_EDGE_CACHE_DIR", "")
    assert cache_dir() is None
    assert not probe_model(tiny_int8.read_bytes(), "m", "ai_edge_litert.interpreter").cached


def test_probe_reports_an_interpreter_error_without_raising(tmp_path):
    result = probe_model(b"\x1c\x00\x00\x00TFL3" + b"\x00" * 40, "m", "ai_edge_litert.interpreter")
    assert not result.ok and result.stage == "load" and result.error
    with pytest.raises(ModelError, match="fails in the interpreter at load"):
        result.raise_for_error("model m")


# -- fuzzed files: truncated anywhere, bytes overwritten anywhere --------------------------

def test_fuzzed_models_give_a_model_error_or_work_but_never_crash(tiny_int8, tmp_path):
    data = tiny_int8.read_bytes()
    rng = random.Random(6)
    variants = [data[:n] for n in sorted(rng.sample(range(8, len(data)), 12))]
    for _ in range(16):
        b = bytearray(data)
        if rng.random() < 0.5:
            for _ in range(rng.choice([1, 4, 16])):
                b[rng.randrange(8, len(b))] = rng.randrange(256)
        else:
            at = rng.randrange(8, len(b) - 4) & ~3
            b[at:at + 4] = struct.pack("<I", rng.choice([0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, len(b) * 2,
                                                           rng.randrange(1 << 32)]))
        variants.append(bytes(b))
    variants.append(with_input_scale(data, -1.0))  # one known crasher, so the test fails without protection
    paths = [with_sidecar(v, tiny_int8, tmp_path / f"fuzz{i}.tflite") for i, v in enumerate(variants)]
    p = load_in_subprocess(*paths)
    assert p.returncode == 0, f"the process died ({p.returncode}) on {paths[len(p.stdout.splitlines())]}"
    outcomes = p.stdout.splitlines()
    assert len(outcomes) == len(paths)
    assert all(o.startswith(("OK", "ModelError")) for o in outcomes), [o for o in outcomes if "OTHER" in o]
    assert outcomes[-1].startswith("ModelError") and "crashes" in outcomes[-1]
    assert all(o.startswith("ModelError") for o in outcomes[:12])  # every truncation is refused


# -- valid TFLite models that break the contract, made with TensorFlow ----------------------

@pytest.fixture(scope="session")
def odd_models(tmp_path_factory):
    """Valid float TFLite models that are wrong for idc-edge, each with a valid sidecar."""
    tf = pytest.importorskip("tensorflow", reason="making odd models needs the [train] extra (tensorflow)")
    out = tmp_path_factory.mktemp("odd_models")

    def convert(name, signature, fn):
        concrete = tf.function(fn, input_signature=signature).get_concrete_function()
        path = out / f"{name}.tflite"
        path.write_bytes(tf.lite.TFLiteConverter.from_concrete_functions([concrete]).convert())
        write_spec(path, ModelSpec())
        return path

    def score(x):
        return tf.sigmoid(tf.reduce_mean(tf.cast(x, tf.float32), axis=[1, 2, 3]))[:, None]

    return {
        "shape": convert("shape", [tf.TensorSpec([None, 64, 64, 3], tf.float32)], score),
        "gray": convert("gray", [tf.TensorSpec([None, 50, 50, 1], tf.float32)], score),
        "dtype": convert("dtype", [tf.TensorSpec([None, 50, 50, 3], tf.int32)], score),
        "output": convert("output", [tf.TensorSpec([None, 50, 50, 3], tf.float32)],
                          lambda x: tf.tile(score(x), [1, 3])),
        "two_inputs": convert("two_inputs", [tf.TensorSpec([None, 50, 50, 3], tf.float32)] * 2,
                              lambda a, b: score(a) + score(b)),
        "good": convert("good", [tf.TensorSpec([None, 50, 50, 3], tf.float32)], score),
    }


@pytest.mark.parametrize("name,match", [
    ("shape", r"takes input of shape \[1, 64, 64, 3\], expected \[N, 50, 50, 3\]"),
    ("gray", r"takes input of shape \[1, 50, 50, 1\]"),
    ("dtype", "takes int32 input; the contract allows uint8, int8 or float32"),
    ("output", r"gives output of shape \[1, 3\], expected \[N, 1\]"),
    ("two_inputs", "has 2 inputs and 1 outputs; expected one of each"),
])
def test_load_fails_with_a_valid_tflite_model_that_breaks_the_contract(odd_models, name, match):
    with pytest.raises(ModelError, match=match):
        PatchClassifier(odd_models[name])


def test_a_float_model_made_the_same_way_loads_and_runs(odd_models):
    with PatchClassifier(odd_models["good"]) as clf:
        p = clf.predict(np.full((5, 50, 50, 3), 255, np.uint8))
    assert p.shape == (5,) and np.all((p > 0.99) & (p <= 1.0))


def test_when_the_check_cannot_run_the_model_still_loads_with_a_warning(tiny_int8, caplog):
    with caplog.at_level("WARNING", logger="idc_edge.modelcheck"):
        result = probe_model(tiny_int8.read_bytes(), "model m", "no_such_interpreter_module")
    assert result.ok and not result.cached and cache_dir() is not None and not cache_dir().exists()
    assert "loaded without the crash check" in caplog.text and "no_such_interpreter_module" in caplog.text


def test_the_child_sees_import_paths_added_at_run_time(tmp_path):
    """An app that puts its interpreter on sys.path at run time (not via PYTHONPATH) is still probed."""
    vendored = tmp_path / "vendored"
    (vendored / "my_backend").mkdir(parents=True)
    (vendored / "my_backend" / "__init__.py").write_text(
        "from ai_edge_litert.interpreter import Interpreter\n")
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(vendored)!r})
        from idc_edge.modelcheck import probe_model
        data = open({str(sys.modules['idc_edge'].__file__.replace('__init__.py', 'models/idc_int8.tflite'))!r}, 'rb').read()
        r = probe_model(data, "m", "my_backend", "custom", "1")
        print(r.ok, r.cached)
    """)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={**__import__("os").environ, "IDC_EDGE_CACHE_DIR": str(tmp_path / "c")})
    assert p.returncode == 0 and p.stdout.split() == ["True", "False"], p.stderr
    assert "without the crash check" not in p.stderr
