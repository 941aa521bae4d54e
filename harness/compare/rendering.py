"""A comparison shown as a terminal table, a Markdown pull-request comment or a
CSV. Every figure comes from ``Comparison.rows``; nothing is recomputed here."""

from __future__ import annotations

import pandas as pd

from harness.compare.compare import INSTRUCTIONS, IS_REFERENCE, MORE, SLOWER, Comparison
from harness.reporting.tables import align
from harness.storage import CONFIG_COLUMNS, Run, config_label

FORMATS = ("table", "markdown", "csv")


def render(comparison: Comparison, fmt: str = "table", fail_above: float | None = None) -> str:
    """The comparison in ``fmt`` (one of FORMATS); ``fail_above`` adds the gate's outcome."""
    if fmt == "csv":
        return to_csv(comparison)
    if fmt == "markdown":
        return to_markdown(comparison, fail_above)
    return to_table(comparison, fail_above)


def to_table(c: Comparison, fail_above: float | None = None) -> str:
    lines = [f"baseline: {_describe(c.baseline)}", f"current:  {_describe(c.current)}"]
    lines += _config_lines(c)
    header = ["backend", *(["configuration"] if _many_configs(c) else []),
              *_figure_titles(c, "s"), "verdict"]
    body = [[r["backend"], *_config_cell(c, r), *_figures(c, r), r["verdict"]]
            for _, r in c.rows.iterrows()]
    lines += ["", align([header, *body]), ""]
    lines += [f"{kind}: {backend} ({config_label(cfg)})"
              for kind, items in (("added", c.added), ("removed", c.removed))
              for backend, cfg in items]
    lines += [f"note: {note}" for note in c.notes]
    lines += [_tally(c), *_gate_lines(c, fail_above)]
    return "\n".join(lines).rstrip() + "\n"


def to_markdown(c: Comparison, fail_above: float | None = None) -> str:
    lines = ["### Benchmark comparison", "",
             f"Baseline {_describe(c.baseline, code=True)}  ",
             f"Current {_describe(c.current, code=True)}", ""]
    lines += [f"{line}  " for line in _config_lines(c)] + [""]
    header = ["backend", *(["configuration"] if _many_configs(c) else []),
              *_figure_titles(c, "s/epoch"), "verdict"]
    lines += ["| " + " | ".join(header) + " |",
              "|" + "|".join("---" if h in ("backend", "configuration", "verdict") else "---:"
                             for h in header) + "|"]
    for _, r in c.rows.iterrows():
        verdict = f"**{r['verdict']}**" if r["verdict"] in (SLOWER, MORE) else r["verdict"]
        cells = [f"`{r['backend']}`", *_config_cell(c, r), *_figures(c, r), verdict]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines += [f"- {kind}: `{backend}` ({config_label(cfg)})"
              for kind, items in (("Added", c.added), ("Removed", c.removed))
              for backend, cfg in items]
    lines += [f"- {note[0].upper()}{note[1:]}." for note in c.notes]
    lines += ["", _tally(c), *(f"**{line}**" for line in _gate_lines(c, fail_above))]
    return "\n".join(lines).rstrip() + "\n"


def to_csv(c: Comparison) -> str:
    """One row per compared backend, then one per added or removed one."""
    extra = [{"backend": backend, **dict(zip(CONFIG_COLUMNS, cfg)), "verdict": kind}
             for kind, items in (("added", c.added), ("removed", c.removed))
             for backend, cfg in items]
    frame = pd.concat([c.rows, pd.DataFrame(extra, columns=c.rows.columns)]) if extra else c.rows
    frame = frame.assign(normalize=c.normalize or "")
    return frame.to_csv(index=False)


def _describe(run: Run, code: bool = False) -> str:
    meta = run.meta
    path = f"`{run.path}`" if code else str(run.path)
    commit = (meta.get("git_commit") or "unknown commit")[:12]
    pooled = meta.get("pooled_runs")
    details = [d for d in (commit, meta.get("cpu_model"), meta.get("started"),
                           pooled and f"{len(pooled)} runs pooled") if d]
    return f"{path} ({', '.join(details)})"


def _many_configs(c: Comparison) -> bool:
    return len(c.rows[CONFIG_COLUMNS].drop_duplicates()) > 1


def _config_lines(c: Comparison) -> list[str]:
    if _many_configs(c):
        return []
    return [f"configuration: {config_label(tuple(c.rows.iloc[0][CONFIG_COLUMNS]))}"]


def _config_cell(c: Comparison, row) -> list[str]:
    return [config_label(tuple(row[CONFIG_COLUMNS]))] if _many_configs(c) else []


def _figure_titles(c: Comparison, seconds: str) -> list[str]:
    """The titles of the figures between the backend and the verdict."""
    if c.metric == INSTRUCTIONS:
        return ["baseline instr/epoch", "current instr/epoch", "ratio", "range",
                "baseline spread", "current spread"]
    return [f"baseline {seconds}", f"current {seconds}", *_ratio_titles(c),
            f"{c.confidence:.0%} interval"]


def _figures(c: Comparison, r) -> list[str]:
    if c.metric == INSTRUCTIONS:
        return [f"{r['baseline_median']:,.0f}", f"{r['current_median']:,.0f}",
                _x(r["ratio"], 4), _interval(r, 4), f"{r['baseline_spread_pct']:.3f}%",
                f"{r['current_spread_pct']:.3f}%"]
    return [f"{r['baseline_median_s']:.4f}", f"{r['current_median_s']:.4f}", *_ratios(c, r),
            _interval(r)]


def _ratio_titles(c: Comparison) -> list[str]:
    """The raw time ratio, then the normalized one that the verdict reads, if any."""
    return ["time ratio", f"ratio / {c.normalize}"] if c.normalize else ["time ratio"]


def _ratios(c: Comparison, row) -> list[str]:
    return [_x(row["time_ratio"]), _x(row["ratio"])] if c.normalize else [_x(row["ratio"])]


def _x(value: float, digits: int = 2) -> str:
    return f"{value:.{digits}f}x"


def _interval(row, digits: int = 2) -> str:
    if row["verdict"] == IS_REFERENCE:
        return "-"
    return f"{row['ci_low']:.{digits}f}-{row['ci_high']:.{digits}f}"


def _tally(c: Comparison) -> str:
    counts = c.rows["verdict"].value_counts()
    parts = [f"{n} {verdict}" for verdict, n in counts.items() if verdict != IS_REFERENCE]
    if c.metric == INSTRUCTIONS:
        return (f"{', '.join(parts)} (a change must leave the range of the ratio over every "
                "pair of counted epochs)")
    return (f"{', '.join(parts)} ({c.confidence:.0%} bootstrap interval of the ratio of "
            f"medians, {c.resamples:,} resamples)")


def _gate_lines(c: Comparison, fail_above: float | None) -> list[str]:
    if fail_above is None:
        return []
    failing = c.regressions(fail_above)
    what = "more instructions" if c.metric == INSTRUCTIONS else "slower"
    digits = 4 if c.metric == INSTRUCTIONS else 2
    if failing.empty:
        return [f"gate passed: no backend {what} by more than {fail_above:g}% with confidence"]
    names = ", ".join(f"{r['backend']} ({_x(r['ratio'], digits)}, interval from "
                      f"{r['ci_low']:.{digits}f})" for _, r in failing.iterrows())
    return [f"gate failed: {what} by more than {fail_above:g}% with confidence: {names}"]
