"""The detector end to end on real frames with the real interpreter."""
import cv2
import numpy as np
import pytest

from conftest import frame_with_blob
from idc_edge.detector import Detector, DetectorOptions
from idc_edge.errors import ClosedError, FrameError, IdcEdgeError, OptionError, PatchError
from idc_edge.focus import ColourOptions
from idc_edge.overlay import draw_overlay, status_text
from tiny_model import PINK, PURPLE, synthetic_patches


@pytest.fixture
def detector(tiny_int8):
    with Detector(model_path=str(tiny_int8)) as det:
        yield det


def test_detect_finds_the_idc_region_and_ignores_background(detector):
    frame = frame_with_blob(box=(100, 100, 400, 300))
    r = detector.detect(frame, index=7, timestamp=1.5)
    assert r.index == 7 and r.timestamp == 1.5 and r.frame_shape == (480, 640)
    assert r.probabilities.shape == r.tissue.shape == r.idc.shape == (10, 13)
    assert np.isnan(r.probabilities[~r.tissue]).all() and not r.idc[~r.tissue].any()
    boxes = r.boxes[r.idc]
    assert len(boxes) >= 12
    # every IDC patch lies on the purple rectangle (boxes overlap it by most of their area)
    for x0, y0, x1, y1 in boxes:
        inter = max(0, min(x1, 400) - max(x0, 100)) * max(0, min(y1, 300) - max(y0, 100))
        assert inter >= 0.2 * (x1 - x0) * (y1 - y0)
    assert 0 < r.idc_fraction <= 1 and 0 < r.tissue_fraction < 1
    assert set(r.times.to_dict()) == {"prepare", "mask", "tiling", "invoke", "post", "total"}


def test_pink_tissue_is_tissue_but_not_idc(detector):
    r = detector.detect(frame_with_blob(blob_rgb=PINK, box=(0, 0, 640, 480)))
    assert r.tissue.all() and not r.idc.any()


def test_detect_takes_bgr_frames_and_feeds_the_model_rgb(detector):
    x, _ = synthetic_patches(8, seed=9)
    expected = detector.classify_patches(x)
    for patch, p in zip(x, expected):
        r = detector.detect(cv2.cvtColor(patch, cv2.COLOR_RGB2BGR))
        assert r.probabilities.shape == (1, 1)
        assert r.probabilities[0, 0] == pytest.approx(p, abs=1e-6)


def test_rescaling_maps_patches_to_the_models_microns(tiny_int8):
    with Detector(model_path=str(tiny_int8), um_per_px=1.0, stride=25) as det:
        r = det.detect(frame_with_blob(shape=(1080, 1920), box=(400, 200, 1600, 900)))
    # 1 µm/px frame → 4 µm/px: 480×270 model pixels, stride 25 → 10×19 patches of 200×200 frame px
    assert r.probabilities.shape == (10, 19)
    assert (r.boxes[..., 2] - r.boxes[..., 0]).max() == 200
    assert r.idc.any()


def test_grayscale_bgra_and_16_bit_frames_are_converted(detector):
    bgr = frame_with_blob()
    for frame in (cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA),
                  bgr.astype(np.uint16) * 257):
        r = detector.detect(frame)
        assert r.frame_shape == (480, 640)
    r16 = detector.detect(bgr.astype(np.uint16) * 257)
    np.testing.assert_array_equal(r16.idc, detector.detect(bgr).idc)


@pytest.mark.parametrize("frame", [None, np.zeros((0, 0, 3), np.uint8), np.zeros((10, 10, 5), np.uint8), "x"])
def test_detect_fails_with_unusable_frames(detector, frame):
    with pytest.raises(FrameError):
        detector.detect(frame)


def test_frames_smaller_than_a_patch_give_one_padded_patch(detector):
    r = detector.detect(frame_with_blob(shape=(20, 30), box=(0, 0, 30, 20)))
    assert r.probabilities.shape == (1, 1)
    assert r.boxes[0, 0].tolist() == [0, 0, 30, 20]


def test_threshold_option_overrides_the_sidecar(tiny_int8):
    frame = frame_with_blob()
    with Detector(model_path=str(tiny_int8), threshold=1.0) as det:
        assert det.threshold == 1.0 and not det.detect(frame).idc.any()
    with Detector(model_path=str(tiny_int8), threshold=0.0) as det:
        r = det.detect(frame)
        assert r.idc[r.tissue].all()


def test_no_mask_classifies_every_patch(tiny_int8):
    with Detector(model_path=str(tiny_int8), tissue_mask=False) as det:
        r = det.detect(frame_with_blob())
    assert r.tissue.all() and not np.isnan(r.probabilities).any()


