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

setup: system-packages $(VENV)/.installed

system-packages:
	@missing=""; \
	for bin in mosquitto:mosquitto mosquitto_pub:mosquitto-clients influxd:influxdb cc:gcc; do \
	  command -v $${bin%%:*} >/dev/null 2>&1 || [ -x /usr/sbin/$${bin%%:*} ] || missing="$$missing $${bin##*:}"; \
	done; \
	$(PYTHON) -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
	  || missing="$$missing python3-dev"; \
	[ -e /usr/include/stdio.h ] || missing="$$missing libc6-dev"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# The R-peak detector's compiled fast path is built by the install: rebuild when it changes.
$(VENV)/.installed: pyproject.toml setup.py edge/pipeline/_rpeak_kernel.c
	[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
