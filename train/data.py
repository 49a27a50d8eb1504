"""Data for training: records from ``idc_edge.dataset`` streamed from disk with tf.data.

Patches are decoded by :func:`idc_edge.dataset.read_patch_rgb` — the same reader ``idc-edge
evaluate`` uses, so edge patches are white-padded the same way and RGB order is the same —
inside the tf.data pipeline, a few at a time. Memory stays bounded by the shuffle buffer of
*paths* and the prefetch queue, so the full 277,524-patch set streams as well as the 24k
sample; ``cache="memory"`` keeps decoded patches in RAM (≈ 7.5 KB each) and a cache file on
disk keeps them on disk after the first epoch.
"""
from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import tensorflow as tf

from idc_edge.dataset import PATCH_SIZE_PX, PatchRecord, read_patch_rgb
from idc_edge.errors import DatasetError, SourceError

from .augment import augment_batch
from .config import AugmentStrength, teacher_paths
from .windows import NO_CELL, Samples, assemble, patch_samples

DISK_CACHE_SHUFFLE = 16_384


@dataclass
class SkipLog:
    """Paths that could not be read, collected while tf.data streams (thread-safe)."""

    paths: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, path: str) -> None:
        with self._lock:
            self.paths.add(path)

    def __len__(self) -> int:
        with self._lock:
            return len(self.paths)


def assert_patient_disjoint(*parts: Sequence[PatchRecord], names: Sequence[str] = ("training", "validation")) -> None:
    """The split guard: raise :class:`DatasetError` if any patient is in two parts."""
    seen: dict[str, str] = {}
    for name, part in zip(names, parts):
        for patient in sorted({r.patient for r in part}):
            if patient in seen and seen[patient] != name:
                raise DatasetError(f"patient {patient} is in both the {seen[patient]} and the {name} set: "
                                   "splits must be by patient")
            seen[patient] = name


def subsample(records: Sequence[PatchRecord], max_patches: int | None, seed: int) -> tuple[PatchRecord, ...]:
    """At most ``max_patches`` records, a seeded random sample keeping the path order."""
    if max_patches is None or len(records) <= max_patches:
        return tuple(records)
    keep = sorted(random.Random(seed).sample(range(len(records)), max_patches))
    return tuple(records[i] for i in keep)


def _reader(skips: SkipLog):
    def read(path: bytes):
        p = path.decode("utf-8")
        try:
            return read_patch_rgb(p), True
        except SourceError:
            skips.add(p)
            return np.full((PATCH_SIZE_PX, PATCH_SIZE_PX, 3), 255, np.uint8), False

    def tf_read(path, label, index):
        image, ok = tf.numpy_function(read, [path], [tf.uint8, tf.bool], stateful=False)
        image.set_shape([PATCH_SIZE_PX, PATCH_SIZE_PX, 3])
        ok.set_shape([])
        return image, label, index, ok

    return tf_read


def _sample_reader(records: Sequence[PatchRecord], skips: SkipLog):
    """tf.data map: (cells [4], dy, dx, label, index) → the window's RGB uint8 pixels, read from
    the (up to four) patch files under it; a window with an unreadable cell is left out."""
    paths = [r.path for r in records]

    def read(cells, dy, dx):
        imgs = []
        for c in cells:
            if c == NO_CELL:
                imgs.append(None)
                continue
            try:
                imgs.append(read_patch_rgb(paths[c]))
            except SourceError:
                skips.add(paths[c])
                return np.full((PATCH_SIZE_PX, PATCH_SIZE_PX, 3), 255, np.uint8), False
        return assemble(imgs, int(dy), int(dx)), True

    def tf_read(cells, dy, dx, label, index):
        image, ok = tf.numpy_function(read, [cells, dy, dx], [tf.uint8, tf.bool], stateful=False)
        image.set_shape([PATCH_SIZE_PX, PATCH_SIZE_PX, 3])
        ok.set_shape([])
        return image, label, index, ok

    return tf_read


def dihedral_views(batch: np.ndarray, n: int) -> list[np.ndarray]:
    """The first ``n`` (1, 2, 4 or 8) of a ``[N, H, W, C]`` batch's eight flips and quarter turns:
    itself, its 180° turn, then the 90° and 270° turns, then the four mirror images of those."""
    turns = [np.rot90(batch, k, axes=(1, 2)) for k in (0, 2, 1, 3)]
    views = turns + [t[:, :, ::-1] for t in turns]
    return [np.ascontiguousarray(v) for v in views[:n]]


