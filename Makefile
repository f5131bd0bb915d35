# One target per habit. Everything runs from the project's own virtualenv, created on demand.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test test-shifted lint unit bench schema clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("Python 3.11 or newer is needed") if sys.version_info < (3, 11) else None'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

## Serve the API on a local SQLite database, seeded with demo data on first run.
run: $(BIN)/.installed
	$(BIN)/rma db upgrade
	$(BIN)/rma demo --if-empty
	$(BIN)/rma serve --host $(HOST) --port $(PORT)

## Lint, type-check, check the dependency direction, run every test, then run them again with the
## clock moved ahead.
test: lint
	$(BIN)/pytest $(PARALLEL)
	$(MAKE) --no-print-directory test-shifted

## One test process per CPU (pytest-xdist); a test file stays in one process, so its module
## fixtures (a database, a fake platform) are made once. PARALLEL= runs them in this process.
## Not under faketime: several faketime'd processes at once ran ten times slower than one there
## (and beside the first pass, both passes together took as long as one after the other).
PARALLEL ?= -n auto --dist loadfile

## Every test that needs no PostgreSQL, under a wall clock SHIFT ahead (Debian's faketime), so that
## none depends on the day it runs. PostgreSQL keeps its own clock, which faketime cannot move, so
## this pass runs on SQLite only. Monotonic time stays real: Python's timed waits hang without it.
SHIFT ?= +400d
test-shifted: $(BIN)/.installed
	@command -v faketime >/dev/null || { echo "faketime is missing: apt-get install faketime"; exit 1; }
	env -u RMA_TEST_POSTGRES_URL FAKETIME_DONT_FAKE_MONOTONIC=1 faketime -f '$(SHIFT)' \
		$(BIN)/pytest -p no:cacheprovider

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy core graphql_api plugins webhooks
	$(BIN)/lint-imports

## The fast unit tests only (no database).
unit: $(BIN)/.installed
	$(BIN)/pytest tests/unit

## Benchmarks print figures; they are not tests. Each prints its targets and whether they are
## met, on SQLite and on the PostgreSQL server of BENCH_POSTGRES_URL.
BENCH_POSTGRES_URL ?= postgresql://postgres@127.0.0.1:5432/postgres
bench: $(BIN)/.installed
	$(BIN)/python benchmarks/lifecycle.py
	$(BIN)/python benchmarks/graphql_reads.py --postgres-url $(BENCH_POSTGRES_URL)
	$(BIN)/python benchmarks/graphql_profile.py --postgres-url $(BENCH_POSTGRES_URL)
	$(BIN)/python benchmarks/rmas_scale.py --postgres-url $(BENCH_POSTGRES_URL)
	$(BIN)/python benchmarks/webhook_intake.py
	$(BIN)/python benchmarks/jobs.py
	$(BIN)/python benchmarks/refunds.py
	$(BIN)/python benchmarks/jobs_chaos.py
	$(BIN)/python benchmarks/shopify_sync.py
	$(BIN)/python benchmarks/woocommerce_sync.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis rma.db rma.db-wal rma.db-shm
