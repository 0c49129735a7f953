"""``audit.runs``: one row per pipeline run, written when it starts and when it ends.

:func:`cdi_spark.pipeline.run_pipeline` calls :func:`start_run` before the first stage
(status ``running``) and :func:`finish_run` after the last one (``succeeded``) or when a
stage raises (``failed``, with the error; the exception still propagates). Both write with
:func:`cdi_spark.delta_io.merge_upsert` keyed by ``run_id``, so the row is replaced, not
repeated. A process killed outright leaves its row ``running``.

Columns of ``audit.runs``:

================  ===========================  ================================================
``run_id``        string                       the run (also every commit's ``userMetadata``)
``started_at``    timestamp                    when the run started (UTC)
``ended_at``      timestamp                    when it ended; null while running
``status``        string                       ``running``, ``succeeded`` or ``failed``
``error``         string                       the failing exception's type and message
``stages``        array<string>                the stages the run was asked to run, in order
``config_hash``   string                       sha-256 of every configuration file the run read
``versions``      map<string, bigint>          ``<layer>.<name>`` -> the last Delta version the
                                               run committed to that table; a table the run
                                               did not change is absent
``counts``        map<string, map<string,      stage -> its report's counts (stages that
                  bigint>>                     finished)
``metrics``       map<string, double>          match metrics: the resolve stage's counts, and
                                               whatever the caller adds
``seconds``       map<string, double>          stage -> its wall time in seconds (stages that
                                               finished); the run report's stage timings
================  ===========================  ================================================

A run id that is used again (the demo runs its stages in two calls under one id, or an
operator re-runs a crashed run with ``--run-id``) extends its row: the first start time
stays, stages, counts, seconds and versions are added to. A table written before the
``seconds`` column existed gains it at the next write (Delta schema evolution); its old
rows read as no seconds.

Example:
    Which version of the golden profiles did a run produce, and with which configuration?

    .. code-block:: sql

        SELECT run_id, status, config_hash, versions['gold.customer_profile'] AS profile_version
        FROM audit.runs ORDER BY started_at DESC
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    DoubleType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from cdi_spark import delta_io, tables
from cdi_spark.config import PipelineConfig
from cdi_spark.lakehouse import table_paths

log = logging.getLogger(__name__)

RUNNING, SUCCEEDED, FAILED = "running", "succeeded", "failed"
RUNS_SCHEMA = StructType([
    StructField("run_id", StringType(), False),
    StructField("started_at", TimestampType(), False),
    StructField("ended_at", TimestampType(), True),
    StructField("status", StringType(), False),
    StructField("error", StringType(), True),
    StructField("stages", ArrayType(StringType(), False), False),
    StructField("config_hash", StringType(), True),
    StructField("versions", MapType(StringType(), LongType(), False), False),
    StructField("counts", MapType(StringType(), MapType(StringType(), LongType(), False), False), False),
    StructField("metrics", MapType(StringType(), DoubleType(), False), False),
    StructField("seconds", MapType(StringType(), DoubleType(), False), False),
])
# Commits are matched to the run by user metadata; the start time only bounds the history
# read. The slack allows for a storage clock that runs behind the driver's.
CLOCK_SLACK_SECONDS = 300.0
MAX_ERROR_CHARS = 4000
JOB_GROUP = "cdi-spark audit.runs"


@dataclass(frozen=True)
class RunRecord:
    """One row of ``audit.runs`` (see the module docstring for the columns)."""

    run_id: str
    started_at: datetime
    stages: tuple[str, ...] = ()
    config_hash: str | None = None
    status: str = RUNNING
    ended_at: datetime | None = None
    error: str | None = None
    versions: dict[str, int] = field(default_factory=dict)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def runs_path(lakehouse: str) -> str:
    """The folder of ``audit.runs``."""
    return tables.table_path(lakehouse, tables.AUDIT, tables.RUNS)


# --------------------------------------------------------------------------------------------
# Configuration hash
# --------------------------------------------------------------------------------------------


def _is_yaml(value: object) -> bool:
    return isinstance(value, str) and value.lower().endswith((".yml", ".yaml"))


def _named_in(data: Any) -> Iterator[str]:
    """Every string in a parsed YAML document that names a YAML file."""
    if isinstance(data, Mapping):
        for value in data.values():
            yield from _named_in(value)
    elif isinstance(data, list):
        for value in data:
            yield from _named_in(value)
    elif _is_yaml(data):
        yield data


def config_files(cfg: PipelineConfig) -> list[Path]:
    """The configuration files a run reads, sorted: the pipeline YAML, every
    ``sources_dir/*.yml``, every YAML file a :class:`PipelineConfig` field names (matching,
    survivorship, quality, ... defaults included), and any YAML file named inside those
    (``customer_360.yml``'s ``rates: currency_rates.yml``), relative to the naming file.
    Named files that do not exist are listed too (the hash records them as missing).
    """
    base = cfg.base_dir
    start = [Path(cfg.path)] if cfg.path else []
    start += sorted((base / cfg.sources_dir).glob("*.yml"))
    start += [base / value for f in dataclasses.fields(cfg) if f.init and _is_yaml(value := getattr(cfg, f.name))]
    seen: dict[Path, None] = {}
    todo = [Path(os.path.normpath(p)) for p in start]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen[path] = None
        if path.is_file():
            try:
                data = yaml.safe_load(path.read_text(encoding="utf-8"))
            except (yaml.YAMLError, UnicodeDecodeError):
                continue  # still hashed as bytes; load_config reports the problem
            todo += [Path(os.path.normpath(path.parent / name)) for name in _named_in(data)]
    return sorted(seen)


def config_hash(cfg: PipelineConfig) -> str:
    """sha-256 (hex) over the files of :func:`config_files`: each one's path relative to the
    pipeline YAML's folder and its bytes. The same files give the same hash wherever the
    folder is; a changed byte, an added or removed source file changes it. Command-line
    overrides (``--lakehouse``) are not in any file and do not count. A configuration built
    in code (no ``path``) hashes its field values instead.
    """
    digest = hashlib.sha256()
    if not cfg.path:
        digest.update(repr(dataclasses.asdict(cfg)).encode())
    for path in config_files(cfg):
        name = os.path.relpath(path, cfg.base_dir).replace(os.sep, "/")
        content = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing"
        digest.update(f"{name}\0{content}\n".encode())
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------
# What a run did: versions, counts, metrics
# --------------------------------------------------------------------------------------------


def committed_versions(spark: SparkSession, lakehouse: str, run_id: str, since: datetime) -> dict[str, int]:
    """``<layer>.<name>`` -> the last version of each lakehouse table committed by ``run_id``.

    Only the newest commits of each table are read: the history is walked back until the
    first commit older than ``since`` (less :data:`CLOCK_SLACK_SECONDS`). ``audit.runs``
    itself is left out (the run's own bookkeeping).
    """
    cutoff = since.timestamp() - CLOCK_SLACK_SECONDS
    found = {}
    own = os.path.normpath(runs_path(lakehouse))
    for path in table_paths(lakehouse):
        if os.path.normpath(path) == own:
            continue
        mine = [c["version"] for c in delta_io.commits_since(spark, str(path), cutoff) if c["user_metadata"] == run_id]
        if mine:
            found[tables.qualified_name(path.parent.name, path.name)] = max(mine)
    return found


def stage_counts(reports: Sequence[Any]) -> dict[str, dict[str, int]]:
    """stage -> its report's counts (a :class:`cdi_spark.pipeline.StageReport` each)."""
    return {r.stage: {k: int(v) for k, v in r.counts.items()} for r in reports}


def stage_seconds(reports: Sequence[Any]) -> dict[str, float]:
    """stage -> its report's wall time in seconds."""
    return {r.stage: float(r.seconds) for r in reports}


def match_metrics(reports: Sequence[Any]) -> dict[str, float]:
    """The resolve stage's numeric counts as metrics (records, edges, clusters, ...)."""
    return {
        k: float(v) for r in reports if r.stage == "resolve"
        for k, v in r.counts.items() if isinstance(v, int | float) and not isinstance(v, bool)
    }


# --------------------------------------------------------------------------------------------
# Reading and writing audit.runs
# --------------------------------------------------------------------------------------------


@contextmanager
def own_job_group(spark: SparkSession, group: str = JOB_GROUP) -> Iterator[None]:
    """Run the block's Spark jobs in job group ``group``, so that a caller counting the jobs of
    its own group (the benchmark) counts the stages' jobs only, not the bookkeeping's
    (``audit.runs``, the run report)."""
    sc = spark.sparkContext
    before = sc.getLocalProperty("spark.jobGroup.id")
    sc.setLocalProperty("spark.jobGroup.id", group)
    try:
        yield
    finally:
        sc.setLocalProperty("spark.jobGroup.id", before)


def read_run(spark: SparkSession, lakehouse: str, run_id: str) -> RunRecord | None:
    """The row of ``run_id`` (small metadata, collected), or None."""
    path = runs_path(lakehouse)
    if not delta_io.exists(spark, path):
        return None
    row = delta_io.read(spark, path).filter(F.col("run_id") == run_id).first()
    if row is None:
        return None
    values = row.asDict(recursive=False)
    for name in ("started_at", "ended_at"):
        if values[name] is not None:  # Spark gives naive local times; the record holds UTC
            values[name] = values[name].astimezone(UTC)
    values["stages"] = tuple(values["stages"] or ())
    values["counts"] = {k: dict(v) for k, v in (values["counts"] or {}).items()}
    values["versions"], values["metrics"] = dict(values["versions"] or {}), dict(values["metrics"] or {})
    values["seconds"] = dict(values.get("seconds") or {})  # absent from tables written before it existed
    return RunRecord(**{k: values[k] for k in (f.name for f in dataclasses.fields(RunRecord))})


def record_run(spark: SparkSession, lakehouse: str, record: RunRecord) -> int:
    """Write ``record`` into ``audit.runs`` (insert, or replace the row of its run id).

    Returns:
        The version of ``audit.runs`` the write committed.
    """
    row = (record.run_id, record.started_at, record.ended_at, record.status, record.error, list(record.stages),
           record.config_hash, dict(record.versions), {k: dict(v) for k, v in record.counts.items()},
           dict(record.metrics), dict(record.seconds))  # fmt: skip
    df = spark.createDataFrame([row], RUNS_SCHEMA)
    with own_job_group(spark):
        return delta_io.merge_upsert(spark, df, runs_path(lakehouse), keys=["run_id"], user_metadata=record.run_id)


def start_run(spark: SparkSession, cfg: PipelineConfig, run_id: str, *, now: datetime | None = None) -> RunRecord:
    """Record ``run_id`` as running (extending its row when the id was used before).

    Returns:
        The record written; pass it to :func:`finish_run`.
    """
    now = now or datetime.now(UTC)
    with own_job_group(spark):
        previous = read_run(spark, cfg.lakehouse, run_id)
    record = RunRecord(run_id, now, tuple(cfg.stages), config_hash(cfg))
    if previous is not None:
        log.info("run %s: already in audit.runs (%s); extending its row", run_id, previous.status)
        stages = tuple(dict.fromkeys([*previous.stages, *cfg.stages]))
        record = dataclasses.replace(previous, stages=stages, config_hash=record.config_hash, status=RUNNING,
                                     ended_at=None, error=None)
    record_run(spark, cfg.lakehouse, record)
    return record


def finish_run(
    spark: SparkSession,
    cfg: PipelineConfig,
    run: RunRecord,
    reports: Sequence[Any],
    *,
    error: BaseException | None = None,
    metrics: Mapping[str, float] | None = None,
    now: datetime | None = None,
) -> RunRecord:
    """Record the end of ``run``: ``succeeded``, or ``failed`` with ``error``.

    Args:
        spark: the session.
        cfg: the run's configuration (its lakehouse).
        run: what :func:`start_run` returned.
        reports: the reports of the stages that finished.
        error: the exception that stopped the run, if one did.
        metrics: more metrics to record (an evaluation against ground truth, ...); they
            are added to :func:`match_metrics` of ``reports``, winning on equal names.
        now: the end time (default: now).

    Returns:
        The record written.
    """
    with own_job_group(spark):
        versions = committed_versions(spark, cfg.lakehouse, run.run_id, run.started_at)
    message = None if error is None else f"{type(error).__name__}: {error}"[:MAX_ERROR_CHARS]
    record = dataclasses.replace(
        run,
        ended_at=now or datetime.now(UTC),
        status=FAILED if error is not None else SUCCEEDED,
        error=message,
        versions={**run.versions, **versions},
        counts={**run.counts, **stage_counts(reports)},
        metrics={**run.metrics, **match_metrics(reports), **(metrics or {})},
        seconds={**run.seconds, **stage_seconds(reports)},
    )
    record_run(spark, cfg.lakehouse, record)
    return record
