"""Hostile inputs and outputs that used to fail quietly: options ignored, pictures read on their side,
outputs half-written over good files, paths that move with the working directory, videos cut short,
data sets stopped by one file.

Everything is real: videos and images are written and read back with OpenCV, the command line runs
in-process through ``idc_edge.cli.main`` (its exit code and stderr exactly as the program's).
"""
from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from idc_edge import cli


def call(capsys, *argv) -> tuple[int, list[str], str]:
    """(exit code, non-empty stderr lines, stdout) of the command line run in-process."""
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, [line for line in err.splitlines() if line.strip()], out


def one_error_line(capsys, *argv) -> str:
    code, lines, _ = call(capsys, *argv)
    assert code == 2 and len(lines) == 1 and lines[0].startswith("idc-edge: error:"), (code, lines)
    return lines[0]


def write_video(path, frames) -> None:
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (w, h))
    assert writer.isOpened()
    for frame in frames:
        writer.write(frame)
    writer.release()


@pytest.fixture
def video(tmp_path):
    path = tmp_path / "slide.avi"
    write_video(path, [np.full((64, 80, 3), 200 - 20 * i, np.uint8) for i in range(3)])
    return path


# -- camera-only options with a file ------------------------------------------------------------------------------

CAMERA_ONLY = [["--size", "640x480"], ["--fps", "5"], ["--fourcc", "MJPG"], ["--lock-exposure"],
               ["--lock-exposure", "--exposure-us", "1000"], ["--lock-white-balance"], ["--colour-gains", "1.5,1.2"],
               ["--camera-timeout", "3"], ["--fps", "0"]]


@pytest.mark.parametrize("option", CAMERA_ONLY + [["--full-decode"]], ids=" ".join)
def test_run_refuses_a_camera_only_option_with_a_file_naming_it(capsys, video, option):
    line = one_error_line(capsys, "run", "--source", video, *option, "--max-frames", 1, "--quiet")
    assert f"{option[0]} applies to a camera only" in line and "--source" in line


@pytest.mark.parametrize("option", CAMERA_ONLY, ids=" ".join)
def test_calibrate_refuses_a_camera_only_option_with_a_file_and_saves_no_profile(capsys, tmp_path, monkeypatch, option):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    glass = tmp_path / "glass.png"
    cv2.imwrite(str(glass), np.full((60, 80, 3), 230, np.uint8))
    line = one_error_line(capsys, "calibrate", "white", "--source", glass, *option, "--profile", "scope")
    assert f"{option[0]} applies to a camera only" in line
    assert not (tmp_path / "config").exists()


def test_patient_applies_to_a_data_set_folder_only(capsys, video, synthetic_dataset):
    line = one_error_line(capsys, "run", "--source", video, "--patient", "p1", "--quiet")
    assert "--patient applies to a data-set folder only" in line and "slide.avi" in line
    line = one_error_line(capsys, "run", "--camera", 0, "--patient", "p1", "--quiet")
    assert "--patient applies to a data-set folder only" in line and "a camera" in line


