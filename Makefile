# Every target creates .venv on first use and reuses it afterwards.
SHELL := /bin/bash
PYTHON ?= $(shell for p in python3.12 python3.11 python3; do command -v $$p >/dev/null && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { echo $$p; break; }; done)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# JupyterHub's proxy (npm), for tests/test_hub.py: installed into the venv, not globally.
PROXY := $(VENV)/node/node_modules/.bin/configurable-http-proxy

.PHONY: install test demo lab instructor release lint bench capacity clean system-test system-grade

# System packages (apt, when root or passwordless sudo; otherwise the exact command is printed).
# Grading refuses to run student code without bubblewrap, so demo and test need it.
system-grade:
	@bash .ci/system-packages bubblewrap

system-test:
	@bash .ci/system-packages bubblewrap chromium postgresql npm

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.11+ is needed (python3.11 or newer on PATH)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $@

$(PROXY): | $(STAMP)
	npm install --silent --no-audit --no-fund --prefix $(VENV)/node configurable-http-proxy@4

install: $(STAMP)  ## create or update .venv (project editable + dev extra)

test: system-test $(STAMP) $(PROXY)  ## all tests: library, notebooks (nbval), grading pipeline, sandbox, browser, JupyterHub
	$(PY) -m pytest --nbval-lax tests source

demo: system-grade $(STAMP)  ## the main job: release, grade synthetic submissions, feedback, report
	$(VENV)/bin/course demo

lab: $(STAMP)  ## JupyterLab for students on work/ (own copies of release/, never overwritten; Validate, widgets)
	$(VENV)/bin/course lab

instructor: $(STAMP)  ## JupyterLab with nbgrader's instructor tools (formgrader, create assignment)
	$(VENV)/bin/course lab --instructor

release: $(STAMP)  ## regenerate release/ from source/ with nbgrader
	$(VENV)/bin/course release --all

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: system-grade $(STAMP)  ## speed benchmarks, reported as ratios against baselines in the same run
	$(PY) -m benchmarks

capacity: system-grade $(STAMP)  ## capacity model (docs/capacity.md): seconds per notebook, overhead, client writes, simulation
	$(PY) -m benchmarks.capacity

clean:
	rm -rf $(VENV) .pytest_cache
