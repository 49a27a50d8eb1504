"""Camera sources: modes asked and granted, Picamera2, GStreamer, network forms, listing, and --camera parsing.

No camera exists on CI, so the V4L2 device and Picamera2 are stand-ins written from their documented
behaviour (said at each); everything OpenCV can do without hardware is real: a cv2.VideoCapture on a
real video file, and a real GStreamer pipeline (videotestsrc) where an OpenCV with GStreamer exists.
"""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest

from idc_edge.errors import CameraLostError, OptionError, SourceError
from idc_edge.sources import CameraControls, CameraMode, CameraSource, open_source, parse_camera
from idc_edge.sources.discover import list_picameras, list_v4l2, parse_v4l2_formats
from idc_edge.sources.gstreamer import jetson_pipeline, opencv_has_gstreamer, with_appsink
from test_cli import idc_edge

ROOT = Path(__file__).resolve().parents[1]


class V4l2StandIn:
    """A V4L2 device as OpenCV's V4L2 backend presents it (stand-in: no camera here).

    It offers a fixed list of (fourcc, width, height, fps); ``set`` records every request in order
    and, like the driver's VIDIOC_S_FMT, settles on the offered mode closest to what was asked
    (the format first, then the size, then the rate); ``get`` reports the settled mode and ``read``
    gives frames of that size.
    """

    def __init__(self, offers, default=0):
        self.offers = offers
        self.fourcc, self.width, self.height, self.fps = offers[default]
        self.sets = []
        self.released = False

    def isOpened(self):
        return True

    def set(self, prop, value):
        self.sets.append((prop, value))
        if prop == cv2.CAP_PROP_FOURCC:
            code = "".join(chr((int(value) >> (8 * i)) & 0xFF) for i in range(4))
            if not any(o[0] == code for o in self.offers):
                return False
            self.fourcc = code
        elif prop in (cv2.CAP_PROP_FRAME_WIDTH, cv2.CAP_PROP_FRAME_HEIGHT):
            want_w = value if prop == cv2.CAP_PROP_FRAME_WIDTH else self.width
            want_h = value if prop == cv2.CAP_PROP_FRAME_HEIGHT else self.height
            same = [o for o in self.offers if o[0] == self.fourcc]
            best = min(same, key=lambda o: abs(o[1] - want_w) + abs(o[2] - want_h))
            _, self.width, self.height, self.fps = best
        elif prop == cv2.CAP_PROP_FPS:
            rates = [o[3] for o in self.offers if o[:3] == (self.fourcc, self.width, self.height)]
            self.fps = min(rates, key=lambda r: abs(r - value))
        return True

    def get(self, prop):
        return {cv2.CAP_PROP_FRAME_WIDTH: self.width, cv2.CAP_PROP_FRAME_HEIGHT: self.height,
                cv2.CAP_PROP_FPS: self.fps, cv2.CAP_PROP_FOURCC: cv2.VideoWriter_fourcc(*self.fourcc)}.get(prop, 0.0)

    def read(self):
        return True, np.full((self.height, self.width, 3), 128, np.uint8)

    def release(self):
        self.released = True


class MjpegStandIn(V4l2StandIn):
    """The V4L2 stand-in sending MJPG: with ``CAP_PROP_CONVERT_RGB`` set to 0, ``read`` gives the
    camera's JPEG bytes as a ``[1, N]`` uint8 array, as OpenCV's V4L2 backend documents; otherwise
    the frame decoded with OpenCV's own libjpeg. ``read`` is ``grab`` then ``retrieve``, as OpenCV's
    is, and the decoding is in ``retrieve``. ``honours_raw=False`` plays a backend that ignores the
    property; ``cut`` sends every JPEG's scan cut short by that share of its bytes (a USB transfer lost)."""

    def __init__(self, picture, honours_raw=True, cut=0.0):
        h, w = picture.shape[:2]
        super().__init__([("MJPG", w, h, 30.0)])
        self.jpeg = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].reshape(1, -1)
        if cut:  # the scan ends early, the end-of-image marker follows: libjpeg fills the rest grey
            kept = self.jpeg[:, : int(self.jpeg.shape[1] * (1.0 - cut))]
            self.jpeg = np.ascontiguousarray(np.concatenate([kept, np.array([[0xFF, 0xD9]], np.uint8)], axis=1))
        self.raw, self.honours_raw = False, honours_raw
        self.grabbed = False

    def set(self, prop, value):
        if prop == cv2.CAP_PROP_CONVERT_RGB:
            self.sets.append((prop, value))
            self.raw = self.honours_raw and value == 0
            return self.honours_raw
        return super().set(prop, value)

    def grab(self):
        self.grabbed = True
        return True

    def retrieve(self):
        if not self.grabbed:
            return False, None
        self.grabbed = False
        return True, (self.jpeg.copy() if self.raw else cv2.imdecode(self.jpeg, cv2.IMREAD_COLOR))

    def read(self):
        return self.retrieve() if self.grab() else (False, None)


