"""Fuzzing the command line, file names and frames (hypothesis).

Whatever a careless user types, a file system names or a camera hands over:

- the CLI (in-process, ``idc_edge.cli.main(argv)``, for speed) never prints a traceback or an
  "internal error", exits 0, 2 or 3, prints errors as one short line, and never changes a file
  that is not one of the run's outputs (every input is hashed before and after);
- any byte string a file system allows as a name is read, listed, written and recorded without
  a crash; a few of these run as real subprocesses, so a signal death (SIGSEGV in OpenCV) shows;
- frames of any integer or float dtype whose values use N significant bits come out as the same
  8-bit picture.

``IDC_EDGE_FUZZ_EXAMPLES=N`` runs N examples per test instead of the CI default.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import subprocess
import sys
import warnings

import cv2
import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis", reason="fuzz tests need hypothesis (the [test] extra)")
from hypothesis import HealthCheck, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from conftest import ROOT, write_patch  # noqa: E402
from test_faults import write_numbered_video  # noqa: E402

from idc_edge import cli  # noqa: E402
from idc_edge.classifier import DEFAULT_MODEL  # noqa: E402
from idc_edge.errors import IdcEdgeError, SourceError  # noqa: E402
from idc_edge.fileio import opencv_path, read_image  # noqa: E402
from idc_edge.frames import to_bgr8  # noqa: E402
from idc_edge.record import JsonlRecorder, VideoRecorder, read_records  # noqa: E402
from idc_edge.sources import ImageFolderSource, VideoSource  # noqa: E402
from idc_edge.spec import sidecar_path  # noqa: E402

EXAMPLES = int(os.environ.get("IDC_EDGE_FUZZ_EXAMPLES", "0")) or None
FUZZ = settings(max_examples=EXAMPLES or 40, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


# -- a playground of inputs, made once --------------------------------------------------------------

@pytest.fixture(scope="module")
def playground(tmp_path_factory, synthetic_dataset_module):
    """Real inputs of every kind (and a few hostile ones); outputs go to ``out/``."""
    root = tmp_path_factory.mktemp("fuzz")
    write_numbered_video(str(root / "clip.avi"), n=3)
    write_patch(root / "patch.png", np.full((50, 50, 3), (200, 120, 190), np.uint8))
    images = root / "images"
    write_patch(images / "a.png", np.full((60, 80, 3), 200, np.uint8))
    (images / "corrupt.png").write_bytes(b"\x89PNG not really")
    os.mkfifo(root / "fifo.png")
    model = root / "m.tflite"
    shutil.copy(DEFAULT_MODEL, model)
    shutil.copy(sidecar_path(DEFAULT_MODEL), sidecar_path(model))
    (root / "notes.txt").write_text("not results\n")
    (root / "out").mkdir()
    latin1 = os.path.join(os.fsencode(str(root)), b"caf\xe9.png")
    shutil.copy(str(root / "patch.png"), latin1)
    return {"root": root, "data": synthetic_dataset_module, "video": root / "clip.avi", "patch": root / "patch.png",
            "images": images, "model": model, "latin1": os.fsdecode(latin1)}


@pytest.fixture(scope="module")
def synthetic_dataset_module(tmp_path_factory):
    from tiny_model import synthetic_patches

    root = tmp_path_factory.mktemp("idc") / "idc"
    x, y = synthetic_patches(8, seed=5)
    for i, (img, label) in enumerate(zip(x, y)):
        write_patch(root / "p1" / str(label) / f"p1_idx5_x{i * 50}_y0_class{label}.png", img)
    return root


def snapshot(root) -> dict:
    """Hash of every regular file under ``root`` except the outputs folder."""
    out = {}
    for folder, dirs, files in os.walk(os.fsencode(str(root))):
        dirs[:] = [d for d in dirs if d != b"out"]
        for f in files:
            p = os.path.join(folder, f)
            if os.path.isfile(p) and not os.path.islink(p):
                with open(p, "rb") as fh:
                    out[p] = hashlib.sha256(fh.read()).hexdigest()
    return out


def snapshot_one(path) -> str:
    try:
        with open(path, "rb") as fh:
            return hashlib.sha256(fh.read()).hexdigest()
    except OSError:
        return ""


def restore(pg, path) -> None:
    """Rebuild an input file an example's output overwrote (only the playground's own files)."""
    name = os.path.basename(path)
    if name == b"clip.avi":
        write_numbered_video(str(pg["video"]), n=3)
    elif name == b"m.tflite":
        shutil.copy(DEFAULT_MODEL, pg["model"])
    elif name == b"notes.txt":
        (pg["root"] / "notes.txt").write_text("not results\n")
    elif name.endswith(b".png") and b"images" not in path:
        write_patch(pg["patch"], np.full((50, 50, 3), (200, 120, 190), np.uint8))
        shutil.copy(str(pg["patch"]), pg["latin1"])
    elif name == b"a.png":
        write_patch(pg["images"] / "a.png", np.full((60, 80, 3), 200, np.uint8))
    elif name == b"corrupt.png":
        (pg["images"] / "corrupt.png").write_bytes(b"\x89PNG not really")


# -- strategies ----------------------------------------------------------------------------------------------

NUMBERS = st.one_of(
    st.sampled_from(["0", "-0", "1", "-1", "2", "25", "0.5", "1e308", "-1e308", "1e-320", "nan", "inf", "-inf",
                     "NaN", "0x10", "1_000", " 7 ", "", "abc", "4.0.0", "9" * 40, "9" * 5000, "1e309", "²", "٣"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-10 ** 30, 10 ** 30).map(str),
)


def inputs(pg):
    """Mostly real inputs (so commands get past their checks and run), sometimes a hostile path."""
    good = st.sampled_from([str(pg["video"]), str(pg["patch"]), str(pg["images"]), str(pg["data"]), pg["latin1"]])
    bad = st.sampled_from([
        "", " ", str(pg["model"]), str(pg["root"] / "missing.avi"), str(pg["root"]), str(pg["root"] / "fifo.png"),
        "/dev/zero", "/dev/null", str(pg["root"] / ("x" * 300 + ".png")), str(pg["root"] / "notes.txt"), "-",
    ])
    return st.one_of(good, good, bad)


def outputs(pg, suffixes):
    out = pg["root"] / "out"
    good = st.sampled_from([str(out / f"o{s}") for s in suffixes]
                           + [os.fsdecode(os.path.join(os.fsencode(str(out)), b"\xe9" + s.encode())) for s in suffixes])
    bad = st.sampled_from([
        "", str(out), str(pg["root"] / "no" / "such" / "folder" / "o.csv"), str(pg["root"] / "fifo.png"), "/dev/full",
        str(pg["root"] / "notes.txt"), str(pg["video"]), str(pg["patch"]), str(pg["model"]), str(out / "o.txt"),
        str(out / ("y" * 300 + suffixes[0])),
    ])
    return st.one_of(good, good, bad)


def numbers(*good):
    return st.one_of(st.sampled_from(list(good)), st.sampled_from(list(good)), NUMBERS)


def argv_for(pg):
    """A command line: a command, some of its options with plain or hostile values, its arguments."""
    def opt(flag, values):
        return st.one_of(st.just([]), st.just([]), st.tuples(st.just(flag), values).map(list))

    model = opt("--model", st.one_of(st.just(str(pg["model"])), inputs(pg)))
    common = st.tuples(model, opt("--threshold", numbers("0.3", "0.5", "1")),
                       opt("--threads", numbers("1", "2"))).map(lambda t: sum(t, []))
    run = st.tuples(
        st.one_of(st.tuples(st.just("--source"), inputs(pg)).map(list),
                  st.tuples(st.just("--camera"), st.sampled_from(["", "99", "/dev/nonexistent", "-1"])).map(list)),
        common, opt("--um-per-px", numbers("1", "2", "4", "8", "0.25")), opt("--stride", numbers("10", "25", "50")),
        opt("--record", outputs(pg, [".jsonl"])), opt("--save-video", outputs(pg, [".avi", ".mkv", ".mp4"])),
        opt("--camera-timeout", st.sampled_from(["0.2", "0", "-0", "nan", "1e308"])),
        opt("--patient", st.sampled_from(["p1", "p9", "", "\udce9"])),
        st.sampled_from([[], ["--no-mask"], ["--no-reuse"], ["--sequential"]]),
        opt("--size", st.sampled_from(["640x480", "0x0", "-1x5", "99999x99999", "abc", "", "1e308x2"])),
        opt("--fps", numbers("30")), opt("--profile", st.one_of(st.sampled_from(["lab", "", "../x"]), inputs(pg))),
    ).map(lambda t: ["run", *sum(t, []), "--max-frames", "2", "--quiet"])
    calibrate = st.tuples(st.sampled_from(["white", "scale"]), st.tuples(st.just("--source"), inputs(pg)).map(list),
                          opt("--spacing-um", numbers("10", "2.5")), opt("--frames", numbers("1", "8")),
                          opt("--profile", st.sampled_from(["lab", "", "x" * 300, str(pg["root"] / "out" / "p.toml")])),
                          st.sampled_from([[], ["--json"]])).map(lambda t: ["calibrate", t[0], *sum(t[1:], [])])
    classify = st.tuples(st.lists(inputs(pg), min_size=1, max_size=3), common, opt("--out", outputs(pg, [".csv"])),
                         opt("--um-per-px", numbers("1", "4")), opt("--stride", numbers("25", "50"))).map(
        lambda t: ["classify", *t[0], *t[1], *t[2], *t[3], *t[4], "--quiet"])
    evaluate = st.tuples(st.one_of(st.just(str(pg["data"])), inputs(pg)), common,
                         opt("--patients", st.sampled_from(["p1", "p9", "", "1e308"])),
                         st.sampled_from([[], ["--validation"], ["--json"]])).map(
        lambda t: ["evaluate", t[0], *t[1], *t[2], *t[3], "--quiet"])
    info = st.tuples(opt("--model", st.one_of(st.just(str(pg["model"])), inputs(pg))),
                     st.sampled_from([[], ["--json"]])).map(lambda t: ["info", *t[0], *t[1]])
    report = st.tuples(st.one_of(st.just(str(pg["root"] / "out" / "o.jsonl")), inputs(pg)),
                       opt("--html", outputs(pg, [".html"])), st.sampled_from([[], ["--json"]])).map(
        lambda t: ["report", t[0], *t[1], *t[2]])
    junk = st.lists(st.one_of(st.text(max_size=12), st.sampled_from(["--", "-", "--stride", "--strid", "run", "-h"])),
                    max_size=5)
    return st.one_of(run, run, classify, evaluate, info, report, calibrate, junk)


def call_cli(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
        try:
            code = cli.main(argv)
        except SystemExit as e:  # --help / --version
            code = e.code or 0
    return code, out.getvalue(), err.getvalue()


# -- the CLI -----------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module", autouse=True)
def _private_cache(tmp_path_factory):
    """Model-probe verdicts cached in a private folder (the fuzz pays for one probe per model), and
    profiles written to a private config folder, never the user's."""
    names = ("IDC_EDGE_CACHE_DIR", "XDG_CONFIG_HOME")  # calibrate saves profiles under the config folder
    old = {n: os.environ.get(n) for n in names}
    for n in names:
        os.environ[n] = str(tmp_path_factory.mktemp(n.lower()))
    yield
    for n, value in old.items():
        if value is None:
            os.environ.pop(n, None)
        else:
            os.environ[n] = value


