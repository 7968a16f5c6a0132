# Two commands on a fresh machine: `make demo` and `make test`. Both set themselves up first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEMO_DIR ?= demo_output

.PHONY: setup demo test test-unit test-e2e bench-accuracy lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@command -v java >/dev/null || { echo "error: Java 17 is required by Spark (apt-get install openjdk-17-jre-headless)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

demo: setup
	$(VENV)/bin/medialayer demo --out $(DEMO_DIR)

test: setup
	$(PY) -m pytest -q --durations=10

test-unit: setup
	$(PY) -m pytest -q tests/unit

test-e2e: setup
	$(PY) -m pytest -q tests/e2e

lint: setup
	$(PY) -m compileall -q lib jobs tests

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache
