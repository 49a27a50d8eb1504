"""Red-team round 15: a Motion-JPEG stream camera switched to another resolution mid-stream, ``idc-edge cameras``
with a driver name cut inside a character or a camera that takes a range of sizes, ``PYTHONWARNINGS`` in the
environment, a camera raw file (DNG) whose first picture is a preview, BigTIFF headers, and hand-edited files
holding a number of thousands of digits; round 14's ``OPENCV_IO_MAX_IMAGE_PIXELS`` set low, and the output
folder deleted during a run.

Everything is real: HTTP servers on localhost sockets, files written here byte by byte (a stand-in for
``/sys/class/video4linux``, a DNG, BigTIFFs), the tiny test model in the real LiteRT interpreter, the CLI run in
this process or as a child process.
"""
from __future__ import annotations

import json
import subprocess
import sys

import cv2
import pytest

from hostile import TINY, mjpeg_stream, tissue_frame


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("IDC_EDGE_CACHE_DIR", str(tmp_path / "cache"))


# -- a Motion-JPEG stream whose camera is switched to another resolution mid-stream ---------------------------------

@pytest.fixture
def resolution_switching_stream():
    """An HTTP camera on localhost answering a Motion-JPEG stream (``multipart/x-mixed-replace``) of
    200×150 px frames, then, from its 15th frame on, 100×75 px frames (an ESP32-CAM's or a phone app's
    resolution changed on its web page while a viewer watches), until the client leaves."""
    large = cv2.imencode(".jpg", tissue_frame(200, 150))[1].tobytes()
    small = cv2.imencode(".jpg", tissue_frame(100, 75))[1].tobytes()
    with mjpeg_stream(lambda n: large if n < 15 else small, every_s=0.04) as url:
        yield url


