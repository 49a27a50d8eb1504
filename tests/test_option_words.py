"""Library messages name options as the Python API spells them; the command line says its flags.

The library (everything in idc_edge/ but idc_edge/cli/) never writes a ``--flag`` in a message:
an error lists the option names it uses (``IdcEdgeError.options``) and the command line's
``in_cli_words`` turns them into flags. Real objects throughout: a real socket holds the port,
real folders and files are opened; the command line's own output is checked in the tests of each
command (test_live_view, test_dense_cli, test_cameras, test_hostile_more).
"""
from __future__ import annotations

import ast
import re
import socket
from pathlib import Path

import pytest

from idc_edge.cli import build_parser
from idc_edge.cli.options import in_cli_words
from idc_edge.errors import OptionError, RecordError, SourceError
from idc_edge.sources import open_source
from idc_edge.sources.camera_forms import parse_camera

ROOT = Path(__file__).resolve().parents[1]
FLAG = re.compile(r"(?<![\w-])--[a-z]")

build_parser()  # teaches in_cli_words the flags, as the command line does before it prints


def _message_texts(tree: ast.AST):
    """(line, text) of every string constant that is not a docstring or other bare string statement."""
    bare = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in bare:
            yield node.lineno, node.value


def test_no_library_message_names_a_command_line_flag():
    """A command quoted in backticks (`idc-edge calibrate white`, `rpicam-vid --listen`) and a
    command-line argument on its own ("--record", as bench passes to a child process) may."""
    found = []
    for path in sorted((ROOT / "idc_edge").rglob("*.py")):
        if "cli" in path.relative_to(ROOT / "idc_edge").parts:
            continue
        for line, text in _message_texts(ast.parse(path.read_text(), str(path))):
            if re.fullmatch(r"--[a-z][\w-]*", text):
                continue  # an argument of a command line bench runs
            if FLAG.search(re.sub(r"`[^`]*`?", "", text)):
                found.append(f"{path.relative_to(ROOT)}:{line}: {text!r}")
    assert not found, "library messages name CLI flags (name the API option and list it in the error's options):\n" \
        + "\n".join(found)


def test_the_walk_finds_a_flag_in_a_message():
    tree = ast.parse('def f():\n    """--docstring"""\n    raise OptionError(f"{x} use --serve 8081")\n')
    texts = [t for _, t in _message_texts(tree)]
    assert texts == [" use --serve 8081"] and FLAG.search(texts[0])


def test_error_options_keep_option_and_reach_every_error_kind():
    e = OptionError("stride 23 px ...; or run it patch by patch (dense=False)", options=["dense=False"])
    assert e.option is None and e.options == ("dense=False",)
    assert OptionError("stride must be >= 1, got 0", option="stride").option == "stride"
    assert RecordError("x", options=("SnapshotSink",)).options == ("SnapshotSink",)
    assert SourceError("x").options == ()


@pytest.mark.parametrize("error, cli", [
    (OptionError("use one of 5, 10 (dense=False)", options=["dense=False"]), "use one of 5, 10 (--no-dense)"),
    (SourceError("source '1' does not exist (for camera 1 use camera=1)", options=["camera="]),
     "source '1' does not exist (for camera 1 use --camera 1)"),
    (OptionError("'a b.avi' is a file, not a camera: read it with source='a b.avi'", options=["source="]),
     "'a b.avi' is a file, not a camera: read it with --source 'a b.avi'"),
    (OptionError("LiveView at 1.2.3.4:80: in use; pick another, e.g. port=8081", options=["LiveView at", "port="]),
     "--serve 1.2.3.4:80: in use; pick another, e.g. --serve 8081"),
    (OptionError("WindowSink cannot: x; use LiveView (host='0.0.0.0' for others) or VideoSink",
                 options=["WindowSink", "LiveView", "host=", "VideoSink"]),
     "--show cannot: x; use --serve (--serve 0.0.0.0 for others) or --save-video"),
    (RecordError("give SnapshotSink a folder", options=["SnapshotSink"]), "give --snapshots a folder"),
    (OptionError("stride must be >= 1 (a stride of 30 px)", option="stride"), "--stride must be >= 1 (a stride of 30 px)"),
])
def test_in_cli_words_spells_the_named_options_as_flags(error, cli):
    assert in_cli_words(error) == cli


def test_a_port_in_use_names_the_api_in_the_library_and_the_flag_on_the_command_line(tmp_path):
    from idc_edge.sinks import LiveView, parse_address

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(OptionError) as e:
            LiveView("127.0.0.1", port)
        text = str(e.value)
        assert text.startswith(f"LiveView at 127.0.0.1:{port}: port {port} is already in use") and "port=8081" in text
        assert not FLAG.search(text)
        assert in_cli_words(e.value).startswith(f"--serve 127.0.0.1:{port}: ") and "e.g. --serve 8081" in in_cli_words(e.value)
    with pytest.raises(OptionError) as e:
        parse_address("99999")
    assert str(e.value).startswith("LiveView at '99999': the port must be a number") and not FLAG.search(str(e.value))


def test_a_source_of_digits_and_a_camera_that_is_a_file_name_the_api_options(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SourceError) as e:
        open_source("1")
    assert "for camera 1 use camera=1" in str(e.value) and not FLAG.search(str(e.value))
    assert "for camera 1 use --camera 1" in in_cli_words(e.value)
    with pytest.raises(OptionError) as e:
        parse_camera("slide.avi")
    assert "is a file, not a camera: read it with source='slide.avi'" in str(e.value)
    assert "read it with --source slide.avi" in in_cli_words(e.value)


def test_an_unwritable_snapshot_folder_names_the_sink(tmp_path):
    from idc_edge.sinks import SnapshotSink

    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(RecordError) as e:
        SnapshotSink(tmp_path / "file")
    assert "give SnapshotSink a folder (made if missing)" in str(e.value) and not FLAG.search(str(e.value))
    assert "give --snapshots a folder (made if missing)" in in_cli_words(e.value)


def test_a_profile_measured_at_another_size_names_size_and_the_command_line_says_the_flag():
    from idc_edge.profiles import Profile, ProfileError

    profile = Profile(name="scope").with_scale(1.0, (1920, 1080), 10.0)
    with pytest.raises(ProfileError) as e:
        profile.check_frame_size(1280, 720)
    assert "ask the camera for size=1920x1080 (its CameraMode)" in str(e.value)
    assert "ask the camera for --size 1920x1080 (its CameraMode)" in in_cli_words(e.value)
