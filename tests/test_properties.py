"""Properties over random frame shapes, dtypes, memory layouts and tiling options (hypothesis).

Whatever a camera or file hands over, and whatever stride and scale a user picks: no crash
other than the documented :class:`~idc_edge.errors.FrameError`, every patch box inside the frame,
and results that are consistent and JSON-ready. The detector properties use the real interpreter
on a tiny real model.
"""
import json
import math
import os

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis", reason="property tests need hypothesis (the [test] extra)")
from hypothesis import HealthCheck, assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

from idc_edge.detector import Detector  # noqa: E402
from idc_edge.errors import FrameError  # noqa: E402
from idc_edge.frames import to_bgr8  # noqa: E402
from idc_edge.overlay import draw_overlay  # noqa: E402
from idc_edge.tiling import extract_patches, make_grid, pad_to, positions, rescaled_size  # noqa: E402

# CI runs hypothesis' default 100 examples (60 for the detector); hunt for more with e.g.
# IDC_EDGE_PROPERTY_EXAMPLES=2000 python -m pytest tests/test_properties.py
EXAMPLES = int(os.environ.get("IDC_EDGE_PROPERTY_EXAMPLES", "0")) or None
settings.register_profile("idc-edge", max_examples=EXAMPLES or 100, deadline=None)
settings.load_profile("idc-edge")

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")  # a per-frame numpy warning is a bug too

DTYPES = [np.uint8, np.uint16, np.int8, np.int16, np.int32, np.int64, np.uint32, np.float16, np.float32,
          np.float64, np.bool_]
scales = st.floats(min_value=0.02, max_value=12.0, allow_nan=False, allow_infinity=False)


# -- tiling ---------------------------------------------------------------------------------

@given(length=st.integers(1, 5000), patch=st.integers(1, 256), stride=st.integers(1, 400))
def test_positions_start_at_0_end_at_the_edge_and_never_leave_a_gap_wider_than_stride(length, patch, stride):
    p = positions(length, patch, stride)
    assert p[0] == 0 and p[-1] == max(0, length - patch)
    assert (np.diff(p) > 0).all() and (np.diff(p) <= stride).all()


@settings(deadline=None)
@given(h=st.integers(1, 4000), w=st.integers(1, 4000), patch=st.integers(8, 128), stride=st.integers(1, 300),
       scale=scales)
