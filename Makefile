# Everything starts from nothing: `make test` and `make figures` create .venv with pip if it is
# missing and install the package with every dependency before doing their job.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.mnistlab-installed
PYTEST_ARGS ?=
# On the project's machines the data sits beside the checkout; elsewhere torchvision downloads it.
ifneq ($(wildcard ../shared/data/MNIST/raw),)
export MNISTLAB_DATA ?= $(abspath ../shared/data)
endif
export MPLBACKEND ?= Agg

.PHONY: install test test-fast figures figures-quick lab bench clean

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

figures-quick: $(STAMP)
	$(BIN)/mnistlab figures --quick --out build/figures-quick

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

bench: $(STAMP)
	$(BIN)/python benchmarks/loader_speed.py
	$(BIN)/python benchmarks/time_to_accuracy.py
	$(BIN)/python benchmarks/tsne_speed.py
	$(BIN)/python benchmarks/parallel_speed.py
	$(BIN)/python benchmarks/recorder_overhead.py
	$(BIN)/python benchmarks/photo_accuracy.py --json build/photo_accuracy.json

clean:
	rm -rf $(VENV) build notebooks/executed .mnistlab-cache .pytest_cache
