# Two commands on a fresh machine: `make train` and `make test`. Both create the virtual
# environment on first use and reuse it afterwards (setup is skipped until pyproject.toml
# changes).
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.ganlab-installed
# Debian's Chromium: the report's browser test drives it (installed when missing)
CHROMIUM := /usr/bin/chromium
# Debian's SLURM and munge: the tests start a one-node cluster (scripts/slurm-local.sh)
SLURMCTLD := /usr/sbin/slurmctld
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup train test lint bench

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,sweeps,optuna,report]'
	test -x $(CHROMIUM) || ($(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium)
	test -x $(SLURMCTLD) || ($(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q slurm-wlm munge)
	touch $(STAMP)

train: $(STAMP)   ## train the default GAN (ring8, CPU); pass overrides as ARGS="loss=hinge steps=8000"
	$(PY) -m ganlab $(ARGS)

test: $(STAMP)    ## lint, then the whole test suite (slow tests included)
	$(PY) -m ruff check src tests benchmarks notebooks examples scripts
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP)   ## throughput of ganlab against a plain PyTorch loop
	$(PY) benchmarks/throughput.py