@pytest.mark.parametrize("kwargs,match", [
    ({"stride": 0}, "stride"), ({"stride": -3}, "stride"), ({"stride": 2.5}, "stride"), ({"stride": True}, "stride"),
    ({"um_per_px": 0.0}, "um_per_px"), ({"um_per_px": -1.0}, "um_per_px"), ({"um_per_px": float("nan")}, "um_per_px"),
    ({"um_per_px": float("inf")}, "um_per_px"), ({"um_per_px": "1"}, "um_per_px"),
    ({"threshold": 1.2}, "threshold"), ({"threshold": float("nan")}, "threshold"), ({"num_threads": 0}, "threads"),
    ({"num_threads": 10**6}, "threads"), ({"max_batch": 48}, "power of two"), ({"reuse": "yes"}, "reuse"),
])
def test_options_fail_with_out_of_range_values(kwargs, match):
    with pytest.raises(OptionError, match=match) as e:
        DetectorOptions(**kwargs)
    assert e.value.option == next(iter(kwargs)) and str(e.value).startswith(e.value.option)
    assert "--" not in str(e.value)  # library errors name the option, not a command-line flag


def test_numpy_scalars_are_accepted_as_options_and_stored_as_plain_numbers(tiny_int8):
    o = DetectorOptions(model_path=str(tiny_int8), um_per_px=np.float32(1.0), stride=np.int64(25),
                        threshold=np.float64(0.4), num_threads=np.int32(1), max_batch=np.uint8(32), reuse=np.bool_(False))
    assert (o.um_per_px, o.stride, o.threshold, o.num_threads, o.max_batch, o.reuse) == (1.0, 25, 0.4, 1, 32, False)
    assert all(type(v) in (int, float, bool) for v in (o.um_per_px, o.stride, o.threshold, o.num_threads, o.reuse))
    with Detector(o) as det:
        assert det.stride == 25 and det.detect(frame_with_blob()).n_patches > 0


def test_thousands_of_threads_are_refused_before_any_interpreter_starts(tiny_int8):
    import threading

    from idc_edge.classifier import PatchClassifier
    from idc_edge.validate import max_threads

    before = threading.active_count()
    for make in (lambda: DetectorOptions(model_path=str(tiny_int8), num_threads=1000),
                 lambda: PatchClassifier(tiny_int8, num_threads=1000)):
        with pytest.raises(OptionError, match=f"num_threads must be <= {max_threads()} .*per CPU core"):
            make()
    assert threading.active_count() == before
    with Detector(model_path=str(tiny_int8), num_threads=max_threads()) as det:  # the limit itself is allowed
        det.detect(frame_with_blob())


def test_unknown_option_fails(tiny_int8):
    with pytest.raises(OptionError, match="unknown detector option"):
        Detector(model_path=str(tiny_int8), strid=3)


def test_stride_larger_than_a_patch_warns(tiny_int8):
    with pytest.warns(UserWarning, match="never classified"):
        Detector(model_path=str(tiny_int8), stride=80).close()


def test_stream_yields_results_in_order_and_two_streams_do_not_interfere(detector):
    frames = [frame_with_blob(box=(0, 0, 50 * (i + 1), 100)) for i in range(4)]
    a = detector.stream(frames)
    b = detector.stream(frames)
    ra = [next(a), next(a)]
    rb = list(b)
    ra += list(a)
    assert [r.index for r in ra] == [r.index for r in rb] == [0, 1, 2, 3]
    for x, y in zip(ra, rb):
        np.testing.assert_array_equal(x.idc, y.idc)
    assert ra[0].image is frames[0]


def test_overlay_paints_tissue_outlines_idc_and_leaves_background(detector):
    frame = frame_with_blob(box=(100, 100, 400, 300))
    r = detector.detect(frame)
    out = draw_overlay(frame, r, fps=12.5)
    assert out.shape == frame.shape and out is not frame
    diff = np.abs(out.astype(int) - frame.astype(int)).sum(axis=2)
    assert diff[150:250, 150:350].mean() > 20          # heat map over the IDC region
    assert diff[400:, :300].max() == 0                  # background untouched (the legend is bottom right)
    black = (out.max(axis=2) < 20) & (frame.max(axis=2) > 60)
    assert black[80:320, 80:420].sum() > 200            # black outline around the region
    assert status_text(r, 12.5).startswith("IDC ") and status_text(r, 12.5).endswith("12.5 fps")


def test_overlay_fails_with_a_frame_of_another_size(detector):
    r = detector.detect(frame_with_blob())
    with pytest.raises(FrameError, match="result is for 640×480"):
        draw_overlay(np.zeros((10, 10, 3), np.uint8), r)


