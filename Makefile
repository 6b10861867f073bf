# Everything starts from nothing: `make test` and `make figures` create .venv with pip if it is
# missing and install the package with every dependency before doing their job.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.mnistlab-installed
# Two pytest workers (pytest-xdist), each test file on one worker so a notebook's QUICK run is made once:
# 12.7 min for the whole suite on the 2-core machine (2026-12-07); each QUICK notebook kernel gets one torch thread
# there (tests/conftest.py), so two kernels never wait on each other's spinning threads.
PYTEST_ARGS ?= -n 2 --dist loadfile
# On the project's machines the data sits beside the checkout; elsewhere torchvision downloads it.
ifneq ($(wildcard ../shared/data/MNIST/raw),)
export MNISTLAB_DATA ?= $(abspath ../shared/data)
endif
export MPLBACKEND ?= Agg

.PHONY: install test test-fast figures figures-quick lab bench gpu-check clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet torch torchvision
	$(BIN)/python -m pip install --quiet -e ".[test]"
	@# MulticoreTSNE is abandoned upstream: it builds only with cmake < 3.20, outside pip's build isolation.
	$(BIN)/python -m pip install --quiet "cmake==3.18.4.post1"
	PATH="$(BIN):$$PATH" $(BIN)/python -m pip install --quiet --no-build-isolation MulticoreTSNE
	$(BIN)/python -c "import mnistlab, MulticoreTSNE, openTSNE, papermill, captum, cleanlab, torchmetrics, torch_fidelity, ray, tensorboard; print('mnistlab', mnistlab.__version__, 'installed')"
	touch $@

install: $(STAMP)

test: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/pytest -m "not notebook" $(PYTEST_ARGS)

figures: $(STAMP)
	$(BIN)/mnistlab figures
	$(BIN)/python -c "from mnistlab.runner import write_run_times, write_results; write_run_times('README.md'); write_results('README.md')"

# QUICK runs use small batches that gain little from a second thread: one notebook per core at a time.
figures-quick: $(STAMP)
	$(BIN)/mnistlab figures --quick --jobs auto --out build/figures-quick

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

# Every benchmark in full mode (ours and the reference in the same run), each writing
# benchmarks/results/<name>.json, then the README's speed table regenerated from those files. The GPU
# benchmarks (and time to 99% with --device cuda) run only where CUDA is available.
BENCHMARKS ?= loader_speed train_step time_to_accuracy tsne_speed recorder_overhead parallel_speed photo_accuracy \
	best_accuracy gan_recipes
GPU_BENCHMARKS ?= gan_gpu transfer_gpu
bench: $(STAMP)
	set -e; for b in $(BENCHMARKS); do echo "== benchmarks/$$b.py"; $(BIN)/python benchmarks/$$b.py; done
	set -e; if $(BIN)/python -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then \
	  for b in $(GPU_BENCHMARKS); do echo "== benchmarks/$$b.py"; $(BIN)/python benchmarks/$$b.py --device cuda; done; \
	  $(BIN)/python benchmarks/time_to_accuracy.py --device cuda; \
	else echo "no CUDA GPU: skipping $(GPU_BENCHMARKS) and time_to_accuracy --device cuda"; fi
	$(BIN)/python benchmarks/speed_table.py --write README.md

# Everything that needs a GPU, in under 8 minutes: every notebook QUICK on cuda, notebook 07's full GAN,
# the transfer benchmark and time to 99% on the GPU. Report: build/gpu-check/report.md (and .json).
# Without a CUDA GPU it says so and succeeds; GPU_CHECK_ARGS=--require-gpu makes that a failure.
GPU_CHECK_ARGS ?=
gpu-check: $(STAMP)
	$(BIN)/python benchmarks/gpu_check.py $(GPU_CHECK_ARGS)

clean:
	rm -rf $(VENV) build notebooks/executed .mnistlab-cache .pytest_cache
