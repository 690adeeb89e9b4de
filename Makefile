# Two commands set everything up on a fresh machine:
#   make demo   -> environment + the whole chain on the built-in demo pool (./gdo-demo/)
#   make test   -> environment + ruff + the test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip -q --disable-pip-version-check
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=

.PHONY: setup setup-browser demo test lint bench test-heavy setup-heavy clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip setuptools wheel
	# CPU torch: the pinned version resolves to the local CPU wheel (find-links) on our machines;
	# elsewhere pass TORCH_INDEX=https://download.pytorch.org/whl/cpu (or a CUDA index, README).
	$(PIP) install "$(TORCH_SPEC)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PIP) install -e ".[model,dev]"
	touch $@

demo: setup
	$(VENV)/bin/gdo-opt demo

lint: setup
	$(PY) -m ruff check .

# Debian's chromium renders report.html in tests/subset/test_report_browser.py (skips if not installable).
setup-browser:
	scripts/setup-browser.sh

test: setup setup-browser
	$(PY) -m ruff check .
	$(PY) -m pytest -q

# ms-swift + lmms-eval live in their own CPU-only environment (.venv-heavy): they pin other torch /
# torchvision versions. scripts/setup-heavy.sh is idempotent.
setup-heavy:
	scripts/setup-heavy.sh

test-heavy: setup-heavy
	.venv-heavy/bin/python -m pytest -q -m heavy tests/heavy

bench: setup
	$(PY) experiments/bench_solvers.py
	$(PY) experiments/bench_select.py
	$(PY) experiments/bench_ingest.py --rows 100000

clean:
	rm -rf $(VENV) gdo-demo build *.egg-info .pytest_cache .ruff_cache