def test_a_stream_switched_to_another_resolution_gives_frames_at_their_real_size(resolution_switching_stream, tmp_path):
    """OpenCV's decoder scales every frame of a stream to its first frame's size: a camera switched from
    200×150 to 100×75 px mid-stream came as 200×150 frames, the tissue magnified twice and read at the
    scale given for the first size, and even a profile's frame-size check passed them, silently. A
    Motion-JPEG stream's frames are now decoded by idc-edge, each at its real size (as a video file's
    are), and the change is said once."""
    record = tmp_path / "r.jsonl"
    p = subprocess.run([sys.executable, "-m", "idc_edge", "run", "--camera", resolution_switching_stream,
                        "--max-frames", "40", "--camera-timeout", "5", "--um-per-px", "4", "--model", TINY,
                        "--record", record, "--quiet"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    sizes = [(r["frame"]["width"], r["frame"]["height"]) for r in map(json.loads, record.read_text().splitlines()[1:])]
    assert len(sizes) == 40
    assert set(sizes) == {(200, 150), (100, 75)}, sizes
    assert sizes[-1] == (100, 75) and sizes.index((100, 75)) > 0  # the newest frames at their own size
    said = [line for line in p.stderr.splitlines() if "changed size" in line]
    assert len(said) == 1 and "200x150 to 100x75" in said[0], p.stderr


# -- idc-edge cameras: a driver's name cut inside a character, a camera that takes a range of sizes -----------------

def _sysfs(tmp_path, name: bytes):
    """A stand-in for ``/sys/class/video4linux`` holding one capture node, ``video0``, named ``name``."""
    node = tmp_path / "sys" / "video0"
    node.mkdir(parents=True)
    (node / "name").write_bytes(name + b"\n")
    (node / "index").write_text("0\n")
    return tmp_path / "sys"


def test_a_camera_whose_name_is_cut_inside_a_character_is_listed(tmp_path):
    """V4L2 cuts a driver's name to 31 bytes, which can end inside a character of a camera named in
    Chinese ("USB2.0 摄像头 HD Camera" from a cheap USB camera): ``idc-edge cameras`` (``list_v4l2``)
    ended in "internal error (UnicodeDecodeError ...)", listing no camera at all. The cut character is
    shown as a replacement; the camera is listed."""
    from idc_edge.sources.discover import list_v4l2

    name = "USB2.0 HD 摄像头摄像头摄像头".encode()[:29]  # 10 ASCII bytes, then 3-byte characters: cut in the 7th
    assert name.decode("utf-8", "replace").endswith("\ufffd")
    devices = list_v4l2(str(_sysfs(tmp_path, name)), str(tmp_path / "by-id"), probe=lambda path, index: ([], "v4l2-ctl"))
    assert [(d.index, d.name) for d in devices] == [(0, "USB2.0 HD 摄像头摄像头\ufffd")]


STEPWISE = """ioctl: VIDIOC_ENUM_FMT
\tType: Video Capture

\t[0]: 'YU12' (Planar YUV 4:2:0)
\t\tSize: Stepwise 32x32 - 2592x1944 with step 2/2
\t[1]: 'MJPG' (Motion-JPEG, compressed)
\t\tSize: Continuous 16x16 - 1920x1080
\t[2]: 'YUYV' (YUYV 4:2:2)
\t\tSize: Discrete 640x480
\t\t\tInterval: Discrete 0.033s (30.000 fps)
"""


def test_a_camera_that_takes_a_range_of_sizes_is_listed_with_its_largest_not_its_smallest():
    """``v4l2-ctl --list-formats-ext`` of a driver that takes any size in a range (a Raspberry Pi camera
    through its V4L2 driver: ``Size: Stepwise 32x32 - 2592x1944 with step 2/2``) was read as that mode's
    smallest size alone: ``idc-edge cameras`` listed ``--fourcc YU12 --size 32x32``, a 5-megapixel camera
    as offering a thumbnail, silently. A range is one mode of its largest size, with the range said."""
    from idc_edge.cli.cameras import _mode_words
    from idc_edge.sources.discover import parse_v4l2_formats

    modes = parse_v4l2_formats(STEPWISE)
    assert [(m.fourcc, m.width, m.height, m.min_size, m.step) for m in modes] == [
        ("YU12", 2592, 1944, (32, 32), (2, 2)), ("MJPG", 1920, 1080, (16, 16), (1, 1)), ("YUYV", 640, 480, None, None)]
    assert [_mode_words(m) for m in modes] == [
        "--fourcc YU12 --size 2592x1944   (any size from 32x32 to 2592x1944 in steps of 2x2)",
        "--fourcc MJPG --size 1920x1080   (any size from 16x16 to 1920x1080)",
        "--fourcc YUYV --size 640x480   fps 30"]


# -- Python's warning controls in the environment -------------------------------------------------------------------

@pytest.mark.parametrize("control", ["error", "ignore", "error::UserWarning"])
def test_pythonwarnings_neither_ends_a_command_nor_hushes_its_warnings(tmp_path, control):
    """``PYTHONWARNINGS=error`` (a CI runner's or a developer's shell; ``python -W error``) turned idc-edge's
    first warning into "internal error (UserWarning ...)", exit 2: ``classify`` of a 12-bit image stopped
    before its rows, ``run`` mid-run. ``PYTHONWARNINGS=ignore`` (set in many container images to hush
    libraries) dropped the program's warnings, so the guess of a bit depth, or frames without colour, went
    unsaid. The program's own warnings are its lines whatever those controls say."""
    import os

    import numpy as np

    deep = tmp_path / "deep.png"  # a 12-bit camera's picture in a 16-bit PNG
    assert cv2.imwrite(str(deep), tissue_frame().astype(np.uint16) * 16)
    folder = tmp_path / "frames"
    folder.mkdir()
    assert cv2.imwrite(str(folder / "1.png"), tissue_frame())
    assert cv2.imwrite(str(folder / "2.png"), cv2.cvtColor(tissue_frame(), cv2.COLOR_BGR2GRAY))  # no colour
    env = dict(os.environ, PYTHONWARNINGS=control)
    for args, said in ((["classify", deep], "read as 12-bit"),
                       (["run", "--source", folder, "--record", tmp_path / "r.jsonl", "--quiet"], "have no colour")):
        p = subprocess.run([sys.executable, "-m", "idc_edge", *map(str, args), "--model", TINY], capture_output=True,
                           text=True, timeout=120, env=env)
        assert p.returncode == 0 and "internal error" not in p.stderr, p.stderr
        assert sum(said in line for line in p.stderr.splitlines() if line.startswith("idc-edge: warning: ")) == 1, p.stderr
    assert len((tmp_path / "r.jsonl").read_text().splitlines()) == 3  # the header and both frames


# -- a camera raw file (DNG) whose first picture is a preview ---------------------------------------------------------

def _raw_file(preview_bgr, raw_size=(400, 300)) -> bytes:
    """A little-endian TIFF laid out as a camera raw file (DNG): its first directory an 8-bit RGB preview
    marked as a reduced-resolution copy (NewSubFileType 1), the photo a 16-bit Bayer mosaic in a SubIFD."""
    import struct

    import numpy as np

    rgb = np.ascontiguousarray(preview_bgr[..., ::-1])
    (ph, pw), (rw, rh) = rgb.shape[:2], raw_size
    out = bytearray(b"II*\x00\x00\x00\x00\x00")
    preview_at = len(out)
    out += rgb.tobytes()
    raw_at = len(out)
    out += np.full((rh, rw), 1000, "<u2").tobytes()
    bits_at = len(out)
    out += struct.pack("<3H", 8, 8, 8)

    def directory(tags):  # (tag, type 3 or 4, count, value or offset)
        at = len(out)
        out.extend(struct.pack("<H", len(tags)))
        for tag, kind, count, value in sorted(tags):
            inline = kind == 3 and count == 1
            out.extend(struct.pack("<HHI", tag, kind, count) + struct.pack("<HH" if inline else "<I", *(
                (value, 0) if inline else (value,))))
        out.extend(struct.pack("<I", 0))
        return at

    mosaic = directory([(254, 4, 1, 0), (256, 4, 1, rw), (257, 4, 1, rh), (258, 3, 1, 16), (259, 3, 1, 1),
                        (262, 3, 1, 32803), (273, 4, 1, raw_at), (277, 3, 1, 1), (278, 4, 1, rh), (279, 4, 1, rw * rh * 2)])
    first = directory([(254, 4, 1, 1), (256, 4, 1, pw), (257, 4, 1, ph), (258, 3, 3, bits_at), (259, 3, 1, 1),
                       (262, 3, 1, 2), (273, 4, 1, preview_at), (277, 3, 1, 3), (278, 4, 1, ph), (279, 4, 1, pw * ph * 3),
                       (330, 4, 1, mosaic)])
    out[4:8] = struct.pack("<I", first)
    return bytes(out)


def test_a_camera_raw_file_is_refused_not_its_preview_scored(tmp_path):
    """A DNG (a microscope's DSLR or camera saving raw): OpenCV decodes the first picture of a TIFF, which in
    a raw file is a small preview of the photo (here 64×48 px of a 400×300 px photo), so ``classify`` scored
    the preview as a patch and ``run --source`` as a frame at the scale given for the photo, silently. Such a
    file is refused, named as a camera raw file with what to do; in a folder it is skipped and said."""
    import numpy as np

    assert cv2.imdecode(np.frombuffer(_raw_file(tissue_frame(64, 48)), np.uint8), cv2.IMREAD_COLOR).shape == (48, 64, 3)
    folder = tmp_path / "card"
    folder.mkdir()
    (folder / "DSC_0001.dng").write_bytes(_raw_file(tissue_frame(64, 48)))
    assert cv2.imwrite(str(folder / "DSC_0002.png"), tissue_frame())

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "idc_edge", *map(str, args), "--model", TINY], capture_output=True,
                              text=True, timeout=120)

    for args in (["classify", folder / "DSC_0001.dng"], ["run", "--source", folder / "DSC_0001.dng", "--quiet"]):
        p = cli(*args)
        assert p.returncode == 2 and "DSC_0001.dng,," not in p.stdout, p.stdout
        error = [line for line in p.stderr.splitlines() if line.startswith("idc-edge: error: ")]
        assert len(error) == 1 and "camera raw file" in error[0] and "64×48 px preview" in error[0], p.stderr
    p = cli("classify", folder)
    assert p.returncode == 0 and "DSC_0001" not in p.stdout and "DSC_0002.png" in p.stdout, p.stderr
    assert "skipped 1 camera raw file(s)" in p.stderr and "corrupt" not in p.stderr, p.stderr
    p = cli("run", "--source", folder, "--record", tmp_path / "r.jsonl", "--quiet")
    assert p.returncode == 0 and "camera raw file" in p.stderr, p.stderr
    assert len((tmp_path / "r.jsonl").read_text().splitlines()) == 2  # the header and the PNG's frame


