"""Frame sources on real files: OpenCV-written videos, PNGs, a fake camera, the real data set."""
import threading
import time

import cv2
import numpy as np
import pytest

from conftest import frame_with_blob
from idc_edge.dataset import scan_dataset
from idc_edge.errors import CameraLostError, ClosedError, SourceError
from idc_edge.sources import (CameraSource, ImageFolderSource, ImageSource, MosaicSource, VideoSource,
                              build_mosaic, open_source, sweep_positions)


def write_video(path, n=12, size=(160, 120), fourcc="MJPG", fps=10.0):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
    assert writer.isOpened()
    for i in range(n):
        frame = np.full((size[1], size[0], 3), 20 * i % 255, np.uint8)
        writer.write(frame)
    writer.release()
    return path


@pytest.mark.parametrize("suffix,fourcc", [(".avi", "MJPG"), (".mp4", "mp4v"), (".mkv", "HFYU")])
def test_video_source_gives_every_frame_in_order(tmp_path, suffix, fourcc):
    path = write_video(tmp_path / f"v{suffix}", n=12, fourcc=fourcc)
    src = open_source(str(path))
    assert isinstance(src, VideoSource)
    frames = list(src)
    assert [f.index for f in frames] == list(range(12))
    assert frames[0].image.shape == (120, 160, 3) and frames[0].image.dtype == np.uint8
    assert frames[3].timestamp == pytest.approx(0.3, abs=0.02)
    assert abs(float(frames[5].image.mean()) - 100) <= 8  # mp4v is lossy
    assert src.skipped == 0


def test_video_source_fails_with_a_file_that_is_not_a_video(tmp_path):
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video")
    with pytest.raises(SourceError, match="cannot open"):
        open_source(str(bad))


def test_image_and_folder_sources(tmp_path):
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"f{i}.png"), frame_with_blob(shape=(60, 80)))
    (tmp_path / "broken.png").write_bytes(b"\x89PNG garbage")
    (tmp_path / "readme.txt").write_text("ignored")
    src = open_source(str(tmp_path))
    assert isinstance(src, ImageFolderSource)
    frames = list(src)
    # broken.png sorts first: it is skipped and counted, and the indices keep the folder positions
    assert [f.index for f in frames] == [1, 2, 3] and src.skipped == 1
    one = open_source(str(tmp_path / "f0.png"))
    assert isinstance(one, ImageSource) and len(list(one)) == 1


def test_a_file_url_is_the_path_it_names_and_another_machine_s_is_refused(tmp_path):
    folder = tmp_path / "slide scans"
    folder.mkdir()
    cv2.imwrite(str(folder / "f0.png"), frame_with_blob(shape=(60, 80)))
    url = "file://" + str(folder / "f0.png").replace(" ", "%20")  # as a file manager copies it
    one = open_source(url)
    assert isinstance(one, ImageSource) and len(list(one)) == 1
    assert isinstance(open_source("FILE://localhost" + str(folder).replace(" ", "%20")), ImageFolderSource)
    with pytest.raises(SourceError, match="names a file on the machine 'nas'"):
        open_source("file://nas/share/slide.avi")


def test_sixteen_bit_and_alpha_images_are_read_as_bgr8(tmp_path):
    img16 = (frame_with_blob(shape=(40, 40)).astype(np.uint16) * 257)
    cv2.imwrite(str(tmp_path / "a.png"), img16)
    cv2.imwrite(str(tmp_path / "b.png"), cv2.cvtColor(frame_with_blob(shape=(40, 40)), cv2.COLOR_BGR2BGRA))
    for name in ("a.png", "b.png"):
        (frame,) = list(ImageSource(tmp_path / name))
        assert frame.image.dtype == np.uint8 and frame.image.shape == (40, 40, 3)


