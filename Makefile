# Two commands on a fresh machine:  `make demo` (the main job)  and  `make test` (the tests).
# Both create .venv and install handsign into it first (torch from the local wheel cache: ~2 min).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# CPU-only machine: TORCH_INDEX=https://download.pytorch.org/whl/cpu installs PyTorch's CPU wheels first
# (a few hundred MB instead of the ~6 GB CUDA build that PyPI's default torch brings on Linux)
TORCH_INDEX ?=
# the real data sets: ../shared/data beside the checkout if present, else ./data
export HANDSIGN_DATA ?= $(abspath $(firstword $(wildcard ../shared/data) data))

.PHONY: install test demo
install: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(if $(TORCH_INDEX),$(PY) -m pip install --quiet torch==2.14.1 torchvision==0.29.1 --index-url $(TORCH_INDEX))
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

test: install
	$(PY) -m pytest

# the main job: the course's five stages, quick mode, as an HTML report in report-quick/
demo: install
	rm -rf report-quick
	$(VENV)/bin/handsign reproduce --quick --out report-quick
