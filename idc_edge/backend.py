"""Which TFLite interpreter is available: LiteRT first, then the legacy fall-backs.

``ai-edge-litert`` is the maintained interpreter (int8 through XNNPACK, wheels for Python
3.9–3.13 on aarch64). ``tflite_runtime`` and ``tensorflow.lite`` are used only when it is not
installed (for example JetPack 5's Python 3.8); TensorFlow is never imported otherwise.
"""
from __future__ import annotations

import contextlib
import importlib
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional, Union


@dataclass(frozen=True)
class Backend:
    """An interpreter class and where it came from (``name`` and ``version``)."""

    name: str
    version: str
    interpreter_class: type


def _version(module_name: str) -> str:
    try:
        from importlib.metadata import version

        return version(module_name)
    except Exception:  # metadata can be absent for vendored builds
        return "unknown"


@lru_cache(maxsize=1)
def get_backend() -> Backend:
    """The first interpreter found among ai-edge-litert, tflite_runtime and tensorflow.lite.

    Raises:
        IdcEdgeError: none of them is installed.
    """
    candidates = (
        ("ai-edge-litert", "ai_edge_litert.interpreter", "ai-edge-litert"),
        ("tflite-runtime", "tflite_runtime.interpreter", "tflite-runtime"),
        # Last resort only; imported by name so nothing pulls TensorFlow in by accident.
        ("tensorflow.lite", "tensorflow.lite.python.interpreter", "tensorflow"),
    )
    for name, module, dist in candidates:
        try:
            mod = importlib.import_module(module)
        except ImportError:
            continue
        return Backend(name, _version(dist), mod.Interpreter)
    from .errors import IdcEdgeError  # here, so the model check's child can load this file on its own

    raise IdcEdgeError("no TFLite interpreter is installed: run `pip install ai-edge-litert` "
                       "(or tflite-runtime on Python 3.8)")


_delegate_notice_silenced = False


@contextlib.contextmanager
def _quiet_first_interpreter():
    """Silence LiteRT's one "Created TensorFlow Lite XNNPACK delegate" line on stderr.

    LiteRT prints it once per process, when the first interpreter is made (for a run, while its
    classifier is created, before any streaming thread runs). Redirecting file descriptor 2 later
    would swallow other threads' messages, so it is done only this once.
    """
    global _delegate_notice_silenced
    if _delegate_notice_silenced:
        yield
        return
    _delegate_notice_silenced = True
    with _quiet_stderr():
        yield


@contextlib.contextmanager
def _quiet_stderr():
    """Silence C-level writes to stderr (file descriptor 2) for the duration."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _open_dims_filled(detail: dict, hw: list[int], size_px: int) -> list[int]:
    """``hw`` (height, width in pixels) with each dimension the input's shape signature leaves open
    (-1) set to ``size_px``."""
    signature = detail.get("shape_signature")
    if signature is None or len(signature) != 4:
        return hw
    return [size_px if int(signature[1 + k]) < 0 else hw[k] for k in range(2)]


def make_interpreter(model: Union[bytes, str, os.PathLike], *, num_threads: int = 1,
                     batch_size: Optional[int] = None, input_hw: Optional[tuple[int, int]] = None,
                     interpreter_class: Optional[type] = None, delegates: bool = True,
                     patch_px: Optional[int] = None):
    """A TFLite interpreter for ``model`` with its tensors allocated: the one place interpreters are made.

    Args:
        model: the ``.tflite`` file's bytes, or its path.
        num_threads: CPU threads the interpreter may use (>= 1).
        batch_size: when given and the model has one 4-D input, that input is resized to
            ``batch_size`` rows (patches) before allocation.
        input_hw: when given and the model has one 4-D input, its (height, width) in pixels are
            resized to this (a fully convolutional model run on a whole image).
        interpreter_class: the ``Interpreter`` class to use; the installed backend's
            (:func:`get_backend`) when None.
        delegates: False runs the built-in kernels only (no XNNPACK): slower, but every tensor's
            shape is then resolved at allocation (the delegate keeps the shapes inside its graph to
            itself), which counting a model's work needs.
        patch_px: when given and ``input_hw`` is not, an input height or width the model leaves open
            (-1 in its shape signature, a model saved for any image size) is set to this many
            pixels: LiteRT otherwise allocated it 1 px (an input of [1, 1, 1, 3]).

    Raises:
        IdcEdgeError: no interpreter is installed. The interpreter's own ``ValueError`` or
        ``RuntimeError`` for a model it cannot load is passed on for the caller to name the file.
    """
    cls = interpreter_class or get_backend().interpreter_class
    extra = {}
    if not delegates:
        resolver = getattr(importlib.import_module(cls.__module__), "OpResolverType", None)
        if resolver is not None:
            extra["experimental_op_resolver_type"] = resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    with _quiet_first_interpreter():  # LiteRT's delegate notice, printed while the first one is made
        if isinstance(model, (bytes, bytearray)):
            interp = cls(model_content=bytes(model), num_threads=num_threads, **extra)
        else:
            interp = cls(model_path=os.fspath(model), num_threads=num_threads, **extra)
        inputs = interp.get_input_details()
        if (batch_size is not None or input_hw is not None) and len(inputs) == 1:
            shape = [int(s) for s in inputs[0]["shape"]]
            if len(shape) == 4:
                hw = shape[1:3] if input_hw is None else [int(v) for v in input_hw]
                if input_hw is None and patch_px is not None:
                    hw = _open_dims_filled(inputs[0], hw, int(patch_px))
                wanted = [shape[0] if batch_size is None else batch_size, *hw, shape[3]]
                if wanted != shape:
                    interp.resize_tensor_input(inputs[0]["index"], wanted)
        interp.allocate_tensors()
    return interp
