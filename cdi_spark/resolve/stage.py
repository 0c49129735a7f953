"""The pipeline's identity-resolution stages: ``train_matcher`` and ``resolve``.

``train_matcher`` trains a new match model version from ``silver.match_labels`` (or, with
too few labels, from bootstrapped sure pairs) over ``silver.customer_records`` and stores it
under ``<lakehouse>/<matching.model_dir>/<version>/``; ``audit.match_models`` gets one row
per version (labels used, bootstrapped or not, the run).

``resolve`` matches silver records with the newest model (training one first when there is
none) and keeps:

* ``silver.match_edges``: ``left_key, right_key, rule, score`` (rule edges score 1.0,
  ``model`` edges the model's probability, at or above ``clustering.model_threshold``);
* ``silver.entity_clusters``: ``record_key, cluster_id, match_hash`` (one row per silver
  record; ``match_hash`` is the content of the record as it was resolved);
* ``silver.oversized_keys``: hashes of blocking values and rule keys over their caps;
* ``audit.cut_edges``: edges the size guard cut this run, with the reason;
* ``audit.resolve_runs``: one row per finished run: full or incremental and why, counts.

A run is *incremental* when nothing but silver records changed since the last finished run
(same model, same matching settings): only new, changed and vanished records are matched
and only the clusters they touch are recomputed (:mod:`cdi_spark.resolve.incremental`).
Otherwise, or with ``full=True``, every record is matched again.

Either way only rows that change are written, in one MERGE per table, so each Delta version
holds one run's changes and the change data feed (on for tables this stage creates) shows
what moved. Rows carry ``run_id`` (the run that last changed them) and ``model_version``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from cdi_spark import delta_io, tables
from cdi_spark.config import MatchingConfig, PipelineConfig, load_matching
from cdi_spark.errors import CdiError, StageError
from cdi_spark.resolve import incremental, matcher
from cdi_spark.resolve.blocking import candidate_pairs
from cdi_spark.resolve.clusters import cluster
from cdi_spark.resolve.incremental import EDGE_KEYS, MATCH_HASH, Delta, ResolveTables, write_changes
from cdi_spark.resolve.zingg import ModelRef

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ResolveResult:
    """Counts of one resolve run.

    ``records`` ... ``largest_cluster``, ``edges``, ``skipped_blocks`` and ``overshared_keys``
    describe the tables after the run; ``candidates`` and ``cut_edges`` what this run scored
    and cut. ``incremental`` says which path ran and ``reason`` why; ``delta_records`` are the
    new, changed and vanished records it matched and ``affected_records`` the records whose
    clusters it recomputed (both every record in a full run).
    """

    records: int
    candidates: int
    edges: int
    clusters: int
    multi_record_clusters: int
    largest_cluster: int
    cut_edges: int
    skipped_blocks: int
    overshared_keys: int
    model_version: str
    incremental: bool = False
    delta_records: int = 0
    affected_records: int = 0
    reason: str = ""


@dataclass(frozen=True)
class _Outcome:
    """What one path did, before the tables are counted."""

    incremental: bool
    reason: str
    delta_records: int
    affected_records: int
    candidates: int
    cut_edges: int


def _path(cfg: PipelineConfig, layer: str, name: str) -> str:
    return tables.table_path(cfg.lakehouse, layer, name)


def model_dir(cfg: PipelineConfig, matching: MatchingConfig) -> str:
    """The folder of model versions: ``matching.model_dir`` under the lakehouse (unless absolute)."""
    if "://" in matching.model_dir or matching.model_dir.startswith("/"):
        return matching.model_dir
    return f"{str(cfg.lakehouse).rstrip('/')}/{matching.model_dir}"


def silver_records(spark: SparkSession, cfg: PipelineConfig, matching: MatchingConfig) -> DataFrame:
    """``silver.customer_records`` as a match frame (every column; the matcher picks its own)."""
    path = _path(cfg, tables.SILVER, tables.CUSTOMER_RECORDS)
    if not delta_io.exists(spark, path):
        raise StageError("resolve", f"no silver.customer_records at {path}; run the standardize stage first")
    records = delta_io.read(spark, path)
    matcher.require_columns(records, matching, "silver.customer_records")
    return records


def read_labels(spark: SparkSession, cfg: PipelineConfig) -> DataFrame | None:
    """``silver.match_labels`` (left_key, right_key, is_match), or None when there is none."""
    path = _path(cfg, tables.SILVER, tables.MATCH_LABELS)
    if not delta_io.exists(spark, path):
        return None
    return delta_io.read(spark, path).select("left_key", "right_key", "is_match")


def labels_path(cfg: PipelineConfig) -> str:
    """Where ``silver.match_labels`` lives."""
    return _path(cfg, tables.SILVER, tables.MATCH_LABELS)


def pairs_for_labelling(spark: SparkSession, cfg: PipelineConfig, n: int) -> tuple[DataFrame, DataFrame]:
    """Up to ``n`` candidate pairs worth labelling (every agreement pattern represented) and
    the silver records, for the console labeller, a notebook or the ground-truth labeller."""
    matching = load_matching(cfg)
    records = silver_records(spark, cfg, matching)
    candidates = candidate_pairs(records, matching.blocking)
    u = matcher.u_probabilities(records, [f.name for f in matching.fields])
    compared = matcher.compare(records, candidates.pairs, matching, u)
    labelled = read_labels(spark, cfg)
    if labelled is not None:  # do not ask twice
        compared = compared.join(labelled.select("left_key", "right_key"), ["left_key", "right_key"], "left_anti")
    return matcher.diverse_pairs(compared, n, matching.training.seed), records


def label_from_truth(spark: SparkSession, cfg: PipelineConfig, truth: DataFrame, *, run_id: str) -> int:
    """Label ``training.max_labels`` candidate pairs from a ground truth (``record_key,
    entity_id``), as a data steward would, into ``silver.match_labels``. For generated demo
    data and tests: a real model is trained without a person."""
    from cdi_spark.resolve.labels import save_labels, truth_labels

    matching = load_matching(cfg)
    pairs, _ = pairs_for_labelling(spark, cfg, matching.training.max_labels)
    answers = truth_labels(pairs.select("left_key", "right_key"), truth)
    written = save_labels(spark, labels_path(cfg), answers, origin="truth", labelled_by="ground truth", run_id=run_id)
    log.info("labels: %d pairs labelled from the ground truth", written)
    return written


def train_matcher(spark: SparkSession, cfg: PipelineConfig, *, run_id: str) -> matcher.TrainedModel:
    """Train a new model version on the silver records; see the module docstring."""
    matching = load_matching(cfg)
    records = silver_records(spark, cfg, matching).persist()
    try:
        trained = matcher.train_model(
            spark, records, matching, model_dir(cfg, matching), labels=read_labels(spark, cfg)
        )
    except CdiError as exc:
        raise StageError("train_matcher", str(exc)) from exc
    finally:
        records.unpersist()
    row = {
        "model_version": trained.version,
        "path": trained.model.path,
        "matches": trained.matches,
        "non_matches": trained.non_matches,
        "bootstrapped": trained.bootstrapped,
        "fields": json.dumps([f.name for f in trained.model.fields]),
        "trained_at": datetime.now(UTC).replace(tzinfo=None),
        "run_id": run_id,
    }
    frame = spark.createDataFrame(
        [row],
        "model_version string, path string, matches long, non_matches long, bootstrapped boolean, "
        "fields string, trained_at timestamp, run_id string",
    )
    delta_io.append(spark, frame, _path(cfg, tables.AUDIT, tables.MATCH_MODELS), user_metadata=run_id)
    log.info(
        "train_matcher: model %s from %d matching and %d non-matching pairs%s",
        trained.version,
        trained.matches,
        trained.non_matches,
        " (bootstrapped)" if trained.bootstrapped else "",
    )
    return trained


def resolve(
    spark: SparkSession, cfg: PipelineConfig, *, run_id: str, full: bool = False, max_delta_share: float = 0.5
) -> ResolveResult:
    """Match and cluster the silver records; see the module docstring.

    Args:
        spark: the session.
        cfg: the pipeline configuration (lakehouse, matching file).
        run_id: the run writing the tables.
        full: match every record again even when an incremental run is possible.
        max_delta_share: run in full when more than this share of the records is new,
            changed or gone (an incremental run would then cost more than a full one).
    """
    matching = load_matching(cfg)
    folder = model_dir(cfg, matching)
    try:
        model = matcher.latest_model(spark, folder)
    except CdiError:
        log.info("resolve: no match model under %s yet; training one first", folder)
        model = train_matcher(spark, cfg, run_id=run_id).model
    records = silver_records(spark, cfg, matching)
    return resolve_records(
        spark, records, matching, model, ResolveTables.under(cfg.lakehouse),
        run_id=run_id, full=full, max_delta_share=max_delta_share,
    )


def resolve_records(
    spark: SparkSession,
    records: DataFrame,
    matching: MatchingConfig,
    model: ModelRef,
    paths: ResolveTables,
    *,
    run_id: str,
    full: bool = False,
    max_delta_share: float = 0.5,
) -> ResolveResult:
    """:func:`resolve` on a given match frame, model and set of tables (what tests call).

    Args:
        records: every current record (``record_key`` and the columns matching reads).
        paths: where the stage's tables are.
        Others as in :func:`resolve`.
    """
    version = model.model_id
    settings = incremental.matching_hash(matching)
    hashed = incremental.with_match_hash(records, matching).persist()
    try:
        possible, reason = (False, "a full rebuild was asked for") if full else incremental.choose_path(
            spark, paths, model_version=version, settings_hash=settings
        )
        outcome = None
        if possible:
            delta = incremental.find_delta(hashed, paths.pinned(spark, "clusters"))
            total = hashed.count()
            if delta.size <= max_delta_share * total:
                outcome = _resolve_incremental(spark, hashed, matching, model, paths, delta, run_id=run_id, why=reason)
            else:
                reason = (f"{delta.size} of {total} records are new, changed or gone, more than "
                          f"max_delta_share {max_delta_share}")
        if outcome is None:
            log.info("resolve: full: %s", reason)
            outcome = _resolve_full(spark, hashed, matching, model, paths, run_id=run_id, why=reason)
        _record_run(spark, paths, outcome, run_id=run_id, model_version=version, settings_hash=settings,
                    records=hashed.count())
        return _counts(spark, paths, outcome, version)
    finally:
        hashed.unpersist()


def _stamp(frame: DataFrame, run_id: str, version: str) -> DataFrame:
    return frame.withColumns({"run_id": F.lit(run_id), "model_version": F.lit(version)})


def _write_edges(
    spark: SparkSession, edges: DataFrame, paths: ResolveTables, run_id: str, version: str,
    scope: DataFrame | None = None,
) -> DataFrame:
    fresh = _stamp(edges.select(*matcher.EDGE_COLUMNS), run_id, version)
    return write_changes(spark, fresh, paths.edges, keys=EDGE_KEYS, compare=("score", "model_version"),
                         run_id=run_id, scope=scope)


def _write_clusters(
    spark: SparkSession, clusters: DataFrame, hashed: DataFrame, paths: ResolveTables, run_id: str, version: str,
    scope: DataFrame | None = None,
) -> DataFrame:
    fresh = _stamp(clusters.join(hashed.select("record_key", MATCH_HASH), "record_key"), run_id, version)
    fresh = fresh.select("record_key", "cluster_id", MATCH_HASH, "run_id", "model_version")
    return write_changes(spark, fresh, paths.clusters, keys=("record_key",),
                         compare=("cluster_id", MATCH_HASH, "model_version"), run_id=run_id, scope=scope)


def _write_state(spark: SparkSession, found: matcher.EdgeResult, paths: ResolveTables, run_id: str) -> None:
    fresh = incremental.oversized_keys(found).withColumn("run_id", F.lit(run_id))
    write_changes(spark, fresh, paths.oversized, keys=("kind", "key", "value_hash"), compare=("records",),
                  run_id=run_id)


def _write_cuts(spark: SparkSession, cuts: DataFrame, paths: ResolveTables, run_id: str, version: str) -> int:
    delta_io.overwrite_partition(spark, _stamp(cuts, run_id, version), paths.cut_edges,
                                 where=f"run_id = '{run_id}'", user_metadata=run_id)
    return cuts.count()


def _resolve_full(
    spark: SparkSession, hashed: DataFrame, matching: MatchingConfig, model: ModelRef, paths: ResolveTables, *,
    run_id: str, why: str,
) -> _Outcome:
    """Match every record, cluster every record, write what changed."""
    version = model.model_id
    found = matcher.match_edges(spark, hashed, matching, model)
    try:
        _write_edges(spark, found.edges, paths, run_id, version)
        _write_state(spark, found, paths, run_id)
        clustering = cluster(hashed.select("record_key"), found.edges, matcher.cluster_settings(matching))
        _write_clusters(spark, clustering.clusters, hashed, paths, run_id, version)
        cut = _write_cuts(spark, clustering.cut_edges, paths, run_id, version)
        total = hashed.count()
        return _Outcome(False, why, total, total, found.candidates.pairs.count(), cut)
    finally:
        found.release()


def _resolve_incremental(
    spark: SparkSession, hashed: DataFrame, matching: MatchingConfig, model: ModelRef, paths: ResolveTables,
    delta: Delta, *, run_id: str, why: str,
) -> _Outcome:
    """Match the delta against every record, recompute the clusters it touches, write what changed."""
    log.info("resolve: incremental (%s): %d new or changed and %d vanished records",
             why, delta.changed_count, delta.vanished_count)
    if not delta.size:
        return _Outcome(True, why, 0, 0, 0, 0)
    version = model.model_id
    before, resolved, old_edges = (paths.pinned(spark, name) for name in ("oversized", "clusters", "edges"))
    skipped_before, overshared_before = incremental.split_oversized(before)
    found = matcher.match_edges(spark, hashed, matching, model, changed=delta.changed,
                                skipped_before=skipped_before, overshared_before=overshared_before)
    region = None
    try:
        stale = incremental.stale_edges(old_edges, hashed, matching, found, before)
        scope = incremental.edge_scope(old_edges, delta, found, stale)
        edge_rows = _write_edges(spark, found.edges, paths, run_id, version, scope=scope)
        _write_state(spark, found, paths, run_id)
        seeds = delta.changed.unionByName(incremental.endpoints(edge_rows))
        edges = paths.pinned(spark, "edges")
        region = incremental.affected_region(hashed.select("record_key"), resolved, edges, seeds, delta.vanished)
        clustering = cluster(region, incremental.within(edges, region), matcher.cluster_settings(matching))
        cluster_rows = _write_clusters(spark, clustering.clusters, hashed, paths, run_id, version,
                                       scope=region.unionByName(delta.vanished))
        cut = _write_cuts(spark, clustering.cut_edges, paths, run_id, version)
        affected, candidates = region.count(), found.candidates.pairs.count()
        log.info("resolve: incremental: %d candidate pairs, %d edge rows and %d cluster rows changed, "
                 "%d records in affected clusters", candidates, edge_rows.count(), cluster_rows.count(), affected)
        return _Outcome(True, why, delta.size, affected, candidates, cut)
    finally:
        found.release()
        if region is not None:
            region.unpersist()


def _record_run(spark: SparkSession, paths: ResolveTables, outcome: _Outcome, *, run_id: str, model_version: str,
                settings_hash: str, records: int) -> None:
    """Append the run's ``audit.resolve_runs`` row, last: it marks the run finished."""
    versions = paths.state_versions(spark)
    row = {
        "run_id": run_id,
        "finished_at": datetime.now(UTC).replace(tzinfo=None),
        "incremental": outcome.incremental,
        "reason": outcome.reason,
        "model_version": model_version,
        "matching_hash": settings_hash,
        "records": records,
        "delta_records": outcome.delta_records,
        "affected_records": outcome.affected_records,
        "candidates": outcome.candidates,
        **{f"{k}_version": v for k, v in versions.items()},
    }
    frame = spark.createDataFrame([row], incremental.RUN_SCHEMA)
    delta_io.append(spark, frame, paths.runs, user_metadata=run_id)


