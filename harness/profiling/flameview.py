"""The flamegraph viewer: one self-contained SVG (its script inside) drawn from
plain folded stacks, and the same stacks as ``.folded`` text and speedscope JSON.

The SVG carries the data, not the drawing: the stacks of each view as frame
numbers with integer sample counts, and a table of frames (function, library,
category, colour). The script (``flameview.js``, read when a file is built)
lays frames out in whole samples and converts to pixels only when it draws, so
zooming never loses or misplaces a frame and frames too thin to see at the
whole view come back when zoomed in. It offers zoom and reset (button, Esc),
a regular-expression search (Ctrl-F) with the share it matches, details on
hover, the view in the URL fragment, flame or icicle, and several views of
one process (training first; start-up and warm-up one click away).

A differential graph is the current profile's shape, each frame coloured by
how its share of samples changed against a baseline: red grew, blue shrank.
Frames found only in the baseline are listed under it.
"""

from __future__ import annotations

import colorsys
import json
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

Stack = tuple[str, ...]
SCRIPT = Path(__file__).with_name("flameview.js")

# Hue, saturation and lightness of each category; frames vary in lightness
# around it, so that neighbours of one category stay apart.
CATEGORY_HLS = {
    "blas": (0.03, 0.50, 0.72), "numpy": (0.11, 0.55, 0.90), "allocation": (0.27, 0.55, 0.40),
    "interpreter": (0.57, 0.55, 0.55), "jit": (0.76, 0.55, 0.55), "torch": (0.93, 0.55, 0.60),
    "xla": (0.49, 0.55, 0.85), "rust": (0.06, 0.36, 0.80), "other": (0.0, 0.72, 0.0),
    "caller": (0.10, 0.78, 0.12),
}
CATEGORY_NAMES = {"caller": "C runtime (its caller's work)"}


@dataclass(frozen=True)
class FrameInfo:
    function: str
    library: str
    category: str


@dataclass(frozen=True)
class View:
    """One flamegraph of a file: ``stacks`` maps frames (outermost first) to samples."""

    name: str  # its key in the URL fragment
    label: str  # its button
    stacks: Mapping[Stack, int]
    seconds_per_sample: float | None = None
    description: str = ""
    baseline: Mapping[Stack, int] | None = None  # set: a differential view


def shade(category: str, function: str) -> str:
    """The category's colour, lighter or darker by a hash of the function's name."""
    hue, lightness, saturation = CATEGORY_HLS.get(category, CATEGORY_HLS["other"])
    step = (zlib.crc32(function.encode()) % 1000) / 1000 - 0.5
    r, g, b = colorsys.hls_to_rgb(hue, min(max(lightness + 0.14 * step, 0.3), 0.92),
                                  min(saturation + 0.2 * step, 1.0) if saturation else 0.0)
    return f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"


def build_svg(views: Sequence[View], frames: Mapping[str, FrameInfo], title: str,
              subtitle: str = "") -> str:
    """The SVG text; ``frames`` describes every frame the views' stacks name."""
    names = sorted({f for v in views for s in [*v.stacks, *(v.baseline or {})] for f in s})
    index = {name: i for i, name in enumerate(names)}
    table = [[n, frames[n].function, frames[n].library, frames[n].category,
              shade(frames[n].category, frames[n].function)] for n in names]
    data = {"frames": table, "views": [_view_data(v, index) for v in views]}
    categories = sorted({info[3] for info in table}, key=list(CATEGORY_HLS).index)
    return _TEMPLATE.format(
        title=escape(title), subtitle=escape(subtitle), legend=_legend(categories, bool(
            any(v.baseline is not None for v in views))),
        data=_script_json(data), script=SCRIPT.read_text())


def _view_data(view: View, index: Mapping[str, int]) -> dict:
    out = {"name": view.name, "label": view.label, "description": view.description,
           "seconds_per_sample": view.seconds_per_sample, "stacks": _encode(view.stacks, index)}
    if view.baseline is not None:
        out["baseline"] = _encode(view.baseline, index)
    return out


