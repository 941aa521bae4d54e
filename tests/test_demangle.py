"""Rust's legacy-mangled names as py-spy passes them on, made readable."""

from __future__ import annotations

import pytest

from harness.profiling.classify import Frame
from harness.profiling.demangle import demangle


@pytest.mark.parametrize("mangled, readable", [
    ("ndarray::zip::Zip$LT$$LP$P1$C$P2$RP$$C$D$GT$::for_each::h426a7eef2c90ebc1",
     "ndarray::zip::Zip<(P1,P2),D>::for_each"),
    ("core::ptr::drop_in_place$LT$std..collections..hash..map..HashMap$LT$K$C$V$GT$$GT$"
     "::h0123456789abcdef", "core::ptr::drop_in_place<std::collections::hash::map::HashMap<K,V>>"),
    ("_$LT$alloc..vec..Vec$LT$T$GT$$u20$as$u20$core..ops..drop..Drop$GT$::drop::h00112233445566ff",
     "<alloc::vec::Vec<T> as core::ops::drop::Drop>::drop"),
    ("nndl_bench_rust::simd::dot5x2::h6df9c5be62319a61", "nndl_bench_rust::simd::dot5x2"),
    ("closure$u7b$$u7b$closure$u7d$$u7d$::h0000000000000000", "closure{{closure}}"),
])
def test_legacy_symbols_lose_their_escapes_and_hash(mangled, readable):
    assert demangle(mangled) == readable


@pytest.mark.parametrize("name", [
    "NumpyGemm.train_epoch", "0x7f94c698c0ba", "dgemm_kernel_HASWELL", "<module>",
    "_RNvXs5G_NtNtCsgEmfK2I1SDS_4core3ops5arith", "cost$total", "a..b",
])
def test_other_names_are_left_alone(name):
    assert demangle(name) == name


def test_frames_are_parsed_with_readable_names():
    frame = Frame.parse("ndarray::zip::Zip$LT$P$C$D$GT$::inner::h426a7eef2c90ebc1 (mod.rs:12)")
    assert frame == Frame("ndarray::zip::Zip<P,D>::inner", "mod.rs")
