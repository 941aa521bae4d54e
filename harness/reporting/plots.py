"""The sweep's figures, each as PNG and SVG: seconds per epoch and throughput
against batch size per backend, and the winner map.

They read the sweep's frames (``harness.running.sweep``) and compute no figure of their
own. Figures are drawn on ``matplotlib.figure.Figure`` directly, with the Agg
and SVG canvases, so no GUI backend or pyplot state is involved.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import NullLocator

from harness import storage
from harness.records import OK, STANDING
from harness.reporting.tables import label_parts, ours_text, peer_text, row_label, winner_text

FORMATS = ("png", "svg")
FILES = storage.SWEEP_PLOTS
_LINESTYLES = ("-", "--", ":", "-.")


def write_all(frame: pd.DataFrame, winners: pd.DataFrame, folder: Path) -> list[Path]:
    """Every figure of a sweep into ``folder``, as PNG and SVG; the paths written."""
    colours = backend_colours(frame["backend"])
    figures = [seconds_figure(frame, colours), throughput_figure(frame, colours),
               winners_figure(winners, colours)]
    return [path for name, fig in zip(FILES, figures) for path in save(fig, folder / name)]


def save(fig: Figure, stem: Path) -> list[Path]:
    paths = [stem.with_suffix(f".{fmt}") for fmt in FORMATS]
    for path in paths:
        storage.write_figure(fig, path, dpi=120, bbox_inches="tight")
    return paths


def backend_colours(names: Iterable[str]) -> dict[str, tuple]:
    """One colour per backend, the same in every figure of the sweep."""
    palette = [f"C{i}" for i in range(10)]
    return {name: to_rgba(palette[i % len(palette)])
            for i, name in enumerate(dict.fromkeys(names))}


def seconds_figure(frame: pd.DataFrame, colours: dict) -> Figure:
    return _per_panel(frame, colours, "median_s", "seconds per epoch (median)",
                      "Epoch time against batch size (log-log; open marker: cut short)")


def throughput_figure(frame: pd.DataFrame, colours: dict) -> Figure:
    """Percentage of the GEMM peak when the sweep recorded it, else GFLOP/s."""
    if "pct_peak" in frame and frame["pct_peak"].notna().any():
        column, label = "pct_peak", "% of the machine's GEMM peak"
    else:
        column, label = "gflops", "GFLOP/s (median epoch)"
    return _per_panel(frame, colours, column, label,
                      "Throughput against batch size (open marker: cut short)")


def _per_panel(frame: pd.DataFrame, colours: dict, column: str, ylabel: str,
               title: str) -> Figure:
    """A panel per width (rows) and dtype (columns); a line per backend and thread count
    (and machine fingerprint, when the sweep ran on more than one)."""
    widths = list(dict.fromkeys(frame["sizes"]))
    dtypes = list(dict.fromkeys(frame["dtype"]))
    fig = Figure(figsize=(5.2 * len(dtypes), 3.8 * len(widths)), layout="constrained")
    axes = fig.subplots(len(widths), len(dtypes), squeeze=False, sharex=True)
    timed = frame[frame["status"].isin(STANDING) & frame[column].notna()]
    threads = list(dict.fromkeys(frame["threads_requested"]))
    batches = sorted(frame["batch_size"].unique())
    fingerprints = list(dict.fromkeys(timed["fingerprint"])) if "fingerprint" in timed else []
    machine = ["fingerprint"] if len(fingerprints) > 1 else []
    for (i, sizes), (j, dtype) in ((w, d) for w in enumerate(widths) for d in enumerate(dtypes)):
        ax = axes[i][j]
        panel = timed[(timed["sizes"] == sizes) & (timed["dtype"] == dtype)]
        for key, line in panel.groupby(["backend", "threads_requested", *machine],
                                       sort=False, dropna=False):
            backend, thread = key[:2]
            label = backend if len(threads) == 1 else f"{backend}, {_threads(thread)}"
            style = _index(threads, thread)
            if machine:
                label += f" @{key[2]}"
                style += len(threads) * fingerprints.index(key[2])
            _draw_line(ax, line, column, colours[backend],
                       _LINESTYLES[style % len(_LINESTYLES)], label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(batches, [str(b) for b in batches])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_title(f"{sizes}  {dtype}", fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.set_xlabel("batch size")
        ax.set_ylabel(ylabel)
    _legend(fig, axes)
    fig.suptitle(title)
    return fig


def _draw_line(ax, line: pd.DataFrame, column: str, colour, style: str, label: str) -> None:
    line = line.sort_values("batch_size")
    ax.plot(line["batch_size"], line[column], style, color=colour, label=label, marker="o",
            markersize=4)
    cut = line[line["status"] != OK]
    if not cut.empty:  # cut short: measured, but on fewer epochs
        ax.plot(cut["batch_size"], cut[column], "o", markersize=7, markerfacecolor="white",
                markeredgecolor=colour)


def _legend(fig: Figure, axes) -> None:
    handles = {}
    for ax in (a for row in axes for a in row):
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    if handles:
        fig.legend(list(handles.values()), list(handles), loc="outside right upper",
                   fontsize=8)


def winners_figure(winners: pd.DataFrame, colours: dict) -> Figure:
    """A grid, a row per width and dtype (and threads, and machine) and a column per
    batch size, each cell coloured by its winner and labelled with the lead over the
    next."""
    parts = label_parts(winners)
    labels = list(dict.fromkeys(winners.apply(row_label, axis=1, **parts)))
    batches = sorted(winners["batch_size"].unique())
    fig = Figure(figsize=(1.9 * len(batches) + 2.6, 0.75 * len(labels) + 1.3),
                 layout="constrained")
    ax = fig.subplots()
    for _, row in winners.iterrows():
        y = labels.index(row_label(row, **parts))
        x = batches.index(row["batch_size"])
        winner = row["winner"]
        colour = colours.get(winner, (0.85, 0.85, 0.85, 1.0)) if isinstance(winner, str) else (
            1.0, 1.0, 1.0, 1.0)
        ax.add_patch(Rectangle((x - 0.5, y - 0.5), 1, 1, facecolor=colour, alpha=0.45,
                               edgecolor="white", linewidth=2))
        label = winner_text(row).replace(" x", "\nx").replace(" (", "\n(")
        peer, ours = peer_text(row), ours_text(row)
        if peer and row["ours_vs_peer"] >= 1:
            label += "\n" + peer
        elif ours:  # a peer was faster: how far behind ours was
            label += "\n" + ours.replace(": ", ":\n")
        ax.text(x, y, label, ha="center", va="center", fontsize=7)
    ax.set_xlim(-0.5, len(batches) - 0.5)
    ax.set_ylim(len(labels) - 0.5, -0.5)
    ax.set_xticks(range(len(batches)), [f"batch {b}" for b in batches])
    ax.set_yticks(range(len(labels)), labels)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_title("Fastest backend per cell, its lead over the next, and the best of ours\n"
                 "against the best peer (x time ratio; n.s.: the bootstrap interval reaches 1)",
                 fontsize=9)
    return fig


def _index(values: list, value) -> int:
    for i, v in enumerate(values):
        if v == value or (pd.isna(v) and pd.isna(value)):
            return i
    return 0


def _threads(value) -> str:
    return "default threads" if pd.isna(value) else f"{int(value)} threads"