def test_options_for_something_not_asked_for_are_refused(capsys, tmp_path, video, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    assert "--no-white-balance applies with a --profile that has a white reference" in one_error_line(
        capsys, "run", "--source", video, "--no-white-balance", "--quiet")
    scale_only = tmp_path / "scale.toml"
    scale_only.write_text("[scale]\num_per_px = 2.0\nframe_width = 80\nframe_height = 64\n")
    line = one_error_line(capsys, "run", "--source", video, "--profile", scale_only, "--no-white-balance", "--quiet")
    assert "has none" in line
    line = one_error_line(capsys, "run", "--source", video, "--snapshots", tmp_path / "shots", "--quiet")
    assert "--snapshots applies with --serve or --show only" in line and not (tmp_path / "shots").exists()
    glass = tmp_path / "glass.png"
    cv2.imwrite(str(glass), np.full((60, 80, 3), 230, np.uint8))
    line = one_error_line(capsys, "calibrate", "white", "--source", glass, "--spacing-um", 10, "--profile", "p")
    assert "--spacing-um applies to `calibrate scale` only" in line and not (tmp_path / "config").exists()
    line = one_error_line(capsys, "calibrate", "white", "--source", glass, "--frames", 4, "--profile", "p")
    assert "--frames applies to a camera only" in line


def test_camera_options_still_reach_their_own_checks_with_a_camera(capsys):
    # the value is checked as before; only its use with a file is new
    assert "--camera-timeout must be > 0" in one_error_line(capsys, "run", "--camera", 0, "--camera-timeout", 0)


# -- EXIF orientation ---------------------------------------------------------------------------------------------

def with_orientation(jpeg: bytes, orientation: int) -> bytes:
    """A JPEG's bytes with an EXIF block (APP1, big-endian TIFF, one IFD) holding ``orientation``,
    as a phone writes it."""
    tiff = b"MM\0*" + struct.pack(">IH", 8, 1) + struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + b"\0\0\0\0"
    app1 = b"Exif\0\0" + tiff
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + jpeg[2:]


def sensor_image(h: int = 40, w: int = 60) -> np.ndarray:
    """BGR, no symmetry: a red block at the top left, a green one at the bottom, noise elsewhere."""
    img = np.random.default_rng(1).integers(60, 120, (h, w, 3), dtype=np.uint8)
    img[:10, :20] = (0, 0, 255)
    img[-8:, w // 2:] = (0, 255, 0)
    return img


@pytest.mark.parametrize("orientation", range(1, 9))
def test_a_tagged_jpeg_reads_upright_with_every_flag_as_opencvs_imread_shows_it(tmp_path, orientation):
    from idc_edge.fileio import read_image
    from idc_edge.orientation import exif_orientation
    from idc_edge.sources import ImageSource

    ok, jpeg = cv2.imencode(".jpg", sensor_image())
    path = tmp_path / f"photo{orientation}.jpg"
    path.write_bytes(with_orientation(jpeg.tobytes(), orientation))
    assert exif_orientation(path.read_bytes()) == orientation
    shown = cv2.imread(str(path))  # imread applies the tag: the picture as a photo viewer shows it
    assert shown.shape[:2] == ((60, 40) if orientation >= 5 else (40, 60))
    np.testing.assert_array_equal(read_image(path, flags=cv2.IMREAD_COLOR), shown)
    np.testing.assert_array_equal(read_image(path), shown)  # IMREAD_UNCHANGED: OpenCV alone leaves it as stored
    np.testing.assert_array_equal(ImageSource(path).image, shown)


def tiff_bytes(bgr: np.ndarray, orientation: int) -> bytes:
    """An uncompressed RGB TIFF (little-endian, one strip) of ``bgr`` with an Orientation tag, as a
    scanner or camera writes it."""
    h, w = bgr.shape[:2]
    pixels = np.ascontiguousarray(bgr[..., ::-1]).tobytes()
    entries = [(256, 3, 1, w), (257, 3, 1, h), (258, 3, 3, 0), (259, 3, 1, 1), (262, 3, 1, 2), (273, 4, 1, 0),
               (274, 3, 1, orientation), (277, 3, 1, 3), (278, 3, 1, h), (279, 4, 1, len(pixels)), (284, 3, 1, 1)]
    ifd_size = 2 + 12 * len(entries) + 4
    bits_at = 8 + ifd_size
    strip_at = bits_at + 6
    out = [b"II*\0", struct.pack("<I", 8), struct.pack("<H", len(entries))]
    for tag, kind, count, value in entries:
        value = {258: bits_at, 273: strip_at}.get(tag, value)
        out.append(struct.pack("<HHI", tag, kind, count) + (struct.pack("<HH", value, 0) if kind == 3 and count == 1
                                                             else struct.pack("<I", value)))
    return b"".join(out + [b"\0\0\0\0", struct.pack("<HHH", 8, 8, 8), pixels])


@pytest.mark.parametrize("orientation", range(1, 9))
def test_a_tagged_tiff_reads_upright_once_although_opencv_turns_tiffs_itself(tmp_path, orientation):
    # OpenCV 5's TIFF decoder applies the tag whatever the flags: applied again, a portrait scan came
    # back on its side (6 and 8) or upside down (3)
    from idc_edge.fileio import read_image
    from idc_edge.orientation import upright

    stored = sensor_image()
    path = tmp_path / "scan.tif"
    path.write_bytes(tiff_bytes(stored, 1))
    np.testing.assert_array_equal(read_image(path), stored)  # the hand-made TIFF reads as written
    path.write_bytes(tiff_bytes(stored, orientation))
    expected = upright(stored, orientation)
    np.testing.assert_array_equal(read_image(path), expected)
    np.testing.assert_array_equal(read_image(path, flags=cv2.IMREAD_COLOR), expected)


def test_orientation_in_png_and_webp_and_damaged_exif(tmp_path, capfd):
    from idc_edge.fileio import read_image
    from idc_edge.orientation import exif_orientation

    tiff = b"II*\0" + struct.pack("<IH", 8, 1) + struct.pack("<HHIHH", 0x0112, 3, 1, 6, 0) + b"\0\0\0\0"
    ok, png = cv2.imencode(".png", sensor_image())
    png = png.tobytes()
    chunk = struct.pack(">I", len(tiff)) + b"eXIf" + tiff + struct.pack(">I", zlib.crc32(b"eXIf" + tiff))
    (tmp_path / "p.png").write_bytes(png[:33] + chunk + png[33:])
    assert exif_orientation((tmp_path / "p.png").read_bytes()) == 6
    np.testing.assert_array_equal(read_image(tmp_path / "p.png"), cv2.rotate(sensor_image(), cv2.ROTATE_90_CLOCKWISE))
    assert "CRC" not in capfd.readouterr().err  # the tag is taken out with the chunk's checksum mended
    body = b"Exif\0\0" + tiff
    webp = b"WEBP" + b"VP8X" + struct.pack("<I", 10) + bytes(10) + b"EXIF" + struct.pack("<I", len(body)) + body
    assert exif_orientation(b"RIFF" + struct.pack("<I", len(webp)) + webp) == 6
    ok, jpeg = cv2.imencode(".jpg", sensor_image())
    for damaged in (with_orientation(jpeg.tobytes(), 0), with_orientation(jpeg.tobytes(), 99),
                    with_orientation(jpeg.tobytes(), 6)[:30], b"\xff\xd8\xff\xe1\xff\xff" + b"Exif\0\0MM"):
        assert exif_orientation(damaged) == 1


@pytest.fixture
def portrait(tmp_path):
    """(a phone's JPEG: landscape pixels tagged "turn 90° clockwise", the same picture upright as a
    PNG without a tag): purple IDC-like tissue in the top half of the upright picture, pink below."""
    from tiny_model import PINK, PURPLE

    upright = np.empty((200, 100, 3), np.uint8)
    upright[:100] = PURPLE[::-1]
    upright[100:] = PINK[::-1]
    upright = np.clip(upright + np.random.default_rng(2).normal(0, 12, upright.shape), 0, 255).astype(np.uint8)
    ok, jpeg = cv2.imencode(".jpg", cv2.rotate(upright, cv2.ROTATE_90_COUNTERCLOCKWISE), [cv2.IMWRITE_JPEG_QUALITY, 95])
    photo = tmp_path / "photos" / "portrait.jpg"
    photo.parent.mkdir()
    photo.write_bytes(with_orientation(jpeg.tobytes(), 6))
    plain = tmp_path / "upright.png"
    cv2.imwrite(str(plain), cv2.imread(str(photo)))  # the picture as a photo viewer shows it
    return photo, plain


def test_run_and_classify_read_a_portrait_photo_upright_on_every_path(capsys, tmp_path, tiny_int8, portrait,
                                                                      monkeypatch):
    monkeypatch.setenv("IDC_EDGE_CACHE_DIR", str(tmp_path / "cache"))
    photo, plain = portrait

    def frames(source):
        rec = tmp_path / f"r{len(list(tmp_path.glob('r*.jsonl')))}.jsonl"
        # gates off: two flat colour blocks with a straight edge between them read as a streak (0.32) once
        # streaks are judged from 160x120; the orientation is what is checked here
        code, lines, _ = call(capsys, "run", "--source", source, "--model", tiny_int8, "--record", rec, "--quiet",
                              "--no-gates")
        assert code == 0, lines
        return [{k: r[k] for k in ("frame", "idc_patches", "tissue_patches", "idc_boxes")}
                for r in map(json.loads, rec.read_text().splitlines()[1:])]

    expected = frames(plain)
    assert expected[0]["frame"] == {"width": 100, "height": 200} and expected[0]["idc_patches"] == 4
    assert frames(photo) == expected  # one image
    assert frames(photo.parent) == expected  # a folder of images

    def rows(path):
        code, lines, out = call(capsys, "classify", path, "--model", tiny_int8, "--quiet")
        assert code == 0, lines
        return [row.split(",")[1:] for row in out.splitlines()[1:]]

    expected = rows(plain)
    assert len(expected) == 8 and rows(photo) == expected


# -- outputs written whole or not at all --------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]


def with_file_size_limit(limit: int, *argv, env=None) -> subprocess.CompletedProcess:
    """The command line in a child whose files may not grow past ``limit`` bytes (RLIMIT_FSIZE: the
    kernel refuses the write with EFBIG, as a disk filling up would)."""
    code = (f"import resource, sys; resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit})); "
            f"from idc_edge import cli; sys.exit(cli.main({[str(a) for a in argv]!r}))")
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def assert_refused_and_kept(p, path, old: bytes, what: str) -> None:
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert p.returncode == 2 and len(lines) == 1, p.stderr
    assert lines[0].startswith(f"idc-edge: error: cannot write {what}") and "kept" in lines[0], lines[0]
    assert path.read_bytes() == old  # the earlier output, whole
    assert sorted(f.name for f in path.parent.iterdir() if f.name.endswith(".part")) == []  # nothing left behind


def test_report_html_that_cannot_be_written_whole_keeps_the_earlier_report(capsys, tmp_path, tiny_int8, video,
                                                                            monkeypatch):
    monkeypatch.setenv("IDC_EDGE_CACHE_DIR", str(tmp_path / "cache"))
    rec, html = tmp_path / "r.jsonl", tmp_path / "report.html"
    assert call(capsys, "run", "--source", video, "--model", tiny_int8, "--record", rec, "--quiet")[0] == 0
    assert call(capsys, "report", rec, "--html", html)[0] == 0
    old = html.read_bytes()
    assert len(old) > 3000 and old.lstrip().lower().startswith(b"<!doctype html")
    html.chmod(0o640)
    p = with_file_size_limit(2000, "report", rec, "--html", html)
    assert_refused_and_kept(p, html, old, "--html")
    # and written whole it replaces the old one in place: same permissions, a link kept as a link
    link = tmp_path / "latest.html"
    link.symlink_to(html.name)
    assert call(capsys, "report", rec, "--html", link)[0] == 0
    assert link.is_symlink() and html.read_bytes() == old and (html.stat().st_mode & 0o777) == 0o640


def test_classify_out_that_cannot_be_written_whole_keeps_the_earlier_csv(capsys, tmp_path, tiny_int8, portrait,
                                                                         monkeypatch):
    monkeypatch.setenv("IDC_EDGE_CACHE_DIR", str(tmp_path / "cache"))
    photo, plain = portrait
    out = tmp_path / "scores.csv"
    assert call(capsys, "classify", plain, "--model", tiny_int8, "--out", out, "--quiet")[0] == 0
    old = out.read_bytes()
    assert old.startswith(b"path,patient,label,probability") and old.count(b"\n") == 9
    p = with_file_size_limit(200, "classify", plain, photo, "--model", tiny_int8, "--out", out, "--quiet",
                             env={"IDC_EDGE_CACHE_DIR": str(tmp_path / "cache")})
    assert_refused_and_kept(p, out, old, "--out")


def test_calibrate_that_cannot_save_the_profile_whole_keeps_the_earlier_one(tmp_path):
    glass = tmp_path / "glass.png"
    cv2.imwrite(str(glass), np.full((60, 80, 3), (200, 215, 230), np.uint8))
    profile = tmp_path / "scope.toml"
    args = ("calibrate", "white", "--source", glass, "--profile", profile)
    assert with_file_size_limit(1 << 20, *args).returncode == 0
    old = profile.read_bytes()
    assert b"[white]" in old
    cv2.imwrite(str(glass), np.full((60, 80, 3), (180, 215, 240), np.uint8))  # new glass, new gains
    assert_refused_and_kept(with_file_size_limit(100, *args), profile, old, "profile")


def test_a_snapshot_that_cannot_be_written_whole_leaves_no_partial_picture(tmp_path):
    code = textwrap.dedent(f"""
        import resource
        import numpy as np
        from idc_edge.errors import RecordError
        from idc_edge.fileio import write_whole
        resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))
        try:
            write_whole({str(tmp_path / "shot.png")!r}, bytes(5000), "snapshot", error=RecordError)
        except RecordError as e:
            print(e)
    """)
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert p.stdout.startswith("cannot write snapshot") and "too large" in p.stdout, (p.stdout, p.stderr)
    assert list(tmp_path.iterdir()) == []


# -- path-valued environment variables ----------------------------------------------------------------------------

def test_relative_paths_in_environment_variables_stay_where_the_process_started(tmp_path):
    """A relative IDC_EDGE_CACHE_DIR or IDC_DATA_DIR means the same folder after a chdir (taken from
    the starting folder, absolute); empty counts as unset (the cache's documented switch-off aside);
    relative XDG folders are ignored, as their specification says."""
    start, elsewhere, home = tmp_path / "start", tmp_path / "elsewhere", tmp_path / "home"
    for d in (start, elsewhere, home):
        d.mkdir()
    code = ("import os, sys, idc_edge\n"
            "from idc_edge.dataset import default_data_dir\n"
            "from idc_edge.modelcheck import cache_dir\n"
            "from idc_edge.profiles import profiles_dir\n"
            "os.chdir(sys.argv[1])\n"
            "print(cache_dir(), default_data_dir(), profiles_dir(), sep='\\n')\n")

    def paths(**env):
        base = {k: v for k, v in os.environ.items() if k not in ("IDC_EDGE_CACHE_DIR", "IDC_DATA_DIR",
                                                                 "XDG_CACHE_HOME", "XDG_CONFIG_HOME")}
        p = subprocess.run([sys.executable, "-c", code, str(elsewhere)], cwd=start, capture_output=True, text=True,
                           timeout=60, env={**base, "HOME": str(home), "PYTHONPATH": str(ROOT), **env})
        assert p.returncode == 0, p.stderr
        return p.stdout.splitlines()

    assert paths(IDC_EDGE_CACHE_DIR="cache", IDC_DATA_DIR="data/idc", XDG_CONFIG_HOME="cfg") == [
        str(start / "cache" / "modelcheck"), str(start / "data" / "idc"), str(home / ".config" / "idc-edge" / "profiles")]
    assert paths(IDC_EDGE_CACHE_DIR=" ", IDC_DATA_DIR="", XDG_CONFIG_HOME="") == [
        "None", str(tmp_path / "shared" / "idc_patches"), str(home / ".config" / "idc-edge" / "profiles")]
    assert paths(XDG_CACHE_HOME="rel", IDC_DATA_DIR="~/idc")[:2] == [
        str(home / ".cache" / "idc-edge" / "modelcheck"), str(home / "idc")]


def test_a_relative_xdg_runtime_dir_is_not_looked_up_in_the_working_directory(tmp_path, monkeypatch):
    from idc_edge.sinks.window import display_problem

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "wayland-0").touch()
    monkeypatch.chdir(tmp_path)
    assert "is not running" in display_problem({"WAYLAND_DISPLAY": "wayland-0", "XDG_RUNTIME_DIR": "run"}, "linux")
    assert display_problem({"WAYLAND_DISPLAY": "wayland-0", "XDG_RUNTIME_DIR": str(tmp_path / "run")}, "linux") is None


def test_the_command_line_caches_in_the_relative_cache_folder_of_its_starting_folder(tmp_path, tiny_int8):
    start = tmp_path / "start"
    start.mkdir()
    p = subprocess.run([sys.executable, "-m", "idc_edge", "info", "--model", str(tiny_int8)], cwd=start,
                       capture_output=True, text=True, timeout=120,
                       env={**os.environ, "IDC_EDGE_CACHE_DIR": "verdicts", "PYTHONPATH": str(ROOT)})
    assert p.returncode == 0, p.stderr
    assert [f.suffix for f in (start / "verdicts" / "modelcheck").iterdir()] == [".ok"]


def test_classify_writes_no_decision_for_a_window_with_no_call_never_nan_and_not_idc(capsys, tmp_path, tiny_int8):
    """An image larger than a patch is tiled like a frame, gates and all: an out-of-focus field is no
    call. Its windows were written with probability "nan" and idc 0 (read as "no IDC", the answer the
    gates exist to prevent); now both stay empty, tissue 1, and a warning says how many."""
    from conftest import frame_with_blob

    sharp = frame_with_blob(shape=(200, 300), box=(40, 40, 260, 160))
    cv2.imwrite(str(tmp_path / "sharp.png"), sharp)
    cv2.imwrite(str(tmp_path / "blurred.png"), cv2.GaussianBlur(sharp, (0, 0), 8))
    for name, called in (("sharp", True), ("blurred", False)):
        code, lines, out = call(capsys, "classify", tmp_path / f"{name}.png", "--model", tiny_int8, "--quiet")
        rows = [r.split(",") for r in out.splitlines()[1:]]
        tissue = [r for r in rows if r[7] == "1"]
        assert code == 0 and tissue
        assert "nan" not in out
        if called:
            assert lines == [] and all(r[3] and r[4] in ("0", "1") for r in tissue)
        else:
            assert all(r[3] == r[4] == "" for r in tissue)
            assert lines == [f"idc-edge: warning: {len(tissue)} tissue window(s) of the larger images had no call (out "
                             "of focus, badly exposed, a colour cast or too grainy for the model): their probability "
                             "and idc are empty; check the images' focus and --um-per-px"]


def test_a_data_set_patch_larger_than_the_model_s_patch_is_skipped_and_named_not_cropped(capsys, caplog, tmp_path,
                                                                                          tiny_int8):
    """A 100×100 "patch" (another scale, another data set) was scored on its top-left 50×50 corner by
    evaluate, and placed cut on the run's rebuilt slide, without a word; now it is skipped and named."""
    from idc_edge.sources import open_source

    rng = np.random.default_rng(4)
    for label in (0, 1):
        folder = tmp_path / "data" / "p1" / str(label)
        folder.mkdir(parents=True)
        for i in range(3):
            cv2.imwrite(str(folder / f"p1_idx5_x{50 * i}_y{50 * label}_class{label}.png"),
                        rng.integers(60, 230, (50, 50, 3), dtype=np.uint8))
    big = tmp_path / "data" / "p1" / "0" / "p1_idx5_x150_y0_class0.png"
    cv2.imwrite(str(big), rng.integers(60, 230, (100, 100, 3), dtype=np.uint8))
    code, lines, out = call(capsys, "evaluate", tmp_path / "data", "--model", tiny_int8, "--json", "--quiet")
    assert code == 0 and json.loads(out)["n_patches"] == 6 and json.loads(out)["skipped_files"] == 1
    assert lines == ["idc-edge: warning: skipped 1 unreadable patch image(s) (corrupt, not images or larger than a "
                     f"patch), e.g. {big}"]
    with open_source(str(tmp_path / "data")) as source, caplog.at_level("WARNING", logger="idc_edge"):
        list(source)  # the library logs it (read from the log: stderr had it only while another test's handler was left)
    assert source.skipped == 1 and "larger than this data set's 50×50 px patches" in caplog.text
    for f in (tmp_path / "data" / "p1").glob("*/*_y*_class*.png"):
        if f != big:
            f.unlink()
    line = one_error_line(capsys, "evaluate", tmp_path / "data", "--model", tiny_int8, "--quiet")
    assert line == ("idc-edge: error: no readable patch to evaluate: all 1 are corrupt, not images or larger than a "
                    f"patch, e.g. '{big}'")


# -- frames that all carry one time ------------------------------------------------------------------------------

def _frames_at(times, fps=0.0):
    """A frame source (the library's FrameSource, as a user's own would be) whose frames carry ``times``;
    each frame a different shade, so repeats and drops show."""
    from idc_edge.sources.base import Frame, FrameSource

    class Stamped(FrameSource):
        def __init__(self):
            super().__init__("frames with one time")
            self.fps = fps

        def _iter_frames(self):
            for i, t in enumerate(times):
                yield Frame(i, t, np.full((60, 80, 3), (20 + 15 * i, 110, 200), np.uint8))

    return Stamped()


def read_back(path) -> tuple[int, float, list[float]]:
    """(frames, declared fps, mean blue of each frame) of a video read back with OpenCV."""
    cap = cv2.VideoCapture(str(path))
    fps, blues = cap.get(cv2.CAP_PROP_FPS), []
    while True:
        ok, image = cap.read()
        if not ok:
            break
        blues.append(float(image[..., 0].mean()))
    cap.release()
    return len(blues), fps, blues


@pytest.mark.parametrize("suffix", [".avi", ".mp4", ".mkv"])
@pytest.mark.parametrize("fps", [0.0, 5.0])  # without a declared rate (measured, none: 30) and with one
def test_frames_that_all_carry_one_time_each_get_their_own_video_frame(tmp_path, tiny_int8, suffix, fps):
    from idc_edge.detector import DetectorOptions
    from idc_edge.session import RunConfig, Session
    from idc_edge.sinks import VideoSink

    sink = VideoSink(tmp_path / f"v{suffix}")
    Session(RunConfig(source="x", detector=DetectorOptions(model_path=tiny_int8)), [sink],
            source=_frames_at([7.0] * 12, fps)).run()
    n, declared, blues = read_back(sink.path)
    assert n == sink.frames == 12 and sink.retimed == 11 and sink.repeated == 0 and sink.skipped == 0
    assert declared == pytest.approx(fps or 30.0)
    assert all(abs(b - a) > 1 for a, b in zip(blues, blues[1:]))  # no frame repeated in place of another


def _avi_stating(path, rate, scale, n=8, fps=10.0):
    """An MJPG AVI of ``n`` shaded frames whose header states ``rate / scale`` frames per second (the
    stream header's dwRate and dwScale; the main header's microseconds per frame to match)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (80, 60))
    for i in range(n):
        writer.write(np.full((60, 80, 3), (20 + 25 * i, 110, 200), np.uint8))
    writer.release()
    data = bytearray(path.read_bytes())
    avih, strh = data.find(b"avih"), data.find(b"strh")
    data[avih + 8:avih + 12] = struct.pack("<I", min(0xFFFFFFFF, round(1e6 * scale / rate)))
    data[strh + 28:strh + 36] = struct.pack("<II", scale, rate)
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("rate,scale,most", [
    (1, 4_000_000_000, 8),        # a damaged header: one frame every 127 years; its frames taken as 1 s apart
    (4_000_000_000, 1, 8),        # four billion a second: the same
    (1, 5, 5 * 7 + 1),            # a real time lapse, one frame every 5 s: written at 1 fps, 5 slots each
])
def test_a_video_file_stating_a_rate_far_from_real_keeps_its_saved_video_short(tmp_path, tiny_int8, caplog, rate,
                                                                               scale, most):
    """The overlay video of a file holds each frame as long as the file says, up to the longest pause
    (10 s): a header stating an impossible rate is not believed (every frame held 10 s at 30 fps made
    a 300 times longer video), and a slow real one is written at 1 frame per second, not 30."""
    from idc_edge.detector import DetectorOptions
    from idc_edge.session import RunConfig, run_session
    from idc_edge.sinks import VideoSink

    source = _avi_stating(tmp_path / "in.avi", rate, scale)
    sink = VideoSink(tmp_path / "out.avi")
    run_session(RunConfig(source=str(source), detector=DetectorOptions(model_path=tiny_int8)), [sink])
    n, fps, blues = read_back(sink.path)
    assert 8 <= n <= most and fps == pytest.approx(1.0)
    assert len({round(b) for b in blues}) == 8  # every frame of the file is there
    assert (scale / rate > 100 or rate / scale > 1e4) == ("not a rate a video has" in caplog.text)


def test_a_report_finds_each_record_s_own_video_frame_when_times_do_not_say(tmp_path, tiny_int8):
    """Twelve frames with one time are twelve video frames; the frame index beside the video says
    which is which, so a report's picture of record i is video frame i (by time they were all frame 0)."""
    from idc_edge.detector import DetectorOptions
    from idc_edge.report import VIDEO_UNVERIFIED, _video_frames
    from idc_edge.session import RunConfig, Session
    from idc_edge.sinks import VideoSink
    from idc_edge.sinks.video import read_frame_index

    sink = VideoSink(tmp_path / "v.avi")
    session = Session(RunConfig(source="x", detector=DetectorOptions(model_path=tiny_int8)), [sink],
                      source=_frames_at([7.0] * 12))
    session.run()
    assert read_frame_index(sink.index_path.read_bytes()) == {i: i for i in range(12)}
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]  # the hidden file took its name
    _, _, blues = read_back(sink.path)
    header = {"id": session.info.session_id, "outputs": {"video": sink.to_dict()}}
    records = [{"index": i, "time": 7.0} for i in (9, 2, 11)]
    pictures, why = _video_frames(header, 7.0, records)
    assert [float(p[..., 0].mean()) for p in pictures] == [blues[9], blues[2], blues[11]] and why is None
    sink.index_path.unlink()  # a video without its index names no session: not taken as this session's
    assert _video_frames(header, 7.0, records) == ([None] * 3, VIDEO_UNVERIFIED)


