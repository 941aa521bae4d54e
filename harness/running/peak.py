"""The machine's practical floating-point peak: what the best GEMM at hand
reaches on a large matmul.

Backends' GFLOP/s are reported as a share of this figure. NumPy's BLAS is
always measured; where JAX is installed, XLA's GEMM is measured too, in a
process of its own (the harness never imports a peer's library itself), and
the faster of the two is the peak. One BLAS is not enough: on an AMD EPYC
(Zen 5) NumPy's OpenBLAS runs its AVX2 "Haswell" kernels, 106 GFLOP/s on two
cores in float64, where XLA's AVX-512 code reached 169, so a share of
OpenBLAS's figure would flatter every backend by 1.6x. The matmul is
square, of order 1536: on a 2-core EPYC with OpenBLAS, order 1024 on two
threads reached only half the plateau that 1536 and 2048 both reach, and 1536
still repeats several times a second. The best repetition is taken, since on
a shared machine interference only ever slows a run down.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

GEMM_ORDER = 1536
MIN_REPEATS = 3


def measure_gemm_peak(
    dtype: str, threads: int | None, seconds: float = 1.0, order: int = GEMM_ORDER
) -> float:
    """GFLOP/s of the best of several ``order`` x ``order`` matmuls in ``dtype``
    (2 order^3 operations each), run for about ``seconds`` after one warm-up,
    with BLAS limited to ``threads`` threads (None: all cores)."""
    return gflops(min(gemm_repeats(dtype, threads, seconds, order)), order)


def gflops(seconds: float, order: int = GEMM_ORDER) -> float:
    """GFLOP/s of one ``order`` x ``order`` matmul (2 order^3 operations) in ``seconds``."""
    return 2 * order**3 / seconds / 1e9


def gemm_repeats(
    dtype: str, threads: int | None, seconds: float = 1.0, order: int = GEMM_ORDER
) -> list[float]:
    """Seconds of each of several ``order`` x ``order`` matmuls, as
    :func:`measure_gemm_peak` runs them."""
    rng = np.random.default_rng(0)
    a = rng.random((order, order)).astype(dtype)
    b = rng.random((order, order)).astype(dtype)
    out = np.empty_like(a)
    with threadpool_limits(threads or os.cpu_count(), user_api="blas"):
        np.matmul(a, b, out=out)  # the warm-up: thread start, page faults, caches
        repeats, deadline = [], time.perf_counter() + seconds
        while len(repeats) < MIN_REPEATS or time.perf_counter() < deadline:
            start = time.perf_counter()
            np.matmul(a, b, out=out)
            repeats.append(time.perf_counter() - start)
    return repeats


# Importing jax and compiling the matmul take a few seconds; past this, no figure.
XLA_TIMEOUT = 60.0


def measure_xla_peak(dtype: str, seconds: float = 1.0, order: int = GEMM_ORDER) -> float | None:
    """As :func:`measure_gemm_peak` on all cores, with JAX's jitted matmul, in a
    child process; None where JAX is not installed or the child fails."""
    if importlib.util.find_spec("jax") is None:
        return None
    env = dict(os.environ, JAX_PLATFORMS="cpu", JAX_ENABLE_X64="1")
    argv = [sys.executable, "-m", __name__, "xla", dtype, str(seconds), str(order)]
    try:
        done = subprocess.run(argv, env=env, capture_output=True, text=True,
                              timeout=XLA_TIMEOUT + seconds)
        return float(json.loads(done.stdout.strip().splitlines()[-1])) if done.returncode == 0 \
            else None
    except (subprocess.TimeoutExpired, ValueError, IndexError, OSError):
        return None


def _xla_child(dtype: str, seconds: float, order: int) -> float:
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(0)
    a, b = (jnp.asarray(rng.random((order, order)).astype(dtype)) for _ in range(2))
    matmul = jax.jit(jnp.matmul)
    matmul(a, b).block_until_ready()  # compiles
    best, repeats, deadline = float("inf"), 0, time.perf_counter() + seconds
    while repeats < MIN_REPEATS or time.perf_counter() < deadline:
        start = time.perf_counter()
        matmul(a, b).block_until_ready()
        best = min(best, time.perf_counter() - start)
        repeats += 1
    return gflops(best, order)


# A run whose all-core GEMM median falls below this share of its best repeat
# "may be unstable": a core was not wholly the run's. The repeats are all the same
# work, so a steady machine sustains nearly its best: the Xeon keyed
# intel-xeon-processor-f6m207-2cpu-openblas-skylakex sustained 0.96 and 0.99 of it
# in two of its committed runs (docs/findings/), 0.75 in the third.
UNSTABLE_GEMM_SHARE = 0.75


def instability(gemm_peak: dict | None) -> str | None:
    """Why the cores may not have been the run's, from run.json's ``gemm_peak``, or None.
    The median repeat is BLAS's, so it is held against BLAS's own best repeat: the
    peak itself may be XLA's, another library at another speed."""
    gemm_peak = gemm_peak or {}
    best = ((gemm_peak.get("by_library") or {}).get("blas") or {}).get("all") \
        or gemm_peak.get("gemm_peak_gflops_all")
    median = gemm_peak.get("gemm_median_gflops_all")
    if not best or not median or median >= UNSTABLE_GEMM_SHARE * best:
        return None
    return (f"all-core GEMM median {median:.1f} GFLOP/s is {median / best:.0%} of its best "
            f"{best:.1f} (< {UNSTABLE_GEMM_SHARE:.0%}): the cores were not wholly the run's")


def calibrate(dtype: str, seconds: float = 1.0, libraries: tuple[str, ...] = ("blas", "xla"),
              ) -> dict:
    """The GEMM peak on one thread and on all cores, ``seconds`` for each and each
    library: the best of NumPy's BLAS and (where installed, on all cores) XLA,
    with every library's figures under ``by_library`` and the one that set each
    peak, and ``gemm_median_gflops_all``, BLAS's median repeat on all cores
    (None without BLAS)."""
    by_library = {}
    median_all = None
    if "blas" in libraries:
        one, every = (gemm_repeats(dtype, n, seconds) for n in (1, None))
        by_library["blas"] = {"1thread": gflops(min(one)), "all": gflops(min(every))}
        median_all = gflops(float(np.median(every)))
    # XLA on all cores only: its thread count is fixed when it starts, and a second
    # child for one thread would cost the run another few seconds.
    xla = measure_xla_peak(dtype, seconds) if "xla" in libraries else None
    if xla is not None:
        by_library["xla"] = {"all": xla}
    result = {"threads_all": os.cpu_count(), "dtype": dtype, "by_library": by_library}
    for key in ("1thread", "all"):
        library = max((name for name in by_library if key in by_library[name]),
                      key=lambda name: by_library[name][key])
        result[f"gemm_peak_gflops_{key}"] = by_library[library][key]
        result[f"library_{key}"] = library
    # The peak is the best repeat, since interference only slows a repeat down;
    # the median says how much of it the cores sustained while it was measured.
    # Well below the peak, a core was not wholly the run's (another tenant on
    # the host), and every two-thread backend's share of the peak suffers too.
    result["gemm_median_gflops_all"] = median_all
    return result


if __name__ == "__main__" and sys.argv[1:2] == ["xla"]:  # measure_xla_peak's child
    print(json.dumps(_xla_child(sys.argv[2], float(sys.argv[3]), int(sys.argv[4]))))
