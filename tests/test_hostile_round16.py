"""Red-team round 16: a camera timeout shorter than the camera's frame interval and a camera that never sends its
first frame; grey frames said to have no colour and to be faint, two warnings for one cause; HEIC photos and TGA
images called corrupt (or a cut-off video).

Everything is real where it can be: an HTTP camera on a localhost socket serving a real 2 fps video that FFmpeg
reads (its rate from the file's header), grey videos and PNGs written with OpenCV, HEIF and TGA files built byte
by byte, the CLI run as a child process. No camera exists here, so a V4L2 device that opens but sends no frame is
a stand-in written from OpenCV's documented behaviour.
"""
from __future__ import annotations

import subprocess
import sys
import time

import cv2
import pytest

from hostile import TINY, http_camera, tissue_frame


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("IDC_EDGE_CACHE_DIR", str(tmp_path / "cache"))


# -- a camera timeout shorter than the camera's frame interval ------------------------------------------------------

@pytest.fixture
def two_fps_stream(tmp_path):
    """The address of an HTTP camera on localhost sending a Motion-JPEG AVI recorded at 2 fps, at that rate:
    its header and first 12 frames at once (what a camera's server has buffered; FFmpeg's probe reads them),
    then one frame every 0.5 s, to every client, until it leaves."""
    video = tmp_path / "slow.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 2, (200, 150))
    assert writer.isOpened()
    for _ in range(60):
        writer.write(tissue_frame())
    writer.release()
    data = video.read_bytes()
    starts = [i for i in range(len(data)) if data.startswith(b"00dc", i)]  # where each frame's chunk begins

    def answer(conn, stop):
        conn.recv(65536)
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: video/x-msvideo\r\n\r\n" + data[:starts[12]])
        for begin, end in zip(starts[12:], starts[13:] + [len(data)]):
            if stop.wait(0.5):
                return
            conn.sendall(data[begin:end])

    with http_camera(answer, "/slow.avi") as url:
        yield url


