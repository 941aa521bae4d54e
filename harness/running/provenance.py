"""Where a cell ran: the facts every row of a sweep records, the machine
fingerprint built from them, and the check that refuses a worker whose harness
is not the client's.

The fingerprint is the machine key (``harness.running.machine.machine_key``: the
CPU, its count of CPUs and NumPy's BLAS kernels, the one name of a kind of
machine, which also keeps baselines apart) with what a sweep's cell also depends
on: the BLAS of every library, the package versions, the commit and the number
of pinned cores. It leaves out the hostname (two machines of one type share it)
and the times, and counts the pinned cores rather than naming them: a worker
pinned to cores 0-3 and one pinned to 4-7 of the same machine are of one type,
so a cell lost on one may be retried on the other, and their figures are
compared in one winner map.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys

from harness.running import machine

CORES_VARIABLE = "NNDL_BENCH_CORES"  # a worker's core set, e.g. "0-3"; set by its pinning
# The columns of sweep.csv that say where a row was measured, in this order.
COLUMNS = ["hostname", "cpu_model", "cpu_count", "pinned_cores", "blas", "packages",
           "commit", "fingerprint"]
_FINGERPRINTED = ("machine_key", "blas", "packages", "commit")


def format_cores(cores) -> str:
    """{0, 1, 2, 5} -> '0-2,5'."""
    ordered, runs = sorted(cores), []
    for core in ordered:
        if runs and core == runs[-1][1] + 1:
            runs[-1][1] = core
        else:
            runs.append([core, core])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def parse_cores(text: str) -> set[int]:
    """'0-2,5' -> {0, 1, 2, 5}; ValueError for anything else."""
    cores = set()
    for part in text.split(","):
        first, _, last = part.strip().partition("-")
        low, high = int(first), int(last or first)
        if low < 0 or high < low:
            raise ValueError(text)
        cores.update(range(low, high + 1))
    if not cores:
        raise ValueError(text)
    return cores


def pin_thread() -> None:
    """Hold the calling thread to the worker's core set ($NNDL_BENCH_CORES), where one
    is set: every process the thread starts (a cell's workers) inherits it."""
    text = os.environ.get(CORES_VARIABLE)
    if text and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, parse_cores(text))


def _cores() -> set[int]:
    if hasattr(os, "sched_getaffinity"):
        return os.sched_getaffinity(0)
    return set(range(os.cpu_count() or 1))


def blas_label() -> str:
    """NumPy's BLAS in one line (library, version, the kernels chosen for this CPU),
    and the Rust extension's where it is built: "same" where the two are one file."""
    blas = [p for p in machine.blas_info() if p["user_api"] == "blas"]
    ours = [p for p in blas if "numpy" in p["used_by"]] or blas
    labels = sorted({_pool_label(p) for p in ours})
    rust = [p for p in blas if "nndl_bench_rust" in p["used_by"]]
    if rust:
        labels += ["rust: same" if p in ours else f"rust: {_pool_label(p)}" for p in rust]
    elif corename := (machine.rust_info() or {}).get("openblas_corename"):
        labels.append(f"rust: openblas {corename}")  # a BLAS threadpoolctl does not know
    return "; ".join(labels) or "unknown"


def _pool_label(pool: dict) -> str:
    return f"{pool['internal_api']} {pool['version']} {pool['architecture']}"


def packages_label(versions: dict[str, str | None]) -> str:
    """{'numpy': '2.4.6', 'torch': None} -> 'numpy=2.4.6 torch=-'."""
    return " ".join(f"{name}={version or '-'}" for name, version in sorted(versions.items()))


def describe() -> dict:
    """This process's machine as sweep.csv records it, fingerprint included; the
    versions also as a mapping (``versions``), for :func:`mismatch`, and the machine
    key the fingerprint starts from (``machine_key``)."""
    versions = {**machine.package_versions(), "python": sys.version.split()[0]}
    facts = {
        "hostname": platform.node(),
        "cpu_model": machine.cpu_model(),
        "cpu_count": os.cpu_count(),
        "pinned_cores": format_cores(_cores()),
        "blas": blas_label(),
        "packages": packages_label(versions),
        "commit": machine.git_commit(),
    }
    facts["machine_key"] = machine.machine_key()
    facts["fingerprint"] = fingerprint(facts)
    facts["versions"] = versions
    return facts


def fingerprint(facts: dict) -> str:
    """Twelve hex digits that two workers share exactly when they are the same
    machine type running the same harness: the machine key (the CPU and NumPy's
    BLAS kernels), the number of pinned cores, every library's BLAS, the package
    versions and the commit; not the host, nor the times."""
    kept = {key: facts.get(key) for key in _FINGERPRINTED}
    kept["cores"] = len(parse_cores(facts["pinned_cores"])) if facts.get("pinned_cores") else None
    digest = hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()
    return digest[:12]


def identity(facts: dict) -> dict:
    """What a worker must share with the client to take its cells."""
    return {"commit": facts.get("commit"), "versions": facts.get("versions", {})}


def mismatch(expected: dict, facts: dict) -> str | None:
    """Why a worker with ``facts`` may not run the cells of a client whose
    :func:`identity` is ``expected``, in one line; None when it may."""
    if facts.get("commit") != expected["commit"]:
        return (f"its commit {facts.get('commit') or 'unknown'} is not the client's "
                f"{expected['commit'] or 'unknown'}")
    theirs, ours = facts.get("versions", {}), expected["versions"]
    differing = [f"{name} {theirs.get(name) or 'absent'} (client: {ours.get(name) or 'absent'})"
                 for name in sorted(set(theirs) | set(ours)) if theirs.get(name) != ours.get(name)]
    if differing:
        return "its package versions are not the client's: " + ", ".join(differing)
    return None