def _teacher_scores(teacher: str, views: int = 1):
    """numpy function: uint8 RGB batch → the teachers' mean P(IDC) (float32) over ``views`` of the
    batch's flips and quarter turns (:func:`dihedral_views`), one call at a time (a LiteRT
    interpreter is not thread-safe; at ~0.1 ms per patch this is not a bottleneck)."""
    from idc_edge.classifier import PatchClassifier

    models = [PatchClassifier(path, num_threads=1) for path in teacher_paths(teacher)]
    lock = threading.Lock()

    def scores(images):
        batch = np.asarray(images, np.uint8)
        with lock:
            return np.mean([clf.predict(v) for clf in models for v in dihedral_views(batch, views)],
                           axis=0).astype(np.float32)

    return scores


def patch_dataset(
    records: Sequence[PatchRecord],
    skips: SkipLog,
    batch_size: int,
    *,
    training: bool,
    seed: int = 0,
    augment: tuple[str, ...] = (),
    strength: AugmentStrength = AugmentStrength(),
    class_weight: tuple[float, float] | None = None,
    cache: str | None = None,
    samples: Samples | None = None,
    label_rank: int = 2,
    teacher: str | None = None,
    teacher_weight: float = 0.5,
    teacher_views: int = 1,
) -> tf.data.Dataset:
    """A tf.data pipeline over ``records``.

    Training datasets yield ``(images float32 0–255, labels float32 [N, 1], sample weights)``,
    shuffled every epoch and augmented; evaluation datasets yield ``(images, labels, index)``
    in record order (``index`` into ``records``; unreadable files are left out and logged in
    ``skips``).

    Args:
        cache: None (stream from disk every epoch), ``"memory"``, or a file path prefix for a
            tf.data cache on disk.
        samples: training only: the windows to train on (:mod:`train.windows`, indices into
            ``records``); default every record as a plain patch.
        label_rank: 2 gives labels ``[N, 1]``, 4 gives ``[N, 1, 1, 1]`` (fully convolutional models).
        teacher: training only: a ``.tflite`` model (with sidecar) whose P(IDC) on the *clean*
            window is mixed into the target, ``(1 - teacher_weight) × label + teacher_weight × p``
            (distillation: the student learns the teacher's graded scores, and to give them also
            on the camera-augmented copy it is shown). ``teacher_views``: average the teacher over
            that many of the window's flips and quarter turns (1, 2, 4 or 8).
    """
    if not records:
        raise DatasetError("no patches to read")
    if training:
        samples = samples if samples is not None else patch_samples(records)
        labels = samples.labels
        # Shuffling small index tuples keeps memory bounded; with a cache the order is fixed
        # after the first pass, so shuffle decoded windows again below.
        ds = tf.data.Dataset.from_tensor_slices((samples.cells, samples.dy, samples.dx, labels,
                                                 np.arange(len(samples), dtype=np.int64)))
        ds = ds.shuffle(len(samples), seed=seed, reshuffle_each_iteration=cache is None)
        ds = ds.map(_sample_reader(records, skips), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    else:
        paths = [r.path for r in records]
        labels = np.array([r.label for r in records], np.int32)
        ds = tf.data.Dataset.from_tensor_slices((paths, labels, np.arange(len(records), dtype=np.int64)))
        ds = ds.map(_reader(skips), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    n_items = len(labels)
    ds = ds.filter(lambda image, label, index, ok: ok)
    ds = ds.map(lambda image, label, index, ok: (image, label, index))
    if cache:
        ds = ds.cache("" if cache == "memory" else cache)
        if training:
            buffer = n_items if cache == "memory" else min(n_items, DISK_CACHE_SHUFFLE)
            ds = ds.shuffle(buffer, seed=seed + 1, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if not training:
        return ds.map(lambda x, y, i: (tf.cast(x, tf.float32), y, i)).prefetch(tf.data.AUTOTUNE)

    weights = tf.constant(class_weight or (1.0, 1.0), tf.float32)
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)

    soft = _teacher_scores(teacher, teacher_views) if teacher else None

    def finish(batch, s):
        x, y, _ = batch
        target = tf.cast(y, tf.float32)
        if soft is not None:
            p = tf.numpy_function(soft, [x], tf.float32, stateful=False)
            target = (1.0 - teacher_weight) * target + teacher_weight * tf.reshape(p, tf.shape(target))
        x = augment_batch(x, s, augment, strength) if augment else tf.cast(x, tf.float32)
        w = tf.gather(weights, y)
        return x, tf.reshape(target, [-1] + [1] * (label_rank - 1)), w

    ds = tf.data.Dataset.zip((ds, seeds)).map(finish, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def predict(model, dataset: tf.data.Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(P(IDC), labels, record indices) of an evaluation dataset from :func:`patch_dataset`."""
    probs, labels, idx = [], [], []

    @tf.function(reduce_retracing=True)
    def step(x):
        return model(x, training=False)

    for x, y, i in dataset:
        probs.append(np.asarray(step(x)).reshape(-1))
        labels.append(y.numpy())
        idx.append(i.numpy())
    if not probs:
        raise DatasetError("none of the validation patches could be read")
    return np.concatenate(probs), np.concatenate(labels), np.concatenate(idx)
