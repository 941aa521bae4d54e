"""The HTML report of a run and of a sweep: one self-contained page each.

Everything the page shows is passed in as plain rows (dicts) and the run's
metadata, so the page can be rebuilt from the files of a run folder alone;
nothing is computed here that a CSV does not already hold, except the layout
of the plots. The plots are inline SVG drawn here (no library, no network);
flamegraphs are linked, each opening in its own viewer. The page's script
(``report.js``) sorts the tables and is inlined too.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from pathlib import Path

from harness.profiling.classify import CATEGORIES
from harness.profiling.flameview import shade
from harness.reporting.tables import bytes_text, format_instability

ASSETS = Path(__file__).parent
SUMMARY = [("backend", "backend", "{}"), ("status", "status", "{}"),
           ("median_s", "s/epoch (median)", "{:.4f}"), ("min_s", "min s", "{:.4f}"),
           ("max_s", "max s", "{:.4f}"), ("samples_per_s", "samples/s", "{:,.0f}"),
           ("gflops", "GFLOP/s", "{:.2f}"), ("pct_peak", "% of peak", "{:.1f}%"),
           ("speedup", "speed-up", "{:.2f}x"), ("peak_rss_mb", "peak MB", "{:.0f}"),
           ("accuracy", "accuracy", "{:.2%}"), ("compile_seconds", "compile s", "{:.2f}"),
           ("instructions_per_epoch", "instructions/epoch", "{:,.0f}"),
           ("allocations_per_epoch", "allocations/epoch", "{:,.0f}"),
           ("bytes_allocated_per_epoch", "allocated/epoch", bytes_text)]
# Counted apart from the timed epochs, and only when asked for (run
# --count-instructions; a profiled run's allocations): a run without them keeps
# the narrower table, as the terminal's does.
COUNTED = {"instructions_per_epoch", "allocations_per_epoch", "bytes_allocated_per_epoch"}
HOT = [("backend", "backend", "{}"), ("rank", "rank", "{}"), ("function", "function", "{}"),
       ("library", "library", "{}"), ("samples", "samples", "{}"),
       ("share", "share", "{:.1%}")]
WINNERS = [("sizes", "sizes", "{}"), ("dtype", "dtype", "{}"),
           ("threads_requested", "threads", "{}"), ("batch_size", "batch", "{}"),
           ("fingerprint", "machine", "{}"), ("winner", "winner", "{}"),
           ("winner_s", "winner s", "{:.4f}"),
           ("lead", "lead", "x{:.2f}"), ("best_ours", "best of ours", "{}"),
           ("best_peer", "best peer", "{}"), ("ours_vs_peer", "ours vs peer", "{:.2f}x"),
           ("ours_vs_peer_low", "95% from", "{:.2f}x"), ("ours_vs_peer_high", "to", "{:.2f}x"),
           ("ours_lead", "ours ahead", "{}")]


def run_page(meta: Mapping, summary: Sequence[Mapping], epochs: Sequence[Mapping],
             breakdown: Sequence[Mapping], hot: Sequence[Mapping],
             failures: Sequence[Mapping], flamegraphs: Mapping[str, str]) -> str:
    """The page of one run; ``flamegraphs`` maps a backend to its SVG's address."""
    run_id = meta.get("run_id", "run")
    # The results first, failures right below them; the settings they were made with last.
    sections = [
        _section("Summary", (_table(summary, _summary_columns(summary), "summary")
                             + _allocations(meta))
                 if summary else "<p>No backend was timed in this run.</p>"),
        _section("Failures", _failures(failures)),
        *([_section("Instruction counts", _counts(meta["instructions"]))]
          if meta.get("instructions") else []),
        _section("Epoch times", _epoch_plot(epochs, _medians(summary)) if epochs
                 else "<p>No timed epoch.</p>"),
        _section("Where the training time goes", _breakdown_plot(breakdown) if breakdown
                 else "<p>No profile in this run.</p>"),
        _section("Flamegraphs", _flamegraph_links(flamegraphs)),
        _section("Hottest functions", _table(hot, HOT, "hot") if hot
                 else "<p>No profile in this run.</p>"),
        '<div class="columns">' + _section("Configuration", _pairs(_configuration(meta)))
        + _section("Machine", _pairs(_machine(meta)) + _blas(meta.get("blas") or []))
        + "</div>",
    ]
    return _page(f"nndl-bench run {run_id}", _run_header(meta), sections)


def _summary_columns(summary: Sequence[Mapping]) -> list:
    return [c for c in SUMMARY
            if c[0] not in COUNTED or any(_number(row.get(c[0])) for row in summary)]


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not math.isnan(value)


