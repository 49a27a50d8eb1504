"""The browser live view: real HTTP clients, a real headless Chromium (Debian's ``chromium``; skipped
with the reason where absent), the real detector (shipped LiteRT model) on synthetic frames."""
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import cv2
import numpy as np
import pytest

from cdp import Browser, find_chromium
from conftest import frame_with_blob
from idc_edge.errors import OptionError
from idc_edge.record import read_records
from idc_edge.session import RunConfig, Session
from idc_edge.sinks import JsonlSink, LiveView, SnapshotSink, parse_address
from idc_edge.sources.base import Frame, FrameSource


class PacedSource(FrameSource):
    """A live stand-in for a camera: ``fps`` moving frames a second until ``stop`` is set."""

    live = True

    def __init__(self, shape=(480, 640), fps=20.0, frames=None):
        super().__init__("paced test camera")
        self.stop = threading.Event()
        self.period = 1.0 / fps
        tile = frame_with_blob(shape=shape, box=(shape[1] // 5, shape[0] // 5, shape[1] * 3 // 5, shape[0] * 4 // 5))
        self.frames = frames or [np.roll(tile, 8 * i, axis=1) for i in range(16)]

    def __iter__(self):
        i = 0
        while not self.stop.is_set():
            yield Frame(i, time.time(), self.frames[i % len(self.frames)])
            i += 1
            self.stop.wait(self.period)


class Running:
    """A session on its own thread with a live view; ``stop()`` ends it like a source that ends."""

    def __init__(self, tmp_path, shape=(480, 640), frames=None, **view_options):
        self.source = PacedSource(shape, frames=frames)
        self.snapshot = SnapshotSink(tmp_path / "snaps")
        self.view = LiveView("127.0.0.1", 0, snapshot=self.snapshot, **view_options)
        self.results = tmp_path / "r.jsonl"
        self.session = Session(RunConfig(camera=0), [JsonlSink(self.results), self.snapshot, self.view],
                               source=self.source)
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            self.session.run()
        except BaseException as e:  # pragma: no cover - reported by the test
            self.error = e

    def frames_recorded(self):
        return len(read_records(self.results)) if self.results.exists() else 0

    def stop(self, timeout=30):
        self.source.stop.set()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the run did not stop"
        assert self.error is None, self.error


JSON = {"Content-Type": "application/json"}


@pytest.fixture
def running(tmp_path):
    r = Running(tmp_path)
    yield r
    r.stop()


def read_parts(url, n, timeout=20):
    """The first ``n`` JPEGs of an MJPEG stream, decoded."""
    images = []
    with urllib.request.urlopen(url + "stream.mjpg", timeout=timeout) as r:
        assert r.headers["Content-Type"].startswith("multipart/x-mixed-replace; boundary=")
        while len(images) < n:
            line = r.readline()
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
                r.readline()
                images.append(cv2.imdecode(np.frombuffer(r.read(length), np.uint8), cv2.IMREAD_COLOR))
    return images


def test_several_viewers_each_get_the_live_overlay_and_the_numbers(running):
    url = running.view.url
    got = [None] * 3

    def viewer(i):
        got[i] = read_parts(url, 5)

    threads = [threading.Thread(target=viewer, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for images in got:
        assert images is not None and len(images) == 5 and all(im.shape == (480, 640, 3) for im in images)
    status = json.loads(urllib.request.urlopen(url + "status.json", timeout=10).read())
    assert status["state"] == "live" and status["idc_area_mm2"] >= 0 and 0 <= status["idc_percent_of_tissue"] <= 100
    assert len(status["model_sha256"]) == 64 and status["threshold"] > 0 and status["in_focus"] in (True, None)
    page = urllib.request.urlopen(url, timeout=10).read().decode()
    assert "http" not in page.replace(url, "").split("<body>")[0].lower().replace("http-equiv", "")  # no CDN assets
    assert "research use only" in page and 'id="legend"' in page


def test_a_viewer_that_stops_reading_slows_neither_the_run_nor_other_viewers(tmp_path):
    run = Running(tmp_path, shape=(720, 1280), client_timeout_s=1.5, quality=95)  # large JPEGs fill buffers fast
    try:
        stalled = socket.socket()
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.connect(("127.0.0.1", run.view.port))
        stalled.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")  # and never reads
        time.sleep(1.0)
        before = run.frames_recorded()
        images = read_parts(run.view.url, 10)   # another viewer keeps getting frames
        assert len(images) == 10
        time.sleep(2.0)
        assert run.frames_recorded() > before + 10  # the run went on
        deadline = time.monotonic() + 15  # the stalled viewer is dropped after client_timeout_s
        while json.loads(urllib.request.urlopen(run.view.url + "status.json", timeout=10).read())["viewers"]:
            assert time.monotonic() < deadline, "a viewer that stopped reading was never dropped"
            time.sleep(0.2)
        stalled.close()
    finally:
        run.stop()


def test_the_server_stops_with_the_run_while_a_viewer_is_mid_stream(tmp_path):
    run = Running(tmp_path)
    port = run.view.port
    ended = {}

    def viewer():
        try:
            with urllib.request.urlopen(run.view.url + "stream.mjpg", timeout=30) as r:
                while r.read(65536):
                    pass
            ended["how"] = "eof"
        except (OSError, urllib.error.URLError) as e:
            ended["how"] = type(e).__name__

    t = threading.Thread(target=viewer, daemon=True)
    t.start()
    time.sleep(1.5)
    stopped_at = time.monotonic()
    run.stop()
    t.join(10)
    assert not t.is_alive() and "how" in ended, "the stream did not end with the run"
    assert time.monotonic() - stopped_at < 10
    with socket.socket() as s:  # the port is free again
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))


def test_snapshot_and_settings_over_http(running):
    url = running.view.url
    read_parts(url, 1)
    reply = json.loads(urllib.request.urlopen(urllib.request.Request(url + "snapshot", data=b"", method="POST"),
                                              timeout=20).read())
    png = cv2.imread(reply["png"])
    meta = json.loads(open(reply["json"]).read())
    assert png.shape == (480, 640, 3) and cv2.imread(reply["raw_png"]).shape == (480, 640, 3)
    assert meta["frame"]["index"] == reply["index"] and meta["session"]["session"]["model"]["sha256"]
    req = urllib.request.Request(url + "settings", data=b'{"alpha": 0.8, "outline": false}', method="POST",
                                 headers=JSON)
    assert json.loads(urllib.request.urlopen(req, timeout=10).read()) == {"alpha": 0.8, "outline": False}
    bad = urllib.request.Request(url + "settings", data=b'{"alpha": 3}', method="POST", headers=JSON)
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(bad, timeout=10)
    error = json.loads(e.value.read())["error"]
    assert e.value.code == 400 and error.startswith("alpha") and "'" not in error  # the message, quoted once (by JSON)


def test_the_page_in_a_real_browser_shows_the_frame_and_legend_and_snapshot_saves_files(running, tmp_path):
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("no chromium here (apt-get install chromium): the page is checked over HTTP only")
    with Browser(running.view.url, chromium) as b:
        b.wait_for("document.getElementById('stream').naturalWidth === 640")
        b.wait_for("document.getElementById('area').textContent.includes('mm')")
        bar = b.evaluate("getComputedStyle(document.getElementById('bar')).backgroundImage")
        assert bar.startswith("linear-gradient")
        assert b.evaluate("document.getElementById('thrlabel').textContent").startswith("threshold 0.")
        assert "research use only" in b.evaluate("document.body.innerText")
        b.evaluate("const a = document.getElementById('alpha'); a.value = '0.8'; a.dispatchEvent(new Event('input'));"
                   "const o = document.getElementById('outline'); o.click(); true")
        b.wait_for("fetch('/status.json').then(r => r.json()).then(s => s.alpha === 0.8 && s.outline === false)")
        b.evaluate("document.getElementById('snap').click()")
        message = b.wait_for("document.getElementById('snapmsg').textContent.startsWith('saved on the device') && "
                             "document.getElementById('snapmsg').textContent")
        b.screenshot(tmp_path / "page.png")
    png = message.split(": ", 1)[1]
    assert cv2.imread(png).shape == (480, 640, 3) and cv2.imread(png.replace(".png", ".json")) is None
    assert (tmp_path / "snaps").is_dir() and len(list((tmp_path / "snaps").glob("*.json"))) == 1
    shot = cv2.imread(str(tmp_path / "page.png"))
    assert shot is not None and shot.std() > 10  # a rendered page, not a blank one


ROWS = ("area", "focus", "exposure", "colour", "noise", "tissue")


def page_rows(tmp_path, frame_bgr, ready: str, screenshot=None) -> tuple[dict, dict]:
    """(text, class) of each of :data:`ROWS` of the live page in a real Chromium, once ``ready``
    (JavaScript) holds, for a run of ``frame_bgr``; a screenshot to ``screenshot`` when given."""
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("no chromium here (apt-get install chromium): the page is checked over HTTP only")
    run = Running(tmp_path, frames=[frame_bgr])
    try:
        with Browser(run.view.url, chromium) as b:
            b.wait_for(ready)
            b.wait_for("document.getElementById('stream').naturalWidth === 640")
            rows = {name: b.evaluate(f"document.getElementById('{name}').textContent") for name in ROWS}
            classes = {name: b.evaluate(f"document.getElementById('{name}').className") for name in ROWS}
            if screenshot is not None:
                b.screenshot(screenshot)
    finally:
        run.stop()
    return rows, classes


def test_the_page_in_a_real_browser_says_each_gate_s_no_call_in_its_own_row(tmp_path):
    """A frame with one colour out of focus, given in RGB order where BGR is expected (red and blue
    swapped): the focus row says COLOUR BLUR, the colour row STAIN COLOURS, each in red, the grain
    row ok."""
    from idc_edge.bench import synthetic_slide

    bgr = synthetic_slide(480, 640, seed=1)
    bgr[..., 2] = cv2.GaussianBlur(bgr[..., 2], (0, 0), 1.0)  # red out of focus
    rows, classes = page_rows(tmp_path, bgr[..., ::-1].copy(),  # and sent as RGB
                              "document.getElementById('focus').textContent.startsWith('COLOUR BLUR: no call')")
    assert rows["colour"].startswith("STAIN COLOURS: no call") and classes["colour"] == "bad", rows
    assert classes["focus"] == "bad" and rows["noise"] in ("ok", "not measured"), rows
    assert rows["exposure"] == "ok" and "without a call (grey)" in rows["tissue"], rows


def test_the_page_in_a_real_browser_says_a_washed_out_frame_is_no_call_in_the_exposure_row(tmp_path):
    """Stray light added to every pixel: the exposure row says WASHED OUT in red; focus and colour are
    fine; the IDC area says no call, never "0.00 mm²" (which reads as no IDC)."""
    from benchmarks.camera_conditions import glare
    from idc_edge.bench import synthetic_slide

    rgb = cv2.cvtColor(synthetic_slide(480, 640, seed=1), cv2.COLOR_BGR2RGB)
    rows, classes = page_rows(tmp_path, cv2.cvtColor(glare(rgb, 0.5), cv2.COLOR_RGB2BGR),
                              "document.getElementById('exposure').textContent.startsWith('WASHED OUT: no call')")
    assert classes["exposure"] == "bad" and "stray light" in rows["exposure"] and rows["area"] == "no call", rows
    assert rows["focus"] == "in focus" and rows["colour"] == "ok", rows


def test_the_page_in_a_real_browser_says_a_frame_of_faint_colours_is_no_call_in_the_colour_row(tmp_path):
    """The camera's saturation turned down to ×0.1: the tissue mask finds (nearly) nothing, and the
    colour row says FAINT COLOUR in red and the IDC area no call, not a plain "no tissue, no IDC"."""
    from benchmarks.camera_conditions import saturation
    from idc_edge.bench import synthetic_slide

    rgb = cv2.cvtColor(synthetic_slide(480, 640, seed=1), cv2.COLOR_BGR2RGB)
    rows, classes = page_rows(tmp_path, cv2.cvtColor(saturation(rgb, 0.1), cv2.COLOR_RGB2BGR),
                              "document.getElementById('colour').textContent.startsWith('FAINT COLOUR: no call')",
                              screenshot=tmp_path / "page.png")
    assert classes["colour"] == "bad" and rows["area"] == "no call", rows
    assert cv2.imread(str(tmp_path / "page.png")) is not None


def test_addresses_are_parsed_with_safe_defaults():
    assert parse_address("") == ("127.0.0.1", 8080) and parse_address("9000") == ("127.0.0.1", 9000)
    assert parse_address(":9000") == ("127.0.0.1", 9000) and parse_address("0.0.0.0:80") == ("0.0.0.0", 80)
    assert parse_address("[::1]:8081") == ("::1", 8081)
    assert parse_address("::1") == ("::1", 8080) and parse_address("fe80::1%eth0") == ("fe80::1%eth0", 8080)
    assert parse_address("[fe80::1%eth0]:8097") == ("fe80::1%eth0", 8097)
    # a port after an IPv6 address without brackets was taken into its zone (bind: "Invalid argument", on 8080)
    for bad in ("70000", "0", "-1", "+0", "host:port", "[::1", "fe80::1%lo:8097", "fe80::zz:8097"):
        with pytest.raises(OptionError):
            parse_address(bad)


def test_a_port_in_use_or_an_address_this_machine_lacks_is_a_clear_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(OptionError, match=f"port {port} is already in use"):
            LiveView("127.0.0.1", port)
    with pytest.raises(OptionError, match="no network interface with the address '192.0.2.1'"):
        LiveView("192.0.2.1", 0)
    with pytest.raises(OptionError, match="not an address or a name"):
        LiveView("no-such-host.invalid", 0)


def idc_edge(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "idc_edge", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def test_cli_serve_errors_are_one_line_with_exit_2(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        cases = [(f"127.0.0.1:{port}", "already in use"), ("192.0.2.1:8080", "no network interface"),
                 ("no-such-host.invalid:8080", "not an address"), ("99999", "port must be a number")]
        for address, message in cases:
            p = idc_edge("run", "--source", tmp_path, "--serve", address)
            assert p.returncode == 2 and p.stderr.count("\n") == 1, (address, p.stderr)
            assert p.stderr.startswith("idc-edge: error: --serve") and message in p.stderr, p.stderr


def test_a_port_that_needs_administrator_rights_is_a_clear_error():
    import os

    try:
        start = int(open("/proc/sys/net/ipv4/ip_unprivileged_port_start").read())
    except (OSError, ValueError):
        start = 1024
    if os.geteuid() == 0 or start <= 80:
        pytest.skip("this process may bind port 80 (root, or unprivileged ports start at "
                    f"{start}): the refusal cannot happen here")
    with pytest.raises(OptionError, match="port 80 needs administrator rights"):
        LiveView("127.0.0.1", 80)


def test_cli_serve_prints_the_url_serves_the_run_and_stops_cleanly_on_ctrl_c(tiny_int8, tmp_path):
    import signal

    from test_session import write_video

    video = write_video(tmp_path / "long.avi", 1500, fps=30)  # far longer than the test lets it run
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rec = tmp_path / "r.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "idc_edge", "run", "--source", str(video), "--model", str(tiny_int8),
                             "--serve", str(port), "--record", str(rec), "--snapshots", str(tmp_path / "snaps")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stderr.readline()
        assert first == f"live view: http://127.0.0.1:{port}/ (open it in a browser; Ctrl-C ends the run)\n"
        images = read_parts(f"http://127.0.0.1:{port}/", 3, timeout=60)
        assert all(im.shape == (240, 320, 3) for im in images)
        reply = json.loads(urllib.request.urlopen(urllib.request.Request(
            f"http://127.0.0.1:{port}/snapshot", data=b"", method="POST"), timeout=20).read())
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0 and "Traceback" not in stderr, stderr
    assert "idc-edge: interrupted; results so far are saved" in stderr
    assert f"1 snapshot(s) in {tmp_path / 'snaps'}" in stderr and f"live view was at http://127.0.0.1:{port}/" in stderr
    assert cv2.imread(reply["png"]) is not None and len(read_records(rec)) >= 3
    with socket.socket() as s:  # the server is gone with the run
        assert s.connect_ex(("127.0.0.1", port)) != 0


def test_a_malformed_request_gets_an_error_not_a_hang(running):
    with socket.create_connection(("127.0.0.1", running.view.port), timeout=10) as s:
        s.sendall(b"POST /settings HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -5\r\n\r\n")
        reply = b""
        while chunk := s.recv(4096):  # headers and body may come in separate packets; the server closes
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 400") and b"64 KB" in reply
    with socket.create_connection(("127.0.0.1", running.view.port), timeout=10) as s:
        s.sendall(b"GET /../../etc/passwd HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert s.recv(4096).startswith(b"HTTP/1.1 404")


def test_hostile_requests_get_an_answer_or_a_closed_connection_and_never_a_traceback(running, capfd):
    """JSON nested 30,000 deep (60 KB, under the body limit) raised RecursionError in the handler, and
    a viewer resetting its connection mid-request made the server print a whole traceback onto the run's
    terminal; the view keeps serving."""
    import struct

    port = running.view.port
    body = b"[" * 30000 + b"]" * 30000
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"POST /settings HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body) + body)
        reply = b""
        while chunk := s.recv(4096):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 400") and b"recursion" in reply
    for _ in range(3):  # a request line cut off by a reset (SO_LINGER 0: close sends RST)
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.sendall(b"GET /status.js")
        s.close()
    time.sleep(0.5)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/status.json", timeout=10) as r:
        assert r.status == 200
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Exception occurred" not in err, err


def ask(view, method, path, body=None, headers=None):
    """(status, headers, JSON or bytes) of one real HTTP request to ``view``."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", view.port, timeout=20)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        return r.status, r.headers, json.loads(data) if r.headers.get_content_type() == "application/json" else data
    finally:
        conn.close()


def test_a_page_on_another_site_can_neither_change_the_view_nor_take_snapshots(running):
    """A foreign page's ``fetch(..., {mode: "no-cors"})``: a text/plain body (a CORS "simple request",
    sent without asking) with its own Origin hid the heat map for every viewer, and flooded snapshots."""
    read_parts(running.view.url, 1)
    body = b'{"alpha": 0, "outline": false}'
    evil = {"Origin": "http://evil.example", "Content-Type": "text/plain;charset=UTF-8"}
    for headers in (evil, {**evil, "Content-Type": "application/json"},
                    {**JSON, "Sec-Fetch-Site": "cross-site"}, {**JSON, "Origin": "null"}):
        for path in ("/settings", "/snapshot"):
            status, _, reply = ask(running.view, "POST", path, body, headers)
            assert status == 403 and "may not act on this live view" in reply["error"], (headers, path, reply)
    status, _, reply = ask(running.view, "POST", "/settings", body, {"Content-Type": "text/plain"})  # no Origin
    assert status == 415 and "application/json" in reply["error"]
    _, _, now = ask(running.view, "GET", "/status.json")
    assert now["alpha"] > 0 and now["outline"] is True and now["snapshots"] == 0
    assert running.snapshot.taken == [] and not any(running.snapshot.folder.glob("*"))
    own = {**JSON, "Origin": f"http://127.0.0.1:{running.view.port}", "Sec-Fetch-Site": "same-origin"}
    status, _, reply = ask(running.view, "POST", "/settings", body, own)  # the page's own request
    assert status == 200 and reply == {"alpha": 0.0, "outline": False}


def test_a_host_name_other_than_the_servers_own_is_refused_against_dns_rebinding(running):
    read_parts(running.view.url, 1)
    for path in ("/frame.jpg", "/status.json", "/", "/stream.mjpg"):
        status, headers, reply = ask(running.view, "GET", path, headers={"Host": f"rebind.evil.example:{running.view.port}"})
        assert status == 403 and "rebind.evil.example" in reply["error"], (path, status)
    status, _, _ = ask(running.view, "POST", "/snapshot", b"", {"Host": "rebind.evil.example"})
    assert status == 403 and running.snapshot.taken == []
    for host in (f"127.0.0.1:{running.view.port}", f"localhost:{running.view.port}", "LOCALHOST.", f"[::1]:{running.view.port}",
                 "127.0.0.1:9000"):  # any port: an ssh tunnel's
        status, headers, data = ask(running.view, "GET", "/frame.jpg", headers={"Host": host})
        assert status == 200 and headers["Content-Type"] == "image/jpeg", host


def test_the_machine_s_own_names_are_served_when_listening_on_every_network():
    from idc_edge.sinks.web import host_allowed, own_names

    names = own_names("0.0.0.0")
    machine = socket.gethostname().lower()
    for host in (machine, f"{machine}.local:8080", "192.168.1.20:8080", "[fe80::1]:8080", "localhost"):
        assert host_allowed(host, names), host
    assert not host_allowed("rebind.evil.example", names) and not host_allowed("rebind.evil.example", own_names("127.0.0.1"))
    assert host_allowed("mypi.lan:8080", own_names("mypi.lan"))  # the name given to --serve
    assert machine not in own_names("127.0.0.1") or machine == "localhost"  # loopback: this machine only


def test_snapshots_are_at_most_one_a_second(running):
    read_parts(running.view.url, 1)
    replies = [ask(running.view, "POST", "/snapshot", b"", JSON) for _ in range(5)]
    assert [r[0] for r in replies] == [200, 429, 429, 429, 429]
    assert replies[1][1]["Retry-After"] == "1" and "try again in" in replies[1][2]["error"]
    time.sleep(1.1)
    assert ask(running.view, "POST", "/snapshot", b"", JSON)[0] == 200
    assert len(running.snapshot.taken) == 2


def test_a_chunked_post_is_refused_and_its_chunks_are_not_read_as_a_request(running):
    """A chunked ``POST /settings`` was answered 200 with the body ignored, and the chunk bytes were
    then parsed as a second request."""
    read_parts(running.view.url, 1)
    body = b'{"alpha": 0.1}'
    with socket.create_connection(("127.0.0.1", running.view.port), timeout=10) as s:
        s.sendall(b"POST /settings HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
        reply = b""
        while chunk := s.recv(4096):  # the server closes after its one answer
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 411") and reply.count(b"HTTP/1.1") == 1, reply
    assert b"Content-Length" in reply.split(b"\r\n\r\n", 1)[1]
    assert ask(running.view, "GET", "/status.json")[2]["alpha"] != 0.1


class MjpegCamera:
    """A stand-in network camera: JPEGs of a slide as MJPEG over HTTP (``multipart/x-mixed-replace``)
    from a real local server on its own thread, ``fps`` frames a second, to every client."""

    def __init__(self, fps=10.0):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        from idc_edge.bench import synthetic_slide

        jpeg = cv2.imencode(".jpg", synthetic_slide(480, 640, seed=2))[1].tobytes()
        stop = self.stop = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):  # noqa: N802
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=fr")
                self.end_headers()
                try:
                    while not stop.is_set():
                        self.wfile.write(b"--fr\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpeg)
                                         + jpeg + b"\r\n")
                        stop.wait(1 / fps)
                except OSError:
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


def test_a_camera_url_s_password_is_in_no_output_of_a_real_run(tiny_int8, tmp_path):
    """``--camera http://admin:s3cret@...``: the password was on the terminal, in /status.json, in the
    results header (source and options.camera), in every snapshot's JSON and in the HTML report; one in
    the query string (``?password=``, ``&token=``, as many cameras take it) was in all of them after that."""
    import signal

    camera = MjpegCamera()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rec, snaps = tmp_path / "r.jsonl", tmp_path / "snaps"
    proc = subprocess.Popen([sys.executable, "-m", "idc_edge", "run", "--camera",
                             f"http://admin:s3cret@127.0.0.1:{camera.port}/x.mjpg?user=admin&password=s3cret&token=s3cret",
                             "--um-per-px", "4",
                             "--model", str(tiny_int8), "--serve", str(port), "--record", str(rec),
                             "--snapshots", str(snaps)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 60
        while True:
            try:
                status = urllib.request.urlopen(url + "status.json", timeout=10).read().decode()
                if json.loads(status).get("state") == "live":
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, "the run never went live"
            time.sleep(0.3)
        snapshot = json.loads(urllib.request.urlopen(urllib.request.Request(url + "snapshot", data=b"", method="POST"),
                                                     timeout=20).read())
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        camera.close()
    assert proc.returncode == 0, stderr
    report = idc_edge("report", rec)
    html = tmp_path / "r.html"
    assert idc_edge("report", rec, "--html", html).returncode == 0
    query = "?user=admin&password=***&token=***"
    masked = f"stream http://admin:***@127.0.0.1:{camera.port}/x.mjpg{query}"
    assert json.loads(status)["source"] == masked and masked in stderr
    outputs = {"terminal": stdout + stderr, "status.json": status, "results": rec.read_text(),
               "snapshot": open(snapshot["json"]).read(), "report": report.stdout + report.stderr,
               "html report": html.read_text()}
    for where, text in outputs.items():
        assert "s3cret" not in text, where
    header = json.loads(outputs["results"].splitlines()[0])["session"]
    assert header["source"]["description"] == masked and masked.replace("&", "&amp;") in outputs["html report"]
    assert header["options"]["camera"] == f"http://admin:***@127.0.0.1:{camera.port}/x.mjpg{query}"