def _counts(spark: SparkSession, paths: ResolveTables, outcome: _Outcome, version: str) -> ResolveResult:
    clusters = delta_io.read(spark, paths.clusters)
    sizes = clusters.groupBy("cluster_id").count()
    agg = sizes.agg(
        F.count(F.lit(1)).alias("clusters"),
        F.sum("count").alias("records"),
        F.sum((F.col("count") > 1).cast("int")).alias("multi"),
        F.max("count").alias("largest"),
    ).first()
    edges = delta_io.read(spark, paths.edges).count()
    kinds = {r["kind"]: r["count"] for r in delta_io.read(spark, paths.oversized).groupBy("kind").count().collect()}
    out = ResolveResult(
        records=agg["records"] or 0,
        candidates=outcome.candidates,
        edges=edges,
        clusters=agg["clusters"] or 0,
        multi_record_clusters=agg["multi"] or 0,
        largest_cluster=agg["largest"] or 0,
        cut_edges=outcome.cut_edges,
        skipped_blocks=kinds.get("blocking", 0),
        overshared_keys=kinds.get("rule", 0),
        model_version=version,
        incremental=outcome.incremental,
        delta_records=outcome.delta_records,
        affected_records=outcome.affected_records,
        reason=outcome.reason,
    )
    log.info("resolve: %s", ", ".join(f"{k}={v}" for k, v in out.__dict__.items() if k != "reason"))
    return out
