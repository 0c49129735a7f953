"""Every Delta write, merge, history and time-travel read of cdi-spark goes through here.

Tables are addressed by path (``cdi_spark.tables.table_path``) and registered in the Spark
catalog as ``<layer>.<name>`` by :func:`register_table`, so both ``delta_io.read(spark, path)``
and ``spark.table("bronze.crm_contacts")`` work.

Each commit can carry the run id in its user metadata (``userMetadata`` in
``DESCRIBE HISTORY``): pass ``user_metadata=run_id``; without it the session's
``spark.databricks.delta.commitInfo.userMetadata`` (set by the pipeline runner) applies.

Delta's optimistic-concurrency conflicts (another writer committed first) are retried here,
and only here, with a short back-off; every other error goes to the caller.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

from delta.exceptions import (
    ConcurrentAppendException,
    ConcurrentDeleteDeleteException,
    ConcurrentDeleteReadException,
    ConcurrentTransactionException,
    ConcurrentWriteException,
    DeltaConcurrentModificationException,
    MetadataChangedException,
    ProtocolChangedException,
)
from delta.tables import DeltaMergeBuilder, DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from cdi_spark.tables import LAYERS, qualified_name

log = logging.getLogger(__name__)

T = TypeVar("T")
USER_METADATA_CONF = "spark.databricks.delta.commitInfo.userMetadata"
AUTO_MERGE_CONF = "spark.databricks.delta.schema.autoMerge.enabled"
RETRIES = 4
# delta-spark's Python classes for these are siblings, not subclasses of one another.
CONFLICTS = (
    DeltaConcurrentModificationException,
    ConcurrentAppendException,
    ConcurrentDeleteDeleteException,
    ConcurrentDeleteReadException,
    ConcurrentTransactionException,
    ConcurrentWriteException,
    MetadataChangedException,
    ProtocolChangedException,
)


def with_retry(action: Callable[[], T], *, what: str, retries: int = RETRIES) -> T:
    """Run ``action``, retrying it when a concurrent Delta commit conflicts with it.

    Args:
        action: the write to attempt; it must be safe to run again after a conflict (Delta
            has committed nothing of a conflicting attempt).
        what: a short description for the log line ("append to lakehouse/bronze/x").
        retries: attempts after the first.

    Raises:
        One of :data:`CONFLICTS`: still conflicting after ``retries`` attempts.
    """
    for attempt in range(retries + 1):
        try:
            return action()
        except CONFLICTS as exc:
            if attempt == retries:
                raise
            wait = 0.5 * 2**attempt
            log.warning("%s: concurrent commit (%s); retry %d in %.1f s", what, type(exc).__name__, attempt + 1, wait)
            time.sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover


@contextmanager
def _session_conf(spark: SparkSession, values: dict[str, str | None]) -> Iterator[None]:
    """Set session confs for the block and put the previous values back afterwards."""
    before = {key: spark.conf.get(key, None) for key in values}
    try:
        for key, value in values.items():
            if value is not None:
                spark.conf.set(key, value)
        yield
    finally:
        for key, value in before.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def exists(spark: SparkSession, path: str) -> bool:
    """Whether ``path`` holds a Delta table."""
    return DeltaTable.isDeltaTable(spark, str(path))


def current_version(spark: SparkSession, path: str) -> int:
    """The latest committed version of the table at ``path``."""
    return int(DeltaTable.forPath(spark, str(path)).history(1).select("version").first()[0])


def read(spark: SparkSession, path: str, *, version: int | None = None, timestamp: str | None = None) -> DataFrame:
    """The table at ``path``: its current snapshot, or one version / timestamp of it.

    Args:
        spark: the session.
        path: the table folder.
        version: read this version (``VERSION AS OF``).
        timestamp: read the version current at this time (``TIMESTAMP AS OF``), e.g.
            ``"2024-05-01 12:00:00"``.

    Raises:
        ValueError: both ``version`` and ``timestamp`` were given.
    """
    if version is not None and timestamp is not None:
        raise ValueError("read: give version or timestamp, not both")
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", int(version))
    elif timestamp is not None:
        reader = reader.option("timestampAsOf", str(timestamp))
    return reader.load(str(path))


def read_as_of(spark: SparkSession, path: str, as_of: int | str) -> DataFrame:
    """Time travel: the table as it was at version ``as_of`` (int) or timestamp (str)."""
    if isinstance(as_of, int):
        return read(spark, path, version=as_of)
    return read(spark, path, timestamp=as_of)


def history(spark: SparkSession, path: str, limit: int | None = None) -> DataFrame:
    """``DESCRIBE HISTORY`` of the table: version, timestamp, operation, userMetadata, metrics."""
    table = DeltaTable.forPath(spark, str(path))
    return table.history(limit) if limit else table.history()


def last_commit(spark: SparkSession, path: str) -> dict:
    """Version, operation, user metadata and operation metrics of the latest commit.

    Metrics values are strings, as Delta records them (``numOutputRows``, ...).
    """
    row = history(spark, path, 1).select("version", "operation", "userMetadata", "operationMetrics").first()
    return {
        "version": int(row["version"]),
        "operation": row["operation"],
        "user_metadata": row["userMetadata"],
        "metrics": dict(row["operationMetrics"] or {}),
    }


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def _creation_defaults(spark: SparkSession, path: str, properties: dict[str, str] | None) -> dict[str, str | None]:
    """Session defaults that give a table created by the next write ``properties``."""
    if not properties or exists(spark, path):
        return {}
    return {f"spark.databricks.delta.properties.defaults.{k.removeprefix('delta.')}": v for k, v in properties.items()}


def _writer(df: DataFrame, mode: str, partition_by: Sequence[str] | None, user_metadata: str | None):
    writer = df.write.format("delta").mode(mode)
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    if user_metadata:
        writer = writer.option("userMetadata", user_metadata)
    return writer


def append(
    spark: SparkSession,
    df: DataFrame,
    path: str,
    *,
    partition_by: Sequence[str] | None = None,
    merge_schema: bool = True,
    user_metadata: str | None = None,
    table_properties: dict[str, str] | None = None,
) -> int:
    """Append ``df`` to the table at ``path`` (created on first use); one commit.

    Args:
        spark: the session.
        df: the rows.
        path: the table folder.
        partition_by: partition columns when the table is created (ignored after).
        merge_schema: add new columns of ``df`` to the table (Delta schema evolution).
        user_metadata: recorded in the commit (the run id).
        table_properties: Delta properties for a table this call creates, e.g.
            ``{"delta.columnMapping.mode": "name"}`` for column names with spaces.

    Returns:
        The version the append committed.
    """
    writer = _writer(df, "append", partition_by, user_metadata).option("mergeSchema", str(merge_schema).lower())
    with _session_conf(spark, _creation_defaults(spark, path, table_properties)):
        with_retry(lambda: writer.save(str(path)), what=f"append to {path}")
    return current_version(spark, path)


def overwrite_partition(
    spark: SparkSession,
    df: DataFrame,
    path: str,
    *,
    where: str,
    partition_by: Sequence[str] | None = None,
    user_metadata: str | None = None,
    table_properties: dict[str, str] | None = None,
) -> int:
    """Replace the rows matching ``where`` (a SQL predicate) with ``df``, atomically.

    Every row of ``df`` must match ``where`` (Delta checks it). Used to rewrite one
    partition, or one file's or one run's rows, idempotently. A missing table is created
    from ``df`` (with ``table_properties``).

    Returns:
        The version the overwrite committed.
    """
    if not exists(spark, path):
        return append(spark, df, path, partition_by=partition_by, user_metadata=user_metadata,
                      table_properties=table_properties)
    writer = (
        _writer(df, "overwrite", partition_by, user_metadata)
        .option("replaceWhere", where)
        .option("mergeSchema", "true")
    )
    with_retry(lambda: writer.save(str(path)), what=f"overwrite {where} in {path}")
    return current_version(spark, path)


def merge_upsert(
    spark: SparkSession,
    df: DataFrame,
    path: str,
    *,
    keys: Sequence[str],
    partition_by: Sequence[str] | None = None,
    user_metadata: str | None = None,
    delete_missing: bool = False,
) -> int:
    """Upsert ``df`` into the table at ``path`` by ``keys``: one MERGE, one version.

    A table that does not exist yet is created from ``df``. New columns of ``df`` are added
    to the table (schema auto-merge for this MERGE only). ``df`` must hold one row per key.

    Args:
        spark: the session.
        df: the new and changed rows.
        path: the table folder.
        keys: the columns that identify a row.
        partition_by: partition columns when the table is created; they should be among
            ``keys`` or be constant per key, so the MERGE can prune.
        user_metadata: recorded in the commit (the run id).
        delete_missing: also delete target rows whose key is not in ``df`` (full refresh).

    Returns:
        The version the MERGE (or the first write) committed.
    """
    if not keys:
        raise ValueError("merge_upsert: keys must name at least one column")
    if not exists(spark, path):
        writer = _writer(df, "overwrite", partition_by, user_metadata)
        with_retry(lambda: writer.save(str(path)), what=f"create {path}")
        return current_version(spark, path)

    condition = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)

    def run() -> None:
        builder = (
            DeltaTable.forPath(spark, str(path)).alias("t").merge(df.alias("s"), condition)
            .whenMatchedUpdateAll()
            .whenNotMatchedInsertAll()
        )
        if delete_missing:
            builder = builder.whenNotMatchedBySourceDelete()
        builder.execute()

    conf = {AUTO_MERGE_CONF: "true", USER_METADATA_CONF: user_metadata}
    with _session_conf(spark, conf):
        with_retry(run, what=f"merge into {path}")
    return current_version(spark, path)


# --------------------------------------------------------------------------------------------
# Catalog
# --------------------------------------------------------------------------------------------


def qualify(spark: SparkSession, path: str) -> str:
    """``path`` as a fully qualified URI (``file:/abs/path``, ``s3a://...``)."""
    jvm = spark.sparkContext._jvm
    jpath = jvm.org.apache.hadoop.fs.Path(str(path))
    fs = jpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    return str(fs.makeQualified(jpath).toString())


def register_table(spark: SparkSession, layer: str, name: str, path: str) -> None:
    """Make ``<layer>.<name>`` in the catalog point at the Delta table at ``path``.

    Creates the database if needed. A table of that name that points elsewhere (an
    external table of an earlier lakehouse in the same session) is replaced; the data it
    pointed at is untouched.
    """
    location = qualify(spark, path)
    full = qualified_name(layer, name)
    spark.sql(f"CREATE DATABASE IF NOT EXISTS `{layer}`")
    if spark.catalog.tableExists(full):
        current = spark.sql(f"DESCRIBE DETAIL {full}").select("location").first()[0]
        if current and current.rstrip("/") == location.rstrip("/"):
            return
        if spark.catalog.getTable(full).tableType != "EXTERNAL":
            raise ValueError(f"{full} is a managed table in the catalog; drop it to register {location}")
        spark.sql(f"DROP TABLE {full}")
    spark.sql(f"CREATE TABLE {full} USING DELTA LOCATION '{location}'")


def register_lakehouse(spark: SparkSession, lakehouse: str, layers: Sequence[str] = LAYERS) -> list[str]:
    """Register every Delta table under ``<lakehouse>/<layer>/`` in the catalog.

    The in-memory catalog forgets tables when the session ends; a stage calls this when it
    starts so that ``SELECT ... FROM bronze.<source>`` works for tables of earlier runs.

    Returns:
        The catalog names registered.
    """
    jvm = spark.sparkContext._jvm
    names = []
    for layer in layers:
        folder = jvm.org.apache.hadoop.fs.Path(f"{str(lakehouse).rstrip('/')}/{layer}")
        fs = folder.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
        if not fs.exists(folder):
            continue
        for status in fs.listStatus(folder):
            path = status.getPath().toString()
            if status.isDirectory() and fs.exists(jvm.org.apache.hadoop.fs.Path(path, "_delta_log")):
                register_table(spark, layer, status.getPath().getName(), path)
                names.append(qualified_name(layer, status.getPath().getName()))
    return names


# --------------------------------------------------------------------------------------------
# Merges with clauses of their own, change data, properties and maintenance
# --------------------------------------------------------------------------------------------


def merge(
    spark: SparkSession,
    source: DataFrame,
    path: str,
    *,
    condition: str,
    clauses: Callable[[DeltaMergeBuilder], DeltaMergeBuilder],
    user_metadata: str | None = None,
    schema_evolution: bool = True,
) -> None:
    """One ``MERGE INTO`` the existing table at ``path`` with the caller's clauses.

    For merges that :func:`merge_upsert` cannot say (conditional updates, updates of rows
    the source no longer has). The table must exist.

    Args:
        spark: the session.
        source: the source rows, aliased ``s`` in ``condition`` and the clauses.
        path: the target table folder, aliased ``t``.
        condition: the join condition, e.g. ``"t.id <=> s.id"``.
        clauses: adds the ``whenMatched...`` / ``whenNotMatched...`` clauses to the builder.
        user_metadata: recorded in the commit (the run id).
        schema_evolution: add new source columns to the table (for this MERGE only).

    Note:
        Delta commits nothing when no clause changes a row of a table with deletion vectors
        enabled; on a table without them, the files the MERGE read are rewritten and a version
        is committed even then.
    """

    def run() -> None:
        target = DeltaTable.forPath(spark, str(path)).alias("t")
        clauses(target.merge(source.alias("s"), condition)).execute()

    conf = {AUTO_MERGE_CONF: "true" if schema_evolution else None, USER_METADATA_CONF: user_metadata}
    with _session_conf(spark, conf):
        with_retry(run, what=f"merge into {path}")


def commits(spark: SparkSession, path: str, limit: int) -> list[dict]:
    """The latest ``limit`` commits, newest first (small metadata, collected).

    Each is ``{"version", "timestamp" (epoch seconds), "operation", "user_metadata", "metrics"}``.
    """
    rows = (
        history(spark, path, limit)
        .select("version", F.col("timestamp").cast("double").alias("epoch"), "operation", "userMetadata",
                "operationMetrics")
        .orderBy(F.col("version").desc())
        .collect()
    )
    return [
        {"version": int(r["version"]), "timestamp": float(r["epoch"]), "operation": r["operation"],
         "user_metadata": r["userMetadata"], "metrics": dict(r["operationMetrics"] or {})}
        for r in rows
    ]


def commits_since(spark: SparkSession, path: str, since: float, *, batch: int = 8) -> list[dict]:
    """Commits made at or after ``since`` (epoch seconds), newest first, as :func:`commits`.

    Reads the history in growing batches from the newest commit and stops at the first
    commit older than ``since``, so a long history costs nothing.
    """
    limit = batch
    while True:
        found = commits(spark, path, limit)
        recent = [c for c in found if c["timestamp"] >= since]
        if len(recent) < len(found) or len(found) < limit:
            return recent
        limit *= 4


def changes(
    spark: SparkSession, path: str, *, starting_version: int = 0, ending_version: int | None = None
) -> DataFrame:
    """The Change Data Feed of the table between two versions (both included).

    Rows carry the table's columns plus ``_change_type`` (insert, update_preimage,
    update_postimage, delete), ``_commit_version`` and ``_commit_timestamp``. The table must
    have had ``delta.enableChangeDataFeed = true`` over the whole range, and VACUUM must not
    have removed the range's change files.
    """
    reader = (
        spark.read.format("delta").option("readChangeFeed", "true").option("startingVersion", int(starting_version))
    )
    if ending_version is not None:
        reader = reader.option("endingVersion", int(ending_version))
    return reader.load(str(path))


def table_properties(spark: SparkSession, path: str) -> dict[str, str]:
    """The table's properties (``delta.enableChangeDataFeed`` ...), as ``DESCRIBE DETAIL`` shows them."""
    return dict(DeltaTable.forPath(spark, str(path)).detail().select("properties").first()[0] or {})


def set_table_properties(
    spark: SparkSession, path: str, properties: dict[str, str], *, user_metadata: str | None = None
) -> int:
    """``ALTER TABLE ... SET TBLPROPERTIES``: add or change ``properties``, keep the others.

    Returns:
        The version the change committed.
    """
    pairs = ", ".join(f"'{key}' = '{value}'" for key, value in properties.items())
    location = qualify(spark, path).replace("`", "``")
    with _session_conf(spark, {USER_METADATA_CONF: user_metadata}):
        with_retry(lambda: spark.sql(f"ALTER TABLE delta.`{location}` SET TBLPROPERTIES ({pairs})"),
                   what=f"set properties of {path}")
    return current_version(spark, path)


def optimize(
    spark: SparkSession, path: str, *, zorder_by: Sequence[str] = (), user_metadata: str | None = None
) -> int:
    """``OPTIMIZE`` (compact small files), with ``ZORDER BY zorder_by`` when given.

    Returns:
        The version the OPTIMIZE committed (data unchanged: the Change Data Feed skips it).
    """

    def run() -> None:
        builder = DeltaTable.forPath(spark, str(path)).optimize()
        if zorder_by:
            builder.executeZOrderBy(*zorder_by)
        else:
            builder.executeCompaction()

    with _session_conf(spark, {USER_METADATA_CONF: user_metadata}):
        with_retry(run, what=f"optimize {path}")
    return current_version(spark, path)


def vacuum(spark: SparkSession, path: str, *, retention_hours: float, user_metadata: str | None = None) -> None:
    """``VACUUM ... RETAIN n HOURS``: delete files no version younger than that needs.

    Time travel (``VERSION AS OF``, ``TIMESTAMP AS OF``) and the Change Data Feed reach back
    only ``retention_hours``: older versions lose their files. Delta refuses less than the
    table's ``delta.deletedFileRetentionDuration`` (7 days by default) unless
    ``spark.databricks.delta.retentionDurationCheck.enabled`` is false.
    """
    with _session_conf(spark, {USER_METADATA_CONF: user_metadata}):
        DeltaTable.forPath(spark, str(path)).vacuum(float(retention_hours))
