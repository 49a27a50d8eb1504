"""idc-edge: live invasive ductal carcinoma (IDC) detection on breast histology, on the device.

The runtime needs numpy, OpenCV and a TFLite interpreter (ai-edge-litert); it never imports
TensorFlow.
"""

__version__ = "0.1.0"

from .classifier import PatchClassifier
from .detector import Detector, DetectorOptions
from .errors import (CameraLostError, ClosedError, DatasetError, FrameError, IdcEdgeError, ModelError, OptionError,
                     PatchError, RecordError, SourceError, UsageError)
from .overlay import OverlayStyle, draw_overlay
from .results import FrameResult, StageTimes
from .sources import Frame, open_source
from .spec import ModelSpec

__all__ = [
    "CameraLostError", "ClosedError", "DatasetError", "Detector", "DetectorOptions", "Frame", "FrameError",
    "FrameResult", "IdcEdgeError", "ModelError", "ModelSpec", "OptionError", "OverlayStyle", "PatchClassifier",
    "PatchError", "RecordError", "SourceError", "StageTimes", "UsageError", "draw_overlay", "open_source",
]
