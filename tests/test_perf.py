"""perf as the native sampler: its output parsed, and real recordings of every
thread named as the libraries' symbol tables say, even where py-spy cannot."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from harness.profiling import perf

FIXTURES = Path(__file__).parent / "fixtures"

SCRIPT_OUTPUT = """\
python  4242   357.241201123:{space}
\t          ccbe78 dgemm_small_kernel_b0_nn_SKYLAKEX (/venv/numpy.libs/libscipy_openblas64_.so)
\t          114367 DOUBLE_matmul_matrixmatrix.isra.0 (/venv/numpy/_core/_multiarray_umath.so)
\t          1f7da [unknown] (/usr/lib/x86_64-linux-gnu/libgomp.so.1.0.0)
\t          13b2c8 std::vector<long, std::allocator<long> >::push_back(long const&) (/lib/libfoo.so)
\tffffffffffffffff [unknown] ([unknown])

XLA Eigen pool  4250   357.242156000:{space}
\t    7f61db59c152 [unknown] (/tmp/perf-4242.map)
\t          891f4 start_thread (/usr/lib/x86_64-linux-gnu/libc.so.6)

""".format(space=" ")  # perf ends a sample's first line with a space


def test_script_output_is_parsed_into_samples_outermost_frame_first():
    first, second = perf.parse(SCRIPT_OUTPUT)
    assert (first.tid, first.comm, first.time_ns) == (4242, "python", 357_241_201_123)
    assert first.frames[-1] == perf.NativeFrame("dgemm_small_kernel_b0_nn_SKYLAKEX",
                                                "/venv/numpy.libs/libscipy_openblas64_.so")
    assert first.frames[0].unknown and first.frames[0].dso == "[unknown]"
    push_back = "std::vector<long, std::allocator<long> >::push_back(long const&)"
    assert first.frames[1].symbol == push_back
    assert (second.tid, second.comm) == (4250, "XLA Eigen pool")
    assert [f.symbol for f in second.frames] == ["start_thread", "[unknown]"]


def test_a_missing_perf_is_a_reason_with_the_package_to_install():
    assert "linux-perf" in perf.unavailable(None)


def _need_perf() -> str:
    found = perf.locate()
    reason = perf.unavailable(found)
    if reason:
        pytest.skip(reason)
    return found


def _record(command: list[str], seconds: float, tmp_path: Path) -> list[perf.Sample]:
    """perf attached to ``command`` once it prints its first line, for ``seconds``."""
    found = _need_perf()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        child.stdout.readline()  # ready: its libraries are loaded
        recording = perf.Recording(found, child.pid, 1000, tmp_path / "perf.data")
        time.sleep(seconds)
        recording.stop()
    finally:
        child.kill()
        child.wait()
    return list(perf.parse(perf.script(found, tmp_path / "perf.data")))


GEMM_LOOP = """\
import numpy as np
a, b = np.random.rand(30, 784), np.random.rand(784, 10)
print("ready", flush=True)
while True:
    c = a @ b
"""


def test_a_numpy_gemm_loop_lands_in_gemm_kernels(tmp_path):
    samples = _record([sys.executable, "-c", GEMM_LOOP], 1.5, tmp_path)
    blas = Counter(s.frames[-1].symbol for s in samples
                   if s.frames and "openblas" in s.frames[-1].dso)
    assert sum(blas.values()) > 50, blas
    in_gemm = sum(n for name, n in blas.items() if "gemm" in name)
    assert in_gemm / sum(blas.values()) >= 0.9, blas
    assert not any(re.search(r"sgetf2|idamax|ddot", name) for name in blas), blas


def test_a_library_with_two_executable_segments_is_named_right(tmp_path):
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        pytest.skip("no C compiler to build the library")
    library = tmp_path / "libtwo.so"
    subprocess.run([gcc, "-O1", "-shared", "-fPIC", "-o", str(library),
                    str(FIXTURES / "two_segments.c"),
                    "-Wl,--section-start=nndl_second=0x200000"], check=True)
    segments = subprocess.run(["readelf", "-lW", str(library)], capture_output=True,
                              text=True, check=True).stdout
    assert len(re.findall(r"LOAD .* R E ", segments)) == 2, segments
    program = (f"import ctypes\nlib = ctypes.CDLL({str(library)!r})\nprint('ready', flush=True)\n"
               "while True:\n    lib.spin_second(ctypes.c_long(200000))\n")
    samples = _record([sys.executable, "-c", program], 1.0, tmp_path)
    leaves = Counter(s.frames[-1].symbol for s in samples
                     if s.frames and s.frames[-1].dso == str(library))
    assert leaves and set(leaves) == {"spin_second"}, leaves


THREADED = """\
import threading
def spin():
    while True:
        pass
threading.Thread(target=spin, daemon=True).start()
print("ready", flush=True)
while True:
    pass
"""


def test_every_thread_is_sampled(tmp_path):
    samples = _record([sys.executable, "-c", THREADED], 1.0, tmp_path)
    assert len({s.tid for s in samples}) >= 2
