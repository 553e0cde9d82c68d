# The two commands a newcomer needs: `make dev` (run locally) and `make test` (run the tests).
SHELL := /bin/bash
# uv from PATH, or a private copy that `make uv` puts in .tools/ (never into the system's Python)
UV_VERSION := 0.13.8
UV ?= $(shell command -v uv 2>/dev/null || echo $(CURDIR)/.tools/uv/bin/uv)
PORT ?= 3000
# The SAM CLI and checkov run in environments of their own (tools/sam, tools/checkov): a VIRTUAL_ENV
# set by an activated venv or by `uv run` names another one, and uv would warn about it.
TOOL_UV = env -u VIRTUAL_ENV $(UV)
.DEFAULT_GOAL := help

.PHONY: help uv setup dev chat browser invoke check test test-fast openapi lint validate build deploy deploy-guided

# The variables the help text names, shown with their values (make help PORT=8080 shows 8080)
HELP_VARIABLES := PORT CHROMIUM ARCH

help: ## this list: every target, what it does
	@echo "make <target>   (first time: make dev, in another terminal make chat; the tests: make test)"
	@awk 'BEGIN {FS = ":[^#]*## "} /^[a-zA-Z0-9_-]+:[^#]*## / {printf "  %-15s %s\n", $$1, $$2}' $(MAKEFILE_LIST) \
		| sed $(foreach v,$(HELP_VARIABLES),-e 's|$$($(v))|$($(v))|g')

uv: ## uv itself, if it is not on PATH: a venv of its own under .tools/uv
	@$(UV) --version >/dev/null 2>&1 || { python3 -m venv .tools/uv && .tools/uv/bin/pip install --quiet "uv==$(UV_VERSION)"; }

setup: uv ## uv, then the pinned dependencies (the app's, the SAM CLI's and checkov's)
	@$(UV) sync --frozen --quiet
	@$(TOOL_UV) sync --frozen --quiet --project tools/sam
	@$(TOOL_UV) sync --frozen --quiet --project tools/checkov

# ---- local twin, tests (lead) -------------------------------------------------

# The twin's own settings, passed through when given: make dev WORKERS=2 TURN_TIMEOUT=900
TWIN_SETTINGS := WORKERS TURN_WORKERS FUNCTION_TIMEOUT TURN_TIMEOUT MODEL_CHECK

dev: setup ## serve the agent as Lambda would: HTTP and ws://.../ws on 127.0.0.1:$(PORT), queued turns, chat page, /docs
	PORT=$(PORT) $(foreach v,$(TWIN_SETTINGS),$(if $($(v)),$(v)=$($(v)))) $(UV) run --frozen python tools/dev.py

chat: setup ## chat in the terminal, replies streaming: the twin on port $(PORT) [SESSION=id], or a stack: CHAT_ARGS="--url wss://… --api https://…"
	@$(UV) run --frozen python tools/chat.py --port $(PORT) $(if $(SESSION),--session $(SESSION)) $(CHAT_ARGS)

# The chat page's browser test drives Debian's chromium (Playwright's own browser downloads are
# not used). Installing it needs root and apt-get; without them the test says why (it fails when
# CI=true, skips otherwise). apt's output goes to build/browser.log.
CHROMIUM ?= /usr/bin/chromium
BROWSER_PACKAGES := chromium fonts-liberation fonts-dejavu-core

browser: ## Debian's chromium for the chat page's browser test, if $(CHROMIUM) is missing (apt-get, as root)
	@test -x $(CHROMIUM) || { mkdir -p build; \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then \
		echo "$(CHROMIUM) is missing and cannot be installed here (needs root and apt-get): sudo make browser" \
			| tee build/browser.log; \
	else \
		echo "installing Debian's chromium for the browser test (apt-get, once; log in build/browser.log)"; \
		{ export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && \
			apt-get install -y -qq --no-install-recommends $(BROWSER_PACKAGES); } > build/browser.log 2>&1 \
		|| echo "apt-get could not install chromium: see build/browser.log" | tee -a build/browser.log; \
	fi; }