def _counts(counting: Mapping) -> str:
    """How the instructions were counted, and each backend's count with its spread
    and what its trainer chose under valgrind."""
    workload = counting.get("workload") or {}
    pairs = [("tool", f"{counting.get('tool')} ({counting.get('valgrind')})"),
             ("workload", ", ".join(f"{k} {v}" for k, v in workload.items())),
             ("address randomisation", _text(counting.get("aslr"))),
             ("note", _text(counting.get("note")))]
    pairs += [(f"left out: {b}", why) for b, why in (counting.get("left_out") or {}).items()]
    pairs += [(f"not counted: {b}", why) for b, why in (counting.get("failures") or {}).items()]
    for backend, c in (counting.get("backends") or {}).items():
        choices = c.get("choices") or {}
        isa = f"; instruction set {choices['isa']}" if choices.get("isa") else ""
        pairs.append((backend, f"{c['median']:,.0f} per epoch, spread {c['spread_pct']:.3f}% "
                               f"over {len(c['per_epoch'])} epochs{isa}"))
    return _pairs(pairs)


MACHINES = [("fingerprint", "machine", "{}"), ("hostname", "host", "{}"),
            ("worker", "worker", "{}"), ("pinned_cores", "pinned cores", "{}"),
            ("cpu_model", "CPU", "{}"), ("cpu_count", "cores", "{}"), ("blas", "BLAS", "{}"),
            ("commit", "commit", "{}")]


def sweep_page(meta: Mapping, winners: Sequence[Mapping], cell_reports: Mapping[int, str],
               plots: Sequence[str], machines: Sequence[Mapping] = ()) -> str:
    """The page of a sweep: the winner map, each cell linked to its run's page
    (``cell_reports`` maps a row of ``winners`` to the address), the plots, and the
    machines the cells ran on (a row per worker and fingerprint)."""
    rows = [{**row, "report": cell_reports.get(i, "")} for i, row in enumerate(winners)]
    table = _table(rows, WINNERS, "winners", link=("winner", "report"))
    images = "".join(f'<figure><img src="{escape(p)}" alt="{escape(Path(p).stem)}"/></figure>'
                     for p in plots)
    sections = [_section("Winner map", table if rows else "<p>No cell finished.</p>"),
                _section("Plots", images or "<p>No plot.</p>"),
                _section("Machine", _pairs(_machine(meta)) + _blas(meta.get("blas") or []))]
    if machines:
        sections.append(_section("Where the cells ran", _table(machines, MACHINES, "machines")))
    header = (f"<p>{len(rows)} cells; started {escape(str(meta.get('started', '')))}, "
              f"finished {escape(str(meta.get('finished', '')))}</p>{_command(meta)}")
    return _page(f"nndl-bench sweep {meta.get('sweep_id', '')}", header, sections)


def _page(title: str, header: str, sections: Iterable[str]) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8"/>\n'
            f"<title>{escape(title)}</title>\n"
            f"<style>\n{(ASSETS / 'report.css').read_text()}</style>\n</head>\n<body>\n"
            f"<h1>{escape(title)}</h1>\n{header}\n" + "\n".join(sections) +
            f"\n<script>\n{(ASSETS / 'report.js').read_text()}</script>\n</body>\n</html>\n")


def _section(title: str, body: str) -> str:
    anchor = title.lower().replace(" ", "-")
    return f'<section id="{escape(anchor)}"><h2>{escape(title)}</h2>\n{body}\n</section>'


def _run_header(meta: Mapping) -> str:
    return (_warnings(meta.get("unstable") or {})
            + f"<p>Started {escape(str(meta.get('started', '')))}, finished "
            f"{escape(str(meta.get('finished', '')))}; dataset "
            f"<b>{escape(str(meta.get('dataset', '')))}</b>; commit "
            f"<code>{escape(str(meta.get('git_commit') or 'unknown'))}</code></p>\n"
            + _command(meta))


def _warnings(unstable: Mapping) -> str:
    """run.json's ``unstable``: why the run's times may be unstable."""
    return "".join(f'<p class="warning">{escape(line)}</p>\n'
                   for line in format_instability(dict(unstable)))


def _command(meta: Mapping) -> str:
    command = meta.get("command_line")
    return f"<p><code>{escape(str(command))}</code></p>" if command else ""


def _configuration(meta: Mapping) -> list[tuple[str, str]]:
    config = dict(meta.get("config") or {})
    return [(k, _text(v) or "-") for k, v in config.items() if k != "argv"]


