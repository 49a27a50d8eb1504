"""Which TFLite interpreter is available: LiteRT first, then the legacy fall-backs.

``ai-edge-litert`` is the maintained interpreter (int8 through XNNPACK, wheels for Python
3.9–3.13 on aarch64). ``tflite_runtime`` and ``tensorflow.lite`` are used only when it is not
installed (for example JetPack 5's Python 3.8); TensorFlow is never imported otherwise.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import lru_cache

from .errors import IdcEdgeError


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
    raise IdcEdgeError("no TFLite interpreter is installed: run `pip install ai-edge-litert` "
                       "(or tflite-runtime on Python 3.8)")
