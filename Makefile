# One target per habit. Everything runs from the project's own virtualenv, created on demand.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint unit bench schema clean

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

## Lint, type-check, check the dependency direction, then run every test.
test: lint
	$(BIN)/pytest

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy core graphql_api plugins webhooks
	$(BIN)/lint-imports

## The fast unit tests only (no database).
unit: $(BIN)/.installed
	$(BIN)/pytest tests/unit

## Benchmarks print figures; they are not tests.
bench: $(BIN)/.installed
	$(BIN)/python benchmarks/lifecycle.py
	$(BIN)/python benchmarks/graphql.py
	$(BIN)/python benchmarks/webhooks.py
	$(BIN)/python benchmarks/jobs.py
	$(BIN)/python benchmarks/refunds.py
	$(BIN)/python benchmarks/jobs_chaos.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis rma.db rma.db-wal rma.db-shm
