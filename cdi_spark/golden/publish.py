"""Versioned publishing of gold tables: one Delta MERGE per table per run, and upkeep.

:func:`publish` brings a gold table (``gold.customer_profile``, ``gold.customer_ids``,
``gold.customer_360`` ...) in line with a DataFrame of its new content in one ``MERGE``:

- a new key is inserted;
- a key whose content changed is updated, and only then: each row carries a
  ``_content_hash`` of its content columns, so an unchanged row is not rewritten and the
  Change Data Feed shows real changes only;
- a key missing from the DataFrame is soft-deleted (``is_deleted = true``,
  ``deleted_run_id``; its last values stay); a key that comes back is revived.

Bookkeeping columns added to every published table:

===================  =========  ==============================================================
``run_id``           string     the run that last changed the row (insert, update, delete)
``is_deleted``       boolean    the key is gone from the latest published content
``deleted_run_id``   string     the run that soft-deleted it (null while it is live)
``_content_hash``    string     sha-256 of the content columns (keys and bookkeeping excluded)
===================  =========  ==============================================================

Versions: a run that changes a table commits exactly one version of it, whose
``userMetadata`` is the run id; a run that changes nothing in it (a re-run after a crash,
a quiet day) commits no version at all. That holds because tables are created with
deletion vectors on: with them a MERGE that updates, inserts and deletes nothing commits
nothing (checked on Delta 3.3), and a change marks the old rows deleted instead of
copying every unchanged row of the files it touches. A table that existed before without
these properties gets them once, by an ``ALTER TABLE ... SET TBLPROPERTIES`` commit of its
own: that run commits two versions of it. A MERGE that adds a column (``df`` has a new one)
commits a version even when no row changes: the schema changed.

Things to know:

- In the Change Data Feed a soft delete and a revival are ``update_preimage`` /
  ``update_postimage`` pairs (``is_deleted`` flips); :mod:`cdi_spark.golden.history` reads
  them as deletes and inserts.
- Deletion vectors need readers on Delta 2.3 or later (table protocol reader 3, writer 7).
- A column dropped from ``df`` stays in the table with its last values (Delta's
  ``UPDATE SET *`` leaves columns the source lacks); the hash no longer covers it.

:func:`maintain` compacts and Z-orders a table on a schedule and vacuums old files.

Reads and writes: the table at ``path`` only, through :mod:`cdi_spark.delta_io`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from delta.tables import DeltaMergeBuilder
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, BinaryType, DataType, MapType, StringType, StructType

from cdi_spark import delta_io
from cdi_spark.errors import MissingColumnError, SchemaError

log = logging.getLogger(__name__)

RUN_ID = "run_id"
IS_DELETED = "is_deleted"
DELETED_RUN_ID = "deleted_run_id"
CONTENT_HASH = "_content_hash"
BOOKKEEPING = (RUN_ID, IS_DELETED, DELETED_RUN_ID, CONTENT_HASH)

# Change Data Feed for history and diffs; deletion vectors so that unchanged rows are not
# rewritten and a MERGE that changes nothing commits nothing.
PUBLISH_PROPERTIES = {"delta.enableChangeDataFeed": "true", "delta.enableDeletionVectors": "true"}

# Operations that change a table's data; OPTIMIZE's schedule counts them.
DATA_OPERATIONS = frozenset({
    "WRITE", "MERGE", "UPDATE", "DELETE", "STREAMING UPDATE", "RESTORE",
    "CREATE TABLE AS SELECT", "REPLACE TABLE AS SELECT", "CREATE OR REPLACE TABLE AS SELECT",
})
# JSON of hashed and compared values: nulls left out, times in UTC, whatever the session says.
_JSON = {"ignoreNullFields": "true", "timeZone": "UTC"}


@dataclass(frozen=True)
class PublishResult:
    """What one :func:`publish` did.

    Attributes:
        version: the table version holding the published content (the one this call
            committed, or the current one when it committed nothing).
        committed: whether this call committed a version (False: nothing changed).
        inserted: new keys (on the first publish: every row).
        updated: keys whose content changed, revived keys included.
        deleted: keys soft-deleted by this call.
        unchanged: keys of ``df`` whose row was already up to date. None when nothing was
            committed: Delta records no metrics for a MERGE that commits nothing, and
            counting would cost a scan (every row of ``df`` was unchanged then).
    """

    version: int
    committed: bool
    inserted: int
    updated: int
    deleted: int
    unchanged: int | None


# --------------------------------------------------------------------------------------------
# Content: canonical text of a value, and the content hash
# --------------------------------------------------------------------------------------------


def _sorted_entries(column: Column) -> Column:
    """A map as an array of (key, value) sorted by key: the same map, whatever its order."""
    return F.array_sort(
        F.map_entries(column),
        lambda a, b: F.when(a["key"] < b["key"], -1).when(a["key"] > b["key"], 1).otherwise(0),
    )


def canonical(column: Column, dtype: DataType) -> Column:
    """``column`` as text, equal when the values are: scalars cast to string (times in the
    session time zone), arrays, maps and structs as JSON (a column's map entries sorted by
    key; maps nested in arrays or structs keep their order), null stays null.

    Used for comparing rows across versions (Spark cannot compare maps) and for the old and
    new values :mod:`cdi_spark.golden.history` shows.
    """
    if isinstance(dtype, StringType):
        return column
    if isinstance(dtype, MapType):
        return F.when(column.isNotNull(), F.to_json(_sorted_entries(column), _JSON))
    if isinstance(dtype, ArrayType | StructType):
        return F.to_json(column, _JSON)
    if isinstance(dtype, BinaryType):
        return F.hex(column)
    return column.cast("string")


def content_hash(df: DataFrame, columns: Sequence[str]) -> Column:
    """sha-256 of the JSON of ``columns`` of ``df``: independent of the columns' order and of
    the entry order of map columns, and of the session time zone (times are written in UTC).

    A null field is left out of the hashed JSON, so adding a column that is null everywhere
    changes no hash (no row is rewritten for it).
    """
    types = {f.name: f.dataType for f in df.schema.fields}
    if not columns:
        return F.sha2(F.lit("{}"), 256)
    values = []
    for name in sorted(columns):
        value = F.col(f"`{name}`")
        if isinstance(types[name], MapType):
            value = F.when(value.isNotNull(), _sorted_entries(value))
        values.append(value.alias(name))
    return F.sha2(F.to_json(F.struct(*values), _JSON), 256)


def content_columns_of(df: DataFrame, keys: Sequence[str], content_columns: Sequence[str] | None) -> list[str]:
    """The columns hashed and compared: ``content_columns``, or all but keys and bookkeeping.

    Raises:
        MissingColumnError: a key or content column is not in ``df``.
        SchemaError: ``df`` already has a bookkeeping column.
    """
    missing = [c for c in [*keys, *(content_columns or ())] if c not in df.columns]
    if missing:
        raise MissingColumnError("publish", missing, df.columns)
    clash = [c for c in BOOKKEEPING if c in df.columns]
    if clash:
        raise SchemaError(f"publish: the DataFrame has bookkeeping column(s) {', '.join(clash)}, which publish "
                          "writes itself; drop or rename them")
    if content_columns is not None:
        return list(content_columns)
    return [c for c in df.columns if c not in keys]


# --------------------------------------------------------------------------------------------
# Publishing
# --------------------------------------------------------------------------------------------


def publish(
    spark: SparkSession,
    df: DataFrame,
    path: str,
    *,
    keys: Sequence[str],
    run_id: str,
    content_columns: Sequence[str] | None = None,
    table_properties: dict[str, str] | None = None,
    scope: DataFrame | None = None,
    deleted: DataFrame | None = None,
) -> PublishResult:
    """Make the table at ``path`` hold ``df``'s content, in one MERGE (one version, or none).

    Inserts new keys, updates keys whose content hash changed (and revives soft-deleted
    keys that are back), soft-deletes live keys missing from ``df``. Publishing the same
    content again changes nothing and commits nothing, so a crashed run can simply be
    run again. Counts come from the commit's ``operationMetrics``, not from extra scans.

    By default ``df`` is the whole table. An incremental run passes ``scope``: then ``df``
    is the content of the keys in ``scope`` only; keys in ``scope`` (or in ``deleted``) that
    ``df`` lacks are soft-deleted, and rows outside them are not touched.

    Args:
        spark: the session.
        df: the table's new content, one row per key (Delta refuses a MERGE where two
            source rows match one target row; duplicate new keys would both be inserted).
        path: the table folder, e.g. ``tables.table_path(lakehouse, GOLD, CUSTOMER_PROFILE)``.
        keys: the columns that identify a row (``("customer_id",)``).
        run_id: recorded in ``run_id`` / ``deleted_run_id`` and as the commit's user metadata.
        content_columns: the columns whose change is a change; default all but the keys.
            Leave out values that change every run without meaning anything (a load time).
        table_properties: properties the table must have; default
            :data:`PUBLISH_PROPERTIES` (Change Data Feed and deletion vectors). Properties
            already on the table are kept.
        scope: the keys (a DataFrame holding the key columns) ``df`` speaks for.
        deleted: keys to soft-delete unless ``df`` has them (with ``scope``, or instead).

    Returns:
        A :class:`PublishResult`. With ``scope`` or ``deleted`` its ``deleted`` count is
        read from the commit's change data (the metrics lump soft deletes with updates;
        the table needs its Change Data Feed), and ``unchanged`` is None.

    Raises:
        MissingColumnError: a key or content column is not in ``df`` (or a key not in
            ``scope`` / ``deleted``).
        SchemaError: ``df`` has a bookkeeping column of its own.

    Example:
        >>> publish(spark, profiles, table_path(lake, GOLD, CUSTOMER_PROFILE),
        ...         keys=["customer_id"], run_id=run_id)   # doctest: +SKIP
        PublishResult(version=7, committed=True, inserted=12, updated=3, deleted=1, unchanged=9984)
    """
    if not keys:
        raise ValueError("publish: keys must name at least one column")
    content = content_columns_of(df, keys, content_columns)
    rows = df.select(
        *[F.col(f"`{c}`") for c in df.columns],
        F.lit(run_id).alias(RUN_ID),
        F.lit(False).alias(IS_DELETED),
        F.lit(None).cast("string").alias(DELETED_RUN_ID),
        content_hash(df, content).alias(CONTENT_HASH),
    )
    properties = PUBLISH_PROPERTIES if table_properties is None else table_properties
    if not delta_io.exists(spark, path):
        version = delta_io.append(spark, rows, path, user_metadata=run_id, table_properties=properties)
        count = int(delta_io.last_commit(spark, path)["metrics"].get("numOutputRows", 0))
        log.info("publish %s: created at version %d with %d rows", path, version, count)
        return PublishResult(version, True, count, 0, 0, 0)

    scoped = scope is not None or deleted is not None
    source = _with_deletions(rows, keys, [k for k in (scope, deleted) if k is not None], run_id) if scoped else rows
    _ensure_properties(spark, path, properties, run_id)
    before = delta_io.current_version(spark, path)
    delta_io.merge(
        spark, source, path,
        condition=" AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys),
        clauses=lambda m: _clauses(m, run_id, delete_missing=not scoped),
        user_metadata=run_id,
    )
    result = _merge_result(spark, path, before, run_id, scoped=scoped)
    log.info("publish %s: %s", path, result)
    return result


def _with_deletions(rows: DataFrame, keys: Sequence[str], key_frames: list[DataFrame], run_id: str) -> DataFrame:
    """``rows`` plus a deletion marker (``is_deleted`` true) for each key of ``key_frames``
    that ``rows`` lacks: one source row per key, ``rows`` winning."""
    for frame in key_frames:
        missing = [k for k in keys if k not in frame.columns]
        if missing:
            raise MissingColumnError("publish: scope/deleted", missing, frame.columns)
    markers = key_frames[0].select(*keys)
    for frame in key_frames[1:]:
        markers = markers.unionByName(frame.select(*keys))
    markers = markers.select(
        *keys, F.lit(run_id).alias(RUN_ID), F.lit(True).alias(IS_DELETED), F.lit(run_id).alias(DELETED_RUN_ID)
    )
    first = Window.partitionBy(*[F.col(f"`{k}`") for k in keys]).orderBy(F.col(IS_DELETED))
    return (
        rows.unionByName(markers, allowMissingColumns=True)
        .withColumn("_publish_rank", F.row_number().over(first))
        .filter(F.col("_publish_rank") == 1)
        .drop("_publish_rank")
    )


def _clauses(merge: DeltaMergeBuilder, run_id: str, *, delete_missing: bool) -> DeltaMergeBuilder:
    """The MERGE's clauses. A source row with ``is_deleted`` true is a deletion marker."""
    soft_delete = {IS_DELETED: F.lit(True), DELETED_RUN_ID: F.lit(run_id), RUN_ID: F.lit(run_id)}
    changed = f"NOT (t.`{CONTENT_HASH}` <=> s.`{CONTENT_HASH}`) OR t.`{IS_DELETED}`"
    merge = (
        merge.whenMatchedUpdate(condition=f"s.`{IS_DELETED}` AND NOT t.`{IS_DELETED}`", set=soft_delete)
        .whenMatchedUpdateAll(condition=f"NOT s.`{IS_DELETED}` AND ({changed})")
        .whenNotMatchedInsertAll(condition=f"NOT s.`{IS_DELETED}`")
    )
    if delete_missing:
        merge = merge.whenNotMatchedBySourceUpdate(condition=f"NOT t.`{IS_DELETED}`", set=soft_delete)
    return merge


