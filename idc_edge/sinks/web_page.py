"""The live view's page: one HTML document with inline CSS and JavaScript (no internet needed)."""
from __future__ import annotations

import html
import json

import numpy as np

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>idc-edge live view</title>
<style>
 body { margin: 0; font: 15px/1.4 system-ui, sans-serif; background: #1e1e1e; color: #eee; }
 header { padding: 6px 12px; background: #333; display: flex; justify-content: space-between; }
 header b { font-weight: 600; } .ruo { color: #ffcf60; }
 main { display: flex; flex-wrap: wrap; gap: 12px; padding: 12px; }
 #view { flex: 1 1 640px; min-width: 320px; }
 #view img { width: 100%; background: #000; display: block; min-height: 200px; }
 aside { flex: 0 1 320px; }
 .big { font-size: 30px; font-weight: 600; } .dim { color: #aaa; font-size: 13px; }
 table { border-collapse: collapse; width: 100%; margin: 8px 0; }
 td { padding: 3px 4px; border-bottom: 1px solid #333; vertical-align: top; } td:first-child { color: #aaa; }
 #bar { position: relative; height: 16px; border: 1px solid #999; margin: 22px 0 22px;
        background: linear-gradient(to right, BAR_STOPS); }
 #thr { position: absolute; top: -6px; bottom: -6px; width: 3px; background: #fff; left: THR_PCT%; }
 #thrlabel { position: absolute; top: 18px; left: THR_PCT%; transform: translateX(-50%); font-size: 12px;
             white-space: nowrap; }
 #bar .lo { position: absolute; top: -19px; left: 0; font-size: 12px; } #bar .hi { position: absolute; top: -19px;
             right: 0; font-size: 12px; }
 .bad { color: #ff8080; font-weight: 600; } .good { color: #9fdf9f; }
 button { font-size: 16px; padding: 8px 18px; margin: 6px 0; cursor: pointer; }
 label { display: block; margin: 6px 0; }
 code { font-size: 12px; word-break: break-all; }
</style></head>
<body>
<header><span><b>idc-edge</b> live view &mdash; <span id="model">MODEL</span></span>
<span class="ruo">research use only &mdash; not for diagnosis</span></header>
<main>
<div id="view"><img id="stream" alt="live overlay (waiting for frames)" src="/stream.mjpg"></div>
<aside>
 <div class="dim">IDC area in this field</div>
 <div class="big" id="area">&ndash;</div>
 <div id="pct" class="dim">&ndash;</div>
 <div id="legend"><div class="dim">probability of IDC (unpainted below SHOW_BELOW); outlined: called IDC</div>
  <div id="bar"><span class="lo">0</span><span class="hi">1</span><div id="thr"></div>
   <div id="thrlabel">threshold THR</div></div></div>
 <table>
  <tr><td>focus</td><td id="focus">&ndash;</td></tr>
  <tr><td>exposure</td><td id="exposure">&ndash;</td></tr>
  <tr><td>colour</td><td id="colour">&ndash;</td></tr>
  <tr><td>grain</td><td id="noise">&ndash;</td></tr>
  <tr><td>tissue</td><td id="tissue">&ndash;</td></tr>
  <tr><td>threshold</td><td id="threshold">THR</td></tr>
  <tr><td>scale</td><td id="scale">&ndash;</td></tr>
  <tr><td>model</td><td><span id="model2">MODEL</span><br><code id="sha">&ndash;</code></td></tr>
  <tr><td>source</td><td id="source">&ndash;</td></tr>
  <tr><td>frame</td><td id="frame">&ndash;</td></tr>
 </table>
 <label>heat-map opacity <input id="alpha" type="range" min="0" max="1" step="0.05" value="ALPHA"></label>
 <label><input id="outline" type="checkbox" OUTLINE> outlines around IDC</label>
 <button id="snap">Snapshot</button>
 <div id="snapmsg" class="dim"></div>
</aside></main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
function show(s) {
  if (s.state !== "live") { $("area").textContent = "\\u2013"; $("pct").textContent = s.state || ""; return; }
  // a frame a gate made no call as a whole has no IDC area to give: "0.00 mm2" would read as "no IDC"
  $("area").textContent = s.frame_no_call ? "no call" : s.idc_area_mm2.toFixed(2) + " mm\\u00b2";
  $("pct").textContent = s.frame_no_call ? "the picture cannot be trusted: see below" :
    s.idc_percent_of_tissue.toFixed(1) + " % of tissue is IDC";
  const f = $("focus");
  f.textContent = s.in_focus === null ? "not measured" : (s.in_focus ? "in focus" : (s.streaked ? "MOTION BLUR: no call (hold the stage still)" : (s.colour_blurred ? "COLOUR BLUR: no call (one colour out of focus: the camera's lens)" : "OUT OF FOCUS: no call")));
  f.className = s.in_focus === false ? "bad" : (s.in_focus ? "good" : "");
  const e = $("exposure");
  e.textContent = s.exposure_ok === null ? "not measured" : (s.exposure_ok ? "ok" : (s.washed_out ? "WASHED OUT: no call (stray light: cap the eyepieces, shade the stand)" : "too dark or clipped"));
  e.className = s.exposure_ok === false ? "bad" : "";
  const c = $("colour");
  c.textContent = s.no_colour ? "NO COLOUR: no call (a monochrome camera or grey mode? use its colour mode)" :
    s.faint_colour ? "FAINT COLOUR: no call (camera saturation turned down? colour mode?)" :
    s.stain_ok === false ? "STAIN COLOURS: no call (red and blue swapped? camera hue?)" :
    (s.colour_ok === false ? "COLOUR CAST: no call (calibrate white)" : (s.colour_ok === null ? "not measured" : "ok"));
  if (s.no_call_ink) c.textContent += " \u00b7 marker ink: " + s.no_call_ink + " patch(es) without a call";
  c.className = (s.colour_ok === false || s.no_colour || s.no_call_ink) ? "bad" : "";
  const n = $("noise");
  n.textContent = s.noise_ok === null ? "not measured" : (s.noise_ok ? "ok" : "NOISY: no call (more light or a longer exposure)");
  n.className = s.noise_ok === false ? "bad" : "";
  $("tissue").textContent = s.tissue_area_mm2.toFixed(2) + " mm\\u00b2";
  if (s.no_call_patches) $("tissue").textContent += " \\u00b7 " + s.no_call_patches + " patch(es) without a call (grey)";
  $("threshold").textContent = s.threshold.toFixed(3);
  $("scale").textContent = s.um_per_px + " \\u00b5m per pixel";
  $("sha").textContent = "sha256 " + s.model_sha256;
  $("source").textContent = s.source;
  $("frame").textContent = s.frame + " \\u00b7 " + s.fps.toFixed(1) + " fps \\u00b7 " + s.viewers + " viewer(s)";
}
async function poll() {
  try { show(await (await fetch("/status.json", {cache: "no-store"})).json()); }
  catch (err) { $("pct").textContent = "run ended or not reachable"; }
  setTimeout(poll, 500);
}
async function post(path, body) {
  const r = await fetch(path, {method: "POST", headers: {"Content-Type": "application/json"},
                               body: JSON.stringify(body || {})});
  const data = await r.json();
  if (!r.ok) throw new Error(data.error || r.statusText);
  return data;
}
$("snap").onclick = async () => {
  $("snapmsg").textContent = "saving\\u2026";
  try { const d = await post("/snapshot"); $("snapmsg").textContent = "saved on the device: " + d.png; }
  catch (err) { $("snapmsg").textContent = "not saved: " + err.message; }
};
$("stream").onerror = () => { $("pct").textContent = "the live stream ended (run stopped?)"; };
$("alpha").oninput = () => post("/settings", {alpha: parseFloat($("alpha").value)}).catch(() => {});
$("outline").onchange = () => post("/settings", {outline: $("outline").checked}).catch(() => {});
poll();
</script></body></html>
"""


def render_page(table_bgr: np.ndarray, *, threshold: float, show_below: float, model: str, alpha: float,
                outline: bool) -> str:
    """The page, with the colour bar's CSS gradient built from the overlay's own colour table
    (``table_bgr`` uint8 [256, 3] **BGR**) and the threshold marked."""
    stops = []
    for i in range(0, 256, 16):
        b, g, r = (int(v) for v in table_bgr[i])
        pct = 100.0 * i / 255.0
        colour = "transparent" if i / 255.0 < show_below else f"rgb({r},{g},{b})"
        stops.append(f"{colour} {pct:.1f}%")
    b, g, r = (int(v) for v in table_bgr[255])
    stops.append(f"rgb({r},{g},{b}) 100%")
    text = _PAGE.replace("BAR_STOPS", ", ".join(stops)).replace("THR_PCT", f"{100 * threshold:.1f}")
    text = text.replace("SHOW_BELOW", f"{show_below:g}").replace("THR", f"{threshold:.2f}")
    text = text.replace("MODEL", html.escape(model)).replace("ALPHA", f"{alpha:g}")
    return text.replace("OUTLINE", "checked" if outline else "")
