# The two commands a newcomer needs: `make dev` (run locally) and `make test` (run the tests).
SHELL := /bin/bash
# uv from PATH, or the one `make setup` installs with pip
UV ?= $(shell command -v uv 2>/dev/null || echo python3 -m uv)
PORT ?= 3000

.PHONY: setup dev invoke test lint validate

setup: ## install uv if missing, then the pinned dependencies
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet "uv==0.13.8"
	@$(UV) sync --frozen --quiet
	@$(UV) sync --frozen --quiet --project tools/sam

# ---- local twin, tests (lead) -------------------------------------------------

dev: setup ## serve the agent on http://127.0.0.1:$(PORT) (files by default; S3 when SESSION_BUCKET is set)
	PORT=$(PORT) $(UV) run --frozen python tools/dev_server.py

invoke: setup ## run the handler on one event file: make invoke EVENT=events/post_message.json
	@test -n "$(EVENT)" || { echo "usage: make invoke EVENT=events/<file>.json"; exit 2; }
	$(UV) run --frozen python tools/invoke.py $(EVENT)

model: setup ## a local OpenAI-compatible test model on http://127.0.0.1:8000/v1 (for trying make dev offline)
	$(UV) run --frozen python -m tests.fixtures.model_server --port 8000

test: setup ## run the whole test suite (offline)
	$(UV) run --frozen pytest -q $(PYTEST_ARGS)

lint: setup ## cfn-lint and sam validate --lint on the template
	$(UV) run --frozen cfn-lint template.yaml
	$(UV) run --frozen --project tools/sam sam validate --lint

# ---- store benchmark (issue 4) ------------------------------------------------

# ---- artifact build, size, cold start (issue 3) -------------------------------