def test_a_frame_index_that_cannot_be_written_costs_only_the_index(tmp_path, tiny_int8, caplog):
    from idc_edge.detector import DetectorOptions
    from idc_edge.session import RunConfig, Session
    from idc_edge.sinks import VideoSink

    sink = VideoSink(tmp_path / "v.avi")
    sink.index_path.mkdir()  # a folder where the index would go
    Session(RunConfig(source="x", detector=DetectorOptions(model_path=tiny_int8)), [sink],
            source=_frames_at([0.1 * i for i in range(8)], 10.0)).run()
    assert read_back(sink.path)[0] == 8 and sink.index_path.is_dir()
    assert any("frame index" in r.getMessage() and "cannot tie this video to its session" in r.getMessage()
               for r in caplog.records)


def test_frames_whose_time_steps_back_are_all_kept(tmp_path, tiny_int8):
    from idc_edge.detector import DetectorOptions
    from idc_edge.session import RunConfig, Session
    from idc_edge.sinks import VideoSink

    sink = VideoSink(tmp_path / "v.avi", fps=10.0)
    Session(RunConfig(source="x", detector=DetectorOptions(model_path=tiny_int8)), [sink],
            source=_frames_at([0.0, 0.1, 0.1, 0.05, 0.05, 0.3])).run()
    n, _, _ = read_back(sink.path)
    assert n == sink.frames and sink.skipped == 0 and sink.retimed == 3 and sink.frames >= 6


