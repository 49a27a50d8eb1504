"""Guard: the browser live view stays a small part of a 1080p run's CPU (same-run ratio, large
regressions only; the measured figure is in README's "Live view and reports")."""
from conftest import QUICK

import serve_cost


def test_guard_serving_cost_at_1080p():
    r = serve_cost.measure(quick=QUICK)
    print(f"\nserving: CPU per frame {r['cpu_ms_per_frame_without']:.1f} vs {r['cpu_ms_per_frame_with_serve']:.1f} ms, "
          f"cost {r['cpu_cost_percent']:.1f} %; fps {r['fps_without']:.1f} vs {r['fps_with_serve']:.1f}")
    assert all(n > 0 for n in r["served_frames_per_run"]), "the viewer got no frames"
    assert r["cpu_ratio"] >= 0.75, r  # 10 % is the goal; fail only when serving becomes a large share
