# Two commands for a newcomer: `make run` and `make test`. Each builds or refreshes .venv itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck check-config migrate bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/guardrail migrate
	$(BIN)/guardrail serve

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check bot tests bench
	$(BIN)/mypy bot

# Every benchmark beside its baseline, 3 interleaved repetitions; writes bench/RESULTS.md (needs
# PostgreSQL and Redis like the tests; BENCH_ARGS=--quick for a one-pass smoke run).
bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

check-config: $(STAMP)
	$(BIN)/guardrail check-config

migrate: $(STAMP)
	$(BIN)/guardrail migrate

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
