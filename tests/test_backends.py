"""Every installed backend against the book's mathematics and against the
per-sample reference, from the same parameters and the same shuffle order; and
the registry's plug-ins ($NNDL_BENCH_PLUGINS), refused in one line when malformed."""

from __future__ import annotations

import numpy as np
import pytest
from harness_runs import TINY

import backends
from backends.base import Params, feedforward, init_params
from harness.__main__ import main

ALL = backends.available()
# float32 rounds to ~6e-8 per operation; after an epoch of 100 SGD steps the
# parameters of two correct float32 implementations agree to about 1e-4.
TOLERANCE = {"float64": 1e-9, "float32": 2e-4}


def _flat(params: Params) -> np.ndarray:
    return np.concatenate([a.ravel() for a in params.weights + params.biases]).astype(np.float64)


def _cost(params: Params, X: np.ndarray, y: np.ndarray) -> float:
    """The mean over samples of the book's quadratic cost 0.5 ||a - y||^2."""
    a = feedforward(params, X)
    target = np.eye(a.shape[1])[y]
    return 0.5 * float(np.sum((a - target) ** 2)) / len(X)


def _unflat(vector: np.ndarray, like: Params) -> Params:
    arrays, start = [], 0
    for a in like.weights + like.biases:
        arrays.append(vector[start : start + a.size].reshape(a.shape))
        start += a.size
    n = len(like.weights)
    return Params(tuple(arrays[:n]), tuple(arrays[n:]))


@pytest.fixture(scope="module")
def tiny():
    rng = np.random.default_rng(7)
    X = rng.random((6, 5))
    y = rng.integers(0, 3, 6)
    return init_params([5, 4, 3], seed=3), X, y


@pytest.mark.parametrize("name", ALL)
def test_gradient_matches_finite_differences(name, tiny):
    """One SGD step over a single mini-batch moves the parameters by exactly
    -eta * gradient, so the step recovers the backend's gradient."""
    params, X, y = tiny
    trainer = backends.create(name, params, "float64")
    eta = 1.0
    trainer.train_epoch(X, y, np.arange(len(X)), batch_size=len(X), eta=eta)
    gradient = (_flat(params) - _flat(trainer.params())) / eta

    theta, h = _flat(params), 1e-6
    numeric = np.empty_like(theta)
    for i in range(theta.size):
        up, down = theta.copy(), theta.copy()
        up[i] += h
        down[i] -= h
        rise = _cost(_unflat(up, params), X, y) - _cost(_unflat(down, params), X, y)
        numeric[i] = rise / (2 * h)
    np.testing.assert_allclose(gradient, numeric, rtol=1e-5, atol=1e-8)


# The conftest's small_problem: sizes, samples, seed of the data, seed of the parameters.
SMALL_PROBLEM = ((784, 30, 10), 1000, 11, 0)


@pytest.fixture(scope="module")
def reference_after_epoch(small_problem):
    params, X, y, order = small_problem
    results = {}
    for dtype in TOLERANCE:
        trainer = backends.create(backends.REFERENCE, params, dtype)
        trainer.train_epoch(X.astype(dtype), y, order, 10, 3.0)
        results[dtype] = trainer.params()
    return results


@pytest.mark.parametrize("dtype", list(TOLERANCE))
@pytest.mark.parametrize("name", ALL)
def test_one_epoch_matches_reference(name, dtype, small_problem, reference_after_epoch):
    """Same parameters, same order, one epoch at batch 10: every backend lands
    where the per-sample reference does."""
    params, X, y, order = small_problem
    trainer = backends.create(name, params, dtype)
    trainer.train_epoch(X.astype(dtype), y, order, 10, 3.0)
    got, want = trainer.params(), reference_after_epoch[dtype]
    for a, b in zip(got.weights + got.biases, want.weights + want.biases):
        assert a.shape == b.shape
        assert a.dtype == np.dtype(dtype)
        scale = np.max(np.abs(b))
        assert np.max(np.abs(a - b)) <= TOLERANCE[dtype] * scale


