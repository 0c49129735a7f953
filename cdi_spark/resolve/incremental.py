"""Incremental resolve: match only new, changed and vanished records against what is resolved.

The resolve stage (:mod:`cdi_spark.resolve.stage`) keeps what it needs to resume:

* ``silver.entity_clusters.match_hash``: SHA-256 of the columns matching reads
  (:func:`cdi_spark.resolve.matcher.input_columns`), as each record was when it was resolved;
* ``silver.oversized_keys``: ``kind ('blocking' | 'rule'), key, value_hash, records`` for each
  blocking value over ``blocking.max_block_size`` and rule key over ``max_key_frequency``
  (hashed: these are common names and dates, and membership is all that is needed);
* ``audit.resolve_runs``: one row per finished resolve run: model version, a hash of the
  matching settings, the path taken and why, counts, and the Delta versions it left
  ``silver.match_edges``, ``silver.entity_clusters`` and ``silver.oversized_keys`` at.

A run is **incremental** when entity_clusters exists, the newest model is the one of the
last finished run, the matching settings hash is the same, and no state table changed since
that run finished (an interrupted run or another writer; OPTIMIZE and VACUUM do not count);
otherwise it is full. Either way the
log and the ``audit.resolve_runs`` row say which and why.

The **delta** is found by content, not by ``run_id``: records whose ``match_hash`` differs
from entity_clusters' or who have no row there (new or changed), and rows of
entity_clusters whose record left silver (vanished: erased). So resolve can run in another
run than standardize, a failed resolve is caught up by the next one, and a record
re-exported unchanged (standardize rewrites it with a new run_id) is not re-matched.

**Edges.** Only pairs holding a delta record are candidates (block sizes and key counts
over every record, so the same pairs a full run would make); plus all pairs of blocks and
rule keys that fell back under their caps. Old edges a full run would no longer make are
dropped: those touching delta records, model edges whose pairs shared only blocks that have
grown over the cap, and rule edges of keys now over-shared. Only edge rows that change are
written.

**Clusters.** Connected components are recomputed over the affected region only: records
in an old cluster that holds a delta record or an endpoint of a changed edge, the new
records, grown to whole components along edges (edges the size guard cut join clusters
that the guard must see together). The size guard works per component, so these clusters
equal a full run's. Only rows whose cluster, hash or model changed are written.

**What differs from a full rebuild.** Frequency adjustment uses the value frequencies of
the current records for the pairs it scores; old edges of unchanged records keep the score
they got when they were scored, so a full rebuild can move their scores a little, and an
edge near ``clustering.model_threshold`` can cross it. Measured in
``tests/resolve/test_incremental_resolve.py`` (a second day adding 9% of records, 60 of 525
new, changed or erased): the same 382 edges and the same clusters as a full rebuild; 229
edges' scores differ, by at most 0.008.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from functools import reduce

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql import functions as F

from cdi_spark import delta_io, tables
from cdi_spark.config import MatchingConfig
from cdi_spark.errors import StageError
from cdi_spark.resolve import matcher
from cdi_spark.resolve.blocking import pairs_in_usable_blocks, value_hash
from cdi_spark.resolve.clusters import checkpoint
from cdi_spark.resolve.rules import rule_keys

log = logging.getLogger(__name__)

# Table and column names of the resolve state (to join the others in cdi_spark.tables).
OVERSIZED_KEYS = "oversized_keys"  # silver
RESOLVE_RUNS = "resolve_runs"  # audit
MATCH_HASH = "match_hash"
EDGE_KEYS = ("left_key", "right_key", "rule")
OVERSIZED_COLUMNS = ("kind", "key", "value_hash", "records")
CHANGE_FEED = {"delta.enableChangeDataFeed": "true"}
_MAINTENANCE = ("OPTIMIZE", "VACUUM START", "VACUUM END")
_SETTINGS = ("fields", "blocking", "rules", "max_key_frequency", "clustering")
RUN_SCHEMA = (
    "run_id string, finished_at timestamp, incremental boolean, reason string, model_version string, "
    "matching_hash string, records long, delta_records long, affected_records long, candidates long, "
    "edges_version long, clusters_version long, oversized_version long"
)


@dataclass(frozen=True)
class ResolveTables:
    """Where the resolve stage's tables live."""

    edges: str
    clusters: str
    cut_edges: str
    oversized: str
    runs: str

    @classmethod
    def under(cls, lakehouse: str) -> ResolveTables:
        """The tables of the lakehouse at ``lakehouse``."""
        path = tables.table_path
        return cls(
            edges=path(lakehouse, tables.SILVER, tables.MATCH_EDGES),
            clusters=path(lakehouse, tables.SILVER, tables.ENTITY_CLUSTERS),
            cut_edges=path(lakehouse, tables.AUDIT, tables.CUT_EDGES),
            oversized=path(lakehouse, tables.SILVER, OVERSIZED_KEYS),
            runs=path(lakehouse, tables.AUDIT, RESOLVE_RUNS),
        )

    def state_paths(self) -> dict[str, str]:
        """The tables an incremental run continues from, by short name."""
        return {"edges": self.edges, "clusters": self.clusters, "oversized": self.oversized}

    def state_versions(self, spark: SparkSession) -> dict[str, int | None]:
        """Current Delta version of each state table (None: it does not exist)."""
        return {
            k: delta_io.current_version(spark, p) if delta_io.exists(spark, p) else None
            for k, p in self.state_paths().items()
        }

    def pinned(self, spark: SparkSession, name: str) -> DataFrame:
        """State table ``name`` (edges, clusters, oversized) at its current version.

        A run reads its own tables this way: a frame that reads a table by path is
        recomputed with the new rows once the run writes that table (Spark re-caches plans
        over a written path), and "before" must stay before.
        """
        path = self.state_paths()[name]
        return delta_io.read(spark, path, version=delta_io.current_version(spark, path))


