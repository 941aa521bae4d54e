"""rust-fused-parallel: the reference's result, the same bits on any thread
count for a given number of parts, whichever way the team shares the rest of
each mini-batch, and rust-fused's tiles kernel's bits with one part;
test_backends.py checks its gradients, float32 and short batches with every
other backend, test_rust.py its bad inputs."""

from __future__ import annotations

import numpy as np
import pytest

import backends
from backends.base import Params, init_params
from backends.rust_extension import MODULE

pytest.importorskip(MODULE)

from backends import rust_extension, rust_fused_parallel  # noqa: E402 - needs the extension
from backends.rust_fused import RustFused  # noqa: E402
from backends.rust_fused_parallel import RESTS, RustFusedParallel  # noqa: E402

N_SAMPLES = 433  # a short last batch at every batch size below but 1


def _eta(batch_size: int) -> float:
    """The book's 3.0, but 0.5 for single samples: 433 steps of one sample at
    eta 3 amplify the last bit of any sum until correct kernels differ by 1e-4
    (numpy-per-sample and rust-fused included)."""
    return 0.5 if batch_size == 1 else 3.0


def _flat(params: Params) -> np.ndarray:
    return np.concatenate([a.ravel() for a in params.weights + params.biases]).astype(np.float64)


def _problem(sizes, dtype="float64"):
    rng = np.random.default_rng(11)
    X = rng.random((N_SAMPLES, sizes[0])).astype(dtype)
    y = rng.integers(0, sizes[-1], N_SAMPLES)
    return init_params(sizes, seed=5), X, y, rng.permutation(N_SAMPLES)


def _after_epoch(trainer, problem, batch_size):
    _, X, y, order = problem
    trainer.train_epoch(X, y, order, batch_size, _eta(batch_size))
    return _flat(trainer.params())


def _team(params, dtype="float64", threads=1, parts=None, rest=None):
    """A team of ``threads`` on ``parts`` parts, built as the backend builds its
    calibration's copies."""
    trainer = RustFusedParallel(params, dtype, threads=threads, rest=rest)
    if parts is not None:
        trainer.parts = parts
        trainer._rust = trainer._trainer(params.astype(trainer.dtype), threads)
    if rest is not None:  # the way asked is the way taken, at any batch size
        assert {trainer.choices(b)["rest"] for b in (1, 10, 1000)} == {rest}
    return trainer


@pytest.mark.parametrize("sizes", [[784, 30, 10], [784, 16, 12, 10]])
@pytest.mark.parametrize("batch_size", [1, 7, 10, 100, 1000])  # 1000: one short batch of 433
def test_matches_the_reference_and_gives_the_same_bits_on_1_2_and_3_threads(sizes, batch_size):
    problem = _problem(sizes)
    want = _after_epoch(backends.create(backends.REFERENCE, problem[0]), problem, batch_size)
    # by samples, three threads share batch 7's two sweeps (and batch 1's one) unevenly
    results = [_after_epoch(_team(problem[0], threads=n, parts=3, rest=rest), problem, batch_size)
               for n in (1, 2, 3) for rest in RESTS]
    assert np.max(np.abs(results[0] - want)) <= 1e-9 * np.max(np.abs(want))
    for got in results[1:]:
        np.testing.assert_array_equal(got, results[0])
    two = _after_epoch(RustFusedParallel(problem[0], threads=2), problem, batch_size)
    assert np.max(np.abs(two - want)) <= 1e-9 * np.max(np.abs(want))
    # one part is the single-thread tiles kernel's bits
    tiles = RustFused(problem[0], kernel="tiles")
    np.testing.assert_array_equal(_after_epoch(tiles, problem, batch_size),
                                  _after_epoch(RustFusedParallel(problem[0], threads=1), problem,
                                               batch_size))


def test_every_way_keeps_the_same_bits_epoch_after_epoch():
    problem = _problem([784, 30, 10])
    teams = {rest: _team(problem[0], threads=2, rest=rest) for rest in RESTS}
    for batch_size in (100, 10, 100):  # the buffers are made again for each epoch's batch size
        got = {rest: _after_epoch(team, problem, batch_size) for rest, team in teams.items()}
        for rest in RESTS[1:]:
            np.testing.assert_array_equal(got[rest], got["whole"])


