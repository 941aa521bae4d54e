"""The counted child: ``python -m harness.profiling.instructions_worker FOLDER``, run under
valgrind's callgrind by ``harness.profiling.instructions``.

It loads the data and builds the trainer exactly as the timed worker does
(``harness.jobs.job.prepare``, from the pickled ``harness.jobs.job.Job`` in
``FOLDER/job.pickle``), trains the warm-up epochs, at least one, so that JIT
compilation and first-call set-up stay out of the counts, then trains the
counted epochs with a call of ``MARKER`` before each and after the last. Callgrind, started with
``--dump-before=MARKER``, writes its counts so far at every such call, so every
counted epoch has a profile part of its own: start-up and warm-up fall into the
first part, the interpreter's teardown into the last, and neither is counted.

At the end ``result.json`` says how many epochs were counted, on how many
threads, and what the trainer chose (a Rust kernel's instruction set) under valgrind.
"""

from __future__ import annotations

import os
from pathlib import Path

from harness.jobs.child import child_main, read_job

# The C function behind ``os.getpgrp()``, which nothing on the training path
# calls: its calls are the markers between epochs. A function of the
# interpreter's own, called from Python as any builtin is: callgrind does not see
# a libc function called through ctypes (libffi's call reads to it as a jump), so
# it could not mark. The parent checks that exactly the expected number of parts
# came out, so a stray call would be an error, not a wrong count.
MARKER = "os_getpgrp"


def run(job, epochs: int, mark) -> dict:
    """Set-up and warm-up, then ``epochs`` epochs, each preceded by ``mark()``, and
    ``mark()`` once more after the last."""
    from backends.base import trainer_choices
    from harness.jobs.job import epoch_orders, prepare

    cfg = job.config
    setup = prepare(job)
    fix = getattr(setup.trainer, "fix_for_counting", None)
    if callable(fix):
        fix()  # a choice made by timing would make the count depend on the load
    orders = epoch_orders(cfg.seed, len(setup.X))
    for _ in range(max(cfg.warmup_epochs, 1)):
        setup.trainer.train_epoch(setup.X, setup.y, next(orders), cfg.batch_size, cfg.eta)
    # Drawn before the first marker: a shuffle is no part of the trainer's work.
    counted = [next(orders) for _ in range(epochs)]
    for order in counted:
        mark()
        setup.trainer.train_epoch(setup.X, setup.y, order, cfg.batch_size, cfg.eta)
    mark()
    return {"epochs": epochs, "threads": setup.threads,
            "finite": bool(setup.trainer.params().is_finite()),
            "choices": trainer_choices(setup.trainer, cfg.batch_size)}


def work(folder: Path) -> dict:
    job, epochs = read_job(folder)
    return run(job, epochs, os.getpgrp)


if __name__ == "__main__":
    # child_main's exit skips the interpreter's teardown, which is no part of the
    # count and slow under valgrind.
    child_main(work)
