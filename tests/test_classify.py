"""The time breakdown's classifier on collapsed stacks recorded from each backend
(tests/fixtures/, trimmed from real py-spy --native output)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from harness.profiling import classify
from harness.profiling.classify import CATEGORIES, NUMBA_JIT, OTHER_JIT, Frame

FIXTURES = Path(__file__).parent / "fixtures"
PROFILED = ("profiled_epochs", "train_epoch")


def load(name: str) -> Counter:
    stacks = classify.parse_collapsed((FIXTURES / f"{name}.txt").read_text())
    return classify.collapse_jit(stacks, classify.jit_label(stacks))


def breakdown(name: str, within=PROFILED) -> classify.Breakdown:
    return classify.breakdown(load(name), within=within, ignore=("wait_for_sampler",))


# Each expectation is read off the fixture's lines: e.g. numpy_per_sample has 40
# samples in dgemm_kernel_HASWELL and 20 in dgemv_kernel_4x4 (blas); 25 in
# DOUBLE_add, 5 in fetestexcept and 3 in a lock, both called from a ufunc (numpy);
# 8 at bare libc addresses, 4 in PyDataMem_UserFREE, 3 in malloc (allocation);
# 10 with _backprop as the leaf and 2 in the garbage collector (interpreter).
@pytest.mark.parametrize("name, within, expected", [
    ("numpy_per_sample", PROFILED, {"blas": 60, "numpy": 33, "allocation": 15, "interpreter": 12}),
    ("numba", PROFILED, {"jit": 16, "allocation": 2}),
    ("torch", PROFILED, {"blas": 9, "torch": 13, "interpreter": 5, "allocation": 3}),
    ("jax", PROFILED, {"xla": 23, "interpreter": 2}),
    # rust-ndarray: ndarray's add_assign (rust), a libc address under RawVec's
    # allocation, OpenBLAS's Prescott kernels; rust-rayon: the calling thread in
    # futex_wait under rayon's LockLatch (libc's syscall defers to it).
    ("rust", PROFILED, {"rust": 59, "allocation": 8, "blas": 23}),
    ("unknown", ("train_epoch",), {"other": 9}),
])
def test_fixtures_are_classified_by_their_leaves(name, within, expected):
    result = breakdown(name, within)
    assert {c: n for c, n in result.samples.items() if n} == expected
    assert sum(result.shares().values()) == pytest.approx(1.0)


def test_every_category_is_reachable_from_the_fixtures():
    seen = set()
    for name, within in [("numpy_per_sample", PROFILED), ("numba", PROFILED),
                         ("torch", PROFILED), ("jax", PROFILED), ("rust", PROFILED),
                         ("unknown", ("train_epoch",))]:
        seen |= {c for c, n in breakdown(name, within).samples.items() if n}
    assert seen == set(CATEGORIES)


def test_numba_addresses_collapse_into_one_frame():
    raw = classify.parse_collapsed((FIXTURES / "numba.txt").read_text())
    assert classify.jit_label(raw) == NUMBA_JIT
    collapsed = classify.collapse_jit(raw, NUMBA_JIT)
    frames = [f for stack in collapsed for f in stack]
    assert not any(f.endswith("(?)") for f in frames)
    # 7 + 5 samples at single addresses and 3 at a nested pair: one leaf, 15 samples.
    leaves = breakdown("numba").leaves
    assert leaves[NUMBA_JIT] == 15
    assert sum(collapsed.values()) == sum(raw.values())
    # Two runs of addresses in one stack would stay two frames; one run is one frame.
    assert max(stack.count(NUMBA_JIT) for stack in collapsed) == 1


def test_compiled_code_without_numba_is_judged_by_its_caller():
    raw = classify.parse_collapsed((FIXTURES / "jax.txt").read_text())
    assert classify.jit_label(raw) == OTHER_JIT
    (stack,) = [s for s in load("jax") if s[-1] == OTHER_JIT]
    assert classify.classify(stack) == "xla"  # called from xla::cpu::Kernel::Launch


def test_outside_share_counts_what_is_not_training_and_drops_the_handshake():
    result = breakdown("numpy_per_sample")
    # Data loading 6, an import 10, a warm-up epoch 4, the shuffle 2; the 50 samples
    # waiting for the sampler are neither inside nor outside.
    assert result.outside == 22
    assert result.outside / (result.total + result.outside) == pytest.approx(22 / (120 + 22))


def test_warm_up_epochs_are_not_training():
    stack = next(s for s in load("numpy_per_sample") if "train_epoch" in ";".join(s)
                 and "profiled_epochs" not in ";".join(s))
    assert classify.passes_through(stack, ("train_epoch",))
    assert not classify.passes_through(stack, PROFILED)
    assert not classify.passes_through(tuple(reversed(next(iter(load("numba"))))), PROFILED)


def test_hot_functions_rank_leaves_and_merge_unsymbolised_addresses():
    hot = classify.hot_functions(breakdown("numpy_per_sample").leaves, top=3)
    assert hot[0] == ("dgemm_kernel_HASWELL", "libscipy_openblas64_-32a4b2a6.so", 40)
    assert [n for _, _, n in hot] == sorted((n for _, _, n in hot), reverse=True)
    names = {name for name, _, _ in classify.hot_functions(breakdown("numpy_per_sample").leaves)}
    assert classify.UNSYMBOLISED in names and not any(n.startswith("0x") for n in names)


@pytest.mark.parametrize("text, name, library", [
    ("NumpyGemm.train_epoch (backends/numpy_gemm.py:57)", "NumpyGemm.train_epoch",
     "backends/numpy_gemm.py"),
    ("dgemm_kernel_HASWELL (libscipy_openblas64_-32a4b2a6.so)", "dgemm_kernel_HASWELL",
     "libscipy_openblas64_-32a4b2a6.so"),
    ("0x7f682f2e6677 (?)", "0x7f682f2e6677", ""),
    ("_run_code (<frozen runpy>:65)", "_run_code", "<frozen runpy>"),
    ("c10::function_ref<void (char**, long)>::callback_fn (libtorch_cpu.so)",
     "c10::function_ref<void (char**, long)>::callback_fn", "libtorch_cpu.so"),
])
def test_frames_parse_into_name_and_library(text, name, library):
    frame = Frame.parse(text)
    assert (frame.name, frame.library) == (name, library)


def test_an_unknown_library_is_other_and_a_stack_of_helpers_too():
    assert classify.classify(("mystery (libmystery.so)",)) == "other"
    assert classify.classify(("pthread_mutex_lock (libc.so.6)",)) == "other"
    assert classify.classify(("DOUBLE_add (numpy/x.so)", "fetestexcept (libm.so.6)")) == "numpy"


def test_stacks_that_lost_the_entry_point_join_the_others():
    stacks = classify.parse_collapsed((FIXTURES / "numpy_per_sample.txt").read_text())
    assert len({stack[0] for stack in stacks}) == 2  # the dgemm stack lost libc's entry
    joined = classify.drop_entry(stacks)
    assert len({stack[0] for stack in joined}) == 1
    assert sum(joined.values()) == sum(stacks.values())


def test_the_flamegraph_has_a_colour_for_every_category():
    from harness.profiling import flameview

    assert set(CATEGORIES) <= set(flameview.CATEGORY_HLS)


def test_a_rayon_profile_says_that_the_workers_are_not_sampled():
    assert "not sample" in classify.unsampled_threads_note(load("rust"))
    assert classify.unsampled_threads_note(load("numba")) == ""
