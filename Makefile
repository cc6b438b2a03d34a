# pocketstack: `make run` starts a cloud, `make test` runs every test.
# Both create .venv on first use; `make test` also installs the Debian packages the tests
# drive (rclone, postgresql), so it runs on a fresh Debian machine (as root, or with sudo).
# The identity integration tests run twice: on SQLite and on PostgreSQL (a private server
# the tests start, see tests/integration/postgres.py).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEB_TEST_PACKAGES := rclone postgresql
PYTEST_ARGS ?=

.PHONY: run test unit integration lint bench ab conformance clean venv

$(VENV)/bin/python:
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
	  echo "python3-venv missing: installing it"; \
	  $(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y --no-install-recommends python3-venv python3-pip && \
	  rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); }

$(VENV)/.run-installed: $(VENV)/bin/python pyproject.toml
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	@touch $@

$(VENV)/.test-installed: $(VENV)/bin/python pyproject.toml
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@touch $@ $(VENV)/.run-installed

venv: $(VENV)/.run-installed

# compileall: an editable install leaves pocketstack's own modules uncompiled, and where
# PYTHONDONTWRITEBYTECODE is set every start would compile them again (a fifth of a second)
run: $(VENV)/.run-installed
	@$(BIN)/python -m compileall -q src
	$(BIN)/pocketstack up $(ARGS)

deb-test-deps:
	@missing=""; for p in $(DEB_TEST_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y --no-install-recommends $$missing; fi

test: $(VENV)/.test-installed deb-test-deps
	$(BIN)/pytest -n auto $(PYTEST_ARGS)
	POCKETSTACK_TEST_DATABASE=postgresql $(BIN)/pytest -n auto tests/integration/identity $(PYTEST_ARGS)

unit: $(VENV)/.test-installed
	$(BIN)/pytest -n auto tests/unit $(PYTEST_ARGS)

integration: $(VENV)/.test-installed deb-test-deps
	$(BIN)/pytest -n auto tests/integration $(PYTEST_ARGS)

lint: $(VENV)/.test-installed
	$(BIN)/ruff check src tests
	$(BIN)/mypy

# pocketstack's benchmark (docs/performance.md). COMPARE=upstream also installs and runs
# upstream Keystone + Swift from PyPI (own venv under .bench/, and Debian's memcached) in
# the same run; BENCH_ARGS=--quick for a smoke run, --profile for py-spy profiles.
bench: $(VENV)/.test-installed
	@$(BIN)/python -m compileall -q src
	$(BIN)/python -m bench $(if $(COMPARE),--compare $(COMPARE)) $(BENCH_ARGS)

# A/B of the work tree against a git ref on object requests (bench/ab.py): BASE=<ref>
# (default HEAD), AB_ARGS="--ops GET,HEAD --rounds 3 --calls ..." (--ops GET-LARGE: 64 MiB).
ab: $(VENV)/.test-installed
	$(BIN)/python -m bench.ab $(if $(BASE),--base $(BASE)) $(AB_ARGS)

# Swift's own functional tests against a fresh `pocketstack up` (docs/conformance.md).
# Swift's sdist and its test deps live in .conformance/ (own venv), never in .venv.
# ARGS go to the harness: make conformance ARGS="test_object -k copy --parallel 1"
conformance: $(VENV)/.run-installed
	$(BIN)/python -m tests.conformance.run $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
