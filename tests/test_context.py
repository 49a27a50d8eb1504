"""Field context: each window decided with its neighbours' scores.

The maths (:mod:`idc_edge.context`) is checked against a plain loop over the neighbours; the
detector, ``evaluate`` and ``classify`` against a tiny dense model trained in a fixture whose sidecar
is given a context, on real LiteRT and real PNGs.
"""
from __future__ import annotations

import csv
import json
import shutil

import cv2
import numpy as np
import pytest

from idc_edge import Detector
from idc_edge.cli import main
from idc_edge.context import REACH_SIGMAS, field_context, neighbour_kernel
from idc_edge.dataset import PatchRecord, scan_dataset
from idc_edge.errors import ModelError
from idc_edge.evaluate import Predictions, evaluate_folder, in_field_scores, predict_records
from idc_edge.metrics import binary_metrics
from idc_edge.classifier import PatchClassifier, resolve_model_path
from idc_edge.spec import ContextSpec, ModelSpec, read_spec, sidecar_path, write_spec

from test_dense import UNGATED, mixed_slide

SIGMA, WEIGHT = 50.0, 1.0


def loop_context(scores: np.ndarray, stride: int, sigma: float, weight: float) -> np.ndarray:
    """The module docstring's formula, one window and one neighbour at a time."""
    out = np.full(scores.shape, np.nan)
    reach = int(REACH_SIGMAS * sigma // stride)
    offsets = [(a, b) for a in range(-reach, reach + 1) for b in range(-reach, reach + 1)
               if (a, b) != (0, 0) and (a * a + b * b) * stride * stride <= (REACH_SIGMAS * sigma) ** 2]
    k = {o: np.exp(-(o[0] ** 2 + o[1] ** 2) * stride ** 2 / (2 * sigma ** 2)) for o in offsets}
    full = sum(k.values())
    rows, cols = scores.shape
    for i in range(rows):
        for j in range(cols):
            if np.isnan(scores[i, j]):
                continue
            num = den = 0.0
            for (a, b), kk in k.items():
                if 0 <= i + a < rows and 0 <= j + b < cols and not np.isnan(scores[i + a, j + b]):
                    num, den = num + kk * scores[i + a, j + b], den + kk
            out[i, j] = (scores[i, j] + weight * num / full) / (1 + weight * den / full) if full else scores[i, j]
    return out


# -- the maths -----------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(1, 1), (3, 4), (11, 20), (30, 17)])
@pytest.mark.parametrize("stride,sigma,weight", [(25, 50.0, 1.0), (50, 50.0, 2.0), (10, 35.0, 0.5), (5, 12.0, 1.0)])
def test_field_context_is_the_formula(shape, stride, sigma, weight):
    rng = np.random.default_rng(shape[0] * 100 + stride)
    scores = rng.random(shape).astype(np.float32)
    scores[rng.random(shape) < 0.3] = np.nan  # background and no-call windows
    got = field_context(scores, stride, sigma, weight)
    want = loop_context(scores.astype(np.float64), stride, sigma, weight)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(np.isnan(got), np.isnan(scores))
    np.testing.assert_allclose(got, want, atol=2e-6, equal_nan=True)


def test_kernel_reaches_three_sigma_and_leaves_the_window_out():
    k = neighbour_kernel(25, 50.0)
    assert k.shape == (13, 13) and k[6, 6] == 0.0          # 150 px = 6 steps of 25 px each way
    assert k[6, 7] == pytest.approx(np.exp(-25 ** 2 / (2 * 50 ** 2)))
    assert k[0, 0] == 0.0                                   # the corner is 212 px away, beyond 3σ
    assert neighbour_kernel(200, 50.0).shape == (1, 1)      # no neighbour within 3σ


def test_context_keeps_a_uniform_field_an_isolated_window_and_weight_zero():
    uniform = np.full((6, 9), 0.7, np.float32)
    np.testing.assert_allclose(field_context(uniform, 25, SIGMA, WEIGHT), 0.7, atol=1e-6)
    lone = np.full((7, 7), np.nan, np.float32)
    lone[3, 3] = 0.9                                         # glass all around: nothing to weigh
    assert field_context(lone, 25, SIGMA, WEIGHT)[3, 3] == pytest.approx(0.9)
    rng = np.random.default_rng(1)
    noisy = rng.random((5, 5)).astype(np.float32)
    np.testing.assert_array_equal(field_context(noisy, 25, SIGMA, 0.0), noisy)


def test_context_pulls_a_lone_high_score_down_and_a_dip_inside_idc_up():
    field = np.full((9, 9), 0.05, np.float32)
    field[4, 4] = 0.9
    assert field_context(field, 50, SIGMA, WEIGHT)[4, 4] < 0.5
    field = np.full((9, 9), 0.95, np.float32)
    field[4, 4] = 0.2
    assert field_context(field, 50, SIGMA, WEIGHT)[4, 4] > 0.5


def test_a_linear_field_keeps_its_scores_at_any_stride():
    # a linear ramp is its own neighbourhood mean: interior windows keep their score (no bias)
    for stride in (25, 50):
        x = np.arange(40) * stride
        ramp = np.tile((x / x.max()).astype(np.float32), (40, 1))
        inner = slice(10, 30)
        out = field_context(ramp, stride, SIGMA, WEIGHT)
        np.testing.assert_allclose(out[inner, inner], ramp[inner, inner], atol=1e-5)


def test_context_is_the_same_width_of_tissue_at_stride_25_and_50():
    """An edge between benign and IDC tissue at x = 500 model px, sampled at both strides: the windows
    at the same place get the same combined score (within the coarser grid's sampling), which they
    would not if the neighbourhood were counted in windows instead of model pixels (σ in steps
    would be twice as wide at stride 50: 0.115 instead of 0.03 at 100 px from the edge)."""
    combined = {}
    for stride in (25, 50):
        x = np.arange(0, 1000, stride)
        edge = np.tile((x >= 500).astype(np.float32), (9, 1))
        out = field_context(edge, stride, SIGMA, WEIGHT)[4]
        combined[stride] = {int(v): float(o) for v, o in zip(x, out)}
    shared = range(300, 750, 50)
    diff = max(abs(combined[25][v] - combined[50][v]) for v in shared)
    assert diff <= 0.075, diff
    assert combined[50][400] < 0.05 and combined[50][600] > 0.95


def test_context_rejects_a_non_grid():
    with pytest.raises(ValueError):
        field_context(np.zeros(5, np.float32), 25, SIGMA, WEIGHT)


# -- the sidecar ---------------------------------------------------------------------------------

BASE = {"patch_size_px": 50, "um_per_px": 4.0, "channel_order": "RGB", "threshold": 0.3, "class_names": ["no IDC", "IDC"]}


def test_sidecar_context_round_trips_and_is_absent_without_it():
    spec = ModelSpec.from_dict({**BASE, "context": {"sigma_px": 50, "weight": 1, "threshold": 0.32}})
    assert spec.context == ContextSpec(50.0, 1.0, 0.32)
    assert ModelSpec.from_dict(spec.to_dict()) == spec
    assert "context" not in ModelSpec.from_dict(BASE).to_dict()


@pytest.mark.parametrize("bad,words", [
    ({"sigma_px": 0, "weight": 1, "threshold": 0.3}, "context.sigma_px must be a number of model pixels above 0"),
    ({"sigma_px": 1e9, "weight": 1, "threshold": 0.3}, "at most 200"),   # its filter would not fit in memory
    ({"sigma_px": 50, "weight": -1, "threshold": 0.3}, "context.weight must be a number from 0 to 100"),
    ({"sigma_px": 50, "weight": 1e300, "threshold": 0.3}, "context.weight"),  # would overflow to NaN scores
    ({"sigma_px": 50, "weight": 1, "threshold": 1.5}, "context.threshold must be a probability"),
    ({"sigma_px": True, "weight": 1, "threshold": 0.3}, "context.sigma_px"),
    ({"sigma_px": 50, "weight": 1}, "context must be an object"),
    ({"sigma_px": 50, "weight": 1, "threshold": 0.3, "radius": 2}, "unknown key(s) radius"),
    ([50, 1, 0.3], "context must be an object"),
])
def test_sidecar_context_errors_name_the_key(bad, words):
    with pytest.raises(ModelError, match=None) as e:
        ModelSpec.from_dict({**BASE, "context": bad})
    assert words in str(e.value)


# -- the detector, evaluate and classify ---------------------------------------------------------

@pytest.fixture(scope="module")
def context_model(dense_int8, tmp_path_factory):
    """The tiny dense model with a field context (threshold 0.45) in its sidecar."""
    folder = tmp_path_factory.mktemp("context_model")
    model = folder / "dense_ctx.tflite"
    shutil.copy(dense_int8, model)
    spec = read_spec(dense_int8)
    write_spec(model, ModelSpec.from_dict({**spec.to_dict(), "float_model": None,
                                           "context": {"sigma_px": SIGMA, "weight": WEIGHT, "threshold": 0.45}}))
    return model


@pytest.mark.parametrize("dense", [True, False])
def test_detector_decides_windows_with_their_neighbours(context_model, dense):
    frame = mixed_slide(540, 960, seed=3)
    opts = dict(model_path=str(context_model), um_per_px=2.0, stride=25, dense=dense, **UNGATED)
    with Detector(**opts) as with_ctx, Detector(context=False, **opts) as alone:
        assert with_ctx.threshold == 0.45 and alone.threshold == read_spec(context_model).threshold
        r, a = with_ctx.detect(frame), alone.detect(frame)
    assert a.window_probabilities is None
    # the window scores are the model's own; the called scores are their field context
    np.testing.assert_array_equal(r.window_probabilities, a.probabilities)
    np.testing.assert_allclose(r.probabilities, field_context(a.probabilities, 25, SIGMA, WEIGHT), atol=1e-6,
                               equal_nan=True)
    assert np.nanmax(np.abs(r.probabilities - a.probabilities)) > 0.02  # the context changed something
    np.testing.assert_array_equal(r.idc, np.nan_to_num(r.probabilities, nan=-1) >= 0.45)
    assert r.threshold == 0.45 and r.to_dict()["threshold"] == 0.45


def test_dense_and_patch_mode_agree_with_context(context_model):
    frame = mixed_slide(540, 960, seed=4)
    opts = dict(model_path=str(context_model), um_per_px=2.0, stride=25, **UNGATED)
    with Detector(dense=True, **opts) as d, Detector(dense=False, **opts) as p:
        a, b = d.detect(frame), p.detect(frame)
    with PatchClassifier(context_model) as clf:
        step = clf.output_format.scale
    assert np.nanmax(np.abs(a.probabilities - b.probabilities)) <= step * 1.001


def test_threshold_option_overrides_the_context_threshold(context_model):
    with Detector(model_path=str(context_model), threshold=0.6, **UNGATED) as det:
        assert det.threshold == 0.6 and det.context is not None


def test_context_required_from_a_model_without_one(dense_int8):
    with pytest.raises(ModelError, match="no field context"):
        Detector(model_path=str(dense_int8), context=True)
    with Detector(model_path=str(dense_int8)) as det:
        assert det.context is None


def test_in_field_scores_place_patches_on_their_slide_grid():
    rng = np.random.default_rng(2)
    grid = rng.random((6, 8)).astype(np.float32)
    grid[rng.random(grid.shape) < 0.25] = np.nan
    records, scores = [], []
    for (r, c), s in np.ndenumerate(grid):
        if not np.isnan(s):
            records.append(PatchRecord(f"p_{r}_{c}.png", "7", int(s > 0.5), 100 + 50 * c, 250 + 50 * r))
            scores.append(s)
    # a second patient at the same positions must not lend its scores
    other = [PatchRecord(f"q_{i}.png", "8", 0, rec.x, rec.y) for i, rec in enumerate(records)]
    pred = Predictions(tuple(records + other), np.array(scores + [0.0] * len(other), np.float32), ())
    got = in_field_scores(pred, ContextSpec(SIGMA, WEIGHT, 0.5), 50)
    want = field_context(grid, 50, SIGMA, WEIGHT)[~np.isnan(grid)]
    np.testing.assert_allclose(got[:len(records)], want, atol=1e-6)
    np.testing.assert_allclose(got[len(records):], 0.0, atol=1e-6)


def write_slide_folder(root, frame_rgb: np.ndarray, patient: str = "90001") -> None:
    """Cut ``frame_rgb`` into 50×50 patches in the data set's layout (label: purple-ish = 1)."""
    for y in range(0, frame_rgb.shape[0] - 49, 50):
        for x in range(0, frame_rgb.shape[1] - 49, 50):
            patch = frame_rgb[y:y + 50, x:x + 50]
            label = int(patch[..., 1].mean() < 120)
            d = root / patient / str(label)
            d.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(d / f"{patient}_idx5_x{x}_y{y}_class{label}.png"), patch[..., ::-1])