# botocore has no default region: a WebSocket event's management client stopped with NoRegionError.
# The twin's region (tools/twin/events.py, as make dev uses) unless one is configured: in the shell
# (AWS_DEFAULT_REGION, or AWS_REGION, which botocore does not read), in .env, or in an AWS config file.
TWIN_REGION := us-east-1
AWS_CONFIG_FILE ?= $(HOME)/.aws/config
DOTENV_FILE ?= .env
INVOKE_REGION = $(if $(AWS_DEFAULT_REGION)$(AWS_PROFILE)$(wildcard $(AWS_CONFIG_FILE)),,$(if \
	$(shell grep -sE '^[[:space:]]*(export[[:space:]]+)?AWS_DEFAULT_REGION=' $(DOTENV_FILE)),,$(or $(AWS_REGION),$(TWIN_REGION))))

invoke: setup ## run the handler on one event file: make invoke EVENT=events/post_message.json
	@test -n "$(EVENT)" || { echo "usage: make invoke EVENT=events/<file>.json"; exit 2; }
	$(if $(INVOKE_REGION),AWS_DEFAULT_REGION=$(INVOKE_REGION) )$(UV) run --frozen python tools/invoke.py $(EVENT)

model: setup ## the test model alone on http://127.0.0.1:8000/v1, with its log (make dev starts one when no MODEL_ID is set)
	$(UV) run --frozen python tools/model_server.py --port 8000 $(if $(MODEL_HOST),--host $(MODEL_HOST))

# pyproject.toml configures both (ruff's rules; the files mypy checks). Seconds: the suite runs them first.
check: setup ## ruff and mypy on the code: zero findings, each pragma says why
	$(UV) run --frozen ruff check .
	$(UV) run --frozen mypy

test: setup check browser ## the whole test suite, after ruff and mypy (offline once set up; see the README for what it fetches)
	$(UV) run --frozen pytest -q $(PYTEST_ARGS)

test-fast: setup ## the tests that start no server and no subprocess (under a minute)
	$(UV) run --frozen pytest -q -m "not slow" $(PYTEST_ARGS)

openapi: setup ## write docs/openapi.json from the app's routes (a test fails when it is stale)
	$(UV) run --frozen python tools/write_openapi.py

# checkov reads .checkov.yaml (its waivers, each with its reason); it scans the template as written
# and as SAM transforms it (the functions' roles, the alias, the rule exist only after the transform).
lint: setup check ## ruff and mypy, then cfn-lint, sam validate --lint and checkov on the template
	$(UV) run --frozen cfn-lint template.yaml
	$(TOOL_UV) run --frozen --project tools/sam sam validate --lint
	@mkdir -p build
	$(TOOL_UV) run --frozen --project tools/sam python tests/template/sam_transform.py template.yaml > build/template.transformed.json
	$(TOOL_UV) run --frozen --project tools/checkov checkov --config-file .checkov.yaml --compact --quiet \
		-f template.yaml -f build/template.transformed.json

# ---- deploy: the pinned SAM CLI (tools/sam), with samconfig.toml's settings -----------------

build: setup ## sam build: the functions' artifact for the template's Architecture (no Docker)
	$(TOOL_UV) run --frozen --project tools/sam sam build $(SAM_ARGS)

# Credentials and region are looked for first (locally, by the SAM CLI's botocore): without them SAM
# fails only after it has started, and --guided after asking every question.
deploy: setup ## sam deploy: the stack as samconfig.toml describes it (after make build)
	@$(TOOL_UV) run --frozen --project tools/sam python tools/deploy_check.py -- $(SAM_ARGS)
	$(TOOL_UV) run --frozen --project tools/sam sam deploy $(SAM_ARGS)

deploy-guided: setup ## sam deploy --guided: the first deploy, asks for the region and parameters and saves them
	@$(TOOL_UV) run --frozen --project tools/sam python tools/deploy_check.py --guided -- $(SAM_ARGS)
	$(TOOL_UV) run --frozen --project tools/sam sam deploy --guided $(SAM_ARGS)

# ---- benchmarks -----------------------------------------------------------------

.PHONY: bench-store bench-stream bench-latency bench-cost

bench-stream: setup ## WebSocket streaming on the twin: first-token-to-first-delta latency, frames and calls per reply (~1 min)
	$(UV) run --frozen python tools/bench_stream.py $(BENCH_STREAM_ARGS)