# -- one misnamed file in a data-set folder -----------------------------------------------------------------------

MISNAMED = {  # path under the data set: why it is not a patch
    "p1/0/p1_idx5_x1_y1_class0 (copy).png": "not named",
    "p1/1/p1_idx5_x51_y51_class0.png": "in folder '1' but named class0",
    "p2/0/p2_idx5_x1234567890_y1_class0.png": "not named",  # a coordinate mistyped past 9 digits
    "p2/1/scan.jpg": "not a .png patch",
    "p2/1/p1_idx5_x1_y1_class1.png": "in patient folder 'p2' but named for patient 'p1'",  # would land on p1's slide
}


@pytest.fixture
def misnamed_dataset(synthetic_dataset):
    """The synthetic data set (real PNGs) plus real PNG/JPEG files named against the layout, and
    files any folder may collect (left out silently)."""
    patch = next((synthetic_dataset / "p1" / "0").glob("*.png")).read_bytes()
    for rel in MISNAMED:
        data = patch if rel.endswith(".png") else cv2.imencode(".jpg", np.full((50, 50, 3), 200, np.uint8))[1].tobytes()
        (synthetic_dataset / rel).write_bytes(data)
    (synthetic_dataset / "p1" / "0" / "Thumbs.db").write_bytes(b"\0" * 64)
    (synthetic_dataset / "p2" / "1" / "._p2_idx5_x1_y1_class1.png").write_bytes(b"\0" * 64)  # macOS resource fork
    return synthetic_dataset


