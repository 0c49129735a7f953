#!/usr/bin/env bash
# The benchmark's peer: a separate virtual environment with Splink 5 and its DuckDB backend.
#
# Splink is a bench-only peer, never a runtime dependency of cdi-spark. It needs pyarrow>=18
# while PySpark 3.5 pins pyarrow<17 in the main venv, so it lives in its own venv and runs as a
# separate process (cdi_spark/peer/splink_peer.py, run with "$PEER_VENV/bin/python").
#
# 1. a virtual environment in $PEER_VENV (default .venv-peer);
# 2. splink==$SPLINK_VERSION and pandas, for whoever wants Splink's results as DataFrames (the
#    peer script itself reads and writes through DuckDB). Splink pulls duckdb, pyarrow and sqlglot
#    with open ranges; they are pinned here to the versions the peer was tried with, so that a new
#    release (DuckDB 2.0 changed how unfetched results block a connection; sqlglot writes Splink's
#    SQL) cannot change the benchmark's peer unnoticed.
#
# Idempotent: when the pins below have not changed it takes about a second.
set -euo pipefail

cd "$(dirname "$0")/.."
PEER_VENV="${PEER_VENV:-.venv-peer}"
PYTHON="${PYTHON:-python3.11}"
SPLINK_VERSION="5.0.0"
PACKAGES=("splink==$SPLINK_VERSION" "duckdb==2.0.1" "sqlglot==30.31.0" "pyarrow==26.0.1" "pandas")

log() { printf '[setup-peer] %s\n' "$*" >&2; }

command -v "$PYTHON" >/dev/null || { log "error: $PYTHON not found; set PYTHON=/path/to/python3.11"; exit 1; }

stamp="$PEER_VENV/.cdi-spark-peer-setup"
want="$(printf '%s\n' "${PACKAGES[@]}" | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$PEER_VENV/bin/python" ]; then
  log "peer packages up to date in $PEER_VENV"
else
  [ -x "$PEER_VENV/bin/python" ] || { log "creating virtual environment $PEER_VENV"; "$PYTHON" -m venv "$PEER_VENV"; }
  log "installing ${PACKAGES[*]} into $PEER_VENV"
  "$PEER_VENV/bin/python" -m pip install --quiet --upgrade pip
  "$PEER_VENV/bin/python" -m pip install --quiet "${PACKAGES[@]}"
  echo "$want" > "$stamp"
fi

versions="$("$PEER_VENV/bin/python" -c \
  'from importlib.metadata import version as v; print("splink", v("splink") + ", duckdb", v("duckdb"))')"
log "ready: $PEER_VENV ($versions)"
