# Two entry points that set themselves up: `make run` and `make test`.
# Both create .venv on first use and reinstall only when pyproject.toml changes;
# `make test` runs ruff, the performance gate (.ci/benchmark-gate), then the tests.
# Where cargo is on PATH both also build the Rust extension (rust/) into the venv,
# again only when its sources change, and `make test` runs its `cargo test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build of PyTorch: the default build on PyPI for Linux carries CUDA (several GB).
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
RUN_ARGS ?= --backend all
CARGO ?= cargo
RUST_SOURCES := rust/Cargo.toml rust/Cargo.lock rust/build.rs rust/pyproject.toml $(wildcard rust/src/*.rs rust/src/*/*.rs rust/src/*/*/*.rs)
RUST_WHEELS := rust/target/wheels
HAVE_CARGO := $(shell command -v $(CARGO) 2>/dev/null)

.PHONY: run test lint clean rust rust-test figures findings perf

# perf samples every thread of a profiled backend (Debian's linux-perf): installed
# here where it is missing and apt-get can (as root); otherwise the run profiles
# with py-spy alone and says so.
perf:
	@command -v perf >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& apt-get update -qq && apt-get install -y -qq linux-perf >/dev/null; } \
		|| echo "note: perf not found: profiles sample the main thread only (apt-get install linux-perf)"

run: $(VENV)/.installed rust perf
	$(PY) -m harness run $(RUN_ARGS)

# ruff, then the gate, then pytest, so that pytest's summary is the last line printed;
# every step runs whatever the one before it said, and the first failure decides the exit.
# pytest runs a worker per core (pytest-xdist), each taking the next test when it is
# done: most tests start processes and wait on them, and each holds on a loaded machine.
PYTEST_ARGS ?= -n auto --dist worksteal
test: $(VENV)/.installed rust rust-test
	@$(PY) -m ruff check backends harness tests; lint=$$?; \
	PYTHON=$(PY) bash .ci/benchmark-gate; gate=$$?; \
	$(PY) -m pytest $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests"; status=0; fi; \
	if [ $$lint -ne 0 ]; then echo "ruff found problems (exit $$lint)"; exit $$lint; fi; \
	if [ $$gate -ne 0 ]; then echo "performance gate failed (exit $$gate)"; exit $$gate; fi; \
	exit $$status

ifeq ($(HAVE_CARGO),)
rust rust-test:
	@echo "note: cargo not found: the rust-* backends are left out (install Rust, then make rust)"
else
rust: $(VENV)/.rust

# PYO3_PYTHON: the venv's Python, whose NumPy's OpenBLAS rust/build.rs links.
rust-test: | $(VENV)/.installed
	PYO3_PYTHON=$(abspath $(PY)) $(CARGO) test --quiet --manifest-path rust/Cargo.toml
endif

# The extension as a wheel for this venv's Python, linked to the OpenBLAS that
# this venv's NumPy bundles (rust/build.rs finds it; not copied into the wheel:
# --auditwheel skip), so that the two share it; a failed build fails make. It is
# built again whenever the venv is: a new NumPy brings its OpenBLAS under a new name.
$(VENV)/.rust: $(RUST_SOURCES) $(VENV)/.installed
	rm -rf $(RUST_WHEELS)
	$(VENV)/bin/maturin build --quiet --release --compatibility linux --auditwheel skip \
		-m rust/Cargo.toml -o $(RUST_WHEELS) -i $(PY)
	$(PY) -m pip install --quiet --force-reinstall --no-deps $(RUST_WHEELS)/*.whl
	touch $@

lint: $(VENV)/.installed
	$(PY) -m ruff check backends harness tests

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Everything, peers, Dask and test tools included: `run` compares PyTorch and JAX too.
# torch comes first and alone (its dependencies follow from the usual index in
# the next step), as its CPU build where one can be had: a wheel in pip's
# configured find-links, then the CPU index, tried once and briefly; otherwise
# the usual index's default Linux build, which carries CUDA (about 3 GB with
# its libraries) and runs on the CPU all the same.
$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet --no-deps --no-index "$(TORCH_SPEC)" 2>/dev/null \
		|| $(PY) -m pip install --quiet --no-deps --retries 0 --timeout 10 \
			--index-url $(TORCH_INDEX) "$(TORCH_SPEC)" 2>/dev/null \
		|| { echo "note: no CPU build of $(TORCH_SPEC) in reach; installing the default build"; \
			$(PY) -m pip install --quiet --no-deps "$(TORCH_SPEC)"; }
	$(PY) -m pip install --quiet -e ".[test,peers,dev,build,cluster]"
	touch $@

# The committed figures: the README's sweep on this kind of machine, its winner
# map and table filed under the machine's key in docs/findings/<key>/, and the
# findings pages written again from the data there. Long: about half an hour on 2 cores.
FIGURE_SWEEP ?= --backend rust-fused,rust-fused-parallel,numba,numba-parallel,numba-tiles,numpy-gemm,torch,torch-compile,jax \
	--dataset synthetic --n-train 50000 --sizes 784,30,10 784,100,10 \
	--batch-size 1,10,100,1000 --dtype float64,float32 --epochs 5 --max-seconds-per-cell 60
# A sweep that exits 1 (a backend with no timed epoch in some cell: a peer that cannot
# finish one within --max-seconds-per-cell) is filed all the same, and make then exits 1.
figures: $(VENV)/.installed rust
	@$(PY) -m harness sweep $(FIGURE_SWEEP) --results-dir results/figures; status=$$?; \
	if [ $$status -gt 1 ]; then exit $$status; fi; \
	key=$$($(PY) -m harness.running.machine); sweep=$$(ls -td results/figures/*/ | head -1); \
	mkdir -p docs/findings/$$key; \
	for f in winners.png winners.svg winners.csv; do cp "$$sweep$$f" "docs/findings/$$key/$$f"; done; \
	echo "figures: docs/findings/$$key/winners.{png,svg,csv} from $$sweep"; \
	$(PY) -m harness findings || exit $$?; \
	if [ $$status -ne 0 ]; then echo "the sweep exited $$status: see its sweep.csv's status column"; fi; \
	exit $$status

# The findings pages (docs/findings/<key>.md), written again from the committed data.
findings: $(VENV)/.installed
	$(PY) -m harness findings

clean:
	rm -rf $(VENV)