def test_scanning_a_data_set_skips_and_lists_misnamed_files(misnamed_dataset, synthetic_dataset, caplog):
    from idc_edge.dataset import scan_dataset, scan_files

    scan = scan_files(misnamed_dataset)
    found = {os.path.relpath(m.path, misnamed_dataset): m.reason for m in scan.misnamed}
    assert set(found) == set(MISNAMED) and all(MISNAMED[k] in found[k] for k in found)
    assert len(scan.records) == 41 and not any(r.path in found for r in scan.records)
    with caplog.at_level("WARNING", logger="idc_edge.dataset"):
        assert scan_dataset(misnamed_dataset) == list(scan.records)
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 5 and all(any(os.path.basename(k) in w for w in warned) for k in MISNAMED)


def test_run_on_a_data_set_with_misnamed_files_skips_names_and_counts_them(capsys, tmp_path, misnamed_dataset,
                                                                           tiny_int8, monkeypatch):
    monkeypatch.setenv("IDC_EDGE_CACHE_DIR", str(tmp_path / "cache"))
    rec = tmp_path / "r.jsonl"
    code, lines, _ = call(capsys, "run", "--source", misnamed_dataset, "--model", tiny_int8, "--record", rec)
    assert code == 0, lines
    for rel in MISNAMED:
        assert sum(os.path.basename(rel) in line and line.startswith("idc-edge: warning:") for line in lines) == 1
    assert "5 unreadable or misnamed patch file(s) skipped" in lines[-1]
    assert len(rec.read_text().splitlines()) > 2  # both patients swept


