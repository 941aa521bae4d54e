"""The start and end that every child working from a folder shares:
``python -m harness.profiling.<name>_worker FOLDER`` finds the job its parent
pickled into FOLDER, does its work, and leaves the work's result there as
``result.json`` for the parent to read.

Only the work differs from one such child to the next (the profiled process,
the allocation counter, the counted child under valgrind), so a worker module's ``__main__`` is
``child_main(work)``, with ``work`` a function of the folder that returns the
result. The work reads the job itself, with ``read_job``, so that it can do
what must come first (the profiled process waits for py-spy before it
imports anything).
"""

from __future__ import annotations

import json
import os
import pickle
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from harness.jobs.lifeline import die_with_parent

JOB_FILE, RESULT_FILE = "job.pickle", "result.json"
CHECKOUT = Path(__file__).resolve().parents[2]  # the folder that holds harness/ and backends/

Work = Callable[[Path], dict]


def environment(base: dict[str, str] | None = None,
                first: Sequence[Path] = (CHECKOUT,)) -> dict[str, str]:
    """A child's environment: ``base`` (default: this process's) with ``first`` at the
    head of the path, by default this checkout, so that ``-m harness.<...>`` runs the
    code of the checkout that started it, installed or not."""
    env = dict(os.environ if base is None else base)
    env["PYTHONPATH"] = os.pathsep.join([*map(str, first),
                                         *filter(None, [env.get("PYTHONPATH")])])
    return env


def read_job(folder: Path) -> Any:
    """The job the parent pickled into ``folder``."""
    return pickle.loads((folder / JOB_FILE).read_bytes())


def work_in_folder(work: Work, argv: list[str]) -> int:
    """``work(FOLDER)`` for the FOLDER that ``argv`` names, its result written
    as FOLDER/result.json; the exit code. From its first step the process dies
    with its parent, so that a killed harness leaves no child behind."""
    folder = Path(argv[0])
    die_with_parent()
    result = work(folder)
    (folder / RESULT_FILE).write_text(json.dumps(result) + "\n")
    return 0


def child_main(work: Work) -> NoReturn:
    """A worker module's ``__main__``: ``work_in_folder`` on the command line,
    then an exit that skips the interpreter's teardown (a second or more of
    garbage collection with JAX or Numba loaded). The result is written by
    then, the parent waits for the process to end, and the teardown is no part
    of what the child measures. A work that raises ends the process as an
    uncaught exception does: its traceback on stderr, exit code 1, no result."""
    code = work_in_folder(work, sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
