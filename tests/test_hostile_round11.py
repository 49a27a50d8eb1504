"""Red-team round 11: cameras, streams and outputs during a live run.

Everything is real where it can be: LiteRT runs the committed tiny model, videos are real files OpenCV
writes and reads, stream cameras are local HTTP servers on real sockets read through OpenCV's FFmpeg,
file-size limits are the kernel's (``RLIMIT_FSIZE`` in a child process). No CSI camera exists here, so
Picamera2 is a stand-in written from its documented API (``Picamera2(camera_num)`` acquires the camera
until ``close()``; a second ``Picamera2`` of it raises "Failed to acquire camera: Device or resource busy").
"""
from __future__ import annotations

import sys
import threading

import numpy as np
import pytest

from hostile import TINY, cli, one_error_line, tissue_frame, write_video
from idc_edge.errors import SourceError
from idc_edge.sources import open_source
from idc_edge.sinks import Sink
from idc_edge.sources.modes import CameraMode


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("IDC_EDGE_CACHE_DIR", str(tmp_path / "cache"))


# -- Picamera2 -------------------------------------------------------------------------------------------

class AcquiringPicamera2:
    """Picamera2 as documented, with the part that matters here: the camera is acquired by
    ``Picamera2(n)`` and let go only by ``close()``; ``failures`` lists steps ("configure", "start",
    "capture") that raise once each, in order, as libcamera does on a frontend timeout or a cable glitch."""

    acquired: set = set()
    failures: list = []
    made: list = []

    def __init__(self, camera_num=0):
        if camera_num in AcquiringPicamera2.acquired:
            raise RuntimeError("Failed to acquire camera: Device or resource busy")
        AcquiringPicamera2.acquired.add(camera_num)
        AcquiringPicamera2.made.append(self)
        self.num, self.config = camera_num, None

    @staticmethod
    def global_camera_info():
        return [{"Model": "imx477", "Num": 0}]

    def _step(self, name):
        if AcquiringPicamera2.failures and AcquiringPicamera2.failures[0] == name:
            AcquiringPicamera2.failures.pop(0)
            raise RuntimeError({"configure": "Camera frontend has timed out!",
                                "start": "Failed to start camera: Cannot allocate memory",
                                "capture": "Camera frontend has timed out!"}[name])

    def create_video_configuration(self, main=None, controls=None):
        return {"main": dict(main or {}), "controls": dict(controls or {})}

    def configure(self, config):
        self._step("configure")
        self.config = config

    def start(self):
        self._step("start")

    def camera_configuration(self):
        return self.config

    def capture_array(self, name="main"):
        self._step("capture")
        w, h = self.config["main"]["size"]
        return np.ascontiguousarray(np.resize(tissue_frame(), (h, w, 3)))

    def stop(self):
        pass

    def close(self):
        AcquiringPicamera2.acquired.discard(self.num)


@pytest.fixture
def acquiring_picamera2(monkeypatch):
    module = type(sys)("picamera2")
    module.Picamera2 = AcquiringPicamera2
    AcquiringPicamera2.acquired, AcquiringPicamera2.failures, AcquiringPicamera2.made = set(), [], []
    monkeypatch.setitem(sys.modules, "picamera2", module)
    return AcquiringPicamera2


@pytest.mark.parametrize("step", ["configure", "start"])
def test_a_pi_camera_that_fails_to_start_is_let_go_and_named_with_what_libcamera_said(acquiring_picamera2, step, capsys):
    # it was "no camera at 0: check the cable ...; list cameras" (camera 0 reads as /dev/video0, and
    # libcamera's own words were lost), and the camera stayed acquired by the process
    acquiring_picamera2.failures = [step]
    with pytest.raises(SourceError) as e:
        open_source(camera="picam:0", mode=CameraMode(200, 150))
    assert "picam:0" in str(e.value) and ("timed out" in str(e.value) or "Cannot allocate memory" in str(e.value))
    assert not acquiring_picamera2.acquired  # let go: another program (or a re-open) can have it
    acquiring_picamera2.failures = [step]
    code, err = cli(capsys, "run", "--camera", "picam", "--size", "200x150", "--model", TINY, "--um-per-px", 4,
                    "--max-frames", 2)
    assert code == 2 and "picam:0" in one_error_line(err)


def test_a_pi_camera_that_fails_to_start_again_after_a_glitch_comes_back(acquiring_picamera2):
    # a read that times out, then a re-open whose start fails once: the failed opening kept the camera
    # acquired, so every later re-open was "Device or resource busy" and the run ended CameraLostError
    # with the camera in working order
    acquiring_picamera2.failures = ["capture", "start"]
    with open_source(camera="picam:0", mode=CameraMode(200, 150), camera_timeout_s=3.0) as cam:
        frames = []
        for frame in cam:
            frames.append(frame)
            if len(frames) == 5:
                break
        assert cam.reconnects >= 1 and cam.losses == 1
    assert len(frames) == 5 and not acquiring_picamera2.acquired


# -- the results file deleted, replaced or moved during a run ----------------------------------------------