def _ensure_properties(spark: SparkSession, path: str, properties: dict[str, str], run_id: str) -> None:
    """Add the properties the table lacks (one commit, the first time only)."""
    current = delta_io.table_properties(spark, path)
    lacking = {k: v for k, v in properties.items() if current.get(k) != v}
    if lacking:
        log.info("publish %s: setting %s (one extra version)", path, ", ".join(f"{k}={v}" for k, v in lacking.items()))
        delta_io.set_table_properties(spark, path, lacking, user_metadata=run_id)


def _merge_result(spark: SparkSession, path: str, before: int, run_id: str, *, scoped: bool) -> PublishResult:
    """Counts of the MERGE committed after version ``before``, or of no commit."""
    commits = [c for c in delta_io.commits(spark, path, 8) if c["version"] > before]
    merge = next((c for c in commits if c["operation"] == "MERGE" and c["user_metadata"] == run_id), None)
    if merge is None:
        return PublishResult(before, False, 0, 0, 0, None)
    metrics = {k: int(v) for k, v in merge["metrics"].items() if v.isdigit()}
    inserted = metrics.get("numTargetRowsInserted", 0)
    updated = metrics.get("numTargetRowsMatchedUpdated", 0)
    if not scoped:
        deleted = metrics.get("numTargetRowsNotMatchedBySourceUpdated", 0)
        unchanged = metrics.get("numSourceRows", 0) - inserted - updated
        return PublishResult(merge["version"], True, inserted, updated, deleted, unchanged)
    # Soft deletes were matched updates too; a content update always leaves is_deleted false.
    version = merge["version"]
    deleted = (
        delta_io.changes(spark, path, starting_version=version, ending_version=version)
        .filter((F.col("_change_type") == "update_postimage") & F.col(IS_DELETED))
        .count()
    )
    return PublishResult(version, True, inserted, updated - deleted, deleted, None)


