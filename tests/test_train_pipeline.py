"""Architectures, augmentations and a real (short) training run."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import needs_tensorflow
from idc_edge.dataset import default_data_dir

pytestmark = needs_tensorflow

ROOT = Path(__file__).resolve().parents[1]
DATA = default_data_dir()
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"real patches not found at {DATA} (set IDC_DATA_DIR)")


def test_every_architecture_builds_in_keras3_and_tf_keras_with_same_weights():
    import keras
    import tf_keras

    from train import architectures

    x = np.random.default_rng(0).integers(0, 256, (2, 50, 50, 3)).astype(np.float32)
    for name in architectures.names():
        k3 = architectures.build(name, keras)
        k2 = architectures.build(name, tf_keras)
        assert [l.name for l in k3.layers] == [l.name for l in k2.layers]
        k2.set_weights(k3.get_weights())
        p3 = np.asarray(k3(x, training=False))
        np.testing.assert_allclose(p3, k2(x, training=False).numpy(), atol=1e-5)
        # patch-only models give [N, 1]; fully convolutional ones [N, 1, 1, 1] for a 50×50 patch
        assert p3.reshape(2, -1).shape == (2, 1) and np.all((p3 >= 0) & (p3 <= 1))


def test_build_fails_with_unknown_architecture():
    import keras

    from train import architectures

    with pytest.raises(ValueError, match="unknown architecture 'vgg'"):
        architectures.build("vgg", keras)


def test_augment_is_seeded_in_range_and_geometry_keeps_pixels():
    import tensorflow as tf

    from train.augment import AUGMENTATIONS, augment_batch

    x = tf.constant(np.random.default_rng(1).integers(0, 256, (8, 50, 50, 3)), tf.float32)
    seed = tf.constant([4, 2], tf.int64)
    a = augment_batch(x, seed, AUGMENTATIONS).numpy()
    np.testing.assert_array_equal(a, augment_batch(x, seed, AUGMENTATIONS).numpy())
    assert a.min() >= 0 and a.max() <= 255 and a.shape == x.shape
    g = augment_batch(x, seed, ("flip", "rot90")).numpy()
    for i in range(8):  # flips and rotations move pixels, never change them
        np.testing.assert_array_equal(np.sort(g[i].reshape(-1, 3), 0), np.sort(x[i].numpy().reshape(-1, 3), 0))


def test_the_combined_camera_draws_reach_the_camera_augmentation_of_a_batch():
    import tensorflow as tf

    from train.augment import augment_batch
    from train.config import AugmentStrength

    x = tf.constant(np.random.default_rng(1).integers(0, 256, (8, 50, 50, 3)), tf.float32)
    seed = tf.constant([4, 2], tf.int64)
    shipped = AugmentStrength(grain_with_cast=0.35)
    a = augment_batch(x, seed, ("cast",), shipped).numpy()
    np.testing.assert_array_equal(a, augment_batch(x, seed, ("cast",), AugmentStrength(
        grain_with_cast=0.35, hue_with_cast=0.0, dim_with_grain=0.0, weak_haematoxylin=0.0)).numpy())
    for name in ("hue_with_cast", "dim_with_grain", "weak_haematoxylin"):
        on = AugmentStrength(grain_with_cast=1.0, **{name: 1.0})
        off = AugmentStrength(grain_with_cast=1.0)
        assert not np.array_equal(augment_batch(x, seed, ("cast",), on).numpy(),
                                  augment_batch(x, seed, ("cast",), off).numpy()), name


@pytest.mark.slow
@pytest.mark.data
@needs_data
def test_one_epoch_on_a_few_hundred_real_patches_gives_loadable_model_and_sidecar(tmp_path):
    out = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "train", "--data", str(DATA.resolve()), "--out", str(out), "--epochs", "1",
         "--max-patches", "300", "--no-latency", "--seed", "1", "--stain-scale", "0.3"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    elapsed = time.perf_counter() - t
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert elapsed < 60, f"a 1-epoch run on 300 patches took {elapsed:.0f} s"

    for name in ("model.keras", "train_config.json", "history.csv", "learning_curves.png", "val_roc.png",
                 "model_card.md", "model_card.json", "model_int8.tflite", "model_int8.json"):
        assert (out / name).is_file(), name

    import keras

    from idc_edge.spec import read_spec
    from idc_edge.classifier import PatchClassifier

    model = keras.models.load_model(out / "model.keras")
    x = np.full((2, 50, 50, 3), 200, np.float32)
    p = np.asarray(model(x, training=False))
    assert p.reshape(2, -1).shape == (2, 1) and np.all((p >= 0) & (p <= 1))

    spec = read_spec(out / "model_int8.tflite")
    assert spec.channel_order == "RGB" and spec.patch_size_px == 50 and 0 < spec.threshold < 1
    prov = spec.provenance
    train_config = json.loads((out / "train_config.json").read_text())
    assert prov["architecture"] == train_config["architecture"]
    assert train_config["config"]["stain_scale"] == train_config["augment_strength"]["stain_scale"] == 0.3
    assert prov["counts"]["train"]["patches"] == 300
    with PatchClassifier(out / "model_int8.tflite") as clf:  # loads with its sidecar through the runtime
        assert clf.predict(x.astype(np.uint8)).shape == (2,)
    with open(out / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 and 0 <= float(rows[0]["val_auc"]) <= 1


@pytest.mark.parametrize("ensemble,views", [(False, 1), (True, 1), (False, 8)],
                         ids=["one teacher", "two teachers", "one teacher over 8 views"])
def test_a_teacher_mixes_its_clean_scores_into_the_training_targets(tiny_models, tmp_path, ensemble, views):
    """The target is (1 - w) x label + w x the teacher's P(IDC) on the clean window; with several
    teachers (comma-separated), their mean P(IDC); with views, its mean over the window's flips and turns."""
    import cv2

    from idc_edge.classifier import PatchClassifier
    from idc_edge.dataset import scan_dataset
    from tiny_model import synthetic_patches
    from train.data import SkipLog, dihedral_views, patch_dataset

    x, y = synthetic_patches(24, seed=7)
    for i in range(len(x)):  # a synthetic patient in the data set's layout
        d = tmp_path / "555" / str(int(y[i]))
        d.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(d / f"555_idx5_x{50 * i}_y0_class{int(y[i])}.png"), x[i][..., ::-1])
    records = scan_dataset(tmp_path)
    teachers = tiny_models if ensemble else tiny_models[:1]
    ds = patch_dataset(records, SkipLog(), 8, training=True, teacher=",".join(map(str, teachers)),
                       teacher_weight=0.25, label_rank=4, teacher_views=views)
    models = [PatchClassifier(t) for t in teachers]
    try:
        for images, targets, _ in ds.take(2):
            images = images.numpy().astype(np.uint8)  # no augmentation: the clean windows
            p = np.mean([m.predict(v) for m in models for v in dihedral_views(images, views)], axis=0)
            hard = np.round((targets.numpy().reshape(-1) - 0.25 * p) / 0.75)
            assert targets.shape == (len(images), 1, 1, 1)
            np.testing.assert_allclose(targets.numpy().reshape(-1), 0.75 * hard + 0.25 * p, atol=1e-5)
            assert set(hard.tolist()) <= {0.0, 1.0}
    finally:
        for m in models:
            m.close()


