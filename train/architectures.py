"""Candidate IDC classifiers for 50×50 RGB patches, built for int8 on a Pi CPU.

Every model here:

- takes raw RGB bytes (values 0–255, RGB order, float32 tensor ``[N, 50, 50, 3]``) and rescales
  them inside with ``Rescaling(1/255)``, so the int8 model's uint8 input takes camera bytes;
- uses only ops that quantize well and that tfmot 0.8.1 ``quantize_model`` knows:
  ``Conv2D`` / ``DepthwiseConv2D`` without bias followed by ``BatchNormalization`` (folded at
  conversion) and ``ReLU``, ``MaxPooling2D``, ``GlobalAveragePooling2D``, ``Dropout``, ``Dense``;
- ends in one sigmoid unit, the probability of IDC.

``build(name, keras_module)`` takes the Keras module as an argument (``keras`` for Keras 3,
``tf_keras`` for Keras 2) and names every layer the same way in both, so a Keras 2 twin
(for quantization-aware training with tfmot) takes the Keras 3 weights with
``twin.set_weights(model.get_weights())``.

Speed on the target: standard convolutions gain ~3× from int8 on x86/ARM CPUs while
depthwise ones gain ~1.4×, so the fast candidates are narrow standard-conv networks that
shrink the 50×50 input early (a stride-2 stem or an early pooling) and end in global average
pooling instead of a large dense layer.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

PATCH_SIZE_PX = 50


@dataclass(frozen=True)
class ArchInfo:
    """A candidate: how to build it and a one-line description for model cards."""

    name: str
    description: str
    builder: Callable[[Any], Any]


def _conv_bn_relu(k, x, filters: int, name: str, strides: int = 1, kernel: int = 3):
    x = k.layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = k.layers.BatchNormalization(name=f"{name}_bn")(x)
    return k.layers.ReLU(name=f"{name}_relu")(x)


def _sep_bn_relu(k, x, filters: int, name: str, strides: int = 1):
    """Depthwise 3×3 + BN + ReLU, then pointwise 1×1 + BN + ReLU (MobileNet v1 block)."""
    x = k.layers.DepthwiseConv2D(3, strides=strides, padding="same", use_bias=False, name=f"{name}_dw")(x)
    x = k.layers.BatchNormalization(name=f"{name}_dw_bn")(x)
    x = k.layers.ReLU(name=f"{name}_dw_relu")(x)
    x = k.layers.Conv2D(filters, 1, padding="same", use_bias=False, name=f"{name}_pw")(x)
    x = k.layers.BatchNormalization(name=f"{name}_pw_bn")(x)
    return k.layers.ReLU(name=f"{name}_pw_relu")(x)


def _input(k):
    inp = k.Input(shape=(PATCH_SIZE_PX, PATCH_SIZE_PX, 3), name="rgb_bytes")
    return inp, k.layers.Rescaling(1.0 / 255.0, name="rescale")(inp)


def _head(k, inp, x, name: str, dropout: float = 0.2):
    x = k.layers.GlobalAveragePooling2D(name="gap")(x)
    if dropout:
        x = k.layers.Dropout(dropout, name="dropout")(x)
    out = k.layers.Dense(1, activation="sigmoid", name="p_idc")(x)
    return k.Model(inp, out, name=name)


def _stride2_cnn(widths: tuple[int, ...], name: str):
    """Stride-2 3×3 stem (50→25), then 3×3 convs with 2×2 max pooling between stages."""

    def builder(k):
        inp, x = _input(k)
        x = _conv_bn_relu(k, x, widths[0], "stem", strides=2)  # 25×25
        for i, w in enumerate(widths[1:]):
            if i > 0:
                x = k.layers.MaxPooling2D(2, name=f"pool{i}")(x)  # 25→12→6
            x = _conv_bn_relu(k, x, w, f"block{i + 1}")
        return _head(k, inp, x, name)

    return builder


def _pool_cnn(widths: tuple[int, ...], name: str):
    """Full-resolution 3×3 stem, then 2×2 max pooling before each further 3×3 conv (50→25→12→6)."""

    def builder(k):
        inp, x = _input(k)
        x = _conv_bn_relu(k, x, widths[0], "stem")
        for i, w in enumerate(widths[1:]):
            x = k.layers.MaxPooling2D(2, name=f"pool{i + 1}")(x)
            x = _conv_bn_relu(k, x, w, f"block{i + 1}")
        return _head(k, inp, x, name)

    return builder


def _double_cnn(name: str):
    """Stride-2 stem then two 3×3 convs per stage (more depth at low resolution)."""

    def builder(k):
        inp, x = _input(k)
        x = _conv_bn_relu(k, x, 16, "stem", strides=2)  # 25
        x = _conv_bn_relu(k, x, 24, "block1a")
        x = k.layers.MaxPooling2D(2, name="pool1")(x)  # 12
        x = _conv_bn_relu(k, x, 48, "block2a")
        x = _conv_bn_relu(k, x, 48, "block2b")
        x = k.layers.MaxPooling2D(2, name="pool2")(x)  # 6
        x = _conv_bn_relu(k, x, 96, "block3a")
        x = _conv_bn_relu(k, x, 96, "block3b")
        return _head(k, inp, x, name)

    return builder


def _separable(name: str):
    """Depthwise-separable reference (MobileNet v1 style), for the speed comparison."""

    def builder(k):
        inp, x = _input(k)
        x = _conv_bn_relu(k, x, 16, "stem", strides=2)  # 25
        x = _sep_bn_relu(k, x, 32, "sep1")
        x = _sep_bn_relu(k, x, 64, "sep2", strides=2)  # 13
        x = _sep_bn_relu(k, x, 64, "sep3")
        x = _sep_bn_relu(k, x, 128, "sep4", strides=2)  # 7
        x = _sep_bn_relu(k, x, 128, "sep5")
        return _head(k, inp, x, name)

    return builder


ARCHITECTURES: dict[str, ArchInfo] = {
    info.name: info
    for info in (
        ArchInfo("s2_16_32_64_128", "stride-2 3x3 stem 16, 3x3 convs 32/64/128 with max pooling, GAP, dense",
                 _stride2_cnn((16, 32, 64, 128), "s2_16_32_64_128")),
        ArchInfo("s2_16_24_48_96", "stride-2 3x3 stem 16, 3x3 convs 24/48/96 with max pooling, GAP, dense",
                 _stride2_cnn((16, 24, 48, 96), "s2_16_24_48_96")),
        ArchInfo("s2_24_48_96_192", "stride-2 3x3 stem 24, 3x3 convs 48/96/192 with max pooling, GAP, dense",
                 _stride2_cnn((24, 48, 96, 192), "s2_24_48_96_192")),
        ArchInfo("s2_deep", "stride-2 3x3 stem 16, convs 24 | 48,48 | 96,96 with max pooling, GAP, dense",
                 _double_cnn("s2_deep")),
        ArchInfo("pool_16_32_64_128", "full-res 3x3 stem 16, max pooling then 3x3 convs 32/64/128, GAP, dense",
                 _pool_cnn((16, 32, 64, 128), "pool_16_32_64_128")),
        ArchInfo("sep_mobilenet", "stride-2 stem 16, five depthwise-separable blocks 32-128, GAP, dense",
                 _separable("sep_mobilenet")),
    )
}

DEFAULT_ARCH = "s2_deep"  # chosen in EXPERIMENTS.md


def names() -> list[str]:
    """The names :func:`build` accepts."""
    return list(ARCHITECTURES)


def describe(name: str) -> str:
    """One-line description of architecture ``name``."""
    return _info(name).description


def _info(name: str) -> ArchInfo:
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise ValueError(f"unknown architecture {name!r}; expected one of {', '.join(ARCHITECTURES)}") from None


def build(name: str, keras_module) -> Any:
    """Build architecture ``name`` with ``keras_module`` (``keras`` or ``tf_keras``), uncompiled.

    The model takes float32 ``[N, 50, 50, 3]`` raw RGB values 0–255 and outputs ``[N, 1]``,
    the probability of IDC.

    Raises:
        ValueError: ``name`` is not one of :func:`names`.
    """
    return _info(name).builder(keras_module)
