"""idc-edge: live invasive ductal carcinoma (IDC) detection on breast histology, on the device.

The runtime needs numpy, OpenCV and a TFLite interpreter (ai-edge-litert); it never imports
TensorFlow.
"""

__version__ = "0.1.0"

from . import environment as _environment  # noqa: F401  (remembers the starting folder for relative paths)
from .errors import (CameraLostError, ClosedError, DatasetError, FrameError, IdcEdgeError, ModelError, OptionError,
                     PatchError, RecordError, SourceError, UsageError)

#: Public names imported on first use (PEP 562), not with the package: ``python -m idc_edge`` then
#: reaches its own Ctrl-C handling before numpy and OpenCV load, and a Ctrl-C while they load is
#: "interrupted", not a traceback.
_LAZY = {"PatchClassifier": "classifier", "Detector": "detector", "DetectorOptions": "detector",
         "OverlayStyle": "overlay", "draw_overlay": "overlay", "FrameResult": "results", "StageTimes": "results",
         "Frame": "sources", "open_source": "sources", "ModelSpec": "spec"}


def __getattr__(attr: str):
    if attr in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[attr]}", __name__), attr)
        globals()[attr] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")


__all__ = [
    "CameraLostError", "ClosedError", "DatasetError", "Detector", "DetectorOptions", "Frame", "FrameError",
    "FrameResult", "IdcEdgeError", "ModelError", "ModelSpec", "OptionError", "OverlayStyle", "PatchClassifier",
    "PatchError", "RecordError", "SourceError", "StageTimes", "UsageError", "draw_overlay", "open_source",
]