class AtFrame(Sink):
    """An inline sink that does ``act()`` once, when frame ``n`` (from 0) has been recorded: the
    results file deleted, replaced or moved while the run goes on, as ``rm``, an editor or a log
    rotation would, at a frame known in advance (never a race)."""

    name, delivery = "at-frame", "inline"

    def __init__(self, n, act):
        self.n, self.act, self.seen = n, act, 0

    def write(self, frame):
        if self.seen == self.n:
            self.act()
        self.seen += 1


def run_with(tmp_path, results, act, frames=8):
    """A real run of ``frames`` frames of a video into ``results``, ``act`` done after frame 3's line."""
    from idc_edge.detector import DetectorOptions
    from idc_edge.session import RunConfig, Session
    from idc_edge.sinks import JsonlSink

    video = write_video(tmp_path / "v.avi", frames)
    session = Session(RunConfig(source=str(video), detector=DetectorOptions(model_path=TINY, um_per_px=4.0)),
                      [JsonlSink(results), AtFrame(3, act)])
    session.run()
    return session.summary


def test_a_results_file_deleted_during_the_run_is_made_again_with_every_line(tmp_path, caplog):
    # `rm results.jsonl` mid-run: the lines went on into the deleted file and vanished with it when the
    # run closed it; the summary said "8 result(s) in results.jsonl" of a file that was not there
    from idc_edge.record import read_records, read_sessions

    results = tmp_path / "results.jsonl"
    summary = run_with(tmp_path, results, results.unlink)
    assert [r["index"] for r in read_records(results)] == list(range(8))
    assert len(read_sessions(results)) == 1 and read_sessions(results)[0].header is not None
    assert f"8 result(s) in {results}" in summary.line()
    assert sum("was deleted during the run" in r.getMessage() for r in caplog.records) == 1


def test_a_results_file_replaced_or_moved_during_the_run_keeps_every_line_under_a_name_said(tmp_path, caplog):
    from idc_edge.record import read_records

    # an editor saving its copy over it (a new file under the name): ours is made again beside it
    results, theirs = tmp_path / "results.jsonl", tmp_path / "edited.jsonl"
    theirs.write_text('{"index": 0, "note": "an edited copy"}\n')
    summary = run_with(tmp_path, results, lambda: theirs.replace(results))
    restored = tmp_path / "results-restored.jsonl"
    assert [r["index"] for r in read_records(restored)] == list(range(8))
    assert results.read_text() == '{"index": 0, "note": "an edited copy"}\n'  # theirs, untouched
    assert f"in {restored}" in summary.line() and any("results-restored.jsonl" in r.getMessage() for r in caplog.records)
    # moved away (a log rotation's rename): the lines go on there, and the summary names it
    results, moved = tmp_path / "r2.jsonl", tmp_path / "r2.jsonl.1"
    summary = run_with(tmp_path, results, lambda: results.rename(moved))
    assert [r["index"] for r in read_records(moved)] == list(range(8)) and not results.exists()
    assert f"in {moved}" in summary.line()


# -- the overlay video at a file-size limit ------------------------------------------------------------------

def noisy_video(path, frames=120, size=(320, 240)):
    """A Motion-JPEG video of ``frames`` frames of tissue with grain (about 18 KB a frame as JPEG)."""
    import cv2

    rng = np.random.default_rng(0)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, size)
    base = cv2.resize(tissue_frame(), size).astype(np.int16)
    for _ in range(frames):
        writer.write(np.clip(base + rng.integers(-20, 20, base.shape), 0, 255).astype(np.uint8))
    writer.release()
    return path


def test_a_video_that_reaches_the_file_size_limit_stops_the_run_finalised_and_says_why(tmp_path):
    # a process file-size limit (`ulimit -f`; FAT32's 4 GiB is the same wall): every write past it fails
    # with EFBIG, which OpenCV's writer drops without a word: 120 frames went to a video that played 36,
    # the frame index mapped all 120, and the run said "video in out.avi", exit 0
    import resource
    import subprocess

    import cv2

    source, out, results = noisy_video(tmp_path / "in.avi"), tmp_path / "out.avi", tmp_path / "r.jsonl"
    limit = 1_800_000  # the results file stays far below it

    def limited():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    p = subprocess.run([sys.executable, "-m", "idc_edge", "run", "--source", str(source), "--model", TINY,
                        "--um-per-px", "4", "--quiet", "--save-video", str(out), "--record", str(results)],
                       capture_output=True, text=True, timeout=120, preexec_fn=limited)
    error = [line for line in p.stderr.splitlines() if line.startswith("idc-edge: error:")]
    assert p.returncode == 2 and len(error) == 1 and "file-size limit" in error[0], p.stderr
    assert "Traceback" not in p.stderr
    held = int(error[0].split("holds the first ")[1].split(" frame")[0])
    cap, readable = cv2.VideoCapture(str(out)), 0
    while cap.read()[0]:
        readable += 1
    assert 0 < held == readable < 120  # finalised: every frame it says it holds plays
    from idc_edge.record import read_records

    assert len(read_records(results)) >= held


