"""JSON-ready values and timestamps: the one way every file and line idc-edge writes is made.

Objects that are written as JSON have a ``to_dict()`` method returning JSON-ready values;
:func:`json_ready` makes anything else JSON-ready, and :func:`dumps` writes strict JSON (no
``NaN``, which many readers reject). :func:`utc_now` is the timestamp every record carries.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from typing import Any

import numpy as np


def json_ready(value: Any) -> Any:
    """``value`` with every part JSON can hold: NaN and ±inf become None, numpy scalars and arrays
    become Python numbers and lists, paths strings, tuples lists, dict keys strings, and objects
    with ``to_dict()`` (or dataclasses) dicts."""
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, np.generic):
        return json_ready(value.item())
    if isinstance(value, np.ndarray):
        return json_ready(value.tolist())
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_ready(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if callable(getattr(value, "to_dict", None)):
        return json_ready(value.to_dict())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return json_ready(dataclasses.asdict(value))
    raise TypeError(f"{type(value).__name__} is not JSON-ready")


def dumps(value: Any, **kwargs) -> str:
    """``value`` as strict JSON text (see :func:`json_ready`); ``kwargs`` go to :func:`json.dumps`."""
    return json.dumps(json_ready(value), allow_nan=False, **kwargs)


def utc_now() -> str:
    """The current time in UTC as ISO 8601 to the second, e.g. ``"2026-11-28T06:22:57Z"``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class RepeatedKey(ValueError):
    """A JSON object gives ``key`` twice; :func:`json.loads` alone keeps the last without a word."""

    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def unique_keys(pairs: list) -> dict:
    """``json.loads``'s ``object_pairs_hook`` for files a person may have edited (results files, model
    sidecars): the object as a dict, raising :class:`RepeatedKey` for a key given twice, where which
    value counts is not known."""
    record = dict(pairs)
    if len(record) != len(pairs):
        seen: set = set()
        raise RepeatedKey(next(k for k, _ in pairs if k in seen or seen.add(k)))
    return record
