"""Questions about the past of the golden tables: time travel, field history, run diffs.

Reads ``gold.customer_profile`` (or another published gold table), ``gold.customer_ids``
(to resolve retired ids) and ``audit.runs`` (which version each run wrote); writes nothing.
Every function takes the session and the lakehouse folder and returns a DataFrame; the SQL
in each docstring asks the same question of the catalog tables.

A retired customer id (merged into another) names its survivor: ``gold.customer_ids`` maps
it to ``current_id``, and these functions look that id up unless told not to. An id the
registry does not know, and an id retired without a survivor (``current_id`` null: its
records are gone), is taken as it is. Resolution uses today's registry: "this customer"
means the person the id names now, also when reading an old version.

How far back: time travel and the Change Data Feed need the files of the versions they
read, and VACUUM (see :func:`cdi_spark.golden.publish.maintain`) deletes the files of
versions older than its retention (7 days by default).
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from cdi_spark import delta_io, tables
from cdi_spark.golden.publish import BOOKKEEPING, CONTENT_HASH, IS_DELETED, RUN_ID, canonical
from cdi_spark.runs import runs_path

KEY = "customer_id"
CHANGE_COLUMNS = ("_change_type", "_commit_version", "_commit_timestamp")
INSERT, UPDATE, DELETE = "insert", "update", "delete"
ADDED, REMOVED, CHANGED = "added", "removed", "changed"


def _gold(lakehouse: str, name: str) -> str:
    return tables.table_path(lakehouse, tables.GOLD, name)


def _table_path(lakehouse: str, table: str) -> tuple[str, str]:
    """``(qualified name, folder)`` of ``table``: a gold table name or ``<layer>.<name>``."""
    layer, _, name = table.rpartition(".")
    layer = layer or tables.GOLD
    return tables.qualified_name(layer, name), tables.table_path(lakehouse, layer, name)


def resolved_id(spark: SparkSession, lakehouse: str, customer_id: str) -> DataFrame:
    """One row, column ``customer_id``: the id ``customer_id`` resolves to today.

    A retired id gives its ``current_id`` in ``gold.customer_ids``; an active or unknown id,
    or one retired without a survivor, gives itself. Nothing is collected: callers join with
    the result.
    """
    asked = spark.createDataFrame([(customer_id,)], "asked string")
    path = _gold(lakehouse, tables.CUSTOMER_IDS)
    if not delta_io.exists(spark, path):
        return asked.select(F.col("asked").alias(KEY))
    registry = delta_io.read(spark, path).select(F.col(KEY).alias("known"), "current_id")
    return (
        asked.join(registry, F.col("asked") == F.col("known"), "left")
        .select(F.coalesce("current_id", "asked").alias(KEY))
    )


def profile_as_of(
    spark: SparkSession,
    lakehouse: str,
    customer_id: str,
    *,
    version: int | None = None,
    timestamp: str | None = None,
    resolve: bool = True,
) -> DataFrame:
    """The profile row of a customer at a version or a time of ``gold.customer_profile``.

    Args:
        spark: the session.
        lakehouse: the lakehouse folder.
        customer_id: the customer; a retired id is resolved to its survivor first.
        version: read this version of the table (default: the current one).
        timestamp: or the version current at this time, e.g. ``"2026-01-31 23:59:59"``
            (session time zone; a time after the last commit reads the last version).
        resolve: False reads ``customer_id`` itself, retired or not (its own old row).

    Returns:
        The row (every column, bookkeeping included: ``is_deleted`` says whether the
        customer was live then), or no row when the customer (or the table) did not
        exist then.

    Raises:
        ValueError: both ``version`` and ``timestamp`` were given.

    Example:
        .. code-block:: sql

            SELECT p.*
            FROM gold.customer_profile VERSION AS OF 12 AS p   -- or TIMESTAMP AS OF '2026-01-31'
            WHERE p.customer_id = (
                SELECT coalesce(max(current_id), 'C-0001') FROM gold.customer_ids
                WHERE customer_id = 'C-0001')
    """
    if version is not None and timestamp is not None:
        raise ValueError("profile_as_of: give version or timestamp, not both")
    path = _gold(lakehouse, tables.CUSTOMER_PROFILE)
    if timestamp is not None:
        version = version_at(spark, path, timestamp)
        if version is None:  # before the table existed
            return delta_io.read(spark, path).limit(0)
    profile = delta_io.read(spark, path, version=version)
    if not resolve:
        return profile.filter(F.col(KEY) == customer_id)
    return profile.join(F.broadcast(resolved_id(spark, lakehouse, customer_id)), KEY, "left_semi")


def version_at(spark: SparkSession, path: str, timestamp: str) -> int | None:
    """The version of the table current at ``timestamp`` (session time zone), from its
    history; None before its first commit. Unlike ``TIMESTAMP AS OF``, a time after the
    last commit gives the last version instead of an error."""
    row = (
        delta_io.history(spark, path)
        .filter(F.col("timestamp") <= F.lit(timestamp).cast("timestamp"))
        .agg(F.max("version").alias("version"))
        .first()
    )
    return None if row["version"] is None else int(row["version"])


def _cdf_start(spark: SparkSession, path: str) -> int:
    """The first version with change data: 0, or the version that turned the feed on."""
    enabling = [
        r["version"] for r in delta_io.history(spark, path)
        .filter(F.col("operation") == "SET TBLPROPERTIES")
        .filter(F.col("operationParameters")["properties"].contains('"delta.enableChangeDataFeed":"true"'))
        .select("version").collect()
    ]
    return max(enabling, default=0)


def profile_history(spark: SparkSession, lakehouse: str, customer_id: str, *, resolve: bool = True) -> DataFrame:
    """Every change to a customer's profile, one row per changed field per version.

    Read from the Change Data Feed of ``gold.customer_profile``. A change is ``insert``
    (the customer appears, or comes back after a soft delete), ``update`` or ``delete``
    (soft or hard). Values are text: scalars as cast to string, arrays, maps and structs
    as JSON. Inserts list every field with a value (old_value null), deletes every field
    that had one (new_value null). Bookkeeping columns are not fields.

    Args:
        spark: the session.
        lakehouse: the lakehouse folder.
        customer_id: the customer. With ``resolve``, a retired id's survivor's changes are
            included with the retired id's own (its insert, updates and final delete).
        resolve: False shows ``customer_id``'s own rows only.

    Returns:
        ``version, timestamp, run_id, customer_id, change, field, old_value, new_value``,
        ordered by version, customer and field. ``run_id`` is the commit's user metadata.

    Example:
        .. code-block:: sql

            SELECT *   -- the row's columns, _change_type, _commit_version, _commit_timestamp
            FROM table_changes('gold.customer_profile', 0)
            WHERE customer_id = 'C-0001'
            ORDER BY _commit_version
    """
    path = _gold(lakehouse, tables.CUSTOMER_PROFILE)
    ids = spark.createDataFrame([(customer_id,)], f"{KEY} string")
    if resolve:
        ids = ids.unionByName(resolved_id(spark, lakehouse, customer_id)).distinct()
    cdf = delta_io.changes(spark, path, starting_version=_cdf_start(spark, path))
    cdf = cdf.join(F.broadcast(ids), KEY, "left_semi")
    fields = [f for f in cdf.schema.fields if f.name not in (KEY, *BOOKKEEPING, *CHANGE_COLUMNS)]

    kind = F.col("_change_type")
    old = cdf.filter(kind.isin("update_preimage", "delete")).alias("o")
    new = cdf.filter(kind.isin("update_postimage", "insert")).alias("n")
    on = (F.col(f"o.{KEY}") == F.col(f"n.{KEY}")) & (F.col("o._commit_version") == F.col("n._commit_version"))
    pairs = old.join(new, on, "full_outer")
    had, has = F.col(f"o.{KEY}").isNotNull(), F.col(f"n.{KEY}").isNotNull()
    was_live = had & ~F.coalesce(F.col(f"o.`{IS_DELETED}`"), F.lit(False))
    is_live = has & ~F.coalesce(F.col(f"n.`{IS_DELETED}`"), F.lit(False))
    values = F.array(*[
        F.struct(
            F.lit(f.name).alias("field"),
            F.when(was_live, canonical(F.col(f"o.`{f.name}`"), f.dataType)).alias("old_value"),
            F.when(is_live, canonical(F.col(f"n.`{f.name}`"), f.dataType)).alias("new_value"),
        )
        for f in fields
    ])
    commits = delta_io.history(spark, path).select(F.col("version"), F.col("userMetadata").alias(RUN_ID))
    return (
        pairs.filter(was_live | is_live)
        .select(
            F.coalesce("n._commit_version", "o._commit_version").alias("version"),
            F.coalesce("n._commit_timestamp", "o._commit_timestamp").alias("timestamp"),
            F.coalesce(f"n.{KEY}", f"o.{KEY}").alias(KEY),
            F.when(~was_live, INSERT).when(~is_live, DELETE).otherwise(UPDATE).alias("change"),
            F.explode(values).alias("value"),
        )
        .filter(~F.col("value.old_value").eqNullSafe(F.col("value.new_value")))
        .join(F.broadcast(commits), "version", "left")
        .select("version", "timestamp", RUN_ID, KEY, "change", "value.field", "value.old_value", "value.new_value")
        .orderBy("version", KEY, "field")
    )


def run_version(spark: SparkSession, lakehouse: str, run_id: str, table: str) -> int | None:
    """The version of ``table`` (``<layer>.<name>``) as run ``run_id`` left it, from ``audit.runs``.

    The version the run committed, or, when it changed nothing in the table (a publish that
    changes nothing commits nothing), the latest version an earlier run committed. None
    when no run up to this one wrote the table.

    Raises:
        ValueError: ``run_id`` is not in ``audit.runs``.
    """
    path = runs_path(lakehouse)
    if not delta_io.exists(spark, path):
        raise ValueError(f"no audit.runs in {lakehouse}: runs are recorded by cdi_spark.pipeline.run_pipeline")
    runs = delta_io.read(spark, path)
    this = runs.filter(F.col("run_id") == run_id).select(F.col("started_at").alias("this_start"))
    row = (
        runs.crossJoin(this)
        .filter(F.col("started_at") <= F.col("this_start"))
        .agg(F.max(F.col("versions")[table]).alias("version"), F.count(F.lit(1)).alias("runs"))
        .first()
    )
    if row["runs"] == 0:
        raise ValueError(f"run {run_id!r} is not in audit.runs of {lakehouse}; "
                         "SELECT run_id, started_at FROM audit.runs lists the runs")
    return None if row["version"] is None else int(row["version"])


def diff_runs(
    spark: SparkSession,
    lakehouse: str,
    run_a: str,
    run_b: str,
    table: str = tables.CUSTOMER_PROFILE,
    *,
    keys: tuple[str, ...] = (KEY,),
) -> DataFrame:
    """Customers added, removed or changed between the versions of ``table`` two runs wrote.

    The versions come from ``audit.runs`` (:func:`run_version`). A soft-deleted row counts
    as absent. Fields are compared by value (maps whatever their entry order); bookkeeping
    columns are not fields. A column one version lacks is null there.

    Args:
        spark: the session.
        lakehouse: the lakehouse folder.
        run_a: the earlier run (the diff reads from a to b; either order works).
        run_b: the later run.
        table: a gold table name (``customer_profile``) or ``<layer>.<name>``.
        keys: the table's key columns.

    Returns:
        ``<keys>, change ('added'|'removed'|'changed'), changed_fields`` (sorted names of
        the fields whose value differs; every field with a value for added and removed
        rows), one row per customer that differs.

    Example:
        .. code-block:: sql

            -- versions: SELECT versions['gold.customer_profile'] FROM audit.runs WHERE run_id IN (...)
            SELECT coalesce(a.customer_id, b.customer_id) AS customer_id,
                   CASE WHEN a.customer_id IS NULL THEN 'added'
                        WHEN b.customer_id IS NULL THEN 'removed' ELSE 'changed' END AS change
            FROM (SELECT * FROM gold.customer_profile VERSION AS OF 3 WHERE NOT is_deleted) a
            FULL OUTER JOIN (SELECT * FROM gold.customer_profile VERSION AS OF 5 WHERE NOT is_deleted) b
              ON a.customer_id = b.customer_id
            WHERE a.customer_id IS NULL OR b.customer_id IS NULL OR a._content_hash <> b._content_hash

        For consecutive runs the Change Data Feed gives the same rows without reading
        every row: ``SELECT * FROM table_changes('gold.customer_profile', 4, 5)``.
    """
    name, path = _table_path(lakehouse, table)
    a, b = (_snapshot(spark, path, run_version(spark, lakehouse, r, name)) for r in (run_a, run_b))
    types = {f.name: f.dataType for side in (a, b) for f in side.schema.fields}
    fields = sorted(c for c in types if c not in (*keys, *BOOKKEEPING))

    def value(side: DataFrame, alias: str, column: str) -> Column:
        if column not in side.columns:
            return F.lit(None).cast("string")
        return canonical(F.col(f"{alias}.`{column}`"), types[column])

    a, b = a.withColumn("_live", F.lit(True)).alias("a"), b.withColumn("_live", F.lit(True)).alias("b")
    on = F.lit(True)
    for k in keys:
        on = on & F.col(f"a.`{k}`").eqNullSafe(F.col(f"b.`{k}`"))
    in_a, in_b = F.col("a._live").isNotNull(), F.col("b._live").isNotNull()
    differing = F.array_compact(F.array(*[
        F.when(~value(a, "a", c).eqNullSafe(value(b, "b", c)), F.lit(c)) for c in fields
    ])) if fields else F.array().cast("array<string>")
    return (
        a.join(b, on, "full_outer")
        .select(
            *[F.coalesce(F.col(f"a.`{k}`"), F.col(f"b.`{k}`")).alias(k) for k in keys],
            F.when(~in_a, ADDED).when(~in_b, REMOVED).otherwise(CHANGED).alias("change"),
            differing.alias("changed_fields"),
        )
        .filter((F.col("change") != CHANGED) | (F.size("changed_fields") > 0))
        .orderBy(*keys)
    )


def _snapshot(spark: SparkSession, path: str, version: int | None) -> DataFrame:
    """The live rows of the table at ``version``; no rows when None (the table was not there)."""
    if version is None:
        return delta_io.read(spark, path).limit(0)
    rows = delta_io.read(spark, path, version=version)
    if IS_DELETED in rows.columns:
        rows = rows.filter(~F.col(IS_DELETED))
    return rows.drop(CONTENT_HASH)


@dataclass(frozen=True)
class IdStability:
    """How many customers that a later run did not touch kept their id (:func:`id_stability`)."""

    customers: int  # live customers after the earlier run
    touched: int  # of them, those the later run's records touched
    kept: int  # untouched customers whose every record still has their id

    @property
    def untouched(self) -> int:
        return self.customers - self.touched

    @property
    def rate(self) -> float | None:
        """Share of the untouched customers that kept their id (None when none was untouched)."""
        return self.kept / self.untouched if self.untouched else None


def id_stability(spark: SparkSession, lakehouse: str, run_a: str, run_b: str) -> IdStability:
    """Did the customers that run ``run_b`` did not touch keep the ids run ``run_a`` gave them?

    A record is touched when it is in ``silver.customer_records`` after ``run_b`` with a
    ``run_id`` it did not have after ``run_a`` (new, or written again because its source sent
    it again), or when it was there after ``run_a`` and is gone. A customer of ``run_a`` is
    touched when one of its records is, or when one of its records now belongs to a customer
    that holds a touched record (a new record that joins two customers touches both). An
    untouched customer keeps its id when every one of its records still maps to it in
    ``gold.customer_xref``.

    Raises:
        ValueError: a run is not in ``audit.runs``.
    """
    xref_name, xref_path = _table_path(lakehouse, tables.CUSTOMER_XREF)
    silver_name, silver_path = _table_path(lakehouse, f"{tables.SILVER}.{tables.CUSTOMER_RECORDS}")
    before = _snapshot(spark, xref_path, run_version(spark, lakehouse, run_a, xref_name)).select(
        "record_key", F.col(KEY).alias("old_id"))
    after = _snapshot(spark, xref_path, run_version(spark, lakehouse, run_b, xref_name)).select("record_key", KEY)
    records_a, records_b = (
        _snapshot(spark, silver_path, run_version(spark, lakehouse, r, silver_name)).select("record_key", RUN_ID)
        for r in (run_a, run_b)
    )
    touched_records = records_b.join(records_a, ["record_key", RUN_ID], "left_anti").select("record_key").union(
        records_a.join(records_b, "record_key", "left_anti").select("record_key"))
    touched_new_ids = after.join(touched_records, "record_key").select(KEY).distinct()
    touched_old_ids = (
        before.join(touched_records, "record_key").select("old_id")
        .union(before.join(after, "record_key").join(touched_new_ids, KEY).select("old_id"))
        .distinct()
    )
    untouched = before.join(touched_old_ids, "old_id", "left_anti")
    per_customer = untouched.join(after, "record_key", "left").groupBy("old_id").agg(
        F.min(F.coalesce(F.col(KEY) == F.col("old_id"), F.lit(False))).alias("same"))
    row = per_customer.agg(F.count(F.lit(1)).alias("untouched"), F.count_if("same").alias("kept")).first()
    customers = before.select("old_id").distinct().count()
    return IdStability(customers, customers - int(row["untouched"]), int(row["kept"] or 0))
