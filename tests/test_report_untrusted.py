"""``idc-edge report`` on results files that travel: header and frame values it cannot show are one
line naming the line and field; text it shows is escaped in the page and on the terminal; a clock
set back mid-session gives a sane duration and time axis. Real runs, real CLI subprocesses."""
import json
import re
import subprocess
import sys

import pytest

from idc_edge.record import RecordedSession, read_sessions
from idc_edge.report import render_html, summarize_session, svg_plot


def idc_edge(*args, timeout=180):
    return subprocess.run([sys.executable, "-m", "idc_edge", *map(str, args)], capture_output=True, timeout=timeout)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory, tiny_int8):
    """The lines of a real results file: a header and 12 frames of a short video run."""
    from test_session import write_video

    d = tmp_path_factory.mktemp("rec")
    rec = d / "r.jsonl"
    p = idc_edge("run", "--source", write_video(d / "v.avi", 12, fps=10), "--model", tiny_int8, "--record", rec,
                 "--quiet")
    assert p.returncode == 0, p.stderr
    return rec.read_text().splitlines()


def _write(path, lines, header=None, frame=None):
    """``lines`` with the header's session changed by ``header(session)`` and frame 3 by ``frame(record)``."""
    out = [json.loads(line) for line in lines]
    if header:
        header(out[0]["session"])
    if frame:
        frame(out[4])
    path.write_text("".join(json.dumps(r) + "\n" for r in out))
    return path


def _one_error_line(p):
    err = p.stderr.decode()
    assert p.returncode == 2 and "Traceback" not in err and "internal error" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("idc-edge: error: "), err
    return lines[0]


@pytest.mark.parametrize("field,value,line", [
    ("model_um_per_px", "<script>alert(document.domain)</script>", 1),   # was written into the page raw
    ("cell_um", "200", 1),                  # was "internal error (ValueError: Unknown format code 'g' ...)"
    ("cell_um", -5, 1), ("cell_um", 1e300, 1), ("model_um_per_px", 0, 1),
    ("um_per_px", -1.0, 1),                 # the field, not the option: was named '--um-per-px' on the command line
    ("idc_area_mm2", 1.7e308, 5),           # the plot's grid loop ran to inf; the text gave a 309-digit area
    ("tissue_area_mm2", -1.0, 5),
])
def test_a_header_or_frame_value_report_cannot_show_is_one_line_naming_line_and_field(tmp_path, recorded, field, value,
                                                                                       line):
    def put(record):
        record[field] = value

    path = _write(tmp_path / "r.jsonl", recorded, **({"header": put} if line == 1 else {"frame": put}))
    for extra in ([], ["--json"], ["--html", tmp_path / "r.html"]):
        text = _one_error_line(idc_edge("report", path, *extra))
        assert f"line {line}: field {field!r} must be" in text
    assert not (tmp_path / "r.html").exists()


def test_a_header_without_cell_um_or_model_scale_reports_without_none(tmp_path, recorded):
    # a file of an older idc-edge: "internal error (TypeError: unsupported format string passed to NoneType)"
    def older(session):
        del session["cell_um"], session["model_um_per_px"]

    path = _write(tmp_path / "r.jsonl", recorded, header=older)
    p = idc_edge("report", path, "--html", tmp_path / "r.html")
    assert p.returncode == 0, p.stderr
    page = (tmp_path / "r.html").read_text()
    scale = re.search(r"<tr><td>scale</td><td>([^<]*)</td>", page).group(1)
    assert "None" not in scale and "µm per pixel" in scale and "patch stands for" not in scale


