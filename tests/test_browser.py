"""The report and the flamegraph viewer as a reader uses them: in Chromium
(Debian's, driven by Playwright), on a real profile taken with py-spy.

Set NNDL_BENCH_SCREENSHOTS to a folder to keep a screenshot of every page."""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from harness.__main__ import main
from harness.config import RunConfig
from harness.profiling import classify, pyspy
from harness.profiling.profile import PERF_SAMPLER, ProfileSettings
from harness.reporting.pages import draw_sweep, write_report
from harness.running.run import execute

CHROMIUM = os.environ.get("NNDL_BENCH_CHROMIUM", "/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="playwright is not installed: pip install playwright")
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM,
                                              args=["--no-sandbox"])
        yield chromium
        chromium.close()


class Page:
    """A page with its console errors, failed loads and screenshots gathered."""

    def __init__(self, browser, url: str, width: int = 1300):
        self.page = browser.new_page(viewport={"width": width, "height": 900})
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error"
                     else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("requestfailed", lambda r: self.errors.append(f"failed: {r.url}"))
        self.page.goto(url)

    def shot(self, name: str) -> None:
        folder = os.environ.get("NNDL_BENCH_SCREENSHOTS")
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(Path(folder) / f"{name}.png"))

    def frames(self) -> list[dict]:
        """Every drawn frame: its path, text, classes and rectangle."""
        return self.page.eval_on_selector_all("g.f", """gs => gs.map(g => {
            const r = g.querySelector('rect');
            return {path: g.getAttribute('data-path'), text: g.getAttribute('data-frame'),
                    cls: g.getAttribute('class'), x: +r.getAttribute('x'),
                    w: +r.getAttribute('width'), y: +r.getAttribute('y')};
        })""")

    def click_frame(self, text: str) -> dict:
        """Click the first drawn frame whose text starts with ``text``."""
        frame = next(f for f in self.frames() if f["text"].startswith(text))
        self.page.locator(f'g.f[data-path="{frame["path"]}"]').click()
        return frame


@pytest.fixture(scope="module")
def profiled(tmp_path_factory):
    """A run of numpy-gemm and numpy-per-sample with flamegraphs, and its report."""
    tmp = tmp_path_factory.mktemp("profiled")
    config = RunConfig(backends=("numpy-gemm", "numpy-per-sample"), epochs=2, warmup_epochs=1,
                       dataset="mnist-sample", n_train=1000, results_dir=tmp / "results",
                       peak_seconds=0)
    result = execute(config, profile=ProfileSettings(out_dir=tmp / "flamegraphs",
                                                     min_samples=500))
    if result.profile.unavailable:
        pytest.skip(f"py-spy cannot profile here: {result.profile.unavailable}")
    assert result.exit_code == 0 and not result.profile.failed, result.profile.notes
    return result


def folded(path: Path) -> Counter:
    return classify.parse_collapsed(path.read_text())


def test_the_report_loads_without_error_and_its_table_sorts(browser, profiled):
    page = Page(browser, write_report(profiled.run_dir).resolve().as_uri())
    page.shot("report")
    assert page.errors == []
    for target in page.page.eval_on_selector_all(
            "a[href], img[src]", "es => es.map(e => e.href || e.src)"):
        if target.startswith("file:"):
            assert Path(unquote(urlparse(target).path)).is_file(), target
    assert page.page.locator("section#flamegraphs a").count() >= 2
    column = "#summary-table td:nth-child(3)"
    heading = page.page.locator('#summary-table th[data-sort="median_s"]')
    heading.click()
    ascending = [float(v) for v in page.page.eval_on_selector_all(
        column, "tds => tds.map(t => t.getAttribute('data-value'))")]
    heading.click()
    descending = [float(v) for v in page.page.eval_on_selector_all(
        column, "tds => tds.map(t => t.getAttribute('data-value'))")]
    assert len(ascending) == 2 and ascending == sorted(ascending) and ascending != descending
    assert descending == sorted(ascending, reverse=True)
    assert heading.get_attribute("aria-sort") == "descending"


def flamegraph(profiled, backend: str = "numpy-gemm") -> Path:
    return profiled.profile.folder / f"{backend}.svg"


def python_view(profiled, backend: str) -> tuple[Path, str]:
    """The folded stacks and the URL of the view that holds the Python functions:
    py-spy's own where perf sampled the native frames, else the training view."""
    svg = flamegraph(profiled, backend)
    stacks = profiled.profile.folder / "stacks" / backend
    if profiled.profile.sampler == PERF_SAMPLER:
        return stacks / f"{backend}.python.folded", f"{svg.as_uri()}#view=python"
    return stacks / f"{backend}.folded", svg.as_uri()


def subtree_nodes(stacks: Counter, prefix: tuple) -> set[tuple]:
    """Every frame below ``prefix`` in the tree of ``stacks``, as its path of texts."""
    return {stack[:k] for stack in stacks if stack[:len(prefix)] == prefix
            for k in range(len(prefix) + 1, len(stack) + 1)}


