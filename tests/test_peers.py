"""What is particular to the PyTorch and JAX backends; the arithmetic itself is
checked for every backend in test_backends.py."""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest

import backends

PEERS = ["torch", "jax"]


# The conftest's small_problem: a network small enough that JAX compiles it in a
# moment: sizes, samples, seed of the data, seed of the parameters.
SMALL_PROBLEM = ((20, 8, 4), 205, 5, 2)


@pytest.mark.parametrize("package", PEERS)
def test_a_missing_package_makes_the_backend_unavailable_with_the_install_hint(
    package, monkeypatch
):
    real_find_spec = importlib.util.find_spec

    def find_spec(name, *args):
        return None if name == package else real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    assert package not in backends.available()
    assert package in backends.names()
    with pytest.raises(backends.BackendUnavailable, match=r"nndl-bench\[peers\]"):
        backends.get(package)


@pytest.mark.parametrize("name", PEERS)
def test_new_data_arrays_replace_the_cached_ones(name, small_problem):
    """The device copy of the data is keyed on the arrays passed in: a second
    epoch on other arrays trains on those, as the reference does."""
    pytest.importorskip(name)
    params, X, y, order = small_problem
    X2, y2 = X[::-1].copy(), y[::-1].copy()
    trainer = backends.create(name, params, "float64")
    reference = backends.create(backends.REFERENCE, params, "float64")
    for t in (trainer, reference):
        t.train_epoch(X, y, order, 10, 3.0)
        t.train_epoch(X2, y2, order, 10, 3.0)
    for a, b in zip(trainer.params().weights, reference.params().weights, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_torch_honours_threads(small_problem):
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    try:
        trainer = backends.create("torch", small_problem[0], "float64", threads=1)
        assert trainer.threads == 1
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_jax_compiles_in_the_first_epoch_only(small_problem):
    pytest.importorskip("jax")
    params, X, y, order = small_problem  # 205 samples: 20 full batches of 10 and a short one
    trainer = backends.create("jax", params, "float64")
    assert trainer.compile_seconds == 0
    trainer.train_epoch(X, y, order, 10, 3.0)
    first = trainer.compile_seconds
    assert first > 0
    trainer.train_epoch(X, y, order[::-1], 10, 0.5)
    assert trainer.compile_seconds == first


def test_naming_a_peer_does_not_import_it_into_the_harness():
    """The parent's run.json (its BLAS list) and GEMM peak must not depend on whether
    torch or jax were named: checking a backend never imports it."""
    import json
    import subprocess
    import sys

    probe = ("import json, sys, backends; from harness.running import machine; "
             "backends.resolve(sys.argv[1]); "
             "print(json.dumps([sorted(m for m in ('torch', 'jax') if m in sys.modules), "
             "machine.blas_info()]))")
    seen = {}
    for spec in ("torch,jax", "numpy-gemm"):
        if spec == "torch,jax" and not all(importlib.util.find_spec(p) for p in PEERS):
            pytest.skip("torch and jax are not both installed")
        out = subprocess.run([sys.executable, "-c", probe, spec], capture_output=True,
                             text=True, check=True).stdout
        seen[spec] = json.loads(out)
    assert seen["torch,jax"][0] == []
    assert seen["torch,jax"][1] == seen["numpy-gemm"][1]


def test_the_peers_report_the_threads_their_frameworks_run(small_problem):
    torch = pytest.importorskip("torch")
    params = small_problem[0]
    before = torch.get_num_threads()
    try:
        assert backends.create("torch", params).threads == before
        assert backends.create("torch", params, threads=1).threads == 1
    finally:
        torch.set_num_threads(before)
    pytest.importorskip("jax")
    from backends.jax_backend import xla_cpu_threads

    assert backends.create("jax", params).threads == xla_cpu_threads()
    assert xla_cpu_threads() == len(os.sched_getaffinity(0))


def test_torch_compile_compiles_in_the_first_epoch_only(small_problem):
    """The first epoch compiles the step for each batch shape (here 10 and the
    short last 5) and counts the time; another epoch, with another eta, compiles nothing."""
    pytest.importorskip("torch")
    from torch._dynamo.utils import counters

    params, X, y, order = small_problem
    trainer = backends.create("torch-compile", params, "float64")
    assert trainer.compile_seconds == 0
    trainer.train_epoch(X, y, order, 10, 3.0)
    first, graphs = trainer.compile_seconds, counters["stats"]["unique_graphs"]
    assert first > 0
    trainer.train_epoch(X, y, order[::-1], 10, 0.5)
    assert trainer.compile_seconds == first
    assert counters["stats"]["unique_graphs"] == graphs


def test_torch_compile_traces_the_backward_into_the_graph(small_problem):
    """The compiled step breaks only where torch.optim asks to (before its
    update), not at zero_grad or backward(), whose eager forms cost more per
    mini-batch than the whole compiled step at batch 10."""
    torch = pytest.importorskip("torch")
    from torch._dynamo.utils import counters

    from backends.torch_compile import TRACES_BACKWARD

    if not TRACES_BACKWARD:
        pytest.skip("this PyTorch's dynamo cannot trace backward()")
    params, X, y, order = small_problem
    torch._dynamo.reset()  # trace afresh, not from frames other tests compiled
    counters.clear()
    trainer = backends.create("torch-compile", params, "float64")
    trainer.train_epoch(X, y, order, 10, 3.0)
    assert counters["stats"]["unique_graphs"] > 0
    reasons = list(counters["graph_break"])
    assert all("User-inserted graph break" in r for r in reasons), reasons
    assert trainer.choices(10)["backward"].startswith("traced")