def test_evaluate_on_a_data_set_with_misnamed_files_says_how_many_it_skipped(capsys, tmp_path, misnamed_dataset,
                                                                             tiny_int8, monkeypatch):
    monkeypatch.setenv("IDC_EDGE_CACHE_DIR", str(tmp_path / "cache"))
    code, lines, out = call(capsys, "evaluate", misnamed_dataset, "--model", tiny_int8, "--json")
    assert code == 0, lines
    summary = json.loads(out)
    assert summary["misnamed_files"] == 5 and summary["n_patches"] == 41 and summary["skipped_files"] == 0
    assert any("skipped 5 file(s) that are not patches of the data set" in line for line in lines)
    code, lines, out = call(capsys, "evaluate", misnamed_dataset, "--model", tiny_int8, "--quiet")
    assert code == 0 and "41 patches of 2 patient(s)" in out and "5 misnamed skipped" in out


# -- frames that change size mid-stream, into a video file --------------------------------------------------------

@pytest.mark.parametrize("suffix", [".mp4", ".avi", ".mkv"])
def test_frames_that_change_size_are_letterboxed_into_the_video_for_every_codec(capsys, tmp_path, tiny_int8, suffix,
                                                                                monkeypatch):
    """An image folder whose pictures turn from landscape to portrait (a real source of frames that
    change size): the portrait ones keep their shape in the saved video, black bars at the sides."""
    monkeypatch.setenv("IDC_EDGE_CACHE_DIR", str(tmp_path / "cache"))
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, (w, h) in enumerate([(160, 120)] * 2 + [(120, 160)] * 2):
        cv2.imwrite(str(folder / f"f{i}.png"), np.full((h, w, 3), (200, 170, 230), np.uint8))  # light pink
    out = tmp_path / f"overlay{suffix}"
    code, lines, _ = call(capsys, "run", "--source", folder, "--model", tiny_int8, "--save-video", out, "--no-mask",
                          "--quiet")
    assert code == 0, lines
    assert sum("letterboxed" in line for line in lines) == 1
    cap = cv2.VideoCapture(str(out))
    frames = []
    while True:
        ok, image = cap.read()
        if not ok:
            break
        frames.append(image.astype(int))
    cap.release()
    assert len(frames) == 4 and all(f.shape == (120, 160, 3) for f in frames)
    # 120x160 fitted into 160x120 at 0.75: 90 px wide, 35 px of black on each side
    for f in frames[2:]:
        assert f[:, :30].max() < 40 and f[:, -30:].max() < 40, "stretched, not letterboxed"
        assert f[:, 45:115].mean() > 120
    assert frames[0][:, :30].mean() > 120  # the landscape frames fill the picture


