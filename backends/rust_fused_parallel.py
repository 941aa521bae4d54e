"""The fused kernel on a team of threads: rust-fused's tiles, the first layer split by inputs.

The team runs the first layer as rust-fused's tiles kernel does, on W1 held
transposed for the epoch (a row per input feature). Thread t owns a run of
those rows (but in the balanced way, below), reads only those features of each
row of X, and computes their share of the first layer's sums and their
updates. The team is started once
per epoch and meets at a barrier (a spinning, then yielding, generation
counter) once the partial sums are written. The rest of each mini-batch,
under 2% of the arithmetic at [784, 30, 10], each thread does on its own copy
of the deeper weights and b1, by default one of two ways (``rest``): "whole", every
thread all of it, so that one barrier per mini-batch is enough (the partial
sums are double-buffered); or "by-samples", each thread the deeper layers and
backprop of its own samples, then a second barrier, and every thread the
updates of its copies from the whole mini-batch. The second barrier costs the
same at any batch size, and the work it shares grows with the batch: by
default the team shares the rest from ten sweeps of five samples per thread
(batch 100 on two threads), and choices() says which way it took. A third
way, "balanced", takes the first layer's work too from a shared counter, in
tasks of samples and of W1's transposed rows, so that a core slowed by a
neighbour does less of it; on calm cores it costs a few percent
(docs/kernels.md), so it is taken where asked, or where a trial (below) finds
it the fastest.

The features fall into ``parts`` runs of whole cache lines of W1's transposed
rows whose sums are added in a fixed order, each thread taking a run of parts:
the result depends on the parts, never on the thread count, and with one part
it is rust-fused's tiles kernel's, bit for bit (``rust/src/kernels/team.rs``).

Threads: ``threads`` if given, else every core this process may run on; parts:
as many as the threads on offer (capped by the cache lines of W1's transposed rows).
Where two threads or more are on offer, the first epoch of each batch size
times a few of its own mini-batches on one thread and on all of them, on
copies of the parameters with the same parts, and keeps the faster: the
answer changes no result, only the time. The epoch then trains in
``SEGMENTS`` runs of whole mini-batches, and the answer is revisited inside
it: a run far slower than foretold (a neighbour arrived on a core) has the
next mini-batches tried on the team and on one thread, and so does the start
of every epoch on fewer threads than the team or on the balanced way (the
neighbour may have left); the faster of the two trains on. Where the team
shares the rest by samples and no way was asked, the trial times the team
the balanced way too, and the fastest of the three trains on. A trial trains
the epoch's own mini-batches on the trainer's own parameters, so it too
changes no result.
``choices(batch_size)`` reports the instruction set, the lanes, the threads,
the parts and the columns each thread owns, the barrier, the way with the
rest (``rest``), the calibration's timings, and the slow runs and trials of
the epochs so far.
"""

from __future__ import annotations

import os
import time

from backends.base import Params
from backends.rust_extension import RustTrainer, extension, probe_samples, time_in_turns

# A run of an epoch this many times slower than foretold has the threads
# tried again. On an idle machine the epochs took up to 1.5x the calibration's
# pace (its 1,000 samples stay in L3, an epoch's 50,000 do not); with a
# neighbour on one core, a team of two took 2-5x.
RECALIBRATE_ABOVE = 2.0
# Runs per epoch: a neighbour that arrives costs at most one run at the slow
# pace. Each run starts the team again, some 0.1 ms.
SEGMENTS = 5
# A trial takes a probe's worth of samples (see ``probe_samples``) per way it
# times, two or three, and is made only where what is left of the epoch holds
# this many probes, so that the slower ways train at most a fifth of it.
TRIAL_AT_MOST = 10
# The ways the team does the rest of each mini-batch (see the module).
RESTS = ("whole", "by-samples", "balanced")
# A way to train besides a thread count, in the timings of the calibration and
# the trials: the whole team, the rest balanced.
BALANCED = "balanced"


