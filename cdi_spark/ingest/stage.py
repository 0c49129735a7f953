"""The ingest stage's driver: per source, plan files, read, check, write, count, record.

See the package docstring (:mod:`cdi_spark.ingest`) for the tables and the design.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from py4j.protocol import Py4JJavaError
from pyspark import StorageLevel
from pyspark.errors import PySparkException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from cdi_spark import delta_io, tables
from cdi_spark.config import PipelineConfig, SourceConfig
from cdi_spark.errors import CdiError, StageError
from cdi_spark.ingest import files as raw_files
from cdi_spark.ingest.checks import ERROR, check_records, data_columns, duplicate_groups, mark_duplicates
from cdi_spark.ingest.parquet import parse_parquet
from cdi_spark.ingest.text import Parsed, parse_csv, parse_json_arrays, parse_json_lines, reject_missing
from cdi_spark.logs import timed

log = logging.getLogger(__name__)
T = TypeVar("T")
STAGE = "ingest"
# Sources loaded at once. One source's driver-side work (planning, Delta commits) and its
# one-task stages (a JSON array file, a small file) leave task slots idle; another source fills them.
PARALLEL_SOURCES = 2
# More keys held twice in one file than this: join them without broadcasting (never seen in practice).
BROADCAST_DUPLICATES = 1_000_000
# Column mapping lets bronze keep export column names with spaces ("Customer ID") as they are.
TABLE_PROPERTIES = {"delta.columnMapping.mode": "name"}
# A table is created with its properties set as session defaults for the duration of the
# write (delta_io): creations must not overlap, or one could miss or undo another's defaults.
_CREATING = threading.Lock()


@dataclass(frozen=True)
class IngestResult:
    """What the stage did for one source.

    Attributes:
        source: the source (bronze table) name.
        files_seen: files the source's glob matched.
        files_loaded: files loaded by this run.
        files_skipped: files loaded by an earlier run (unchanged or changed since).
        rows_read: records read from the loaded files (CSV headers and blank lines are not
            records); always ``rows_bronze + rows_quarantined``.
        rows_bronze: records appended to ``bronze.<source>``.
        rows_quarantined: records appended to ``quarantine.<source>``.
        new_columns: columns this run added to bronze that the YAML does not declare.
        error: why the source (or some of its files) could not be loaded; other sources
            are not affected. None when all went well.
        seconds: wall time spent on the source.
        changed_files: files whose size or modification time changed after they were
            loaded; reported and not loaded again.
        files_failed: files that could not be read (zero bytes, unreadable).
        bronze_version: the bronze Delta version this run committed, if any.
    """

    source: str
    files_seen: int = 0
    files_loaded: int = 0
    files_skipped: int = 0
    rows_read: int = 0
    rows_bronze: int = 0
    rows_quarantined: int = 0
    new_columns: tuple[str, ...] = ()
    error: str | None = None
    seconds: float = 0.0
    changed_files: tuple[str, ...] = field(default=())
    files_failed: int = 0
    bronze_version: int | None = None


@dataclass(frozen=True)
class _Context:
    cfg: PipelineConfig
    run_id: str
    ingested_at: datetime
    loaded: dict[str, dict[str, tuple[int, int]]]  # the manifest: source -> file -> (size, ms)
    loaded_now: list[raw_files.Loaded] = field(default_factory=list)  # for the manifest, written by ingest()

    def path(self, layer: str, name: str) -> str:
        return tables.table_path(self.cfg.lakehouse, layer, name)


def ingest(spark: SparkSession, cfg: PipelineConfig, *, run_id: str) -> list[IngestResult]:
    """Load every configured source's new raw files into bronze (and quarantine).

    A source that fails (no files, a file without a required column, an unreadable file)
    gets its ``error`` set; the other sources still load.

    Args:
        spark: the session (with Delta).
        cfg: the pipeline configuration; ``cfg.sources`` are ingested in order.
        run_id: recorded as ``_batch_id`` on every row and in every commit's user metadata.

    Returns:
        One :class:`IngestResult` per source.

    Raises:
        StageError: a bronze or quarantine commit did not write the rows counted for it, so
            rows read would not equal bronze + quarantine rows.
    """
    delta_io.register_lakehouse(spark, cfg.lakehouse, (tables.BRONZE, tables.QUARANTINE, tables.AUDIT))
    manifest = raw_files.loaded_files(spark, tables.table_path(cfg.lakehouse, tables.AUDIT, tables.INGEST_MANIFEST))
    ctx = _Context(cfg, run_id, datetime.now(UTC), manifest)
    target = _inheriting(spark, _ingest_logged)
    with ThreadPoolExecutor(max_workers=PARALLEL_SOURCES, thread_name_prefix="ingest") as pool:
        futures = [pool.submit(target, spark, source, ctx) for source in cfg.sources]
        results, failure = [], None
        for future in futures:
            try:
                results.append(future.result())
            except StageError as exc:  # let the running sources finish, start no other
                failure = failure or exc
                for pending in futures:
                    pending.cancel()
    _record(spark, ctx)  # the sources committed, also when one of them failed
    if failure:
        raise failure
    return results


def _inheriting(spark: SparkSession, function: Callable[..., T]) -> Callable[..., T]:
    """``function`` for a worker thread: it runs with a copy of this thread's Spark local
    properties (job group, scheduler pool), as Spark jobs started here would.

    (PySpark's ``inheritable_thread_target`` hands the same ``Properties`` object to every
    thread, and Spark writes per-query properties into it.)
    """
    context = spark.sparkContext._jsc.sc()
    properties = context.getLocalProperties().clone()

    def run(*args: object) -> T:
        context.setLocalProperties(properties.clone())
        return function(*args)

    return run


def _ingest_logged(spark: SparkSession, source: SourceConfig, ctx: _Context) -> IngestResult:
    """:func:`ingest_source`, its time, and its errors turned into ``IngestResult.error`` (logged)."""
    with timed() as clock:
        try:
            result = ingest_source(spark, source, ctx)
        except StageError:
            raise
        except CdiError as exc:
            result = IngestResult(source.name, error=str(exc))
        except (PySparkException, Py4JJavaError) as exc:
            first = next((ln for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
            result = IngestResult(source.name, error=f"source {source.name}: Spark could not read it: {first[:500]}")
    result = _with_seconds(result, clock["seconds"])
    _log(result)
    return result


def _with_seconds(result: IngestResult, seconds: float) -> IngestResult:
    return IngestResult(**{**result.__dict__, "seconds": seconds})


def _log(r: IngestResult) -> None:
    log.info(
        "ingest %s: %d files seen, %d loaded, %d skipped, %d failed; rows read %s = bronze %s + quarantine %s; "
        "%.1f s",
        r.source, r.files_seen, r.files_loaded, r.files_skipped, r.files_failed,
        f"{r.rows_read:,}", f"{r.rows_bronze:,}", f"{r.rows_quarantined:,}", r.seconds,
        extra={"ingest_result": r},  # the result itself, for handlers that collect figures (cdi_spark.bench)
    )
    if r.new_columns:
        log.warning("ingest %s: new column(s) added to bronze: %s", r.source, ", ".join(r.new_columns))
    for path in r.changed_files:
        log.warning("ingest %s: %s changed after it was loaded (size or time differ); not loaded again", r.source, path)
    if r.error:
        log.error("ingest %s: %s", r.source, r.error)


def _read(spark: SparkSession, source: SourceConfig, paths: list[str], bronze_path: str) -> Parsed:
    if source.format == "csv":
        return parse_csv(spark, paths, source)
    if source.format == "parquet":
        existing = delta_io.read(spark, bronze_path).schema if delta_io.exists(spark, bronze_path) else None
        return parse_parquet(spark, paths, source, existing)
    if source.json_array:
        return parse_json_arrays(spark, paths, source)
    return parse_json_lines(spark, paths, source)


def ingest_source(spark: SparkSession, source: SourceConfig, ctx: _Context) -> IngestResult:
    """Ingest one source; see :func:`ingest`. Its loaded files go to ``ctx.loaded_now`` for the manifest.

    Raises:
        CdiError: the source cannot be loaded (the message says which file and why).
        StageError: a commit's row count differs from the rows counted for it.
    """
    listed = raw_files.list_files(spark, ctx.cfg.raw_dir, source.path)
    if not listed:
        raise CdiError(f"source {source.name}: no files match {ctx.cfg.raw_dir.rstrip('/')}/{source.path} "
                       "(check raw_dir in the pipeline YAML and path in the source YAML)")
    plan = raw_files.plan(listed, ctx.loaded.get(source.name, {}))
    problems = {f.path: raw_files.probe(spark, f) for f in plan.new}
    loadable = [f for f in plan.new if problems[f.path] is None]
    files = dict(
        source=source.name, files_seen=len(listed), files_skipped=len(plan.unchanged) + len(plan.changed),
        changed_files=tuple(f.path for f in plan.changed), files_failed=len(plan.new) - len(loadable),
        error="; ".join(p for p in problems.values() if p) or None,
    )
    if not loadable:
        return IngestResult(**files)

    counts, new_columns, version = _load(spark, source, loadable, ctx)
    for f in loadable:
        if f.path not in counts:
            log.warning("ingest %s: %s has no records (header or empty array only)", source.name, f.path)
    ctx.loaded_now.append(raw_files.Loaded(source.name, tuple(loadable), counts, version))
    totals = [sum(c[i] for c in counts.values()) for i in range(3)]
    return IngestResult(**files, files_loaded=len(loadable), rows_read=totals[0], rows_bronze=totals[1],
                        rows_quarantined=totals[2], new_columns=new_columns, bronze_version=version)


def _load(spark: SparkSession, source: SourceConfig, loadable: list[raw_files.RawFile],
          ctx: _Context) -> tuple[dict[str, tuple[int, int, int]], tuple[str, ...], int | None]:
    """Read, check, count and write the files: (counts per file, new columns, bronze version)."""
    bronze_path = ctx.path(tables.BRONZE, source.name)
    parsed = _read(spark, source, [f.path for f in loadable], bronze_path)
    required = list(dict.fromkeys([*source.primary_key, *(c.name for c in source.columns if c.required)]))
    if parsed.fields is None:  # columns known before the data pass: fail before reading it
        reject_missing(parsed.columns, required, source.name)
    base = check_records(parsed.records, source, text_format=source.format != "parquet", fields=parsed.fields)
    base = base.persist(StorageLevel.MEMORY_AND_DISK)  # parsed and checked once; read by every step below
    groups = duplicate_groups(base, source, parsed.fields)
    try:
        many = groups is not None and groups.persist().count() > BROADCAST_DUPLICATES  # this job fills both caches
        checked = mark_duplicates(base, groups, source, fields=parsed.fields, broadcast=not many)
        counts, keys = _count(checked, parsed.fields)
        columns = {**{f.path: [] for f in loadable}, **keys} if parsed.fields else parsed.columns
        reject_missing(columns, required, source.name)
        data = sorted({k for names in keys.values() for k in names}) if parsed.fields else data_columns(checked)
        existing = set(delta_io.read(spark, bronze_path).columns) if delta_io.exists(spark, bronze_path) else set()
        declared = {c.name for c in source.columns}
        new_columns = tuple(c for c in data if c not in declared and c not in existing) if existing else ()
        version = _write(spark, source, checked, _Data(data, parsed.fields), counts, ctx)
    finally:
        base.unpersist()
        if groups is not None:
            groups.unpersist()
    return counts, new_columns, version


def _record(spark: SparkSession, ctx: _Context) -> None:
    """Append the files this run loaded to the manifest, one commit for all sources.

    After the bronze commits: a crash in between reloads those files next time, and the
    reload replaces their rows (see :func:`_append_checked`).
    """
    if not ctx.loaded_now:
        return
    manifest_path = ctx.path(tables.AUDIT, tables.INGEST_MANIFEST)
    manifest = raw_files.manifest_rows(spark, ctx.loaded_now, run_id=ctx.run_id, ingested_at=ctx.ingested_at)
    created = not delta_io.exists(spark, manifest_path)
    delta_io.append(spark, manifest, manifest_path, user_metadata=ctx.run_id)
    if created:
        delta_io.register_table(spark, tables.AUDIT, tables.INGEST_MANIFEST, manifest_path)


def _count(checked: DataFrame, fields: str | None = None) -> tuple[dict[str, tuple[int, int, int]], dict[str, list]]:
    """``file -> (read, bronze, quarantined)``, and ``file -> keys`` of JSON records, in one job.

    The checked rows are the reader's records one for one (the checks only add columns, see
    :mod:`cdi_spark.ingest.checks`), so for every file ``read = bronze + quarantined`` here;
    :func:`_append_checked` then holds each Delta commit's ``numOutputRows`` to these counts.
    """
    aggregates = [F.count(F.lit(1)).alias("n"), F.count_if(F.col(ERROR).isNull()).alias("good")]
    if fields:  # the top-level keys of each file's objects (few): the bronze columns
        keys = F.array_sort(F.array_distinct(F.flatten(F.collect_set(F.map_keys(F.col(fields))))))
        aggregates.append(keys.alias("keys"))
    rows = checked.groupBy("_file").agg(*aggregates).collect()  # one row per file: metadata
    counts = {r["_file"]: (int(r["n"]), int(r["good"]), int(r["n"] - r["good"])) for r in rows}
    keys = {r["_file"]: list(r["keys"] or []) for r in rows} if fields else {}
    return counts, keys


def _lineage(ctx: _Context, source: SourceConfig) -> dict:
    return {
        tables.SOURCE: F.lit(source.name),
        tables.SOURCE_FILE: F.col("_file"),
        tables.BATCH_ID: F.lit(ctx.run_id),
        tables.INGESTED_AT: F.lit(ctx.ingested_at).cast("timestamp"),
        tables.INGEST_DATE: F.lit(ctx.ingested_at.date()).cast("date"),
    }


@dataclass(frozen=True)
class _Data:
    """The bronze data columns, and the map column they come from (JSON) or None (columns)."""

    names: list[str]
    fields: str | None

    def columns(self) -> list:
        if self.fields:
            return [F.col(self.fields)[n].alias(n) for n in self.names]
        return [F.col(f"`{n.replace('`', '``')}`") for n in self.names]


def _write(spark: SparkSession, source: SourceConfig, checked: DataFrame, data: _Data,
           counts: dict[str, tuple[int, int, int]], ctx: _Context) -> int | None:
    """Append quarantine then bronze; check each commit's row count against ``counts``."""
    lineage = _lineage(ctx, source)
    good = sum(c[1] for c in counts.values())
    bad = sum(c[2] for c in counts.values())
    if bad:
        rows = checked.filter(F.col(ERROR).isNotNull()).select(
            *[v.alias(k) for k, v in lineage.items()],
            F.col("_line").alias(tables.Q_LINE), F.col("_position").alias(tables.Q_POSITION),
            F.col(f"{ERROR}.reason").alias(tables.Q_REASON), F.col(f"{ERROR}.field").alias(tables.Q_FIELD),
            F.col(f"{ERROR}.detail").alias(tables.Q_DETAIL), F.col("_raw").alias(tables.Q_RAW),
        )
        path = ctx.path(tables.QUARANTINE, source.name)
        _append_checked(spark, rows, path, bad, tables.QUARANTINE, source.name, ctx, list(counts))
    if not good:
        return None
    rows = checked.filter(F.col(ERROR).isNull()).select(
        *data.columns(), *[v.alias(k) for k, v in lineage.items()], tables.ROW_HASH
    )
    path = ctx.path(tables.BRONZE, source.name)
    return _append_checked(spark, rows, path, good, tables.BRONZE, source.name, ctx, list(counts))


def _append_checked(spark: SparkSession, rows: DataFrame, path: str, expected: int, layer: str, name: str,
                    ctx: _Context, files: list[str]) -> int:
    """Write the rows of ``files``, replacing any rows of those files a failed run left behind.

    ``replaceWhere`` on ``_source_file`` makes the write idempotent per file: a retry after a
    crash between this commit and the manifest's cannot duplicate rows.
    """
    listed = ", ".join("'" + f.replace("\\", "\\\\").replace("'", "\\'") + "'" for f in sorted(files))
    created = not delta_io.exists(spark, path)
    with _CREATING if created else nullcontext():
        version = delta_io.overwrite_partition(
            spark, rows, path, where=f"{tables.SOURCE_FILE} IN ({listed})", partition_by=[tables.INGEST_DATE],
            user_metadata=ctx.run_id, table_properties=TABLE_PROPERTIES,
        )
    written = int(delta_io.last_commit(spark, path)["metrics"].get("numOutputRows", "-1"))
    if written != expected:
        raise StageError(STAGE, f"{layer}.{name}: wrote {written:,} rows, expected {expected:,} (version {version})")
    if created:  # tables that existed were registered when the stage started
        delta_io.register_table(spark, layer, name, path)
    return version
