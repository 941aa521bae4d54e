"""What is particular to the Numba backends; test_backends.py checks their
gradients and their epochs against the per-sample reference."""

from __future__ import annotations

import re

import numpy as np
import pytest

numba = pytest.importorskip("numba")

import backends  # noqa: E402
from backends import numba_fused  # noqa: E402
from backends.base import Params, init_params  # noqa: E402
from backends.numba_parallel import NumbaParallel  # noqa: E402


def _flat(params: Params) -> np.ndarray:
    return np.concatenate([a.ravel() for a in params.weights + params.biases]).astype(np.float64)


# The conftest's small_problem: sizes, samples, seed of the data, seed of the parameters.
SMALL_PROBLEM = ((784, 30, 10), 1000, 5, 2)


# Any double-precision arithmetic or conversion to double in LLVM IR.
_DOUBLE_MATH = re.compile(r"= (?:fadd|fsub|fmul|fdiv|fneg|fpext|call)\b[^\n]*\bdouble\b")


@pytest.mark.parametrize(
    "kernel", ["forward_rows", "update_rows", "backprop_delta", "_sigmoid_columns"]
)
def test_float32_kernels_contain_no_double_arithmetic(kernel):
    """A float64 literal in a float32 kernel silently promotes it; the compiled
    IR shows it. The kernel is compiled afresh, since cached code cannot be inspected."""
    source = getattr(numba_fused, kernel).py_func
    fresh = numba.njit(error_model="numpy", fastmath=numba_fused.FASTMATH)(source)
    f32 = np.float32
    W, A, out = np.ones((10, 64), f32), np.ones((10, 64), f32), np.zeros((10, 64), f32)
    rows = np.arange(10)
    if kernel == "forward_rows":
        fresh(W, np.ones(10, f32), A, rows, 0, out, 0, 10)
    elif kernel == "update_rows":
        fresh(W, np.ones(10, f32), out, A, rows, 0, 0, 10)
    elif kernel == "backprop_delta":
        fresh(W, np.ones((10, 10), f32), A, out, rows)
    else:
        fresh(out, 10, 0, 64)
    ir = fresh.inspect_llvm(fresh.signatures[0])
    assert not _DOUBLE_MATH.findall(ir)
    assert re.search(r"<\d+ x float>", ir), "the float32 loops were not vectorised"


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="Numba has a single thread here")
@pytest.mark.parametrize("batch_size", [10, 100])
def test_parallel_result_does_not_depend_on_the_thread_count(small_problem, batch_size):
    params, X, y, order = small_problem
    results = []
    for threads in (1, 2):
        trainer = NumbaParallel(params, "float64", threads=threads)
        assert trainer.threads == threads
        trainer.train_epoch(X, y, order, batch_size, 3.0)
        results.append(_flat(trainer.params()))
    assert np.max(np.abs(results[0] - results[1])) <= 1e-12 * np.max(np.abs(results[0]))


def test_parallel_rejects_more_threads_than_numba_has():
    with pytest.raises(ValueError, match="NUMBA_NUM_THREADS"):
        NumbaParallel(init_params([4, 3, 2], 0), threads=numba.config.NUMBA_NUM_THREADS + 1)


@pytest.mark.parametrize("name", ["numba", "numba-parallel", "numba-tiles"])
def test_compile_seconds_is_a_non_negative_float(name, small_problem):
    params, X, y, order = small_problem
    trainer = backends.create(name, params, "float64")
    assert trainer.compile_seconds == 0.0
    trainer.train_epoch(X[:50], y, order[order < 50], 10, 3.0)
    assert isinstance(trainer.compile_seconds, float) and trainer.compile_seconds >= 0.0


@pytest.mark.parametrize("name", ["numba", "numba-parallel", "numba-tiles"])
def test_an_epoch_allocates_nothing_per_mini_batch(name, small_problem):
    """Numba's allocation count for an epoch (arguments handed in, a fixed few)
    is the same for 10 mini-batches as for 100."""
    from numba.core.runtime import _nrt_python, rtsys

    params, X, y, _ = small_problem
    trainer = backends.create(name, params, "float64")
    trainer.train_epoch(X, y, np.arange(100), 10, 3.0)  # compile, and make the buffers
    _nrt_python.memsys_enable_stats()
    try:
        counts = []
        for n in (100, 1000):
            before = rtsys.get_allocation_stats().alloc
            trainer.train_epoch(X, y, np.arange(n), 10, 3.0)
            counts.append(rtsys.get_allocation_stats().alloc - before)
    finally:
        _nrt_python.memsys_disable_stats()
    assert counts[0] == counts[1]


def test_first_layer_weights_follow_the_inputs_alignment(small_problem):
    """W1 is kept at X's offset from a 64-byte boundary, whatever X's is, and
    training from a shifted X gives the same result."""
    params, X, y, order = small_problem
    results = []
    for shift in (0, 1, 3):  # X's data shifted by 8 bytes a step
        buffer = np.empty(X.size + 16)
        start = (-buffer.ctypes.data % 64) // 8 + shift
        shifted = buffer[start : start + X.size].reshape(X.shape)
        shifted[...] = X
        trainer = backends.create("numba", params, "float64")
        trainer.train_epoch(shifted, y, order[:200], 10, 3.0)
        assert trainer.weights[0].ctypes.data % 64 == shifted.ctypes.data % 64
        results.append(_flat(trainer.params()))
    for other in results[1:]:
        assert np.allclose(other, results[0], rtol=1e-12, atol=1e-14)
