# `make demo` and `make test` set everything up on first use: .venv, Python packages, PostgreSQL check.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt pyproject.toml | sha1sum | cut -c1-12)

.PHONY: demo test test-repeat bench lab postgres chromium pgbadger wheel clean help

help:
	@echo "make demo   play the pool-exhaustion scenario on the embedded sandbox and write an evidence record"
	@echo "make test   run the whole test suite (unit, sandbox integration, nbval, end to end)"
	@echo "make test-repeat N=5 [LOAD=1]  make test N times, each in a fresh clone (LOAD=1: under CPU load)"
	@echo "make bench  run the benchmarks (not part of make test)"
	@echo "make lab    open JupyterLab on notebooks/ (run '.venv/bin/forensics sandbox up' first for the sandbox)"
	@echo "make wheel  build dist/forensics-*.whl (notebooks and example parameters inside)"
	@echo "make clean  remove .venv, build output and a stopped sandbox's files; never evidence/"

$(STAMP):
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11+" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	rm -f $(VENV)/.installed-*; touch $@

# The sandbox and the tests need PostgreSQL server binaries with pg_stat_statements (postgresql-contrib).
postgres:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v pg_config >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "PostgreSQL server binaries not found: installing postgresql and postgresql-contrib with apt-get"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql postgresql-contrib >/dev/null; \
	  else \
	    echo "error: PostgreSQL server binaries not found (looked in /usr/lib/postgresql/*/bin and pg_config)." >&2; \
	    echo "       install them: sudo apt-get install postgresql postgresql-contrib   (or set FORENSICS_PG_BIN=/path/to/bin)" >&2; \
	    exit 1; \
	  fi; \
	fi

# An optional Debian package the tests use: $(1) the command, $(2) the package, $(3) what skips without it.
# Installed with apt-get when run as root; otherwise those tests skip, saying why.
define apt_optional
	@if ! command -v $(1) >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "$(1) not found: installing Debian's $(2) with apt-get"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(2) >/dev/null; \
	  else \
	    echo "note: $(1) not found and not installable here (needs root and apt-get): $(3)" >&2; \
	  fi; \
	fi
endef

# The browser tests open a record in headless Chromium: Debian's chromium (Playwright drives it and
# downloads no browser).
chromium:
	$(call apt_optional,chromium,chromium,browser tests will skip)

# The PostgreSQL-log tests and benchmark compare the project with pgbadger, the tool DBAs trust.
pgbadger:
	$(call apt_optional,pgbadger,pgbadger,the pgbadger comparison skips)

demo: $(STAMP) postgres
	$(BIN)/forensics demo

# TEST_JOBS: pytest-xdist processes (each starts its own sandbox); TEST_JOBS=0 runs the suite in one process
TEST_JOBS ?= 2
test: $(STAMP) postgres chromium pgbadger
	$(BIN)/python -m pytest -q -p no:cacheprovider tests notebooks --ignore=tests/bench --nbval-lax --nbval-current-env -n $(TEST_JOBS)

# N fresh-clone runs of `make test`, each failure reported with its test id (issue 23); LOAD=1 puts every
# run under CPU load (a busy loop per core), LOADED=K only the last K.
N ?= 5
test-repeat:
	$(PYTHON) scripts/test_repeat.py --runs $(N) $(if $(LOAD),--load) $(if $(LOADED),--loaded-runs $(LOADED))

bench: $(STAMP) postgres pgbadger
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/bench -s --override-ini testpaths=tests/bench

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

wheel: $(STAMP)
	$(BIN)/pip wheel --quiet --no-deps --no-build-isolation --wheel-dir dist .

# Evidence records are never deleted here: they are sealed (read-only) and may be the only copy.
clean:
	@if [ -x $(BIN)/forensics ]; then $(BIN)/forensics sandbox down; fi
	rm -rf $(VENV) .sandbox build dist lib/*.egg-info
