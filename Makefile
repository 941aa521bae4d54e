# Two entry points that set themselves up: `make run` and `make test`.
# Both create .venv on first use and reinstall only when pyproject.toml changes.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build of PyTorch: the default build on PyPI for Linux carries CUDA (several GB).
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
RUN_ARGS ?= --backend all

.PHONY: run test lint clean

run: $(VENV)/.installed
	$(PY) -m harness run $(RUN_ARGS)

test: $(VENV)/.installed-test
	@$(PY) -m pytest; status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests"; exit 0; fi; exit $$status

lint: $(VENV)/.installed-test
	$(PY) -m ruff check backends harness tests

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet --index-url $(TORCH_INDEX) "$(TORCH_SPEC)" \
		|| $(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[test,peers,dev]"
	touch $@ $(VENV)/.installed

clean:
	rm -rf $(VENV)
