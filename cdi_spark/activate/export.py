"""Activation (reverse ETL): send each downstream system the customers that changed.

For every target of ``conf/activation.yml`` (CRM, marketing, support, BI, ...), :func:`export`
writes the customers of ``gold.customer_profile`` (or ``gold.customer_360``) that changed since
the target's last export, read from the table's Change Data Feed, as CSV, JSON Lines or
Parquet files with the target's column names and formats, then moves the target's watermark.

Reads ``gold.<source>`` (its Change Data Feed, or one snapshot) and
``audit.export_watermarks``; writes files under each target's folder and one row per export
to ``audit.export_watermarks``.

What a row says (the target's ``change_column``):

==========  ==============================================================================
``insert``  a customer the target has not had: new, revived, or every live customer on a
            target's first export
``update``  a customer the target has, whose exported values changed; a change of a
            column the target does not receive is not sent
``delete``  a customer the target had that is gone: merged into another customer, left
            without records (soft delete) or erased (hard delete). Only the key and the
            source-ids column are filled: no other personal data
``upsert``  ``--full`` exports: every live customer, to insert or replace
==========  ==============================================================================

Several changes of one customer between two exports are sent as their net effect (the
latest values; inserted then deleted is nothing; changed and changed back is nothing).

Exactly once: an export of versions ``a..b`` is written to a temporary folder, renamed to
``<path>/v<a>-v<b>`` (``v<b>-v<b>-full`` for a full export; eight digits each, so that the
folders' names sort in the order to apply them) and only then recorded in
``audit.export_watermarks``. An export that dies before recording its watermark is sent
again by the next run over the same range into the same folder, which it replaces: each
range appears once, under one name. An export with no rows for the target writes no folder
but still moves the watermark.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from cdi_spark import delta_io, tables
from cdi_spark.activate.changes import (
    CHANGE,
    DELETE,
    INSERT,
    KEY,
    STAGE,
    UPDATE,
    UPSERT,
    change_feed_start,
    net_changes,
    snapshot,
)
from cdi_spark.config import ActivationConfig, ExportField, ExportTarget, PipelineConfig
from cdi_spark.errors import ConfigError, StageError
from cdi_spark.golden.publish import IS_DELETED

log = logging.getLogger(__name__)

INITIAL, CHANGES, FULL = "initial", "changes", "full"  # export modes
# Writers' text for times, whatever the session's time zone.
_UTC = {"timeZone": "UTC"}
_EXTENSIONS = {"csv": "csv", "jsonl": "jsonl", "parquet": "parquet"}
MANIFEST = "_export.json"

WATERMARKS_SCHEMA = T.StructType([
    T.StructField("target", T.StringType(), False),
    T.StructField("table", T.StringType(), False),  # gold.customer_profile | gold.customer_360
    T.StructField("mode", T.StringType(), False),  # initial | changes | full
    T.StructField("from_version", T.LongType(), True),  # first version read (changes); null for a snapshot
    T.StructField("last_version", T.LongType(), False),  # the watermark: sent up to this version
    T.StructField("run_id", T.StringType(), False),
    T.StructField("exported_at", T.TimestampType(), False),
    T.StructField("folder", T.StringType(), True),  # null when there was nothing to send
    T.StructField("files", T.IntegerType(), False),
    T.StructField("rows", T.MapType(T.StringType(), T.LongType(), False), False),  # change kind -> rows
])  # fmt: skip


@dataclass(frozen=True)
class ExportResult:
    """What one export of one target did (a row of ``audit.export_watermarks``)."""

    target: str
    table: str
    mode: str
    from_version: int | None
    last_version: int
    folder: str | None = None
    files: int = 0
    rows: dict[str, int] = field(default_factory=dict)


def watermarks_path(lakehouse: str) -> str:
    """The folder of ``audit.export_watermarks``."""
    return tables.table_path(lakehouse, tables.AUDIT, tables.EXPORT_WATERMARKS)


def read_watermark(spark: SparkSession, lakehouse: str, target: str, table: str) -> int | None:
    """The last version of ``table`` sent to ``target``, or None before its first export."""
    path = watermarks_path(lakehouse)
    if not delta_io.exists(spark, path):
        return None
    row = (
        delta_io.read(spark, path)
        .filter((F.col("target") == target) & (F.col("table") == table))
        .agg(F.max("last_version"))
        .first()
    )
    return None if row[0] is None else int(row[0])


def counts(results: Sequence[ExportResult]) -> dict[str, int]:
    """Totals over ``results`` for logs and ``audit.runs``: rows sent (first: the benchmark
    reads a stage's first count as its rows out), targets, files, rows per change kind."""
    out = {"rows": sum(sum(r.rows.values()) for r in results), "targets": len(results),
           "files": sum(r.files for r in results)}
    for kind in (INSERT, UPDATE, DELETE, UPSERT):
        out[f"rows_{kind}"] = sum(r.rows.get(kind, 0) for r in results)
    return out


# --------------------------------------------------------------------------------------------
# Exporting
# --------------------------------------------------------------------------------------------


def export(
    spark: SparkSession,
    cfg: PipelineConfig,
    activation: ActivationConfig,
    *,
    run_id: str,
    targets: Sequence[str] | None = None,
    full: bool = False,
) -> list[ExportResult]:
    """Export every target (or those named ``targets``), one after the other.

    Args:
        spark: the session.
        cfg: the pipeline configuration (its lakehouse).
        activation: the targets (:func:`cdi_spark.config.load_activation`).
        run_id: recorded with each watermark and in the export folders' manifests.
        targets: target names; default all.
        full: send every live customer (``upsert``, no deletes) instead of the changes,
            and move the watermarks to the current versions.

    Returns:
        One result per target, in the file's order.

    Raises:
        ConfigError: an unknown target, or a field the source table does not have.
        StageError: no gold table yet, or a watermark older than the change data kept.
    """
    return [export_target(spark, cfg, activation, t, run_id=run_id, full=full) for t in activation.select(targets)]


def export_target(
    spark: SparkSession,
    cfg: PipelineConfig,
    activation: ActivationConfig,
    target: ExportTarget,
    *,
    run_id: str,
    full: bool = False,
) -> ExportResult:
    """Export one target: its changes since its watermark (or a snapshot), then its watermark.

    See :func:`export` for the arguments.
    """
    table = tables.qualified_name(tables.GOLD, target.source)
    path = tables.table_path(cfg.lakehouse, tables.GOLD, target.source)
    if not delta_io.exists(spark, path):
        raise StageError(STAGE, f"target {target.name}: no table {table} at {path}; run the golden stage first")
    version = delta_io.current_version(spark, path)
    current = delta_io.read(spark, path, version=version)
    check_fields(current.schema, target, activation)
    watermark = None if full else read_watermark(spark, cfg.lakehouse, target.name, table)
    if watermark is not None and watermark >= version:
        log.info("export %s: up to date (%s version %d already sent)", target.name, table, version)
        return ExportResult(target.name, table, CHANGES, None, watermark)

    mode, start, rows = _rows(spark, path, table, target, current, version, watermark, full=full)
    if not target.include_deleted:
        rows = rows.filter(F.col(CHANGE) != DELETE)

    out = shape(rows, target, session_time_zone=spark.conf.get("spark.sql.session.timeZone"))
    out = out.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        sent = {r[0]: int(r[1]) for r in out.groupBy(F.col(f"`{target.change_column}`")).count().collect()}  # <= 4 rows
        result = ExportResult(target.name, table, mode, start, version, rows=sent)
        if sent:
            name = f"v{version:08d}-v{version:08d}-full" if mode == FULL else f"v{start or 0:08d}-v{version:08d}"
            folder = f"{target_root(cfg, target)}/{name}"
            manifest = {**asdict(result), "folder": folder, "run_id": run_id}
            files = write_files(spark, out, folder, target, manifest=manifest)
            result = ExportResult(target.name, table, mode, start, version, folder, files, sent)
    finally:
        out.unpersist()
    _record(spark, cfg.lakehouse, result, run_id)
    kinds = ", ".join(f"{k}={sent.get(k, 0):,}" for k in ((UPSERT,) if mode == FULL else (INSERT, UPDATE, DELETE)))
    log.info("export %s: %s %s versions %s-%d: %s, %d file(s)%s", target.name, mode, table,
             "0" if start is None else start, version, kinds, result.files,
             f" -> {result.folder}" if result.folder else " (nothing to send)")
    return result


def _rows(
    spark: SparkSession,
    path: str,
    table: str,
    target: ExportTarget,
    current: DataFrame,
    version: int,
    watermark: int | None,
    *,
    full: bool,
) -> tuple[str, int | None, DataFrame]:
    """``(mode, first version read, rows)``: a snapshot of ``current`` without a watermark,
    else the net changes of the versions after it up to ``version``."""
    if watermark is None:
        return (FULL if full else INITIAL), None, snapshot(_narrow(current, target), change=UPSERT if full else INSERT)
    start = watermark + 1
    first = change_feed_start(spark, path)
    if start < first.version:
        raise StageError(STAGE, f"target {target.name}: it was last sent {table} up to version {watermark}, "
                         f"but the change data now starts at version {first.version} ({first.reason}), so "
                         f"the changes in between cannot be read. Run `cdi-spark export --target "
                         f"{target.name} --full` to send every live customer and restart from the current "
                         "version.")
    feed = delta_io.changes(spark, path, starting_version=start, ending_version=version)
    return CHANGES, start, net_changes(_narrow(feed, target))


def target_root(cfg: PipelineConfig, target: ExportTarget) -> str:
    """The folder of a target's exports: its ``path``, relative to the lakehouse unless absolute."""
    if "://" in target.path or target.path.startswith("/"):
        return target.path.rstrip("/")
    return f"{str(cfg.lakehouse).rstrip('/')}/{target.path.strip('/')}"


def _record(spark: SparkSession, lakehouse: str, result: ExportResult, run_id: str) -> None:
    """Write the export's watermark row (replacing one of the same target, table, mode and version)."""
    row = (result.target, result.table, result.mode, result.from_version, result.last_version, run_id,
           datetime.now(UTC), result.folder, result.files, dict(result.rows))
    delta_io.merge_upsert(spark, spark.createDataFrame([row], WATERMARKS_SCHEMA), watermarks_path(lakehouse),
                          keys=["target", "table", "mode", "last_version"], user_metadata=run_id)


# --------------------------------------------------------------------------------------------
# The columns a target needs
# --------------------------------------------------------------------------------------------


def _narrow(df: DataFrame, target: ExportTarget) -> DataFrame:
    """The key, the deleted flag, the change feed's columns and the columns the target sends
    (its source-ids column taken from ``source_ids``)."""
    ids = target.ids_column
    wanted = dict.fromkeys(f.from_ for f in target.columns if f.from_ not in (KEY, ids))
    keep = [c for c in (IS_DELETED, "_change_type", "_commit_version") if c in df.columns]
    extra = [F.col("source_ids")[target.source_ids].alias(ids)] if ids else []
    return df.select(KEY, *keep, *[F.col(f"`{c}`") for c in wanted], *extra)


# --------------------------------------------------------------------------------------------
# How rows look: names and formats per target
# --------------------------------------------------------------------------------------------


def check_fields(schema: T.StructType, target: ExportTarget, activation: ActivationConfig) -> None:
    """Every field is a column of the source table, and its format or join fits its type.

    Raises:
        ConfigError: naming the activation file and the field's key.
    """
    types = {f.name: f.dataType for f in schema.fields}
    where = activation.key_of(target)
    if target.ids_column and not isinstance(types.get("source_ids"), T.MapType):
        raise ConfigError(activation.path, f"{where}.source_ids",
                          f"gold.{target.source} has no map column source_ids to take {target.ids_column} from")
    for i, spec in enumerate(target.fields):
        key = f"{where}.fields[{i}]"
        if spec.from_ == target.ids_column:
            dtype = T.ArrayType(T.StringType())
        elif spec.from_ in types:
            dtype = types[spec.from_]
        else:
            hint = f", or {target.ids_column}" if target.ids_column else " (add source_ids: <system> for <system>_ids)"
            raise ConfigError(activation.path, f"{key}.from",
                              f"column {spec.from_!r} is not in gold.{target.source}; its columns: "
                              f"{', '.join(types)}{hint}")
        if spec.format is not None and not isinstance(dtype, T.DateType | T.TimestampType):
            raise ConfigError(activation.path, f"{key}.format",
                              f"format applies to dates and timestamps; {spec.from_} is {dtype.simpleString()}")
        if spec.join is not None and not isinstance(dtype, T.ArrayType):
            raise ConfigError(activation.path, f"{key}.join",
                              f"join applies to arrays; {spec.from_} is {dtype.simpleString()}")


def shape(rows: DataFrame, target: ExportTarget, *, session_time_zone: str = "UTC") -> DataFrame:
    """The rows as the target receives them: the change column, then its fields renamed and
    formatted. A delete keeps only the key and the source-ids column.

    CSV cannot hold nested values: arrays without ``join`` are joined with ``;``, maps and
    structs written as JSON.
    """
    types = {f.name: f.dataType for f in rows.schema.fields}
    keep = (KEY, target.ids_column)
    deleted = F.col(CHANGE) == DELETE
    columns = [F.col(CHANGE).alias(target.change_column)]
    for spec in target.columns:
        value = _formatted(F.col(f"`{spec.from_}`"), types[spec.from_], spec, target.format, session_time_zone)
        columns.append((value if spec.from_ in keep else F.when(~deleted, value)).alias(spec.name))
    return rows.select(*columns)


def _formatted(value: Column, dtype: T.DataType, spec: ExportField, file_format: str, time_zone: str) -> Column:
    if spec.format is not None:
        if isinstance(dtype, T.TimestampType):  # shift to UTC wall-clock time, then format
            value = F.to_utc_timestamp(value, time_zone)
        return F.date_format(value, spec.format)
    if spec.join is not None:
        return F.array_join(value.cast("array<string>"), spec.join)
    if file_format != "csv":
        return value
    if isinstance(dtype, T.ArrayType) and not isinstance(dtype.elementType, T.ArrayType | T.MapType | T.StructType):
        return F.array_join(value.cast("array<string>"), ";")
    if isinstance(dtype, T.ArrayType | T.MapType | T.StructType):
        return F.to_json(value, _UTC)
    return value


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------


def _fs(spark: SparkSession, path: str):
    jvm = spark.sparkContext._jvm
    jpath = jvm.org.apache.hadoop.fs.Path(str(path))
    return jpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), jpath


