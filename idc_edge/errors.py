"""Typed exceptions of idc-edge.

Every error a user can cause derives from :class:`IdcEdgeError`; its message names what was
wrong and what to do. The command line prints that message on one line and exits with 2.

Messages name options as the Python API spells them, never as command-line flags: an option or
argument name (``um_per_px``), a keyword with a value (``camera=1``, ``dense=False``) or a sink
class (``LiveView``). The error's ``options`` lists how it names them, so a front end can put them
in its own words without guessing at prose (:func:`idc_edge.cli.options.in_cli_words` turns them
into ``--um-per-px``, ``--camera 1``, ``--no-dense``, ``--serve``). An entry is one of:

- ``"name"``: every whole-word occurrence of ``name`` in the message is that option, also as
  ``name=VALUE``;
- ``"name="``: only the form ``name=VALUE`` is (the bare word is plain prose, "camera");
- any other text (``"dense=False"``, ``"LiveView at"``): that exact text is.

A message never shows a camera URL's secrets: every text argument passes through
:func:`idc_edge.redact.redact_url` (``rtsp://u:***@cam/x?password=***``), whichever path raised it.
"""
from typing import Iterable, Optional

from .redact import redact_url


class IdcEdgeError(Exception):
    """Base class of every error idc-edge raises on purpose.

    Attributes:
        options: the option names the message uses, as the Python API spells them (see the module
            docstring); empty when it names none.
    """

    def __init__(self, *args, options: Iterable[str] = ()):
        super().__init__(*(redact_url(a) if isinstance(a, str) else a for a in args))
        self.options = tuple(options)


class OptionError(IdcEdgeError, ValueError):
    """An option value is out of range or of the wrong kind.

    ``option`` names the option at fault as the library spells it (``"stride"``, ``"num_threads"``)
    when the message starts with that name; ``options`` (see :class:`IdcEdgeError`) lists the names
    used further on, e.g. ``OptionError("stride 23 px ...; or run it patch by patch (dense=False)",
    options=["dense=False"])``.
    """

    def __init__(self, message: str, option: Optional[str] = None, *, options: Iterable[str] = ()):
        super().__init__(message, options=options)
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