def test_letterbox_keeps_the_aspect_ratio_and_centres():
    from idc_edge.rescale import letterbox

    tall = np.full((100, 20, 3), 255, np.uint8)
    boxed = letterbox(tall, (60, 50))
    assert boxed.shape == (50, 60, 3)
    cols = np.nonzero(boxed[25, :, 0])[0]
    assert (cols.min(), cols.max()) == (25, 34) and boxed[:, :25].max() == 0
    wide = letterbox(np.full((10, 80), 7, np.uint8), (40, 40))
    rows = np.nonzero(wide[:, 20])[0]
    assert wide.shape == (40, 40) and (rows.min(), rows.max()) == (17, 21)
    assert letterbox(tall, (20, 100)) is tall


def test_a_model_sidecar_that_cannot_be_written_whole_keeps_the_earlier_one(tmp_path, tiny_int8):
    import shutil

    model = tmp_path / "m.tflite"
    shutil.copy(tiny_int8, model)
    sidecar = model.with_suffix(".json")
    shutil.copy(tiny_int8.with_suffix(".json"), sidecar)
    old = sidecar.read_bytes()
    code = textwrap.dedent(f"""
        import resource
        from dataclasses import replace
        from idc_edge.errors import RecordError
        from idc_edge.spec import read_spec, write_spec
        spec = read_spec({str(model)!r})
        resource.setrlimit(resource.RLIMIT_FSIZE, (200, 200))
        try:
            write_spec({str(model)!r}, replace(spec, threshold=0.9))
        except RecordError as e:
            print(e)
    """)
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert p.stdout.startswith("cannot write model sidecar") and "kept" in p.stdout, (p.stdout, p.stderr)
    assert sidecar.read_bytes() == old and sorted(f.name for f in tmp_path.iterdir()) == ["m.json", "m.tflite"]