@pytest.mark.parametrize("batch_size", [7, 100])
def test_float32_gives_the_same_bits_on_any_thread_count_and_stays_close(batch_size):
    problem = _problem([784, 30, 10], "float32")
    results = [_after_epoch(_team(problem[0], "float32", threads=n, parts=3, rest=rest), problem,
                            batch_size) for n in (1, 2, 3) for rest in RESTS]
    for got in results[1:]:
        np.testing.assert_array_equal(got, results[0])
    params, X, y, order = problem
    ref = backends.create(backends.REFERENCE, params)
    want = _after_epoch(ref, (params, X.astype(np.float64), y, order), batch_size)
    assert np.max(np.abs(results[0] - want)) <= 2e-4 * np.max(np.abs(want))


def test_choices_name_the_team_and_its_split():
    trainer = RustFusedParallel(init_params([784, 31, 10], 0), threads=2)
    chosen = trainer.choices(10)
    assert chosen["threads"] == trainer.threads == chosen["parts"] == 2
    assert chosen["features_per_part"] == [392, 392]  # half of W1's transposed rows each
    assert chosen["tasks"].startswith("a fixed run of parts per thread")
    assert chosen["split"].startswith("first layer by input features")
    assert chosen["threads_from"] == "requested" and chosen["kernel"] == "tiles"
    assert chosen["barrier"].startswith("generation counter")
    # shared by samples from ten sweeps of five per thread, unless asked
    assert [trainer.choices(b)["rest"] for b in (10, 99, 100, 1000)] == [
        "whole", "whole", "by-samples", "by-samples"]
    one = RustFusedParallel(init_params([784, 31, 10], 0), threads=1)
    assert one.choices(1000)["rest"] == "whole"  # nothing to share
    for rest in RESTS:
        asked = RustFusedParallel(init_params([784, 31, 10], 0), threads=2, rest=rest)
        assert {asked.choices(b)["rest"] for b in (10, 1000)} == {rest}
        assert asked.choices(10)["tasks"].startswith(
            "tasks from a counter" if rest == "balanced" else "a fixed run of parts")
        # blocks of samples where a mini-batch's rows outgrow L2, but the balanced way
        blocks = None if rest == "balanced" else 60
        assert [asked.choices(b).get("block_samples") for b in (100, 1000)] == [None, blocks]
    # the split follows the lines of W1's transposed rows, not X's alignment:
    # the same after an epoch on rows 16 bytes past a line
    _, X, y, order = _problem([784, 31, 10])
    raw = np.empty(X.size + 8)
    start = next(s for s in range(8) if (raw.ctypes.data + 8 * s) % 64 == 16)
    shifted = raw[start : start + X.size].reshape(X.shape)
    shifted[...] = X
    trainer.train_epoch(shifted, y, order, 10, 3.0)
    assert trainer.choices(10)["features_per_part"] == [392, 392]
    info = backends.get("rust-fused")  # the same instruction set as the single-thread kernel
    assert chosen["isa"] == info(init_params([4, 3, 2], 0)).choices(10)["isa"]


def test_threads_are_capped_by_the_cache_lines_of_w1_and_zero_is_refused():
    # one lane: W1's transposed rows are 3 float64, 24 bytes, so 8 of them make
    # whole lines and 20 inputs two parts at most, and two threads
    trainer = RustFusedParallel(init_params([20, 3, 10], 0), threads=8, isa="x86-64")
    assert (trainer.threads, trainer.parts) == (2, 2)
    assert RustFusedParallel(init_params([784, 3, 10], 0), threads=8, isa="x86-64").threads == 8
    with pytest.raises(ValueError, match="threads must be at least 1"):
        RustFusedParallel(init_params([784, 3, 10], 0), threads=0)
    with pytest.raises(ValueError, match="rest must be one of .* or None; got 'halves'"):
        RustFusedParallel(init_params([784, 3, 10], 0), threads=2, rest="halves")
    with pytest.raises(ValueError, match="unknown rest \"halves\""):  # the extension's own check
        p = init_params([784, 3, 10], 0)
        rust_extension.extension().Trainer("fused-parallel", "float64", list(p.weights),
                                           list(p.biases), threads=2, rest="halves")


