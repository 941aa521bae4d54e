"""Starting a worker process and turning its messages, or its death, into an outcome."""

from __future__ import annotations

import multiprocessing
import signal
import time
from collections.abc import Callable

from harness.jobs.job import Job
from harness.records import CRASHED, CUT_SHORT, INTERRUPTED, TIMEOUT, BackendOutcome, EpochRecord
from harness.running import worker

POLL_SECONDS = 0.25


class Interrupted(Exception):
    """Ctrl-C during a backend; carries what that backend had finished."""

    def __init__(self, outcome: BackendOutcome):
        super().__init__(outcome.backend)
        self.outcome = outcome


def run_worker(
    job: Job,
    on_epoch: Callable[[EpochRecord], None] = lambda record: None,
    on_warmup: Callable[[float], None] = lambda seconds: None,
    on_poll: Callable[[], None] = lambda: None,
    timeout: float | None = None,
    budget: float | None = None,
) -> BackendOutcome:
    """Run one backend in a fresh process and wait for it to end.

    ``timeout`` is a hard limit: past it the worker is killed and the backend
    recorded as timed out. ``budget`` is a soft one: past it the worker is
    stopped after whatever epochs it finished, which stand, marked as cut short.
    ``on_poll`` is called between messages; a KeyboardInterrupt it raises stops
    the backend as Ctrl-C does.
    """
    ctx = multiprocessing.get_context("spawn")  # a clean interpreter: no state inherited
    receiver, sender = ctx.Pipe(duplex=False)
    process = ctx.Process(target=worker.main, args=(job, sender), name=f"worker-{job.backend}")
    process.start()
    sender.close()
    outcome = BackendOutcome(job.backend)
    started = time.monotonic()
    try:
        while (state := _receive(receiver, outcome, on_epoch, on_warmup)) != _FINISHED:
            on_poll()
            if state == _CLOSED:  # the worker is gone without its last word
                _stop(outcome, CRASHED, _death(process))
                break
            elapsed = time.monotonic() - started
            if timeout is not None and elapsed > timeout:
                _stop(outcome, TIMEOUT, f"no result within --timeout {timeout:g} s")
                break
            if budget is not None and elapsed > budget:
                _stop(outcome, CUT_SHORT, f"stopped after {len(outcome.epochs)} epochs at the "
                                          f"{budget:g} s budget")
                break
    except KeyboardInterrupt:
        outcome.status, outcome.message = INTERRUPTED, "run interrupted (Ctrl-C)"
        raise Interrupted(outcome) from None
    finally:
        if process.is_alive():
            process.kill()
        process.join()
        receiver.close()
    return outcome


_WAITING, _FINISHED, _CLOSED = "waiting", "finished", "closed"


def _receive(receiver, outcome, on_epoch, on_warmup) -> str:
    """Handle one message if one comes soon; say whether the worker is still to be heard."""
    if not receiver.poll(POLL_SECONDS):
        return _WAITING
    try:
        kind, *body = receiver.recv()
    except (EOFError, OSError):
        return _CLOSED
    if kind == "started":
        outcome.threads = body[0]["threads"]
    elif kind == "warmup":
        outcome.warmup_seconds.append(body[0])
        on_warmup(body[0])
    elif kind == "epoch":
        record, outcome.peak_rss_mb = body
        outcome.epochs.append(record)
        on_epoch(record)
    elif kind == "done":
        outcome.compile_seconds = body[0]["compile_seconds"]
        outcome.choices = body[0].get("choices")
        outcome.peak_rss_mb = body[0]["peak_rss_mb"]
        return _FINISHED
    elif kind == "error":
        outcome.status, outcome.message, outcome.traceback = body
        return _FINISHED
    return _WAITING


def _stop(outcome: BackendOutcome, status: str, message: str) -> None:
    if status == CUT_SHORT and not outcome.epochs:
        status = TIMEOUT
    outcome.status, outcome.message = status, message


def _death(process) -> str:
    process.join(1)
    code = process.exitcode
    if code is not None and code < 0:
        name = signal.Signals(-code).name
        hint = " (the out-of-memory killer?)" if name == "SIGKILL" else ""
        return f"worker killed by {name}{hint}"
    return f"worker exited with code {code} before reporting"
