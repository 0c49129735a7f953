"""What changed in a gold table between two versions, per customer, from its Change Data Feed.

:func:`net_changes` turns the feed's rows (``insert``, ``update_preimage`` /
``update_postimage``, ``delete``) into one row per customer whose state differs between the
two ends of the range: ``insert``, ``update`` or ``delete``. :func:`snapshot` gives the live
rows of one version instead, for a first or a full export. :func:`change_feed_start` says how
far back the feed can still be read (log clean-up, the version that turned the feed on,
VACUUM).

Pure functions over DataFrames, except :func:`change_feed_start`, which reads the table's
history; nothing is written.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from cdi_spark import delta_io
from cdi_spark.errors import StageError
from cdi_spark.golden.publish import IS_DELETED, canonical

STAGE = "activate"
KEY = "customer_id"
CHANGE = "_change"  # the change kind, before it takes a target's change_column name
INSERT, UPDATE, DELETE, UPSERT = "insert", "update", "delete", "upsert"
FEED_COLUMNS = ("_change_type", "_commit_version", "_commit_timestamp")


def snapshot(rows: DataFrame, *, change: str) -> DataFrame:
    """The live rows of a table snapshot, each marked ``change``."""
    live = rows.filter(~F.coalesce(F.col(IS_DELETED), F.lit(False))).drop(IS_DELETED)
    return live.select(KEY, F.lit(change).alias(CHANGE), *[F.col(f"`{c}`") for c in live.columns if c != KEY])


def net_changes(feed: DataFrame) -> DataFrame:
    """The net effect per customer of the Change Data Feed rows ``feed``.

    ``feed`` holds ``customer_id``, ``is_deleted``, ``_change_type``, ``_commit_version`` and
    the columns to compare. A customer is live before the range if its first row there is a
    live pre-image (``update_preimage`` or ``delete``), live after it if its last row is a
    live post-image (``insert`` or ``update_postimage``); a soft delete is ``is_deleted``
    turning true, a hard delete a ``delete`` row.

    Returns:
        ``customer_id``, ``_change`` (insert, update or delete) and the compared columns'
        values of the customer's last row (for a delete: as they were when deleted), for
        each customer that was inserted, deleted, or live on both sides with a compared
        column changed.
    """
    meta = (KEY, IS_DELETED, *FEED_COLUMNS)
    fields = [f for f in feed.schema.fields if f.name not in meta]
    is_after = F.col("_change_type").isin("insert", "update_postimage")
    # Pre-images sort before the post-images of their version (an overwrite's delete before its insert).
    order = F.col("_commit_version") * 2 + is_after.cast("long")
    image = F.struct(is_after.alias("after"), F.coalesce(F.col(IS_DELETED), F.lit(False)).alias("deleted"),
                     *[F.col(f"`{f.name}`") for f in fields])
    net = feed.groupBy(KEY).agg(F.min_by(image, order).alias("first"), F.max_by(image, order).alias("last"))
    was_live = ~F.col("first.after") & ~F.col("first.deleted")
    is_live = F.col("last.after") & ~F.col("last.deleted")
    changed = F.lit(False)
    for f in fields:
        before, after = (canonical(F.col(f"{side}.`{f.name}`"), f.dataType) for side in ("first", "last"))
        changed = changed | ~before.eqNullSafe(after)
    change = (
        F.when(~was_live & is_live, INSERT)
        .when(was_live & ~is_live, DELETE)
        .when(was_live & is_live & changed, UPDATE)
    )
    return (
        net.select(KEY, change.alias(CHANGE), *[F.col(f"last.`{f.name}`").alias(f.name) for f in fields])
        .filter(F.col(CHANGE).isNotNull())
    )


@dataclass(frozen=True)
class FeedStart:
    """The oldest version whose change data can still be read, and why it is that one."""

    version: int
    reason: str


def change_feed_start(spark: SparkSession, path: str) -> FeedStart:
    """The oldest version of the table whose changes can still be read.

    The later of: the oldest commit left in the log (older ones were cleaned up), the last
    commit that turned the Change Data Feed on, and the oldest commit a VACUUM has certainly
    kept the files of (a VACUUM with retention R at time t deletes change files of commits
    older than t - R). Reads the table's history (small metadata, collected).

    Raises:
        StageError: the table's Change Data Feed is off.
    """
    if delta_io.table_properties(spark, path).get("delta.enableChangeDataFeed", "false").lower() != "true":
        raise StageError(STAGE, f"the Change Data Feed of {path} is off; turn it on (delta.enableChangeDataFeed) "
                         "and run the export with --full")
    commits = (
        delta_io.history(spark, path)
        .select("version", F.col("timestamp").cast("double").alias("epoch"), "operation", "operationParameters")
        .collect()
    )
    start = FeedStart(min(c["version"] for c in commits), "the log holds no older commits")
    enabling = [c["version"] for c in commits if c["operation"] == "SET TBLPROPERTIES"
                and '"delta.enableChangeDataFeed":"true"' in (c["operationParameters"] or {}).get("properties", "")]
    if enabling and max(enabling) > start.version:
        start = FeedStart(max(enabling), "the Change Data Feed was turned on then")
    cutoffs = []
    for c in commits:
        if c["operation"] == "VACUUM START":
            params = c["operationParameters"] or {}
            retention = params.get("specifiedRetentionMillis") or params.get("defaultRetentionMillis") or "0"
            cutoffs.append(c["epoch"] - int(retention) / 1000)
    if cutoffs:
        kept = min(c["version"] for c in commits if c["epoch"] >= max(cutoffs))
        if kept > start.version:
            start = FeedStart(kept, "VACUUM removed the change files of older versions")
    return start
