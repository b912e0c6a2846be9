# Two commands for a newcomer: `make run` and `make test`. Each builds or refreshes .venv itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# The lock files pin every version, hashed: requirements.lock (runtime: image, Heroku) and
# requirements-dev.lock (runtime + dev + docs: this venv, CI). `make lock` re-resolves after a change
# to pyproject.toml, keeping the pins it can; `make lock-upgrade` moves everything to the newest.
UV := uv==0.13.9
LOCK := $(BIN)/uv pip compile pyproject.toml --universal --generate-hashes --python-version 3.11 --quiet

.PHONY: run test lint typecheck fmt docs reference bench check-config migrate clean lock lock-upgrade

# Installs exactly the dev lock; the editable install after it adds nothing when the lock is fresh
# (a dependency added to pyproject.toml without `make lock` still installs, and tests/deploy says so).
$(STAMP): pyproject.toml requirements-dev.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

lock lock-upgrade:
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(UV)
	$(LOCK) $(if $(filter lock-upgrade,$@),--upgrade) -o requirements.lock
	$(LOCK) $(if $(filter lock-upgrade,$@),--upgrade) --extra dev --extra docs -o requirements-dev.lock

# With no SLACK_BOT_TOKEN (environment or .env) there is no Slack to serve: run the sandbox instead,
# the real bot against a simulated Slack in the browser (docs/sandbox.md).
run: $(STAMP)
	@if $(BIN)/python -m bot.sandbox.configured; then \
	  $(BIN)/guardrail migrate && $(BIN)/guardrail serve; \
	else \
	  echo "make run: SLACK_BOT_TOKEN is not set (environment or .env), so this is the sandbox, a simulated Slack at http://127.0.0.1:3000/ -- for real Slack put SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET in .env (README: Create the Slack app)"; \
	  $(BIN)/guardrail sandbox; \
	fi

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check bot tests bench tools
	$(BIN)/ruff format --check bot tests bench tools
	$(BIN)/mypy bot tests bench

typecheck: $(STAMP)
	$(BIN)/mypy bot tests bench

# Formats the files you name (make fmt FILES=bot/x.py), else bot, tests, bench and tools.
fmt: $(STAMP)
	$(BIN)/ruff format $(or $(FILES),bot tests bench tools)

# The docs site (MkDocs + Material) into site/; tests/deploy/test_docs.py runs the same build.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# Regenerates docs/reference/configuration.md (from bot/settings.py and bot/config/) and
# docs/reference/cli.md (from bot/cli.py); commit the result: tests/deploy/test_docs.py fails while stale.
reference: $(STAMP)
	$(BIN)/python tools/config_reference.py
	$(BIN)/python tools/cli_reference.py

# Every benchmark beside its baseline, 5 interleaved repetitions; writes bench/RESULTS.md (needs
# PostgreSQL and Redis like the tests; BENCH_ARGS=--quick for a one-pass smoke run).
bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

check-config: $(STAMP)
	$(BIN)/guardrail check-config

migrate: $(STAMP)
	$(BIN)/guardrail migrate

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