@FUZZ
@given(data=st.data())
def test_any_command_line_is_a_result_or_one_error_line_and_changes_no_input(playground, data):
    argv = data.draw(argv_for(playground), label="argv")
    before = snapshot(playground["root"])
    data_before = snapshot(playground["data"])
    code, out, err = call_cli(argv)
    assert "Traceback" not in err and "internal error" not in err, (argv, err)
    assert code in (0, 2, 3), (argv, code, err)
    errors = [line for line in err.splitlines() if line.startswith("idc-edge: error:")]
    if code:
        assert len(errors) == 1 and len(errors[0]) <= 620, (argv, err)
    outputs = {os.fsencode(os.path.realpath(argv[i + 1])) for i, a in enumerate(argv[:-1])
               if a in ("--out", "--record", "--save-video", "--html")}  # what the user asked to be written

    def kept(snap):
        return {p: h for p, h in snap.items() if os.path.realpath(p) not in outputs}

    assert kept(snapshot(playground["root"])) == kept(before), argv
    assert snapshot(playground["data"]) == data_before, argv
    for path in before:  # restore what an output overwrote, for the next example
        if os.path.realpath(path) in outputs and snapshot_one(path) != before[path]:
            restore(playground, path)
    shutil.rmtree(playground["root"] / "out")
    (playground["root"] / "out").mkdir()


