"""harness/running/machine.py: what a run records of the machine it ran on."""

from __future__ import annotations

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
