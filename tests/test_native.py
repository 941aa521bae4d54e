"""perf's samples made into the breakdown's stacks: thread pools named, the
interpreter folded, stripped code named by its library, Rust demangled, and the
training told apart by time."""

from __future__ import annotations

import shutil

import pytest

from harness.profiling import classify, native
from harness.profiling.perf import NativeFrame, Sample

PID = 100
LIBPYTHON = "/py/lib/libpython3.11.so.1.0"
NUMPY = "/venv/numpy/_core/_multiarray_umath.cpython-311-x86_64-linux-gnu.so"
OPENBLAS = "/venv/numpy.libs/libscipy_openblas64_-32a4b2a6.so"
RUST = "/venv/nndl_bench_rust/nndl_bench_rust.cpython-311-x86_64-linux-gnu.so"
LIBC = "/usr/lib/x86_64-linux-gnu/libc.so.6"
KERNEL = "[kernel.kallsyms]"
NUMBA_POOL = "/venv/numba/np/ufunc/omppool.cpython-311-x86_64-linux-gnu.so"
GOMP = "/usr/lib/x86_64-linux-gnu/libgomp.so.1.0.0"


def sample(tid: int, *frames: tuple[str, str], time_ns: int = 50, comm: str = "python") -> Sample:
    return Sample(tid, comm, time_ns, tuple(NativeFrame(s, d) for s, d in frames))


MAIN_GEMM = sample(PID, ("_start", "/py/bin/python3.11"), ("Py_BytesMain", LIBPYTHON),
                   ("_PyEval_EvalFrameDefault", LIBPYTHON), ("ufunc_generic_fastcall", NUMPY),
                   ("[unknown]", NUMPY), ("[unknown]", NUMPY),
                   ("dgemm_small_kernel_b0_nn_SKYLAKEX", OPENBLAS))
BLAS_WAITING = sample(PID + 1, ("start_thread", LIBC), ("blas_thread_server", OPENBLAS),
                      ("pthread_cond_wait", LIBC), ("do_futex", KERNEL))
BLAS_WOKEN = sample(PID + 1, ("start_thread", LIBC), ("finish_task_switch", KERNEL))
RAYON = sample(PID + 2, ("start_thread", LIBC),
               ("_RNvXs5G_NtNtCsgEmfK2I1SDS_4core3ops5arithdNtB6_9AddAssign10add_assign", RUST),
               comm="nndl-rayon-0")
NUMBA_WORKER = sample(PID + 3, ("start_thread", LIBC), ("[unknown]", GOMP),
                      ("[unknown]", f"/tmp/perf-{PID}.map"))
NUMBA_SPINNING = sample(PID + 3, ("start_thread", LIBC), ("[unknown]", GOMP))
NUMBA_MAIN = sample(PID, ("[unknown]", f"/tmp/perf-{PID}.map"), ("parallel_for", NUMBA_POOL))
INTERPRETING = sample(PID, ("_start", "/py/bin/python3.11"),
                      ("_PyEval_EvalFrameDefault", LIBPYTHON))


def test_threads_are_named_by_their_pool():
    roles = native.thread_roles([MAIN_GEMM, BLAS_WAITING, BLAS_WOKEN, RAYON, NUMBA_WORKER,
                                 NUMBA_MAIN, sample(PID + 9, ("f", "/lib/x.so"), comm="io")],
                                PID)
    assert roles == {PID: "main thread", PID + 1: "OpenBLAS threads", PID + 2: "rayon workers",
                     PID + 3: "Numba workers", PID + 9: "thread 'io'"}


def test_the_interpreter_folds_into_one_frame_and_stripped_code_into_its_library():
    training, _ = native.stacks([MAIN_GEMM], PID, [(0, 100)])
    ((stack, n),) = training.items()
    assert stack == (*native.TRAINING_ROOT, "[main thread]", "[python]",
                     f"ufunc_generic_fastcall ({NUMPY})",
                     f"[_multiarray_umath.cpython-311-x86_64-linux-gnu.so] ({NUMPY})",
                     f"dgemm_small_kernel_b0_nn_SKYLAKEX ({OPENBLAS})")
    assert classify.classify(stack, native.RULES) == "blas"


def test_a_leaf_in_the_interpreter_stays_and_counts_as_the_interpreter():
    training, _ = native.stacks([INTERPRETING], PID, [(0, 100)])
    ((stack, _),) = training.items()
    assert stack[-2:] == ("[python]", f"_PyEval_EvalFrameDefault ({LIBPYTHON})")
    assert classify.classify(stack, native.RULES) == "interpreter"


@pytest.mark.skipif(shutil.which("c++filt") is None, reason="binutils' c++filt reads v0 names")
def test_rust_v0_names_are_demangled_without_crate_hashes():
    training, _ = native.stacks([RAYON], PID, [(0, 100)])
    ((stack, _),) = training.items()
    assert stack[-1] == f"<f64 as core::ops::arith::AddAssign>::add_assign ({RUST})"
    assert classify.classify(stack, native.RULES) == "rust"


def test_a_pool_waiting_for_work_is_its_owners_time():
    samples = [BLAS_WAITING, BLAS_WOKEN, NUMBA_WORKER, NUMBA_SPINNING, NUMBA_MAIN]
    training, _ = native.stacks(samples, PID, [(0, 100)])
    counted = classify.breakdown(training, within=("profiled_epochs", "train_epoch"),
                                 rules=native.RULES)
    assert counted.samples == {"blas": 2, "jit": 3}


def test_samples_outside_the_epochs_stay_out_of_the_training():
    early, late = (sample(PID, ("f", RUST), time_ns=t) for t in (10, 500))
    training, phase = native.stacks([early, late], PID, [(100, 400)])
    assert sum(training.values()) == 0
    assert sum(phase.values()) == 2
    training, phase = native.stacks([early, late], PID, [(0, 20), (450, 600)])
    assert sum(training.values()) == 2
    assert all(s[:2] == native.TRAINING_ROOT for s in training)


def test_thread_shares_and_hot_functions_name_the_thread():
    samples = [MAIN_GEMM, MAIN_GEMM, MAIN_GEMM, BLAS_WAITING]
    training, _ = native.stacks(samples, PID, [(0, 100)])
    assert native.thread_shares(training) == {"main thread": 0.75, "OpenBLAS threads": 0.25}
    hot = native.hot_functions(training, top=5)
    assert hot[0] == ("dgemm_small_kernel_b0_nn_SKYLAKEX", OPENBLAS, "main thread", 3)
    assert hot[1] == ("do_futex", KERNEL, "OpenBLAS threads", 1)


def test_compiled_code_is_numbas_when_the_process_says_numba_is_loaded():
    """Unwinding stops in JIT code, so a Numba kernel's samples may show no frame
    of Numba's own libraries: the process's word decides."""
    alone = sample(PID, ("[unknown]", f"/tmp/perf-{PID}.map"))
    unknown, _ = native.stacks([alone], PID, [(0, 100)])
    told, _ = native.stacks([alone], PID, [(0, 100)], numba=True)
    assert classify.classify(next(iter(unknown)), native.RULES) == "other"
    assert next(iter(told))[-1] == "[numba-jit]"
    assert classify.classify(next(iter(told)), native.RULES) == "jit"
