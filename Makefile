# The two set-up commands are `make run` and `make test`; both are idempotent.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
DATA_DIR ?= $(CURDIR)/data
PORT ?= 8080
# Installed marker: re-install only when the dependency list changes.
DEPS_STAMP := $(VENV)/.deps-$(shell cat pyproject.toml | sha256sum | cut -c1-12)

.PHONY: run test lint types unit bench binary clean-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(DEPS_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --prefer-binary -e '.[dev]'
	$(BIN)/python -c "import sqlcipher3; print('sqlcipher3 SQLite', sqlcipher3.sqlite_version)"
	rm -f $(VENV)/.deps-*
	touch $@

deps: $(DEPS_STAMP)

run: deps
	@if [ ! -f "$(DATA_DIR)/keyring.json" ]; then $(BIN)/appliance init --data-dir "$(DATA_DIR)"; fi
	@echo "A fresh test key for this session (older ones stay valid until revoked):"
	@$(BIN)/appliance key create --data-dir "$(DATA_DIR)" --workspace 1 --mode test
	@echo "API:      http://127.0.0.1:$(PORT)/v1/headless/courses"
	@echo "API docs: http://127.0.0.1:$(PORT)/api/docs/"
	@echo "Health:   http://127.0.0.1:$(PORT)/health"
	$(BIN)/appliance serve --data-dir "$(DATA_DIR)" --port $(PORT)

lint: deps
	$(BIN)/ruff check appliance tests bench

types: deps
	$(BIN)/mypy appliance

unit: deps
	$(BIN)/pytest -q

test: lint types unit

bench: deps
	$(BIN)/python bench/run.py

binary: deps
	bash build/binary.sh

clean-venv:
	rm -rf $(VENV)