# -- file names -----------------------------------------------------------------------------------------------------

NAMES = st.binary(min_size=1, max_size=260).filter(lambda n: b"/" not in n and b"\0" not in n and n not in (b".", b".."))


@FUZZ
@given(name=NAMES)
@example(name=b".\x01")  # hidden: left out of the folder's images (found by this test once in CI)
def test_any_byte_file_name_is_read_listed_and_written_without_a_crash(tmp_path_factory, name):
    folder = os.fsencode(str(tmp_path_factory.mktemp("names")))
    target = os.path.join(folder, name)
    ok, png = cv2.imencode(".png", np.full((8, 8, 3), 77, np.uint8))
    try:
        with open(target + b".png", "wb") as f:
            f.write(png.tobytes())
    except OSError:  # too long for this file system: every reader must say so in words
        with pytest.raises(IdcEdgeError, match="too long"):
            read_image(os.fsdecode(target + b".png"))
        with pytest.raises(IdcEdgeError):
            JsonlRecorder(os.fsdecode(target + b".jsonl"))
        return
    path = os.fsdecode(target + b".png")
    assert read_image(path)[0, 0, 0] == 77
    if name.startswith(b"."):  # a hidden file (macOS's ._NAME, .DS_Store) is left out of a folder's images
        with pytest.raises(SourceError, match="has no images"):
            ImageFolderSource(os.fsdecode(folder))
    else:
        assert [p.name for p in ImageFolderSource(os.fsdecode(folder)).paths] == [os.path.basename(path)]
    video = os.fsdecode(target + b".avi")
    try:
        rec = VideoRecorder(video, fps=5)
    except IdcEdgeError as e:  # name + ".avi" over the limit: refused in words
        assert "too long" in str(e)
        return
    rec.write(np.zeros((16, 16, 3), np.uint8))
    rec.close()
    assert [f.image.shape for f in VideoSource(video)] == [(16, 16, 3)]
    with JsonlRecorder(os.fsdecode(target + b".jsonl")) as results:
        results.write({"index": 0})
    assert read_records(os.fsdecode(target + b".jsonl")) == [{"index": 0}]
    assert sorted(os.listdir(folder)) == sorted(name + s for s in (b".png", b".avi", b".jsonl"))


