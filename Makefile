# Every target sets itself up: a fresh clone needs only `make train` or `make test`.
PYTHON ?= python3
VENV ?= .venv
# Installed before the package so that its `torch>=2.4` range is already satisfied.
# Override for another build, e.g. make train TORCH_SPEC="torch==2.13.0 --index-url ...".
TORCH_SPEC ?= torch==2.13.0
# mlflow, wandb: the optional trackers, so that `make test` tests them (~200 MB, ~30 s more to install).
EXTRAS ?= dev,sweep,bench,mlflow,wandb
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ARGS ?=
PYTEST_ARGS ?=
SWEEP ?= compare_quick
# The newest sweep folder (by modification time), or RUNS="dir1 dir2".
RUNS ?= $(shell ls -td outputs/multirun/*/ 2>/dev/null | head -1)
# Test reviews on which `make report` explains the selected RNN and transformer (0: skip).
EXPLAIN ?= 20

.PHONY: setup train test test-all sweep report tensorboard bench lint clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_SPEC)
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

setup: $(STAMP)

train: setup
	$(PY) -m imdb_lm.train $(ARGS)

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

test-all: setup
	$(PY) -m pytest -m "slow or not slow" $(PYTEST_ARGS)

sweep: setup
	$(PY) -m imdb_lm.train --multirun experiment=$(SWEEP) $(ARGS)

report: setup
	$(PY) -m imdb_lm.report $(RUNS) --explain $(EXPLAIN) $(ARGS)

tensorboard: setup
	$(VENV)/bin/tensorboard --logdir outputs $(ARGS)

bench: setup
	$(PY) -m imdb_lm.bench $(ARGS)

lint: setup
	$(VENV)/bin/ruff check .

clean:
	rm -rf .cache outputs/runs outputs/multirun
