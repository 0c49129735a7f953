"""The run report's numbers, gathered from the lakehouse tables for one run id (pure Spark).

Every figure is an aggregate computed by Spark; only the aggregates (a few rows per source,
rule, reason, event kind or cluster size) reach the driver. :func:`gather` returns one
JSON-ready dict; the charts are drawn from that dict and nothing else, so the JSON holds
exactly the numbers the pictures show.

Which rows belong to the run:

* logs keyed by the run id, read as they are now: ``audit.ingest_manifest`` (``batch_id``),
  ``quarantine.<source>`` (``_batch_id``), ``audit.data_quality`` and ``audit.id_events``
  (``run_id``);
* state tables, read at the version the run left them (:func:`versions_left`):
  ``silver.customer_records`` (rows whose ``run_id`` is the run: the records it wrote),
  ``silver.match_edges`` (all edges, and those the run wrote), ``silver.entity_clusters``
  (all clusters) and ``gold.customer_profile`` (rows not soft-deleted);
* ``audit.runs``: status, times, config hash, stages asked for and seconds per stage.

A section whose stage the run was not asked to run (``audit.runs.stages``) is ``not run``;
one whose stage ran but left no rows for the run is ``no data``. A run id missing from
``audit.runs`` (a stage called outside the pipeline) is reported from whatever rows carry it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import reduce
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from cdi_spark import delta_io, runs, tables
from cdi_spark.config import PipelineConfig
from cdi_spark.golden.publish import IS_DELETED
from cdi_spark.standardize.quality import FieldQuality

OK, NOT_RUN, NO_DATA = "ok", "not run", "no data"
# Model score histogram: 20 bins of width 0.05 over [0, 1]; the last bin includes 1.0 (as
# numpy.histogram's does) and scores outside [0, 1] fall into the first or last bin.
SCORE_BINS = tuple(i / 20 for i in range(21))
MODEL_RULE = "model"
FLOW_STAGES = ("ingest", "standardize", "resolve", "golden")


@dataclass(frozen=True)
class _Run:
    """What the gatherers share: the session, lakehouse, run id, its record and table versions."""

    spark: SparkSession
    lakehouse: str
    run_id: str
    record: runs.RunRecord | None
    versions: dict[str, int]

    def ran(self, stage: str) -> bool | None:
        """Whether the run was asked to run ``stage``; None when the run is not recorded."""
        return None if self.record is None else stage in self.record.stages

    def table(self, layer: str, name: str, *, as_left: bool = False) -> DataFrame | None:
        """The table, or None when it does not exist; ``as_left``: at the version the run left."""
        path = tables.table_path(self.lakehouse, layer, name)
        if not delta_io.exists(self.spark, path):
            return None
        version = self.versions.get(tables.qualified_name(layer, name)) if as_left else None
        return delta_io.read(self.spark, path, version=version)


def versions_left(spark: SparkSession, lakehouse: str, run_id: str) -> dict[str, int]:
    """``<layer>.<name>`` -> the version of each table as run ``run_id`` left it.

    That is the last version any run started no later than this one committed (from
    ``audit.runs.versions``; one small aggregation): the run's own commit, or, for a table it
    did not change, the latest earlier one. Tables absent here (never written by a recorded
    run, or the run is not recorded) are read at their current version.
    """
    path = runs.runs_path(lakehouse)
    if not delta_io.exists(spark, path):
        return {}
    recorded = delta_io.read(spark, path)
    this = recorded.filter(F.col("run_id") == run_id).select(F.col("started_at").alias("_this_start"))
    rows = (
        recorded.crossJoin(this)
        .filter(F.col("started_at") <= F.col("_this_start"))
        .select(F.explode("versions").alias("table", "version"))
        .groupBy("table")
        .agg(F.max("version").alias("version"))
        .collect()  # one row per lakehouse table: metadata
    )
    return {r["table"]: int(r["version"]) for r in rows}


# --------------------------------------------------------------------------------------------
# Gatherers: one small aggregation each, None when the table is missing
# --------------------------------------------------------------------------------------------


def ingest_rows(run: _Run) -> dict[str, dict[str, int]] | None:
    """source -> ``read``, ``bronze``, ``quarantined`` rows of the run's files (the manifest)."""
    manifest = run.table(tables.AUDIT, tables.INGEST_MANIFEST)
    if manifest is None:
        return None
    rows = (
        manifest.filter(F.col("batch_id") == run.run_id)
        .groupBy("source")
        .agg(*(F.sum(f"rows_{k}").alias(k) for k in ("read", "bronze", "quarantined")))
        .collect()  # one row per source
    )
    return {r["source"]: {k: int(r[k]) for k in ("read", "bronze", "quarantined")} for r in sorted(rows)}


