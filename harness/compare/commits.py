"""Two commits measured in turn: each checked out in a git worktree of its own,
timed A B A B so that the machine's load falls on both alike, and counted.

A worktree needs no install of the Python code: a run started in it, with it
first on ``PYTHONPATH``, imports its own ``harness`` and ``backends``. The Rust
extension is the one thing built: only when ``rust/`` differs between the two
commits is each commit's extension built with maturin into a folder of its own,
which then comes first on that commit's ``PYTHONPATH``; otherwise both use the
installed one, as their Rust is the same.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.config import UsageError
from harness.jobs import child

RUST_DIR = "rust"


@dataclass(frozen=True)
class Checkout:
    """One commit, checked out, and what a run in it needs first on its path."""

    label: str  # "baseline" or "current"
    commit: str  # the full hash
    folder: Path  # its worktree
    extension: Path | None = None  # the folder its own Rust extension was installed into

    def environment(self, base: dict[str, str] | None = None) -> dict[str, str]:
        return child.environment(base, [p for p in (self.extension, self.folder) if p])


@dataclass
class Measured:
    """Where each commit's runs went: timed runs pooled per commit, counts apart."""

    timed: dict[str, Path] = field(default_factory=dict)
    counted: dict[str, Path] = field(default_factory=dict)


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise UsageError(f"git {' '.join(args)} in {repo}: {done.stderr.strip()}")
    return done.stdout.strip()


def resolve(repo: Path, revision: str) -> str:
    """The full hash of ``revision``; a usage error that names it when git knows none."""
    try:
        return git(repo, "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}")
    except UsageError:
        raise UsageError(f"{revision!r} is no commit of {repo}") from None


def rust_differs(repo: Path, base: str, head: str) -> bool:
    """Whether the Rust extension's sources differ between the two commits."""
    done = subprocess.run(["git", "-C", str(repo), "diff", "--quiet", base, head, "--",
                           RUST_DIR], capture_output=True)
    return done.returncode != 0


def runs_rust(run_args: list[str]) -> bool:
    """Whether the run options name a Rust backend (or every backend): only then is
    each commit's extension worth building."""
    named = [a.split("=", 1)[1] if a.startswith("--backend=") else run_args[i + 1]
             for i, a in enumerate(run_args)
             if a.startswith("--backend=") or (a == "--backend" and i + 1 < len(run_args))]
    if not named:
        return True  # run's default is every backend
    return any(b == "all" or b.startswith("rust") for arg in named for b in arg.split(","))


def check_out(repo: Path, commit: str, label: str, workdir: Path) -> Checkout:
    """A detached worktree of ``commit`` in ``workdir/label``."""
    folder = workdir / label
    git(repo, "worktree", "add", "--detach", "--force", str(folder), commit)
    return Checkout(label, commit, folder)


def remove(repo: Path, checkout: Checkout) -> None:
    subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force",
                    str(checkout.folder)], capture_output=True)


def build_commands(checkout: Checkout, out: Path) -> list[list[str]]:
    """maturin builds the commit's wheel, pip unpacks it into ``out/site``."""
    wheels = out / "wheels"
    # As the Makefile builds it: linked to the OpenBLAS this venv's NumPy bundles, not a
    # copy of its own (--auditwheel skip), so that both share one BLAS.
    return [[sys.executable, "-m", "maturin", "build", "--release", "--compatibility", "linux",
             "--auditwheel", "skip", "--manifest-path",
             str(checkout.folder / RUST_DIR / "Cargo.toml"), "--interpreter", sys.executable,
             "--out", str(wheels)],
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
             str(out / "site"), "--find-links", str(wheels), "--no-index", "nndl-bench-rust"]]


def build_extension(checkout: Checkout, out: Path, log: Callable[[str], None]) -> Checkout:
    """``checkout`` with its own Rust extension, built into ``out``."""
    if shutil.which("cargo") is None:
        raise UsageError("rust/ differs between the commits and cargo is not installed to "
                         "build each one's extension")
    for command in build_commands(checkout, out):
        log(f"{checkout.label}: {' '.join(command[2:4])}")
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise UsageError(f"building the Rust extension of {checkout.commit[:12]} failed: "
                             f"{done.stderr.strip()[-2000:]}")
    return Checkout(checkout.label, checkout.commit, checkout.folder, out / "site")


def run_command(run_args: list[str], results: Path, count_args: list[str] | None) -> list[str]:
    """The run of one checkout; ``count_args`` (``--count-instructions`` and its
    options) for a counted one, None for a timed one."""
    return [sys.executable, "-m", "harness", "run", *run_args, "--no-flamegraphs",
            "--results-dir", str(results), *(count_args or [])]


def measure(checkouts: list[Checkout], run_args: list[str], workdir: Path, rounds: int,
            count_args: list[str] | None, log: Callable[[str], None]) -> Measured:
    """Every commit counted (the two at once: a count does not depend on the load),
    then timed ``rounds`` times in turn, A B A B."""
    measured = Measured()
    if count_args is not None:
        # One timed epoch only: these runs are for their counts, their times are not read.
        started = []
        for c in checkouts:
            measured.counted[c.label] = workdir / "counted" / c.label
            log(f"{c.label} ({c.commit[:12]}): counting instructions")
            started.append(_start(c, run_command([*run_args, "--epochs", "1"],
                                                 measured.counted[c.label], count_args)))
        try:
            for c, process in zip(checkouts, started):
                _finish(c, process)
        finally:  # a failed count stops the other, whose worktree is about to go
            for process in started:
                if process.poll() is None:
                    process.kill()
                    process.communicate()
    for k in range(rounds):
        for c in checkouts:
            measured.timed[c.label] = workdir / "timed" / c.label
            log(f"round {k + 1}/{rounds}: {c.label} ({c.commit[:12]})")
            _finish(c, _start(c, run_command(run_args, measured.timed[c.label], None)))
    return measured


def _start(checkout: Checkout, command: list[str]) -> subprocess.Popen:
    return subprocess.Popen(command, cwd=checkout.folder, env=checkout.environment(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(checkout: Checkout, process: subprocess.Popen) -> None:
    output, _ = process.communicate()
    if process.returncode != 0:
        raise UsageError(f"the run of {checkout.label} ({checkout.commit[:12]}) exited with "
                         f"{process.returncode}: {output.strip()[-2000:]}")


def measure_commits(repo: Path, base: str, head: str, run_args: list[str], workdir: Path,
                    rounds: int = 2, count_args: list[str] | None = None,
                    log: Callable[[str], None] = lambda message: None) -> Measured:
    """Check out ``base`` (the baseline) and ``head`` (the current) in worktrees under
    ``workdir``, build their Rust extensions where rust/ differs and a Rust backend
    runs, count them (with ``count_args``, as ``run --count-instructions ...``) and
    time them in turn; the worktrees are removed at the end, the run folders kept."""
    commits = [resolve(repo, base), resolve(repo, head)]
    checkouts = []
    try:
        for label, commit in zip(("baseline", "current"), commits):
            checkouts.append(check_out(repo, commit, label, workdir / "worktrees"))
        if rust_differs(repo, *commits) and runs_rust(run_args):
            log("rust/ differs between the commits: building each one's extension")
            checkouts = [build_extension(c, workdir / "extension" / c.label, log)
                         for c in checkouts]
        return measure(checkouts, run_args, workdir, rounds, count_args, log)
    finally:
        for c in checkouts:
            remove(repo, c)