def test_grid_boxes_are_inside_the_frame_and_non_empty(h, w, patch, stride, scale):
    sw, sh = rescaled_size(w, h, scale)
    assume((max(sw - patch, 0) // stride + 2) * (max(sh - patch, 0) // stride + 2) <= 200_000)
    grid = make_grid((h, w), patch, stride, scale)
    ph, pw = grid.padded_shape
    sw, sh = rescaled_size(w, h, scale)
    assert ph == max(sh, patch) and pw == max(sw, patch)
    assert grid.ys[-1] + patch == ph and grid.xs[-1] + patch == pw  # the model-scale frame is covered
    boxes = grid.boxes()
    assert boxes.shape == (*grid.shape, 4) and boxes.dtype == np.int32
    x0, y0, x1, y1 = (boxes[..., i] for i in range(4))
    assert (x0 >= 0).all() and (y0 >= 0).all() and (x1 <= w).all() and (y1 <= h).all()
    assert (x0 < x1).all() and (y0 < y1).all()
    # the last row and column end exactly on the frame's far edges: every frame pixel is covered
    assert x1.max() == w and y1.max() == h


@settings(deadline=None)
@given(h=st.integers(1, 300), w=st.integers(1, 300), patch=st.integers(1, 64), stride=st.integers(1, 80),
       channels=st.sampled_from([1, 3]))
def test_extracted_patches_are_exactly_the_windows_of_the_padded_frame(h, w, patch, stride, channels):
    rng = np.random.default_rng(h * 1000 + w)
    image = rng.integers(0, 256, (h, w, channels), dtype=np.uint8)
    grid = make_grid((h, w), patch, stride, 1.0)
    padded = pad_to(image, grid.padded_shape)
    patches = extract_patches(padded, grid)
    assert patches.shape == (grid.size, patch, patch, channels) and patches.flags.c_contiguous
    for k in (0, grid.size // 2, grid.size - 1):
        r, c = divmod(k, len(grid.xs))
        y, x = grid.ys[r], grid.xs[c]
        np.testing.assert_array_equal(patches[k], padded[y:y + patch, x:x + patch])


# -- frames of any shape, dtype and layout ----------------------------------------------------

@st.composite
def any_frames(draw, max_side=64, broken=0.3):
    """Frames as cameras and files give them, in odd memory layouts; about ``broken`` of them
    unusable (no pixels, 2 or 5 channels, 1 or 4 dimensions)."""
    dtype = draw(st.sampled_from(DTYPES))
    bad = draw(st.floats(0, 1)) < broken
    side = st.one_of(st.integers(1, 8), st.integers(9, max_side), st.just(max_side))
    ndim = draw(st.sampled_from([1, 2, 3, 4] if bad else [2, 3, 3, 3]))
    if ndim == 2:
        shape = (draw(st.integers(0, 3) if bad else side), draw(side))
    elif ndim == 3:
        shape = (draw(side), draw(side), draw(st.sampled_from([0, 2, 5] if bad else [1, 3, 3, 4])))
    else:
        shape = tuple(draw(st.integers(1, 6)) for _ in range(ndim))
    frame = draw(hnp.arrays(dtype, shape, elements=hnp.from_dtype(np.dtype(dtype), allow_nan=True,
                                                                  allow_infinity=True)))
    layout = draw(st.sampled_from(["c", "fortran", "flipped", "strided"]))
    if layout == "fortran":
        frame = np.asfortranarray(frame)
    elif layout == "flipped" and frame.ndim >= 2:
        frame = frame[::-1, ::-1]
    elif layout == "strided" and frame.ndim == 3:
        frame = frame[:, :, ::-1]
    return frame


def _usable(frame) -> bool:
    return (isinstance(frame, np.ndarray) and frame.size > 0 and frame.ndim in (2, 3)
            and (frame.ndim == 2 or frame.shape[2] in (1, 3, 4)))


@given(frame=any_frames())
def test_to_bgr8_gives_contiguous_uint8_bgr_or_a_frame_error(frame):
    if not _usable(frame):
        with pytest.raises(FrameError):
            to_bgr8(frame)
        return
    out = to_bgr8(frame)
    assert out.dtype == np.uint8 and out.shape == (*frame.shape[:2], 3) and out.flags.c_contiguous


@given(frame=st.one_of(st.none(), st.text(max_size=3), st.integers(), st.lists(st.integers(0, 255), max_size=4),
                       st.just(np.zeros((3, 3), dtype=object)), st.just(np.zeros((3, 3), np.complex64))))
def test_to_bgr8_refuses_what_is_not_an_image_with_a_frame_error(frame):
    with pytest.raises(FrameError):
        to_bgr8(frame)


# -- the detector on random frames and options ----------------------------------------------

_detectors: dict = {}


def detector_for(model, um_per_px, stride, mask):
    key = (um_per_px, stride, mask)
    if key not in _detectors:
        _detectors[key] = Detector(model_path=str(model), um_per_px=um_per_px, stride=stride, tissue_mask=mask,
                                   threshold=0.5)
    return _detectors[key]


@pytest.fixture(scope="module", autouse=True)
def close_detectors():
    yield
    for d in _detectors.values():
        d.close()
    _detectors.clear()


@pytest.mark.filterwarnings("ignore:stride .* is larger than")
@settings(max_examples=EXAMPLES or 60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(frame=any_frames(max_side=160), um_per_px=st.sampled_from([None, 0.5, 1.0, 3.3, 8.0, 20.0]),
       stride=st.sampled_from([None, 7, 25, 50, 80]), mask=st.booleans())
def test_detect_on_any_frame_gives_consistent_results_inside_the_frame(tiny_int8, frame, um_per_px, stride, mask):
    det = detector_for(tiny_int8, um_per_px, stride, mask)
    if not _usable(frame):
        with pytest.raises(FrameError):
            det.detect(frame)
        return
    r = det.detect(frame, index=3, timestamp=1.0)
    h, w = frame.shape[:2]
    assert r.frame_shape == (h, w)
    assert r.probabilities.shape == r.tissue.shape == r.idc.shape == r.boxes.shape[:2]
    boxes = r.boxes.reshape(-1, 4)
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 1] >= 0).all()
    assert (boxes[:, 2] <= w).all() and (boxes[:, 3] <= h).all()
    assert (boxes[:, 0] < boxes[:, 2]).all() and (boxes[:, 1] < boxes[:, 3]).all()
    no_call = r.no_call if r.no_call is not None else np.zeros_like(r.tissue)
    probs = r.probabilities[r.tissue & ~no_call]  # no call (out of focus, badly exposed): not classified
    assert np.isfinite(probs).all() and ((probs >= 0) & (probs <= 1)).all()
    assert np.isnan(r.probabilities[no_call]).all() and not r.idc[no_call].any() and not no_call[~r.tissue].any()
    assert np.isnan(r.probabilities[~r.tissue]).all() and not r.idc[~r.tissue].any()
    assert 0.0 <= r.idc_fraction <= 1.0 and 0.0 <= r.tissue_fraction <= 1.0
    json.dumps(r.to_dict(), allow_nan=False)
    out = draw_overlay(to_bgr8(frame), r)
    assert out.shape == (h, w, 3) and out.dtype == np.uint8


# -- colour ---------------------------------------------------------------------------------

@given(values=hnp.arrays(np.uint8, st.tuples(st.integers(1, 30), st.integers(1, 30))), data=st.data())
def test_the_histogram_median_is_numpys_median(values, data):
    """The colour gate's median of the glass, read off a histogram, is exactly ``np.median``
    (the mean of the two middle values for an even count); NaN when nothing is selected."""
    from idc_edge.colour import histogram_median

    mask = data.draw(hnp.arrays(np.uint8, values.shape, elements=st.integers(0, 1)))
    got = histogram_median(values, mask)
    if not mask.any():
        assert np.isnan(got)
    else:
        assert got == np.median(values[mask.astype(bool)])


@given(image=hnp.arrays(np.uint8, st.tuples(st.integers(1, 40), st.integers(1, 40), st.integers(1, 3))))
def test_the_white_levels_are_the_brightest_hundredths_level_of_each_channel(image):
    """Read off a histogram, each channel's white level is the value at rank ceil(0.99 n) - 1 of
    its sorted pixels (the least level at or below which 99 % of them lie), as a sort gives it."""
    from idc_edge.colour import white_levels

    n = image.shape[0] * image.shape[1]
    want = [np.sort(image[..., c].ravel())[math.ceil(0.99 * n) - 1] for c in range(image.shape[2])]
    assert white_levels(image).tolist() == want


@given(mask=hnp.arrays(np.uint8, st.tuples(st.integers(2, 41), st.integers(2, 41)), elements=st.integers(0, 255)))
def test_the_halved_mask_lines_up_with_the_halved_image_for_odd_sizes_too(mask):
    """Each pixel of the half-size mask is the top-left pixel of the 2×2 block ``halved`` averages,
    whatever the size (a resize to the rounded-down size would pick drifting pixels on odd sizes)."""
    from idc_edge.colour import halved, halved_mask

    half = halved_mask(mask)
    assert half.shape == halved(np.dstack([mask] * 3)).shape[:2]
    assert np.array_equal(half, mask[: 2 * half.shape[0]: 2, : 2 * half.shape[1]: 2])
