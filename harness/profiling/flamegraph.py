"""A backend's flamegraph files, from the phases py-spy recorded: the views the
viewer shows, what each frame is, and the differential graph of two runs.

The viewer (``harness.profiling.flameview``) is written here rather than taken
from elsewhere: flamegraph.pl and inferno draw the stacks py-spy recorded
before the post-processing that merges Numba's bare addresses, and their
licence keeps their code out. Three views of one process, each in whole
samples of a single sampling rate, so that a frame's width is its time:

- ``training``: the profiled epochs' samples inside ``train_epoch``, drawn from
  ``train_epoch`` down (the frames above it are the same for every sample);
- ``epochs``: the whole profiled phase, the loop around ``train_epoch`` too;
- ``startup``: start-up, imports, data and warm-up (JIT compilation), sampled
  at a lower rate.

Files, per backend, in a run's flamegraph folder: ``<backend>.svg`` (the viewer,
training first) at the top, the one file a reader opens; and, for other tools,
under ``stacks/<backend>/``: ``<backend>.folded`` with ``<backend>.python.folded``,
``<backend>.epochs.folded`` and ``<backend>.startup.folded`` (the stacks of each
view, integer counts), ``<backend>.speedscope.json`` (the views as speedscope
profiles), and py-spy's raw ``<backend>.txt`` and ``<backend>.startup.txt``
(written by ``harness.profiling.profile``). The files keep the backend's name
there too, so that one copied out, or opened in speedscope, still says whose
it is. Folders written before ``stacks/`` held every file side by side at the
top; they are read as they are.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from harness import storage
from harness.profiling import classify, native, pyspy
from harness.profiling.classify import CALLER, Frame, Stack
from harness.profiling.flameview import FrameInfo, View, build_svg, folded, speedscope

TRAINING = "train_epoch"
STACKS_DIR = "stacks"  # <flamegraph folder>/stacks/<backend>/: the stacks for other tools
# view name -> (file suffix, button label, what it holds)
VIEWS = {
    "training": ("", "training", "the profiled epochs inside train_epoch"),
    "python": (".python", "Python functions",
               "the main thread's Python functions in the profiled epochs (py-spy)"),
    "epochs": (".epochs", "profiled phase", "the whole phase of the profiled epochs"),
    "startup": (".startup", "start-up and warm-up",
                "imports, data loading, warm-up epochs and JIT compilation"),
}


def frame_info(names: Iterable[str]) -> dict[str, FrameInfo]:
    """Function, library and category of every frame: the category of the first
    rule that matches the frame alone (``caller`` for C runtime helpers)."""
    out = {}
    for text in names:
        frame = Frame.parse(text)
        rule = next((r for r in native.RULES if r.matches(frame)), None)
        category = "other" if rule is None else rule.category
        out[text] = FrameInfo(frame.name, frame.library, "caller" if category == CALLER
                              else category)
    return out


def processed(phases: Sequence[pyspy.Phase]) -> list[Counter[Stack]]:
    """Each phase's stacks with Numba's addresses merged, the C entry point
    dropped and the handshake's waits left out."""
    parsed = [classify.parse_collapsed(p.collapsed) for p in phases]
    label = classify.jit_label(s for stacks in parsed for s in stacks)
    return [Counter({s: n for s, n in classify.drop_entry(classify.collapse_jit(p, label)).items()
                     if not any(Frame.parse(f).function == pyspy.WAIT_FRAME for f in s)})
            for p in parsed]


def from_training(stacks: Mapping[Stack, int], within: Sequence[str]) -> Counter[Stack]:
    """The stacks through ``within``, each cut to start at its first ``train_epoch``."""
    out: Counter[Stack] = Counter()
    for stack, n in stacks.items():
        if classify.passes_through(stack, within):
            names = [Frame.parse(f).function for f in stack]
            out[stack[names.index(TRAINING):]] += n
    return out


def views(phases: Sequence[pyspy.Phase], within: Sequence[str]) -> list[View]:
    """The training, profiled-phase and start-up views of a two-phase profile that
    py-spy alone sampled, native frames and all."""
    startup, epochs = processed(phases)
    seconds = [_seconds_per_sample(p) for p in phases]
    stacks = {"training": (from_training(epochs, within), seconds[1]),
              "epochs": (epochs, seconds[1]), "startup": (startup, seconds[0])}
    return [View(name, VIEWS[name][1], *stacks[name], description=VIEWS[name][2])
            for name in VIEWS if name in stacks]


def native_views(phases: Sequence[pyspy.Phase], training: Counter[Stack],
                 phase: Counter[Stack], within: Sequence[str], rate: int) -> list[View]:
    """The views of a profile whose epochs perf sampled on every thread: its
    training (CPU time, a frame per thread pool under train_epoch) first, then
    py-spy's Python frames of the same epochs, perf's whole phase, py-spy's start-up."""
    startup, epochs = processed(phases)
    per_sample = 1 / rate  # cpu-clock: one sample per 1/rate s of a thread's CPU time
    stacks = {"training": (from_training(training, within), per_sample),
              "python": (from_training(epochs, within), _seconds_per_sample(phases[1])),
              "epochs": (phase, per_sample),
              "startup": (startup, _seconds_per_sample(phases[0]))}
    descriptions = {**{name: VIEWS[name][2] for name in VIEWS},
                    "training": "CPU time of every thread in the profiled epochs (perf), "
                                "a frame for each pool of threads",
                    "epochs": "CPU time of every thread in the whole phase of the profiled "
                              "epochs (perf)"}
    return [View(name, VIEWS[name][1], *stacks[name], description=descriptions[name])
            for name in VIEWS if stacks[name][0]]