def quarantine_reasons(run: _Run, sources: Iterable[str]) -> dict[str, dict[str, int]]:
    """source -> reason -> rows of ``quarantine.<source>`` with ``_batch_id`` = the run.

    A recorded run reads only the ``_ingest_date`` partitions of the days it ran on.
    """
    mine = F.col(tables.BATCH_ID) == run.run_id
    if run.record is not None:  # prune to the partitions of the run's days (_ingest_date is a UTC date)
        end = run.record.ended_at or datetime.now(UTC)
        mine &= F.col(tables.INGEST_DATE).between(F.lit(run.record.started_at.date()), F.lit(end.date()))
    frames = []
    for source in sorted(set(sources)):
        table = run.table(tables.QUARANTINE, source)
        if table is not None:
            frames.append(
                table.filter(mine).select(
                    F.lit(source).alias("source"), F.coalesce(F.col(tables.Q_REASON), F.lit("unknown")).alias("reason")
                )
            )
    if not frames:
        return {}
    out: dict[str, dict[str, int]] = {}
    counted = reduce(DataFrame.unionByName, frames).groupBy("source", "reason").count()
    for r in sorted(counted.collect()):  # one row per source and reason
        out.setdefault(r["source"], {})[r["reason"]] = int(r["count"])
    return out


def field_quality(run: _Run) -> list[FieldQuality] | None:
    """The run's ``audit.data_quality`` rows, summed per source and field."""
    dq = run.table(tables.AUDIT, tables.DATA_QUALITY)
    if dq is None:
        return None
    rows = (
        dq.filter(F.col("run_id") == run.run_id)
        .groupBy("source", "field")
        .agg(*(F.sum(k).alias(k) for k in ("records", "filled", "invalid")))
        .collect()  # one row per source and field
    )
    measured = [FieldQuality(r["source"], r["field"], int(r["records"]), int(r["filled"]), int(r["invalid"]))
                for r in rows]  # fmt: skip
    return sorted(measured, key=lambda q: (q.source, q.field))


def silver_records(run: _Run) -> dict[str, int] | None:
    """source -> rows of ``silver.customer_records`` the run wrote (as the run left it)."""
    silver = run.table(tables.SILVER, tables.CUSTOMER_RECORDS, as_left=True)
    if silver is None:
        return None
    rows = silver.filter(F.col("run_id") == run.run_id).groupBy("source").count().collect()
    return {r["source"]: int(r["count"]) for r in sorted(rows)}


def _score_bin() -> Column:
    """The histogram bin of ``score``: the number of lower bin edges at or below it, minus one
    (exactly the comparisons numpy.histogram makes with the same edges), kept in range."""
    lower = F.array(*(F.lit(b) for b in SCORE_BINS[:-1]))
    index = F.size(F.filter(lower, lambda b: F.col("score") >= b)) - 1
    return F.greatest(F.lit(0), F.least(index, F.lit(len(SCORE_BINS) - 2)))


def edge_figures(run: _Run) -> tuple[dict[str, dict[str, int]], dict[str, list]] | None:
    """Edges of ``silver.match_edges`` as the run left it, in one aggregation:

    * rule -> ``total`` edges and ``this_run``: those the run wrote (``run_id``);
    * the histogram of model edges' scores over :data:`SCORE_BINS` (``bins``, ``counts``).
    """
    edges = run.table(tables.SILVER, tables.MATCH_EDGES, as_left=True)
    if edges is None:
        return None
    is_model = (F.col("rule") == MODEL_RULE) & F.col("score").isNotNull()
    rows = (
        edges.groupBy("rule", F.when(is_model, _score_bin()).alias("bin"))
        .agg(F.count(F.lit(1)).alias("total"), F.sum((F.col("run_id") == run.run_id).cast("long")).alias("this_run"))
        .collect()  # one row per rule, or per score bin of the model rule: at most a few dozen
    )
    rules: dict[str, dict[str, int]] = {}
    counts = [0] * (len(SCORE_BINS) - 1)
    for r in rows:
        totals = rules.setdefault(r["rule"], {"total": 0, "this_run": 0})
        totals["total"] += int(r["total"])
        totals["this_run"] += int(r["this_run"] or 0)
        if r["bin"] is not None:
            counts[r["bin"]] += int(r["total"])
    return dict(sorted(rules.items())), {"bins": list(SCORE_BINS), "counts": counts}