# -- BigTIFF: the 64-bit TIFF of stitched mosaics and whole-slide exports ---------------------------------------------

def _bigtiff(pages) -> bytes:
    """A little-endian BigTIFF (``II+``: 8-byte offsets, as Fiji's "Save as BigTIFF", QuPath's and slide
    scanners' exports write) of the given BGR uint8 pictures, one page each, each one Deflate-compressed strip."""
    import struct
    import zlib

    import numpy as np

    out = bytearray(b"II+\x00\x08\x00\x00\x00" + b"\x00" * 8)
    link = 8  # where the offset of the next directory goes
    for bgr in pages:
        h, w = bgr.shape[:2]
        strip = zlib.compress(np.ascontiguousarray(bgr[..., ::-1]).tobytes())
        strip_at = len(out)
        out += strip
        tags = [(256, "I", w), (257, "I", h), (258, "3H", (8, 8, 8)), (259, "H", 8), (262, "H", 2), (273, "Q", strip_at),
                (277, "H", 3), (278, "I", h), (279, "Q", len(strip))]
        at = len(out)
        out += struct.pack("<Q", len(tags))
        for tag, fmt, value in tags:
            kind, count = {"H": 3, "3H": 3, "I": 4, "Q": 16}[fmt], 3 if fmt == "3H" else 1
            out += struct.pack("<HHQ", tag, kind, count) + struct.pack("<" + fmt, *(
                value if isinstance(value, tuple) else (value,))).ljust(8, b"\x00")
        out[link:link + 8] = struct.pack("<Q", at)
        link = len(out)
        out += b"\x00" * 8
    return bytes(out)


