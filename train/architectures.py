"""Candidate IDC classifiers for 50×50 RGB patches, built for int8 on a Pi CPU.

Every model here:

- takes raw RGB bytes (values 0–255, RGB order, float32 tensor ``[N, 50, 50, 3]``) and rescales
  them inside with ``Rescaling(1/255)``, so the int8 model's uint8 input takes camera bytes;
- uses only ops that quantize well and that tfmot 0.8.1 ``quantize_model`` knows:
  ``Conv2D`` / ``DepthwiseConv2D`` without bias followed by ``BatchNormalization`` (folded at
  conversion) and ``ReLU``, ``MaxPooling2D``, ``GlobalAveragePooling2D``, ``Dropout``, ``Dense``;
- ends in one sigmoid unit, the probability of IDC.

Patch-only candidates end in global average pooling and a dense layer. Fully convolutional
candidates (``output_stride_px`` set, e.g. ``dense25``) use valid padding only and end in a
convolution over exactly the remaining window, so one pass over a whole frame scores every
window on a grid (see :func:`_dense25`).

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
    """A candidate: how to build it and a one-line description for model cards.

    ``output_stride_px`` is set for fully convolutional ("dense") models: valid padding only, so
    the same weights run over a whole frame and give the patch score of every window whose
    top-left corner lies on a multiple of ``output_stride_px`` model pixels.
    """

    name: str
    description: str
    builder: Callable[..., Any]
    output_stride_px: int | None = None


def _conv_bn_relu(k, x, filters: int, name: str, strides: int = 1, kernel: int = 3, padding: str = "same"):
    x = k.layers.Conv2D(filters, kernel, strides=strides, padding=padding, use_bias=False, name=f"{name}_conv")(x)
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


def _input(k, input_hw: tuple[int | None, int | None] = (PATCH_SIZE_PX, PATCH_SIZE_PX)):
    inp = k.Input(shape=(*input_hw, 3), name="rgb_bytes")
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


def _dense25(cells: tuple[int, ...], c_block: int, c_mix: int, c_window: int, name: str, c_pixel: int = 0):
    """Fully convolutional, valid padding, output stride 25 px, receptive field exactly 50 px.

    A 50×50 window is seen at three scales, each a multiple of the last, so that overlapping
    windows at stride 25 share all work below the window level:

    - cells of 5×5 px (20 µm, a few nuclei): a 5×5 stride-5 convolution ("patchify" stem) of
      ``cells[0]`` channels, then a 1×1 convolution per further entry of ``cells``;
    - blocks of 25×25 px (100 µm): a 5×5 stride-5 convolution over 5×5 cells, then 1×1;
    - the window of 2×2 blocks (200 µm): a 2×2 convolution, then a 1×1 convolution to one
      sigmoid unit. The 2×2 convolution is the final "pooling" over exactly the remaining window.

    Output ``[N, (H-50)//25 + 1, (W-50)//25 + 1, 1]``; ``[N, 1, 1, 1]`` for a 50×50 patch.

    Why output stride 25: windows at stride 25 overlap 2× per axis, so everything computed per
    cell or block is shared by 4 windows in a dense pass. A finer output stride (5) would run the
    heavy late layers at every 5-px position: more work than 190 separate patches. 25 divides 25
    and 50, so both runtime strides stay exact. Valid 3×3 convolutions at the cell level would
    widen the receptive field past 50 px (or need a 3×3 stride-5 transition that computes and
    discards 64 % of its inputs: 2.5× instead of 3.2× fewer MACs per 1080p frame), hence 1×1.
    1.49 M MACs per 50×50 patch (s2_deep: 11.4 M).

    ``c_pixel`` > 0 puts a 1×1 convolution of that many channels on every pixel before the cells
    (a learned, non-linear colour transform, e.g. "how haematoxylin-dark is this pixel"): a cell
    can then count dark nuclear pixels instead of only averaging raw intensities. It keeps the
    receptive field at 50 px and the output stride at 25.
    """

    def builder(k, input_hw=(PATCH_SIZE_PX, PATCH_SIZE_PX)):
        inp, x = _input(k, input_hw)
        if c_pixel:
            x = _conv_bn_relu(k, x, c_pixel, "pixel", kernel=1, padding="valid")
        x = _conv_bn_relu(k, x, cells[0], "cell", strides=5, kernel=5, padding="valid")  # 10×10 cells
        for i, c in enumerate(cells[1:]):
            x = _conv_bn_relu(k, x, c, "token" if i == 0 else f"token{i + 1}", kernel=1, padding="valid")
        x = _conv_bn_relu(k, x, c_block, "block", strides=5, kernel=5, padding="valid")  # 2×2 blocks
        x = _conv_bn_relu(k, x, c_mix, "block_mix", kernel=1, padding="valid")
        x = _conv_bn_relu(k, x, c_window, "window", kernel=2, padding="valid")  # 1×1 window
        x = k.layers.Dropout(0.2, name="dropout")(x)
        out = k.layers.Conv2D(1, 1, activation="sigmoid", name="p_idc")(x)
        return k.Model(inp, out, name=name)

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
        ArchInfo("dense25", "fully convolutional, valid: 5x5/5 cells 48, 1x1 64, 5x5/5 blocks 112, 1x1 112, "
                 "2x2 window 128, 1x1 sigmoid; output stride 25 px",
                 _dense25((48, 64), 112, 112, 128, "dense25"), output_stride_px=25),
        ArchInfo("dense25_deep", "fully convolutional, valid: 5x5/5 cells 64, 1x1 96, 1x1 96, 5x5/5 blocks 64, "
                 "1x1 160, 2x2 window 96, 1x1 sigmoid; output stride 25 px",
                 _dense25((64, 96, 96), 64, 160, 96, "dense25_deep"), output_stride_px=25),
        ArchInfo("dense25_px", "dense25 with a 1x1 convolution of 16 channels on every pixel before the cells "
                 "(non-linear colour features); output stride 25 px",
                 _dense25((48, 64), 112, 112, 128, "dense25_px", c_pixel=16), output_stride_px=25),
    )
}

DEFAULT_ARCH = "dense25"  # the second-generation model, EXPERIMENTS.md section 5


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


def output_stride_px(name: str) -> int | None:
    """Output stride in model pixels of a fully convolutional architecture, None for patch-only ones."""
    return _info(name).output_stride_px


def build(name: str, keras_module, input_hw: tuple[int | None, int | None] | None = None) -> Any:
    """Build architecture ``name`` with ``keras_module`` (``keras`` or ``tf_keras``), uncompiled.

    The model takes float32 ``[N, 50, 50, 3]`` raw RGB values 0–255 and outputs the probability
    of IDC: ``[N, 1]`` for patch-only architectures, ``[N, 1, 1, 1]`` for fully convolutional ones
    (:func:`output_stride_px` is not None), which also take ``input_hw`` = (H, W) of any size
    >= 50 (None = any) and then give ``[N, (H-50)//S + 1, (W-50)//S + 1, 1]``.

    Raises:
        ValueError: ``name`` is not one of :func:`names`, or ``input_hw`` for a patch-only model.
    """
    info = _info(name)
    if input_hw is None:
        return info.builder(keras_module)
    if info.output_stride_px is None:
        raise ValueError(f"architecture {name!r} is patch-only (global pooling); it takes only 50x50 inputs")
    return info.builder(keras_module, tuple(input_hw))


def conv_macs(model) -> int:
    """Multiply-accumulates of the convolution and dense layers of a built Keras model, for its
    input shape (batch 1). Batch norm, activations and pooling are left out (a few % at most)."""
    total = 0
    for layer in model.layers:
        kind = type(layer).__name__
        if kind in ("Conv2D", "DepthwiseConv2D"):
            out_h, out_w = layer.output.shape[1:3]
            kh, kw = layer.kernel_size
            cin = layer.input.shape[-1]
            per_out = kh * kw * (cin if kind == "Conv2D" else 1)
            cout = layer.filters if kind == "Conv2D" else cin * layer.depth_multiplier
            total += int(out_h) * int(out_w) * per_out * int(cout)
        elif kind == "Dense":
            total += int(layer.input.shape[-1]) * int(layer.units)
    return total
