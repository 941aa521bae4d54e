"""The flamegraph files of a profile: the views, the .folded and speedscope files
of exactly what the SVG draws, the data the SVG carries, and the layout of the
folder (the viewer itself: test_flameview.py)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from harness.profiling import classify, flamegraph, pyspy
from harness.profiling.profile import WITHIN

FIXTURES = Path(__file__).parent / "fixtures"


def phases(epochs_fixture: str = "numba.txt") -> list[pyspy.Phase]:
    startup = "_run_module_as_main (<frozen runpy>:173);<module> (numpy/__init__.py:1) 7\n"
    return [pyspy.Phase(100, startup, 0.07, 0),
            pyspy.Phase(1000, (FIXTURES / epochs_fixture).read_text(), 0.5, 0)]


def svg_data(text: str) -> dict:
    script = ET.fromstring(text).find("{http://www.w3.org/2000/svg}script").text
    return json.loads(re.search(r"var DATA = (\{.*?\});\n", script).group(1))


def test_training_comes_first_and_starts_at_train_epoch():
    views = flamegraph.views(phases(), WITHIN)
    assert [v.name for v in views] == ["training", "epochs", "startup"]
    training = views[0].stacks
    assert training and all(s[0].startswith("NumbaFused.train_epoch") for s in training)
    raw = classify.parse_collapsed((FIXTURES / "numba.txt").read_text())
    inside = sum(n for s, n in raw.items() if classify.passes_through(s, WITHIN))
    assert sum(training.values()) == inside
    assert classify.NUMBA_JIT in {f for s in training for f in s}
    assert views[2].stacks == {("_run_module_as_main (<frozen runpy>:173)",
                                "<module> (numpy/__init__.py:1)"): 7}
    assert views[2].seconds_per_sample == 0.01


def test_the_files_hold_exactly_what_the_svg_draws(tmp_path):
    views = flamegraph.views(phases("numpy_per_sample.txt"), WITHIN)
    svg = flamegraph.write(tmp_path, "numpy-per-sample", views, "title & <more>", "sub")
    data = svg_data(svg.read_text())
    names = [f[0] for f in data["frames"]]
    for view, drawn in zip(views, data["views"]):
        suffix = flamegraph.VIEWS[view.name][0]
        from_file = classify.parse_collapsed(
            (tmp_path / "stacks" / "numpy-per-sample" / f"numpy-per-sample{suffix}.folded")
            .read_text())
        assert from_file == view.stacks
        assert {tuple(names[i] for i in s): n for s, n in drawn["stacks"]} == dict(from_file)
    scope = json.loads(
        (tmp_path / "stacks" / "numpy-per-sample" / "numpy-per-sample.speedscope.json")
        .read_text())
    frames = [f["name"] for f in scope["shared"]["frames"]]
    first = scope["profiles"][0]
    assert sum(first["weights"]) == sum(views[0].stacks.values()) == first["endValue"]
    assert {tuple(frames[i] for i in s): w
            for s, w in zip(first["samples"], first["weights"])} == dict(views[0].stacks)
    assert "title &amp; &lt;more&gt;" in svg.read_text()


def test_frames_carry_their_library_and_category():
    info = flamegraph.frame_info(["dgemm_kernel_HASWELL (libscipy_openblas64_-32a4b2a6.so)",
                                  "exp (libm.so.6)", "NumpyGemm.train_epoch (backends/x.py:3)"])
    assert [(i.function, i.category) for i in info.values()] == [
        ("dgemm_kernel_HASWELL", "blas"), ("exp", "caller"), ("NumpyGemm.train_epoch",
                                                              "interpreter")]
    assert info["exp (libm.so.6)"].library == "libm.so.6"


def test_a_diff_is_written_for_the_backends_profiled_in_both(tmp_path):
    for run, fixture in [("base", "numpy_per_sample.txt"), ("new", "numpy_per_sample.txt")]:
        views = flamegraph.views(phases(fixture), WITHIN)
        flamegraph.write(tmp_path / run, "numpy-per-sample", views, "t", "s")
    flamegraph.write(tmp_path / "new", "numba", flamegraph.views(phases(), WITHIN), "t", "s")
    (written,) = flamegraph.write_diff(tmp_path / "base", tmp_path / "new", tmp_path / "diff")
    assert written.name == "numpy-per-sample.diff.svg"
    data = svg_data(written.read_text())
    assert all("baseline" in v for v in data["views"])


def flatten(folder: Path) -> None:
    """The folder as runs wrote it before the stacks had folders of their own: every
    file of every backend side by side with the SVGs."""
    for path in list((folder / "stacks").glob("*/*")):
        path.rename(folder / path.name)
    for backend in list((folder / "stacks").iterdir()):
        backend.rmdir()
    (folder / "stacks").rmdir()


def test_the_svgs_are_alone_at_the_top_and_the_stacks_under_stacks(tmp_path):
    for backend, fixture in [("numpy-per-sample", "numpy_per_sample.txt"), ("numba", "numba.txt")]:
        flamegraph.write(tmp_path, backend, flamegraph.views(phases(fixture), WITHIN), "t", "s")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["numba.svg", "numpy-per-sample.svg",
                                                          "stacks"]
    assert sorted(p.name for p in (tmp_path / "stacks" / "numba").iterdir()) == [
        "numba.epochs.folded", "numba.folded", "numba.speedscope.json", "numba.startup.folded"]
    assert flamegraph.profiled_backends(tmp_path) == ["numba", "numpy-per-sample"]


def test_a_folder_of_the_flat_layout_is_read_as_before(tmp_path):
    views = flamegraph.views(phases("numpy_per_sample.txt"), WITHIN)
    for run in ("flat", "nested"):
        flamegraph.write(tmp_path / run, "numpy-per-sample", views, "t", "s")
    flatten(tmp_path / "flat")
    assert (tmp_path / "flat" / "numpy-per-sample.folded").is_file()
    assert flamegraph.profiled_backends(tmp_path / "flat") == ["numpy-per-sample"]
    assert flamegraph.read_views(tmp_path / "flat", "numpy-per-sample") == flamegraph.read_views(
        tmp_path / "nested", "numpy-per-sample") == {v.name: v.stacks for v in views}
    meta = {"flamegraphs": str(tmp_path / "flat")}
    assert flamegraph.flamegraph_folder(tmp_path / "results" / "run", meta) == tmp_path / "flat"
    (written,) = flamegraph.write_diff(tmp_path / "flat", tmp_path / "nested", tmp_path / "diff")
    assert written.name == "numpy-per-sample.diff.svg"