def _encode(stacks: Mapping[Stack, int], index: Mapping[str, int]) -> list:
    return [[[index[f] for f in stack], int(n)] for stack, n in sorted(stacks.items()) if n > 0]


def _script_json(data: dict) -> str:
    # Inside CDATA: no ']]>' may appear, and '<' or '&' would confuse a reader
    # taking the script for markup; JSON's \u escapes keep the strings intact.
    text = json.dumps(data, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _legend(categories: Sequence[str], diff: bool) -> str:
    if diff:
        items = [("#ff5050", "share grew"), ("#5050ff", "share shrank"), ("#eeeeee", "unchanged")]
    else:
        items = [(shade(c, ""), CATEGORY_NAMES.get(c, c)) for c in categories]
    x, parts = 10, []
    for colour, label in items:
        parts.append(f'<rect x="{x}" y="0" width="12" height="12" fill="{colour}"/>'
                     f'<text x="{x + 16}" y="10">{escape(label)}</text>')
        x += 16 + 7 * len(label) + 18
    return "".join(parts)


def folded(stacks: Mapping[Stack, int]) -> str:
    """'frame;frame;... count' a line, the format of flamegraph.pl, inferno and speedscope."""
    return "".join(f"{';'.join(s)} {int(n)}\n" for s, n in sorted(stacks.items()) if n > 0)


def speedscope(views: Sequence[View], title: str) -> str:
    """The views as one speedscope file, a sampled profile each, weights in samples."""
    names = sorted({f for v in views for s in v.stacks for f in s})
    index = {name: i for i, name in enumerate(names)}
    profiles = []
    for view in views:
        stacks = sorted((s, n) for s, n in view.stacks.items() if n > 0)
        total = sum(n for _, n in stacks)
        profiles.append({"type": "sampled", "name": view.label, "unit": "none",
                         "startValue": 0, "endValue": total,
                         "samples": [[index[f] for f in s] for s, _ in stacks],
                         "weights": [int(n) for _, n in stacks]})
    return json.dumps({"$schema": "https://www.speedscope.app/file-format-schema.json",
                       "name": title, "exporter": "nndl-bench", "activeProfileIndex": 0,
                       "shared": {"frames": [{"name": n} for n in names]},
                       "profiles": profiles}) + "\n"


_TEMPLATE = """<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="1200" height="300" font-family="monospace"
     font-size="11">
<style>
g.f {{ cursor: pointer; }}
g.f:hover rect {{ stroke: #000; stroke-width: 0.8; }}
g.caller rect {{ opacity: 0.55; }}
g.match text {{ fill: #fff; }}
text.heading {{ font-weight: bold; }}
div.bar {{ font: 12px sans-serif; display: flex; gap: 6px; align-items: center; }}
div.bar button {{ font: 12px sans-serif; padding: 2px 8px; }}
div.bar button.on {{ background: #333; color: #fff; }}
div.bar input {{ font: 12px monospace; width: 18em; }}
</style>
<rect id="background" width="100%" height="300" fill="#fdfdf8"/>
<text x="10" y="22" font-size="15">{title}</text>
<text x="10" y="40" font-size="10">{subtitle}</text>
<foreignObject x="6" y="52" width="100%" height="34">
<div xmlns="http://www.w3.org/1999/xhtml" class="bar">
<span id="views"></span>
<button id="reset" title="the whole view (Esc)">Reset zoom</button>
<button id="orient" title="root at the bottom (flame) or the top (icicle)">Icicle</button>
<input id="search" type="search" placeholder="search: regular expression (Ctrl-F)"/>
<span id="matched"></span>
</div>
</foreignObject>
<text id="details" x="10" y="104"> </text>
<g id="frames"></g>
<g id="legend">{legend}</g>
<g id="baseline-only"></g>
<script><![CDATA[
var DATA = {data};
{script}]]></script>
</svg>
"""