bench-latency: setup ## round trips and time before/after the model per path (sync, WebSocket, async HTTP) on the twin, 25 ms per AWS request, this tree vs 341f1f1 (~4 min; BENCH_LATENCY_ARGS='--base REF --trace')
	$(UV) run --frozen python tools/bench_latency.py $(BENCH_LATENCY_ARGS)

bench-cost: setup ## infrastructure cost per 1,000 turns per path from bench-latency's requests, vs AgentCore Runtime + Memory (tools/prices.json): make bench-cost MODEL_SECONDS=3
	$(UV) run --frozen python tools/bench_cost.py $(if $(MODEL_SECONDS),--model-seconds $(MODEL_SECONDS))

bench-store: setup ## S3 requests and storage time per turn, this store vs Strands' stock S3SessionManager (moto, ~1 min)
	$(UV) run --frozen python tools/bench_store.py $(BENCH_STORE_ARGS)
	$(UV) run --frozen python tools/bench_sessions.py

.PHONY: reindex
reindex: setup ## list the sessions written before the session list (once, after upgrading; SESSION_BUCKET or SESSION_DIR)
	$(UV) run --frozen python tools/reindex.py

# ---- artifact build, size, cold start (issue 3) -------------------------------
# `sam build` (no Docker, any host Python >= 3.11) runs build-AgentFunction through
# template.yaml's Metadata (BuildMethod: makefile; ContextPath tools/build/sam/<arch> picks
# the architecture). Everything is cached under build/ and rebuilt only when its inputs change.
ARCH ?= arm64
HOST_ARCH := $(if $(filter aarch64 arm64,$(shell uname -m)),arm64,x86_64)
ARTIFACT_BUDGET ?= 150000000
SAMPLES ?= 5
ART_PLATFORM_x86_64 := x86_64-manylinux_2_34
ART_PLATFORM_arm64 := aarch64-manylinux_2_34
ART_SOURCES := $(shell find src/agent src/handler src/agent_tools -type f -not -path '*/__pycache__/*' 2>/dev/null)
ART_TOOLS := $(wildcard tools/build/*.py tools/build/*.txt)
# A CPython 3.13 for bytecode and for running the artifact: found or fetched on first use.
PY313 = $(shell tools/python313/find.sh)

.PHONY: python313 artifact size bench-cold bench-memory trim-dead sam-artifact artifact-test-prereqs install-wheels \
	build-AgentFunction build-TurnWorkerFunction build-WebSocketAuthorizerFunction
# Stamps of a pattern chain would otherwise be deleted as intermediates, forcing rebuilds.
.PRECIOUS: build/deps-%.stamp build/artifact-%.stamp

python313: ## a CPython 3.13 for bytecode and tests (Debian trixie's, fetched into build/python313 if none)
	@test -n "$(PY313)" && echo "$(PY313)"

# The lock's pins with the sha256 of every file the lock allows for them (uv export writes hashes).
build/requirements.txt: uv.lock pyproject.toml | uv
	@mkdir -p build
	$(UV) export --frozen --no-dev --no-emit-project --quiet -o $@

# The one step that brings third-party code into the artifact: the lock's pinned versions, as
# wheels for Lambda's python3.13 on the target architecture (glibc 2.34 on Amazon Linux 2023),
# whatever this host runs. --require-hashes: every wheel must match a hash of the lock, and a
# requirement without one fails (never skipped; UV_NO_VERIFY_HASHES from the caller's shell is
# dropped). $(call install_wheels,ARCH,TARGET_DIR,REQUIREMENTS_FILE)
define install_wheels
	@test -n "$(ART_PLATFORM_$(1))" || { echo "architecture must be arm64 or x86_64, not '$(1)'"; exit 2; }
	env -u UV_NO_VERIFY_HASHES $(UV) pip install --quiet --require-hashes --target $(2) \
		--python-platform $(ART_PLATFORM_$(1)) --python-version 3.13 --only-binary :all: --no-deps --no-compile \
		-r $(3)
endef

build/deps-%.stamp: build/requirements.txt
	rm -rf build/deps-$*
	$(call install_wheels,$*,build/deps-$*,$<)
	@touch $@

# The same step on any requirements file and folder, for tests/artifact/test_supply_chain.py
# (which shows a tampered hash failing it): make install-wheels REQUIREMENTS=... DEPS_DIR=...
install-wheels: | uv
	@test -n "$(REQUIREMENTS)" -a -n "$(DEPS_DIR)" || { echo "usage: make install-wheels REQUIREMENTS=file DEPS_DIR=dir [ARCH=...]"; exit 2; }
	$(call install_wheels,$(ARCH),$(DEPS_DIR),$(REQUIREMENTS))

build/artifact-%.stamp: build/deps-%.stamp $(ART_SOURCES) $(ART_TOOLS)
	python3 tools/build/assemble.py --arch $* --deps build/deps-$* --src src --out build/artifact-$* \
		$(if $(PY313),--python313 $(PY313))
	@touch $@

artifact: build/artifact-$(ARCH).stamp ## the function's code as deployed: build/artifact-$(ARCH) (ARCH=arm64|x86_64)
	@python3 tools/build/size.py build/artifact-$(ARCH)

size: build/artifact-arm64.stamp build/artifact-x86_64.stamp ## both architectures against the size budget
	python3 tools/build/size.py build/artifact-arm64 --budget $(ARTIFACT_BUDGET)
	python3 tools/build/size.py build/artifact-x86_64 --budget $(ARTIFACT_BUDGET)

bench-cold: build/artifact-$(HOST_ARCH).stamp ## cold import time: built artifact vs a naive build, under Python 3.13
	@# naive = the plain install (build/deps-*, never compiled) + our code without any bytecode
	rm -rf build/naive-src && mkdir -p build/naive-src && cp -a src/agent src/handler build/naive-src/
	find build/naive-src -name __pycache__ -prune -exec rm -rf {} +
	python3 tools/bench_cold.py --python313 "$(PY313)" --artifact build/artifact-$(HOST_ARCH) \
		--naive build/deps-$(HOST_ARCH):build/naive-src --samples $(SAMPLES)

# Run as root for a CPU cgroup (the kernel's quota, as a microVM's); otherwise a SIGSTOP/SIGCONT duty cycle.
bench-memory: setup build/artifact-$(HOST_ARCH).stamp ## init, SnapStart hooks and a warm turn at 512/768/1024/1769 MB CPU shares, Python 3.13 (~3 min)
	$(UV) run --frozen python tools/bench_memory.py --python313 "$(PY313)" --artifact build/artifact-$(HOST_ARCH) \
		--samples $(SAMPLES) $(BENCH_MEMORY_ARGS)

# What tests/integration/test_artifact.py runs: the artifact for this host, and a python3.13.
artifact-test-prereqs: build/artifact-$(HOST_ARCH).stamp
	@test -n "$(PY313)"

trim-dead: build/deps-$(HOST_ARCH).stamp ## regenerate tools/build/trim-dead.txt after a LiteLLM/openai upgrade
	python3 tools/build/assemble.py --arch $(HOST_ARCH) --deps build/deps-$(HOST_ARCH) --src src \
		--out build/scratch-dead --trim tools/build/trim.txt --all-sources --no-bytecode
	"$(PY313)" -I -S -B tools/build/dead_modules.py tools/build/trim-dead.txt build/scratch-dead litellm openai
	rm -rf build/scratch-dead

# Called by `sam build` (with ARTIFACTS_DIR) through tools/build/sam/<arch>/Makefile, once per
# function: all three ship the same artifact, built once and copied.
sam-artifact: build/artifact-$(ARCH).stamp
	@case "$(ARTIFACTS_DIR)" in */AgentFunction|*/TurnWorkerFunction|*/WebSocketAuthorizerFunction) ;; \
		*) echo "sam-artifact: run by sam build, which sets ARTIFACTS_DIR"; exit 2;; esac
	@python3 tools/build/size.py build/artifact-$(ARCH)
	@# SAM may reuse the folder: leave nothing of an earlier build (another architecture's libraries)
	find "$(ARTIFACTS_DIR)" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
	cp -a build/artifact-$(ARCH)/. "$(ARTIFACTS_DIR)/"

build-AgentFunction build-TurnWorkerFunction build-WebSocketAuthorizerFunction: sam-artifact