def matching_hash(matching: MatchingConfig) -> str:
    """A short hash of the settings that decide edges and clusters (fields, blocking, rules,
    key cap, clustering). Training settings and ``model_dir`` are left out: they act through
    the model, whose version is compared on its own."""
    settings = {k: v for k, v in asdict(matching).items() if k in _SETTINGS}
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def with_match_hash(records: DataFrame, matching: MatchingConfig) -> DataFrame:
    """``records`` plus ``match_hash``: SHA-256 of the JSON of the columns matching reads."""
    cols = matcher.input_columns(records, matching)
    return records.withColumn(MATCH_HASH, F.sha2(F.to_json(F.struct(*cols)), 256))


# --------------------------------------------------------------------------------------------
# Which path
# --------------------------------------------------------------------------------------------


def last_run(spark: SparkSession, paths: ResolveTables) -> Row | None:
    """The ``audit.resolve_runs`` row of the last finished resolve (a small audit table)."""
    if not delta_io.exists(spark, paths.runs):
        return None
    return delta_io.read(spark, paths.runs).orderBy(F.desc("finished_at"), F.desc("run_id")).first()


def choose_path(spark: SparkSession, paths: ResolveTables, *, model_version: str, settings_hash: str) -> tuple[
    bool, str
]:
    """Whether this run can be incremental, and why (or why not), for the log and the audit row."""
    if not delta_io.exists(spark, paths.clusters):
        return False, "no silver.entity_clusters yet"
    last = last_run(spark, paths)
    if last is None:
        return False, "no finished resolve recorded in audit.resolve_runs"
    if last["model_version"] != model_version:
        return False, f"the match model changed ({last['model_version']} -> {model_version})"
    if last["matching_hash"] != settings_hash:
        return False, f"the matching settings changed since run {last['run_id']}"
    moved = [k for k, path in paths.state_paths().items() if _written_since(spark, path, last[f"{k}_version"])]
    if moved:
        return False, (f"{', '.join(moved)} changed since run {last['run_id']} finished "
                       "(an interrupted resolve or another writer)")
    return True, f"same model {model_version} and matching settings as run {last['run_id']}"


def _written_since(spark: SparkSession, path: str, version: int | None) -> bool:
    """Whether the table at ``path`` lost or gained rows after ``version``: any commit since
    but maintenance (OPTIMIZE, VACUUM), which moves files and not data."""
    if version is None or not delta_io.exists(spark, path):
        return True
    since = delta_io.history(spark, path).filter(F.col("version") > version).select("operation").collect()
    return any(r["operation"] not in _MAINTENANCE for r in since)  # small metadata: a few commits


