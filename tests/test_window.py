"""--show checks for a display before OpenCV's Qt can abort the process."""
import pytest

from idc_edge.errors import OptionError
from idc_edge.sinks import WindowSink
from idc_edge.sinks.window import display_problem


def test_no_display_is_found_without_x11_or_wayland(tmp_path):
    assert "there is no display" in display_problem({}, "linux")
    assert "is not running" in display_problem({"DISPLAY": ":97"}, "linux")
    assert "Wayland display 'wayland-9' is not running" in display_problem(
        {"WAYLAND_DISPLAY": "wayland-9", "XDG_RUNTIME_DIR": str(tmp_path)}, "linux")
    (tmp_path / "wayland-0").touch()
    assert display_problem({"WAYLAND_DISPLAY": "wayland-0", "XDG_RUNTIME_DIR": str(tmp_path)}, "linux") is None
    assert display_problem({"DISPLAY": "remotehost:10.0"}, "linux") is None  # ssh -X: cannot be checked
    assert display_problem({}, "darwin") is None and display_problem({}, "win32") is None


def test_the_window_sink_refuses_without_a_display_and_names_serve(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(OptionError, match="WindowSink cannot open a window: there is no display.*LiveView") as e:
        WindowSink()
    assert "--" not in str(e.value)  # the command line says --show and --serve (tests/test_cli.py)
