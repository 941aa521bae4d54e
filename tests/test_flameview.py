"""The flamegraph viewer's SVG: its colours, and data that cannot break out of
its script."""

from __future__ import annotations

from harness.profiling import flamegraph
from harness.profiling.flameview import View, build_svg, shade
from tests.test_flamegraph import svg_data


def test_shades_differ_within_a_category_and_stay_apart_across():
    blas = {shade("blas", f) for f in ("dgemm_kernel", "dgemv_t", "dgemm_beta", "daxpy")}
    assert len(blas) == 4
    assert not blas & {shade("numpy", f) for f in ("dgemm_kernel", "dgemv_t", "DOUBLE_add")}


def test_a_script_closing_string_in_a_frame_cannot_end_the_script():
    frame = "weird]]></script><x> (lib.so)"
    view = View("training", "training", {(frame,): 3})
    text = build_svg([view], flamegraph.frame_info([frame]), "t")
    assert svg_data(text)["frames"][0][0] == frame
