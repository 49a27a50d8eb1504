"""An image file in another colour space than sRGB (a capture program's Adobe RGB or camera profile) is
said once per profile: OpenCV reads the stored values as they are, and the model knows sRGB values.
Real PNG, JPEG and TIFF files with real embedded ICC profiles, read through idc-edge's image reader."""
import logging
import struct
import zlib

import cv2
import numpy as np
import pytest

from idc_edge import fileio
from idc_edge.iccprofile import is_srgb, profile_description
from idc_edge.sources import ImageFolderSource
from idc_edge.sources.files import read_image

IMAGE = np.dstack([np.full((20, 30), v, np.uint8) for v in (200, 120, 220)])  # BGR


def icc_profile(description: str, v4: bool = False) -> bytes:
    """A minimal ICC profile: the 128-byte header, a tag table and its ``desc`` (v2) or ``mluc`` (v4) tag."""
    if v4:
        text = description.encode("utf-16-be")
        tag = b"mluc" + bytes(4) + struct.pack(">II", 1, 12) + b"enUS" + struct.pack(">II", len(text), 28) + text
    else:
        text = description.encode("latin-1") + b"\0"
        tag = b"desc" + bytes(4) + struct.pack(">I", len(text)) + text + bytes(79)
    header = bytearray(128)
    header[12:16], header[16:20], header[36:40] = b"mntr", b"RGB ", b"acsp"
    body = bytes(header[4:]) + struct.pack(">I", 1) + struct.pack(">4sII", b"desc", 144, len(tag)) + tag
    return struct.pack(">I", 4 + len(body)) + body


def png_with(profile: bytes) -> bytes:
    png = cv2.imencode(".png", IMAGE)[1].tobytes()
    data = b"Photoshop ICC profile\0\0" + zlib.compress(profile)
    chunk = struct.pack(">I", len(data)) + b"iCCP" + data + struct.pack(">I", zlib.crc32(b"iCCP" + data))
    return png[:33] + chunk + png[33:]  # after the signature and IHDR, before the image data


def jpeg_with(profile: bytes) -> bytes:
    jpeg = cv2.imencode(".jpg", IMAGE)[1].tobytes()
    segment = b"ICC_PROFILE\0\x01\x01" + profile
    return jpeg[:2] + b"\xff\xe2" + struct.pack(">H", len(segment) + 2) + segment + jpeg[2:]


def tiff_with(profile: bytes) -> bytes:
    """An uncompressed RGB TIFF whose IFD carries the profile (tag 34675)."""
    h, w = IMAGE.shape[:2]
    pixels = IMAGE[..., ::-1].tobytes()
    entries = [(256, 3, 1, w), (257, 3, 1, h), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 2), (273, 4, 1, 0),
               (277, 3, 1, 3), (278, 3, 1, h), (279, 4, 1, len(pixels)), (34675, 7, len(profile), 0)]
    ifd_size = 2 + 12 * len(entries) + 4
    strip, icc = 8 + ifd_size, 8 + ifd_size + len(pixels)
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        value = {273: strip, 34675: icc}.get(tag, value)
        ifd += struct.pack("<HHI", tag, kind, count) + (struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value))
    return b"II*\0" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0) + pixels + profile


@pytest.mark.parametrize("make, suffix", [(png_with, ".png"), (jpeg_with, ".jpg"), (tiff_with, ".tif")])
@pytest.mark.parametrize("v4", [False, True], ids=["v2-desc", "v4-mluc"])
def test_the_profile_of_a_png_jpeg_or_tiff_is_read_by_its_description(tmp_path, make, suffix, v4):
    for description in ("Adobe RGB (1998)", "sRGB IEC61966-2.1"):
        data = make(icc_profile(description, v4))
        assert profile_description(data) == description
        (tmp_path / f"f{suffix}").write_bytes(data)
        assert read_image(tmp_path / f"f{suffix}").shape == IMAGE.shape  # OpenCV decodes the file as before
    assert profile_description(cv2.imencode(suffix, IMAGE)[1].tobytes()) is None
    assert is_srgb("sRGB IEC61966-2.1") and is_srgb("sRGB built-in") and not is_srgb("Adobe RGB (1998)")


def test_an_image_folder_in_adobe_rgb_is_said_once_and_srgb_or_no_profile_not_at_all(tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(fileio, "_PROFILES_SAID", set())
    for i in range(3):
        (tmp_path / f"a{i}.png").write_bytes(png_with(icc_profile("Adobe RGB (1998)")))
    (tmp_path / "s.jpg").write_bytes(jpeg_with(icc_profile("sRGB IEC61966-2.1", v4=True)))
    cv2.imwrite(str(tmp_path / "plain.png"), IMAGE)
    with caplog.at_level(logging.WARNING, logger="idc_edge"), ImageFolderSource(tmp_path) as source:
        assert len(list(source)) == 5
    said = [r.getMessage() for r in caplog.records if "colour profile" in r.getMessage()]
    assert len(said) == 1 and "'Adobe RGB (1998)', not sRGB" in said[0] and "a0.png" in said[0], said


@pytest.mark.parametrize("data", [b"\x89PNG\r\n\x1a\n" + b"\0\0\0\x10iCCP" + b"x\0\0" + b"garbage",
                                  b"\xff\xd8\xff\xe2\x00\x10ICC_PROFILE\0\x01\x01ab", b"II*\0\xff\xff\xff\xff",
                                  b"MM\0*\0\0\0\x08\0\x01" + b"\x86\x73\0\x07\xff\xff\xff\xff\0\0\0\x08"])
def test_a_damaged_profile_or_header_reads_as_no_profile(data):
    assert profile_description(data) is None
