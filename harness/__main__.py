"""Command line: ``python -m harness COMMAND ...``. Dispatch only: each command
declares its options and does its work in ``harness/commands/<name>.py``."""

from __future__ import annotations

import argparse
import signal
import sys

from harness.commands import (
    compare,
    compare_commits,
    findings,
    history,
    profile,
    report,
    run,
    sweep,
    worker,
)
from harness.commands.options import EXIT_USAGE, Parser

COMMANDS = {"run": run, "profile": profile, "compare": compare,
            "compare-commits": compare_commits, "history": history, "sweep": sweep,
            "report": report, "findings": findings, "worker": worker}


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m harness",
                    description="Benchmark implementations of the chapter-1 network of "
                                "Nielsen's Neural Networks and Deep Learning.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for name, command in COMMANDS.items():
        p = commands.add_parser(name, help=command.HELP, description=command.DESCRIPTION)
        command.add_arguments(p)
        p.set_defaults(handler=command.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    import backends
    from harness.config import UsageError
    from harness.data.catalogue import DataError

    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    # A file past RLIMIT_FSIZE then fails with EFBIG, reported like a full disk,
    # instead of killing the process half-way through a write.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        return args.handler(args, ["python -m harness", *argv])
    except (UsageError, DataError, backends.UnknownBackend, backends.BackendUnavailable,
            backends.PluginSpecError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