def test_evaluate_reports_alone_and_in_the_field(context_model, tmp_path, capsys):
    frame = mixed_slide(400, 600, seed=5)[..., ::-1]
    write_slide_folder(tmp_path, frame)
    with PatchClassifier(context_model) as clf:
        ev = evaluate_folder(clf, tmp_path)
        alone_only = evaluate_folder(clf, tmp_path, context=False)
        pred = predict_records(clf, scan_dataset(tmp_path))
    assert alone_only.in_field is None
    assert ev.metrics.threshold == read_spec(context_model).threshold
    assert ev.metrics.n_patches == 96
    # the in-field block is the patches' own scores read on the slide grid, decided at the context's threshold
    want = binary_metrics(pred.labels, in_field_scores(pred, read_spec(context_model).context, 50), 0.45)
    assert ev.in_field is not None and ev.in_field.metrics == want

    assert main(["evaluate", str(tmp_path), "--model", str(context_model), "--json", "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["in_field"]["threshold"] == 0.45 and out["in_field"]["n_patches"] == 96
    assert main(["evaluate", str(tmp_path), "--model", str(context_model), "--no-context", "--json",
                 "--quiet"]) == 0
    assert "in_field" not in json.loads(capsys.readouterr().out)
    assert main(["evaluate", str(tmp_path), "--model", str(context_model), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "each patch alone, threshold" in text and "in the field" in text


def test_classify_tiles_a_large_image_at_the_context_threshold(context_model, tmp_path):
    image = tmp_path / "field.png"
    cv2.imwrite(str(image), mixed_slide(300, 500, seed=6))
    for extra, threshold in (([], 0.45), (["--no-context"], read_spec(context_model).threshold)):
        out = tmp_path / f"rows{len(extra)}.csv"
        assert main(["classify", str(image), "--model", str(context_model), "--out", str(out), "--quiet",
                     *extra]) == 0
        rows = [r for r in csv.DictReader(out.open()) if r["tissue"] == "1"]
        assert rows
        for r in rows:
            assert int(r["idc"]) == int(float(r["probability"]) >= threshold)


def test_shipped_model_has_a_context_fitted_on_validation_patients():
    spec = read_spec(resolve_model_path(None))
    assert spec.context is not None and spec.context.sigma_px == 50.0
    in_field = spec.provenance["validation_metrics_in_field"]
    assert in_field["threshold"] == spec.context.threshold
    assert in_field["roc_auc"] > spec.provenance["validation_metrics"]["roc_auc"]
    assert json.loads(sidecar_path(resolve_model_path(None)).read_text())["context"]["weight"] == 1.0


@pytest.mark.data
def test_context_lifts_the_shipped_model_on_a_whole_validation_slide(data_dir):
    """The gain the sidecar's numbers promise, as a camera gets it: patient 8867's complete slide
    (a validation patient) run whole through the detector at stride 25 with every gate on, its
    windows on the patch grid compared with the data set's labels, with and without context."""
    from idc_edge.metrics import roc_auc
    from idc_edge.sources.stage import build_mosaic

    mosaic, labels, _ = build_mosaic(scan_dataset(data_dir, ["8867"]))
    with Detector(stride=25) as det:
        r = det.detect(mosaic)
    on_grid = np.s_[::2, ::2]  # stride 25: every second window starts on the 50 px patch grid
    combined, alone = r.probabilities[on_grid], r.window_probabilities[on_grid]
    h, w = min(labels.shape[0], combined.shape[0]), min(labels.shape[1], combined.shape[1])
    y, combined, alone = labels[:h, :w], combined[:h, :w], alone[:h, :w]
    called = (y >= 0) & ~np.isnan(combined)
    assert called.sum() > 1000
    y, combined, alone = y[called], combined[called], alone[called]
    with_ctx = binary_metrics(y, combined, det.threshold)
    without = binary_metrics(y, alone, det.spec.threshold)
    assert with_ctx.balanced_accuracy >= without.balanced_accuracy + 0.01, (with_ctx, without)
    assert with_ctx.balanced_accuracy >= 0.93 and roc_auc(y, combined) >= roc_auc(y, alone) + 0.005


def test_a_results_file_says_how_its_windows_were_decided(tmp_path, capsys):
    """The session header records the context the run used (null with --no-context), and the report
    says it next to the threshold, so a results file can be read back without guessing."""
    from conftest import run_recorded

    image = tmp_path / "field.png"
    cv2.imwrite(str(image), mixed_slide(300, 500, seed=7))
    record = tmp_path / "results.jsonl"
    run_recorded(image, record, "--no-gates")
    run_recorded(image, record, "--no-gates", "--no-context")
    headers = [json.loads(line)["session"] for line in record.read_text().splitlines() if '"session"' in line]
    shipped = read_spec(resolve_model_path(None)).context
    assert headers[0]["model"]["context"] == {"sigma_px": shipped.sigma_px, "weight": shipped.weight,
                                              "threshold": shipped.threshold}
    assert headers[0]["threshold"] == shipped.threshold
    assert headers[1]["model"]["context"] is None and headers[1]["options"]["context"] is False
    assert main(["report", str(record)]) == 0
    text = capsys.readouterr().out
    assert text.count("read with its neighbours") == 1
