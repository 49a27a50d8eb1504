"""The one set of option rules: every numeric type a caller may hold, booleans and text refused."""
import math

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis", reason="property tests need hypothesis (the [test] extra)")
from hypothesis import given, strategies as st  # noqa: E402

from idc_edge import validate  # noqa: E402
from idc_edge.errors import OptionError  # noqa: E402

INT_TYPES = (int, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64)
FLOAT_TYPES = (float, np.float16, np.float32, np.float64)


@given(st.integers(1, 127), st.sampled_from(INT_TYPES))
def test_whole_numbers_of_any_integer_type_come_back_as_int(n, kind):
    value = validate.whole_number("stride", kind(n))
    assert value == n and type(value) is int


@given(st.floats(allow_nan=True, allow_infinity=True, width=16), st.sampled_from(FLOAT_TYPES))
def test_positive_numbers_of_any_float_type_come_back_as_float_or_are_refused(x, kind):
    v = kind(x)
    if math.isfinite(float(v)) and float(v) > 0:
        out = validate.positive_number("um_per_px", v)
        assert out == float(v) and type(out) is float
    else:
        with pytest.raises(OptionError) as e:
            validate.positive_number("um_per_px", v)
        assert e.value.option == "um_per_px" and str(e.value).startswith("um_per_px must be > 0")


@pytest.mark.parametrize("bad", [True, np.bool_(False), "3", None, 2.5, np.float32(3.0), [3]])
def test_booleans_text_and_fractions_are_not_whole_numbers(bad):
    with pytest.raises(OptionError, match="stride must be a whole number"):
        validate.whole_number("stride", bad)


def test_messages_stay_short_whatever_value_was_given():
    with pytest.raises(OptionError) as e:
        validate.probability("threshold", "x" * 100_000)
    assert len(str(e.value)) < 200


def test_every_options_dataclass_takes_numpy_scalars_and_keeps_plain_numbers():
    from idc_edge.focus import ExposureOptions, FocusOptions
    from idc_edge.overlay import OverlayStyle
    from idc_edge.reuse import ReuseOptions
    from idc_edge.sources.camera_forms import parse_camera
    from idc_edge.sources.modes import CameraControls, CameraMode
    from idc_edge.tissue import TissueMaskOptions

    made = [OverlayStyle(alpha=np.float32(0.5), outline_px=np.int64(3)),
            FocusOptions(frame_threshold=np.float32(1.5), min_tissue_px=np.uint16(300), enabled=np.bool_(True)),
            ExposureOptions(min_white=np.uint8(90), max_clipped_fraction=np.float16(0.25)),
            ReuseOptions(max_mean_change=np.float32(3.0), cell_px=np.int8(5)),
            TissueMaskOptions(min_saturation=np.int32(30), min_fraction=np.float64(0.3)),
            CameraMode(np.int64(1920), np.int64(1080), np.float32(30.0)),
            CameraControls(exposure_us=np.float32(800.0), colour_gains_rb=(np.float32(1.5), np.float64(1.2)))]
    for options in made:
        for name, value in vars(options).items():
            assert not isinstance(value, np.generic), (type(options).__name__, name, type(value))
    assert parse_camera(np.int64(2)).address == 2
