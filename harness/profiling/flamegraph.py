"""A flamegraph SVG drawn from collapsed stacks.

Written here rather than taken from elsewhere: there is no Debian package of
Brendan Gregg's flamegraph.pl (and it would bring Perl into a Python harness),
py-spy draws only the stacks it recorded itself, before the post-processing
that merges Numba's bare addresses and joins the start-up and training phases
sampled at different rates, and the PyPI renderers are unmaintained. What a
reader needs is small: one rectangle per frame, as wide as its share of the
time, a tooltip (``<title>``) with the full name and figures, and colours by
the categories of the time breakdown, so that BLAS, NumPy and the interpreter
stand out at a glance. Clicking a frame zooms to it; clicking the background
resets.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

from harness.profiling.classify import CALLER, Frame, Stack, classify

COLOURS = {
    "blas": "#e4572e", "numpy": "#f3a712", "allocation": "#a8c686", "interpreter": "#669bbc",
    "jit": "#9b5de5", "torch": "#ee6c4d", "xla": "#00a6a6", "rust": "#b7410e",
    "other": "#c0c0c0",
    CALLER: "#dddddd",
}
WIDTH, ROW, FONT, TOP = 1200, 17, 11, 70
_CHAR = FONT * 0.6  # average glyph width of the monospace font, for clipping labels


@dataclass
class _Node:
    name: str
    value: float = 0.0
    samples: int = 0
    children: dict[str, _Node] = field(default_factory=dict)


def _tree(stacks: Mapping[Stack, tuple[float, int]]) -> _Node:
    root = _Node("all")
    for stack, (value, samples) in stacks.items():
        node = root
        node.value += value
        node.samples += samples
        for name in stack:
            node = node.children.setdefault(name, _Node(name))
            node.value += value
            node.samples += samples
    return root


def _depth(node: _Node) -> int:
    return 1 + max((_depth(c) for c in node.children.values()), default=0)


def render(stacks: Mapping[Stack, tuple[float, int]], title: str, subtitle: str = "",
           unit: str = "s") -> str:
    """SVG text; ``stacks`` maps each stack to (width weight, samples behind it)."""
    root = _tree(stacks)
    height = TOP + _depth(root) * ROW + 10
    rects: list[str] = []
    _draw(root, 0.0, WIDTH - 20, height - 10 - ROW, root.value or 1.0, unit, rects)
    legend = "".join(
        f'<rect x="{10 + i * 120}" y="48" width="12" height="12" fill="{colour}"/>'
        f'<text x="{26 + i * 120}" y="58">{escape(name)}</text>'
        for i, (name, colour) in enumerate(c for c in COLOURS.items() if c[0] != CALLER))
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="monospace" font-size="{FONT}" '
        f'onclick="zoom(evt)">\n'
        f"<style>g.f:hover rect {{ stroke: #000; stroke-width: 0.5; }} "
        f"g.f {{ cursor: pointer; }}</style>\n"
        f"<script><![CDATA[{_ZOOM}]]></script>\n"
        f'<rect width="100%" height="100%" fill="#fdfdf8"/>\n'
        f'<text x="10" y="20" font-size="15">{escape(title)}</text>\n'
        f'<text x="10" y="38">{escape(subtitle)}</text>\n'
        f"{legend}\n<g id=\"frames\">\n" + "\n".join(rects) + "\n</g>\n</svg>\n"
    )


def _draw(node: _Node, x: float, width: float, y: float, total: float, unit: str,
          out: list[str]) -> None:
    if width < 0.3:
        return
    category = classify((node.name,)) if node.name != "all" else "other"
    tip = (f"{Frame.parse(node.name).name}\n{Frame.parse(node.name).library}\n"
           f"{node.value / total:.2%}, {node.value:.3g} {unit}, {node.samples} samples")
    label = node.name if len(node.name) * _CHAR < width - 4 else (
        node.name[: max(int((width - 4) / _CHAR) - 2, 0)] + ".." if width > 3 * _CHAR else "")
    out.append(
        f'<g class="f"><title>{escape(tip)}</title>'
        f'<rect x="{x + 10:.2f}" y="{y:.1f}" width="{width:.2f}" height="{ROW - 1}" '
        f'fill="{COLOURS[category]}" rx="2"/>'
        f'<text x="{x + 13:.2f}" y="{y + ROW - 5:.1f}" data-t={quoteattr(node.name)}>'
        f"{escape(label)}</text></g>")
    child_x = x
    for child in sorted(node.children.values(), key=lambda c: c.name):
        child_width = width * child.value / node.value if node.value else 0.0
        _draw(child, child_x, child_width, y - ROW, total, unit, out)
        child_x += child_width


# Click a frame to zoom to it (it and its callees fill the width, its callers
# are greyed); click the background to reset. Works on the drawn rectangles alone.
_ZOOM = """
function zoom(evt) {
  var g = evt.target.closest ? evt.target.closest('g.f') : null;
  var frames = document.querySelectorAll('g.f');
  var x0 = 10, w0 = WIDTH - 20, left = x0, width = w0, y = Infinity;
  if (g) { var r = g.querySelector('rect'); left = +r.getAttribute('data-x0') ||
           +r.getAttribute('x'); width = +r.getAttribute('data-w0') || +r.getAttribute('width');
           y = +r.getAttribute('y'); }
  frames.forEach(function (f) {
    var r = f.querySelector('rect'), t = f.querySelector('text');
    if (!r.hasAttribute('data-x0')) { r.setAttribute('data-x0', r.getAttribute('x'));
      r.setAttribute('data-w0', r.getAttribute('width')); }
    var rx = +r.getAttribute('data-x0'), rw = +r.getAttribute('data-w0');
    var inside = rx >= left - 1e-6 && rx + rw <= left + width + 1e-6;
    var nx = x0 + (rx - left) * w0 / width, nw = rw * w0 / width;
    var show = !g || (+r.getAttribute('y') <= y && inside) || (+r.getAttribute('y') > y &&
               rx <= left + 1e-6 && rx + rw >= left + width - 1e-6);
    f.style.display = show ? '' : 'none';
    if (!show) return;
    if (+r.getAttribute('y') > y && g) { nx = x0; nw = w0; r.setAttribute('opacity', '0.5'); }
    else { r.removeAttribute('opacity'); }
    r.setAttribute('x', nx); r.setAttribute('width', nw);
    t.setAttribute('x', nx + 3);
    var full = t.getAttribute('data-t'), fits = Math.floor((nw - 4) / CHAR);
    t.textContent = full.length <= fits ? full : (fits > 3 ? full.slice(0, fits - 2) + '..' : '');
  });
}
""".replace("WIDTH", str(WIDTH)).replace("CHAR", str(_CHAR))