def text_path(frames: list[dict], path: str) -> tuple:
    texts = {f["path"]: f["text"] for f in frames}
    ids = path.split(".")
    return tuple(texts[".".join(ids[:k])] for k in range(1, len(ids) + 1))


@pytest.mark.parametrize("view, frame", [
    ("epochs", "[main thread]"),
    ("epochs", "profiled_epochs"),
    ("startup", "prepare (harness/jobs/job.py"),
    ("python", "NumpyGemm._update_mini_batch"),
    ("training", "[main thread]"),
])
def test_zoom_keeps_the_whole_subtree_inside_the_frame_and_reset_restores(
        browser, profiled, view, frame):
    if profiled.profile.sampler != PERF_SAMPLER and (view == "python" or "[" in frame):
        pytest.skip("py-spy alone sampled: no view of perf's threads")
    svg = flamegraph(profiled)
    stacks = folded(profiled.profile.folder / "stacks" / "numpy-gemm"
                    / f"numpy-gemm{'' if view == 'training' else '.' + view}.folded")
    page = Page(browser, f"{svg.as_uri()}#view={view}")
    whole = page.frames()
    assert len(whole) == len(subtree_nodes(stacks, ())) + 1  # every frame, and the root
    clicked = page.click_frame(frame)
    page.shot(f"zoom-{view}-{frame.split()[0]}")
    drawn = {f["path"]: f for f in page.frames()}
    zoomed = drawn[clicked["path"]]
    assert zoomed["x"] == pytest.approx(10) and zoomed["w"] == pytest.approx(1300 - 20 - 20)
    below = {p: f for p, f in drawn.items() if p.startswith(clicked["path"] + ".")}
    expected = subtree_nodes(stacks, text_path(whole, clicked["path"]))
    assert {text_path(whole, p) for p in below} == expected
    for path, f in below.items():
        parent = drawn[path.rsplit(".", 1)[0]]
        assert f["w"] > 0
        assert parent["x"] - 1e-6 <= f["x"] and f["x"] + f["w"] <= parent["x"] + parent["w"] + 1e-6
        assert zoomed["x"] - 1e-6 <= f["x"] and f["x"] + f["w"] <= zoomed["x"] + zoomed["w"] + 1e-6
    assert "zoom=" in page.page.url
    page.page.keyboard.press("Escape")
    assert len(page.frames()) == len(whole) and "zoom=" not in page.page.url
    page.click_frame(frame)
    page.page.locator("#reset").click()
    assert sorted(f["path"] for f in page.frames()) == sorted(f["path"] for f in whole)
    assert page.errors == []


def matched_share(stacks: Counter, pattern: str, prefix: tuple = ()) -> float:
    regex = re.compile(pattern)
    inside = {s: n for s, n in stacks.items() if s[:len(prefix)] == prefix}
    hits = sum(n for s, n in inside.items() if any(regex.search(f) for f in s))
    return hits / sum(inside.values())


def test_search_highlights_the_matching_frames_with_the_share_of_the_folded_counts(
        browser, profiled):
    path, url = python_view(profiled, "numpy-gemm")
    stacks = folded(path)
    page = Page(browser, url)
    pattern = r"dgemm|ufunc_generic|_sigmoid"
    page.page.keyboard.press("Control+f")
    page.page.keyboard.type(pattern)
    page.shot("search")
    frames = page.frames()
    assert {f["path"] for f in frames if "match" in f["cls"].split()} == {
        f["path"] for f in frames if f["path"] and re.search(pattern, f["text"])}
    matched = page.page.locator("#matched")
    share = matched_share(stacks, pattern)
    assert 0 < share < 1
    assert float(matched.get_attribute("data-all")) == pytest.approx(share, abs=1e-12)
    # The page rounds as JavaScript's toFixed(2) does, which can differ from
    # Python's format in the last digit on a value that ends in 5.
    shown = re.search(r"([\d.]+)% of samples", matched.text_content())
    assert shown and abs(float(shown.group(1)) - 100 * share) <= 0.005 + 1e-9
    clicked = page.click_frame("NumpyGemm._update_mini_batch")
    within = matched_share(stacks, pattern, text_path(frames, clicked["path"]))
    assert float(matched.get_attribute("data-zoomed")) == pytest.approx(within, abs=1e-12)
    reopened = Page(browser, page.page.url)  # the view travels in the address
    assert reopened.page.locator("#search").evaluate("e => e.value") == pattern
    again = {f["path"]: f for f in reopened.frames()}
    assert again[clicked["path"]]["w"] == pytest.approx(1300 - 40)
    assert page.errors == [] and reopened.errors == []


