"""Training's guards on what goes in and what comes out: the patient split's cache, diverged runs,
validation patients, --out, and options refused in one line before any work (red-team rt3 1, 4, 5, 6, 8, 10)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import needs_tensorflow, write_patch
from idc_edge.dataset import PatchRecord, default_data_dir, split_by_patient
from idc_edge.errors import DatasetError
from idc_edge.metrics import binary_metrics, roc_auc

ROOT = Path(__file__).resolve().parents[1]
DATA = default_data_dir()
PATIENTS = ("10258", "10262", "10264")  # each has patches of both classes
ENV = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), TF_CPP_MIN_LOG_LEVEL="3")


def train(*args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "train", *args], cwd=ROOT, env=ENV, capture_output=True,
                          text=True, timeout=timeout)


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    err = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-1500:]
    return err[-1]


def _records(patients, per_patient=4):
    return [PatchRecord(f"/d/{p}/{k % 2}/{p}_idx5_x{50 * k}_y0_class{k % 2}.png", p, k % 2, 50 * k, 0)
            for p in patients for k in range(per_patient)]


@pytest.fixture
def tiny_real_data(tmp_path) -> Path:
    """Eight patches of each class from each of three real training patients, copied."""
    if not DATA.is_dir():
        pytest.skip(f"real patches not found at {DATA} (set IDC_DATA_DIR)")
    root = tmp_path / "data"
    for p in PATIENTS:
        for label in (0, 1):
            src = sorted((DATA / p / str(label)).glob("*.png"))[:8]
            (root / p / str(label)).mkdir(parents=True)
            for f in src:
                shutil.copy(f, root / p / str(label) / f.name)
    return root


QUICK = ("--epochs", "1", "--arch", "s2_16_24_48_96", "--batch-size", "16", "--no-tflite", "--no-latency",
         "--ema", "0", "--teacher", "none", "--windows-per-patch", "0", "--augment", "none")


# --- 1: a disk cache is named by its split, so another split never reads it -------------------------

def test_cache_key_changes_with_the_split_the_files_and_the_seed(tmp_path):
    from train.cache import cache_key

    recs = _records(["a", "b", "c"])
    a = split_by_patient(recs, ["a"])
    b = split_by_patient(recs, ["b"])
    assert cache_key("validation", a.val) != cache_key("validation", b.val)
    assert cache_key("training", a.train, seed=0) != cache_key("training", b.train, seed=0)
    assert cache_key("training", a.train, seed=0) != cache_key("training", a.train, seed=1)
    assert cache_key("training", a.train, seed=0) == cache_key("training", a.train, seed=0)
    f = tmp_path / "a.png"
    f.write_bytes(b"x")
    rec = [PatchRecord(str(f), "a", 0, 0, 0)]
    before = cache_key("validation", rec)
    f.write_bytes(b"xy")  # the same path with other contents is another cache
    assert cache_key("validation", rec) != before


@pytest.mark.slow
@pytest.mark.data
@needs_tensorflow
def test_a_changed_split_never_reads_the_cache_of_another(tiny_real_data, tmp_path):
    cache = tmp_path / "cache" / "c"
    cache.parent.mkdir()
    (tiny_real_data / "10262" / "0" / "10262_idx5_x9999_y9999_class0.png").write_text("not a png")
    first = train("--data", str(tiny_real_data), "--out", str(tmp_path / "run1"), "--val-patients", "10264",
                  "--cache", str(cache), *QUICK)
    assert first.returncode == 0, first.stderr[-1500:]
    assert list(cache.parent.glob("c.train-*")) and list(cache.parent.glob("c.val-*"))
    card = json.loads((tmp_path / "run1" / "model_card.json").read_text())
    assert card["skipped_unreadable"]["count"] == 1
    assert card["counts"]["train"]["patches"] == 32  # the unreadable file was not trained on: not counted
    # 10258 was trained on in run 1 (its pixels are in run 1's training cache); make every one of its
    # files unreadable: a run validating on it must read the files, find none, and say so
    for f in (tiny_real_data / "10258").rglob("*.png"):
        f.write_text("not a png")
    second = train("--data", str(tiny_real_data), "--out", str(tmp_path / "run2"), "--val-patients", "10258",
                   "--cache", str(cache), *QUICK)
    assert "none of the validation patches could be read" in one_line_error(second)
    assert not (tmp_path / "run2").exists()  # a failed run leaves no folder ...
    assert not list(tmp_path.glob(".run2.partial-*"))  # ... and no partial one


def test_cache_inside_the_repository_or_in_a_missing_folder_is_refused_at_once(tmp_path):
    from train.cache import cache_path_problem

    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "runs").mkdir()
    assert "inside the repository" in cache_path_problem(str(repo / "idc_cache"), repo)
    assert cache_path_problem(str(repo / "runs" / "c"), repo) is None  # runs/ is .gitignore'd
    assert cache_path_problem(str(tmp_path / "c"), repo) is None
    assert cache_path_problem("memory", repo) is None
    assert "does not exist" in cache_path_problem(str(tmp_path / "no" / "c"), repo)
    assert "inside the repository" in one_line_error(train("--data", str(tmp_path / "missing"), "--out", str(tmp_path / "o"),
                                                           "--cache", "idc_cache"))
    assert not list(ROOT.glob("idc_cache*"))


# --- 4: non-finite scores and options, diverged runs -------------------------------------------------

def test_roc_auc_of_non_finite_scores_is_nan_not_perfect():
    y = [0, 0, 1, 1]
    assert np.isnan(roc_auc(y, [np.nan] * 4))
    assert np.isnan(roc_auc(y, [0.1, np.nan, 0.8, 0.9]))
    assert np.isnan(roc_auc(y, [0.1, 0.2, np.inf, 0.9]))
    assert np.isnan(binary_metrics(y, [np.nan] * 4).roc_auc)
    assert roc_auc(y, [0.1, 0.2, 0.8, 0.9]) == 1.0


def test_a_diverged_epoch_is_named():
    from train.run import diverged

    assert diverged(2, 0.3, np.array([0.1, 0.9])) is None
    assert "epoch 2 (training loss not finite)" in diverged(2, float("nan"), np.array([0.1, 0.9]))
    assert "validation scores not finite" in diverged(1, 0.3, np.array([0.1, np.nan]))


@pytest.mark.parametrize("option,value", [("--learning-rate", "inf"), ("--learning-rate", "nan"),
                                          ("--learning-rate", "0"), ("--learning-rate", "5"),
                                          ("--weight-decay", "inf"), ("--weight-decay", "nan"),
                                          ("--weight-decay", "-1"), ("--seed", "-1"), ("--seed", "4294967296")])
def test_bad_numbers_are_refused_in_one_line_where_they_enter(option, value, tmp_path):
    from train.__main__ import parser
    from idc_edge.errors import UsageError

    with pytest.raises(UsageError, match=f"argument {option}"):
        parser().parse_args(["--out", str(tmp_path / "o"), option, value])


@pytest.mark.parametrize("option", ["--grain-with-cast", "--hue-with-cast", "--dim-with-grain", "--weak-haematoxylin"])
def test_the_combined_camera_draws_are_probabilities_checked_where_they_enter_and_reach_the_augmentation(option,
                                                                                                         tmp_path):
    from train.__main__ import config_from_args, parser
    from train.run import TrainConfig
    from idc_edge.errors import OptionError

    argv = ["--out", str(tmp_path / "o"), option, "0.35"]
    cfg = config_from_args(parser().parse_args(argv), argv)
    cfg.validate()
    name = option[2:].replace("-", "_")
    assert getattr(cfg.strength(), name) == 0.35  # carried to train.augment's CameraAugment
    assert all(getattr(TrainConfig(data="d", out="o").strength(), n) == 0.0 for n in
               ("grain_with_cast", "hue_with_cast", "dim_with_grain", "weak_haematoxylin"))
    for bad in (1.5, -0.1, float("nan")):
        with pytest.raises(OptionError, match=f"{option} must be a probability"):
            TrainConfig(data="d", out="o", teacher=None, **{name: bad}).validate()


# --- 6: validation patients ---------------------------------------------------------------------------

def test_an_unknown_validation_patient_is_refused_with_close_matches():
    recs = _records(["10258", "10262", "10299"])
    with pytest.raises(DatasetError, match=r"not in the data: 1029 \(did you mean 10299"):
        split_by_patient(recs, ["10258", "1029"])


def test_a_patient_id_is_never_read_as_a_file_of_that_name(tmp_path, monkeypatch):
    from train.__main__ import _patients

    monkeypatch.chdir(tmp_path)
    (tmp_path / "10258").write_text("10262")
    (tmp_path / "ids.txt").write_text("10262, 10264\n")
    assert _patients("10258") == ("10258",)
    assert _patients("@ids.txt") == ("10262", "10264")
    assert _patients("./ids.txt") == ("10262", "10264")


# --- 5 and 8: --out -------------------------------------------------------------------------------------

def test_out_holding_a_run_is_refused_untouched_before_any_work(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "model.keras").write_text("run 1")
    err = one_line_error(train("--data", str(tmp_path / "missing"), "--out", str(out)))
    assert "already holds files" in err and "--overwrite" in err
    assert (out / "model.keras").read_text() == "run 1"
    assert "is a file" in one_line_error(train("--out", str(out / "model.keras")))


def test_refused_data_leaves_no_out_folder(tmp_path):
    data = tmp_path / "data"  # one class only
    write_patch(data / "5001" / "0" / "5001_idx5_x1_y1_class0.png", np.full((50, 50, 3), 200, np.uint8))
    err = one_line_error(train("--data", str(data), "--out", str(tmp_path / "out")))
    assert "class" in err
    assert not (tmp_path / "out").exists()


def test_move_into_place_replaces_only_with_overwrite(tmp_path):
    from train.run import move_into_place

    out, new = tmp_path / "run", tmp_path / ".run.partial-1"
    out.mkdir()
    (out / "model_int8.tflite").write_text("old")
    new.mkdir()
    (new / "model.keras").write_text("new")
    move_into_place(new, out, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["model.keras"]  # nothing of the old run is left beside it
    assert not new.exists() and not list(tmp_path.glob(".run.*"))
