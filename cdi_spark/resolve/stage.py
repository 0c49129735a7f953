"""The pipeline's identity-resolution stages: ``train_matcher`` and ``resolve``.

``train_matcher`` trains a new match model version from ``silver.match_labels`` (or, with
too few labels, from bootstrapped sure pairs) over ``silver.customer_records`` and stores it
under ``<lakehouse>/<matching.model_dir>/<version>/``; ``audit.match_models`` gets one row
per version (labels used, bootstrapped or not, the run).

``resolve`` matches every silver record with the newest model (training one first when
there is none) and rewrites:

* ``silver.match_edges``: ``left_key, right_key, rule, score`` (rule edges score 1.0,
  ``model`` edges the model's probability, at or above ``clustering.model_threshold``);
* ``silver.entity_clusters``: ``record_key, cluster_id`` (one row per silver record);
* ``audit.cut_edges``: edges the size guard cut this run, with the reason.

Both tables are MERGEd by key with rows that vanished deleted, so each Delta version holds
exactly one run's result, unchanged rows are not rewritten, and the change data feed
shows what moved. Every row carries ``run_id`` and ``model_version``.
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
from cdi_spark.resolve import matcher
from cdi_spark.resolve.blocking import candidate_pairs

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ResolveResult:
    """Counts of one resolve run."""

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


def resolve(spark: SparkSession, cfg: PipelineConfig, *, run_id: str) -> ResolveResult:
    """Match and cluster every silver record; see the module docstring."""
    matching = load_matching(cfg)
    folder = model_dir(cfg, matching)
    try:
        model = matcher.latest_model(spark, folder)
    except CdiError:
        log.info("resolve: no match model under %s yet; training one first", folder)
        model = train_matcher(spark, cfg, run_id=run_id).model
    version = model.model_id
    records = silver_records(spark, cfg, matching).persist()
    result = None
    try:
        result = matcher.match(spark, records, matching, model)
        stamp = [F.lit(run_id).alias("run_id"), F.lit(version).alias("model_version")]
        edges = result.edges.select(*matcher.EDGE_COLUMNS, *stamp)
        delta_io.merge_upsert(
            spark,
            edges,
            _path(cfg, tables.SILVER, tables.MATCH_EDGES),
            keys=("left_key", "right_key", "rule"),
            user_metadata=run_id,
            delete_missing=True,
        )
        clusters = result.clusters.select("record_key", "cluster_id", *stamp)
        delta_io.merge_upsert(
            spark,
            clusters,
            _path(cfg, tables.SILVER, tables.ENTITY_CLUSTERS),
            keys=("record_key",),
            user_metadata=run_id,
            delete_missing=True,
        )
        cuts = result.cut_edges.select("*", *stamp)
        delta_io.overwrite_partition(
            spark, cuts, _path(cfg, tables.AUDIT, tables.CUT_EDGES), where=f"run_id = '{run_id}'", user_metadata=run_id
        )
        return _counts(spark, cfg, result, version)
    finally:
        records.unpersist()
        if result is not None:
            result.release()


def _counts(spark: SparkSession, cfg: PipelineConfig, result: matcher.MatchResult, version: str) -> ResolveResult:
    clusters = delta_io.read(spark, _path(cfg, tables.SILVER, tables.ENTITY_CLUSTERS))
    sizes = clusters.groupBy("cluster_id").count()
    agg = sizes.agg(
        F.count(F.lit(1)).alias("clusters"),
        F.sum("count").alias("records"),
        F.sum((F.col("count") > 1).cast("int")).alias("multi"),
        F.max("count").alias("largest"),
    ).first()
    edges = delta_io.read(spark, _path(cfg, tables.SILVER, tables.MATCH_EDGES)).count()
    out = ResolveResult(
        records=agg["records"] or 0,
        candidates=result.candidates.pairs.count(),
        edges=edges,
        clusters=agg["clusters"] or 0,
        multi_record_clusters=agg["multi"] or 0,
        largest_cluster=agg["largest"] or 0,
        cut_edges=result.cut_edges.count(),
        skipped_blocks=result.candidates.skipped.count(),
        overshared_keys=result.overshared.count(),
        model_version=version,
    )
    log.info("resolve: %s", ", ".join(f"{k}={v}" for k, v in out.__dict__.items()))
    return out
