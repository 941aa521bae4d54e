"""``python -m harness worker ADDRESS``: a benchmark worker for sweeps on a Dask
cluster (``python -m harness sweep --cluster ADDRESS``)."""

from __future__ import annotations

import argparse
import sys

from harness.config import UsageError

HELP = "serve a Dask scheduler as a benchmark worker for sweeps with --cluster"
DESCRIPTION = (
    "Start a benchmark worker on this machine for the scheduler at ADDRESS "
    "(tcp://HOST:PORT, or file:PATH, a scheduler file): one cell at a time (the worker "
    "resource bench=1, which every cell asks for, and one thread), not daemonic (a cell "
    "starts the harness's worker processes), no memory limit, and Dask's profiler, GIL "
    "monitor and frequent event-loop ticks off. It runs until the scheduler closes, or "
    "SIGINT/SIGTERM. Exit 2: a bad address, or no scheduler there within --timeout.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("address", metavar="ADDRESS",
                   help="the scheduler: tcp://HOST:PORT or file:PATH (a scheduler file)")
    p.add_argument("--cores", metavar="LIST",
                   help="pin the worker, and every process of its cells, to these cores, "
                        "e.g. 0-3 or 0,2; for several workers on one machine, one set each "
                        "(default: every core this process may run on)")
    p.add_argument("--name", help="the worker's name at the scheduler (default: its address)")
    p.add_argument("--timeout", type=float, default=30.0,
                   help="seconds to reach the scheduler before giving up (default: 30)")


def run(args: argparse.Namespace, argv: list[str]) -> int:
    from harness.running import cluster, provenance

    address = cluster.parse_address(args.address, option="ADDRESS")
    if address.kind == "local":
        raise UsageError(f"ADDRESS {args.address!r}: a worker serves a scheduler, "
                         "tcp://HOST:PORT or file:PATH")
    cores = None
    if args.cores is not None:
        try:
            cores = provenance.parse_cores(args.cores)
        except ValueError:
            raise UsageError(f"--cores {args.cores!r}: expected cores as a comma list of "
                             "numbers and ranges, e.g. 0-3 or 0,2") from None
    if not args.timeout > 0:
        raise UsageError(f"--timeout must be positive seconds, got {args.timeout}")
    cluster.import_distributed()
    from harness.running.dask_worker import serve

    scheduler = cluster.scheduler_address(address)
    try:
        serve(scheduler, name=args.name, cores=cores, timeout=args.timeout)
    except (OSError, TimeoutError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"error: no scheduler answered at {scheduler} within {args.timeout:g} s "
              f"({reason})", file=sys.stderr)
        return 2
    return 0