def textured(h=1080, w=1920, seed=0):
    rng = np.random.default_rng(seed)
    base = cv2.resize(rng.integers(60, 230, (h // 8, w // 8, 3), dtype=np.uint8), (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(base.astype(np.int16) + rng.integers(-10, 10, base.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("reduce", [1, 2])
def test_a_damaged_mjpg_camera_frame_carries_its_damage_is_counted_and_libjpeg_stays_off_the_terminal(reduce, capfd):
    """A Motion-JPEG camera frame cut short is decoded in part (the rest grey) by libjpeg, which says
    so itself on standard error. Decoded by OpenCV at full size or by idc-edge reduced, the frame
    carries libjpeg's words (so no gate advises on its grey fill), the source counts it, and the
    terminal gets no libjpeg line (the full-size path printed them before)."""
    import itertools

    dev = MjpegStandIn(textured(480, 640), cut=0.4)
    with CameraSource(0, mode=CameraMode(640, 480, 30.0, "MJPG"), reduce_mjpeg=reduce,
                      capture_factory=lambda d: dev) as cam:
        frames = list(itertools.islice(iter(cam), 3))
        assert cam.decode_factor == reduce
    assert [f.image.shape[:2] for f in frames] == [(480 // reduce, 640 // reduce)] * 3
    assert all(f.damage is not None and "premature end" in f.damage.lower() for f in frames), [f.damage for f in frames]
    assert cam.damaged == 3
    err = capfd.readouterr().err
    assert "JPEG" not in err, err


@pytest.mark.parametrize("reduce", [1, 2])
def test_a_control_the_driver_refuses_is_said_and_does_not_stop_the_camera(reduce, caplog):
    """A driver that refuses manual exposure (many UVC cameras) must be named, and nothing else must
    change. The warning was placed where its own condition was unknown: with reduced MJPG decoding
    opening the camera failed with a NameError, without it nothing was said."""
    from idc_edge.sources.modes import CameraControls

    class NoManualExposure(MjpegStandIn):
        def set(self, prop, value):
            return False if prop == cv2.CAP_PROP_AUTO_EXPOSURE else super().set(prop, value)

    dev = NoManualExposure(textured(480, 640))
    with CameraSource(0, mode=CameraMode(640, 480, 30.0, "MJPG"), controls=CameraControls(lock_exposure=True),
                      reduce_mjpeg=reduce, capture_factory=lambda d: dev) as cam:
        frame = next(iter(cam))
        assert cam.refused == ["manual exposure"] and cam.decode_factor == reduce
        assert frame.image.shape[:2] == (480 // reduce, 640 // reduce)
    said = [r.getMessage() for r in caplog.records if "did not take" in r.getMessage()]
    assert said == ["camera 0: the driver did not take manual exposure"]


def test_a_camera_sending_only_frames_that_cannot_be_decoded_is_given_up_after_the_timeout_and_said_once(caplog):
    """A camera whose every JPEG is cut before its end marker sends frames at full speed that libjpeg
    cannot decode. The run warned once per frame, for ever (the log grew without bound); now the first
    is said and the camera is given up, named, once no usable frame came for ``lost_timeout_s``."""
    import itertools

    dev = MjpegStandIn(textured(480, 640))
    dev.jpeg = np.ascontiguousarray(dev.jpeg[:, : dev.jpeg.shape[1] // 2])  # no end-of-image marker
    with CameraSource(0, mode=CameraMode(640, 480, 30.0, "MJPG"), reduce_mjpeg=2, lost_timeout_s=0.5,
                      capture_factory=lambda d: dev) as cam:
        with pytest.raises(CameraLostError, match=r"none could be used.*idc-edge cameras"):
            list(itertools.islice(iter(cam), 3))
    assert cam.skipped > 1
    assert len([r for r in caplog.records if "skipped a frame" in r.getMessage()]) == 1


@pytest.mark.parametrize("honours_raw", [True, False])
def test_mjpg_frames_are_decoded_reduced_and_only_when_used(honours_raw):
    picture = textured()
    dev = MjpegStandIn(picture, honours_raw)
    with CameraSource(0, mode=CameraMode(1920, 1080, 30.0, "MJPG"), reduce_mjpeg=4,
                      capture_factory=lambda d: dev) as cam:
        assert cam.decode_factor == 4 and (cv2.CAP_PROP_CONVERT_RGB, 0) in dev.sets
        frame = next(iter(cam))
    assert frame.image.shape == (270, 480, 3)
    full = cv2.resize(cv2.imdecode(dev.jpeg, cv2.IMREAD_COLOR), (480, 270), interpolation=cv2.INTER_AREA)
    assert np.abs(frame.image.astype(int) - full).mean() < 3.0  # the same picture, at a quarter
    from idc_edge.session import RunConfig, with_decode_factor
    from idc_edge.detector import DetectorOptions
    config = with_decode_factor(RunConfig(camera=0, detector=DetectorOptions(um_per_px=1.0)), cam)
    assert config.detector.um_per_px == 4.0


def test_a_camera_not_sending_mjpg_is_decoded_as_it_comes():
    dev = V4l2StandIn(USB_CAMERA)
    with CameraSource(0, mode=CameraMode(640, 480, 30.0, "YUYV"), reduce_mjpeg=4, capture_factory=lambda d: dev) as cam:
        assert cam.decode_factor == 1 and next(iter(cam)).image.shape == (480, 640, 3)
    from idc_edge.sources.mjpeg import reduction_for
    assert [reduction_for(um, 4.0) for um in (4.0, 2.5, 2.0, 1.0, 0.5, 0.25)] == [1, 1, 2, 4, 8, 8]
    assert reduction_for(1.0, 4.0, display=True) == 2


USB_CAMERA = [("YUYV", 640, 480, 30.0), ("YUYV", 1920, 1080, 5.0), ("MJPG", 640, 480, 30.0),
              ("MJPG", 1280, 720, 30.0), ("MJPG", 1920, 1080, 30.0)]


def test_v4l2_mode_is_asked_format_first_and_the_granted_mode_is_read_back():
    dev = V4l2StandIn(USB_CAMERA)
    with CameraSource(0, mode=CameraMode(1920, 1080, 30.0, "MJPG"), capture_factory=lambda d: dev) as cam:
        props = [p for p, _ in dev.sets]
        assert props == [cv2.CAP_PROP_FOURCC, cv2.CAP_PROP_FRAME_WIDTH, cv2.CAP_PROP_FRAME_HEIGHT, cv2.CAP_PROP_FPS]
        assert cam.granted == CameraMode(1920, 1080, 30.0, "MJPG")
        assert cam.fps == 30.0 and cam.mode_json["granted"]["fourcc"] == "MJPG"
        frame = next(iter(cam))
        assert frame.image.shape == (1080, 1920, 3)


def test_another_frame_rate_from_the_driver_is_a_warning_naming_what_it_gave(caplog):
    dev = V4l2StandIn(USB_CAMERA)
    with caplog.at_level(logging.WARNING, logger="idc_edge"):
        with CameraSource(0, mode=CameraMode(1920, 1080, 30.0, "YUYV"), capture_factory=lambda d: dev) as cam:
            assert cam.granted.fps == 5.0
    assert "5 fps (asked 30)" in caplog.text


def test_a_size_the_driver_refuses_is_a_source_error_and_the_device_is_released():
    dev = V4l2StandIn(USB_CAMERA)
    with pytest.raises(SourceError, match=r"refused 1600x1200: it gave 1280x720") as info:
        CameraSource(0, mode=CameraMode(1600, 1200, 30.0, "MJPG"), capture_factory=lambda d: dev)
    assert "idc-edge cameras" in str(info.value) and dev.released


def test_exposure_and_white_balance_locks_are_asked_from_the_driver():
    dev = V4l2StandIn(USB_CAMERA)
    controls = CameraControls(lock_exposure=True, exposure_us=8000, lock_white_balance=True, wb_temperature_k=5000)
    CameraSource(0, controls=controls, capture_factory=lambda d: dev).close()
    asked = dict(dev.sets)
    assert asked[cv2.CAP_PROP_AUTO_EXPOSURE] == 1 and asked[cv2.CAP_PROP_EXPOSURE] == 80.0
    assert asked[cv2.CAP_PROP_AUTO_WB] == 0 and asked[cv2.CAP_PROP_WB_TEMPERATURE] == 5000


def test_a_real_video_capture_on_a_file_reports_its_mode_and_refuses_another_size(tmp_path):
    path = tmp_path / "cam.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 15.0, (320, 240))
    for i in range(20):
        writer.write(np.full((240, 320, 3), 10 * i, np.uint8))
    writer.release()
    with CameraSource(str(path), mode=CameraMode(320, 240)) as cam:
        assert cam.granted.size == (320, 240) and cam.granted.fps == 15.0 and cam.granted.fourcc == "MJPG"
        assert next(iter(cam)).image.shape == (240, 320, 3)
    with pytest.raises(SourceError, match="refused 640x480: it gave 320x240"):
        CameraSource(str(path), mode=CameraMode(640, 480))


@pytest.mark.parametrize("text, kind, address", [
    ("0", "v4l2", 0), ("12", "v4l2", 12), ("/dev/v4l/by-id/usb-Arducam-video-index0", "v4l2",
                                             "/dev/v4l/by-id/usb-Arducam-video-index0"),
    ("picam", "picam", 0), ("picam:1", "picam", 1), ("jetson:0", "jetson", 0),
    ("tcp://192.168.1.20:8888", "network", "tcp://192.168.1.20:8888"),
    ("rtsp://scope.local/stream", "network", "rtsp://scope.local/stream"),
    ("v4l2src device=/dev/video0 ! videoconvert ! appsink", "gstreamer",
     "v4l2src device=/dev/video0 ! videoconvert ! appsink"),
])
def test_camera_forms_are_parsed_once(text, kind, address):
    target = parse_camera(text)
    assert (target.kind, target.address) == (kind, address)


@pytest.mark.parametrize("text, match", [
    ("slide.avi", "is a file, not a camera: read it with source='slide.avi'"),
    ("frame.png", "source='frame.png'"),
    ("webcam", "unknown camera 'webcam'"),
    ("picam:x", "unknown camera"),
    ("ftp://host/x", "unknown camera"),
    ("", "empty"),
])
def test_unknown_camera_forms_and_files_are_option_errors(text, match):
    with pytest.raises(OptionError, match=match) as e:
        parse_camera(text)
    assert "--" not in str(e.value)


def test_a_source_of_digits_is_never_a_camera(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SourceError, match=r"for camera 1 use camera=1"):
        open_source("1")
    writer = cv2.VideoWriter(str(tmp_path / "1.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    for i in range(3):
        writer.write(np.full((48, 64, 3), 60 * i, np.uint8))
    writer.release()
    os.replace(tmp_path / "1.avi", tmp_path / "1")
    with open_source("1") as src:  # a video file named 1 is that file, not camera 1
        assert not getattr(src, "live", False) and len(list(src)) == 3


class Picamera2StandIn:
    """The parts of Picamera2's documented API the source uses (stand-in: no CSI camera here):
    ``Picamera2(camera_num)``, ``global_camera_info()``, ``create_video_configuration(main=, controls=)``,
    ``configure``, ``start``, ``capture_array("main")`` (RGB888 = B, G, R bytes per pixel),
    ``camera_configuration()``, ``stop``, ``close``."""

    cameras = [{"Model": "imx477", "Location": 2, "Id": "/base/soc/i2c0mux/i2c@1/imx477@1a", "Num": 0}]
    made: list = []
    granted_format = None  # a format configure() settles on instead of the one asked
    stride_px = 0  # rows padded by this many pixels, as a buffer's stride can be

    def __init__(self, camera_num=0):
        self.num, self.config, self.started, self.closed = camera_num, None, False, False
        Picamera2StandIn.made.append(self)

    @staticmethod
    def global_camera_info():
        return list(Picamera2StandIn.cameras)

    def create_video_configuration(self, main=None, controls=None):
        return {"main": dict(main or {}), "controls": dict(controls or {})}

    def configure(self, config):
        self.config = config
        if Picamera2StandIn.granted_format:
            config["main"]["format"] = Picamera2StandIn.granted_format

    def start(self):
        self.started = True

    def camera_configuration(self):
        return self.config

    def capture_array(self, name="main"):
        """Blue 200, green 90, red 30 in the layout of the configured format (the manual's table)."""
        w, h = self.config["main"]["size"]
        bgr = np.zeros((h, w + self.stride_px, 3), np.uint8)
        bgr[:] = (200, 90, 30)
        fmt = self.config["main"]["format"]
        layouts = {"RGB888": bgr, "BGR888": bgr[..., ::-1], "XRGB8888": cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA),
                   "XBGR8888": cv2.cvtColor(bgr, cv2.COLOR_BGR2RGBA),
                   "YUV420": cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420),
                   "YVU420": cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_YV12)}
        return np.ascontiguousarray(layouts.get(fmt, bgr[..., 0]))

    @property
    def sensor_modes(self):
        return [{"size": (1332, 990), "fps": 120.03, "format": "SRGGB10_CSI2P", "bit_depth": 10},
                {"size": (4056, 3040), "fps": 10.0, "format": "SRGGB12_CSI2P", "bit_depth": 12}]

    def stop(self):
        self.started = False

    def close(self):
        self.closed = True


@pytest.fixture
def picamera2(monkeypatch):
    module = type(sys)("picamera2")
    module.Picamera2 = Picamera2StandIn
    Picamera2StandIn.made = []
    monkeypatch.setitem(sys.modules, "picamera2", module)
    return module


def test_picam_opens_with_size_rate_and_locks_as_picamera2_controls(picamera2):
    controls = CameraControls(lock_exposure=True, exposure_us=12000, gain=2.0, lock_white_balance=True,
                              colour_gains_rb=(1.9, 1.6))
    with open_source(camera="picam:0", mode=CameraMode(1332, 990, 30.0), controls=controls) as cam:
        frame = next(iter(cam))
        assert frame.image.shape == (990, 1332, 3) and frame.image[0, 0, 0] == 200  # BGR as OpenCV's
        assert cam.granted.size == (1332, 990)
    made = Picamera2StandIn.made[0]
    assert made.config["main"] == {"size": (1332, 990), "format": "RGB888"}
    assert made.config["controls"] == {"FrameRate": 30.0, "AeEnable": False, "ExposureTime": 12000,
                                       "AnalogueGain": 2.0, "AwbEnable": False, "ColourGains": (1.9, 1.6)}
    assert made.closed
    with pytest.raises(SourceError, match="no Raspberry Pi camera picam:3: 1 camera"):
        open_source(camera="picam:3")
    listed = list_picameras().cameras[0]
    assert listed["Model"] == "imx477" and listed["modes"][0] == {"width": 1332, "height": 990, "fps": 120.03,
                                                                  "format": "SRGGB10_CSI2P", "bit_depth": 10}


@pytest.mark.parametrize("granted", ["BGR888", "XRGB8888", "XBGR8888", "YUV420", "YVU420"])
def test_picam_frames_are_bgr_whatever_pixel_format_the_camera_was_configured_with(picamera2, granted):
    Picamera2StandIn.granted_format, Picamera2StandIn.stride_px = granted, 16
    try:
        with open_source(camera="picam:0", mode=CameraMode(640, 480)) as cam:
            image = next(iter(cam)).image
    finally:
        Picamera2StandIn.granted_format, Picamera2StandIn.stride_px = None, 0
    assert image.shape == (480, 640, 3) and image.dtype == np.uint8
    assert np.abs(image[240, 320].astype(int) - (200, 90, 30)).max() <= 2  # blue, green, red; YUV rounds


def test_a_picamera2_array_of_the_wrong_shape_for_its_format_is_an_error_not_a_picture():
    from idc_edge.sources.picamera import picamera_frame_to_bgr

    with pytest.raises(SourceError, match=r"array of shape \(480, 640\) for RGB888 at 640x480"):
        picamera_frame_to_bgr(np.zeros((480, 640), np.uint8), "RGB888", (640, 480))
    with pytest.raises(SourceError, match="XBGR8888"):
        picamera_frame_to_bgr(np.zeros((480, 640, 3), np.uint8), "XBGR8888", (640, 480))


def test_picam_frames_of_the_wrong_shape_stop_the_run_with_the_reason(picamera2, monkeypatch):
    monkeypatch.setattr(Picamera2StandIn, "capture_array", lambda self, name="main": np.zeros((480, 640), np.uint8))
    with open_source(camera="picam:0", mode=CameraMode(640, 480)) as cam:
        with pytest.raises(CameraLostError, match="stopped: the Raspberry Pi camera gave a uint8 array of shape"):
            next(iter(cam))


def test_picam_configured_with_a_format_idc_edge_cannot_read_is_refused_and_let_go(picamera2):
    Picamera2StandIn.granted_format = "SRGGB10_CSI2P"
    try:
        with pytest.raises(SourceError, match="configured with pixel format SRGGB10_CSI2P.*it reads RGB888"):
            open_source(camera="picam:0")
    finally:
        Picamera2StandIn.granted_format = None
    assert Picamera2StandIn.made[0].closed  # not held by this process


def test_missing_picamera2_is_one_line_with_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", None)  # import fails as where it is not installed
    with pytest.raises(SourceError, match=r"sudo apt install python3-picamera2.*--system-site-packages"):
        open_source(camera="picam")
    p = idc_edge("run", "--camera", "picam", "--max-frames", "1")  # a fresh process on this machine
    lines = p.stderr.strip().splitlines()
    if "picamera2" in sys.modules and sys.modules["picamera2"] is not None:
        pytest.skip("Picamera2 is installed here")
    assert p.returncode == 2 and len(lines) == 1 and "python3-picamera2" in lines[0]


def test_jetson_pipeline_asks_mode_and_locks_of_nvarguscamerasrc():
    p = jetson_pipeline(1, CameraMode(1280, 720, 60.0), CameraControls(lock_exposure=True, exposure_us=5000,
                                                                       lock_white_balance=True))
    assert p.startswith("nvarguscamerasrc sensor-id=1 aelock=true")
    assert "width=1280,height=720,framerate=60/1" in p and "awblock=true" in p
    assert 'exposuretimerange="5000000 5000000"' in p and p.endswith("sync=false") and "appsink" in p
    assert with_appsink("videotestsrc").endswith("appsink drop=true max-buffers=1 sync=false")
    assert with_appsink("videotestsrc ! appsink") == "videotestsrc ! appsink"


@pytest.mark.skipif(opencv_has_gstreamer(), reason="this OpenCV has GStreamer")
def test_opencv_without_gstreamer_says_how_to_get_one():
    for camera in ("videotestsrc ! appsink", "jetson:0"):
        with pytest.raises(SourceError, match=r"built without GStreamer.*python3-opencv.*JetPack"):
            open_source(camera=camera)
    p = idc_edge("run", "--camera", "jetson", "--max-frames", "1")
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1 and "python3-opencv" in p.stderr


GST_SCRIPT = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, sys.argv[1])
    from idc_edge.sources import CameraMode, open_source
    pipeline = "videotestsrc num-buffers=40 ! video/x-raw,width=320,height=240,framerate=30/1"
    with open_source(camera=pipeline, mode=CameraMode(320, 240), camera_timeout_s=5) as cam:
        frames = []
        for f in cam:
            frames.append(f.image.shape)
            if len(frames) == 5:
                break
        print(json.dumps({"granted": cam.mode_json["granted"], "shapes": frames}))
""")


def _python_with_gstreamer():
    if opencv_has_gstreamer():
        return sys.executable
    system = "/usr/bin/python3"
    if os.path.exists(system):
        probe = subprocess.run([system, "-c", "import cv2, numpy; print('GStreamer' in cv2.getBuildInformation() and "
                                "[l for l in cv2.getBuildInformation().splitlines() if 'GStreamer:' in l][0])"],
                               capture_output=True, text=True, timeout=60)
        if probe.returncode == 0 and "YES" in probe.stdout:
            return system
    return None


def test_a_real_gstreamer_pipeline_through_the_camera_path():
    python = _python_with_gstreamer()
    if python is None:
        pytest.skip("no OpenCV with GStreamer here (CI installs Debian's python3-opencv and gstreamer1.0-plugins-base)")
    p = subprocess.run([python, "-c", GST_SCRIPT, str(ROOT)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["granted"]["width"] == 320 and out["granted"]["height"] == 240
    assert out["shapes"] == [[240, 320, 3]] * 5


V4L2_CTL = """ioctl: VIDIOC_ENUM_FMT
\tType: Video Capture

\t[0]: 'MJPG' (Motion-JPEG, compressed)
\t\tSize: Discrete 1920x1080
\t\t\tInterval: Discrete 0.033s (30.000 fps)
\t\t\tInterval: Discrete 0.067s (15.000 fps)
\t\tSize: Discrete 1280x720
\t\t\tInterval: Discrete 0.017s (60.000 fps)
\t[1]: 'YUYV' (YUYV 4:2:2)
\t\tSize: Discrete 640x480
\t\t\tInterval: Discrete 0.033s (30.000 fps)
"""


def test_v4l2_devices_are_listed_with_names_by_id_paths_and_modes(tmp_path):
    sysfs = tmp_path / "sys"
    for node, name, index in (("video0", "Arducam 12MP", "0"), ("video1", "Arducam 12MP", "1"),
                              ("video2", "HDMI grabber", "0")):
        (sysfs / node).mkdir(parents=True)
        (sysfs / node / "name").write_text(name + "\n")
        (sysfs / node / "index").write_text(index + "\n")
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    os.symlink("../../video0", by_id / "usb-Arducam_12MP-video-index0")
    modes = parse_v4l2_formats(V4L2_CTL)
    assert [(m.fourcc, m.width, m.height, m.fps) for m in modes] == [
        ("MJPG", 1920, 1080, (30.0, 15.0)), ("MJPG", 1280, 720, (60.0,)), ("YUYV", 640, 480, (30.0,))]
    devices = list_v4l2(str(sysfs), str(by_id), probe=lambda path, index: (modes if index == 0 else [], "v4l2-ctl"))
    assert [(d.index, d.name) for d in devices] == [(0, "Arducam 12MP"), (2, "HDMI grabber")]  # metadata node skipped
    assert devices[0].by_id == (str(by_id / "usb-Arducam_12MP-video-index0"),)
    assert devices[0].modes_from == "v4l2-ctl" and devices[1].modes_from == "unknown"


def test_cameras_command_lists_in_text_and_json():
    p = idc_edge("cameras", "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert isinstance(out["v4l2"], list) and "available" in out["picamera2"]
    assert out["opencv_gstreamer"] is opencv_has_gstreamer()
    text = idc_edge("cameras")
    assert text.returncode == 0 and "Picamera2" in text.stdout


@pytest.mark.parametrize("args, message", [
    (["run", "--camera", "slide.avi"], "read it with --source slide.avi"),
    (["run", "--camera", "webcam"], "unknown camera 'webcam'"),
    (["run", "--source", "1"], "for camera 1 use --camera 1"),
    (["run", "--camera", "0", "--size", "1920"], "WIDTHxHEIGHT"),
    (["run", "--camera", "0", "--fourcc", "MJPEG"], "four-character code"),
    (["run", "--camera", "0", "--fps", "0"], "--fps must be a number from 0.01 to 1000 (camera frame rate"),
    (["run", "--camera", "0", "--exposure-us", "100"], "--exposure-us needs --lock-exposure"),
    (["run", "--camera", "picam", "--colour-gains", "1.8"], "two numbers RED,BLUE"),
    (["run", "--camera", "picam", "--colour-gains", "1.8,-1"], "--colour-gains must be two numbers (red, blue) from 0.001 to 32"),
])
def test_bad_camera_options_are_one_line_with_exit_2(args, message):
    p = idc_edge(*args)
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert p.returncode == 2 and len(lines) == 1 and lines[0].startswith("idc-edge: error:"), p.stderr
    assert message in lines[0]


def _suffixless_video(tmp_path, size=(320, 240), n=30):
    """A real video file without a suffix: --camera opens it as a capture device (plays like a live camera)."""
    path = tmp_path / "camera.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 15.0, size)
    for i in range(n):
        writer.write(np.full((size[1], size[0], 3), (200, 150, 210), np.uint8))
    writer.release()
    device = tmp_path / "camera"
    path.rename(device)
    return device


def test_run_prints_the_granted_mode_and_field_of_view_and_refuses_a_size_it_did_not_get(tmp_path):
    device = _suffixless_video(tmp_path)
    ok = idc_edge("run", "--camera", device, "--um-per-px", 2.0, "--max-frames", 2, "--quiet")
    assert ok.returncode == 0, ok.stderr
    assert "320x240 at 15 fps, MJPG; field of view 0.64 x 0.48 mm at 2 um/px" in ok.stderr
    refused = idc_edge("run", "--camera", device, "--size", "640x480", "--max-frames", 2)
    lines = [line for line in refused.stderr.splitlines() if line.strip()]
    assert refused.returncode == 2 and len(lines) == 1, refused.stderr
    assert "refused 640x480: it gave 320x240" in lines[0]


def test_a_run_with_a_profile_warns_when_the_glass_drifts_from_the_white_reference(caplog):
    from idc_edge.colour import TRAINING_GLASS_RGB
    from idc_edge.profiles import Profile
    from idc_edge.sources.base import Frame
    from idc_edge.sources.calibrated import CalibratedSource

    class Frames:  # a stand-in source: glass on the left, tissue on the right; the lamp warms up half-way
        description, live = "stand-in camera", True

        def __iter__(self):
            for i in range(40):
                rgb = np.empty((120, 160, 3), np.float32)
                rgb[:, :80] = TRAINING_GLASS_RGB
                rgb[:, 80:] = (200, 110, 190)
                if i >= 20:
                    rgb *= (1.0, 0.93, 0.82)
                yield Frame(i, float(i), np.ascontiguousarray(rgb[..., ::-1]).astype(np.uint8))

        def close(self):
            pass

    profile = Profile(name="scope", white_gains_rgb=(1.0, 1.0, 1.0), target_rgb=TRAINING_GLASS_RGB)
    with caplog.at_level(logging.WARNING, logger="idc_edge"):
        frames = list(CalibratedSource(Frames(), profile, drift_every=5))
    assert len(frames) == 40
    warnings = [r.getMessage() for r in caplog.records if "drifted" in r.getMessage()]
    assert len(warnings) == 1 and "calibrate white" in warnings[0]


@pytest.mark.parametrize("um_per_px", [1.0, None])
def test_a_camera_run_without_a_measured_scale_says_so_and_one_with_it_does_not(tiny_int8, um_per_px):
    """A wrong µm/px is not always visible in the picture (2× too small goes unnoticed), so a camera
    run whose scale was typed or left out says, once, that it is not calibrated; a profile's measured
    scale silences it."""
    import warnings

    from idc_edge.detector import DetectorOptions
    from idc_edge.profiles import Profile
    from idc_edge.session import RunConfig, Session

    def run(profile=None):
        cam = CameraSource(0, mode=CameraMode(640, 480, 30.0, "YUYV"), capture_factory=lambda d: V4l2StandIn(USB_CAMERA))
        config = RunConfig(camera=0, max_frames=2, profile=profile,
                           detector=DetectorOptions(model_path=tiny_int8, um_per_px=um_per_px))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            Session(config, [], source=cam).run()
        return [str(w.message) for w in caught if "not calibrated" in str(w.message)]

    (said,) = run()
    assert "calibrate scale" in said and ("given, not measured" in said if um_per_px else "no um_per_px" in said)
    assert run(Profile(name="scope", um_per_px=1.0, frame_size=(640, 480))) == []


@pytest.mark.parametrize("um_per_px, from_profile, said", [(3.0, False, True), (4.0, True, True), (2.0, False, True),
                                                          (1.5, False, False), (1.0, True, False), (None, False, False)])
def test_a_camera_whose_pixels_are_near_the_model_s_scale_is_told_to_use_a_finer_one(tiny_int8, um_per_px,
                                                                                     from_profile, said):
    """Coarser than 1.5 µm per camera pixel a colour camera's demosaicing is not averaged away by the
    rescale (the model agreed only 88–89 % with a finer camera at 4 µm/px, and 70–86 % with grain at
    2 µm/px): the run says so once, whether the scale was typed or measured; at 1.5 µm/px or finer, or
    with no scale known (that has its own warning), it does not."""
    import warnings

    from idc_edge.detector import DetectorOptions
    from idc_edge.profiles import Profile
    from idc_edge.session import RunConfig, Session

    cam = CameraSource(0, mode=CameraMode(640, 480, 30.0, "YUYV"), capture_factory=lambda d: V4l2StandIn(USB_CAMERA))
    profile = Profile(name="scope", um_per_px=um_per_px, frame_size=(640, 480)) if from_profile else None
    config = RunConfig(camera=0, max_frames=2, profile=profile,
                       detector=DetectorOptions(model_path=tiny_int8, um_per_px=um_per_px))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Session(config, [], source=cam).run()
    coarse = [str(w.message) for w in caught if "demosaicing" in str(w.message)]
    assert len(coarse) == int(said)
    if said:
        assert f"pixels are {um_per_px:g} um" in coarse[0] and "at most 1.5 um per pixel" in coarse[0]
