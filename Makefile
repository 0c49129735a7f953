# Thin wrapper: every target does its own set-up first (idempotent, about a second when done).
VENV ?= .venv
PY := $(VENV)/bin/python
PEOPLE ?= 3000
SEED ?= 42
CONFIG ?= conf/pipeline.yml
PYTEST_ARGS ?=

PEER_VENV ?= .venv-peer

.PHONY: setup setup-peer demo test test-fast lint clean bench cluster-check

setup:
	@VENV=$(VENV) bash scripts/setup.sh

# The benchmark's peer (Splink 5 on DuckDB) in a virtual environment of its own: never a runtime dependency.
setup-peer:
	@PEER_VENV=$(PEER_VENV) bash scripts/setup_peer.sh

demo: setup
	$(VENV)/bin/cdi-spark demo --config $(CONFIG) --people $(PEOPLE) --seed $(SEED)

test: setup setup-peer
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: setup
	$(PY) -m pytest -m "not slow and not zingg and not e2e and not cluster" $(PYTEST_ARGS)

# `make bench PEOPLE=100000 REPEAT=3 [STAGES=ingest] [DAY2=1] [PEER=splink]`: PEOPLE defaults to 100000 here, not the demo's 3000.
BENCH_PEOPLE = $(if $(filter file,$(origin PEOPLE)),100000,$(PEOPLE))
REPEAT ?= 2
STAGES ?=
DAY2 ?=
PEER ?=

bench: setup $(if $(PEER),setup-peer)
	$(PY) jobs/benchmark.py --config $(CONFIG) --people $(BENCH_PEOPLE) --seed $(SEED) --repeat $(REPEAT) \
		$(if $(STAGES),--stages $(STAGES)) $(if $(DAY2),--day2) $(if $(PEER),--peer $(PEER) --peer-python $(PEER_VENV)/bin/python)

# A standalone master and two workers on this machine; the pipeline submitted to them must give the local run's tables.
cluster-check: setup
	VENV=$(VENV) bash scripts/local_cluster.sh check

lint: setup
	$(VENV)/bin/ruff check cdi_spark jobs tests

clean:
	rm -rf lakehouse data spark-warehouse .pytest_cache
