"""Why records were, or were not, put in one cluster: rules, model scores, fields side by side.

Reads the tables the resolve stage wrote (``silver.match_edges``, ``silver.entity_clusters``,
``audit.cut_edges``) and ``silver.customer_records``; for a pair it also scores the two
records with the current model and compares their fields, so a pair that never became an
edge (not a candidate, or scored low) is explained too. Used by ``cdi-spark explain`` and
the notebooks; everything returned is text for a person.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from cdi_spark import delta_io, tables
from cdi_spark.config import PipelineConfig, load_matching
from cdi_spark.errors import CdiError
from cdi_spark.resolve import matcher, zingg
from cdi_spark.resolve.blocking import keyed_records
from cdi_spark.resolve.stage import model_dir, silver_records

_MAX_CLUSTER_ROWS = 60


def _table(spark: SparkSession, cfg: PipelineConfig, layer: str, name: str) -> DataFrame | None:
    path = tables.table_path(cfg.lakehouse, layer, name)
    return delta_io.read(spark, path) if delta_io.exists(spark, path) else None


def _side_by_side(fields: list[str], left: dict, right: dict, levels: dict | None = None) -> str:
    width = max(len(f) for f in fields)
    lines = [f"  {'field':<{width}}  {'left':<32} {'right':<32} comparison"]
    for name in fields:
        a, b = left.get(name), right.get(name)
        level = (levels or {}).get(name) or ("missing" if a is None or b is None else "")
        lines.append(
            f"  {name:<{width}}  {str(a if a is not None else '-'):<32.32} "
            f"{str(b if b is not None else '-'):<32.32} {level}"
        )
    return "\n".join(lines)


def explain_pair(spark: SparkSession, cfg: PipelineConfig, left_key: str, right_key: str) -> str:
    """Text explaining how two silver records relate: clusters, edges, blocking keys shared,
    the model's score now, and each field's agreement level.

    Raises:
        CdiError: a key is not a silver record.
    """
    matching = load_matching(cfg)
    records = silver_records(spark, cfg, matching)
    fields = list(dict.fromkeys([f.name for f in matching.fields] + ["source", "email", "phone_raw"]))
    fields = [f for f in fields if f in records.columns]
    rows = {
        r["record_key"]: r.asDict()
        for r in records.filter(F.col("record_key").isin(left_key, right_key)).select("record_key", *fields).collect()
    }
    missing = [k for k in (left_key, right_key) if k not in rows]
    if missing:
        raise CdiError(f"explain: {', '.join(missing)} is not a record of silver.customer_records")
    lo, hi = sorted((left_key, right_key))
    out = [f"pair {lo} <-> {hi}"]

    clusters = _table(spark, cfg, tables.SILVER, tables.ENTITY_CLUSTERS)
    if clusters is not None:
        ids = {r["record_key"]: r["cluster_id"] for r in clusters.filter(F.col("record_key").isin(lo, hi)).collect()}
        same = ids.get(lo) is not None and ids.get(lo) == ids.get(hi)
        out.append(f"clusters: {ids.get(lo)} and {ids.get(hi)} ({'same cluster' if same else 'different clusters'})")
    edges = _table(spark, cfg, tables.SILVER, tables.MATCH_EDGES)
    if edges is not None:
        found = edges.filter((F.col("left_key") == lo) & (F.col("right_key") == hi)).collect()
        out.append("direct edges: " + (", ".join(f"{e['rule']} (score {e['score']:.3f})" for e in found) or "none"))
    cuts = _table(spark, cfg, tables.AUDIT, tables.CUT_EDGES)
    if cuts is not None:
        for c in cuts.filter((F.col("left_key") == lo) & (F.col("right_key") == hi)).collect():
            out.append(f"cut by the size guard: {c['rule']} score {c['score']:.3f} ({c['reason']})")

    pair_frame = records.filter(F.col("record_key").isin(lo, hi))
    keyed = keyed_records(pair_frame, matching.blocking.keys).groupBy("key", "value").count().filter("count = 2")
    shared = sorted(r["key"] for r in keyed.collect())
    out.append("blocking keys shared: " + (", ".join(shared) or "none (never compared by the model)"))

    pair = spark.createDataFrame([(lo, hi)], "left_key string, right_key string")
    u = matcher.u_probabilities(records, [f.name for f in matching.fields])
    compared = matcher.compare(records, pair, matching, u).first()
    try:
        model = matcher.latest_model(spark, model_dir(cfg, matching))
        scored = matcher.frequency_adjusted(records, zingg.score_pairs(spark, records, pair, model), matching).first()
        out.append(
            f"model {model.model_id}: score {scored['score']:.3f} (before name frequency "
            f"{scored['model_score']:.3f}); threshold {matching.clustering.model_threshold}, fields agreeing "
            f"{compared['agree']} (need {matching.clustering.min_agreeing_fields})"
        )
    except CdiError as exc:
        out.append(f"model: {exc}")
    out.append(f"field agreement weight {compared['weight']:.1f} bits")
    out.append(_side_by_side(fields, rows[lo], rows[hi], compared["levels"]))
    return "\n".join(out)


def explain_cluster(spark: SparkSession, cfg: PipelineConfig, cluster_id: str) -> str:
    """Text listing a cluster's records (fields side by side) and the edges that hold it together.

    Raises:
        CdiError: no such cluster, or resolve has not run.
    """
    matching = load_matching(cfg)
    clusters = _table(spark, cfg, tables.SILVER, tables.ENTITY_CLUSTERS)
    if clusters is None:
        raise CdiError("explain: silver.entity_clusters does not exist yet; run the resolve stage first")
    members = sorted(r["record_key"] for r in clusters.filter(F.col("cluster_id") == cluster_id).collect())
    if not members:
        raise CdiError(f"explain: no cluster {cluster_id!r} in silver.entity_clusters")
    records = silver_records(spark, cfg, matching)
    fields = [f.name for f in matching.fields if f.name in records.columns]
    rows = records.filter(F.col("record_key").isin(members)).select("record_key", *fields).orderBy("record_key")
    out = [f"cluster {cluster_id}: {len(members)} records"]
    for r in rows.limit(_MAX_CLUSTER_ROWS).collect():
        values = " | ".join(str(r[f]) if r[f] is not None else "-" for f in fields)
        out.append(f"  {r['record_key']}: {values}")
    out.append(f"  ({' | '.join(fields)})")
    edges = _table(spark, cfg, tables.SILVER, tables.MATCH_EDGES)
    if edges is not None:
        inside = edges.filter(F.col("left_key").isin(members) & F.col("right_key").isin(members)).orderBy(
            "left_key", "right_key", "rule"
        )
        out.append("edges:")
        for e in inside.limit(_MAX_CLUSTER_ROWS * 2).collect():
            out.append(f"  {e['left_key']} <-> {e['right_key']}: {e['rule']} (score {e['score']:.3f})")
    cuts = _table(spark, cfg, tables.AUDIT, tables.CUT_EDGES)
    if cuts is not None:
        cut = cuts.filter(F.col("left_key").isin(members) | F.col("right_key").isin(members)).collect()
        for c in cut:
            out.append(
                f"  cut: {c['left_key']} <-> {c['right_key']}: {c['rule']} (score {c['score']:.3f}, {c['reason']})"
            )
    return "\n".join(out)
