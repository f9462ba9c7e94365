# Two commands on a fresh machine: `make demo` and `make test`.
VENV   ?= .venv
PY     := $(VENV)/bin/python
UV     := $(VENV)/bin/uv
export SAFETYNET_HOME ?= $(CURDIR)/.safetynet

LINT_PKG := $(VENV)/lint-imports

.PHONY: demo test lint lint-imports bench lock clean

$(UV):
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check uv==0.13.9

$(VENV)/.main: $(UV) requirements/main.lock pyproject.toml
	$(UV) pip install --quiet --python $(PY) -r requirements/main.lock
	$(UV) pip install --quiet --python $(PY) --no-deps -e .
	touch $@

$(VENV)/.dev: $(UV) requirements/dev.lock pyproject.toml
	$(UV) pip install --quiet --python $(PY) -r requirements/dev.lock
	$(UV) pip install --quiet --python $(PY) --no-deps -e .
	touch $@ $(VENV)/.main

## demo: set up and run the end-to-end job on the small simulated city
demo: $(VENV)/.main
	$(PY) -m safetynet.demo

## test: set up with dev extras and run the test suite (no test collected is a failure)
test: $(VENV)/.dev lint-imports
	$(VENV)/bin/ruff check .
	$(PY) -m pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

## lint-imports: the layer contracts of pyproject.toml [tool.importlinter], checked on an installed
## copy (features/, training/, ... install as safetynet.features, ...: import-linter needs that layout)
lint-imports: $(VENV)/.dev
	rm -rf build $(LINT_PKG)
	$(UV) pip install --quiet --python $(PY) --no-deps --target $(LINT_PKG) .
	rm -rf build
	cd $(LINT_PKG) && PYTHONPATH=. $(abspath $(VENV))/bin/lint-imports --no-cache $(CURDIR)/pyproject.toml

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

## bench: the big-data benchmarks (minutes; figures go to benchmarks/results/)
bench: $(VENV)/.dev
	$(PY) benchmarks/run_all.py

## lock: re-resolve the pinned dependency files after editing pyproject.toml
lock: $(UV)
	$(UV) pip compile pyproject.toml --python-version 3.11 -o requirements/main.lock
	$(UV) pip compile pyproject.toml --extra dev --python-version 3.11 -o requirements/dev.lock

clean:
	rm -rf $(SAFETYNET_HOME)
