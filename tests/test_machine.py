"""harness/running/machine.py: what a run records of the machine it ran on."""

from __future__ import annotations

import importlib.util
import os
import re

from harness.running import machine


def machine_key_prefix(cpu_model: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", cpu_model.lower().replace("(r)", "")).strip("-")


def test_the_machine_key_names_the_cpu_and_the_blas_kernels():
    blas = [{"user_api": "blas", "internal_api": "openblas", "architecture": "Haswell"},
            {"user_api": "openmp", "internal_api": "openmp", "architecture": None}]
    key = machine.machine_key(blas)
    assert key.startswith(machine_key_prefix(machine.cpu_model()))
    assert key.endswith(f"-{os.cpu_count()}cpu-openblas-haswell")
    assert re.fullmatch(r"[a-z0-9-]+", key)
    identity = machine.cpu_identity()
    if identity:  # Linux: /proc/cpuinfo's family and model tell CPUs of one name apart
        assert f"-f{identity['family']}m{identity['model']}-" in key


def test_a_run_records_its_machine_key_beside_the_blas_it_was_made_from():
    meta = machine.metadata()
    assert meta["machine_key"] == machine.machine_key(meta["blas"])
    assert meta["cpu"] == machine.cpu_identity()


def test_the_key_is_numpys_blas_alone_even_beside_another_the_extension_links():
    numpys = {"user_api": "blas", "internal_api": "openblas", "architecture": "SkylakeX",
              "used_by": ["numpy"]}
    rusts = {**numpys, "architecture": "Prescott", "used_by": ["nndl_bench_rust"]}
    assert machine.machine_key([numpys, rusts]) == machine.machine_key([numpys])
    assert machine.machine_key([numpys]).endswith("-openblas-skylakex")


def test_every_blas_in_the_process_is_recorded_with_its_file_version_kernels_and_users():
    blas = [p for p in machine.metadata()["blas"] if p["user_api"] == "blas"]
    assert blas, "NumPy's BLAS is loaded and found"
    for pool in blas:
        assert os.path.isfile(pool["filepath"]), pool
        assert pool["version"] and pool["architecture"], pool
        assert set(pool["used_by"]) <= {"numpy", "nndl_bench_rust"}, pool
    # the loader's answer for NumPy's core names one of the libraries threadpoolctl found
    numpys = [p for p in blas if "numpy" in p["used_by"]]
    assert len(numpys) == 1, blas
    if importlib.util.find_spec("nndl_bench_rust"):  # built: it links NumPy's very file
        # (other BLAS libraries may be loaded beside it: SciPy's, by Numba's np.dot)
        assert [p["used_by"] for p in blas if p["used_by"]] == [["numpy", "nndl_bench_rust"]]


def test_a_file_that_calls_no_blas_has_none():
    assert machine._blas_file(None) is None
    assert machine._blas_file("/nonexistent/libnothing.so") is None
