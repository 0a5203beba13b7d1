# Purser. `make run` serves the API; `make test` runs the whole test suite.
# Both create .venv and install what they need on first use.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)

.DEFAULT_GOAL := help
.PHONY: help install run migrate test lint fmt typecheck check bench bench-ledger bench-payments bench-webhooks fuzz clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Purser needs Python 3.11 or newer" or 0)'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip install --quiet -e ./sdk/python
	@rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP) ## Create .venv and install Purser with its dev tools

run: $(STAMP) ## Start PostgreSQL (embedded unless DATABASE_URL), migrate, serve on :8000
	$(BIN)/purser migrate
	$(BIN)/purser serve

migrate: $(STAMP) ## Apply database migrations
	$(BIN)/purser migrate

test: $(STAMP) ## Run the whole test suite against a real PostgreSQL
	$(BIN)/pytest

lint: $(STAMP) ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: $(STAMP) ## Format and auto-fix
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(STAMP) ## mypy (strict) over app/
	$(BIN)/mypy

check: lint typecheck test ## Everything CI checks

fuzz: $(STAMP) ## Fuzz the API: schemathesis, every check, fresh `purser serve` (FUZZ_EXAMPLES, FUZZ_MAX_TIME)
	$(BIN)/python -m tests.fuzz_support

bench: bench-ledger bench-payments bench-webhooks ## All benchmarks (figures, not pass/fail)

bench-ledger: $(STAMP) ## Ledger entries/s vs pgbench tpcb-like, concurrency 1/8/32
	$(BIN)/python -m bench.ledger

bench-payments: $(STAMP) ## Payments through the API: rate, latency, CPU, memory, lag; 1/8/32/64 clients (BENCH_ARGS)
	$(BIN)/python -m bench.payments $(BENCH_ARGS)

bench-webhooks: $(STAMP) ## Webhook deliveries/s to a local receiver, 1 and 2 workers
	$(BIN)/python -m bench.webhooks

clean: ## Remove the virtualenv and the embedded database
	rm -rf $(VENV) .purser