@pytest.mark.parametrize("make,match", [
    (lambda p: p / "missing.png", "does not exist"),
    (lambda p: (p / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\nxx") and p / "corrupt.png", "cannot read image"),
    (lambda p: (p / "empty").mkdir() or p / "empty", "has no images"),
])
def test_open_source_fails_with_bad_paths(tmp_path, make, match):
    with pytest.raises(SourceError, match=match):
        open_source(str(make(tmp_path)))


class FakeCapture:
    """A capture device stand-in: a scripted list of frames, None meaning a failed read."""

    def __init__(self, script, opened=True):
        self.script = list(script)
        self.opened = opened
        self.released = False

    def isOpened(self):
        return self.opened

    def read(self):
        time.sleep(0.002)
        if not self.script:
            return False, None
        item = self.script.pop(0)
        return (item is not None), item

    def set(self, *args):
        return True

    def release(self):
        self.released = True


def devices(*caps):
    """A capture factory handing out ``caps`` in order, then devices that fail to open."""
    queue = list(caps)

    def factory(device):
        return queue.pop(0) if queue else FakeCapture([], opened=False)
    factory.remaining = queue
    return factory


def test_camera_source_fails_with_an_unknown_camera():
    with pytest.raises(SourceError, match="no camera at 5"):
        CameraSource(5, capture_factory=lambda d: FakeCapture([], opened=False))


def test_camera_keeps_the_newest_frame_and_drops_the_rest():
    frames = [np.full((8, 8, 3), i, np.uint8) for i in range(1, 60)]
    cam = CameraSource(0, lost_timeout_s=0.3, capture_factory=devices(FakeCapture(frames)))
    seen = []
    with pytest.raises(CameraLostError, match="gave no frame"):
        for f in cam:
            seen.append(int(f.image[0, 0, 0]))
            time.sleep(0.02)  # slower than the camera
    cam.close()
    assert seen == sorted(seen) and len(set(seen)) == len(seen)
    assert cam.dropped > 0 and len(seen) < len(frames)


def test_camera_reconnects_after_failed_reads_and_resumes():
    first = FakeCapture([np.zeros((8, 8, 3), np.uint8)] * 3 + [None])
    second = FakeCapture([np.full((8, 8, 3), 9, np.uint8)] * 3)
    cam = CameraSource(0, lost_timeout_s=1.0, capture_factory=devices(first, FakeCapture([], opened=False), second))
    values = []
    with pytest.raises(CameraLostError):
        for f in cam:
            values.append(int(f.image[0, 0, 0]))
    cam.close()
    assert values[0] == 0 and values[-1] == 9 and cam.reconnects >= 1
    assert first.released and second.released


def test_camera_source_can_read_a_video_file_as_a_live_device(tmp_path):
    path = write_video(tmp_path / "cam.avi", n=30)
    got = []
    with CameraSource(str(path)) as cam:
        for f in cam:
            got.append(f)
            if len(got) == 5:
                break
    assert [f.index for f in got] == [0, 1, 2, 3, 4] and got[0].image.shape == (120, 160, 3)


def test_camera_close_is_safe_twice_and_stops_the_thread():
    cam = CameraSource(0, capture_factory=devices(FakeCapture([np.zeros((4, 4, 3), np.uint8)] * 1000)))
    it = iter(cam)
    next(it)
    cam.close()
    cam.close()
    assert not any(t.name == "idc-edge-camera" and t.is_alive() for t in threading.enumerate())
    with pytest.raises(ClosedError, match="camera 0 is closed"):
        iter(cam)


def test_every_closed_source_refuses_to_be_read_again(tmp_path, synthetic_dataset):
    image = tmp_path / "images" / "a.png"
    image.parent.mkdir()
    cv2.imwrite(str(image), frame_with_blob((60, 80)))
    video = write_video(tmp_path / "v.avi", n=3)
    for source in (ImageSource(image), ImageFolderSource(image.parent), VideoSource(video),
                   MosaicSource(synthetic_dataset, patients=["p1"], width=64, height=48)):
        assert len(list(source)) >= 1  # readable while open (and a file source may be read twice)
        source.close()
        source.close()
        with pytest.raises(ClosedError, match="is closed; open the source again"):
            next(iter(source))


def test_sweep_positions_stay_inside_and_cover_the_corners():
    pos = sweep_positions((500, 700), (120, 160), 40)
    assert all(0 <= y <= 380 and 0 <= x <= 540 for y, x in pos)
    assert (0, 0) in pos and (380, 540) in pos or (380, 0) in pos
    assert sweep_positions((50, 50), (120, 160), 40) == [(0, 0)]


def test_mosaic_rebuilds_the_slide_from_synthetic_layout(synthetic_dataset):
    records = [r for r in scan_dataset(synthetic_dataset) if r.patient == "p1"]
    mosaic, labels, bad = build_mosaic(records)
    assert bad == 0
    # x 1..1001, y 1..1001 → 21×21 cells
    assert mosaic.shape == (1050, 1050, 3) and labels.shape == (21, 21)
    assert labels[-1, -1] == 0 and (labels >= 0).sum() == len(records)
    assert mosaic[1000 + 30, 1000 + 10].tolist() == [255, 255, 255]  # below the 50×20 edge patch


def test_mosaic_source_on_a_real_patient(data_dir):
    patient = sorted(p.name for p in data_dir.iterdir() if p.is_dir())[0]
    src = open_source(str(data_dir / patient))
    assert isinstance(src, MosaicSource)
    frames = list(src)
    assert len(frames) > 1 and all(f.image.shape == (480, 640, 3) for f in frames)
    zoomed = MosaicSource(data_dir / patient, um_per_px=2.0, width=320, height=240)
    first = next(iter(zoomed))
    assert first.image.shape == (240, 320, 3)


def test_a_stream_url_s_password_is_masked_in_descriptions_and_errors():
    from idc_edge.errors import SourceError
    from idc_edge.sources import open_source
    from idc_edge.sources.camera_forms import parse_camera
    from idc_edge.sources.network import redact_url

    assert redact_url("rtsp://admin:s3cret@cam:554/live") == "rtsp://admin:***@cam:554/live"
    assert redact_url("rtsp://u:p@ss@cam/x") == "rtsp://u:***@cam/x"  # a bare '@' in the password
    assert redact_url("rtspsrc location=rtsp://u:pw@cam/s ! appsink") == "rtspsrc location=rtsp://u:***@cam/s ! appsink"
    assert redact_url("tcp://pi:8888") == "tcp://pi:8888" and redact_url("http://h/x?a=b@c") == "http://h/x?a=b@c"
    assert parse_camera("rtsp://admin:s3cret@cam/live").describe() == "stream rtsp://admin:***@cam/live"
    # in the query string, as many cameras take it: every parameter named like a secret
    assert redact_url("rtsp://cam/stream?user=a&password=s3cret") == "rtsp://cam/stream?user=a&password=***"
    assert redact_url("http://cam/x.cgi?usr=a&pwd=1&pass=2;token=3&Key=4&auth=5&api_key=6&sig=7&res=hd#secret=8") == \
        "http://cam/x.cgi?usr=a&pwd=***&pass=***;token=***&Key=***&auth=***&api_key=***&sig=***&res=hd#secret=***"
    assert redact_url("say 'rtsp://u:a@cam/x?pwd=b' twice: rtsp://cam/y?token=c") == \
        "say 'rtsp://u:***@cam/x?pwd=***' twice: rtsp://cam/y?token=***"
    with pytest.raises(SourceError) as e:  # nothing listens on port 1
        open_source(camera="http://admin:s3cret@127.0.0.1:1/x.mjpg", camera_timeout_s=3)
    assert "s3cret" not in str(e.value) and "admin:***@127.0.0.1:1" in str(e.value)
    with pytest.raises(SourceError) as e:
        open_source(camera="http://127.0.0.1:1/x.mjpg?user=admin&pwd=s3cret", camera_timeout_s=3)
    assert "s3cret" not in str(e.value) and "user=admin&pwd=***" in str(e.value)