def test_hover_names_the_frame_and_its_figures(browser, profiled):
    path, url = python_view(profiled, "numpy-per-sample")
    stacks = folded(path)
    page = Page(browser, url)
    frame = next(f for f in page.frames() if f["text"].startswith("NumpyPerSample._backprop"))
    page.page.locator(f'g.f[data-path="{frame["path"]}"]').hover()
    page.shot("hover")
    details = page.page.locator("#details").text_content()
    prefix = text_path(page.frames(), frame["path"])
    samples = sum(n for s, n in stacks.items() if s[:len(prefix)] == prefix)
    share = samples / sum(stacks.values())
    for part in ("NumpyPerSample._backprop", "backends/numpy_per_sample.py", "interpreter",
                 f"{samples} samples", f"{100 * share:.2f}% of all", " s"):
        assert part in details


def test_the_viewer_is_fluid_and_turns_into_an_icicle(browser, profiled):
    svg = flamegraph(profiled)
    page = Page(browser, svg.as_uri(), width=900)
    root = next(f for f in page.frames() if f["path"] == "")
    assert root["w"] == pytest.approx(900 - 40)
    page.page.set_viewport_size({"width": 1500, "height": 900})
    page.page.wait_for_timeout(100)
    wide = page.frames()
    assert next(f for f in wide if f["path"] == "")["w"] == pytest.approx(1500 - 40)
    assert next(f for f in wide if f["path"] == "")["y"] == max(f["y"] for f in wide)
    page.page.locator("#orient").click()
    icicle = page.frames()
    assert next(f for f in icicle if f["path"] == "")["y"] == min(f["y"] for f in icicle)
    page.page.locator("button.view", has_text="start-up").click()
    assert "view=startup" in page.page.url
    assert any("numpy" in f["text"] for f in page.frames())  # the imports
    assert page.errors == []


def test_a_diff_marks_the_function_that_got_slower(browser, tmp_path, monkeypatch, capsys):
    if pyspy.locate() is None:
        pytest.skip("py-spy is not installed")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), str(ROOT / "tests")]))
    runs = []
    for cls in ("GemmWithStep", "GemmWithSlowerStep"):
        monkeypatch.setenv("NNDL_BENCH_PLUGINS", f"gemm-step=fake_backends:{cls}")
        config = RunConfig(backends=("gemm-step",), epochs=1, warmup_epochs=1,
                           dataset="mnist-sample", n_train=1000, peak_seconds=0,
                           results_dir=tmp_path / "results")
        result = execute(config, profile=ProfileSettings(out_dir=tmp_path / "flamegraphs",
                                                         min_samples=500))
        if result.profile.unavailable:
            pytest.skip(f"py-spy cannot profile here: {result.profile.unavailable}")
        assert result.exit_code == 0 and not result.profile.failed, result.profile.notes
        runs.append(result.run_dir)
    out = tmp_path / "diff"
    assert main(["compare", str(runs[0]), str(runs[1]), "--flamegraph-diff", str(out)]) == 0
    assert (out / "gemm-step.diff.svg").as_uri() in capsys.readouterr().err
    view = "#view=python" if result.profile.sampler == PERF_SAMPLER else ""
    page = Page(browser, (out / "gemm-step.diff.svg").as_uri() + view)
    step = [f for f in page.frames() if "bookkeeping_step" in f["text"]]
    assert step and all("grew" in f["cls"].split() for f in step)
    widest = max(step, key=lambda f: f["w"])
    page.page.locator(f'g.f[data-path="{widest["path"]}"]').hover()
    page.shot("diff")
    details = page.page.locator("#details").text_content()
    assert "bookkeeping_step" in details and "baseline" in details and "-> current" in details
    before, after = (float(x) for x in re.search(r"baseline ([\d.]+)% -> current ([\d.]+)%",
                                                 details).groups())
    assert after > before
    assert page.errors == []


def test_a_sweep_report_links_every_cell_to_its_run_report(browser, tmp_path):
    from harness.running.sweep import Grid, run_sweep

    base = RunConfig(backends=("numpy-gemm", "numpy-per-sample"), epochs=1, warmup_epochs=0,
                     dataset="mnist-sample", n_train=500, results_dir=tmp_path, peak_seconds=0)
    cells = Grid(batch_sizes=(10, 100), sizes=((784, 30, 10),), dtypes=("float64",)).cells(base)
    result = run_sweep(cells, budget=60)
    assert result.exit_code == 0
    report = draw_sweep(result.sweep_dir, result.frame, result.winners)
    page = Page(browser, report.resolve().as_uri())
    page.shot("sweep")
    links = page.page.eval_on_selector_all("#winners-table a", "as => as.map(a => a.href)")
    assert len(links) == 2
    for run in result.runs:
        assert (result.sweep_dir / run.run_dir / "index.html").resolve().as_uri() in links
    assert page.page.eval_on_selector_all(
        "img", "is => is.map(i => i.complete && i.naturalWidth > 0)") == [True] * 3
    page.page.locator("#winners-table a").first.click()
    page.page.wait_for_load_state()
    assert page.page.locator("h1").text_content().startswith("nndl-bench run ")
    assert page.errors == []
