# Two commands on a fresh machine: `make demo` and `make test`. Both set themselves up first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEMO_DIR ?= demo_output

.PHONY: setup demo test test-unit test-e2e test-airflow browser bench bench-photos bench-accuracy bench-accuracy-holdout bench-api bench-av lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@command -v java >/dev/null || { echo "error: Java 17 is required by Spark (apt-get install openjdk-17-jre-headless)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

demo: setup
	$(VENV)/bin/medialayer demo --out $(DEMO_DIR) $(DEMO_ARGS)

test: setup browser
	$(PY) -m pytest -q --durations=10 tests/unit tests/e2e

# Headless Chromium renders the review report in the tests; installed when missing and we are root.
browser:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing chromium (the report test renders the HTML review queue)"; \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null || \
			{ apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; }; \
		else echo "warning: chromium is missing and cannot be installed here; the report test will fail"; fi; }

# Airflow is an optional extra, kept out of `make setup`; its own pins are in constraints-airflow.txt.
AIRFLOW_STAMP := $(VENV)/.airflow-installed
$(AIRFLOW_STAMP): $(STAMP) constraints-airflow.txt
	$(PY) -m pip install --quiet -c constraints-airflow.txt -e '.[dev,airflow]'
	@touch $(AIRFLOW_STAMP)

test-airflow: $(AIRFLOW_STAMP)
	$(PY) -m pytest -q tests/airflow

test-unit: setup
	$(PY) -m pytest -q tests/unit

test-e2e: setup
	$(PY) -m pytest -q tests/e2e

# Image accuracy and speed on real photographs (Debian wallpapers + scikit-image/-learn samples).
# The wallpaper packages are installed when missing and we are root; otherwise the benchmark says
# which packages it needs.
WALLPAPER_PKGS := plasma-workspace-wallpapers gnome-backgrounds mate-backgrounds
bench-photos:
	@missing=""; for p in $(WALLPAPER_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing$$missing (photographs for the benchmark)"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing >/dev/null || \
		{ apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing >/dev/null; }; \
	fi

bench-accuracy: setup bench-photos
	$(PY) bench/bench_accuracy.py $(BENCH_ARGS)

# The same on 45 pictures no matching rule was tuned on (Debian packages fetched with apt-get
# download and unpacked into bench/.cache, not installed; bench/holdout_photos.py).
HOLDOUT := bench/.cache/holdout
bench-accuracy-holdout: setup
	@test -d $(HOLDOUT) || $(PY) bench/holdout_photos.py $(HOLDOUT)
	$(PY) bench/bench_accuracy.py --photos $(HOLDOUT) $(BENCH_ARGS)

# API latency and search at scale (API_ARGS="--index-size 1000000" for the issue's target size).
# Video/audio detection per edit, segment error and speed (speech from Debian's espeak-ng, installed
# when missing and we are root; without it the sound tracks are generated music only).
bench-av: setup bench-photos
	@command -v espeak-ng >/dev/null || { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing espeak-ng (speech for the benchmark's sound tracks)"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q espeak-ng >/dev/null || \
		{ apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q espeak-ng >/dev/null; }; fi; }
	$(PY) bench/bench_av.py $(AV_ARGS)

# Cost curves: fingerprinting throughput, candidates/verify/clusters at growing N, the banding
# join against MinHashLSH (SCALE_ARGS=--full for 100k, 300k and 1M media).
bench: setup bench-photos
	$(PY) bench/bench_scale.py $(SCALE_ARGS)

bench-api: setup bench-photos
	$(PY) bench/bench_api.py $(API_ARGS)

lint: setup
	$(PY) -m compileall -q lib jobs tests

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache bench/.cache
