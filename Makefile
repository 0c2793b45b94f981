# VitalBridge: `make demo` runs the whole system on its embedded default, `make test` runs the suite.
# Both set themselves up on a fresh Debian/Ubuntu machine: apt packages, a .venv and the project.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_FOR ?= 60
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test bench lint setup system-packages clean

demo: setup
	$(BIN)/vitalbridge demo $(if $(filter 0,$(DEMO_FOR)),,--for $(DEMO_FOR))

test: setup
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest

bench: setup
	$(BIN)/pip install -q -e '.[dev,bench]'
	$(BIN)/python -m tests.bench

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy

setup: system-packages $(VENV)/.installed web/node_modules/.package-lock.json

system-packages:
	@missing=""; \
	for bin in mosquitto:mosquitto mosquitto_pub:mosquitto-clients influxd:influxdb node:nodejs npm:npm \
	           chromium:chromium; do \
	  command -v $${bin%%:*} >/dev/null 2>&1 || [ -x /usr/sbin/$${bin%%:*} ] || missing="$$missing $${bin##*:}"; \
	done; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	fc-list :lang=zh 2>/dev/null | grep -q . || missing="$$missing fonts-wqy-microhei"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(VENV)/.installed: pyproject.toml
	[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

# The web app's browser packages (charts, API docs, accessibility checker), exactly as the lockfile says;
# install scripts stay off: the cloud serves the packages' files, it runs none of their code.
web/node_modules/.package-lock.json: web/package.json web/package-lock.json
	cd web && npm ci --ignore-scripts --no-audit --no-fund

clean:
	rm -rf $(VENV) web/node_modules .pytest_cache .mypy_cache .ruff_cache build *.egg-info
