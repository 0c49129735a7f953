"""The id keeper: customer ids that persist from run to run while the clusters change under them.

Pure over its inputs (reads and writes no table): takes this run's ``silver.entity_clusters``,
the last run's ``gold.customer_xref`` and ``gold.customer_ids``, and returns the new
``gold.customer_xref``, the new ``gold.customer_ids`` (every id ever issued, its status and
the active id it resolves to) and this run's ``audit.id_events`` rows. ``docs/golden.md``
holds the contract; in short:

* an old id's *home* is the cluster holding most of its records (ties: smallest cluster_id);
* a cluster that is home to old ids keeps the oldest (created_at, created_run_id, id); the
  others are retired into it (``merge``, related_id = the survivor);
* a cluster home to no old id gets a new id: ``split`` (related_id = the old id most of its
  records had, ties: smallest id) or ``create`` when none of its records had an id;
* an active id with no record left is retired (``retire``, no survivor).

Events hold the records they are about, sorted: the cluster's records for ``create`` and
``split``, the records the id had last run for ``merge`` and ``retire``. A record that
moves between two ids that both live on (a record re-homed to another existing cluster)
raises no event: no id is born or ends, and the move shows in the xref (and in the Change
Data Feed of its MERGE). The four kinds of the contract are therefore enough.

Plan (R: a shuffle of records, I: of ids or (cluster, id) pairs, which are far fewer):

1. ``joined`` = clusters LEFT JOIN previous_xref ON record_key (R), repartitioned by
   cluster_id (R) and checkpointed: every later read of records is co-partitioned.
2. Per (cluster, old id) the record count: no shuffle. From it, per old id its home (I), the
   age of each old id from the registry (I), per home cluster the survivor and the ids
   merged into it (I); per cluster its most common old id: no shuffle. One row per cluster
   (``decisions``: cluster_id, customer_id, kind, related_id, merged), checkpointed,
   partitioned by cluster_id.
3. xref and the create/split events: ``joined`` JOIN ``decisions`` ON cluster_id, both
   co-partitioned: no shuffle.
4. ``fates`` (I): every active old id -> itself, its survivor, or null. The new registry is
   the old one LEFT JOIN fates ON current_id (I): that one join both updates the ids that
   end now and compresses every chain (see :func:`_next_registry`).
5. merge/retire events: previous_xref semi-joined with the ids that ended (broadcast when
   they are few, so a scan; otherwise R), then only those records grouped by id.

The three outputs are lazy and read the two checkpoints, so writing them recomputes only
id-level work. The driver sees small metadata only: the registry's size (the salt of new
ids, see :func:`new_id`) and active count, the number of clusters of each kind, and the
count of clashing new ids. Aggregates pick "most, then smallest" with ``min`` over structs
(never ``first``), so no result depends on row order or partitioning.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, StringType, StructField, StructType, TimestampType

from cdi_spark.errors import MissingColumnError, StageError

log = logging.getLogger(__name__)

STAGE = "ids"

ACTIVE, RETIRED = "active", "retired"
CREATE, MERGE, SPLIT, RETIRE = "create", "merge", "split", "retire"
_KEEP = "keep"  # a cluster that keeps an old id (internal: raises no event)

CLUSTER_COLUMNS = ("record_key", "cluster_id")

XREF_SCHEMA = StructType([
    StructField("record_key", StringType(), False),
    StructField("customer_id", StringType(), False),
])

REGISTRY_SCHEMA = StructType([
    StructField("customer_id", StringType(), False),
    StructField("status", StringType(), False),  # 'active' | 'retired'
    StructField("merged_into", StringType(), True),  # the survivor of a merge; null otherwise
    StructField("current_id", StringType(), True),  # the active id it resolves to; null: no survivor
    StructField("created_run_id", StringType(), False),
    StructField("created_at", TimestampType(), False),
    StructField("retired_run_id", StringType(), True),
    StructField("retired_at", TimestampType(), True),
])

EVENTS_SCHEMA = StructType([
    StructField("run_id", StringType(), False),
    StructField("at", TimestampType(), False),
    StructField("event", StringType(), False),  # 'create' | 'merge' | 'split' | 'retire'
    StructField("customer_id", StringType(), False),
    StructField("related_id", StringType(), True),  # merge: survivor; split: the old id; else null
    StructField("record_keys", ArrayType(StringType()), False),  # sorted
])

# New ids: "C" + 20 upper-case hex digits (80 bits of SHA-256), 21 characters, fixed length.
ID_PREFIX = "C"
ID_HEX_DIGITS = 20

# Fewer ids than this are broadcast to filter a large frame by id (~50 bytes an id).
_BROADCAST_IDS = 250_000


@dataclass(frozen=True)
class IdAssignment:
    """What one run of the id keeper gives.

    Attributes:
        xref: ``XREF_SCHEMA``: the customer id of every record of the clusters.
        registry: ``REGISTRY_SCHEMA``: the full new ``gold.customer_ids``.
        events: ``EVENTS_SCHEMA``: this run's ``audit.id_events`` rows.
    """

    xref: DataFrame
    registry: DataFrame
    events: DataFrame


def assign_ids(
    clusters: DataFrame,
    previous_xref: DataFrame | None,
    registry: DataFrame | None,
    *,
    run_id: str,
    at: datetime,
) -> IdAssignment:
    """Give every cluster a customer id, keeping the ids of the last run where they still fit.

    Args:
        clusters: ``record_key, cluster_id``, one row per current record (unique, non-null
            keys, as ``resolve.clusters`` makes them).
        previous_xref: ``record_key, customer_id`` of the last run, or None on the first run.
            Other columns are ignored.
        registry: the last ``gold.customer_ids`` (``REGISTRY_SCHEMA``), or None on the first
            run. Other columns are ignored.
        run_id: this run's id, written on new and retired ids and on the events.
        at: this run's start, likewise (a naive datetime is read in the driver's local
            time zone, as by every Spark timestamp literal: prefer an aware one).

    Returns:
        The new xref, registry and events; equal inputs give equal outputs, new ids included,
        so a re-run of an interrupted run (from the same inputs) mints the same ids.

    Raises:
        MissingColumnError: an input lacks a required column.
        StageError: previous_xref without a registry, a null cluster_id, previous_xref naming
            ids that are not active in the registry, or a new id equal to an issued one. A
            registry row whose current_id names no active id fails the new registry's write.

    Example:
        >>> ids = assign_ids(clusters, xref, registry, run_id="r42", at=started)  # doctest: +SKIP
        >>> ids.events.filter("event = 'merge'").show()  # doctest: +SKIP
    """
    spark = clusters.sparkSession
    _require(clusters, CLUSTER_COLUMNS, "assign_ids: clusters")
    if registry is None:
        if previous_xref is not None:
            raise StageError(STAGE, "previous_xref was given without the registry; pass the gold.customer_ids "
                                    "written by the same run as the xref (or neither on the first run)")
        registry = spark.createDataFrame([], REGISTRY_SCHEMA)
    if previous_xref is None:
        previous_xref = spark.createDataFrame([], XREF_SCHEMA)
    _require(previous_xref, XREF_SCHEMA.names, "assign_ids: previous_xref")
    _require(registry, REGISTRY_SCHEMA.names, "assign_ids: registry")
    previous = previous_xref.select("record_key", "customer_id")
    registry = registry.select(*REGISTRY_SCHEMA.names)

    counts = registry.agg(F.count(F.lit(1)).alias("size"), F.count(F.when(_is_active(), 1)).alias("active")).first()
    partitions = int(spark.conf.get("spark.sql.shuffle.partitions"))
    joined = _materialize(
        clusters.select(*CLUSTER_COLUMNS)
        .join(previous.withColumnRenamed("customer_id", "old_id"), "record_key", "left")
        .repartition(partitions, "cluster_id")
    )
    decisions = _materialize(_decide(joined, registry, int(counts["size"])))
    n_gone = _check(decisions, registry, int(counts["active"]))

    fates = _fates(decisions, registry)
    xref = joined.join(decisions.select("cluster_id", "customer_id"), "cluster_id").select(*XREF_SCHEMA.names)
    return IdAssignment(
        xref=xref,
        registry=_conform(_next_registry(registry, fates, decisions, run_id, at), REGISTRY_SCHEMA),
        events=_conform(_events(joined, decisions, fates, previous, n_gone, run_id, at), EVENTS_SCHEMA),
    )


def resolve_id(registry: DataFrame, customer_id: str) -> str | None:
    """The active id that any id ever issued resolves to (itself when it is active).

    A small lookup: one row of the registry comes to the driver.

    Args:
        registry: ``gold.customer_ids`` (``REGISTRY_SCHEMA``).
        customer_id: an id, active or retired.

    Returns:
        The active id, or None when the id was retired with no survivor (its records are
        gone) or was never issued.

    Example:
        >>> resolve_id(spark.table("gold.customer_ids"), "C1A2B3C4D5E6F708192A3")  # doctest: +SKIP
        'C0F1E2D3C4B5A6978879E'
    """
    _require(registry, ("customer_id", "current_id"), "resolve_id: registry")
    row = registry.filter(F.col("customer_id") == customer_id).select("current_id").first()
    return None if row is None else row["current_id"]


def new_id(cluster_id: Column, registry_size: int) -> Column:
    """The id minted for a cluster that keeps no old id: ``C`` + 20 hex digits of
    SHA-256(cluster_id | registry size).

    Why it does not collide with an issued id: the hashed text never repeats. Within a run
    the cluster ids differ; across runs, ids are only minted at a registry size no earlier
    minting run used, since each such run adds its ids to the registry and rows are never
    removed (the size grows strictly; a run that mints nothing uses its size for nothing).
    The size is all digits and last, so the text splits back into its two parts, whatever
    the cluster id holds. Two ids can thus only be equal if two different texts share their
    first 80 hash bits: about n^2 / 2^81 for n ids ever issued (4e-7 for a billion).
    :func:`assign_ids` still checks every new id against the registry and fails rather than
    give one id to two customers. The same state gives the same ids, as re-runs need.
    """
    text = F.concat(cluster_id, F.lit(f"|{registry_size}"))
    return F.concat(F.lit(ID_PREFIX), F.upper(F.substring(F.sha2(text, 256), 1, ID_HEX_DIGITS)))


def _decide(joined: DataFrame, registry: DataFrame, registry_size: int) -> DataFrame:
    """One row per cluster: cluster_id, customer_id, kind (keep, split, create), related_id,
    merged (old ids retired into it, sorted) and unknown (old ids homed there that the
    registry does not hold as active: must be 0)."""
    overlap = joined.groupBy("cluster_id", "old_id").agg(F.count(F.lit(1)).alias("n"))
    most = F.struct((-F.col("n")).alias("_fewest"), F.col("cluster_id"))  # most records, then smallest cluster
    homes = overlap.filter(F.col("old_id").isNotNull()).groupBy("old_id").agg(F.min(most).alias("_home"))
    ages = registry.filter(_is_active()).select(
        F.col("customer_id").alias("old_id"), "created_at", "created_run_id", F.lit(True).alias("_known")
    )
    homed = homes.select("old_id", F.col("_home.cluster_id").alias("cluster_id")).join(ages, "old_id", "left")
    oldest = F.min(F.struct("created_at", "created_run_id", "old_id"))
    per_home = homed.groupBy("cluster_id").agg(
        oldest["old_id"].alias("survivor"),
        F.array_sort(F.collect_list("old_id")).alias("_homed"),
        F.count(F.when(F.col("_known").isNull(), 1)).alias("unknown"),
    )
    commonest = F.when(F.col("old_id").isNotNull(), F.struct((-F.col("n")).alias("_fewest"), F.col("old_id")))
    per_cluster = overlap.groupBy("cluster_id").agg(F.min(commonest)["old_id"].alias("_commonest"))

    decided = per_cluster.join(per_home, "cluster_id", "left")
    kind = (F.when(F.col("survivor").isNotNull(), F.lit(_KEEP))
            .when(F.col("_commonest").isNotNull(), F.lit(SPLIT)).otherwise(F.lit(CREATE)))
    return decided.select(
        "cluster_id",
        F.coalesce(F.col("survivor"), new_id(F.col("cluster_id"), registry_size)).alias("customer_id"),
        kind.alias("kind"),
        F.when(kind == SPLIT, F.col("_commonest")).alias("related_id"),
        F.coalesce(F.filter("_homed", lambda i: i != F.col("survivor")), _no_keys()).alias("merged"),
        F.coalesce(F.col("unknown"), F.lit(0)).alias("unknown"),
    )


def _check(decisions: DataFrame, registry: DataFrame, active: int) -> int:
    """Count the decisions (small metadata), fail on null clusters, unknown or clashing ids, log;
    return the number of ids that end this run (merged or retired)."""
    stats = decisions.agg(
        *[F.count(F.when(F.col("kind") == k, 1)).alias(k) for k in (_KEEP, SPLIT, CREATE)],
        F.coalesce(F.sum(F.size("merged")), F.lit(0)).alias("merged"),
        F.coalesce(F.sum("unknown"), F.lit(0)).alias("unknown"),
        F.count(F.when(F.col("cluster_id").isNull(), 1)).alias("no_cluster"),
    ).first()
    if stats["no_cluster"]:
        raise StageError(STAGE, "clusters has records with a null cluster_id; every record needs a cluster "
                                "(a record on no edge is its own cluster): check the cluster stage's output")
    if stats["unknown"]:
        raise StageError(STAGE, f"previous_xref names {stats['unknown']} customer ids that are not active in the "
                                "registry; pass the gold.customer_ids written by the same run as the xref")
    minted = stats[SPLIT] + stats[CREATE]
    if minted and _clashes(decisions.filter(F.col("kind") != _KEEP).select("customer_id"), registry, minted):
        raise StageError(STAGE, "a new customer id equals an issued one or another new one (an 80-bit hash "
                                "collision, see new_id); widen ID_HEX_DIGITS and report it")
    retired = active - stats[_KEEP] - stats["merged"]
    log.info("ids: %d clusters keep their id, %d split off, %d created; %d ids merged, %d retired",
             stats[_KEEP], stats[SPLIT], stats[CREATE], stats["merged"], retired)
    return stats["merged"] + retired


def _clashes(minted: DataFrame, registry: DataFrame, n_minted: int) -> int:
    """New ids that are already issued or minted twice (a scan of the registry when few are new)."""
    few = F.broadcast(minted) if n_minted <= _BROADCAST_IDS else minted
    issued = registry.select("customer_id").join(few, "customer_id", "left_semi")
    twice = minted.groupBy("customer_id").count().filter(F.col("count") > 1).select("customer_id")
    return issued.unionByName(twice).count()


def _fates(decisions: DataFrame, registry: DataFrame) -> DataFrame:
    """Every active old id: customer_id, resolved (itself, its survivor, or null when its
    records are gone) and event (null, merge or retire)."""
    kept = decisions.filter(F.col("kind") == _KEEP).select(
        F.explode(F.concat(F.array("customer_id"), F.col("merged"))).alias("customer_id"),
        F.col("customer_id").alias("resolved"),
    )
    fates = registry.filter(_is_active()).select("customer_id").join(kept, "customer_id", "left")
    event = (F.when(F.col("resolved").isNull(), F.lit(RETIRE))
             .when(F.col("resolved") != F.col("customer_id"), F.lit(MERGE)))
    return fates.withColumn("event", event)


def _next_registry(registry: DataFrame, fates: DataFrame, decisions: DataFrame, run_id: str, at: datetime) -> DataFrame:
    """Old rows updated, plus the new ids.

    Chain compression in one join: before the run every current_id names an active id
    (this function keeps that true every run), and ``fates`` maps each active id to where
    it goes now: itself, a survivor (active after this run: a survivor never ends in its
    own run) or null. So ``current_id := fates[current_id]`` leaves every row pointing at an
    active id or at nothing: X retired into Y earlier and Y into Z now gives X -> Z. A row
    whose current_id names no active id breaks that premise; the write of the new registry
    then fails with the message below rather than publish a broken chain.
    """
    target = fates.select(F.col("customer_id").alias("current_id"), "resolved", "event", F.lit(True).alias("_hit"))
    rows = registry.join(target, "current_id", "left")
    broken = ((F.col("current_id").isNotNull() & F.col("_hit").isNull())
              | (_is_active() & ~F.col("current_id").eqNullSafe(F.col("customer_id"))))
    ends = _is_active() & F.col("event").isNotNull()
    current = F.when(broken, F.raise_error(F.lit(
        f"stage {STAGE}: a gold.customer_ids row's current_id does not name an active id (or an active id does "
        "not point at itself); the registry was not written by assign_ids: restore its last good version"
    ))).otherwise(F.col("resolved"))
    old = rows.select(
        "customer_id",
        F.when(ends, F.lit(RETIRED)).otherwise(F.col("status")).alias("status"),
        F.when(ends, F.col("resolved")).otherwise(F.col("merged_into")).alias("merged_into"),
        current.alias("current_id"),
        "created_run_id",
        "created_at",
        F.when(ends, F.lit(run_id)).otherwise(F.col("retired_run_id")).alias("retired_run_id"),
        F.when(ends, F.lit(at)).otherwise(F.col("retired_at")).alias("retired_at"),
    )
    new = decisions.filter(F.col("kind") != _KEEP).select(
        "customer_id",
        F.lit(ACTIVE).alias("status"),
        F.lit(None).cast("string").alias("merged_into"),
        F.col("customer_id").alias("current_id"),
        F.lit(run_id).alias("created_run_id"),
        F.lit(at).alias("created_at"),
        F.lit(None).cast("string").alias("retired_run_id"),
        F.lit(None).cast("timestamp").alias("retired_at"),
    )
    return old.unionByName(new)


def _events(joined: DataFrame, decisions: DataFrame, fates: DataFrame, previous: DataFrame, n_gone: int,
            run_id: str, at: datetime) -> DataFrame:
    """create/split from the clusters' records (co-partitioned), merge/retire from the
    records the ending ids had last run."""
    fresh = decisions.filter(F.col("kind") != _KEEP).drop("merged", "unknown")
    born = joined.join(fresh, "cluster_id").groupBy("cluster_id", "customer_id", "kind", "related_id").agg(
        F.array_sort(F.collect_list("record_key")).alias("record_keys")
    ).select(F.col("kind").alias("event"), "customer_id", "related_id", "record_keys")

    gone = fates.filter(F.col("event").isNotNull())
    ids = gone.select("customer_id")
    had = previous.join(F.broadcast(ids) if n_gone <= _BROADCAST_IDS else ids, "customer_id", "left_semi")
    lists = had.groupBy("customer_id").agg(F.array_sort(F.collect_list("record_key")).alias("record_keys"))
    ended = gone.join(lists, "customer_id", "left").select(
        "event", "customer_id", F.col("resolved").alias("related_id"),
        F.coalesce(F.col("record_keys"), _no_keys()).alias("record_keys"),
    )
    return born.unionByName(ended).select(F.lit(run_id).alias("run_id"), F.lit(at).alias("at"), "*")


def _is_active() -> Column:
    return F.col("status") == ACTIVE


def _no_keys() -> Column:
    return F.array().cast("array<string>")


def _conform(frame: DataFrame, schema: StructType) -> DataFrame:
    """The schema's columns, in its order and types."""
    return frame.select(*[F.col(f.name).cast(f.dataType).alias(f.name) for f in schema.fields])


def _require(frame: DataFrame, columns: Sequence[str], where: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise MissingColumnError(where, missing, frame.columns)


def _materialize(frame: DataFrame) -> DataFrame:
    """Compute ``frame`` once and cut its lineage: the three outputs read it again. A reliable
    checkpoint when the context has a checkpoint dir (persisted first, so the checkpoint
    job reads rather than recomputes), a local one otherwise. The partitioning is kept."""
    if frame.sparkSession.sparkContext.getCheckpointDir():
        cached = frame.persist(StorageLevel.MEMORY_AND_DISK)
        out = cached.checkpoint(eager=True)
        cached.unpersist()
        return out
    return frame.localCheckpoint(eager=True)
