"""``idc-edge report``: sessions of a results file summarised as text, JSON and one HTML page, from
real runs (shipped LiteRT model, real videos and PNGs)."""
import base64
import json
import re
import subprocess
import sys

import cv2
import pytest

from idc_edge.record import read_sessions
from idc_edge.report import fields_viewed, summarize, svg_plot, top_frames
from test_session import write_video


def idc_edge(*args, timeout=180, cwd=None):
    return subprocess.run([sys.executable, "-m", "idc_edge", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, tiny_int8):
    """One results file, two runs appended: the first with a saved video, the second with other options."""
    d = tmp_path_factory.mktemp("runs")
    video = write_video(d / "stage.avi", 40, fps=10)
    rec = d / "results.jsonl"
    p = idc_edge("run", "--source", video, "--model", tiny_int8, "--record", rec, "--save-video", d / "overlay.avi",
                 "--quiet")
    assert p.returncode == 0, p.stderr
    p = idc_edge("run", "--source", video, "--model", tiny_int8, "--record", rec, "--stride", 25, "--max-frames", 10,
                 "--quiet")
    assert p.returncode == 0, p.stderr
    return rec, d


def test_two_runs_in_one_file_read_back_as_two_sessions(two_runs):
    rec, _ = two_runs
    first, second = read_sessions(rec)
    assert len(first.records) == 40 and len(second.records) == 10
    assert first.header["outputs"]["video"]["path"].endswith("overlay.avi") and "video" not in second.header["outputs"]
    assert first.header["stride_px"] == 50 and second.header["stride_px"] == 25


def test_the_report_renders_both_sessions_as_one_self_contained_page(two_runs, tmp_path):
    rec, _ = two_runs
    out = tmp_path / "report.html"
    p = idc_edge("report", rec, "--html", out)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("session 1: ") and "\nsession 2: " in p.stdout
    page = out.read_text()
    assert page.count("<h2>Session ") == 2 and page.count("<svg") == 2 and "research use only" in page.lower()
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing fetched from elsewhere
    pictures = re.findall(r'src="data:image/jpeg;base64,([^"]+)"', page)
    assert pictures, "the frames with most IDC come from the saved video of session 1"
    image = cv2.imdecode(__import__("numpy").frombuffer(base64.b64decode(pictures[0]), "uint8"), cv2.IMREAD_COLOR)
    assert image is not None and image.shape[1] == 320
    assert re.search(r"sha256 [0-9a-f]{64}", page)


def test_report_json_has_one_entry_per_session(two_runs):
    rec, _ = two_runs
    p = idc_edge("report", rec, "--json")
    assert p.returncode == 0, p.stderr
    data = json.loads(p.stdout)
    assert [s["frames"] for s in data["sessions"]] == [40, 10]
    assert all(s["header"]["model"]["sha256"] for s in data["sessions"])


def test_a_file_that_is_not_a_results_file_is_one_line_with_exit_2(tmp_path):
    cases = {"notes.txt": b"hello\nworld\n", "image.png": cv2.imencode(".png", __import__("numpy").zeros((4, 4, 3),
                                                                                                         "uint8"))[1]
             .tobytes(), "other.jsonl": b'{"a": 1}\n', "empty.jsonl": b""}
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        p = idc_edge("report", path)
        assert p.returncode == 2 and p.stderr.count("\n") == 1 and "Traceback" not in p.stderr, (name, p.stderr)
        assert p.stderr.startswith("idc-edge: error: ") and str(path) in p.stderr, p.stderr
    p = idc_edge("report", tmp_path / "missing.jsonl")
    assert p.returncode == 2 and "cannot read results" in p.stderr


def _rec(i, t, idc, tissue=10, reused=0, area=None):
    return {"index": i, "time": t, "idc_fraction": idc / tissue if tissue else 0.0, "idc_patches": idc,
            "tissue_patches": tissue, "reused_patches": reused, "idc_area_mm2": area if area is not None else idc * 0.04}


def test_fields_are_the_stretches_where_the_stage_rested():
    moving = [_rec(i, i * 0.1, 1) for i in range(5)]
    still = [_rec(5 + i, 0.5 + i * 0.1, 3, reused=8) for i in range(8)]   # 0.7 s at rest
    brief = [_rec(13 + i, 1.3 + i * 0.1, 2, reused=9) for i in range(2)]  # 0.1 s: passing by
    fields = fields_viewed(moving + still + moving[:1] + brief)
    assert len(fields) == 1 and fields[0].start_s == 0.5 and fields[0].frames == 8
    assert fields[0].max_idc_mm2 == pytest.approx(0.12) and fields[0].max_idc_percent == 30.0


def test_top_frames_are_the_largest_areas_apart_in_time():
    records = [_rec(i, i * 0.5, idc) for i, idc in enumerate([0, 5, 6, 1, 0, 0, 9, 8, 0])]
    assert [r["index"] for r in top_frames(records, k=3, min_gap_s=1.0)] == [2, 6]  # 1 and 7 are too close
    assert top_frames([_rec(0, 0.0, 0)]) == []


def test_the_plot_is_svg_with_a_point_per_pixel_column_at_most():
    times = [i * 0.001 for i in range(20000)]
    svg = svg_plot(times, [("IDC", [float(i % 7) for i in range(20000)], "#c05000")], "mm²", width=400)
    points = re.search(r'points="([^"]+)"', svg).group(1).split()
    assert svg.startswith("<svg") and svg.endswith("</svg>") and len(points) <= 400


def test_a_stage_that_rests_on_a_field_is_counted_as_a_field_viewed(tiny_int8, tmp_path):
    from idc_edge.bench.synthetic import camera_frames, slide_for

    path = tmp_path / "rest.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 240))
    moving = camera_frames(slide_for(320, 240, 4.0, 10, 16), 320, 240, 4.0, 10, step_px=16)  # textured tissue
    for f in moving + [moving[-1]] * 20 + moving[::-1]:  # moves, rests 2 s on one field, moves back
        writer.write(f)
    writer.release()
    rec = tmp_path / "r.jsonl"
    assert idc_edge("run", "--source", path, "--model", tiny_int8, "--record", rec, "--quiet").returncode == 0
    (s,) = summarize(rec, pictures=False)
    assert len(s.fields) == 1 and 1.5 <= s.fields[0].duration_s <= 2.1 and 0.9 <= s.fields[0].start_s <= 1.2
    assert idc_edge("run", "--source", path, "--model", tiny_int8, "--record", rec, "--quiet", "--no-reuse").returncode == 0
    p = idc_edge("report", rec)
    assert "fields viewed: 1 (stage at rest" in p.stdout and "fields viewed: not known (the run had reuse off" in p.stdout


def test_a_results_file_from_before_session_headers_still_reports(two_runs, tmp_path):
    rec, _ = two_runs
    legacy = tmp_path / "old.jsonl"
    lines = [line for line in rec.read_text().splitlines(keepends=True) if not line.startswith('{"session"')]
    legacy.write_text("".join(line.replace('"idc_area_mm2"', '"x_area"') for line in lines[:40]))
    (s,) = read_sessions(legacy)
    assert s.header is None and len(s.records) == 40
    out = tmp_path / "old.html"
    p = idc_edge("report", legacy, "--html", out)
    assert p.returncode == 0, p.stderr
    assert "no session header" in p.stdout and "IDC % of tissue" in out.read_text()


def test_frames_without_a_call_are_counted_apart_never_averaged_in_as_no_idc(tmp_path, data_dir):
    """A sharp field and the same field out of focus, through the real run with the shipped model:
    the blurred frame is no call, and the report neither averages it in as 0 % IDC nor hides it."""
    from idc_edge.sources import open_source
    with open_source(data_dir / "8867", um_per_px=1.0) as source:
        sharp = next(f.image for f in source if f.index == 40)
    folder = tmp_path / "frames"
    folder.mkdir()
    cv2.imwrite(str(folder / "a_sharp.png"), sharp)
    cv2.imwrite(str(folder / "b_blurred.png"), cv2.GaussianBlur(sharp, (0, 0), 8))
    rec = tmp_path / "r.jsonl"
    p = idc_edge("run", "--source", folder, "--um-per-px", 1.0, "--stride", 25, "--record", rec)
    assert p.returncode == 0, p.stderr
    sharp_rec, blurred_rec = read_sessions(rec)[0].records
    assert sharp_rec["in_focus"] and not blurred_rec["in_focus"]
    assert sum(blurred_rec["no_call_patches"].values()) == blurred_rec["tissue_patches"] > 0
    (summary,) = json.loads(idc_edge("report", rec, "--json").stdout)["sessions"]
    assert summary["frames_without_call"] == 1 and summary["no_call_reasons"] == {"out_of_focus": 1}
    assert summary["mean_idc_percent"] == pytest.approx(100 * sharp_rec["idc_fraction"], abs=0.01)
    assert "1 frame(s) with tissue but no call (out of focus 1)" in idc_edge("report", rec).stdout


def test_frames_without_a_call_are_counted_by_the_reason_that_took_most_of_their_patches():
    from idc_edge.report import no_call_reasons

    def rec(tissue, **no_call):
        return {"tissue_patches": tissue, "no_call_patches": {"out_of_focus": 0, "exposure": 0, "colour": 0,
                                                              "noise": 0, **no_call}}
    records = [rec(10, colour=10), rec(10, noise=10), rec(10, colour=10), rec(10, out_of_focus=7, exposure=3),
               rec(10, out_of_focus=2),  # called: 8 of its 10 patches judged
               rec(0), {"tissue_patches": 5}]  # no tissue; a record from before the gates
    assert no_call_reasons(records) == {"out_of_focus": 1, "colour": 2, "noise": 1}
    assert list(no_call_reasons(records)) == ["out_of_focus", "colour", "noise"]  # the gates' order


def test_a_results_file_with_blank_lines_and_a_byte_order_mark_is_read_whole(tmp_path, tiny_int8):
    """A file a Windows editor saved (byte-order mark, CRLF blank line) or `echo >>` lengthened: the
    recorder appends to it and every reader reads every session (both used to refuse it whole)."""
    video = write_video(tmp_path / "stage.avi", 6, fps=10)
    rec = tmp_path / "results.jsonl"
    run = ("run", "--source", video, "--model", tiny_int8, "--record", rec, "--quiet")
    assert idc_edge(*run).returncode == 0
    rec.write_bytes(b"\xef\xbb\xbf" + rec.read_bytes() + b"\r\n")  # saved by a Windows editor: BOM, a blank line
    p = idc_edge(*run)
    assert p.returncode == 0, p.stderr
    with open(rec, "ab") as f:
        f.write(b"\n  \n")  # `echo >> results.jsonl`
    first, second = read_sessions(rec)
    assert len(first.records) == 6 and len(second.records) == 6
    p = idc_edge("report", rec, "--json")
    assert p.returncode == 0, p.stderr
    assert [s["frames"] for s in json.loads(p.stdout)["sessions"]] == [6, 6]


def test_a_session_whose_video_a_later_run_replaced_shows_no_picture_from_it(tiny_int8, tmp_path):
    """The README's workflow run twice with one --record and --save-video: session 1's frames with
    most IDC showed session 2's video (another slide), since every run numbers its frames from 0."""
    rec, video = tmp_path / "session.jsonl", tmp_path / "session.avi"
    for source, n in ((write_video(tmp_path / "one.avi", 30), 30), (write_video(tmp_path / "two.avi", 20), 20)):
        p = idc_edge("run", "--source", source, "--model", tiny_int8, "--record", rec, "--save-video", video,
                     "--max-frames", n, "--quiet")
        assert p.returncode == 0, p.stderr
    out = tmp_path / "session.html"
    assert idc_edge("report", rec, "--html", out).returncode == 0
    first, second = out.read_text().split("<h2>Session ")[1:]
    assert "data:image/jpeg" not in first and "from the video" not in first
    assert first.count("(no picture: the video was replaced by a later run (it is another session&#x27;s))") >= 1
    assert second.count("data:image/jpeg") >= 1 and "from the video" in second and "no picture" not in second
    one, two = summarize(rec)
    assert {p.no_picture for p in one.top} == {"the video was replaced by a later run (it is another session's)"}


def test_an_older_video_without_a_session_id_is_not_taken_as_the_session_s(two_runs, tmp_path):
    """Results and a video index from before session ids (the fields taken out): nothing tells the
    session's video from a later run's under the same name, so the card says the picture is not verified."""
    rec, d = two_runs
    old_rec, old_video = tmp_path / "old.jsonl", tmp_path / "overlay.avi"
    old_video.write_bytes((d / "overlay.avi").read_bytes())
    index = (d / "overlay.avi.frames.tsv").read_text().splitlines(keepends=True)
    assert index[1].startswith("# session ")
    (tmp_path / "overlay.avi.frames.tsv").write_text(index[0] + "".join(index[2:]))
    lines = rec.read_text().splitlines(keepends=True)
    header = json.loads(lines[0])
    del header["session"]["id"]
    header["session"]["outputs"]["video"] = {"path": str(old_video), "frames": str(old_video) + ".frames.tsv"}
    old_rec.write_text(json.dumps(header) + "\n" + "".join(lines[1:41]))
    (s,) = summarize(old_rec)
    assert s.top and all(p.jpeg is None and p.no_picture.startswith("picture not verified: the video's frame index "
                                                                     "names no session") for p in s.top)


def test_snapshots_of_another_run_started_in_the_same_second_are_not_this_session_s(tiny_int8, tmp_path):
    """Two runs started in one second sharing the snapshots folder: the report matched a snapshot by
    the one-second start time, so B listed A's snapshot (another slide) and used it as B's picture."""
    from idc_edge.detector import DetectorOptions
    from idc_edge.session import RunConfig, Session
    from idc_edge.sinks import JsonlSink, SnapshotSink
    from idc_edge.sinks.base import Sink

    class SnapAtFrame3(Sink):  # a viewer pressing the Snapshot button at frame 3
        delivery = "inline"

        def __init__(self, snap):
            self.snap = snap

        def write(self, frame):
            if frame.result.index == 3:
                self.snap.take()

    video = write_video(tmp_path / "stage.avi", 8)
    config = RunConfig(source=str(video), max_frames=5, detector=DetectorOptions(model_path=tiny_int8))
    for attempt in range(5):  # until both start in one second (each run takes a fraction of one)
        runs = tmp_path / f"try{attempt}"
        runs.mkdir()
        snap_a = SnapshotSink(runs / "snaps")
        a = Session(config, [JsonlSink(runs / "a.jsonl"), snap_a, SnapAtFrame3(snap_a)])
        a.run()
        b = Session(config, [JsonlSink(runs / "b.jsonl"), SnapshotSink(runs / "snaps")])
        b.run()
        if a.info.started_utc == b.info.started_utc:
            break
    else:
        pytest.skip("the two runs never started in one second")
    (sa,), (sb,) = summarize(runs / "a.jsonl"), summarize(runs / "b.jsonl")
    assert [p.index for p in sa.snapshots] == [3] and sa.snapshots[0].jpeg
    assert sb.snapshots == () and all(p.from_ != "snapshot" for p in sb.top)


def test_a_long_session_is_summarised_without_holding_its_frames_twice():
    """A session of hours (300,000 frames) must be summarised on a small board: besides the frame records
    themselves, summarising holds a few numbers per frame, not a second copy of every frame as text (it
    held ~480 bytes more per frame, to find lines pasted twice, though no frame number repeated)."""
    import tracemalloc

    from idc_edge.record import RecordedSession
    from idc_edge.report import summarize_session

    n = 20_000
    records = tuple({"index": i, "time": 1000.0 + i / 30, "idc_fraction": (i % 7) / 7, "idc_area_mm2": (i % 7) * 0.01,
                     "tissue_area_mm2": 0.07, "patches": 190, "tissue_patches": 150, "idc_patches": i % 7,
                     "reused_patches": 100 + i % 50, "no_call_patches": {"focus": i % 3}} for i in range(n))
    session = RecordedSession({"started": "2026-11-30T05:00:00+00:00", "idc_edge": "test", "threshold": 0.5,
                               "um_per_px": 1.0, "model": {"name": "m.tflite"}, "source": {"description": "test"}},
                              records)
    tracemalloc.start()
    try:
        summary = summarize_session(session, 1, pictures=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert summary.frames == n
    assert peak / n < 300, f"{peak / n:.0f} bytes per frame"