@settings(max_examples=EXAMPLES or 6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=NAMES.filter(lambda n: len(n) < 200))
def test_byte_names_through_the_real_command_never_kill_it_with_a_signal(tmp_path_factory, name):
    """A real subprocess each: OpenCV segfaulted on such names (exit -11, no message)."""
    folder = tmp_path_factory.mktemp("cmd")
    source = os.path.join(os.fsencode(str(folder)), name + b".avi")
    write_numbered_video(str(folder / "plain.avi"), n=2)
    os.rename(str(folder / "plain.avi"), source)
    out = os.path.join(os.fsencode(str(folder)), b"o_" + name + b".avi")
    p = subprocess.run([sys.executable, "-m", "idc_edge", "run", "--source", source, "--save-video", out,
                        "--record", out[:-4] + b".jsonl", "--quiet"], capture_output=True, timeout=120,
                       cwd=str(ROOT))
    assert p.returncode == 0, p.stderr[-2000:]
    with opencv_path(os.fsdecode(out)) as where:
        cap = cv2.VideoCapture(where)
        assert cap.isOpened() and cap.read()[0]
        cap.release()


# -- frames --------------------------------------------------------------------------------------------------------

@FUZZ
@given(bits=st.sampled_from([8, 10, 12, 14, 16]), dtype=st.sampled_from([np.uint16, np.int32, np.uint32, np.int64,
                                                                         np.float32, np.float64]),
       shape=st.sampled_from([(7, 9), (7, 9, 1), (7, 9, 3), (7, 9, 4)]), seed=st.integers(0, 2 ** 16))
def test_a_frame_using_n_bits_of_any_dtype_gives_the_same_8_bit_picture(bits, dtype, shape, seed):
    rng = np.random.default_rng(seed)
    eight = rng.integers(0, 256, shape, dtype=np.uint8)
    eight.flat[0] = 255  # the full range is used somewhere, as a camera's highlights do
    wide = (eight.astype(np.int64) << (bits - 8)).astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = to_bgr8(wide)
    expected = to_bgr8(eight)
    assert out.dtype == np.uint8 and out.shape == expected.shape
    assert np.abs(out.astype(int) - expected.astype(int)).max() <= (1 if np.dtype(dtype).kind == "f" else 0)


@pytest.fixture(scope="module")
def shipped_detector():
    from idc_edge.detector import Detector

    with Detector(tissue_mask=False, reuse=False) as det:
        yield det


@settings(max_examples=EXAMPLES or 15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bits=st.sampled_from([10, 12, 14, 16]), dtype=st.sampled_from([np.uint16, np.int32, np.float32]),
       h=st.integers(20, 160), w=st.integers(20, 160), seed=st.integers(0, 2 ** 16))
def test_the_detector_scores_an_n_bit_frame_as_its_8_bit_picture(shipped_detector, bits, dtype, h, w, seed):
    """End to end: a 12-bit camera's frame was read as near black (no tissue, no IDC, no warning)."""
    eight = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    eight[0, 0] = 255
    wide = (eight.astype(np.int64) << (bits - 8)).astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = shipped_detector.detect(wide).probabilities
    expected = shipped_detector.detect(eight).probabilities
    np.testing.assert_allclose(got, expected, atol=0.05 if np.dtype(dtype).kind == "f" else 0)