def _seconds_per_sample(phase: pyspy.Phase) -> float | None:
    total = sum(classify.parse_collapsed(phase.collapsed).values())
    return phase.seconds / total if total else None


def stacks_dir(folder: Path, backend: str) -> Path:
    """Where the stacks of ``backend`` are written: ``folder/stacks/<backend>/``."""
    return folder / STACKS_DIR / backend


def _stacks_of(folder: Path, backend: str) -> Path:
    """Where the stacks of ``backend`` are read from: its stacks folder, or ``folder``
    itself for a run written before the stacks had folders of their own."""
    nested = stacks_dir(folder, backend)
    return nested if nested.is_dir() else folder


def write(folder: Path, backend: str, shown: Sequence[View], title: str,
          subtitle: str) -> Path:
    """Write the SVG into ``folder``, the .folded files and the speedscope JSON into
    the backend's stacks folder; the SVG's path."""
    stacks = stacks_dir(folder, backend)
    for view in shown:
        storage.write_atomic(stacks / f"{backend}{VIEWS[view.name][0]}.folded",
                            folded(view.stacks))
    storage.write_atomic(stacks / f"{backend}.speedscope.json", speedscope(shown, title))
    names = {f for v in shown for s in v.stacks for f in s}
    svg = folder / f"{backend}.svg"
    storage.write_atomic(svg, build_svg(shown, frame_info(names), title, subtitle))
    return svg


def read_views(folder: Path, backend: str) -> dict[str, Counter[Stack]]:
    """The views of ``backend`` whose .folded files are in ``folder`` (either layout)."""
    out = {}
    for name, (suffix, _, _) in VIEWS.items():
        path = _stacks_of(folder, backend) / f"{backend}{suffix}.folded"
        if path.is_file():
            out[name] = classify.parse_collapsed(path.read_text())
    return out


def profiled_backends(folder: Path) -> list[str]:
    """The backends with a training view in ``folder``: under ``stacks/``, or at the
    top in a folder written before it."""
    nested = {p.parent.name for p in folder.glob(f"{STACKS_DIR}/*/*.folded")
              if p.name == f"{p.parent.name}.folded"}
    suffixes = tuple(f"{s}.folded" for s, _, _ in VIEWS.values() if s)
    flat = {p.name.removesuffix(".folded") for p in folder.glob("*.folded")
            if not p.name.endswith(suffixes)}
    return sorted(nested | flat)


def flamegraph_folder(run_dir: Path, meta: Mapping) -> Path | None:
    """Where a run's flamegraphs are: as run.json says (relative to the working
    folder or to the results folder's parent), or the run folder itself."""
    recorded = meta.get("flamegraphs")
    candidates = [Path(recorded), run_dir.parent.parent / recorded] if recorded else []
    for folder in [*candidates, run_dir]:
        if folder.is_dir() and profiled_backends(folder):
            return folder
    return None


def _without_addresses(views: Mapping[str, Counter[Stack]]) -> dict[str, Counter[Stack]]:
    """Bare addresses named by library alone: they move between processes (address
    space layout randomisation), so the same code would not match itself."""
    def name(text: str) -> str:
        frame = Frame.parse(text)
        bare = re.match(r"^0x[0-9a-f]+$", frame.name)
        return f"{classify.UNSYMBOLISED} ({frame.library})" if bare else text

    out = {}
    for view, stacks in views.items():
        out[view] = Counter()
        for stack, n in stacks.items():
            out[view][tuple(name(f) for f in stack)] += n
    return out


def write_diff(baseline: Path, current: Path, out_dir: Path) -> list[Path]:
    """``out_dir/<backend>.diff.svg`` for every backend profiled in both folders."""
    written = []
    for backend in sorted(set(profiled_backends(baseline)) & set(profiled_backends(current))):
        before, after = (_without_addresses(read_views(folder, backend))
                         for folder in (baseline, current))
        shown = [View(name, VIEWS[name][1], after[name], description=VIEWS[name][2],
                      baseline=before[name]) for name in VIEWS if name in before and name in after]
        names = {f for v in shown for stacks in (v.stacks, v.baseline) for s in stacks for f in s}
        title = (f"{backend}: change in share of samples, {baseline.name} -> {current.name}")
        subtitle = ("the current profile's shape; red: a larger share of samples than in the "
                    "baseline, blue: smaller; hover for both")
        path = out_dir / f"{backend}.diff.svg"
        storage.write_atomic(path, build_svg(shown, frame_info(names), title, subtitle))
        written.append(path)
    return written