def test_default_threads_come_from_the_machine_and_a_calibration_picks_the_count(monkeypatch):
    monkeypatch.setattr(rust_fused_parallel, "machine_threads", lambda: 2)
    monkeypatch.setattr(rust_fused_parallel, "RECALIBRATE_ABOVE", float("inf"))  # keep it
    problem = _problem([784, 30, 10])
    trainer = RustFusedParallel(problem[0])
    assert trainer.team_threads == 2 and trainer.choices(10)["threads_from"] == "machine"
    got = _after_epoch(trainer, problem, 10)
    chosen = trainer.choices(10)
    seconds = chosen["calibration_seconds"]
    assert set(seconds) == {1, 2} and all(s > 0 for s in seconds.values())
    assert chosen["threads"] == trainer.threads == min(seconds, key=seconds.get)
    assert chosen["threads_from"] == "calibration" and chosen["threads_available"] == 2
    assert chosen["parts"] == 2  # the machine's threads, whichever count won
    # The probes trained copies: the epoch is the reference's.
    want = _after_epoch(backends.create(backends.REFERENCE, problem[0]), problem, 10)
    assert np.max(np.abs(got - want)) <= 1e-9 * np.max(np.abs(want))


def test_a_run_far_slower_than_foretold_has_the_threads_tried_on_the_next_batches(monkeypatch):
    monkeypatch.setattr(rust_fused_parallel, "machine_threads", lambda: 2)
    monkeypatch.setattr(rust_extension, "PROBE_SAMPLES", 10)
    monkeypatch.setattr(rust_extension, "PROBE_BATCHES", 1)  # trials of 10 + 10 samples
    problem = _problem([784, 30, 10])
    trainer = RustFusedParallel(problem[0])
    fixed = _team(problem[0], threads=1, parts=trainer.parts)
    timed = []
    probe = trainer._time_threads
    monkeypatch.setattr(trainer, "_time_threads", lambda *a: timed.append(a[3]) or probe(*a))
    # as fast as foretold: the calibration is kept, nothing is tried
    monkeypatch.setattr(rust_fused_parallel, "RECALIBRATE_ABOVE", float("inf"))
    for _ in range(2):
        np.testing.assert_array_equal(_after_epoch(trainer, problem, 10),
                                      _after_epoch(fixed, problem, 10))
    trials = trainer.trials.get(10, 0)  # an epoch opens with one where one thread won
    assert timed == [10] and trainer.choices(10)["slow_runs"] == 0 and trials <= 1
    # every run "too slow": five runs of 80 samples (the last of 53), each
    # followed by a trial of 20 while what is left holds 100: three, and one
    # more where the epoch opened on one thread
    monkeypatch.setattr(rust_fused_parallel, "RECALIBRATE_ABOVE", 0.0)
    before = trainer.trials.get(10, 0)
    np.testing.assert_array_equal(_after_epoch(trainer, problem, 10),
                                  _after_epoch(fixed, problem, 10))
    chosen = trainer.choices(10)
    assert chosen["slow_runs"] == 5 and chosen["team_trials"] - before in (3, 4)
    assert timed == [10]  # the trials train the epoch itself: no copies are timed


@pytest.mark.parametrize("team_is_faster", [True, False])
def test_an_epoch_on_one_thread_tries_the_team_first_and_keeps_the_same_bits(monkeypatch,
                                                                            team_is_faster):
    monkeypatch.setattr(rust_fused_parallel, "machine_threads", lambda: 2)
    monkeypatch.setattr(rust_fused_parallel, "RECALIBRATE_ABOVE", float("inf"))
    monkeypatch.setattr(rust_extension, "PROBE_SAMPLES", 20)  # 433 samples hold ten trials
    problem = _problem([784, 30, 10])
    trainer = RustFusedParallel(problem[0])
    # the calibration found one thread faster, as with a neighbour on the other core
    monkeypatch.setattr(trainer, "_time_threads", lambda *a: {1: 1e-3, 2: 1.0})
    fixed = _team(problem[0], threads=1, parts=trainer.parts)
    trial = trainer._trial_seconds

    def neighbour(stays):  # the trial trains for real; its timings say what the neighbour does
        team, alone = (1.0, 1e-3) if stays else (1e-3, 1.0)
        monkeypatch.setattr(trainer, "_trial_seconds", lambda *a: trial(*a) and {2: team, 1: alone})

    neighbour(stays=True)
    for _ in range(2):
        got, want = _after_epoch(trainer, problem, 10), _after_epoch(fixed, problem, 10)
        np.testing.assert_array_equal(got, want)
    assert trainer.trials == {10: 1} and trainer.threads == 1  # calibrated, then tried
    neighbour(stays=not team_is_faster)
    np.testing.assert_array_equal(_after_epoch(trainer, problem, 10),
                                  _after_epoch(fixed, problem, 10))
    chosen = trainer.choices(10)
    assert chosen["team_trials"] == 2
    assert chosen["team_trials_kept"] == int(team_is_faster)
    assert trainer.threads == (2 if team_is_faster else 1) == chosen["threads"]
    if team_is_faster:  # the team stays, and the next epoch tries nothing
        _after_epoch(trainer, problem, 10)
        assert trainer.trials == {10: 2} and trainer.threads == 2


