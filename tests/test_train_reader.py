"""The training pipeline's reading of the data set's layout: edge patches, unreadable files, bad folders.

These tests build tiny synthetic folders in the data set's layout (no real pixels), so they run
everywhere.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import needs_tensorflow
from train.__main__ import config_from_args, main, parser


def _write_patch(root: Path, patient: str, label: int, x: int, y: int, bgr: np.ndarray) -> Path:
    d = root / patient / str(label)
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{patient}_idx5_x{x}_y{y}_class{label}.png"
    assert cv2.imwrite(str(path), bgr)
    return path


def _solid(b: int, g: int, r: int, h: int = 50, w: int = 50) -> np.ndarray:
    img = np.empty((h, w, 3), np.uint8)
    img[:] = (b, g, r)
    return img


def _make_dataset(root: Path, patients=("1001", "1002", "1003", "1004"), per_class: int = 3) -> None:
    for i, p in enumerate(patients):
        for label in (0, 1):
            for k in range(per_class):
                _write_patch(root, p, label, 50 * k, 50 * i, _solid(200 - 80 * label, 100, 180 + k))


def _read_all(records):
    from train.data import SkipLog, patch_dataset

    skips = SkipLog()
    ds = patch_dataset(records, skips, batch_size=4, training=False)
    images, labels, index = [], [], []
    for x, y, i in ds:
        images.append(x.numpy())
        labels.append(y.numpy())
        index.append(i.numpy())
    return np.concatenate(images), np.concatenate(labels), np.concatenate(index), skips


@needs_tensorflow
def test_read_pads_edge_patch_with_white_in_rgb_order(tmp_path):
    from idc_edge.dataset import scan_dataset

    # A 50×8 edge patch (8 rows of tissue at the slide's bottom edge), blue-ish in BGR.
    _write_patch(tmp_path, "2001", 0, 0, 0, _solid(210, 40, 10, h=8, w=50))
    images, labels, _, skips = _read_all(scan_dataset(tmp_path))
    assert images.shape == (1, 50, 50, 3)
    assert len(skips) == 0
    np.testing.assert_array_equal(images[0, :8], np.broadcast_to([10, 40, 210], (8, 50, 3)))  # RGB order
    np.testing.assert_array_equal(images[0, 8:], 255)  # padded with white below the slide's edge
    assert labels.tolist() == [0]


@needs_tensorflow
def test_read_skips_and_counts_unreadable_png(tmp_path):
    from idc_edge.dataset import scan_dataset

    _make_dataset(tmp_path, patients=("3001",), per_class=2)
    bad = tmp_path / "3001" / "1" / "3001_idx5_x500_y500_class1.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    records = scan_dataset(tmp_path)
    images, labels, index, skips = _read_all(records)
    assert len(records) == 5 and len(images) == 4
    assert skips.paths == {str(bad)}
    kept = {records[i].path for i in index}
    assert str(bad) not in kept and len(kept) == 4


def test_train_fails_with_empty_folder(tmp_path, capsys):
    (tmp_path / "data").mkdir()
    assert main(["--data", str(tmp_path / "data"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "no patches found" in err


def test_train_fails_with_missing_folder(tmp_path, capsys):
    assert main(["--data", str(tmp_path / "nope"), "--out", str(tmp_path / "out")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_train_fails_with_one_class_only(tmp_path, capsys):
    for p in ("4001", "4002", "4003"):
        for k in range(3):
            _write_patch(tmp_path, p, 0, 50 * k, 0, _solid(200, 100, 180))
    assert main(["--data", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "no patch of class IDC" in err


def test_train_fails_with_split_leaving_a_class_empty(tmp_path, capsys):
    _make_dataset(tmp_path, patients=("5001", "5002", "5003"))
    for k in range(3):  # a validation patient with no IDC patch
        _write_patch(tmp_path, "5009", 0, 50 * k, 0, _solid(200, 100, 180))
    assert main(["--data", str(tmp_path), "--out", str(tmp_path / "out"), "--val-patients", "5009"]) == 2
    err = capsys.readouterr().err.strip()
    assert "validation set has no patch of class IDC" in err


@pytest.mark.parametrize("argv, expected", [
    (["--epochs", "0"], "--epochs"),
    (["--batch-size", "-3"], "--batch-size"),
    (["--augment", "blur"], "unknown augmentation blur"),
    (["--arch", "resnet152"], "--arch"),
    (["--strategy", "tpu"], "--strategy"),
    (["--teacher-views", "3"], "--teacher-views"),
    (["--stain-scale", "1"], "--stain-scale must be in [0, 1)"),
    (["--stain-scale", "-0.1"], "--stain-scale must be in [0, 1)"),
    (["--stain-scale", "wide"], "--stain-scale must be a number"),
])
def test_train_fails_with_bad_option(tmp_path, capsys, argv, expected):
    assert main(["--out", str(tmp_path / "out"), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and expected in err


def test_stain_scale_reaches_the_run_config_and_its_augment_strength():
    from train.config import AugmentStrength

    argv = ["--out", "runs/x", "--stain-scale", "0.45"]
    cfg = config_from_args(parser().parse_args(argv), argv)
    cfg.validate()
    assert cfg.stain_scale == 0.45 and cfg.strength().stain_scale == 0.45
    assert cfg.strength().stain_shift == AugmentStrength().stain_shift  # only the scale changes
    default = config_from_args(parser().parse_args(["--out", "runs/x"]), ["--out", "runs/x"])
    assert default.strength() == AugmentStrength()  # the shipped recipe's jitter, ×U(0.8, 1.2)


@needs_tensorflow
def test_the_haematoxylin_jitter_scales_haematoxylin_alone_within_its_range():
    """``--haematoxylin-scale`` gives the haematoxylin its own range (a weak or heavy haematoxylin on
    its own) and leaves eosin and the residual as the stain jitter draws them: with the stain
    jitter and shift at 0, unmixing the augmented patches shows eosin unchanged and haematoxylin
    scaled by a per-patch factor within the range."""
    import tensorflow as tf

    from idc_edge.errors import OptionError
    from train.augment import _HED_FROM_RGB, _stain
    from train.config import AugmentStrength

    argv = ["--out", "runs/x", "--haematoxylin-scale", "0.5"]
    cfg = config_from_args(parser().parse_args(argv), argv)
    cfg.validate()
    assert cfg.strength().haematoxylin_scale == 0.5 and cfg.strength().stain_scale == AugmentStrength().stain_scale
    rng = np.random.default_rng(0)
    x = tf.constant(rng.integers(110, 200, (64, 4, 4, 3)).astype(np.float32))
    out = _stain(x, tf.constant([3, 4], tf.int64), AugmentStrength(stain_scale=0.0, stain_shift=0.0, haematoxylin_scale=0.5))

    def hed(img):
        return np.einsum("nhwc,cd->nhwd", -np.log((np.asarray(img, np.float64) + 1.0) / 256.0), _HED_FROM_RGB)
    before, after = hed(x), hed(np.asarray(out))
    unclipped = (np.asarray(out) > 0.5).all(axis=(1, 2, 3)) & (np.asarray(out) < 254.5).all(axis=(1, 2, 3))
    assert unclipped.sum() >= 32
    assert np.allclose(after[unclipped][..., 1:], before[unclipped][..., 1:], atol=2e-2)  # eosin, residual
    factors = np.median(after[unclipped][..., 0] / before[unclipped][..., 0], axis=(1, 2))
    assert factors.min() >= 0.5 - 1e-2 and factors.max() <= 1.5 + 1e-2 and factors.std() > 0.15
    with pytest.raises(OptionError, match="--haematoxylin-scale"):
        config_from_args(parser().parse_args(["--out", "runs/x", "--haematoxylin-scale", "1"]), []).validate()


def test_train_fails_with_unwritable_out(tmp_path, capsys):
    _make_dataset(tmp_path / "data")
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["--data", str(tmp_path / "data"), "--out", str(blocker / "out")]) == 2
    assert "--out" in capsys.readouterr().err


def test_train_fails_with_bad_ema(tmp_path, capsys):
    assert main(["--out", str(tmp_path / "out"), "--ema", "1.5"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--ema" in err