# --------------------------------------------------------------------------------------------
# Upkeep
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MaintenanceResult:
    """What one :func:`maintain` did: whether OPTIMIZE and VACUUM ran."""

    optimized: bool
    vacuumed: bool


def optimize_due(spark: SparkSession, path: str, *, every: int, run_number: int | None = None) -> bool:
    """Whether OPTIMIZE is due: run ``run_number`` is a multiple of ``every`` when given;
    otherwise at least ``every`` data-changing commits were made since the last OPTIMIZE
    (read from the newest end of the history). A run that changed nothing commits
    nothing, so it does not bring OPTIMIZE closer: there is nothing new to compact.
    """
    if every < 1:
        raise ValueError(f"optimize_every must be at least 1, found {every}")
    if run_number is not None:
        return run_number % every == 0
    writes = 0
    # Each run adds one write and at most three maintenance commits (OPTIMIZE, VACUUM START/END).
    for commit in delta_io.commits(spark, path, 4 * every + 4):
        if commit["operation"] == "OPTIMIZE":
            break
        writes += commit["operation"] in DATA_OPERATIONS
    return writes >= every


def maintain(
    spark: SparkSession,
    path: str,
    *,
    zorder_by: Sequence[str] = ("customer_id",),
    optimize_every: int = 10,
    vacuum_retention_hours: float | None = 168.0,
    run_number: int | None = None,
    run_id: str | None = None,
) -> MaintenanceResult:
    """When due (see :func:`optimize_due`), ``OPTIMIZE ... ZORDER BY`` the table, then VACUUM it.

    OPTIMIZE compacts the small files that each run's MERGE adds and clusters rows by
    ``zorder_by`` so that lookups of one customer read few files. It changes no data: the
    Change Data Feed skips it. VACUUM then deletes files that no version younger than
    ``vacuum_retention_hours`` needs. That retention bounds time travel: after it,
    ``VERSION AS OF`` / ``TIMESTAMP AS OF`` older than the retention, ``profile_as_of`` of
    such versions and the Change Data Feed over them fail for want of files. The default,
    168 hours (7 days), is Delta's own minimum without overriding its safety check.

    Args:
        spark: the session.
        path: the table folder.
        zorder_by: columns to cluster by; empty for plain compaction.
        optimize_every: OPTIMIZE once per this many runs.
        vacuum_retention_hours: VACUUM's retention; None never vacuums.
        run_number: the run's ordinal, when the caller counts runs; else the table's
            history decides.
        run_id: recorded as the maintenance commits' user metadata.

    Returns:
        A :class:`MaintenanceResult`.
    """
    if not optimize_due(spark, path, every=optimize_every, run_number=run_number):
        return MaintenanceResult(False, False)
    version = delta_io.optimize(spark, path, zorder_by=zorder_by, user_metadata=run_id)
    log.info("maintain %s: OPTIMIZE%s at version %d", path, f" ZORDER BY {', '.join(zorder_by)}" if zorder_by else "",
             version)
    if vacuum_retention_hours is None:
        return MaintenanceResult(True, False)
    delta_io.vacuum(spark, path, retention_hours=vacuum_retention_hours, user_metadata=run_id)
    log.info("maintain %s: VACUUM RETAIN %s HOURS", path, vacuum_retention_hours)
    return MaintenanceResult(True, True)
