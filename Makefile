# Two commands for a newcomer: `make run` and `make test`. Each builds or refreshes .venv itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck check-config migrate clean

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

check-config: $(STAMP)
	$(BIN)/guardrail check-config

migrate: $(STAMP)
	$(BIN)/guardrail migrate

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
