# Two entry points on a fresh machine: `make demo` and `make test`. Both create .venv,
# build the native module and install radedge into it; later runs only rebuild what changed.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# The export stage and its tests need PyTorch; a CPU build is enough.
TORCH  ?= torch==2.13.0
OUT    ?= out/demo

# The editable install records the package list and the compiled module: reinstall when
# native sources change or a Python package is added.
INSTALL_INPUTS := CMakeLists.txt pyproject.toml $(shell find kernels -type f 2>/dev/null) \
                  $(shell find sdk export -name __init__.py 2>/dev/null)

.PHONY: demo test bench venv clean

$(VENV)/bin/activate:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.installed: $(VENV)/bin/activate $(INSTALL_INPUTS)
	$(PIP) install --quiet "scikit-build-core>=0.11" "pybind11>=2.12"
	$(PIP) install --no-build-isolation --editable .
	touch $@

$(VENV)/.test-deps: $(VENV)/.installed
	$(PIP) install --quiet "$(TORCH)"
	$(PIP) install --quiet --no-build-isolation --editable ".[test,export]"
	touch $@

venv: $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/radedge run examples/radiographs --out $(OUT)

test: $(VENV)/.test-deps
	$(VENV)/bin/radedge doctor
	$(PY) -m pytest -q

bench: $(VENV)/.installed
	$(PY) examples/bench_preprocess.py

clean:
	rm -rf build $(VENV) out .pytest_cache