# --------------------------------------------------------------------------------------------
# The delta
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delta:
    """Records to re-match: ``record_key`` frames, checkpointed, with their counts."""

    changed: DataFrame  # in silver: new, or changed since resolved
    vanished: DataFrame  # resolved, but no longer in silver
    changed_count: int
    vanished_count: int

    @property
    def size(self) -> int:
        """New, changed and vanished records."""
        return self.changed_count + self.vanished_count

    def keys(self) -> DataFrame:
        """``record_key`` of every delta record."""
        return self.changed.unionByName(self.vanished)


def find_delta(hashed: DataFrame, resolved: DataFrame) -> Delta:
    """Compare silver records (with ``match_hash``) with entity_clusters' rows.

    Checkpointed: the result must not change when entity_clusters is written later.
    """
    changed = hashed.select("record_key", MATCH_HASH).join(
        resolved.select("record_key", MATCH_HASH), ["record_key", MATCH_HASH], "left_anti"
    )
    changed = checkpoint(changed.select("record_key"))
    vanished = checkpoint(resolved.select("record_key").join(hashed.select("record_key"), "record_key", "left_anti"))
    return Delta(changed, vanished, changed.count(), vanished.count())


# --------------------------------------------------------------------------------------------
# Over-shared keys remembered between runs
# --------------------------------------------------------------------------------------------


def oversized_keys(found: matcher.EdgeResult) -> DataFrame:
    """``kind, key, value_hash, records`` of this run's skipped blocks and over-shared rule keys."""
    blocks = found.candidates.skipped.select(
        F.lit("blocking").alias("kind"), "key", value_hash(F.col("value")).alias("value_hash"), "records"
    )
    rules = found.overshared.select(
        F.lit("rule").alias("kind"), F.col("rule").alias("key"), value_hash(F.col("key")).alias("value_hash"), "records"
    )
    return blocks.unionByName(rules)


def split_oversized(oversized: DataFrame) -> tuple[DataFrame, DataFrame]:
    """(blocks ``key, value_hash``, rule keys ``rule, value_hash``) of an oversized-keys frame."""
    blocks = oversized.filter(F.col("kind") == "blocking").select("key", "value_hash")
    rules = oversized.filter(F.col("kind") == "rule").select(F.col("key").alias("rule"), "value_hash")
    return blocks, rules


def stale_edges(
    edges: DataFrame, records: DataFrame, matching: MatchingConfig, found: matcher.EdgeResult, before: DataFrame
) -> DataFrame:
    """Old edges that a full run would no longer make because a key crossed its cap.

    Model edges whose pair shares a block that has grown over ``max_block_size`` and no
    other usable block; rule edges whose key is now over-shared. ``before`` is the previous
    run's oversized keys. Returns ``left_key, right_key, rule``.
    """
    grown_blocks, grown_rules = split_oversized(oversized_keys(found).join(before, list(OVERSIZED_COLUMNS[:3]),
                                                                           "left_anti"))
    out = edges.sparkSession.createDataFrame([], "left_key string, right_key string, rule string")
    if grown_blocks.limit(1).count():  # small metadata: usually nothing grew over the cap
        kv = found.candidates.keyed.withColumn("value_hash", value_hash(F.col("value")))
        kv = kv.join(grown_blocks, ["key", "value_hash"], "left_semi").select("record_key", "key", "value")
        suspects = (
            edges.filter(F.col("rule") == "model")
            .join(kv.withColumnRenamed("record_key", "left_key"), "left_key")
            .join(kv.withColumnRenamed("record_key", "right_key"), ["right_key", "key", "value"])
            .select("left_key", "right_key")
            .distinct()
        )
        lost = suspects.join(pairs_in_usable_blocks(suspects, found.candidates), ["left_key", "right_key"], "left_anti")
        out = out.unionByName(lost.withColumn("rule", F.lit("model")))
    if grown_rules.limit(1).count():
        holders = rule_keys(records, matching.rules).join(grown_rules, ["rule", "value_hash"], "left_semi")
        holders = holders.select(F.col("record_key").alias("left_key"), "rule")
        out = out.unionByName(edges.join(holders, ["left_key", "rule"], "left_semi").select(*EDGE_KEYS))
    return out


