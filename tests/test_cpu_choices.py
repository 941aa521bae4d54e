"""The Rust kernels' choices follow the CPU they run on, not the one they were
built or tuned on.

Each test runs the same built extension inside QEMU's user-mode emulator
(Debian's qemu-user), which presents the program with another CPU's CPUID: a
Haswell (AVX2 and FMA, no AVX-512) and a Sandy Bridge (AVX, without AVX2 or
FMA). The trainers must pick the instruction set that CPU has, say so in
``choices()``, and still train to the reference's numbers, computed natively
here. The child does no BLAS call (at batch 10 it times and runs the sweep and
the tiles, never a GEMM): under the emulator, OpenBLAS's own detection picks
its Haswell kernels even for the Sandy Bridge, and they fault there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import backends
from backends.base import init_params
from backends.rust_extension import MODULE

pytest.importorskip(MODULE)
QEMU = shutil.which("qemu-x86_64")
pytestmark = pytest.mark.skipif(QEMU is None, reason="qemu-x86_64 (Debian's qemu-user) is absent")
ROOT = Path(__file__).resolve().parents[1]

# What each emulated CPU offers, and what the kernels must then pick.
EXPECTED = {
    "Haswell": {"isa": "avx2+fma", "lanes": {"float64": 4, "float32": 8}},
    "SandyBridge": {"isa": "x86-64", "lanes": {"float64": 1, "float32": 1}},
}
SIZES, SEED, SAMPLES, BATCH, ETA = [784, 30, 10], 4, 60, 10, 3.0

# Run under the emulator: train each kernel one epoch, print choices and parameters.
CHILD = """
import json, sys
import numpy as np
import backends
from backends.base import init_params
import nndl_bench_rust

rng = np.random.default_rng(8)
X, y = rng.random((SAMPLES, 784)), rng.integers(0, 10, SAMPLES)
order = rng.permutation(SAMPLES)
out = {"isa_supported": nndl_bench_rust.build_info()["isa_supported"], "runs": []}
for name in ("rust-fused", "rust-fused-parallel"):
    for dtype in ("float64", "float32"):
        kw = {"threads": 2} if name == "rust-fused-parallel" else {}
        trainer = backends.create(name, init_params(SIZES, seed=SEED), dtype, **kw)
        trainer.train_epoch(X.astype(dtype), y, order, BATCH, ETA)
        p = trainer.params()
        flat = np.concatenate([a.ravel() for a in p.weights + p.biases]).astype(float)
        out["runs"].append({"backend": name, "dtype": dtype, "choices": trainer.choices(BATCH),
                            "params": flat.tolist()})
print(json.dumps(out))
"""


def _emulated(cpu: str) -> dict:
    script = (f"SAMPLES, SIZES, SEED, BATCH, ETA = {SAMPLES}, {SIZES}, {SEED}, {BATCH}, {ETA}\n"
              + CHILD)
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = dict(os.environ, PYTHONPATH=path)
    done = subprocess.run([QEMU, "-cpu", cpu, sys.executable, "-c", script], env=env,
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _reference() -> np.ndarray:
    rng = np.random.default_rng(8)
    X, y = rng.random((SAMPLES, 784)), rng.integers(0, 10, SAMPLES)
    order = rng.permutation(SAMPLES)
    ref = backends.create(backends.REFERENCE, init_params(SIZES, seed=SEED), "float64")
    ref.train_epoch(X, y, order, BATCH, ETA)
    p = ref.params()
    return np.concatenate([a.ravel() for a in p.weights + p.biases])


@pytest.mark.parametrize("cpu", sorted(EXPECTED))
def test_the_kernels_pick_what_the_emulated_cpu_offers_and_train_the_same(cpu):
    result = _emulated(cpu)
    expected = EXPECTED[cpu]
    assert result["isa_supported"][0] == expected["isa"]  # the widest it reports, first
    assert "avx512" not in result["isa_supported"]
    want = _reference()
    for run in result["runs"]:
        chosen = run["choices"]
        assert chosen["isa"] == expected["isa"], run["backend"]
        assert chosen["lanes"] == expected["lanes"][run["dtype"]], run["backend"]
        got = np.asarray(run["params"])
        tolerance = 1e-9 if run["dtype"] == "float64" else 1e-3
        assert np.max(np.abs(got - want)) <= tolerance * np.max(np.abs(want)), \
            (cpu, run["backend"], run["dtype"])