def test_a_mistyped_coordinate_skips_that_patch_not_the_run(capsys, tmp_path, synthetic_dataset, tiny_int8,
                                                            monkeypatch):
    # x99999999 parses, and its patient's slide would be 5 million pixels wide: the run ended at start
    # with the memory budget error although every other patch was fine
    from tiny_model import PINK

    from conftest import write_patch

    monkeypatch.setenv("IDC_EDGE_CACHE_DIR", str(tmp_path / "cache"))
    name = "p1_idx5_x99999999_y1_class0.png"
    write_patch(synthetic_dataset / "p1" / "0" / name, np.full((50, 50, 3), PINK, np.uint8))
    rec = tmp_path / "r.jsonl"
    code, lines, _ = call(capsys, "run", "--source", synthetic_dataset, "--model", tiny_int8, "--record", rec)
    assert code == 0, lines
    assert sum(name in line and "mistyped" in line and line.startswith("idc-edge: warning:") for line in lines) == 1
    assert "1 unreadable or misnamed patch file(s) skipped" in lines[-1]
    widths = {json.loads(line)["frame"]["width"] for line in rec.read_text().splitlines()[1:]}
    assert widths == {640}


def test_far_patches_are_a_small_cut_off_minority_only():
    from idc_edge.dataset import PatchRecord
    from idc_edge.sources.stage import far_patches

    def slide(coords):
        return [PatchRecord(f"p_idx5_x{x}_y{y}_class0.png", "p", 0, x, y) for x, y in coords]

    tiles = [(50 * i, 50 * j) for i in range(8) for j in range(5)]
    typo = slide(tiles + [(99999999, 0)])
    assert [r.x for r in far_patches(typo)] == [99999999]
    assert [r.y for r in far_patches(slide(tiles + [(0, 77777777)]))] == [77777777]
    assert far_patches(slide(tiles)) == []
    assert far_patches(slide(tiles + [(50 * i + 5000, 50 * j) for i, j in tiles[:40]])) == []  # two equal pieces
    assert far_patches(slide([(0, 0), (99999999, 0)])) == []  # which one is mistyped cannot be told
    wide = [(50 * i, 50 * j) for i in range(30) for j in range(5)]
    assert far_patches(slide(wide + [(2800, 0)])) == []  # a gap of 27 patches, narrower than the slide: tissue
    assert far_patches(slide(tiles + [(2800, 0)])) != []  # the same gap beside an 8-patch-wide slide: cut off