def test_a_bigtiff_is_checked_by_its_header_as_a_tiff_is(tmp_path):
    """A BigTIFF's header was not read at all (only ``II*``/``MM*`` were TIFFs to the header readers): a
    compressed mosaic of 10000×8000 px (a few hundred KB on disk) was decoded whole, 240 MB, before any
    budget check (a small board's memory gone; a classic TIFF is refused from its header first), and a
    BigTIFF of two pages was read as its first without a word. Its header is read as a TIFF's: the memory
    budget refuses it before decoding, and its pages are counted."""
    import os

    import numpy as np

    mosaic = tmp_path / "stitched.tif"
    mosaic.write_bytes(_bigtiff([np.full((8000, 10000, 3), 240, np.uint8)]))
    assert mosaic.stat().st_size < 1_000_000
    env = dict(os.environ, IDC_EDGE_MEMORY_MB="64")
    p = subprocess.run([sys.executable, "-m", "idc_edge", "classify", str(mosaic), "--model", TINY], capture_output=True,
                       text=True, timeout=120, env=env)
    error = [line for line in p.stderr.splitlines() if line.startswith("idc-edge: error: ")]
    assert p.returncode == 2 and len(error) == 1, p.stderr
    assert "decoding image" in error[0] and "10000×8000 px" in error[0], error[0]  # from the header, not after decoding

    stack = tmp_path / "stack.tif"
    stack.write_bytes(_bigtiff([tissue_frame(), tissue_frame(100, 80)]))
    p = subprocess.run([sys.executable, "-m", "idc_edge", "run", "--source", str(stack), "--model", TINY, "--quiet"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and "is a TIFF of 2 pages: only the first is read" in p.stderr, p.stderr


# -- hand-edited files holding a number of thousands of digits --------------------------------------------------------

def test_a_number_of_thousands_of_digits_in_a_profile_or_frame_index_is_named_not_an_internal_error(tmp_path, capsys):
    """Python converts whole numbers of at most 4,300 digits: a hand-edited profile (``frame_width`` pasted
    over and over, a stuck key) and a video's frame index holding a longer one ended ``run --profile`` and
    ``report --html`` in "internal error (ValueError: Exceeds the limit (4300 digits) ...)". The profile is
    one line naming it and what to do; the index line is skipped like any other line that is no frame."""
    from hostile import cli, one_error_line, write_video

    profile = tmp_path / "scope.toml"
    profile.write_text(f'camera = "0"\n[scale]\num_per_px = 1.0\nframe_width = {"9" * 5000}\nframe_height = 480\n')
    code, err = cli(capsys, "run", "--profile", profile, "--source", write_video(tmp_path / "v.avi", 3), "--model", TINY)
    assert code == 2 and "scope.toml" in one_error_line(err) and "number too long" in err, err

    record, video = tmp_path / "r.jsonl", tmp_path / "out.avi"
    code, err = cli(capsys, "run", "--source", tmp_path / "v.avi", "--model", TINY, "--record", record, "--save-video", video,
                    "--quiet")
    assert code == 0, err
    index = video.with_name("out.avi.frames.tsv")
    index.write_text(index.read_text().replace("1\t1\n", "1\t" + "9" * 5000 + "\n"))
    code, err = cli(capsys, "report", record, "--html", tmp_path / "r.html")
    assert code == 0 and "error" not in err, err
    assert "data:image/jpeg" in (tmp_path / "r.html").read_text()  # pictures from the video, as before the edit


# -- OpenCV's pixel limit set low in the environment (round 14's finding) -------------------------------------------

def test_an_image_over_opencv_s_pixel_limit_from_the_environment_is_named_not_called_corrupt(tmp_path):
    """``OPENCV_IO_MAX_IMAGE_PIXELS`` (a container's or a shell's setting) makes OpenCV refuse every larger image:
    good pictures were reported as "empty, corrupt or not an image format OpenCV reads". Now the setting is
    named, with the picture's size, in ``run`` and in ``classify``."""
    import os

    picture = tmp_path / "field.png"
    assert cv2.imwrite(str(picture), tissue_frame(100, 80))
    env = {**os.environ, "OPENCV_IO_MAX_IMAGE_PIXELS": "1000"}
    for command in (["run", "--source", picture, "--um-per-px", "4"], ["classify", picture]):
        p = subprocess.run([sys.executable, "-m", "idc_edge", *map(str, command), "--model", TINY],
                           capture_output=True, text=True, timeout=120, env=env)
        assert p.returncode == 2, p.stderr
        lines = [line for line in p.stderr.splitlines() if line.startswith("idc-edge: error")]
        assert len(lines) == 1 and "OPENCV_IO_MAX_IMAGE_PIXELS=1000" in lines[0] and "100×80 px" in lines[0], p.stderr
        assert "Traceback" not in p.stderr and "corrupt" not in lines[0]


# -- the output folder deleted during a run (round 15's open finding) ----------------------------------------------

def test_a_results_folder_deleted_during_the_run_is_made_again_with_every_line(tmp_path, caplog):
    """``rm -rf out`` (a clean-up script) while ``run --record out/results.jsonl`` goes on: the deleted file was
    made again at its name, but its folder was gone too, so the run ended "cannot be made again (the folder ...
    does not exist)" and every line written was lost with the open file. Now the folder is made again too."""
    import shutil

    from test_hostile_round11 import run_with

    from idc_edge.record import read_records, read_sessions

    out = tmp_path / "out"
    out.mkdir()
    results = out / "results.jsonl"
    summary = run_with(tmp_path, results, lambda: shutil.rmtree(out))
    assert [r["index"] for r in read_records(results)] == list(range(8))
    assert len(read_sessions(results)) == 1 and read_sessions(results)[0].header is not None
    assert f"8 result(s) in {results}" in summary.line()
    assert sum("deleted with its folder" in r.getMessage() for r in caplog.records) == 1


def test_a_video_s_folder_deleted_during_the_run_is_made_again_with_every_frame(tmp_path, caplog):
    """``rm -rf out`` while ``--save-video out/v.avi`` records: OpenCV wrote on into the unnamed file, and at the
    end the video could not be saved again ("the folder ... does not exist"): every frame lost. Now the folder is
    made again and the video put in place with every frame."""
    import shutil

    from conftest import frame_with_blob
    from test_faults_cli import frame_count

    from idc_edge.record import VideoRecorder

    out = tmp_path / "out"
    out.mkdir()
    frames = [frame_with_blob(shape=(120, 160), box=(10 + 6 * i, 20, 90 + 6 * i, 100)) for i in range(12)]
    rec = VideoRecorder(out / "v.avi", fps=5)
    for frame in frames[:6]:
        rec.write(frame)
    shutil.rmtree(out)
    for frame in frames[6:]:
        rec.write(frame)
    with caplog.at_level("WARNING", logger="idc_edge"):
        rec.close()
    assert "were kept and the video is put in place" in caplog.text
    assert frame_count(out / "v.avi") == 12
