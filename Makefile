# Two commands on a fresh machine:  `make demo` (the main job)  and  `make test` (the tests).
# Both create .venv and install handsign into it first (torch from the local wheel cache: ~2 min).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# the real data sets: ../shared/data beside the checkout if present, else ./data
export HANDSIGN_DATA ?= $(abspath $(firstword $(wildcard ../shared/data) data))

.PHONY: install test demo
install: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

test: install
	$(PY) -m pytest

# the main job: the course's five stages, quick mode, as an HTML report in report-quick/
demo: install
	rm -rf report-quick
	$(VENV)/bin/handsign reproduce --quick --out report-quick
	@echo "open report-quick/report.html"
