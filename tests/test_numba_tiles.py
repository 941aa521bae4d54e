"""What is particular to numba-tiles: the machine facts it chooses from, and
its tiles on shapes the default network does not reach (several runs of
vectors, a short last run, features not a multiple of the tile, mini-batches
longer than an update pass or cut into blocks); test_backends.py checks the default network."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")

import backends  # noqa: E402
from backends import numba_tiles, numba_vectors  # noqa: E402
from backends.base import init_params  # noqa: E402


@pytest.mark.parametrize("features, facts", [
    ({"avx512f": True, "avx2": True, "fma": True}, (64, 32)),
    ({"avx512f": False, "avx2": True, "fma": True}, (32, 16)),
    ({"avx2": True, "fma": False}, (16, 16)),
    ({}, (16, 16)),
])
def test_vector_facts_follow_the_instruction_set(features, facts):
    assert numba_vectors.vector_facts(features) == facts


def test_tiles_hold_as_many_vectors_as_the_registers_allow():
    assert numba_tiles.tile_vectors(32) == 4  # AVX-512: 4 x (5 + 1) + 2 <= 32
    assert numba_tiles.tile_vectors(16) == 2  # AVX2
    assert numba_tiles.stride(30, 8) == 32 and numba_tiles.stride(30, 16) == 32


def test_a_pair_of_sweeps_is_taken_where_ten_samples_fit_the_registers():
    assert numba_vectors.pair_fits(2, 32) and not numba_vectors.pair_fits(3, 32)  # AVX-512
    assert numba_vectors.pair_fits(1, 16) and not numba_vectors.pair_fits(2, 16)  # AVX2


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("vectors", [1, 2])
def test_a_pair_of_sweeps_gives_the_bits_of_two_sweeps(dtype, vectors):
    """The first layer's sums over ten samples in one tile are the bits of the
    same samples in two batches of one sweep each, which cannot take a pair."""
    from backends import numba_tiles_kernels as kernels
    from backends.numba_fused import empty_at_offset

    if not numba_vectors.pair_fits(vectors):
        pytest.skip(f"a pair of {vectors} vectors does not fit this CPU's registers")
    dtype = np.dtype(dtype)
    lanes = max(numba_vectors.VECTOR_BYTES // dtype.itemsize, 1)
    hidden, n_in = vectors * lanes - 1, 47
    stride = numba_tiles.stride(hidden, lanes)
    rng = np.random.default_rng(5)
    X = rng.standard_normal((30, n_in)).astype(dtype)
    wt = empty_at_offset((n_in, stride), dtype, 0)  # the tiles load W1ᵀ and z aligned
    wt[:] = rng.standard_normal((n_in, stride))
    order = rng.permutation(30).astype(np.intp)
    rows = order[:10].copy()
    tiles = numba_tiles.runs(stride // lanes, numba_tiles.tile_vectors())
    assert tiles.shape[0] == 1

    def first_layer(batch, start):
        z, a1 = empty_at_offset((10, stride), dtype, 0), np.zeros((batch.size, hidden), dtype)
        kernels.forward_first_layer(wt, stride, lanes, tiles, X, order, start, batch.size,
                                    batch.size, batch, z, a1)
        return a1

    pair = first_layer(rows, 0)
    sweeps = np.concatenate([first_layer(rows[:5], 0), first_layer(rows[5:], 5)])
    np.testing.assert_array_equal(pair.view(np.uint8), sweeps.view(np.uint8))
    assert np.abs(pair - X[rows] @ wt[:, :hidden]).max() < 1e-4


def test_runs_are_even_and_cover_the_vectors():
    def cut(n, most):
        return [int(r[1]) for r in numba_tiles.runs(n, most)]

    assert cut(4, 4) == [4]
    assert cut(13, 4) == [4, 3, 3, 3]
    assert cut(7, 2) == [2, 2, 2, 1]
    assert cut(1, 4) == [1]
    runs = numba_tiles.runs(13, 4)
    assert runs[0, 0] == 0 and all(runs[1:, 0] == np.cumsum(runs[:-1, 1]))


@pytest.mark.parametrize("dtype, tolerance", [("float64", 1e-9), ("float32", 2e-4)])
@pytest.mark.parametrize("sizes, batch_size", [
    ((787, 100, 10), 133),  # several runs, 787 = 157 x 5 + 2 features, passes of 64
    ((64, 13, 7, 3), 10),  # a short hidden layer, two deeper layers
    ((784, 17, 9, 4), 200),  # in float64 1.25 MB of rows a mini-batch: blocks of 60
])
def test_tiles_match_the_reference_on_other_shapes(sizes, batch_size, dtype, tolerance):
    rng = np.random.default_rng(3)
    X = rng.random((400, sizes[0])).astype(dtype)
    y = rng.integers(0, sizes[-1], 400)
    order = rng.permutation(400)
    params = init_params(sizes, seed=4)
    results = []
    for name in (backends.REFERENCE, "numba-tiles"):
        trainer = backends.create(name, params, dtype)
        trainer.train_epoch(X, y, order, batch_size, 3.0)
        results.append(trainer.params())
    for a, b in zip(results[1].weights + results[1].biases, results[0].weights + results[0].biases):
        assert a.dtype == np.dtype(dtype)
        assert np.max(np.abs(a - b)) <= tolerance * np.max(np.abs(b))


def test_numba_tiles_cuts_mini_batches_into_blocks_where_rust_fused_does():
    """The same choice from the same facts: blocks of 60 where a mini-batch's rows
    of X take more than 1 MB, in the Rust kernel's rule and in Numba's."""
    from backends.rust_fused import RustFused

    for sizes, dtype in [((784, 30, 10), "float64"), ((784, 30, 10), "float32"),
                         ((40000, 5, 3), "float64"), ((784,) + (4,) * 9, "float64")]:
        params = init_params(list(sizes), 0)
        numba = backends.create("numba-tiles", params, dtype)
        rust = RustFused(params, dtype, kernel="tiles")
        for batch in (10, 100, 165, 166, 200, 1000):
            want = rust.choices(batch).get("block_samples")
            assert numba.choices(batch).get("block_samples") == want, (sizes, dtype, batch)
    numba64 = backends.create("numba-tiles", init_params([784, 30, 10], 0), "float64")
    # 166 samples are padded to 170 rows: 170 x 784 x 8 bytes > 1 MiB > 165 x 784 x 8
    assert [numba64.choices(b).get("block_samples") for b in (100, 165, 166, 1000)] == [
        None, None, 60, 60]
    assert backends.create("numba-tiles", init_params([784, 30, 10], 0), "float32").choices(
        1000)["block_samples"] == 60


def test_a_mini_batch_in_blocks_gives_the_bits_of_one_pass():
    """The two ways through a mini-batch, from the same state: every weight,
    bias and delta the same bits (Numba's sigmoid and sums in blocks of 60
    samples included)."""
    from backends import numba_tiles_kernels as kernels
    from backends.numba_fused import empty_at_offset, padded

    sizes, batch, n = (784, 17, 9, 4), 200, 300
    rng = np.random.default_rng(5)
    X, y, order = rng.random((n, sizes[0])), rng.integers(0, 4, n), rng.permutation(n)
    p = padded(batch)
    assert kernels.block_samples(p, sizes[0], 8, len(sizes) - 1) == 60
    after = []
    for blocked in (False, True):
        trainer = backends.create("numba-tiles", init_params(sizes, 4), "float64")
        acts, deltas, rows, ids = trainer._buffers_for(batch)
        nd = tuple(empty_at_offset((p, wt.shape[1]), trainer.dtype, 0) for wt in trainer._wt)
        W, b = tuple(trainer.weights), tuple(trainer.biases)
        for layer in range(len(W)):
            kernels.transpose_into(W[layer], trainer._wt[layer])
        kernels.fill_rows(order, 0, batch, rows)
        common = (X, y, order, 0, batch, batch, rows[:p], 3.0 / batch, trainer.lanes,
                  trainer._tiles)
        if blocked:
            kernels.in_blocks(*common, trainer._wt, trainer._spare, trainer._z, nd, W, b, acts,
                              deltas, ids)
        else:
            kernels.one_pass(*common, trainer._wt, trainer._z, nd, W, b, acts, deltas, ids)
        after.append([a.copy() for a in (*trainer._wt, *W, *b, *deltas, *acts)])
    for one, cut in zip(*after):
        np.testing.assert_array_equal(cut, one)


def test_the_epoch_restores_the_float_control_word():
    """Subnormals are flushed inside the epoch only: NumPy's arithmetic after it
    still makes them."""
    rng = np.random.default_rng(1)
    X, y = rng.random((20, 12)), rng.integers(0, 3, 20)
    trainer = backends.create("numba-tiles", init_params([12, 5, 3], 0), "float64")
    trainer.train_epoch(X, y, np.arange(20), 10, 3.0)
    tiny = np.array([1e-300])
    assert (tiny * 1e-10)[0] != 0.0
    assert trainer.choices(10)["kernel"] == "tiles"
