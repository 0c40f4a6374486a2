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

# the page's browser files (@mediapipe/tasks-vision, pinned in its package-lock.json) for live spelling in the
# browser; without npm the page reads live frames on the server instead, and says so
WEB_VENDOR := handsign/web/vendor

.PHONY: install test demo
install: $(VENV)/.installed $(WEB_VENDOR)/node_modules/.package-lock.json
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(if $(TORCH_INDEX),$(PY) -m pip install --quiet torch==2.14.1 torchvision==0.29.1 --index-url $(TORCH_INDEX))
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

$(WEB_VENDOR)/node_modules/.package-lock.json: $(WEB_VENDOR)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then npm ci --prefix $(WEB_VENDOR) --no-audit --no-fund --loglevel=error; \
	else echo "handsign: note: npm not found: live spelling will read frames on the server, not in the browser (install Node.js and npm, then make install)"; fi

test: install
	$(PY) -m pytest

# the main job: the course's five stages, quick mode, as an HTML report in report-quick/
demo: install
	rm -rf report-quick
	$(VENV)/bin/handsign reproduce --quick --out report-quick
