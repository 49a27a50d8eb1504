"""The overlay a pathologist reads: colour map, benign tissue left unpainted, legend, scale bar,
status line led by the IDC area, no-call regions; real detector (committed tiny model), real frames."""
import dataclasses

import cv2
import numpy as np
import pytest

from conftest import frame_with_blob
from idc_edge.detector import Detector
from idc_edge.overlay import (NO_CALL_BGR, OverlayInfo, OverlayStyle, colour_table, draw_overlay, nice_length_um,
                              status_text)


@pytest.fixture(scope="module")
def scene(tiny_int8):
    frame = frame_with_blob(shape=(480, 640), box=(100, 100, 400, 300))
    with Detector(model_path=str(tiny_int8)) as det:
        return frame, det.detect(frame)


def test_the_colour_map_is_ordered_in_lightness_for_colour_blind_readers():
    lab = cv2.cvtColor(colour_table()[None], cv2.COLOR_BGR2LAB)[0].astype(int)
    assert np.all(np.diff(lab[:, 0]) >= -1) and lab[255, 0] - lab[0, 0] > 100  # dark → light (±1: 8-bit rounding)
    b, g, r = colour_table()[255]
    assert r > 200 and g > 200 and b < 80  # high probability is yellow, not red/green


def test_benign_tissue_keeps_its_colours_and_idc_is_painted_and_outlined(scene):
    frame, r = scene
    low = dataclasses.replace(r, probabilities=np.where(r.tissue, 0.1, np.nan).astype(np.float32),
                              idc=np.zeros_like(r.idc))
    out = draw_overlay(frame, low, OverlayStyle(legend=False, status=False))
    assert np.array_equal(out, frame)  # everything below show_below: not one pixel changed
    out = draw_overlay(frame, r, OverlayStyle(legend=False, status=False))
    diff = np.abs(out.astype(int) - frame.astype(int)).sum(axis=2)
    assert diff[150:250, 150:350].mean() > 20 and diff[400:, :].max() == 0


def test_legend_scale_bar_and_status_line(scene):
    frame, r = scene
    info = OverlayInfo(um_per_px=4.0, cell_um=200.0, model_name="tiny")
    text = status_text(r, 12.5, info)
    assert text.startswith(f"IDC {r.n_idc * 0.04:.2f} mm² (") and "% of tissue)" in text
    assert " · tiny · research use only · 12.5 fps" in text
    bare = draw_overlay(frame, r, OverlayStyle(legend=False, status=False), info=info)
    full = draw_overlay(frame, r, fps=12.5, info=info)
    changed = np.abs(full.astype(int) - bare.astype(int)).sum(axis=2) > 0
    assert changed[:20].mean() > 0.9                       # the status band across the top
    assert changed[-60:, -300:].mean() > 0.5               # the legend in the bottom-right corner
    assert nice_length_um(4.0, 91) == 200 and nice_length_um(1.0, 150) == 100


def test_no_call_regions_are_grey_and_an_out_of_focus_frame_says_so(scene):
    frame, r = scene
    no_call = np.zeros_like(r.tissue)
    no_call[:, :3] = True
    blurred = dataclasses.replace(r, no_call=no_call, in_focus=False, idc=r.idc & ~no_call)
    out = draw_overlay(frame, blurred, OverlayStyle(legend=False, status=False, alpha=1.0))
    x0, y0, x1, y1 = r.boxes[1, 0]
    assert np.all(out[y0 + 5, x0 + 5] == NO_CALL_BGR)
    assert status_text(blurred).startswith("OUT OF FOCUS: no call")


def test_a_downscaled_copy_can_be_drawn_on(scene):
    frame, r = scene
    small = cv2.resize(frame, (320, 240), interpolation=cv2.INTER_AREA)
    out = draw_overlay(small, r)
    assert out.shape == (240, 320, 3) and np.abs(out.astype(int) - small.astype(int)).sum() > 0


@pytest.mark.parametrize("um_per_px", [None, 1.0])
def test_the_no_call_key_never_overlaps_the_threshold_label(um_per_px):
    """The legend's "grey: no call" key has a row of its own, below every white label (the threshold
    under the colour bar, the scale bar's length), with or without a scale bar."""
    from idc_edge.overlay import NO_CALL_BGR, _legend

    patch, _ = _legend(1280, 720, 0.32, 0.0, um_per_px, True)
    white = np.all(patch >= 200, axis=2)
    # the key's own pixels: its exact colour, away from the anti-aliased edges of white text
    near_white = cv2.dilate(white.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    key = np.all(patch == NO_CALL_BGR, axis=2) & ~near_white
    rows = np.flatnonzero(key.any(axis=1))
    assert rows.size  # the key is drawn
    assert rows.min() > np.flatnonzero(white.any(axis=1)).max()


def test_the_frame_rate_is_not_drawn_over_the_status_line_of_a_narrow_frame(tiny_int8):
    # a narrow frame's status line ("NOISY: no call (...) · model · research use only") reached the
    # top-right corner, and "12.5 fps" was drawn over its last words
    info = OverlayInfo(um_per_px=4.0, cell_um=200.0, model_name="a model with a long name")
    for width, shown in ((400, False), (1600, True)):
        wide = frame_with_blob(shape=(300, width), box=(50, 50, 250, 250))
        with Detector(model_path=str(tiny_int8)) as det:
            r = det.detect(wide)
        bare = draw_overlay(wide, r, info=info)
        with_fps = draw_overlay(wide, r, fps=12.5, info=info)
        assert (not np.array_equal(bare, with_fps)) == shown, width


def test_a_long_status_line_is_made_smaller_to_end_inside_a_narrow_frame(tiny_int8):
    # "NO COLOUR: no call (a monochrome camera or grey mode? use its colour mode) · research use only" ran off
    # the right edge of a 500 px frame: the advice and "research use only" were cut
    import warnings

    grey = cv2.cvtColor(cv2.cvtColor(frame_with_blob(shape=(300, 500), box=(50, 50, 250, 250)), cv2.COLOR_BGR2GRAY),
                        cv2.COLOR_GRAY2BGR)
    with Detector(model_path=str(tiny_int8)) as det, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = det.detect(grey)
    assert r.no_colour
    drawn = draw_overlay(grey, r)
    band = drawn[:12]                                   # the status band's top rows hold the text
    text = band.min(axis=2) > 180                       # white letters on the dark red band
    columns = np.flatnonzero(text.any(axis=0))
    assert columns.size and columns.max() < 500 - 4, columns.max()