def write_files(spark: SparkSession, rows: DataFrame, folder: str, target: ExportTarget, *, manifest: dict) -> int:
    """Write ``rows`` as ``<folder>/part-00000.<ext>``... plus ``_export.json`` (``manifest``).

    The files go to ``<parent>/_tmp-<name>`` first, which is renamed to ``folder`` once complete,
    replacing a folder of the same name (an earlier attempt at the same range).

    Returns:
        The number of data files written.
    """
    parent, _, name = folder.rstrip("/").rpartition("/")
    temp = f"{parent}/_tmp-{name}"
    key = next(f.name for f in target.columns if f.from_ == KEY)
    writer = rows.repartition(target.files).sortWithinPartitions(F.col(f"`{key}`")).write.mode("overwrite")
    if target.format == "csv":
        writer.options(header="true", quote='"', escape='"', **_UTC).csv(temp)
    elif target.format == "jsonl":
        writer.options(**_UTC).json(temp)
    else:
        writer.parquet(temp)

    fs, temp_path = _fs(spark, temp)
    jvm = spark.sparkContext._jvm
    parts = sorted((s.getPath() for s in fs.listStatus(temp_path) if s.getPath().getName().startswith("part-")),
                   key=lambda p: p.getName())
    for i, part in enumerate(parts):
        fs.rename(part, jvm.org.apache.hadoop.fs.Path(temp_path, f"part-{i:05d}.{_EXTENSIONS[target.format]}"))
    stream = fs.create(jvm.org.apache.hadoop.fs.Path(temp_path, MANIFEST), True)
    try:
        stream.write(bytearray(json.dumps({**manifest, "files": len(parts)}, indent=2).encode()))
    finally:
        stream.close()
    _, final = _fs(spark, folder)
    if fs.exists(final):
        fs.delete(final, True)
    if not fs.rename(temp_path, final):
        raise StageError(STAGE, f"target {target.name}: could not rename {temp} to {folder}")
    return len(parts)