def cluster_sizes(run: _Run) -> dict[int, int] | None:
    """cluster size -> number of clusters in ``silver.entity_clusters`` as the run left it."""
    clusters = run.table(tables.SILVER, tables.ENTITY_CLUSTERS, as_left=True)
    if clusters is None:
        return None
    sizes = clusters.groupBy("cluster_id").agg(F.count(F.lit(1)).alias("size"))
    rows = sizes.groupBy("size").count().collect()  # one row per distinct size
    return {int(r["size"]): int(r["count"]) for r in sorted(rows)}


def live_customers(run: _Run) -> int | None:
    """Rows of ``gold.customer_profile`` not soft-deleted, as the run left it."""
    profile = run.table(tables.GOLD, tables.CUSTOMER_PROFILE, as_left=True)
    if profile is None:
        return None
    return profile.filter(~F.coalesce(F.col(IS_DELETED), F.lit(False))).count()


def id_event_counts(run: _Run) -> dict[str, int] | None:
    """event kind -> rows of ``audit.id_events`` of the run."""
    events = run.table(tables.AUDIT, tables.ID_EVENTS)
    if events is None:
        return None
    rows = events.filter(F.col("run_id") == run.run_id).groupBy("event").count().collect()
    return {r["event"]: int(r["count"]) for r in sorted(rows)}


# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------


def _status(ran: bool | None, has_data: bool) -> str:
    if ran is False:
        return NOT_RUN
    return OK if has_data else NO_DATA


def _flow(run: _Run, ingested: dict | None, silver: dict | None, sizes: dict | None,
          customers: int | None) -> dict[str, Any]:  # fmt: skip
    """Rows per stage and source: the run's rows read, in bronze, quarantined, written to
    silver; then the lakehouse after the run: records in clusters, clusters, customers."""
    ran = {stage: run.ran(stage) is not False for stage in FLOW_STAGES}
    ingested = (ingested or None) if ran["ingest"] else None
    silver = (silver or None) if ran["standardize"] else None
    sizes = sizes if ran["resolve"] else None
    customers = customers if ran["golden"] else None
    this_run = {
        "read": {s: v["read"] for s, v in ingested.items()} if ingested else None,
        "bronze": {s: v["bronze"] for s, v in ingested.items()} if ingested else None,
        "quarantined": {s: v["quarantined"] for s, v in ingested.items()} if ingested else None,
        "silver": silver,
    }
    after = {
        "records": sum(size * n for size, n in sizes.items()) if sizes is not None else None,
        "clusters": sum(sizes.values()) if sizes is not None else None,
        "customers": customers,
    }
    totals = {k: sum(v.values()) for k, v in this_run.items() if v is not None}
    has_data = bool(totals) or any(v is not None for v in after.values())
    status = NOT_RUN if not any(ran.values()) else (OK if has_data else NO_DATA)
    not_run = [stage for stage in FLOW_STAGES if not ran[stage]]
    return {"status": status, "not_run": not_run, "this_run": this_run, "totals": totals, "after_run": after}


def _quality(run: _Run, measured: list[FieldQuality] | None) -> dict[str, Any]:
    sources: dict[str, dict[str, dict[str, float]]] = {}
    for q in measured or []:
        sources.setdefault(q.source, {})[q.field] = {
            "records": q.records, "filled": q.filled, "invalid": q.invalid,
            "fill_rate": q.fill_rate, "invalid_rate": q.invalid_rate,
        }  # fmt: skip
    status = _status(run.ran("standardize"), bool(sources))
    return {"status": status, "sources": sources if status == OK else None}


def _quarantine(run: _Run, reasons: dict[str, dict[str, int]], loaded: bool) -> dict[str, Any]:
    # Files loaded and none of their rows quarantined is a figure (0), not missing data.
    status = _status(run.ran("ingest"), loaded or bool(reasons))
    if status == NOT_RUN:
        return {"status": status, "rows": None, "total": None}
    return {"status": status, "rows": reasons, "total": sum(n for r in reasons.values() for n in r.values())}


