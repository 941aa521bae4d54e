"""What is particular to the Rust backends; test_backends.py checks their
gradients and their epochs against the per-sample reference, and
``cargo test`` (run by ``make test``) the Rust units on their own."""

from __future__ import annotations

import importlib.util
import os
import shutil
import threading

import numpy as np
import pytest

import backends
from backends.base import Params, init_params
from backends.rust_extension import MODULE

RUST = ["rust-ndarray", "rust-ndarray-batched", "rust-rayon", "rust-fused", "rust-fused-parallel"]


def _flat(params: Params) -> np.ndarray:
    return np.concatenate([a.ravel() for a in params.weights + params.biases]).astype(np.float64)


@pytest.mark.skipif(shutil.which("cargo") is None, reason="no cargo: the extension cannot be built")
def test_the_rust_backends_are_built_wherever_cargo_is():
    """make test builds the extension first; with cargo present a missing
    extension is a failed build, never a silent skip."""
    assert set(RUST) <= set(backends.available())


def test_without_the_extension_they_are_left_out_with_one_notice(monkeypatch, capsys):
    from harness.__main__ import main

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == MODULE else real_find_spec(name, *a))
    assert not set(RUST) & set(backends.available())
    notices = backends.left_out_notices()
    assert len(notices) == 1 and all(name in notices[0] for name in RUST)
    assert "make rust" in notices[0]
    with pytest.raises(backends.BackendUnavailable, match="make rust"):
        backends.get("rust-fused")
    assert main(["run", "--backend", "rust-fused", "--no-flamegraphs"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "make rust" in err


rust = pytest.importorskip(MODULE)


# The conftest's small_problem: sizes, samples, seed of the data, seed of the parameters.
SMALL_PROBLEM = ((784, 30, 10), 600, 8, 4)


@pytest.mark.parametrize("batch_size", [10, 100])
def test_rayon_gives_the_same_bits_on_one_and_two_threads(small_problem, batch_size):
    params, X, y, order = small_problem
    results = []
    for threads in (1, 2):
        trainer = backends.create("rust-rayon", params, "float64", threads=threads)
        assert trainer.threads == threads
        trainer.train_epoch(X, y, order, batch_size, 3.0)
        results.append(_flat(trainer.params()))
    np.testing.assert_array_equal(results[0], results[1])


def _isas() -> list[str]:
    return rust.build_info()["isa_supported"]


@pytest.mark.parametrize("kernel", ["sweep", "tiles", "gemm"])
@pytest.mark.parametrize("isa", _isas())
@pytest.mark.parametrize("batch_size", [10, 100])
def test_fused_matches_the_reference_on_every_instruction_set_and_kernel(
    small_problem, isa, kernel, batch_size
):
    """Each compiled version this CPU can run, and the GEMM kernel, not only
    the ones the defaults pick here."""
    from backends.rust_fused import RustFused

    params, X, y, order = small_problem
    ref = backends.create(backends.REFERENCE, params, "float64")
    ref.train_epoch(X, y, order, batch_size, 3.0)
    trainer = RustFused(params, "float64", isa=isa, kernel=kernel)
    trainer.train_epoch(X, y, order, batch_size, 3.0)
    choices = trainer.choices(batch_size)
    assert choices["isa"] == isa
    assert choices["kernel"] == kernel and "calibration_seconds" not in choices
    want = _flat(ref.params())
    assert np.max(np.abs(_flat(trainer.params()) - want)) <= 1e-9 * np.max(np.abs(want))


def test_fused_times_its_kernels_once_per_batch_size_and_keeps_the_fastest(small_problem):
    from backends.rust_fused import CALIBRATE_GEMM_FROM, RustFused

    params, X, y, order = small_problem
    trainer = RustFused(params, "float64")
    for batch_size, timed in ((10, {"sweep", "tiles"}),
                              (CALIBRATE_GEMM_FROM, {"sweep", "tiles", "gemm"})):
        trainer.train_epoch(X, y, order, batch_size, 3.0)
        seconds = trainer.calibration[batch_size]
        assert set(seconds) == timed and all(s > 0 for s in seconds.values())
        chosen = trainer.choices(batch_size)
        assert chosen["kernel"] == min(seconds, key=seconds.get)
        assert chosen["calibration_seconds"] == seconds
    # The probes trained copies: the epochs match the reference's.
    ref = backends.create(backends.REFERENCE, params, "float64")
    for batch_size in (10, CALIBRATE_GEMM_FROM):
        ref.train_epoch(X, y, order, batch_size, 3.0)
    want = _flat(ref.params())
    assert np.max(np.abs(_flat(trainer.params()) - want)) <= 1e-9 * np.max(np.abs(want))


def test_an_unknown_kernel_is_refused_by_name():
    from backends.rust_fused import RustFused

    with pytest.raises(ValueError, match="unknown kernel 'blocked'; one of sweep, tiles, gemm"):
        RustFused(init_params([4, 3, 2], 0), kernel="blocked")


def test_fused_picks_the_widest_instruction_set_and_says_so():
    from backends.rust_fused import RustFused

    trainer = RustFused(init_params([784, 30, 10], 0), "float32")
    info = rust.build_info()
    lanes = {"avx512": 16, "avx2+fma": 8, "x86-64": 1}[info["isa_selected"]]
    assert trainer.choices(10) == {"isa": info["isa_selected"], "lanes": lanes,
                                   "kernel": "sweep", "gemm_from_batch": 64,
                                   "subnormals": "flushed to zero (FTZ and DAZ)"}
    assert trainer.choices(1000)["kernel"] == "gemm"  # until a calibration says otherwise
    assert info["isa_selected"] == info["isa_supported"][0]
    with pytest.raises(ValueError, match="unknown instruction set"):
        RustFused(init_params([4, 3, 2], 0), isa="sse9")


@pytest.fixture
def trainer_and_data(small_problem):
    params, X, y, order = small_problem
    return backends.create("rust-fused", params, "float64"), X, y, order


@pytest.mark.parametrize("name", RUST)
@pytest.mark.parametrize("case, error, message", [
    ("float32 X", TypeError, "2-D float64"),
    ("1-D X", TypeError, "2-D float64"),
    ("narrow X", ValueError, "783 columns"),
    ("strided X", ValueError, "C-contiguous"),
    ("order out of range", ValueError, "index 600"),
    ("negative order", ValueError, "index -1"),
    ("label out of range", ValueError, "label 10"),
    ("float labels", TypeError, "integers"),
    ("short labels", ValueError, "599 labels"),
    ("batch size 0", ValueError, "batch_size"),
])
def test_bad_inputs_raise_python_exceptions(name, case, error, message, small_problem):
    params, X, y, order = small_problem
    trainer = backends.create(name, params, "float64")
    args = {"X": X, "y": y, "order": order, "batch_size": 10}
    bad = {
        "float32 X": {"X": X.astype(np.float32)},
        "1-D X": {"X": X[0]},
        "narrow X": {"X": np.ascontiguousarray(X[:, :783])},
        "strided X": {"X": np.asfortranarray(X)},
        "order out of range": {"order": np.append(order[:9], 600)},
        "negative order": {"order": np.append(order[:9], -1)},
        "label out of range": {"y": np.where(np.arange(600) == 3, 10, y)},
        "float labels": {"y": y.astype(float)},
        "short labels": {"y": y[:599]},
        "batch size 0": {"batch_size": 0},
    }[case]
    args.update(bad)
    before = _flat(trainer.params())
    with pytest.raises(error, match=message):
        trainer.train_epoch(args["X"], args["y"], args["order"], args["batch_size"], 3.0)
    np.testing.assert_array_equal(_flat(trainer.params()), before)  # checked before any step


def test_mismatched_parameters_are_refused():
    params = init_params([6, 4, 2], 0)
    broken = Params(params.weights, (params.biases[0], params.biases[0]))
    with pytest.raises(ValueError, match=r"biases\[1\]"):
        backends.create("rust-ndarray", broken)


def test_the_epoch_runs_without_the_gil(small_problem):
    """While one thread trains, another keeps running Python."""
    params, X, y, _ = small_problem
    trainer = backends.create("rust-ndarray", params, "float64")
    order = np.tile(np.arange(600), 4)
    started = threading.Event()

    def train():
        started.set()
        trainer.train_epoch(X, y, order, 10, 3.0)

    worker = threading.Thread(target=train)
    worker.start()
    started.wait()
    ticks = 0
    while worker.is_alive():
        ticks += 1
    worker.join()
    assert ticks > 1000, ticks


@pytest.mark.parametrize("threads, expected", [(None, 1), (2, 2)])
def test_the_extensions_blas_threads_are_pinned_and_restored(threads, expected, small_problem):
    params, X, y, order = small_problem
    before = rust.blas_threads()
    trainer = backends.create("rust-ndarray-batched", params, "float64", threads=threads)
    assert trainer.threads == expected
    trainer.train_epoch(X, y, order[:100], 10, 3.0)
    assert rust.blas_threads() == before


def test_build_info_names_the_toolchain_the_crates_and_the_linked_openblas():
    info = rust.build_info()
    assert info["rustc"].startswith("rustc ")
    assert {"ndarray", "pyo3", "numpy", "rayon"} <= set(info["crates"])
    assert "OpenBLAS" in info["openblas_config"]
    assert info["profile"] == "release" and info["debug_symbols"] == "true"


def test_the_extension_runs_numpys_own_openblas():
    """One BLAS under both: the file that defines the GEMM the extension calls is
    the one NumPy runs, mapped once, so its version and kernels are NumPy's."""
    from threadpoolctl import threadpool_info

    info = rust.build_info()
    # NumPy's own: another OpenBLAS may be loaded beside it (SciPy's, by Numba's np.dot)
    numpys = [p for p in threadpool_info() if p["internal_api"] == "openblas"
              and "/numpy.libs/" in p["filepath"]]
    assert len(numpys) == 1, threadpool_info()
    assert os.path.samefile(info["openblas_library"], numpys[0]["filepath"])
    assert os.path.samefile(info["openblas_linked"], info["openblas_library"])
    assert info["openblas_version"] == numpys[0]["version"]
    assert info["openblas_corename"] == numpys[0]["architecture"]
    with open("/proc/self/maps") as maps:
        mapped = {line.split(None, 5)[-1].strip() for line in maps
                  if "openblas" in line.lower() and "/scipy.libs/" not in line}
    assert len(mapped) == 1, mapped


def test_its_blas_threads_are_numpys():
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        assert rust.blas_threads() == 1