def _peak_library(peak: Mapping, threads: str) -> str:
    """' (xla; blas 105.7)': which library set the peak, and the others' figures."""
    library = peak.get(f"library_{threads}")
    if not library:
        return ""
    others = [f"{name} {figures[threads]:.1f}" for name, figures in
              (peak.get("by_library") or {}).items() if name != library and threads in figures]
    return f" ({'; '.join([library, *others])})"


def _machine(meta: Mapping) -> list[tuple[str, str]]:
    peak = meta.get("gemm_peak") or {}
    pairs = [("CPU", meta.get("cpu_model")), ("cores", meta.get("cpu_count")),
             ("OS", meta.get("os")), ("Python", meta.get("python")),
             ("commit", meta.get("git_commit"))]
    pairs += [(f"GEMM peak, {k.removeprefix('gemm_peak_gflops_')}",
               f"{v:.1f} GFLOP/s" + _peak_library(peak, k.removeprefix("gemm_peak_gflops_")))
              for k, v in peak.items() if k.startswith("gemm_peak_gflops_") and v]
    if peak.get("gemm_median_gflops_all"):
        median = peak["gemm_median_gflops_all"]
        pairs.append(("GEMM median repeat, all", f"{median:.1f} GFLOP/s (blas)"))
    pairs += [(k, v) for k, v in (meta.get("environment") or {}).items()]
    pairs += [(k, v) for k, v in (meta.get("packages") or {}).items() if v]
    return [(k, _text(v)) for k, v in pairs if v is not None]


def _blas(pools: Sequence[Mapping]) -> str:
    columns = [(k, k.replace("_", " "), "{}") for k in
               ("user_api", "internal_api", "version", "num_threads", "architecture",
                "filepath")]
    return "<h3>BLAS and thread pools</h3>\n" + _table(pools, columns, "blas") if pools else ""


def _pairs(pairs: Sequence[tuple[str, str]]) -> str:
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in pairs)
    return f'<table class="pairs">{rows}</table>'


def _text(value) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return "" if value is None else str(value)


def _missing(value) -> bool:
    return value is None or value == "" or (isinstance(value, float) and math.isnan(value))


def _cell(row: Mapping, key: str, fmt: str) -> tuple[str, str]:
    """(shown text, sort key) of one cell."""
    value = row.get(key)
    if _missing(value):
        return "-", ""
    try:
        return (fmt(value) if callable(fmt) else fmt.format(value)), str(value)
    except (ValueError, TypeError):
        return str(value), str(value)


def _table(rows: Sequence[Mapping], columns, name: str,
           link: tuple[str, str] | None = None) -> str:
    """A table the page's script sorts when a heading is clicked."""
    head = "".join(f'<th data-sort="{escape(key)}" tabindex="0">{escape(label)}</th>'
                   for key, label, _ in columns)
    body = []
    for row in rows:
        cells = []
        for key, _, fmt in columns:
            text, value = _cell(row, key, fmt)
            shown = escape(text)
            if link and key == link[0] and row.get(link[1]):
                shown = f'<a href="{escape(str(row[link[1]]))}">{shown}</a>'
            cells.append(f'<td data-value="{escape(value)}">{shown}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<table class="sortable" id="{name}-table"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>")


def _log_ticks(low: float, high: float) -> list[float]:
    ticks = []
    for exponent in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1):
        ticks += [m * 10 ** exponent for m in (1, 2, 5) if low <= m * 10 ** exponent <= high]
    return ticks


def _medians(summary: Sequence[Mapping]) -> dict[str, float]:
    """Each backend's median epoch time, as the summary computed it."""
    return {str(row["backend"]): float(row["median_s"]) for row in summary
            if not _missing(row.get("median_s"))}


def _epoch_plot(epochs: Sequence[Mapping], medians: Mapping[str, float]) -> str:
    """Each backend's timed epochs as dots on one log-scaled axis, its median (from
    the summary: computed once, drawn here) as a bar."""
    by_backend: dict[str, list[float]] = {}
    for row in epochs:
        if not _missing(row.get("seconds")) and row["seconds"] > 0:
            by_backend.setdefault(str(row["backend"]), []).append(float(row["seconds"]))
    if not by_backend:
        return "<p>No timed epoch.</p>"
    values = [s for times in by_backend.values() for s in times]
    low, high = min(values) / 1.3, max(values) * 1.3
    left, width, row_h = 170, 560, 26
    x = lambda s: left + width * math.log(s / low) / math.log(high / low)
    height = row_h * len(by_backend) + 40
    parts = [f'<svg class="plot" xmlns="http://www.w3.org/2000/svg" width="{left + width + 20}" '
             f'height="{height}" role="img" aria-label="epoch times per backend">']
    for tick in _log_ticks(low, high):
        parts.append(f'<line x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="5" y2="{height - 30}" '
                     f'class="grid"/><text x="{x(tick):.1f}" y="{height - 14}" '
                     f'text-anchor="middle">{tick:g}</text>')
    for i, (backend, times) in enumerate(by_backend.items()):
        y = 18 + i * row_h
        median = medians.get(backend)
        parts.append(_label(left - 8, y + 4, backend))
        parts += [f'<circle cx="{x(s):.1f}" cy="{y}" r="3.5" class="epoch">'
                  f"<title>{escape(backend)}: {s:.4f} s</title></circle>" for s in times]
        if median is not None:
            parts.append(f'<line x1="{x(median):.1f}" x2="{x(median):.1f}" y1="{y - 9}" '
                         f'y2="{y + 9}" class="median"><title>median {median:.4f} s</title>'
                         '</line>')
    parts.append(f'<text x="{left + width / 2}" y="{height - 1}" text-anchor="middle">'
                 "seconds per epoch (log scale); bar: median</text></svg>")
    return "".join(parts)


