"""Small messages that named the wrong thing or nothing at all (real files, the command as a subprocess)."""
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import frame_with_blob
from idc_edge import Detector
from idc_edge.errors import OptionError


def idc_edge(*args):
    return subprocess.run([sys.executable, "-m", "idc_edge", *map(str, args)], capture_output=True, text=True,
                          timeout=180)


def test_a_12_bit_image_is_warned_about_in_the_command_lines_words_not_the_apis(tmp_path):
    twelve = tmp_path / "twelve.png"
    cv2.imwrite(str(twelve), frame_with_blob(shape=(150, 200)).astype(np.uint16) * 16)
    for command in (("classify", twelve), ("run", "--source", twelve)):
        p = idc_edge(*command, "--quiet")
        assert p.returncode == 0 and "read as 12-bit" in p.stderr, p.stderr
        # "pass bits= to to_bgr8" has no command-line equivalent
        assert "bits=" not in p.stderr and "to_bgr8" not in p.stderr
        assert "convert the images to 8 bits per channel first" in p.stderr


def test_an_image_folder_says_once_that_its_sub_folders_and_videos_are_not_read(tmp_path):
    folder = tmp_path / "in"
    (folder / "more").mkdir(parents=True)
    cv2.imwrite(str(folder / "img.png"), frame_with_blob(shape=(120, 160)))
    cv2.imwrite(str(folder / "more" / "img2.png"), frame_with_blob(shape=(120, 160)))
    writer = cv2.VideoWriter(str(folder / "good.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (160, 120))
    writer.write(frame_with_blob(shape=(120, 160)))
    writer.release()
    shutil.copyfile(folder / "good.avi", folder / "z.mp4")
    p = idc_edge("run", "--source", folder, "--quiet")
    assert p.returncode == 0 and "1 frame(s)" in p.stdout + p.stderr
    assert p.stderr.count("1 sub-folder(s) and 2 video(s) in it are not read") == 1, p.stderr


def test_stream_given_a_path_says_to_open_it_as_a_source(tmp_path):
    with Detector() as det:
        for path in ("in/good.avi", tmp_path / "good.avi"):
            with pytest.raises(OptionError, match=r"open it as a source: stream\(open_source\(path\)\)"):
                det.stream(path)


def test_a_folder_as_the_model_is_the_same_one_line_in_every_command(tmp_path):
    """``run --model .`` (``./``, ``/``) and ``bench --model .`` were internal errors ("PosixPath('.') has
    an empty name": a sidecar name made from a path with no file name); info said "is a folder"."""
    image = tmp_path / "f.png"
    cv2.imwrite(str(image), frame_with_blob(shape=(150, 200)))
    for model in (".", "./", "/"):
        commands = [("run", "--source", image), ("bench", "--quick"), ("info",), ("classify", image),
                    ("evaluate", tmp_path)]
        for command in commands:
            p = idc_edge(*command, "--model", model)
            assert p.returncode == 2 and p.stderr == f"idc-edge: error: model file '{model}' is a folder, not a regular " \
                                                     "file\n", (command, p.stderr)


def test_what_dash_is_told_to_use_instead_works(tmp_path):
    """``--source -`` / ``classify -`` advised "name /dev/stdout or /dev/stdin", and run and classify then
    refused /dev/stdin as a FIFO; the advice for each option is now one that works."""
    image = tmp_path / "f.png"
    cv2.imwrite(str(image), frame_with_blob(shape=(150, 200)))
    for command in (("run", "--source", "-"), ("classify", "-")):
        p = idc_edge(*command)
        assert p.returncode == 2 and p.stderr.count("\n") == 1, p.stderr
        assert "is not standard input here" in p.stderr and "save the data to a file and name that file" in p.stderr
        assert "name /dev/stdin" not in p.stderr and "/dev/stdout" not in p.stderr
    p = subprocess.run([sys.executable, "-m", "idc_edge", "classify", "/dev/stdin"], input=image.read_bytes(),
                       capture_output=True, timeout=180)
    assert p.returncode == 2  # what the old advice said: refused
    p = idc_edge("run", "--source", image, "--record", "-")
    assert p.returncode == 2 and "name /dev/stdout for it" in p.stderr
    p = idc_edge("run", "--source", image, "--record", "/dev/stdout", "--quiet")  # ... and it works
    assert p.returncode == 0 and '"index":0' in p.stdout, p.stderr


def test_a_url_given_as_source_is_echoed_as_typed(tmp_path):
    """``Path()`` made ``http://127.0.0.1:1/x.mjpg`` ``http:/127.0.0.1:1/x.mjpg`` in the message."""
    p = idc_edge("run", "--source", "http://127.0.0.1:1/x.mjpg")
    assert p.returncode == 2 and "source 'http://127.0.0.1:1/x.mjpg' does not exist" in p.stderr, p.stderr


def test_a_url_with_a_password_is_masked_in_every_error_line(tmp_path):
    """``--source rtsp://u:s3cret@cam/x`` was refused with the password echoed twice ("source ... does not
    exist ... use --camera ..."); every error of the API and every error line now masks it, in the
    user-info and in the query string, whichever path raised it."""
    urls = ("rtsp://admin:s3cret@cam/live", "rtsp://cam/live?user=admin&password=s3cret",
            "http://127.0.0.1:1/x.mjpg?usr=a&pwd=s3cret")
    for url in urls:
        for command in (("run", "--source", url), ("run", "--camera", url, "--camera-timeout", "2"),
                        ("classify", url), ("calibrate", "scale", "--profile", "p", "--spacing-um", "10", "--source", url)):
            p = idc_edge(*command)
            assert p.returncode == 2 and p.stderr.count("\n") == 1, (command, p.stderr)
            assert "s3cret" not in p.stderr and "***" in p.stderr, (command, p.stderr)
    from idc_edge.errors import SourceError
    from idc_edge.sources import open_source

    with pytest.raises(SourceError) as e:
        open_source(urls[1])
    assert "s3cret" not in str(e.value) and "password=***" in str(e.value)


@pytest.mark.skipif(not __import__("os").path.isfile("/proc/self/mountinfo"), reason="needs Linux's /proc")
def test_an_output_on_the_kernel_s_file_systems_is_named_as_such_not_an_io_error(tmp_path):
    """``--record /proc/version`` was "an I/O error (failing SD card or disk?)", ``--save-video /proc/x.mp4``
    and ``classify --out /proc/version`` "it does not exist" (for a folder that plainly does): every
    output (results, video, CSV, HTML, snapshots folder) now names the kernel's file system and says
    to give a place on a disk, before any frame is read. A pipe reached through /proc still streams."""
    image = tmp_path / "f.png"
    cv2.imwrite(str(image), frame_with_blob(shape=(150, 200)))
    record = tmp_path / "r.jsonl"
    assert idc_edge("run", "--source", image, "--record", record, "--quiet").returncode == 0
    cases = [(("run", "--source", image, "--record", "/proc/version"), "results file '/proc/version'", "/proc", "proc"),
             (("run", "--source", image, "--record", "/proc/new.jsonl"), "results file '/proc/new.jsonl'", "/proc", "proc"),
             (("run", "--source", image, "--save-video", "/proc/version.mp4"), "video file '/proc/version.mp4'", "/proc",
              "proc"),
             (("run", "--source", image, "--save-video", "/sys/kernel/x.avi"), "video file '/sys/kernel/x.avi'", "/sys",
              "sysfs"),
             (("run", "--source", image, "--serve", "127.0.0.1:0", "--snapshots", "/proc/snaps"),
              "snapshots folder '/proc/snaps'", "/proc", "proc"),
             (("classify", image, "--out", "/proc/version"), "--out '/proc/version'", "/proc", "proc"),
             (("report", record, "--html", "/proc/x.html"), "--html '/proc/x.html'", "/proc", "proc")]
    for command, what, mount, kind in cases:
        p = idc_edge(*command)
        assert p.returncode == 2 and p.stderr == (
            f"idc-edge: error: cannot write {what}: it is in {mount}, the kernel's {kind} file system, where files are "
            "the kernel's, not ours; give a place on a disk (in your home folder, for example)\n"), (command, p.stderr)
    p = subprocess.run(f"{sys.executable} -m idc_edge run --source {image} --record /dev/stdout --quiet | cat",
                       shell=True, capture_output=True, text=True, timeout=180)
    assert p.returncode == 0 and p.stdout.count('"index"') == 1, p.stderr


def test_the_file_system_of_a_path_is_the_deepest_mount_holding_it(tmp_path):
    from idc_edge.mounts import file_system_of, pseudo_file_system

    info = tmp_path / "mountinfo"
    info.write_text("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
                    "23 22 0:5 / /proc rw - proc proc rw\n"
                    "24 22 0:6 / /mnt/my\\040disk rw shared:1 - vfat /dev/sdb1 rw\n"
                    "25 23 0:7 / /proc/sys/fs/binfmt_misc rw - binfmt_misc none rw\n")
    assert file_system_of("/proc/version", str(info)) == ("proc", "/proc")
    assert file_system_of("/processed/a.jsonl", str(info)) == ("ext4", "/")  # a prefix of the name is not a mount
    assert file_system_of("/mnt/my disk/r.jsonl", str(info)) == ("vfat", "/mnt/my disk")
    assert pseudo_file_system("/proc/sys/fs/binfmt_misc/x", str(info)) == ("binfmt_misc", "/proc/sys/fs/binfmt_misc")
    assert pseudo_file_system("/home/a.jsonl", str(info)) is None
    assert file_system_of("/x", str(tmp_path / "missing")) is None  # no /proc: nothing known, nothing refused


def test_an_image_where_frames_were_expected_is_named_an_image_with_what_to_use_instead(tmp_path):
    """A JPEG piped to ``--source /dev/stdin`` was "video '/dev/stdin' is a FIFO"; a JPEG without an image
    suffix (``frame``, ``slide.avi``) was run as a "video"; one behind a camera path (``--camera frame``,
    ``--camera /dev/stdin < photo.jpg``) was opened as a capture that gave its one frame, "dropped out"
    and was re-opened for ever. Images are now told by their first bytes, wherever they are given."""
    photo = tmp_path / "photo.jpg"
    cv2.imwrite(str(photo), frame_with_blob(shape=(150, 200)))
    frame, slide = tmp_path / "frame", tmp_path / "slide.avi"
    shutil.copyfile(photo, frame)
    shutil.copyfile(photo, slide)
    for source in (frame, slide):
        record = tmp_path / f"{source.name}.jsonl"
        p = idc_edge("run", "--source", source, "--record", record, "--quiet")
        assert p.returncode == 0 and "1 frame(s)" in p.stdout + p.stderr, p.stderr
        header = __import__("json").loads(record.read_text().splitlines()[0])["session"]
        assert header["source"]["description"] == f"image '{source}'"
    p = idc_edge("run", "--camera", frame, "--camera-timeout", "2")
    assert p.returncode == 2 and p.stderr == (
        f"idc-edge: error: argument --camera: '{frame}' is a JPEG image, not a camera: for an image use `idc-edge "
        f"classify {frame}`, or --source {frame} to run it as one frame; see `idc-edge run --help`\n"), p.stderr
    with open(photo, "rb") as stdin:
        p = subprocess.run([sys.executable, "-m", "idc_edge", "run", "--camera", "/dev/stdin", "--camera-timeout", "2"],
                           stdin=stdin, capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "'/dev/stdin' is a JPEG image, not a camera: for an image use `idc-edge classify " \
                                 "FILE`" in p.stderr and p.stderr.count("\n") == 1, p.stderr
    p = subprocess.run(f"cat {photo} | {sys.executable} -m idc_edge run --source /dev/stdin", shell=True,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and p.stderr == (
        "idc-edge: error: source '/dev/stdin' is a pipe carrying a JPEG image: no source reads a pipe; save the image "
        "to a file: for an image use `idc-edge classify FILE`, or --source FILE to run it as one frame\n"), p.stderr
    assert "video" not in p.stderr


def test_image_formats_are_told_by_their_first_bytes():
    from idc_edge.sources.sniff import image_format

    for ext, fmt in ((".jpg", "JPEG"), (".png", "PNG"), (".tif", "TIFF"), (".bmp", "BMP"), (".webp", "WebP")):
        ok, data = cv2.imencode(ext, np.full((8, 8, 3), 90, np.uint8))
        assert ok and image_format(data.tobytes()[:16]) == fmt, ext
    assert image_format(b"RIFF\x00\x00\x00\x00AVI LIST") is None and image_format(b"\x1aE\xdf\xa3") is None