def edge_scope(edges: DataFrame, delta: Delta, found: matcher.EdgeResult, stale: DataFrame) -> DataFrame:
    """``left_key, right_key, rule`` of the old edges this run recomputes: those touching a
    delta record, model edges of pairs scored again (blocks back under the cap), stale ones."""
    keys = delta.keys()
    touching = edges.join(keys.withColumnRenamed("record_key", "left_key"), "left_key", "left_semi").unionByName(
        edges.join(keys.withColumnRenamed("record_key", "right_key"), "right_key", "left_semi")
    )
    rescored = edges.filter(F.col("rule") == "model").join(
        found.candidates.pairs.select("left_key", "right_key"), ["left_key", "right_key"], "left_semi"
    )
    return touching.select(*EDGE_KEYS).unionByName(rescored.select(*EDGE_KEYS)).unionByName(stale).distinct()


def endpoints(edges: DataFrame) -> DataFrame:
    """``record_key`` of both ends of some edges."""
    return edges.select(F.explode(F.array("left_key", "right_key")).alias("record_key")).distinct()


# --------------------------------------------------------------------------------------------
# The affected region
# --------------------------------------------------------------------------------------------


def affected_region(
    records: DataFrame,
    resolved: DataFrame,
    edges: DataFrame,
    seeds: DataFrame,
    vanished: DataFrame,
    *,
    max_rounds: int = 40,
) -> DataFrame:
    """``record_key`` of the records whose clusters this run recomputes, checkpointed.

    Args:
        records: ``record_key`` of every silver record.
        resolved: the old entity_clusters (``record_key, cluster_id``).
        edges: every edge after this run's edge changes.
        seeds: new and changed records and both ends of every changed edge.
        vanished: records gone from silver (their old clusters are affected).
        max_rounds: growth steps allowed along edges that leave the region.

    Raises:
        StageError: the region still grows after ``max_rounds`` steps.
    """
    clusters = resolved.select("record_key", "cluster_id")

    def with_clusters(keys: DataFrame) -> DataFrame:  # keys and every record of their old clusters
        ids = clusters.join(keys, "record_key", "left_semi").select("cluster_id").distinct()
        members = clusters.join(ids, "cluster_id", "left_semi").select("record_key")
        return members.unionByName(keys).distinct().join(records, "record_key", "left_semi")

    region = checkpoint(with_clusters(seeds.unionByName(vanished)))
    for _ in range(max_rounds):
        outside = _leaving(edges, region)
        if not outside.limit(1).count():  # small metadata: usually only edges the size guard cut leave
            return region
        region = checkpoint(region.unionByName(with_clusters(outside)).distinct())
    raise StageError("resolve", f"the affected region still grew after {max_rounds} steps along match edges; "
                                "run a full resolve (full=True)")


def _leaving(edges: DataFrame, region: DataFrame) -> DataFrame:
    """``record_key`` outside ``region`` on an edge with one end inside."""
    inside = region.withColumn("_in", F.lit(True))
    marked = edges.select("left_key", "right_key").join(
        inside.select(F.col("record_key").alias("left_key"), F.col("_in").alias("_l")), "left_key", "left"
    ).join(inside.select(F.col("record_key").alias("right_key"), F.col("_in").alias("_r")), "right_key", "left")
    crossing = marked.filter(F.col("_l").isNull() != F.col("_r").isNull())
    return crossing.select(F.when(F.col("_l").isNull(), F.col("left_key")).otherwise(F.col("right_key"))
                           .alias("record_key")).distinct()


def within(edges: DataFrame, region: DataFrame) -> DataFrame:
    """The edges with both ends in ``region``."""
    return edges.join(region.withColumnRenamed("record_key", "left_key"), "left_key", "left_semi").join(
        region.withColumnRenamed("record_key", "right_key"), "right_key", "left_semi"
    )


# --------------------------------------------------------------------------------------------
# Writing only what changed
# --------------------------------------------------------------------------------------------


