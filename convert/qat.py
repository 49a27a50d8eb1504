"""Quantization-aware training (QAT) with tensorflow-model-optimization, through tf_keras.

tfmot 0.8.1 quantizes only Keras 2 models, and the project trains in Keras 3. So:

1. :func:`keras2_twin` builds the same architecture in ``tf_keras`` and copies the Keras 3
   weights into it with ``set_weights`` (layer names and weight order agree by construction,
   see ``train/architectures.py``);
2. :func:`quantize_twin` wraps it for QAT: every layer through tfmot's default 8-bit scheme,
   except ``Rescaling``, which tfmot does not know and which gets :class:`RescaleQuantizeConfig`
   (no weights, its output quantized like any activation);
3. :func:`fine_tune` trains a little on training patients with fake quantization in the loop;
4. :func:`save_h5` / :func:`load_h5` keep it as ``.h5`` under ``quantize_scope`` (a QAT model
   saved as ``.keras`` does not reload);
5. :func:`convert` makes the full-integer TFLite model, and :func:`float_weights` takes the
   fine-tuned float weights back out so the float32 model *of the same weights* can ship beside it.
"""
from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from idc_edge.errors import ModelError, OptionError

from . import kerasenv, ptq

Builder = Callable[[Any], Any]
"""``builder(keras_module) -> model``: the architecture, built in ``keras`` or ``tf_keras``."""


@dataclass(frozen=True)
class QatConfig:
    """How quantization-aware fine-tuning runs.

    Attributes:
        epochs: passes over the fine-tuning patches.
        batch_size: patches per step.
        learning_rate: Adam step size; small, the model is already trained.
        augment: augmentation names of ``train.augment`` (the training run's, from its
            train_config.json, by default in the command line); empty for none.
        augment_strength: magnitudes of the colour augmentations (``train.config.AugmentStrength``
            fields, the training run's by default in the command line, e.g. its ``stain_scale``);
            empty for the defaults.
        balance_classes: weight each class by the inverse of its frequency.
        freeze_batchnorm: keep batch-normalization statistics and parameters as trained (BN in
            inference mode), so fine-tuning adapts only the convolutions to quantization.
        seed: seeds shuffling, augmentation and initialisation of the quantizers.
    """

    epochs: int = 2
    batch_size: int = 64
    learning_rate: float = 1e-4
    augment: tuple[str, ...] = ("flip", "rot90")
    augment_strength: dict = field(default_factory=dict)
    balance_classes: bool = True
    freeze_batchnorm: bool = False
    seed: int = 0

    def __post_init__(self):
        from train.run import MAX_BATCH_SIZE, MAX_EPOCHS

        # past these, fine-tuning runs for ever or hangs TensorFlow's batching without a word (as training did)
        if not isinstance(self.epochs, int) or not 1 <= self.epochs <= MAX_EPOCHS:
            raise OptionError(f"--qat-epochs must be a whole number from 1 to {MAX_EPOCHS}, got {self.epochs!r}")
        if not isinstance(self.batch_size, int) or not 1 <= self.batch_size <= MAX_BATCH_SIZE:
            raise OptionError(f"QAT batch size must be from 1 to {MAX_BATCH_SIZE} patches, got {self.batch_size!r}")
        if not (_is_number(self.learning_rate) and math.isfinite(self.learning_rate) and 0 < self.learning_rate <= 1):
            raise OptionError(f"--qat-lr must be a number in (0, 1], got {self.learning_rate!r}")  # inf gave NaN weights
        from train.config import AUGMENTATIONS

        unknown = [a for a in self.augment if a not in AUGMENTATIONS]
        if unknown:
            raise OptionError(f"--qat-augment: unknown augmentation {', '.join(unknown)}; expected some of "
                              f"{', '.join(AUGMENTATIONS)}")
        self.strength()  # unknown or malformed strengths are refused here, not mid fine-tune

    def strength(self):
        """The :class:`train.config.AugmentStrength` of ``augment_strength``."""
        from train.config import AugmentStrength

        known = set(AugmentStrength.__dataclass_fields__)
        unknown = sorted(set(self.augment_strength) - known)
        if unknown:
            raise OptionError(f"the training run's augment_strength has unknown field(s) {', '.join(unknown)}; "
                              f"known: {', '.join(sorted(known))}")
        fields = AugmentStrength.__dataclass_fields__
        # a field whose default is None (haematoxylin_scale: "as stain_scale") is written as null by
        # every training run that leaves it out; refusing it refused every such run's model
        bad = {k: v for k, v in self.augment_strength.items()
               if not (_is_number(v) or (v is None and fields[k].default is None))}
        if bad:
            raise OptionError(f"the training run's augment_strength must hold numbers, got {bad!r}")
        return AugmentStrength(**self.augment_strength)

    def to_dict(self) -> dict:
        return asdict(self)


