# The two commands of the README: `make run` and `make test`. Everything else is set-up they share,
# and `make check`, the habits CI enforces after the tests: lint, types, import contracts.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | sha1sum | cut -c1-12)

.PHONY: run test setup init lint types contracts check constraints clean

# constraints.txt pins what CI tested (pip freeze of this venv); pyproject.toml keeps the ranges.
$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Loupe needs Python 3.11 or newer")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -U pip setuptools wheel
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

setup: $(STAMP)

init: setup
	$(BIN)/loupe init

run: init
	$(BIN)/loupe serve

# Two pytest-xdist workers: much of the suite waits on subprocesses (workers, servers, Chromium), so two
# tests at a time fill a 2-core machine; tests/conftest.py keeps a module, and all browser tests, on one
# worker. TEST_WORKERS=0 runs it in one process.
# --durations: the slowest tests are named in every run's output (CI's included), where the suite's time goes.
TEST_WORKERS ?= 2
test: init
	$(BIN)/python -m pytest $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadgroup) --durations=30 $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check app workers ml imaging textwords tests bench

# mypy's level and why: pyproject.toml [tool.mypy]
types: setup
	$(BIN)/mypy

# the dependency rule as import-linter contracts: pyproject.toml [tool.importlinter] (no cache: grimp's
# on-disk cache has answered with imports from before an edit)
contracts: setup
	$(BIN)/lint-imports --no-cache

check: lint types contracts

# after changing a dependency: pin what is now installed (then run `make test`, and commit both files)
constraints: setup
	{ sed -n '/^#/p' constraints.txt; $(BIN)/python -m pip freeze --exclude-editable; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

clean:
	rm -rf var .pytest_cache
