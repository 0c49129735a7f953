"""The ingest stage's driver: per source, plan files, read, check, write, count, record.

See the package docstring (:mod:`cdi_spark.ingest`) for the tables and the design.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from py4j.protocol import Py4JJavaError
from pyspark.errors import PySparkException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from cdi_spark import delta_io, tables
from cdi_spark.config import PipelineConfig, SourceConfig
from cdi_spark.errors import CdiError, StageError
from cdi_spark.ingest import files as raw_files
from cdi_spark.ingest.checks import ERROR, classify, data_columns
from cdi_spark.ingest.parquet import parse_parquet
from cdi_spark.ingest.text import Parsed, parse_csv, parse_json_arrays, parse_json_lines, reject_missing
from cdi_spark.logs import timed

log = logging.getLogger(__name__)
STAGE = "ingest"
# Column mapping lets bronze keep export column names with spaces ("Customer ID") as they are.
TABLE_PROPERTIES = {"delta.columnMapping.mode": "name"}


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
        StageError: rows read do not equal bronze + quarantine rows for some file.
    """
    delta_io.register_lakehouse(spark, cfg.lakehouse, (tables.BRONZE, tables.QUARANTINE, tables.AUDIT))
    manifest = raw_files.loaded_files(spark, tables.table_path(cfg.lakehouse, tables.AUDIT, tables.INGEST_MANIFEST))
    ctx = _Context(cfg, run_id, datetime.now(UTC), manifest)
    results = []
    for source in cfg.sources:
        with timed() as clock:
            try:
                result = ingest_source(spark, source, ctx)
            except StageError:
                raise
            except CdiError as exc:
                result = IngestResult(source.name, error=str(exc))
            except (PySparkException, Py4JJavaError) as exc:
                first = next((ln for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
                message = f"source {source.name}: Spark could not read it: {first[:500]}"
                result = IngestResult(source.name, error=message)
        result = _with_seconds(result, clock["seconds"])
        _log(result)
        results.append(result)
    return results


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
    """Ingest one source; see :func:`ingest`.

    Raises:
        CdiError: the source cannot be loaded (the message says which file and why).
        StageError: counts do not add up.
    """
    manifest_path = ctx.path(tables.AUDIT, tables.INGEST_MANIFEST)
    bronze_path = ctx.path(tables.BRONZE, source.name)
    listed = raw_files.list_files(spark, ctx.cfg.raw_dir, source.path)
    if not listed:
        raise CdiError(f"source {source.name}: no files match {ctx.cfg.raw_dir.rstrip('/')}/{source.path} "
                       "(check raw_dir in the pipeline YAML and path in the source YAML)")
    plan = raw_files.plan(listed, ctx.loaded.get(source.name, {}))
    problems = [p for p in (raw_files.probe(spark, f) for f in plan.new) if p]
    loadable = [f for f in plan.new if raw_files.probe(spark, f) is None] if problems else list(plan.new)
    base = dict(
        source=source.name, files_seen=len(listed), files_skipped=len(plan.unchanged) + len(plan.changed),
        changed_files=tuple(f.path for f in plan.changed), files_failed=len(plan.new) - len(loadable),
        error="; ".join(problems) or None,
    )
    if not loadable:
        return IngestResult(**base)

    parsed = _read(spark, source, [f.path for f in loadable], bronze_path)
    try:
        required = list(dict.fromkeys([*source.primary_key, *(c.name for c in source.columns if c.required)]))
        reject_missing(parsed.columns, required, source.name)
        checked = classify(parsed.records, source, text_format=source.format != "parquet").persist()
        counts = _count(parsed.records, checked)
        existing = set(delta_io.read(spark, bronze_path).columns) if delta_io.exists(spark, bronze_path) else set()
        declared = {c.name for c in source.columns}
        data = data_columns(checked)
        new_columns = tuple(c for c in data if c not in declared and c not in existing) if existing else ()
        version = _write(spark, source, checked, data, counts, ctx)
        checked.unpersist()
    finally:
        if parsed.lines is not None:
            parsed.lines.unpersist()

    for f in loadable:
        if f.path not in counts:
            log.warning("ingest %s: %s has no records (header or empty array only)", source.name, f.path)
    manifest = raw_files.manifest_rows(spark, source.name, loadable, counts, run_id=ctx.run_id,
                                       ingested_at=ctx.ingested_at, bronze_version=version)
    created = not delta_io.exists(spark, manifest_path)
    delta_io.append(spark, manifest, manifest_path, user_metadata=ctx.run_id)
    if created:
        delta_io.register_table(spark, tables.AUDIT, tables.INGEST_MANIFEST, manifest_path)
    totals = [sum(c[i] for c in counts.values()) for i in range(3)]
    return IngestResult(**base, files_loaded=len(loadable), rows_read=totals[0], rows_bronze=totals[1],
                        rows_quarantined=totals[2], new_columns=new_columns, bronze_version=version)


def _count(records: DataFrame, checked: DataFrame) -> dict[str, tuple[int, int, int]]:
    """``file -> (read, bronze, quarantined)``; raises StageError when read != the sum.

    ``read`` counts the reader's records; the other two count the checked rows. They are
    separate Spark jobs over separate plans, so a check that dropped or duplicated a row
    shows up here.
    """
    read = {r["_file"]: r["n"] for r in records.groupBy("_file").agg(F.count(F.lit(1)).alias("n")).collect()}
    split = checked.groupBy("_file").agg(
        F.sum(F.col(ERROR).isNull().cast("long")).alias("good"),
        F.sum(F.col(ERROR).isNotNull().cast("long")).alias("bad"),
    ).collect()  # one row per file: metadata
    counts = {r["_file"]: (read.get(r["_file"], 0), int(r["good"]), int(r["bad"])) for r in split}
    for file, n in read.items():
        counts.setdefault(file, (n, 0, 0))
    wrong = {f: c for f, c in counts.items() if c[0] != c[1] + c[2]}
    if wrong:
        file, (n, good, bad) = sorted(wrong.items())[0]
        raise StageError(STAGE, f"{file}: rows read {n:,} != bronze {good:,} + quarantine {bad:,}; nothing written")
    return counts


def _lineage(ctx: _Context, source: SourceConfig) -> dict:
    return {
        tables.SOURCE: F.lit(source.name),
        tables.SOURCE_FILE: F.col("_file"),
        tables.BATCH_ID: F.lit(ctx.run_id),
        tables.INGESTED_AT: F.lit(ctx.ingested_at).cast("timestamp"),
        tables.INGEST_DATE: F.lit(ctx.ingested_at.date()).cast("date"),
    }


def _write(spark: SparkSession, source: SourceConfig, checked: DataFrame, data: list[str],
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
    hashed = F.sha2(F.to_json(F.struct(*[F.col(f"`{c}`") for c in sorted(data)])), 256)
    rows = checked.filter(F.col(ERROR).isNull()).select(
        *[F.col(f"`{c}`") for c in data], *[v.alias(k) for k, v in lineage.items()], hashed.alias(tables.ROW_HASH)
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