def _matching(run: _Run, edges: dict | None, histogram: dict | None, sizes: dict | None) -> dict[str, Any]:
    status = _status(run.ran("resolve"), edges is not None or bool(sizes))
    if status != OK:
        return {"status": status, "edges_per_rule": None, "score_histogram": None, "cluster_sizes": None,
                "totals": None}  # fmt: skip
    sizes = sizes or {}
    totals = {
        "edges": sum(v["total"] for v in (edges or {}).values()),
        "edges_this_run": sum(v["this_run"] for v in (edges or {}).values()),
        "model_edges": sum(histogram["counts"]) if histogram else 0,
        "clusters": sum(sizes.values()),
        "records": sum(size * n for size, n in sizes.items()),
        "multi_record_clusters": sum(n for size, n in sizes.items() if size > 1),
        "largest_cluster": max(sizes, default=0),
    }
    return {
        "status": status,
        "edges_per_rule": edges or {},
        "score_histogram": histogram,
        # JSON keys are strings: a list of pairs keeps the sizes numbers.
        "cluster_sizes": [{"size": size, "clusters": n} for size, n in sorted(sizes.items())],
        "totals": totals,
    }


def _id_events(run: _Run, counts: dict[str, int] | None) -> dict[str, Any]:
    status = _status(run.ran("golden"), counts is not None)  # a run that changed no id has none
    if status == NOT_RUN:
        return {"status": status, "counts": None, "total": None}
    return {"status": status, "counts": counts or {}, "total": sum((counts or {}).values())}


def _timings(record: runs.RunRecord | None) -> dict[str, Any]:
    if record is None or not record.seconds:
        return {"status": NO_DATA, "seconds": None, "total": None}
    order = [s for s in record.stages if s in record.seconds] + sorted(set(record.seconds) - set(record.stages))
    seconds = {stage: float(record.seconds[stage]) for stage in order}
    return {"status": OK, "seconds": seconds, "total": sum(seconds.values())}


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def _run_info(run_id: str, record: runs.RunRecord | None) -> dict[str, Any]:
    if record is None:
        return {"run_id": run_id, "recorded": False}
    seconds = (record.ended_at - record.started_at).total_seconds() if record.ended_at else None
    return {
        "run_id": run_id, "recorded": True, "status": record.status, "error": record.error,
        "config_hash": record.config_hash, "started_at": _iso(record.started_at), "ended_at": _iso(record.ended_at),
        "wall_seconds": seconds, "stages": list(record.stages),
    }  # fmt: skip


def gather(spark: SparkSession, cfg: PipelineConfig, run_id: str) -> dict[str, Any]:
    """Every figure of the run report, as a JSON-ready dict (see the module docstring).

    Args:
        spark: the session.
        cfg: the pipeline configuration (its lakehouse and sources).
        run_id: the run to report on.

    Returns:
        ``{"run": ..., "sections": {"flow", "data_quality", "quarantine", "matching",
        "id_events", "timings"}}``; each section has a ``status`` (``ok``, ``not run``,
        ``no data``) and its figures (None when not run).
    """
    record = runs.read_run(spark, cfg.lakehouse, run_id)
    run = _Run(spark, cfg.lakehouse, run_id, record, versions_left(spark, cfg.lakehouse, run_id) if record else {})
    may = {stage: run.ran(stage) is not False for stage in FLOW_STAGES}  # asked for, or unknown
    ingested = ingest_rows(run) if may["ingest"] else None
    reasons = {}
    if may["ingest"]:
        # Only sources that loaded files have quarantine rows of the run; without manifest rows
        # (no new files, or an ingest that failed before its last commit) every source is looked at.
        reasons = quarantine_reasons(run, list(ingested) if ingested else [s.name for s in cfg.sources])
    silver = silver_records(run) if may["standardize"] else None
    sizes = cluster_sizes(run) if may["resolve"] else None
    edges, histogram = (edge_figures(run) if may["resolve"] else None) or (None, None)
    customers = live_customers(run) if may["golden"] else None
    return {
        "run": _run_info(run_id, record),
        "lakehouse": str(cfg.lakehouse),
        "sections": {
            "flow": _flow(run, ingested, silver, sizes, customers),
            "data_quality": _quality(run, field_quality(run) if may["standardize"] else None),
            "quarantine": _quarantine(run, reasons, bool(ingested)),
            "matching": _matching(run, edges, histogram, sizes),
            "id_events": _id_events(run, id_event_counts(run) if may["golden"] else None),
            "timings": _timings(record),
        },
    }