def test_record_is_json_ready(detector):
    import json

    r = detector.detect(frame_with_blob())
    rec = json.loads(json.dumps(r.to_dict()))
    assert rec["idc_patches"] == len(rec["idc_boxes"]) == len(rec["idc_scores"]) == r.n_idc
    assert rec["tissue_patches"] == r.n_tissue


def test_a_closed_detector_refuses_every_call_and_closes_twice(tiny_int8):
    det = Detector(model_path=str(tiny_int8))
    frame = frame_with_blob()
    det.detect(frame)
    det.close()
    det.close()
    blank = np.full((100, 100, 3), 250, np.uint8)  # no tissue: would not even reach the model
    x, _ = synthetic_patches(2)
    for call in (lambda: det.detect(frame), lambda: det.detect(blank), lambda: next(det.stream([frame])),
                 lambda: det.classify_patches(x)):
        with pytest.raises(ClosedError, match="closed"):
            call()


def test_classify_patches_fails_with_a_typed_error(detector):
    with pytest.raises(PatchError, match=r"uint8 RGB \[N, 50, 50, 3\]") as e:
        detector.classify_patches(np.zeros((1, 50, 50), np.uint8))
    assert isinstance(e.value, IdcEdgeError)


def test_the_tissue_mask_is_its_definition_saturation_and_value_at_least_their_minimums():
    from idc_edge.tissue import TissueMaskOptions, tissue_pixels

    rng = np.random.default_rng(5)
    rgb = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    for s, v in ((20, 40), (0, 0), (255, 255), (1, 254)):
        expected = ((hsv[..., 1] >= s) & (hsv[..., 2] >= v)).astype(np.uint8)
        got = tissue_pixels(rgb, TissueMaskOptions(min_saturation=s, min_value=v))
        assert got.dtype == np.uint8 and np.array_equal(got, expected), (s, v)


def test_grey_frames_of_tissue_say_they_have_no_colour_once_and_blank_glass_does_not(recwarn):
    from idc_edge.bench import synthetic_slide

    slide = synthetic_slide(300, 400, seed=2)
    grey = cv2.cvtColor(slide, cv2.COLOR_BGR2GRAY)  # a monochrome camera: [H, W] frames
    glass = np.full((300, 400), 238, np.uint8)
    with Detector() as det:
        assert det.detect(slide).n_tissue > 0 and not [w for w in recwarn if "no colour" in str(w.message)]
        assert det.detect(glass).n_tissue == 0 and not [w for w in recwarn if "no colour" in str(w.message)]
        for frame in (grey, np.dstack([grey] * 3)):  # grey as one channel, or copied into B, G and R
            r = det.detect(frame)
            assert r.n_tissue == 0 and r.n_idc == 0
        said = [str(w.message) for w in recwarn if "no colour" in str(w.message)]
        assert len(said) == 1 and "monochrome" in said[0]
    recwarn.clear()
    with Detector(tissue_mask=False) as det:  # every window is tissue, and the colour gate makes each no call
        det.detect(slide)
        assert not [w for w in recwarn if "no colour" in str(w.message)]
        r = det.detect(grey)
        assert r.n_tissue > 0 and r.n_no_call == r.n_tissue and r.n_idc == 0
        said = [str(w.message) for w in recwarn if "no colour" in str(w.message)]
        assert len(said) == 1 and "nothing in them is called" in said[0]  # not "scored anyway" (it said so)
    recwarn.clear()
    with Detector(tissue_mask=False, colour=ColourOptions(enabled=False)) as det:  # nothing stops a window
        r = det.detect(grey)
        assert r.n_no_call == 0 and r.n_tissue > 0
        said = [str(w.message) for w in recwarn if "no colour" in str(w.message)]
        assert len(said) == 1 and "scores mean nothing" in said[0]


def test_a_model_path_as_the_first_argument_is_refused_naming_model_path(tiny_int8):
    with pytest.raises(OptionError, match=r"Detector\(model_path=\.\.\.\)"):
        Detector(str(tiny_int8))
    with Detector(DetectorOptions(model_path=str(tiny_int8))) as det:  # the options object still works
        assert det.options.model_path == str(tiny_int8)


def test_stream_refuses_one_image_instead_of_streaming_its_rows(detector):
    frame = frame_with_blob()
    with pytest.raises(FrameError, match=r"detect\(frame\)"):
        detector.stream(frame)  # refused when called, before any result
    with pytest.raises(OptionError, match="iterable of frames"):
        detector.stream(5)
    results = list(detector.stream([frame, frame]))  # a list of frames is a stream
    assert [r.index for r in results] == [0, 1] and results[0].n_tissue > 0