def test_a_camera_timeout_shorter_than_two_frame_intervals_is_refused_at_the_start(two_fps_stream):
    """A camera sending 2 fps with ``--camera-timeout 0.3``: every wait for its next frame (0.5 s) was longer
    than the timeout, so the run ended as if the camera were lost ("check the cable", or for this stream "none
    could be used ... check the camera's encoder"), after a few frames. A camera that reports its frame rate is
    now checked when it opens: a timeout shorter than two frame intervals is one line naming both numbers and
    what to set, exit 2, before any frame is read."""
    p = subprocess.run([sys.executable, "-m", "idc_edge", "run", "--camera", two_fps_stream, "--camera-timeout", "0.3",
                        "--max-frames", "20", "--um-per-px", "4", "--model", TINY, "--quiet"],
                       capture_output=True, text=True, timeout=120)
    error = [line for line in p.stderr.splitlines() if line.startswith("idc-edge: error: ")]
    assert p.returncode == 2 and len(error) == 1 and "Traceback" not in p.stderr, p.stderr
    assert "--camera-timeout 0.3 s" in error[0] and "2 fps (a frame every 0.5 s)" in error[0], error[0]
    assert "set --camera-timeout to 1 s or more" in error[0] and "cable" not in error[0], error[0]
    assert "lost_timeout_s" not in error[0] and " frame(s) in " not in p.stderr  # said before the run began

    p = subprocess.run([sys.executable, "-m", "idc_edge", "run", "--camera", two_fps_stream, "--camera-timeout", "1.5",
                        "--max-frames", "14", "--um-per-px", "4", "--model", TINY, "--quiet"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and "error" not in p.stderr, p.stderr  # two intervals and more: the frames are read


def test_a_timeout_that_covers_two_frame_intervals_is_kept_and_an_unreported_rate_is_not_checked():
    """The check reads the rate the driver grants (a V4L2 camera's 1920x1080 mode at 5 fps: a frame every 0.2 s,
    so 0.4 s is the shortest timeout); a camera that reports no rate is not refused on a guess."""
    from test_cameras import USB_CAMERA, V4l2StandIn

    from idc_edge.errors import OptionError
    from idc_edge.sources import CameraMode, CameraSource

    def open_camera(timeout_s, offers=USB_CAMERA):
        return CameraSource(0, mode=CameraMode(1920, 1080, 5.0, "YUYV"), lost_timeout_s=timeout_s,
                            capture_factory=lambda device: V4l2StandIn(offers))

    with pytest.raises(OptionError, match=r"lost_timeout_s 0.3 s is shorter .* set lost_timeout_s to 0.4 s") as e:
        open_camera(0.3)
    assert e.value.option == "lost_timeout_s"
    open_camera(0.4).close()
    open_camera(0.3, [("YUYV", 1920, 1080, 0.0)]).close()  # no rate reported


# -- a camera that opens but never sends its first frame -------------------------------------------------------------

def test_a_camera_that_never_sends_a_first_frame_is_not_called_lost_mid_run(caplog):
    """A V4L2 camera that opens but sends nothing (waiting for an external trigger, a long exposure, still
    starting): OpenCV's V4L2 backend waits for a buffer up to its timeout and then ``read`` returns False. It
    was "camera 0 gave no frame for 1 s: check the cable and power" after a warning asking whether it was
    unplugged, as for a camera lost mid-run. It is now said to have given no first frame since it was opened,
    with what a slow camera needs; a camera lost after frames still gets the cable."""
    import logging

    from test_cameras import USB_CAMERA, V4l2StandIn

    from idc_edge.cli.options import in_cli_words
    from idc_edge.errors import CameraLostError
    from idc_edge.sources import CameraSource

    class UntriggeredCamera(V4l2StandIn):
        """A V4L2 camera waiting for a trigger: opened, its mode reported, but no buffer ever filled."""

        def read(self):
            time.sleep(0.05)  # the backend's wait for a buffer, short here
            return False, None

    cam = CameraSource(0, lost_timeout_s=1.0, capture_factory=lambda device: UntriggeredCamera(USB_CAMERA))
    with caplog.at_level(logging.WARNING, logger="idc_edge"), pytest.raises(CameraLostError) as e:
        next(iter(cam))
    cam.close()
    said = in_cli_words(e.value)
    assert said.startswith("camera 0 was opened but gave no first frame within 1 s"), said
    assert "not lost mid-run" in said and "needs a longer --camera-timeout" in said and "cable" not in said, said
    warned = [r.getMessage() for r in caplog.records]
    assert any("no frame (none yet since it was opened)" in m for m in warned), warned
    assert not any("unplugged" in m for m in warned), warned


# -- grey frames: "no colour" and "faint colour" said for one cause -----------------------------------------------

def _grey(frame):
    """``frame`` as a monochrome camera gives it in colour: R = G = B."""
    return cv2.cvtColor(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)


def test_grey_frames_are_said_to_have_no_colour_once_not_also_faint(tmp_path):
    """A monochrome camera (or a colour camera giving R = G = B): ``run`` warned that the frames have no
    colour, then that a frame's colours are too faint, two warnings for one cause; every frame's record was
    ``faint_colour`` and the report counted them under "colour". The frames are now said, recorded
    (``no_colour``), shown and counted as having no colour, once."""
    from hostile import write_video

    from idc_edge.detector import Detector, DetectorOptions
    from idc_edge.overlay import status_text
    from idc_edge.record import read_records

    video = write_video(tmp_path / "mono.avi", 6, frame=_grey(tissue_frame(320, 240)))
    record = tmp_path / "r.jsonl"
    p = subprocess.run([sys.executable, "-m", "idc_edge", "run", "--source", str(video), "--model", TINY, "--record",
                        str(record), "--quiet"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    warned = [line for line in p.stderr.splitlines() if line.startswith("idc-edge: warning: ")]
    assert sum("have no colour" in line for line in warned) == 1, warned
    assert not any("too faint" in line or "colour cast" in line for line in warned), warned
    assert "saturation at zero" in p.stderr  # the colour camera's cause, which only the faint warning named
    frames = read_records(record)
    assert [(r["no_colour"], r["faint_colour"]) for r in frames] == [(True, False)] * 6

    unmasked = tmp_path / "unmasked.jsonl"  # every window scored: the colour gate takes them, the cause is the same
    p = subprocess.run([sys.executable, "-m", "idc_edge", "run", "--source", str(video), "--model", TINY, "--record",
                        str(unmasked), "--no-mask", "--quiet"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and sum("have no colour" in line for line in p.stderr.splitlines()) == 1, p.stderr
    for results in (record, unmasked):
        p = subprocess.run([sys.executable, "-m", "idc_edge", "report", str(results)], capture_output=True, text=True,
                           timeout=120)
        assert p.returncode == 0 and "6 frame(s) with tissue but no call (no colour 6)" in p.stdout, p.stdout + p.stderr

    with Detector(DetectorOptions(model_path=TINY)) as det, pytest.warns(UserWarning, match="have no colour"):
        assert status_text(det.detect(_grey(tissue_frame(320, 240)))).startswith("NO COLOUR: no call")


def test_classify_says_grey_images_of_any_size_have_no_colour_once(tmp_path):
    """``classify`` of a grey patch image and a grey image larger than a patch: the patches' warning ("1 image(s)
    have no colour") and the detector's about the larger one ("the frames have no colour", of an image) were
    two lines for one cause. They are one, counting both images."""
    grey = _grey(tissue_frame(200, 150))
    assert cv2.imwrite(str(tmp_path / "patch.png"), grey[30:80, 40:90])
    assert cv2.imwrite(str(tmp_path / "field.png"), grey)
    p = subprocess.run([sys.executable, "-m", "idc_edge", "classify", str(tmp_path / "patch.png"),
                        str(tmp_path / "field.png"), "--model", TINY, "--quiet"], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    said = [line for line in p.stderr.splitlines() if "no colour" in line]
    assert len(said) == 1 and "2 image(s) have no colour" in said[0] and "frames" not in said[0], p.stderr


# -- image formats OpenCV does not read: HEIC/HEIF, TGA ---------------------------------------------------------------

def _box(kind: bytes, payload: bytes) -> bytes:
    """One ISO media box: its size, its four-letter kind, its payload."""
    import struct

    return struct.pack(">I", 8 + len(payload)) + kind + payload


def _heif(major: bytes = b"heic", compatible: bytes = b"mif1heicmiaf") -> bytes:
    """The start of a HEIF photo as an iPhone saves it (``.heic``): an ``ftyp`` box of major brand ``major`` and
    ``compatible`` brands, then its ``meta`` box (a picture handler; the HEVC-coded items are not needed to
    tell the format), and no ``moov``, which a video has."""
    handler = _box(b"hdlr", b"\0" * 8 + b"pict" + b"\0" * 13)
    return _box(b"ftyp", major + b"\0\0\0\0" + compatible) + _box(b"meta", b"\0" * 4 + handler) + b"\0" * 256


def _tga(bgr) -> bytes:
    """A TGA 2.0 file of the BGR uint8 picture ``bgr``, built byte by byte: an 18-byte header (uncompressed
    true colour, 24 bits, rows from the top), the pixels, and the footer that ends every TGA 2.0 file (GIMP's,
    Photoshop's; a TGA has no magic bytes at its start)."""
    import struct

    h, w = bgr.shape[:2]
    header = struct.pack("<BBB5sHHHHBB", 0, 0, 2, b"\0" * 5, 0, 0, w, h, 24, 0x20)
    return header + bgr.tobytes() + struct.pack("<II", 0, 0) + b"TRUEVISION-XFILE.\0"


def test_a_heic_photo_is_named_as_one_with_what_to_do_not_called_corrupt_or_a_cut_off_video(tmp_path):
    """A phone's HEIC photo is ISO media, as an MP4 is: ``classify`` called it "a video (MP4/MOV), not an image",
    and ``run --source`` "an MP4/MOV without its index ...: the recording was cut off before it was finished".
    It is named as a HEIC image OpenCV does not read, with what to convert it to."""
    import numpy as np

    photo = tmp_path / "IMG_0001.heic"
    photo.write_bytes(_heif())
    assert cv2.imdecode(np.frombuffer(photo.read_bytes(), np.uint8), cv2.IMREAD_COLOR) is None  # OpenCV reads none
    for command in (["classify", photo], ["run", "--source", photo, "--quiet"]):
        p = subprocess.run([sys.executable, "-m", "idc_edge", *map(str, command), "--model", TINY],
                           capture_output=True, text=True, timeout=120)
        error = [line for line in p.stderr.splitlines() if line.startswith("idc-edge: error: ")]
        assert p.returncode == 2 and len(error) == 1 and "Traceback" not in p.stderr, p.stderr
        assert "it is a HEIC image (a format OpenCV does not read)" in error[0], error[0]
        assert "convert it to PNG or TIFF" in error[0] and "corrupt" not in error[0] and "MP4" not in error[0], error[0]


def test_the_sniffer_tells_heif_and_avif_photos_from_videos_by_their_brands():
    """ISO media is a video (MP4, MOV) or a still image (HEIF, AVIF) by its ``ftyp`` brands; a generic HEIF brand
    (``mif1``) is told apart by the compatible brands. An MP4 stays a video."""
    from idc_edge.sources.sniff import HEAD_BYTES, image_format, unread_format, video_format

    cases = {_heif(): "HEIC", _heif(b"mif1", b"mif1heic"): "HEIC", _heif(b"mif1", b"mif1avifmiaf"): "AVIF",
             _heif(b"avif", b"avifmif1miaf"): "AVIF", _heif(b"msf1", b"msf1iso8"): "HEIF"}
    for data, fmt in cases.items():
        assert (image_format(data[:HEAD_BYTES]), video_format(data[:HEAD_BYTES]), unread_format(data)) == (fmt, None, fmt)
    mp4 = _box(b"ftyp", b"isom\0\0\2\0isomiso2avc1mp41")
    assert (image_format(mp4), video_format(mp4), unread_format(mp4)) == (None, "MP4/MOV", None)


def test_a_tga_is_named_by_its_footer_alone_and_in_a_folder_it_is_said_not_left_out(tmp_path):
    """A TGA (GIMP's, Photoshop's, a frame grabber's) was "none of the 1 image(s) could be read (corrupt or not
    images)", and in a folder left out without a word (not named like an image). Its footer names it: one line
    with what to do; in a folder it is listed, skipped and said, and the other images are read."""
    import numpy as np

    picture = tissue_frame(120, 90)
    data = _tga(picture)
    assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) is None  # this OpenCV reads no TGA
    folder = tmp_path / "grabs"
    folder.mkdir()
    (folder / "field_1.tga").write_bytes(data)
    assert cv2.imwrite(str(folder / "field_2.png"), picture)

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "idc_edge", *map(str, args), "--model", TINY],
                              capture_output=True, text=True, timeout=120)

    p = cli("classify", folder / "field_1.tga")
    error = [line for line in p.stderr.splitlines() if line.startswith("idc-edge: error: ")]
    assert p.returncode == 2 and len(error) == 1, p.stderr
    assert "it is a TGA image (a format OpenCV does not read); convert it to PNG or TIFF" in error[0], error[0]
    p = cli("classify", folder)
    assert p.returncode == 0 and "field_2.png" in p.stdout and "field_1.tga" not in p.stdout, p.stderr
    assert "skipped 1 TGA image(s)" in p.stderr and "corrupt" not in p.stderr, p.stderr
    record = tmp_path / "r.jsonl"
    p = cli("run", "--source", folder, "--record", record, "--quiet")
    assert p.returncode == 0 and "field_1.tga': it is a TGA image" in p.stderr, p.stderr
    assert len(record.read_text().splitlines()) == 2  # the header and the PNG's frame