def test_where_the_team_shares_by_samples_a_trial_times_the_balanced_way_too(monkeypatch):
    monkeypatch.setattr(rust_fused_parallel, "machine_threads", lambda: 2)
    monkeypatch.setattr(rust_extension, "PROBE_SAMPLES", 10)
    monkeypatch.setattr(rust_extension, "PROBE_BATCHES", 1)  # trials of a batch of 100 a way
    monkeypatch.setattr(rust_fused_parallel, "TRIAL_AT_MOST", 3)  # 433 samples hold one
    problem = _problem([784, 30, 10])
    trainer = RustFusedParallel(problem[0])
    monkeypatch.setattr(trainer, "_time_threads", lambda *a: {1: 1.0, 2: 1e-3})  # the team
    fixed = _team(problem[0], threads=2, parts=trainer.parts)
    trial = trainer._trial_seconds
    tried = []

    def fastest(way):  # the trial trains for real; its timings say which way won
        def timed(*a):
            seconds = trial(*a)
            tried.append(sorted(map(str, seconds)))
            return {w: 1e-3 if w == way else 1.0 for w in seconds}
        monkeypatch.setattr(trainer, "_trial_seconds", timed)

    # a neighbour slows every run; the balanced way wins its trials
    monkeypatch.setattr(rust_fused_parallel, "RECALIBRATE_ABOVE", 0.0)
    fastest(rust_fused_parallel.BALANCED)
    np.testing.assert_array_equal(_after_epoch(trainer, problem, 100),
                                  _after_epoch(fixed, problem, 100))
    chosen = trainer.choices(100)
    assert tried and all(t == ["1", "2", "balanced"] for t in tried)
    assert chosen["rest"] == "balanced" and trainer.threads == 2
    assert chosen["balanced_trials_kept"] == chosen["team_trials"] == len(tried) >= 1
    assert set(chosen["calibration_seconds"]) == {1, 2, rust_fused_parallel.BALANCED}
    # calm again: the next epoch opens with a trial, which the team's own way wins
    monkeypatch.setattr(rust_fused_parallel, "RECALIBRATE_ABOVE", float("inf"))
    fastest(2)
    trials = trainer.trials[100]
    np.testing.assert_array_equal(_after_epoch(trainer, problem, 100),
                                  _after_epoch(fixed, problem, 100))
    assert trainer.trials[100] == trials + 1
    assert trainer.choices(100)["rest"] == "by-samples" and trainer.way == 2
    # at batch 10 the team does the rest whole, and the balanced way is not tried
    tried.clear()
    monkeypatch.setattr(rust_fused_parallel, "RECALIBRATE_ABOVE", 0.0)
    _after_epoch(trainer, problem, 10)
    assert tried and all(t == ["1", "2"] for t in tried)
    # nor where a way with the rest was asked
    asked = RustFusedParallel(problem[0], rest="by-samples")
    assert not asked._tries_balanced(100) and trainer._tries_balanced(100)


def test_an_epoch_too_short_for_a_trial_stays_on_its_threads(monkeypatch):
    monkeypatch.setattr(rust_fused_parallel, "machine_threads", lambda: 2)
    problem = _problem([784, 30, 10])  # 433 samples: under ten probes of 1,000
    trainer = RustFusedParallel(problem[0])
    monkeypatch.setattr(trainer, "_time_threads", lambda *a: {1: 1e-3, 2: 1.0})
    monkeypatch.setattr(rust_fused_parallel, "RECALIBRATE_ABOVE", float("inf"))
    for _ in range(3):
        _after_epoch(trainer, problem, 10)
    assert trainer.trials == {} and trainer.threads == 1


def test_a_single_core_runs_one_thread_without_calibrating(monkeypatch):
    monkeypatch.setattr(rust_fused_parallel, "machine_threads", lambda: 1)
    problem = _problem([784, 30, 10])
    trainer = RustFusedParallel(problem[0])
    _after_epoch(trainer, problem, 10)
    assert trainer.threads == 1 and trainer.calibration == {}
