"""Augmentations that do not change a histology patch's label, on batches, stateless and seeded.

Every function takes a float32 batch ``[N, H, W, 3]`` of RGB values 0–255 and a stateless
seed (int32/int64 tensor of shape ``[2]``) and draws an independent transform per patch, so
the same seed gives the same batch (reproducible with parallel tf.data maps).

- ``flip``: horizontal and vertical flips (tissue has no up/down or left/right).
- ``rot90``: 90° rotations (with ``flip``, all 8 symmetries of the square).
- ``stain``: H&E stain jitter: the patch is unmixed into haematoxylin, eosin and residual
  optical densities (Ruifrok & Johnston 2001), each scaled and shifted at random, and mixed
  back (Tellez et al. 2018, "HED" augmentation) — mimics stain strength varying between labs.
- ``hsv``: small hue shift and saturation scaling (scanner / white-balance differences).
- ``brightness``: an additive shift of all channels.
- ``contrast``: scaling around the patch's mean.
- camera families (``defocus``, ``noise``, ``jpeg``, ``exposure``, ``cast``, ``scale``): the
  physics of :mod:`train.camera_sim`, drawn per patch by :mod:`train.camera_augment` in numpy
  (``tf.numpy_function``, seeded from the same stateless seed), after the tissue-level ones.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from .config import (AUGMENTATIONS, CAMERA_AUGMENTATIONS, CLASSIC_AUGMENTATIONS, COMBINED_DRAWS, PRESETS,  # noqa: F401
                     AugmentStrength, parse_augment)

# Ruifrok & Johnston stain vectors (rows: haematoxylin, eosin, DAB/residual), as optical densities.
_RGB_FROM_HED = np.array([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]], np.float64)
_RGB_FROM_HED /= np.linalg.norm(_RGB_FROM_HED, axis=1, keepdims=True)
_HED_FROM_RGB = np.linalg.inv(_RGB_FROM_HED)


def _uniform(seed, n, lo, hi, salt: int):
    s = tf.random.experimental.stateless_fold_in(seed, salt)
    return tf.random.stateless_uniform([n, 1, 1, 1], s, lo, hi)


def _flip(x, seed):
    n = tf.shape(x)[0]
    lr = _uniform(seed, n, 0.0, 1.0, 1) < 0.5
    ud = _uniform(seed, n, 0.0, 1.0, 2) < 0.5
    x = tf.where(lr, tf.reverse(x, [2]), x)
    return tf.where(ud, tf.reverse(x, [1]), x)


def _rot90(x, seed):
    # Rotation by k × 90°, k uniform in {0, 1, 2, 3}, per patch (patches are square).
    n = tf.shape(x)[0]
    k = tf.cast(tf.floor(_uniform(seed, n, 0.0, 4.0, 3)), tf.int32)
    transposed = tf.transpose(x, [0, 2, 1, 3])
    r1 = tf.reverse(transposed, [1])  # 90° counter-clockwise
    r2 = tf.reverse(x, [1, 2])  # 180°
    r3 = tf.reverse(transposed, [2])  # 270°
    return tf.where(k == 1, r1, tf.where(k == 2, r2, tf.where(k == 3, r3, x)))


def _stain(x, seed, st: AugmentStrength):
    n = tf.shape(x)[0]
    od = -tf.math.log((x + 1.0) / 256.0)
    hed = tf.einsum("nhwc,cd->nhwd", od, tf.constant(_HED_FROM_RGB, tf.float32))
    s = tf.random.experimental.stateless_fold_in(seed, 4)
    alpha = tf.random.stateless_uniform([n, 1, 1, 3], s, 1.0 - st.stain_scale, 1.0 + st.stain_scale)
    if st.haematoxylin_scale is not None:  # a weak or heavy haematoxylin alone: its own range
        first = _uniform(seed, n, 1.0 - st.haematoxylin_scale, 1.0 + st.haematoxylin_scale, 41)
        alpha = tf.concat([first, alpha[..., 1:]], -1)
    s = tf.random.experimental.stateless_fold_in(seed, 5)
    beta = tf.random.stateless_uniform([n, 1, 1, 3], s, -st.stain_shift, st.stain_shift)
    hed = hed * alpha + beta
    od = tf.einsum("nhwd,dc->nhwc", hed, tf.constant(_RGB_FROM_HED, tf.float32))
    return tf.clip_by_value(256.0 * tf.exp(-od) - 1.0, 0.0, 255.0)


def _hsv(x, seed, st: AugmentStrength):
    n = tf.shape(x)[0]
    hsv = tf.image.rgb_to_hsv(x / 255.0)
    dh = _uniform(seed, n, -st.hue, st.hue, 6)[..., 0]
    ds = _uniform(seed, n, 1.0 - st.saturation, 1.0 + st.saturation, 7)[..., 0]
    h = tf.math.floormod(hsv[..., 0] + dh, 1.0)
    s = tf.clip_by_value(hsv[..., 1] * ds, 0.0, 1.0)
    return tf.image.hsv_to_rgb(tf.stack([h, s, hsv[..., 2]], -1)) * 255.0


def _brightness(x, seed, st: AugmentStrength):
    return tf.clip_by_value(x + _uniform(seed, tf.shape(x)[0], -st.brightness, st.brightness, 8), 0.0, 255.0)


def _contrast(x, seed, st: AugmentStrength):
    c = _uniform(seed, tf.shape(x)[0], 1.0 - st.contrast, 1.0 + st.contrast, 9)
    mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
    return tf.clip_by_value((x - mean) * c + mean, 0.0, 255.0)


def _camera(x, seed, families: tuple[str, ...], strength: AugmentStrength = AugmentStrength()):
    from .camera_augment import CameraAugment

    aug = CameraAugment(families, **{name: getattr(strength, name) for name in COMBINED_DRAWS})

    def apply(images, s):
        return aug.apply(images, np.random.default_rng(np.asarray(s, np.uint64)))

    s = tf.random.stateless_uniform([2], tf.random.experimental.stateless_fold_in(seed, 99), 0, 2**31 - 1, tf.int64)
    u8 = tf.cast(tf.clip_by_value(tf.round(x), 0.0, 255.0), tf.uint8)
    out = tf.numpy_function(apply, [u8, s], tf.uint8, stateful=False)
    out.set_shape(x.shape)
    return tf.cast(out, tf.float32)


def augment_batch(x, seed, names: tuple[str, ...], strength: AugmentStrength = AugmentStrength()):
    """Apply the augmentations ``names`` (in :data:`AUGMENTATIONS` order) to a float batch 0–255."""
    x = tf.cast(x, tf.float32)
    seed = tf.cast(seed, tf.int64)
    ops = {
        "flip": lambda v, s: _flip(v, s),
        "rot90": lambda v, s: _rot90(v, s),
        "stain": lambda v, s: _stain(v, s, strength),
        "hsv": lambda v, s: _hsv(v, s, strength),
        "brightness": lambda v, s: _brightness(v, s, strength),
        "contrast": lambda v, s: _contrast(v, s, strength),
    }
    for i, name in enumerate(n for n in CLASSIC_AUGMENTATIONS if n in names):
        x = ops[name](x, tf.random.experimental.stateless_fold_in(seed, 100 + i))
    camera = tuple(n for n in CAMERA_AUGMENTATIONS if n in names)
    return _camera(x, seed, camera, strength) if camera else x