@pytest.mark.parametrize("name", ALL)
def test_short_last_batch_divides_by_its_true_size(name, small_problem):
    params, X, y, order = small_problem
    order = order[:995]  # 99 batches of 10, then one of 5
    ref = backends.create(backends.REFERENCE, params, "float64")
    ref.train_epoch(X, y, order, 10, 3.0)
    trainer = backends.create(name, params, "float64")
    trainer.train_epoch(X, y, order, 10, 3.0)
    assert np.allclose(_flat(trainer.params()), _flat(ref.params()), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", ALL)
def test_predict_is_the_argmax_of_the_output(name, small_problem):
    params, X, _, _ = small_problem
    trainer = backends.create(name, params, "float64")
    want = np.argmax(feedforward(params, X[:50]), axis=1)
    np.testing.assert_array_equal(np.asarray(trainer.predict(X[:50])), want)


def test_registry_rejects_unknown_names_with_the_valid_ones():
    with pytest.raises(backends.UnknownBackend, match="numpy-gemm"):
        backends.resolve("numpy-gemm,nope")


def test_all_means_every_available_backend():
    assert backends.resolve("all") == backends.available()
    assert backends.REFERENCE in backends.available()


def test_init_params_is_seeded_standard_normal():
    a, b = init_params([784, 30, 10], 5), init_params([784, 30, 10], 5)
    assert all(np.array_equal(x, z) for x, z in zip(a.weights, b.weights))
    assert a.sizes == (784, 30, 10)
    assert a.weights[0].shape == (30, 784) and a.biases[0].shape == (30, 1)
    values = _flat(init_params([784, 100, 10], 1))
    assert abs(values.mean()) < 0.02 and abs(values.std() - 1) < 0.02


def test_epoch_flops_of_the_default_configuration():
    from backends.base import epoch_flops

    # forward 2N + 30 + 10, gradients 2N + 40, delta 2 * 300; update per batch 2N + 80.
    n = 784 * 30 + 30 * 10
    per_sample = 2 * (2 * n + 40) + 600
    assert epoch_flops([784, 30, 10], 50_000, 10) == per_sample * 50_000 + (2 * n + 80) * 5_000


@pytest.fixture(scope="module")
def reference_float32_gap(small_problem):
    return _float32_gap(backends.REFERENCE, small_problem)


def _float32_gap(name: str, setup) -> float:
    """How far one float32 epoch lands from the float64 one, relative to the largest parameter."""
    params, X, y, order = setup
    runs = {}
    for dtype in ("float32", "float64"):
        trainer = backends.create(name, params, dtype)
        trainer.train_epoch(X.astype(dtype), y, order, 10, 3.0)
        runs[dtype] = trainer.params()
        assert all(a.dtype == np.dtype(dtype) for a in runs[dtype].weights + runs[dtype].biases)
    want = _flat(runs["float64"])
    return float(np.max(np.abs(_flat(runs["float32"]) - want)) / np.max(np.abs(want)))


@pytest.mark.parametrize("name", ALL)
def test_float32_trains_in_float32(name, small_problem, reference_float32_gap):
    """Parameters stay float32, and the float32 epoch is about as far from the
    float64 one as the reference's float32 epoch is: float32 rounding compounded
    over 100 steps. A float64 epoch rounded to float32 at the end would be one
    rounding (6e-8) away; a wrong gradient, much further."""
    gap = _float32_gap(name, small_problem)
    assert reference_float32_gap / 10 < gap < reference_float32_gap * 30, gap


def test_a_malformed_plugin_list_is_one_line_and_exit_2(monkeypatch, capsys):
    for value, backend, said in [
            ("nameonly", "all", "'nameonly' is not of the form name=module:Class"),
            ("x=no_such_module:Thing", "x", "no module 'no_such_module' on the path")]:
        monkeypatch.setenv("NNDL_BENCH_PLUGINS", value)
        assert main(["run", "--backend", backend, *TINY]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and said in err and "NNDL_BENCH_PLUGINS" in err