def test_every_value_in_the_page_is_escaped_even_ones_the_reader_never_saw(recorded):
    # render_html is API: summaries of sessions built in a program, not read from a file, reach it too
    header = json.loads(recorded[0])["session"]
    hostile = "<script>alert(1)</script>"
    header.update(model_um_per_px=hostile, cell_um=hostile, um_per_px=hostile, idc_edge=hostile)
    header["model"]["context"] = {"sigma_px": hostile}
    header["options"] = {hostile: hostile}
    records = tuple(json.loads(line) for line in recorded[1:])
    try:
        summary = summarize_session(RecordedSession(header, records), 1, pictures=False)
    except (TypeError, ValueError):
        pytest.fail("a hostile value was formatted as a number")
    page = render_html([summary], hostile)
    assert "<script>" not in page and page.count("&lt;script&gt;") >= 6
    svg = svg_plot([0.0, 1.0], [(hostile, [1.0, 2.0], '"/><script>')], hostile)
    assert "<script>" not in svg


def test_report_text_shows_control_characters_as_escapes_never_sends_them_to_the_terminal(tmp_path, recorded):
    # a source description could clear the screen, print "all clear" in green and set the window title
    hostile = "\x1b[2J\x1b[H\x1b[32mall clear: no IDC\x1b[0m\x1b]0;title\x07\x9b31m\nsession 9: fake"

    def put(session):
        session["source"]["description"] = hostile
        session["model"]["name"] = "m\x1b[1m"

    path = _write(tmp_path / "r.jsonl", recorded, header=put)
    p = idc_edge("report", path)
    assert p.returncode == 0, p.stderr
    out = p.stdout.decode()
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", out)
    assert "source \\x1b[2J\\x1b[H\\x1b[32mall clear" in out and "\\x07\\x9b31m\\nsession 9: fake" in out
    assert "model m\\x1b[1m (" in out and out.count("\nsession ") == 0  # the newline made no fake session line


def test_a_clock_set_back_mid_session_gives_a_positive_duration_a_sane_axis_and_one_note(tmp_path, recorded):
    # NTP set the clock back an hour at frame 6: "12 frame(s) over -3599.4 s" and a broken time axis
    frames = [json.loads(line) for line in recorded[1:]]
    for r in frames[6:]:
        r["time"] -= 3600
    path = tmp_path / "r.jsonl"
    path.write_text(recorded[0] + "\n" + "".join(json.dumps(r) + "\n" for r in frames))
    p = idc_edge("report", path, "--html", tmp_path / "r.html")
    assert p.returncode == 0, p.stderr
    out = p.stdout.decode()
    over = float(re.search(r"12 frame\(s\) over (-?[\d.]+) s", out).group(1))
    assert 1.0 <= over <= 1.3  # 12 frames 0.1 s apart: 1.1 s, as if the clock had not moved
    assert out.count("frame times went back 1 time(s)") == 1
    page = (tmp_path / "r.html").read_text()
    assert page.count("frame times went back 1 time(s)") == 1
    ticks = [float(v) for v in re.findall(r'text-anchor="middle">(-?[\d.e+]+)</text>', page)]
    assert ticks and min(ticks) == 0 and max(ticks) <= 1.3
    assert idc_edge("report", path, "--json").returncode == 0
    session = json.loads(idc_edge("report", path, "--json").stdout)["sessions"][0]
    assert session["clock_steps_back"] == 1 and session["duration_s"] > 0
    assert read_sessions(path)[0].records[6]["time"] < read_sessions(path)[0].records[5]["time"]  # the file unchanged


def test_the_plot_never_loops_on_values_near_the_largest_float():
    # svg_plot's grid loop ran to inf (OverflowError) on an area of 1.7e308
    for top in (1.7e308, float("inf"), 1e-320, 0.0):
        svg = svg_plot([0.0, 1e12], [("IDC", [top, 1.0], "#c05000")], "mm²")
        assert svg.startswith("<svg") and svg.count("<line") < 60


def test_the_page_built_through_markup_keeps_its_style_and_plot_and_escapes_nothing_twice(tmp_path, recorded):
    path = _write(tmp_path / "r.jsonl", recorded)
    p = idc_edge("report", path, "--html", tmp_path / "r.html")
    assert p.returncode == 0, p.stderr
    page = (tmp_path / "r.html").read_text()
    assert page.count("<svg") == 1 and "<polyline" in page and "&amp;" not in page and "&lt;" not in page
    assert "body { font:" in page and "<title>idc-edge report: r.jsonl</title>" in page
