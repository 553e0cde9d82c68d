# The two commands a newcomer needs: `make dev` (run locally) and `make test` (run the tests).
SHELL := /bin/bash
UV ?= uv
PORT ?= 3000

.PHONY: setup dev invoke test lint validate

setup: ## install uv if missing, then the pinned dependencies
	@command -v $(UV) >/dev/null || python3 -m pip install --quiet "uv==0.13.8"
	$(UV) sync --frozen

# ---- local twin, tests (lead) -------------------------------------------------

# ---- store benchmark (issue 4) ------------------------------------------------

# ---- artifact build, size, cold start (issue 3) -------------------------------
