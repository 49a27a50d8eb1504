"""Work of a model call: multiply-accumulates (MACs) read from a ``.tflite`` model's own ops.

A MAC is one multiply and one add of a convolution, depthwise convolution or fully connected
layer; these layers are nearly all of a CNN's arithmetic (pooling, activations, quantize ops and
adds are left out and listed as such). The count is taken from the interpreter of the model
allocated at the input size in question, so it is what LiteRT actually runs: for a dense pass
the input is resized to the whole image first.

:func:`count_macs` is the pure arithmetic on op and tensor shapes; :func:`model_macs` reads them
from an interpreter. The detector uses them to run each dense pass only where it costs fewer MACs
than classifying that pass's windows as patches; the benchmarks report them per frame.
"""
from __future__ import annotations

from typing import Mapping, Optional, Sequence

import numpy as np

from .backend import make_interpreter

#: Ops whose multiply-accumulates are counted.
COUNTED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def count_macs(ops: Sequence[Mapping], shapes: Mapping[int, Sequence[int]]) -> dict[str, int]:
    """Multiply-accumulates per op type of one model call.

    Args:
        ops: the model's ops as LiteRT lists them (``op_name``, ``inputs``, ``outputs`` tensor
            indices), e.g. ``interpreter._get_ops_details()``.
        shapes: tensor index → shape, after the input was resized and tensors allocated.

    Returns:
        op name → MACs, for ``CONV_2D`` (output elements × kernel height × width × input
        channels), ``DEPTHWISE_CONV_2D`` (output elements × kernel height × width) and
        ``FULLY_CONNECTED`` (output rows × output units × input units); ops of other types are
        counted under ``"other ops"`` by number, not MACs.
    """
    out: dict[str, int] = {name: 0 for name in COUNTED_OPS}
    other = 0
    for op in ops:
        name = op["op_name"]
        if name not in COUNTED_OPS:
            other += 1
            continue
        weights = [int(v) for v in shapes[int(op["inputs"][1])]]
        result = [int(v) for v in shapes[int(op["outputs"][0])]]
        if name == "CONV_2D":        # weights [Cout, kh, kw, Cin], output [N, oh, ow, Cout]
            out[name] += int(np.prod(result, dtype=np.int64)) * weights[1] * weights[2] * weights[3]
        elif name == "DEPTHWISE_CONV_2D":   # weights [1, kh, kw, Cout]
            out[name] += int(np.prod(result, dtype=np.int64)) * weights[1] * weights[2]
        else:                        # weights [units, inputs], output [..., units]
            out[name] += int(np.prod(result, dtype=np.int64)) * weights[1]
    out["other ops"] = other
    return out


def total_macs(per_op: Mapping[str, int]) -> int:
    """The MACs of a :func:`count_macs` result (the op count of other ops left out)."""
    return int(sum(v for k, v in per_op.items() if k in COUNTED_OPS))


def model_macs(model: bytes | str, input_hw: Optional[tuple[int, int]] = None, batch: int = 1) -> int:
    """MACs of one call of ``model`` (bytes or path) on ``batch`` images of ``input_hw`` (height,
    width in pixels; None keeps the model's own input size)."""
    interp = make_interpreter(model, batch_size=batch, input_hw=input_hw, delegates=False)
    shapes = {int(t["index"]): tuple(int(v) for v in t["shape"]) for t in interp.get_tensor_details()}
    return total_macs(count_macs(interp._get_ops_details(), shapes))