def machine_threads() -> int:
    """The cores this process may run on (its affinity), else the CPU count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class RustFusedParallel(RustTrainer):
    name = "rust-fused-parallel"
    strategy = "fused-parallel"

    def __init__(self, params: Params, dtype: str = "float64", threads: int | None = None,
                 isa: str | None = None, rest: str | None = None):
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be at least 1; got {threads}")
        if rest is not None and rest not in RESTS:
            raise ValueError(f"rest must be one of {RESTS} or None; got {rest!r}")
        self._requested, self._isa, self._rest = threads, isa, rest
        offered = machine_threads() if threads is None else threads
        super().__init__(params, dtype, offered, isa=isa, parts=offered, rest=rest)
        self.parts = self._rust.choices(1)["parts"]  # capped by the cache lines in a row of X
        self.team_threads = self.threads  # what the machine offers, capped by the parts
        # seconds by way: a thread count, or BALANCED (the team the balanced way)
        self.calibration: dict[int, dict[int | str, float]] = {}
        self.slow_runs: dict[int, int] = {}  # runs far slower than foretold
        self.trials: dict[int, int] = {}  # trials of the team against one thread
        self.kept: dict[int, int] = {}  # trials the team won, either way
        self.balanced_kept: dict[int, int] = {}  # of those, won the balanced way
        self.way: int | str = self.threads  # a thread count, or BALANCED
        self._rest_now = rest  # the way with the rest the trainer was made with
        self._team_rest: dict[int, str] = {}  # the team's own way, by batch size

    def train_epoch(self, X, y, order, batch_size, eta):
        # A bad batch size is left to the extension, which says what is wrong with it.
        if not (self._requested is None and self.team_threads > 1 and int(batch_size) >= 1):
            super().train_epoch(X, y, order, batch_size, eta)
            return
        batch_size = int(batch_size)
        known = batch_size in self.calibration
        self._use(self._choose_way(X, y, order, batch_size, eta))
        rest = order
        if known and self.way != self.team_threads:
            rest = self._try_the_team(X, y, rest, batch_size, eta)
        run = max(batch_size, len(order) // SEGMENTS // batch_size * batch_size)
        while len(rest):
            samples, rest = rest[:run], rest[run:]
            start = time.perf_counter()
            super().train_epoch(X, y, samples, batch_size, eta)
            if self._too_slow(batch_size, len(samples), time.perf_counter() - start):
                self.slow_runs[batch_size] = self.slow_runs.get(batch_size, 0) + 1
                rest = self._try_the_team(X, y, rest, batch_size, eta)

    def _too_slow(self, batch_size: int, samples: int, seconds: float) -> bool:
        """Whether a run took far longer than the calibration foretold: a
        neighbour that starts after it (a team of two on a core it shares
        runs at that core's pace, slower than one thread alone), or one that
        left (one thread then runs as foretold, and the epoch's trial meets it)."""
        probe = self.calibration[batch_size][self.way]
        return seconds > RECALIBRATE_ABOVE * probe * samples / probe_samples(batch_size)

    def _try_the_team(self, X, y, order, batch_size: int, eta: float):
        """Trains the first mini-batches of ``order`` (a probe's worth per way)
        on the whole team, then the balanced way where it is tried, then on
        one thread, and keeps the fastest for what follows; returns the rest
        of the order."""
        trial = probe_samples(batch_size)
        if len(order) < TRIAL_AT_MOST * trial:
            return order
        ways = [self.team_threads, 1]
        if self._tries_balanced(batch_size):
            ways.insert(1, BALANCED)
        seconds = self._trial_seconds(X, y, order[:len(ways) * trial], batch_size, eta, ways)
        self.trials[batch_size] = self.trials.get(batch_size, 0) + 1
        self.calibration[batch_size] = seconds
        fastest = min(seconds, key=seconds.get)
        if fastest in (self.team_threads, BALANCED):
            self.kept[batch_size] = self.kept.get(batch_size, 0) + 1
        if fastest == BALANCED:
            self.balanced_kept[batch_size] = self.balanced_kept.get(batch_size, 0) + 1
        self._use(self._choose_way(X, y, order, batch_size, eta))
        return order[len(ways) * trial:]

    def _tries_balanced(self, batch_size: int) -> bool:
        """Whether trials time the balanced way too: where no way was asked
        and the team shares the rest by samples, which meets at least twice a
        mini-batch, as the balanced way does (34 times at batch 1000, cut into
        blocks, where the balanced way is not cut)."""
        if self._rest is not None:
            return False
        if batch_size not in self._team_rest:  # the extension's rule, asked of a team once
            team = self._trainer(self.params(), self.team_threads, None)
            self._team_rest[batch_size] = team.choices(batch_size)["rest"]
        return self._team_rest[batch_size] == "by-samples"

    def _trial_seconds(self, X, y, order, batch_size: int, eta: float, ways: list) -> dict:
        """Seconds of equal shares of ``order`` (whole probes, so whole
        mini-batches), one per way in turn. All start as cold as each other,
        and the parameters pass from one trainer to the next whole through the
        epoch's own mini-batches, so the result is the same bits."""
        share = len(order) // len(ways)
        seconds = {}
        for i, way in enumerate(ways):
            samples = order[i * share:(i + 1) * share]
            self._use(way)
            start = time.perf_counter()
            super().train_epoch(X, y, samples, batch_size, eta)
            seconds[way] = time.perf_counter() - start
        return seconds

    def _choose_way(self, X, y, order, batch_size: int, eta: float) -> int | str:
        if batch_size not in self.calibration:
            self.calibration[batch_size] = self._time_threads(X, y, order, batch_size, eta)
        seconds = self.calibration[batch_size]
        return min(seconds, key=seconds.get)

    def _use(self, way: int | str) -> None:
        """Trains on ``way`` from here: a thread count, or the whole team the
        balanced way; the parameters carry over whole."""
        threads = self.team_threads if way == BALANCED else way
        rest = BALANCED if way == BALANCED else self._rest
        if threads != self.threads or rest != self._rest_now:
            self._rest_now = rest
            self._rust = self._trainer(self.params(), threads, rest)
            self.threads = self._rust.threads
        self.way = way

    def _trainer(self, params: Params, threads: int, rest: str | None = None):
        return extension().Trainer(self.strategy, self.dtype.name, list(params.weights),
                                   list(params.biases), threads=threads, isa=self._isa,
                                   parts=self.parts, rest=rest if rest is not None else self._rest)

    def _time_threads(self, X, y, order, batch_size: int, eta: float) -> dict[int, float]:
        """Best seconds of a few repeats of this epoch's first mini-batches on one
        thread and on the whole team, trained on copies: the trainer's own
        parameters are untouched. The two take turns, so a burst of load from
        elsewhere falls on both."""
        p = self.params()
        copies = {n: self._trainer(p, n) for n in (1, self.team_threads)}
        return time_in_turns(copies, X, y, order, batch_size, eta)

    def choices(self, batch_size: int) -> dict:
        chosen = dict(self._rust.choices(int(batch_size)))
        chosen["threads_available"] = self.team_threads
        if self._requested is not None:
            chosen["threads_from"] = "requested"
        elif int(batch_size) in self.calibration:
            chosen["threads_from"] = "calibration"
            chosen["calibration_seconds"] = self.calibration[int(batch_size)]
            chosen["slow_runs"] = self.slow_runs.get(int(batch_size), 0)
            chosen["team_trials"] = self.trials.get(int(batch_size), 0)
            chosen["team_trials_kept"] = self.kept.get(int(batch_size), 0)
            chosen["balanced_trials_kept"] = self.balanced_kept.get(int(batch_size), 0)
        else:
            chosen["threads_from"] = "machine"
        return chosen
