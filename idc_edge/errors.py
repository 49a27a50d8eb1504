"""Typed exceptions of idc-edge.

Every error a user can cause derives from :class:`IdcEdgeError`; its message names what was
wrong and what to do. The command line prints that message on one line and exits with 2.
"""


class IdcEdgeError(Exception):
    """Base class of every error idc-edge raises on purpose."""


class OptionError(IdcEdgeError, ValueError):
    """An option value is out of range or of the wrong kind.

    ``option`` names the option as the library spells it (``"stride"``, ``"num_threads"``) when the
    message starts with that name; the command line then says ``--stride``/``--threads`` instead.
    """

    def __init__(self, message: str, option: "str | None" = None):
        super().__init__(message)
        self.option = option


class ModelError(IdcEdgeError):
    """A model file or its sidecar is missing, malformed or does not fit the model contract."""


class SourceError(IdcEdgeError):
    """A frame source (camera, video, image, folder) cannot be opened or read."""


class CameraLostError(SourceError):
    """A live camera stopped delivering frames and did not come back in time."""


class DatasetError(IdcEdgeError):
    """A folder is not in the data set's layout, or a split leaves a class empty."""


class RecordError(IdcEdgeError):
    """Results could not be written (for example, the disk is full)."""


class PatchError(IdcEdgeError, ValueError):
    """Patches handed to a classifier have the wrong type, dtype or shape."""


class ClosedError(IdcEdgeError):
    """A detector or classifier was used after ``close()``; make a new one."""


class FrameError(SourceError):
    """One frame cannot be used (empty, wrong type or shape); streams skip and count it."""


class UsageError(IdcEdgeError):
    """The command line itself is wrong (unknown option, bad value)."""


class MemoryBudgetError(IdcEdgeError):
    """A buffer would exceed the memory budget (``$IDC_EDGE_MEMORY_MB``); the message says what to change."""