def changes(
    fresh: DataFrame, existing: DataFrame, *, keys: tuple[str, ...], compare: tuple[str, ...],
    scope: DataFrame | None = None,
) -> DataFrame:
    """The rows that turn ``existing`` into ``fresh`` within ``scope``.

    Args:
        fresh: the new rows of the scope.
        existing: the table's rows.
        keys: the columns that identify a row.
        compare: the columns whose change makes a row worth rewriting (not ``run_id``: it
            then names the run that last changed the row).
        scope: ``keys`` of the existing rows being recomputed; None: all of them.

    Returns:
        ``fresh``'s columns and ``_delete``: rows of ``fresh`` that are new or differ in a
        ``compare`` column (``_delete`` false), and keys of existing rows in scope that
        ``fresh`` lacks (``_delete`` true, other columns null).
    """
    old = existing if scope is None else existing.join(scope.select(*keys).distinct(), list(keys), "left_semi")
    old = old.select(*keys, *(F.col(c).alias(f"_old_{c}") for c in compare), F.lit(True).alias("_old"))
    joined = fresh.withColumn("_new", F.lit(True)).join(old, list(keys), "full")
    same = reduce(lambda a, b: a & b, [F.col(c).eqNullSafe(F.col(f"_old_{c}")) for c in compare])
    keep = F.col("_new").isNull() | F.col("_old").isNull() | ~same
    return joined.filter(keep).select(*fresh.columns, F.col("_new").isNull().alias("_delete"))


def write_changes(
    spark: SparkSession, fresh: DataFrame, path: str, *, keys: tuple[str, ...], compare: tuple[str, ...],
    run_id: str, scope: DataFrame | None = None,
) -> DataFrame:
    """Make the table at ``path`` hold ``fresh`` within ``scope``, writing changed rows only.

    A missing table is created from ``fresh`` with the change data feed on. A table whose
    columns differ from ``fresh``'s (written before ``match_hash`` existed) is rewritten by
    a full MERGE, only when ``scope`` is None.

    Returns:
        The rows written (:func:`changes`), checkpointed.
    """
    if not delta_io.exists(spark, path):
        delta_io.append(spark, fresh, path, user_metadata=run_id, table_properties=CHANGE_FEED)
        return checkpoint(delta_io.read(spark, path).withColumn("_delete", F.lit(False)))
    existing = delta_io.read(spark, path)
    if set(existing.columns) != set(fresh.columns):
        if scope is not None:
            raise StageError("resolve", f"{path} has columns {sorted(existing.columns)}, expected "
                                        f"{sorted(fresh.columns)}; run a full resolve (full=True)")
        log.info("resolve: %s gets new columns; every row is rewritten once", path)
        delta_io.merge_upsert(spark, fresh, path, keys=keys, user_metadata=run_id, delete_missing=True)
        return checkpoint(delta_io.read(spark, path).withColumn("_delete", F.lit(False)))
    rows = checkpoint(changes(fresh, existing, keys=keys, compare=compare, scope=scope))
    if rows.limit(1).count():
        merge_changes(spark, rows, path, keys=keys, user_metadata=run_id)
    return rows


def merge_changes(spark: SparkSession, rows: DataFrame, path: str, *, keys: tuple[str, ...], user_metadata: str) -> int:
    """One MERGE applying :func:`changes` rows: delete, update or insert by ``keys``.

    Written here because ``delta_io.merge_upsert`` cannot delete chosen rows; it belongs in
    :mod:`cdi_spark.delta_io` (``merge_changes``) and moves there with its owner's review.
    Conflicts are retried by :func:`cdi_spark.delta_io.with_retry`.

    Returns:
        The version the MERGE committed.
    """
    columns = [c for c in rows.columns if c != "_delete"]
    condition = " AND ".join(f"t.`{k}` = s.`{k}`" for k in keys)
    assign = {f"`{c}`": f"s.`{c}`" for c in columns}

    def run() -> None:
        (
            DeltaTable.forPath(spark, str(path)).alias("t").merge(rows.alias("s"), condition)
            .whenMatchedDelete(condition="s._delete")
            .whenMatchedUpdate(condition="NOT s._delete", set=assign)
            .whenNotMatchedInsert(condition="NOT s._delete", values=assign)
            .execute()
        )

    with delta_io._session_conf(spark, {delta_io.USER_METADATA_CONF: user_metadata}):
        delta_io.with_retry(run, what=f"merge changes into {path}")
    return delta_io.current_version(spark, path)
