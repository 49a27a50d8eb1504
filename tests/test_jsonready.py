"""The one JSON cleaner and timestamp every written file uses."""
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from idc_edge.jsonready import dumps, json_ready, utc_now
from idc_edge.metrics import binary_metrics


@dataclass
class _Row:
    name: str
    value: float


def test_json_ready_turns_every_kind_of_value_into_strict_json():
    value = {"nan": float("nan"), "inf": -math.inf, "np": np.float32(0.25), "int": np.int64(3), "bool": np.bool_(True),
             "arr": np.array([[1, 2]]), "path": Path("/a/b"), "tuple": (1, (2, 3)), 4: "key", "row": _Row("x", math.nan)}
    out = json_ready(value)
    assert out == {"nan": None, "inf": None, "np": 0.25, "int": 3, "bool": True, "arr": [[1, 2]], "path": "/a/b",
                   "tuple": [1, [2, 3]], "4": "key", "row": {"name": "x", "value": None}}
    assert type(out["int"]) is int and type(out["bool"]) is bool
    assert json.loads(dumps(value)) == out
    with pytest.raises(TypeError, match="object is not JSON-ready"):
        json_ready(object())


def test_objects_written_as_json_say_so_with_to_dict():
    m = binary_metrics([0, 1, 1], [0.1, 0.2, 0.9], 0.5)
    assert json.loads(dumps(m)) == json_ready(m.to_dict())


def test_utc_now_is_iso_8601_in_utc():
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", utc_now())
