# noim: the two commands of the README, and their helpers.
#   make demo   creates .venv, installs noim, builds a synthetic NIM trial in SQLite
#   make test   creates .venv, installs dev deps, runs ruff, mypy and pytest on SQLite and PostgreSQL
#               (and in Debian's chromium, which it installs with apt-get when missing)
#   make bench  installs the bench extra (lifelines), times noim.stats against its references

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check --quiet
# pytest-xdist: one worker per core, at most 2 (CI has 2 cores); PYTEST_XDIST= runs serially.
# loadgroup keeps tests marked xdist_group(name) on one worker and spreads the rest.
TEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 1); [ "$$n" -gt 2 ] && n=2; echo $$n)
PYTEST_XDIST ?= -n $(TEST_WORKERS) --dist loadgroup

.PHONY: demo test bench lint typecheck pytest pg-up browser-up clean help

help:
	@echo "make demo   build the demonstration trial in demo/noim.db"
	@echo "make test   ruff, mypy, pytest (SQLite and PostgreSQL)"
	@echo "make bench  noim.stats against lifelines and statsmodels at 10^4 and 10^5 rows"

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "noim needs Python 3.11 or newer; set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

# Re-install when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP) install -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(PIP) install -e '.[dev]'
	@touch $(VENV)/.installed $@

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(PIP) install -e '.[bench]'
	@touch $(VENV)/.installed $@

# Quick run; the full one (10^4, 10^5, 10^6) is $(BIN)/python benchmarks/stats.py
bench: $(VENV)/.installed-bench
	$(BIN)/python benchmarks/stats.py --sizes 10000,100000

demo: $(VENV)/.installed
	rm -rf demo
	$(BIN)/noim demo --database sqlite:///demo/noim.db

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

pg-up:
	@bash scripts/pg-test-setup.sh

# Debian's chromium for the browser tests (apt-get as root; never a downloaded browser build)
browser-up:
	@bash scripts/browser-test-setup.sh

pytest: $(VENV)/.installed-dev
	$(BIN)/pytest $(PYTEST_XDIST)

test: lint typecheck pg-up browser-up pytest

clean:
	rm -rf $(VENV) demo .mypy_cache .ruff_cache .pytest_cache .hypothesis dist build