def test_a_fat_file_system_s_4_gib_file_limit_is_known_before_the_video_reaches_it(tmp_path):
    # a FAT32 USB stick or SD card as sold: the same silent end at 4 GiB
    from idc_edge.record import FAT_MAX_FILE_BYTES, file_size_limit

    table = tmp_path / "mountinfo"
    table.write_text("22 1 8:2 / / rw,relatime shared:1 - ext4 /dev/sda2 rw\n"
                     "40 22 8:17 / /media/usb rw,relatime shared:9 - vfat /dev/sdb1 rw,fmask=0022\n")
    limit, what, todo = file_size_limit("/media/usb/session.avi", str(table))
    assert limit == FAT_MAX_FILE_BYTES and "FAT" in what and "/media/usb" in what and "exFAT" in todo
    assert file_size_limit("/home/pi/session.avi", str(table)) is None or "FAT" not in file_size_limit(
        "/home/pi/session.avi", str(table))[1]


# -- an HTTP camera that answers with something other than a stream --------------------------------------------

def http_camera(answer):
    """A local HTTP server (a real socket) whose every GET gets ``answer(path, headers)`` =
    (status, headers, body); returns (server, port). Stop it with ``server.shutdown()``."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            status, headers, body = answer(self.path, self.headers)
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


def page(status, body=b"<html><body>camera</body></html>", **headers):
    return lambda path, h: (status, {"Content-Type": "text/html", **headers}, body)


def auth(path, headers):  # an IP camera's stream behind Basic authentication, with the wrong password given
    return 401, {"WWW-Authenticate": 'Basic realm="cam"', "Content-Type": "text/html"}, b"<html>401</html>"


@pytest.mark.parametrize("answer, url_path, expected", [
    (auth, "/video", r"asks for a user name and password \(HTTP 401 Unauthorized\): give them in the address"),
    (auth, "USER/video", r"answered HTTP 401 Unauthorized: it does not take the user name and password in the address"),
    (page(404), "/mjpg/video.mjpg", r"no stream at the path '/mjpg/video.mjpg' \(HTTP 404 Not Found\)"),
    (page(200), "/", r"answered with a web page \(text/html\), not a video stream"),
    (page(302, Location="/loop"), "/video", r"redirects the request from one address to another without end "
                                            r"\(/video -> /loop -> /loop"),
    (page(503), "/video", r"answered HTTP 503 Service Unavailable instead of a video stream"),
])
def test_an_http_camera_answering_with_an_error_or_a_web_page_is_told_by_its_answer(answer, url_path, expected):
    # all were "a server at 127.0.0.1:PORT took the connection but sent no video within 3 s": the camera
    # had answered at once, asking for a password, saying the path was wrong or sending its web page
    server, port = http_camera(answer)
    try:
        user = "viewer:wrong@" if url_path.startswith("USER") else ""
        url = f"http://{user}127.0.0.1:{port}{url_path.replace('USER', '')}"
        with pytest.raises(SourceError, match=expected) as e:
            open_source(camera=url, camera_timeout_s=3.0)
        assert "sent no video within" not in str(e.value) and "wrong" not in str(e.value)  # the password masked
    finally:
        server.shutdown()


def test_a_stream_that_stalls_mid_run_is_named_as_a_stream_not_sent_to_check_a_cable():
    # an MJPEG-over-HTTP camera that sends three frames, then nothing (its machine hung, the Wi-Fi gone);
    # re-openings are refused. It ended "camera 'http://...' gave no frame for 1.5 s: check the cable and
    # power", and the drop-out warning asked whether it was unplugged
    import socket

    import cv2

    from idc_edge.errors import CameraLostError

    jpeg = cv2.imencode(".jpg", tissue_frame())[1].tobytes()
    listener = socket.create_server(("127.0.0.1", 0))
    held = []

    def serve():
        first = True
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            if not first:
                conn.close()  # the server is gone for re-openings
                continue
            first = False
            held.append(conn)
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\n\r\n")
            for _ in range(3):
                conn.sendall(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpeg)
                             + jpeg + b"\r\n")
            # then nothing: the connection stays open, silent

    threading.Thread(target=serve, daemon=True).start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/video"
    try:
        with open_source(camera=url, camera_timeout_s=1.5) as cam:
            with pytest.raises(CameraLostError) as e:
                for _ in cam:
                    pass
        message = str(e.value)
        assert message.startswith(f"stream {url} gave no frame for 1.5 s") and "cable" not in message
        assert "still streaming" in message
    finally:
        listener.close()
        for conn in held:
            conn.close()


def test_a_camera_that_cannot_be_opened_with_a_live_view_is_one_line_without_an_address(capsys):
    """The live view's address was printed when its port was taken, before the camera was opened:
    a run that never started showed a URL to open, then the error (two lines). The port is still
    taken first (a port in use fails first); the address is said once the source is open."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # free once closed
    code, err = cli(capsys, "run", "--camera", "/dev/video97", "--serve", f"127.0.0.1:{port}")
    assert code == 2 and "/dev/video97" in one_error_line(err)