def _label(x: float, y: float, text: str) -> str:
    return f'<text x="{x}" y="{y}" text-anchor="end">{escape(text)}</text>'


def _breakdown_plot(rows: Sequence[Mapping]) -> str:
    """One bar per backend, split by the share of training samples in each category."""
    shares: dict[str, dict[str, float]] = {}
    for row in rows:
        shares.setdefault(str(row["backend"]), {})[str(row["category"])] = float(row["share"])
    left, width, row_h = 170, 560, 24
    height = row_h * len(shares) + 44
    parts = [f'<svg class="plot" xmlns="http://www.w3.org/2000/svg" width="{left + width + 20}" '
             f'height="{height}" role="img" aria-label="time breakdown per backend">']
    for i, (backend, by_category) in enumerate(shares.items()):
        y, offset = 6 + i * row_h, 0.0
        parts.append(_label(left - 8, y + 14, backend))
        for category in CATEGORIES:
            share = by_category.get(category, 0.0)
            if share <= 0:
                continue
            x = left + width * offset
            parts.append(f'<rect x="{x:.1f}" y="{y}" width="{width * share:.1f}" height="18" '
                         f'fill="{shade(category, "")}"><title>{escape(backend)}: {category} '
                         f"{share:.1%}</title></rect>")
            if share >= 0.06:
                parts.append(f'<text x="{x + 3:.1f}" y="{y + 13}" class="inbar">{share:.0%}'
                             "</text>")
            offset += share
    legend_y = height - 16
    for k, category in enumerate(CATEGORIES):
        parts.append(f'<rect x="{10 + k * 88}" y="{legend_y - 9}" width="10" height="10" '
                     f'fill="{shade(category, "")}"/><text x="{10 + k * 88 + 14}" '
                     f'y="{legend_y}">{category}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _flamegraph_links(flamegraphs: Mapping[str, str]) -> str:
    if not flamegraphs:
        return "<p>No flamegraph in this run.</p>"
    items = "".join(
        f'<li><a href="{escape(href)}">{escape(backend)}</a>: '
        f'<a href="{escape(href)}#view=startup">start-up and warm-up</a>, '
        f'<a href="{escape(href)}#view=epochs">whole profiled phase</a></li>'
        for backend, href in flamegraphs.items())
    return (f'<ul class="flamegraphs">{items}</ul>'
            "<p>Each opens in the viewer: click to zoom, Esc to reset, Ctrl-F to search.</p>")


def _allocations(meta: Mapping) -> str:
    """How the allocation columns were counted, and why a backend has none."""
    counted = meta.get("allocations")
    if not counted:
        return ""
    notes = "".join(f"<li>{escape(str(note))}</li>" for note in counted.get("notes") or [])
    return ('<p>Allocations and bytes allocated per epoch: the C allocator\'s '
            "allocating calls (malloc, calloc, realloc, the aligned ones; mmap apart) in "
            f"{escape(str(counted.get('epochs', 1)))} epoch(s) after the warm-up, counted by "
            "memray in a process of their own, apart from the timed epochs.</p>"
            + (f"<ul>{notes}</ul>" if notes else ""))


def _failures(failures: Sequence[Mapping]) -> str:
    if not failures:
        return "<p>None: every backend ran to the end.</p>"
    return "".join(
        f'<div class="failure"><h3>{escape(str(f.get("backend", "")))}: '
        f'{escape(str(f.get("status", "")))}</h3><p>{escape(str(f.get("message", "")))}</p>'
        + (f'<pre>{escape(str(f["traceback"]))}</pre>' if f.get("traceback") else "")
        + "</div>" for f in failures)
