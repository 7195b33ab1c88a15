# plantlink: `make demo` runs a simulated plant; `make test` runs lint and the whole test suite.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python

.PHONY: demo test lint unit bench venv dev clean browser css proto

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/activate
	$(PY) -m pip install -q -e .
	touch $@

# the demo plant's S7 and Logix PLCs need the s7, logix and logix-sim extras: the `demo` extra pulls them
$(VENV)/.installed-demo: pyproject.toml | $(BIN)/activate
	$(PY) -m pip install -q -e '.[demo]'
	touch $@ $(VENV)/.installed

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/activate
	$(PY) -m pip install -q -e '.[dev]'
	touch $@ $(VENV)/.installed $(VENV)/.installed-demo

venv: $(VENV)/.installed
dev: $(VENV)/.installed-dev

demo: $(VENV)/.installed-demo
	$(BIN)/plantlink demo

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/mypy
	$(BIN)/lint-imports

# The HMI's browser tests drive Debian's Chromium (never a downloaded one): install it when missing (as root),
# or say in one line what to run.
CHROMIUM ?= /usr/bin/chromium
browser:
	@[ -x $(CHROMIUM) ] || [ "$$(id -u)" != 0 ] || { \
	  echo "make: installing Debian's chromium for the browser tests"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q && apt-get install -y -q chromium; }; }
	@[ -x $(CHROMIUM) ] || { echo "make test needs Debian's Chromium for the browser tests: run 'sudo apt-get install -y chromium'"; exit 1; }

# TEST_JOBS pytest processes at once (scripts/test_parallel.py: the suite in units, longest first); 1: one pytest
TEST_JOBS ?= 2
unit: $(VENV)/.installed-dev browser
ifeq ($(TEST_JOBS),1)
	$(BIN)/pytest -q $(PYTEST_ARGS)
else
	$(PY) scripts/test_parallel.py --jobs $(TEST_JOBS) -- $(PYTEST_ARGS)
endif

test: lint unit

bench: $(VENV)/.installed-dev
	$(PY) bench/historian.py
	$(PY) bench/pipeline.py

# The HMI's Tailwind stylesheet, compiled ahead for the classes the HMI's sources name (tests/hmi/test_css.py
# says when it is out of date).
css: $(VENV)/.installed-dev browser
	$(PY) scripts/hmi_css.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# The Sparkplug B protobuf module, generated from its .proto by the official toolchain (grpcio-tools' protoc).
SPB := src/plantlink/connectors/mqtt/sparkplug
proto: $(VENV)/.installed-dev
	cd $(SPB) && $(abspath $(PY)) -m grpc_tools.protoc -I. --python_out=. --pyi_out=. sparkplug_b.proto
