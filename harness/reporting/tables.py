"""The run's figures as plain-text tables for the terminal; they read the summary
frame and compute nothing of their own."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pandas as pd

from harness.records import OK


def format_table(summary: pd.DataFrame) -> str:
    """The summary as a plain-text table for the terminal; the instructions and the
    allocations per epoch only when the run counted them, so that a run without
    keeps its narrower table."""
    with_instructions = _has(summary, "instructions_per_epoch")
    with_allocations = _has(summary, "allocations_per_epoch")
    headers = ["backend", "s/epoch (min-max)", "samples/s", "GFLOP/s", "% peak", "speed-up",
               "peak MB", "accuracy", *(["instr/epoch"] if with_instructions else []),
               *(["allocs/epoch", "alloc/epoch"] if with_allocations else []), "status"]
    lines = []
    for _, r in summary.iterrows():
        if pd.notna(r["median_s"]):
            timing = f"{r['median_s']:.3f} ({r['min_s']:.3f}-{r['max_s']:.3f})"
            figures = [f"{r['samples_per_s']:,.0f}", f"{r['gflops']:.2f}",
                       _or_dash(r["pct_peak"], "{:.1f}%"), _or_dash(r["speedup"], "{:.2f}x"),
                       _or_dash(r["peak_rss_mb"], "{:.0f}"),
                       f"{r['accuracy']:.2%}"]
        else:
            timing, figures = "-", ["-"] * 6
        if with_instructions:
            figures.append(_or_dash(r["instructions_per_epoch"], "{:,.0f}"))
        if with_allocations:
            figures += [_or_dash(r["allocations_per_epoch"], count_text),
                        _or_dash(r["bytes_allocated_per_epoch"], bytes_text)]
        status = r["status"] if r["status"] == OK else f"{r['status']}: {r['message']}"
        lines.append([r["backend"], timing, *figures, status])
    return align([headers, *lines])


def format_instability(unstable: dict) -> list[str]:
    """run.json's ``unstable`` as warnings, one a line; [] for a stable run."""
    lines = [f"warning: {backend} may be unstable: {why}"
             for backend, why in (unstable.get("backends") or {}).items()]
    if unstable.get("gemm"):
        lines.append(f"warning: the run may be unstable: {unstable['gemm']}")
    return lines


def _has(summary: pd.DataFrame, column: str) -> bool:
    """Whether any row has ``column``: runs without the figure do not show its column."""
    return column in summary and bool(summary[column].notna().any())


def _or_dash(value, fmt: str | Callable[[float], str]) -> str:
    if pd.isna(value):
        return "-"
    return fmt(value) if callable(fmt) else fmt.format(value)


def _scaled(value: float, units: Sequence[str]) -> str:
    """In steps of 1000, to three figures or so: '812', '84.0k', '1.23M'."""
    step = 0
    while abs(value) >= 999.5 and step < len(units) - 1:
        value, step = value / 1000, step + 1
    if step == 0:
        return f"{value:.0f}{units[0]}"
    return f"{value:.{2 if abs(value) < 10 else 1 if abs(value) < 100 else 0}f}{units[step]}"


def count_text(n: float) -> str:
    """A count in a few characters: '812', '84.0k', '1.23M'."""
    return _scaled(n, ("", "k", "M", "G", "T"))


def bytes_text(n: float) -> str:
    """Bytes in decimal units: '800 B', '64.0 kB', '3.36 GB'."""
    return _scaled(n, (" B", " kB", " MB", " GB", " TB"))


def align(rows: list[list[str]]) -> str:
    widths = [max(len(str(row[i])) for row in rows[:] if i < len(row)) for i in range(len(rows[0]))]
    out = []
    for k, row in enumerate(rows):
        cells = [str(c).ljust(w) if i in (0, len(row) - 1) else str(c).rjust(w)
                 for i, (c, w) in enumerate(zip(row, widths))]
        out.append("  ".join(cells).rstrip())
        if k == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def label_parts(winners: pd.DataFrame) -> dict:
    """What a row's label must name beyond width and dtype: the threads when the grid
    varies them, the machine fingerprint when the sweep ran on more than one type."""
    fingerprints = winners["fingerprint"].dropna() if "fingerprint" in winners else []
    return {"with_threads": winners["threads_requested"].nunique(dropna=False) > 1,
            "with_fingerprint": len(set(fingerprints)) > 1}


def row_label(row: pd.Series, with_threads: bool, with_fingerprint: bool = False) -> str:
    """'784,30,10 float64' (plus ' threads 2' when the grid varies threads, and the
    machine's fingerprint, ' @9e86a2bd8db2', when there is more than one)."""
    label = f"{row['sizes']} {row['dtype']}"
    if with_threads:
        threads = row["threads_requested"]
        label += f" threads {'default' if _missing(threads) else int(threads)}"
    if with_fingerprint:
        label += f" @{row['fingerprint']}"
    return label


def winner_text(row: pd.Series) -> str:
    """'numpy-gemm x1.32', 'numba (alone)', or 'no result' when every backend failed."""
    if _missing(row["winner"]):
        return "no result"
    if _missing(row["lead"]):
        return f"{row['winner']} (alone)"
    return f"{row['winner']} x{row['lead']:.2f}"


def peer_text(row: pd.Series) -> str:
    """'vs jax x1.52' (the best of ours over the best peer, at the medians), with
    ' (n.s.)' where the bootstrap interval of that ratio reaches below 1, and ''
    where the cell has no peer or none of ours."""
    if _missing(row.get("ours_vs_peer")):
        return ""
    text = f"vs {row['best_peer']} x{row['ours_vs_peer']:.2f}"
    return text + (" (n.s.)" if row.get("ours_lead") == "not supported" else "")


def ours_text(row: pd.Series) -> str:
    """'best of ours: numba x0.80' (the same ratio as :func:`peer_text`) for a
    cell a peer won, so that the map says how far behind ours was, with
    ' (n.s.)' where the bootstrap interval of that ratio reaches 1; '' where
    the cell has no peer or none of ours."""
    if _missing(row.get("ours_vs_peer")):
        return ""
    text = f"best of ours: {row['best_ours']} x{row['ours_vs_peer']:.2f}"
    high = row.get("ours_vs_peer_high")
    return text + (" (n.s.)" if not _missing(high) and high >= 1 else "")


def format_winners(winners: pd.DataFrame) -> str:
    """The winner map as a text grid: a row per width and dtype (and threads), a
    column per batch size."""
    table = winner_grid(winners)
    return table.to_string() if not table.empty else "(no cells)"


def winner_grid(winners: pd.DataFrame) -> pd.DataFrame:
    """Rows width x dtype [x threads] [x machine], columns 'batch N', cells
    :func:`winner_text`."""
    if winners.empty:
        return pd.DataFrame()
    labels = winners.apply(row_label, axis=1, **label_parts(winners))
    cells = winners.apply(winner_text, axis=1)
    grid = pd.DataFrame({"cell": labels, "batch": winners["batch_size"], "text": cells})
    table = grid.pivot(index="cell", columns="batch", values="text")
    table = table.reindex(index=list(dict.fromkeys(labels)),
                          columns=sorted(grid["batch"].unique()))
    table.columns = [f"batch {b}" for b in table.columns]
    table.index.name = None
    return table.fillna("-")


def _missing(value) -> bool:
    return value is None or bool(pd.isna(value))
