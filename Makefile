# Thin wrapper: every target does its own set-up first (idempotent, about a second when done).
VENV ?= .venv
PY := $(VENV)/bin/python
PEOPLE ?= 3000
SEED ?= 42
CONFIG ?= conf/pipeline.yml
PYTEST_ARGS ?=

.PHONY: setup demo test test-fast lint clean

setup:
	@VENV=$(VENV) bash scripts/setup.sh

demo: setup
	$(VENV)/bin/cdi-spark demo --config $(CONFIG) --people $(PEOPLE) --seed $(SEED)

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: setup
	$(PY) -m pytest -m "not slow and not zingg and not e2e and not cluster" $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check cdi_spark jobs tests

clean:
	rm -rf lakehouse data spark-warehouse .pytest_cache
