"""The golden stage: clusters -> persistent ids -> profiles -> Customer 360, as versioned Delta tables.

Reads ``silver.customer_records`` and ``silver.entity_clusters`` as they are now, the bronze
activity tables, and the gold tables *as the last completed golden run left them*
(``audit.golden_runs`` holds the versions it wrote). Writes, in this order:

1. ``gold.customer_profile``: one row per customer id (survivorship, lineage);
2. ``gold.customer_360``: the profile and the customer's activity;
3. ``audit.id_events``: this run's create / merge / split / retire events;
4. ``gold.customer_ids``: every id ever issued, its status and the id it resolves to;
5. ``gold.customer_xref``: source record -> customer id;
6. ``audit.golden_runs``: one row: the run, the versions it read and wrote. The commit point.

Gold tables are written with :func:`cdi_spark.golden.publish.publish` (one MERGE per table,
unchanged rows untouched, soft deletes, Change Data Feed on), so one run is at most one
version of each.

Crash safety
------------
A run killed anywhere before step 6 leaves ``audit.golden_runs`` as it was, so the re-run
reads the same previous state (gold tables by version, not their latest), mints the same
ids (they are a function of that state), computes the same rows, and every write is
idempotent: a MERGE of rows already there changes nothing, and the events of the run's
generation replace any a killed attempt wrote. The result is the state an uninterrupted
run would have left (only times and run ids differ).

Incremental runs
----------------
With a previous run and ``full=False``, only *affected* customers are rebuilt: the customers
(before and after) of every record that is new, changed (its fields differ from the
``record_hash`` the xref kept for it) or gone, and of every record whose customer id
changed. A record loaded again unchanged touches nothing. Their profiles
are recomputed from all their records and MERGEd; every other profile is neither read nor
rewritten. Ids are assigned over all clusters (the keeper's joins are narrow), and the
Customer 360 activity is aggregated over all activity rows (one aggregation per source) but
MERGEd by content hash, so only customers whose figures moved get a new row version.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from cdi_spark import delta_io, tables
from cdi_spark.config import PipelineConfig, load_survivorship
from cdi_spark.errors import StageError
from cdi_spark.golden import c360, ids, profile, publish
from cdi_spark.logs import timed

log = logging.getLogger(__name__)

STAGE = "golden"
GOLDEN_RUNS = tables.GOLDEN_RUNS
GOLDEN_RUNS_SCHEMA = T.StructType([
    T.StructField("generation", T.LongType(), False),  # 1, 2, ...: completed golden runs
    T.StructField("run_id", T.StringType(), False),
    T.StructField("mode", T.StringType(), False),  # full | incremental
    T.StructField("started_at", T.TimestampType(), False),
    T.StructField("completed_at", T.TimestampType(), False),
    T.StructField("silver_version", T.LongType(), False),  # silver.customer_records read
    T.StructField("clusters_version", T.LongType(), False),  # silver.entity_clusters read
    T.StructField("versions", T.MapType(T.StringType(), T.LongType()), False),  # gold table -> version after
    T.StructField("counts", T.MapType(T.StringType(), T.LongType()), False),
])  # fmt: skip
# Columns of the xref besides record_key and customer_id: where the record comes from, and
# RECORD_HASH: a hash of the record's fields that the profile reads, as the profile last saw them.
RECORD_HASH = "record_hash"
XREF_LINEAGE = ("source", "system", "source_record_id", "cluster_id", RECORD_HASH)


def record_hash(records: DataFrame) -> Column:
    """SHA-256 of the fields of a silver record that its customer's profile reads.

    Lineage that changes when an unchanged record is loaded again (run, batch, bronze
    version) is left out, so a re-export of the same record does not touch its customer.
    """
    fields = [c for c in profile.RECORD_COLUMNS if c != "record_key"]
    return F.sha2(F.to_json(F.struct(*[F.col(c) for c in fields])), 256)


@dataclass(frozen=True)
class GoldenResult:
    """What one golden run did (counts for the logs and ``audit.runs``)."""

    generation: int
    mode: str
    records: int
    customers: int
    affected_customers: int
    events: dict[str, int]
    published: dict[str, publish.PublishResult] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """Flat integer counts: records, customers, affected customers, events and rows written."""
        out = {"records": self.records, "customers": self.customers, "affected_customers": self.affected_customers}
        out.update({f"id_{kind}": n for kind, n in sorted(self.events.items())})
        for table, result in self.published.items():
            out[f"{table}_inserted"] = result.inserted
            out[f"{table}_updated"] = result.updated
            out[f"{table}_deleted"] = result.deleted
        return out


@dataclass(frozen=True)
class _State:
    """The last completed golden run: its generation and the versions it wrote."""

    generation: int
    silver_version: int
    clusters_version: int
    versions: dict[str, int]


@contextmanager
def _step(name: str) -> Iterator[None]:
    """Log the wall time of one step of the stage (Spark's laziness moves some work into the
    step that first needs it: the xref is materialised by the record check)."""
    with timed() as clock:
        yield
    log.info("golden: %s took %.1f s", name, clock["seconds"])


def _path(cfg: PipelineConfig, layer: str, name: str) -> str:
    return tables.table_path(cfg.lakehouse, layer, name)


def last_state(spark: SparkSession, cfg: PipelineConfig) -> _State | None:
    """The newest ``audit.golden_runs`` row, or None before the first golden run."""
    path = _path(cfg, tables.AUDIT, GOLDEN_RUNS)
    if not delta_io.exists(spark, path):
        return None
    row = delta_io.read(spark, path).orderBy(F.col("generation").desc()).first()
    if row is None:
        return None
    return _State(row["generation"], row["silver_version"], row["clusters_version"], dict(row["versions"]))


def _as_left(spark: SparkSession, cfg: PipelineConfig, name: str, state: _State | None) -> DataFrame | None:
    """A gold table as the last completed run left it (None if it did not exist then)."""
    if state is None or name not in state.versions:
        return None
    return delta_io.read(spark, _path(cfg, tables.GOLD, name), version=state.versions[name])


def build_golden(spark: SparkSession, cfg: PipelineConfig, *, run_id: str, full: bool = False) -> GoldenResult:
    """Run the golden stage; see the module docstring.

    Args:
        spark: the session.
        cfg: the pipeline configuration (survivorship and Customer 360 files, gold settings).
        run_id: this run's id (on every row and commit it writes).
        full: rebuild every profile even when an incremental run is possible.

    Raises:
        StageError: the resolve stage has not run (no clusters), or clusters and records disagree.
    """
    started = datetime.now(UTC)
    records_path = _path(cfg, tables.SILVER, tables.CUSTOMER_RECORDS)
    clusters_path = _path(cfg, tables.SILVER, tables.ENTITY_CLUSTERS)
    for path in (records_path, clusters_path):
        if not delta_io.exists(spark, path):
            raise StageError(STAGE, f"no table at {path}: run the standardize and resolve stages first")
    silver_version = delta_io.current_version(spark, records_path)
    clusters_version = delta_io.current_version(spark, clusters_path)
    records = delta_io.read(spark, records_path, version=silver_version)
    clusters = delta_io.read(spark, clusters_path, version=clusters_version).select("record_key", "cluster_id")

    state = last_state(spark, cfg)
    generation = state.generation + 1 if state else 1
    incremental = state is not None and not full
    mode = "incremental" if incremental else "full"
    log.info("golden: generation %d, %s run%s", generation, mode, "" if state else " (first golden run)")

    old_xref = _as_left(spark, cfg, tables.CUSTOMER_XREF, state)
    old_registry = _as_left(spark, cfg, tables.CUSTOMER_IDS, state)
    if old_xref is not None:
        old_xref = old_xref.filter(~F.col(publish.IS_DELETED))
        old_hash = F.col(RECORD_HASH) if RECORD_HASH in old_xref.columns else F.lit(None).cast("string")
        old_xref = old_xref.select("record_key", "customer_id", old_hash.alias(RECORD_HASH))
    if old_registry is not None:
        old_registry = old_registry.select(*ids.REGISTRY_SCHEMA.names)
    assignment = ids.assign_ids(clusters, old_xref, old_registry, run_id=run_id, at=started)
    lineage = records.select(
        "record_key", "source", "system", "source_record_id", record_hash(records).alias(RECORD_HASH)
    )
    xref = (
        assignment.xref.join(lineage, "record_key", "left")
        .join(clusters, "record_key")
        .select("record_key", "customer_id", *XREF_LINEAGE)
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    try:
        with _step("ids and xref"):
            _check_records(xref)
            affected = _affected(xref, old_xref) if incremental else None
        result = _write(spark, cfg, run_id, generation, records, xref, assignment, affected)
        n_records, n_customers = _sizes(xref)
        n_affected = affected.count() if affected is not None else n_customers
        out = GoldenResult(generation, mode, n_records, n_customers, n_affected, result[0], result[1])
        with _step("upkeep and commit"):
            _finish(spark, cfg, run_id, out, started, silver_version, clusters_version)
    finally:
        xref.unpersist()
    log.info("golden: %s", ", ".join(f"{k}={v:,}" for k, v in out.counts().items()))
    return out


def _check_records(xref: DataFrame) -> None:
    lost = xref.filter(F.col("source").isNull())
    n = lost.count()
    if n:
        example = lost.first()["record_key"]
        raise StageError(
            STAGE,
            f"{n:,} clustered records are not in silver.customer_records (e.g. {example}): "
            "run the resolve stage again after standardize",
        )


def _sizes(xref: DataFrame) -> tuple[int, int]:
    row = xref.agg(F.count(F.lit(1)), F.countDistinct("customer_id")).first()
    return int(row[0]), int(row[1])


def _affected(xref: DataFrame, old_xref: DataFrame | None) -> DataFrame:
    """Customer ids (old and new) whose profile may differ from the last run's.

    A record is *touched* when it is new, gone, its fields changed (its record hash differs
    from the one the xref kept) or its customer id changed; its old and new customers are
    affected. One join of the new xref with the old, on record_key.
    """
    old = old_xref if old_xref is not None else xref.limit(0).select("record_key", "customer_id", RECORD_HASH)
    pairs = xref.select("record_key", F.col("customer_id").alias("_new"), F.col(RECORD_HASH).alias("_new_hash")).join(
        old.select("record_key", F.col("customer_id").alias("_old"), F.col(RECORD_HASH).alias("_old_hash")),
        "record_key",
        "full_outer",
    )
    touched = pairs.filter(
        ~F.col("_new").eqNullSafe(F.col("_old")) | ~F.col("_new_hash").eqNullSafe(F.col("_old_hash"))
    )
    ids_ = touched.select(F.explode(F.array("_new", "_old")).alias("customer_id"))
    return ids_.filter(F.col("customer_id").isNotNull()).distinct().persist(StorageLevel.MEMORY_AND_DISK)


def _write(
    spark: SparkSession,
    cfg: PipelineConfig,
    run_id: str,
    generation: int,
    records: DataFrame,
    xref: DataFrame,
    assignment: ids.IdAssignment,
    affected: DataFrame | None,
) -> tuple[dict[str, int], dict[str, publish.PublishResult]]:
    published: dict[str, publish.PublishResult] = {}
    # 1. profiles: all of them, or the affected customers' (with the retired ids among them deleted)
    with _step("customer_profile"):
        _write_profiles(spark, cfg, run_id, records, xref, affected, published)
    # 2. Customer 360: current profiles and all activity, MERGEd by content
    with _step("customer_360"):
        _write_360(spark, cfg, run_id, xref, published)
    # 3-5. events of this generation (replacing a killed attempt's), registry, xref
    with _step("id events, customer_ids and customer_xref"):
        kinds = _write_ids(spark, cfg, run_id, generation, xref, assignment, published)
    return kinds, published


def _write_profiles(
    spark: SparkSession,
    cfg: PipelineConfig,
    run_id: str,
    records: DataFrame,
    xref: DataFrame,
    affected: DataFrame | None,
    published: dict[str, publish.PublishResult],
) -> None:
    profile_path = _path(cfg, tables.GOLD, tables.CUSTOMER_PROFILE)
    survivorship = load_survivorship(cfg)
    if affected is None:
        profiles = profile.build_profiles(records, xref, survivorship)
        published[tables.CUSTOMER_PROFILE] = publish.publish(spark, profiles, profile_path, keys=["customer_id"],
                                                             run_id=run_id)
    else:
        scope = xref.join(affected, "customer_id", "left_semi")
        profiles = profile.build_profiles(records.join(scope.select("record_key"), "record_key", "left_semi"),
                                          scope, survivorship)
        gone = affected.join(xref.select("customer_id").distinct(), "customer_id", "left_anti")
        published[tables.CUSTOMER_PROFILE] = publish.publish(spark, profiles, profile_path, keys=["customer_id"],
                                                             run_id=run_id, scope=affected, deleted=gone)


def _write_360(
    spark: SparkSession, cfg: PipelineConfig, run_id: str, xref: DataFrame, published: dict[str, publish.PublishResult]
) -> None:
    profile_path = _path(cfg, tables.GOLD, tables.CUSTOMER_PROFILE)
    c360_cfg = c360.load_c360(cfg.base_dir / cfg.customer_360)
    current = delta_io.read(spark, profile_path).filter(~F.col(publish.IS_DELETED)).drop(*publish.BOOKKEEPING)
    if any(delta_io.exists(spark, _path(cfg, tables.BRONZE, s)) for s in c360_cfg.activity_sources):
        activity = c360.activity(spark, cfg, c360_cfg, xref.select("record_key", "customer_id"))
        frame, currency = activity.frame, activity.reporting_currency
    else:
        log.warning("golden: no activity source has a bronze table yet; customer_360 holds profiles only")
        activity, frame, currency = None, spark.createDataFrame([], c360.ACTIVITY_SCHEMA), None
    try:
        view = c360.customer_360(current, frame, reporting_currency=currency)
        published[tables.CUSTOMER_360] = publish.publish(spark, view, _path(cfg, tables.GOLD, tables.CUSTOMER_360),
                                                         keys=["customer_id"], run_id=run_id)
    finally:
        if activity is not None:
            activity.unpersist()


def _write_ids(
    spark: SparkSession,
    cfg: PipelineConfig,
    run_id: str,
    generation: int,
    xref: DataFrame,
    assignment: ids.IdAssignment,
    published: dict[str, publish.PublishResult],
) -> dict[str, int]:
    events = assignment.events.withColumn("generation", F.lit(generation).cast("long")).persist()
    try:
        kinds = {r["event"]: int(r["n"]) for r in events.groupBy("event").agg(F.count(F.lit(1)).alias("n")).collect()}
        delta_io.overwrite_partition(spark, events, _path(cfg, tables.AUDIT, tables.ID_EVENTS),
                                     where=f"generation = {generation}", user_metadata=run_id)
    finally:
        events.unpersist()
    published[tables.CUSTOMER_IDS] = publish.publish(spark, assignment.registry,
                                                     _path(cfg, tables.GOLD, tables.CUSTOMER_IDS),
                                                     keys=["customer_id"], run_id=run_id)
    published[tables.CUSTOMER_XREF] = publish.publish(spark, xref, _path(cfg, tables.GOLD, tables.CUSTOMER_XREF),
                                                      keys=["record_key"], run_id=run_id)
    return kinds


def _finish(
    spark: SparkSession,
    cfg: PipelineConfig,
    run_id: str,
    result: GoldenResult,
    started: datetime,
    silver_version: int,
    clusters_version: int,
) -> None:
    """Maintain the gold tables when due, then append the ``audit.golden_runs`` row (the commit point)."""
    gold = cfg.gold
    versions = {}
    for name in (tables.CUSTOMER_PROFILE, tables.CUSTOMER_360, tables.CUSTOMER_IDS, tables.CUSTOMER_XREF):
        path = _path(cfg, tables.GOLD, name)
        publish.maintain(spark, path, zorder_by=("customer_id",), optimize_every=gold.optimize_every_runs,
                         vacuum_retention_hours=gold.vacuum_retention_hours, run_number=result.generation,
                         run_id=run_id)
        versions[name] = delta_io.current_version(spark, path)
    row = (result.generation, run_id, result.mode, started, datetime.now(UTC), silver_version, clusters_version,
           versions, result.counts())
    delta_io.append(spark, spark.createDataFrame([row], GOLDEN_RUNS_SCHEMA),
                    _path(cfg, tables.AUDIT, GOLDEN_RUNS), user_metadata=run_id)