def _is_number(value) -> bool:
    """True for an int or float that is not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _rescale_config_class():
    """:class:`RescaleQuantizeConfig`, defined lazily so importing this module needs no tfmot."""
    tfmot = kerasenv.tfmot()
    qk = tfmot.quantization.keras

    class RescaleQuantizeConfig(qk.QuantizeConfig):
        """``Rescaling``: nothing to quantize inside, output quantized with a moving-average range."""

        def get_weights_and_quantizers(self, layer):
            return []

        def get_activations_and_quantizers(self, layer):
            return []

        def set_quantize_weights(self, layer, quantize_weights):
            pass

        def set_quantize_activations(self, layer, quantize_activations):
            pass

        def get_output_quantizers(self, layer):
            return [qk.quantizers.MovingAverageQuantizer(num_bits=8, per_axis=False, symmetric=False,
                                                         narrow_range=False)]

        def get_config(self):
            return {}

    return RescaleQuantizeConfig


_RESCALE_CONFIG = None


def rescale_quantize_config():
    """The :class:`RescaleQuantizeConfig` class (one per process, so ``quantize_scope`` finds it)."""
    global _RESCALE_CONFIG
    if _RESCALE_CONFIG is None:
        _RESCALE_CONFIG = _rescale_config_class()
    return _RESCALE_CONFIG


def custom_objects() -> dict:
    """Names ``quantize_scope`` needs to rebuild a saved QAT model."""
    return {"RescaleQuantizeConfig": rescale_quantize_config()}


def keras2_twin(model, builder: Builder):
    """The architecture built in tf_keras, holding ``model``'s (Keras 3) weights.

    Raises:
        ModelError: the twin's weights do not line up with the model's (another architecture).
    """
    k2 = kerasenv.tf_keras()
    twin = builder(k2)
    src = model.get_weights()
    dst = twin.get_weights()
    if len(src) != len(dst) or any(a.shape != b.shape for a, b in zip(src, dst)):
        shapes = lambda ws: [tuple(w.shape) for w in ws]  # noqa: E731
        raise ModelError(f"the tf_keras twin of {getattr(model, 'name', 'the model')!r} does not match its weights "
                         f"({len(dst)} arrays {shapes(dst)[:4]}... vs {len(src)} {shapes(src)[:4]}...): "
                         "pass the architecture the model was trained with (--arch)")
    twin.set_weights(src)
    return twin


def quantize_twin(twin):
    """``twin`` wrapped for quantization-aware training (tfmot default 8-bit scheme)."""
    tfmot = kerasenv.tfmot()
    k2 = kerasenv.tf_keras()
    qk = tfmot.quantization.keras
    config_cls = rescale_quantize_config()

    def annotate(layer):
        if isinstance(layer, k2.layers.Rescaling):
            return qk.quantize_annotate_layer(layer, config_cls())
        return qk.quantize_annotate_layer(layer)

    annotated = k2.models.clone_model(twin, clone_function=annotate)
    annotated.set_weights(twin.get_weights())
    with qk.quantize_scope(custom_objects()):
        return qk.quantize_apply(annotated)


def _dataset(images: np.ndarray, labels: np.ndarray, config: QatConfig, label_rank: int = 2):
    """Shuffled, class-weighted, augmented batches ``(x float32 0–255, y, weight)``; ``y`` is
    ``[N, 1]``, or ``[N, 1, 1, 1]`` with ``label_rank`` 4 (fully convolutional models).

    Augmentation is training's own (``train.augment.augment_batch``), seeded per batch.
    """
    tf = kerasenv.tf()
    y = labels.astype(np.float32).reshape((-1,) + (1,) * (label_rank - 1))
    if config.balance_classes:
        n1 = max(float(y.sum()), 1.0)
        n0 = max(float(len(y) - y.sum()), 1.0)
        w = np.where(y.reshape(-1) == 1, len(y) / (2 * n1), len(y) / (2 * n0)).astype(np.float32)
    else:
        w = np.ones(len(y), np.float32)
    ds = tf.data.Dataset.from_tensor_slices((images, y, w))
    ds = ds.shuffle(len(images), seed=config.seed, reshuffle_each_iteration=True).batch(config.batch_size)
    if not config.augment:
        return ds.map(lambda x, t, sw: (tf.cast(x, tf.float32), t, sw)).prefetch(1)
    from train.augment import augment_batch

    names, strength = tuple(config.augment), config.strength()
    seeds = tf.data.Dataset.random(seed=config.seed, rerandomize_each_iteration=True).batch(2)
    return (tf.data.Dataset.zip((ds, seeds))
            .map(lambda b, s: (augment_batch(b[0], s, names, strength), b[1], b[2]), num_parallel_calls=1)
            .prefetch(1))


def fine_tune(qat_model, images: np.ndarray, labels: np.ndarray, config: QatConfig, verbose: int = 0) -> list[float]:
    """Fine-tune ``qat_model`` in place on training-patient patches; returns the loss per epoch."""
    if len(images) == 0:
        raise OptionError("quantization-aware training needs training patches (got none)")
    k2 = kerasenv.tf_keras()
    k2.utils.set_random_seed(config.seed)
    if config.freeze_batchnorm:
        for layer in qat_model.layers:
            if isinstance(getattr(layer, "layer", layer), k2.layers.BatchNormalization):
                layer.trainable = False  # a non-trainable BN runs in inference mode in Keras 2
    qat_model.compile(optimizer=k2.optimizers.Adam(config.learning_rate), loss="binary_crossentropy")
    rank = len(qat_model.output_shape)
    hist = qat_model.fit(_dataset(images, labels, config, rank), epochs=config.epochs, verbose=verbose)
    return [float(v) for v in hist.history["loss"]]


def save_h5(qat_model, path: str | os.PathLike) -> Path:
    """Save a QAT model as ``.h5`` (``.keras`` does not reload for QAT models)."""
    path = Path(path)
    with kerasenv.tfmot().quantization.keras.quantize_scope(custom_objects()):
        qat_model.save(str(path), save_format="h5")
    return path


def load_h5(path: str | os.PathLike):
    """Reload a QAT model saved by :func:`save_h5`."""
    k2 = kerasenv.tf_keras()
    with kerasenv.tfmot().quantization.keras.quantize_scope(custom_objects()):
        return k2.models.load_model(str(path), compile=False)


def convert(qat_model, representative: np.ndarray, input_type: str = "uint8") -> bytes:
    """Full-integer TFLite model from a QAT model.

    Ranges come from the fake-quantization nodes learnt in training; the representative
    patches (training patients) only calibrate tensors QAT left without a range.
    """
    tf = kerasenv.tf()
    converter = tf.lite.TFLiteConverter.from_keras_model(qat_model)
    return ptq.full_integer(converter, representative, input_type)


def float_weights(qat_model, twin) -> list[np.ndarray]:
    """The fine-tuned float weights of ``qat_model`` in ``twin``'s order (quantizer state left out).

    tfmot's wrappers take over the kernels of the layers they wrap but keep the variables'
    names (``stem_conv/kernel:0``), so weights are matched by name.

    Raises:
        ModelError: a weight of the twin has no counterpart of the same shape in the QAT model.
    """
    by_name = {w.name: w for w in qat_model.weights}
    weights = []
    for w in twin.weights:
        src = by_name.get(w.name)
        if src is None or tuple(src.shape) != tuple(w.shape):
            raise ModelError(f"weight {w.name!r} {tuple(w.shape)} has no counterpart in the QAT model")
        weights.append(np.asarray(src.numpy()))
    return weights
