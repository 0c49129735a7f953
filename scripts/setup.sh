#!/usr/bin/env bash
# One set-up step for a fresh machine (called by `make demo`, `make test`, `make bench`).
#
# 1. a virtual environment in $VENV (default .venv) with cdi-spark installed (editable, dev extras);
# 2. zingg 0.7.0 with --no-deps (its wheel pins py4j==0.10.9, which conflicts with pyspark);
# 3. the Delta jars (io.delta:delta-spark_2.12 and io.delta:delta-storage, the same version as the
#    delta-spark Python package) fetched from Maven Central with mvn into $CDI_SPARK_JARS_DIR
#    (default ~/.cache/cdi-spark/jars), where cdi_spark.session looks for them.
#
# Idempotent: when pyproject.toml has not changed and the jars are there it takes about a second.
set -euo pipefail

cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3.11}"
JARS_DIR="${CDI_SPARK_JARS_DIR:-$HOME/.cache/cdi-spark/jars}"
ZINGG_VERSION="0.7.0"
DELTA_VERSION="$(sed -n 's/.*"delta-spark==\([0-9.]*\)".*/\1/p' pyproject.toml)"
DEP_PLUGIN="org.apache.maven.plugins:maven-dependency-plugin:3.6.1"

log() { printf '[setup] %s\n' "$*" >&2; }

command -v "$PYTHON" >/dev/null || { log "error: $PYTHON not found; set PYTHON=/path/to/python3.11"; exit 1; }
command -v java >/dev/null || { log "error: java not found; Spark 3.5 needs a JDK 17 on PATH"; exit 1; }
command -v mvn >/dev/null || { log "error: mvn not found; it fetches the Delta jar from Maven Central"; exit 1; }
[ -n "$DELTA_VERSION" ] || { log "error: could not read the delta-spark pin from pyproject.toml"; exit 1; }

# --- Python packages -------------------------------------------------------------------------
stamp="$VENV/.cdi-spark-setup"
want="$( (cat pyproject.toml; echo "zingg=$ZINGG_VERSION") | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$VENV/bin/python" ]; then
  log "python packages up to date in $VENV"
else
  [ -x "$VENV/bin/python" ] || { log "creating virtual environment $VENV"; "$PYTHON" -m venv "$VENV"; }
  log "installing cdi-spark and its dependencies into $VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet -e ".[dev]"
  log "installing zingg==$ZINGG_VERSION (--no-deps: its py4j pin conflicts with pyspark's)"
  "$VENV/bin/python" -m pip install --quiet --no-deps "zingg==$ZINGG_VERSION"
  echo "$want" > "$stamp"
fi

# --- Delta jars from Maven Central -----------------------------------------------------------
mkdir -p "$JARS_DIR"
for artifact in "io.delta:delta-spark_2.12:$DELTA_VERSION" "io.delta:delta-storage:$DELTA_VERSION"; do
  name="$(echo "$artifact" | cut -d: -f2)-$DELTA_VERSION.jar"
  if [ -s "$JARS_DIR/$name" ]; then
    log "jar present: $JARS_DIR/$name"
  else
    log "fetching $artifact with mvn"
    mvn --batch-mode --quiet -Dstyle.color=never "$DEP_PLUGIN:copy" -Dartifact="$artifact" \
      -DoutputDirectory="$JARS_DIR" -Dmdep.overWriteIfNewer=true
    [ -s "$JARS_DIR/$name" ] || { log "error: mvn did not produce $JARS_DIR/$name"; exit 1; }
  fi
done
log "ready: $VENV (python), $JARS_DIR (jars)"