def test_a_teacher_over_views_averages_its_scores_on_the_eight_flips_and_turns(tiny_int8):
    from idc_edge.classifier import PatchClassifier
    from train.data import _teacher_scores, dihedral_views

    x = np.zeros((4, 50, 50, 3), np.uint8)
    x[:] = (200, 120, 190)
    x[:, :, :20] = (120, 60, 160)  # a purple strip on one side: the views differ
    x[1, :25] = (240, 238, 240)
    views = dihedral_views(x, 8)
    assert len({v.tobytes() for v in views}) == 8 and np.array_equal(views[0], x)
    assert np.array_equal(views[1], x[:, ::-1, ::-1]) and np.array_equal(views[4], x[:, :, ::-1])
    with PatchClassifier(tiny_int8) as clf:
        each = [clf.predict(v) for v in views]
    assert np.ptp(np.stack(each), axis=0).max() > 0.005  # the teacher does see the views differently
    np.testing.assert_allclose(_teacher_scores(str(tiny_int8), 8)(x), np.mean(each, axis=0), atol=1e-6)
    np.testing.assert_allclose(_teacher_scores(str(tiny_int8), 2)(x), np.mean(each[:2], axis=0), atol=1e-6)
    np.testing.assert_allclose(_teacher_scores(str(tiny_int8))(x), each[0], atol=1e-6)
