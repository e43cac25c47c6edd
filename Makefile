# One-command entry points. Everything installs into .venv; nothing global.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: help run test lint install install-test console-assets contracts clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# The parts of the workspace, each an installable distribution in its own folder.
PARTS    := contracts infra llm audience producers consumers api
EDITABLE := $(foreach part,$(PARTS),-e ./$(part))
MANIFESTS := pyproject.toml $(foreach part,$(PARTS),$(part)/pyproject.toml)

# Stamp files: reinstall only when a pyproject.toml changed since the last install.
$(VENV)/.installed-embedded: $(MANIFESTS) | $(BIN)/python
	$(BIN)/pip install --quiet $(EDITABLE) -e '.[embedded]'
	touch $@

$(VENV)/.installed-test: $(MANIFESTS) scripts/install-system-tools.sh | $(BIN)/python
	$(BIN)/pip install --quiet $(EDITABLE) -e '.[test]'
	scripts/install-system-tools.sh
	touch $@ $(VENV)/.installed-embedded

# The web console's Chart.js, from npm as api/web/package-lock.json pins it. The target is
# the installed file itself, so a vendor folder removed by hand is installed again.
CONSOLE_ASSET := api/persona_api/static/console/vendor/chart.umd.min.js
$(CONSOLE_ASSET): api/web/package-lock.json scripts/console-assets.sh
	scripts/console-assets.sh
	touch $@

install: $(VENV)/.installed-embedded $(CONSOLE_ASSET)  ## install the service and the embedded dev stack into .venv

# The console assets only after .installed-test, even with -j: on a machine without
# npm, install-system-tools.sh installs it.
install-test: $(VENV)/.installed-test  ## install the service, the embedded stack and the test tools (+ promtool)
	@$(MAKE) -s --no-print-directory $(CONSOLE_ASSET)

console-assets:  ## reinstall the web console's Chart.js (npm ci in api/web) into its vendor folder
	scripts/console-assets.sh

run: install  ## start Kafka, MongoDB, worker and API in the foreground (Ctrl-C stops all)
	$(BIN)/persona dev

lint: install-test  ## ruff and mypy
	$(BIN)/ruff check $(PARTS) src tests bench
	$(BIN)/ruff format --check $(PARTS) src tests bench
	$(BIN)/mypy

test: lint  ## lint, then the whole test suite against real servers it starts itself
	$(BIN)/pytest

contracts: install  ## regenerate docs/contracts (JSON Schema, AsyncAPI) after changing contracts/
	$(BIN)/persona contracts export

clean:  ## remove the virtualenv, local data, caches and the console's npm files
	rm -rf $(VENV) .data .pytest_cache .mypy_cache .ruff_cache \
		api/web/node_modules api/persona_api/static/console/vendor
