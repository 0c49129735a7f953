"""The demo end to end: generated exports -> bronze (+ quarantine) -> silver -> clusters, twice."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from cdi_spark import delta_io
from cdi_spark.cli import main
from cdi_spark.config import load_config
from cdi_spark.lakehouse import summarize

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


def _table(spark, base, layer, name):
    return delta_io.read(spark, str(base / "lakehouse" / layer / name))


def test_every_source_lands_in_bronze_and_rows_add_up(spark, demo):
    base, _ = demo
    tables = {(t.layer, t.name): t for t in summarize(spark, base / "lakehouse")}
    sources = [p.stem for p in (ROOT / "conf" / "sources").glob("*.yml")]
    for source in sources:
        assert ("bronze", source) in tables, source
    manifest = _table(spark, base, "audit", "ingest_manifest")
    totals = manifest.agg(*[F.sum(c).alias(c) for c in ("rows_read", "rows_bronze", "rows_quarantined")]).first()
    assert totals.rows_read == totals.rows_bronze + totals.rows_quarantined
    bronze_rows = sum(t.rows for (layer, _), t in tables.items() if layer == "bronze")
    quarantine_rows = sum(t.rows for (layer, _), t in tables.items() if layer == "quarantine")
    assert (bronze_rows, quarantine_rows) == (totals.rows_bronze, totals.rows_quarantined)


def test_planted_bad_rows_are_quarantined_with_a_reason(spark, demo):
    base, _ = demo
    planted = spark.read.option("header", True).csv(str(base / "data" / "truth" / "malformed.csv"))
    for source in [r.source for r in planted.select("source").distinct().collect()]:
        quarantined = _table(spark, base, "quarantine", source)
        assert quarantined.filter(F.col("_reason").isNull()).count() == 0
        assert quarantined.count() >= 1, source


def test_silver_holds_one_canonical_record_per_person_bearing_source_record(spark, demo):
    base, _ = demo
    silver = _table(spark, base, "silver", "customer_records")
    assert silver.count() == silver.select("record_key").distinct().count()
    truth = spark.read.parquet(str(base / "data" / "truth" / "person_records"))
    mapped = [s.name for s in load_config(ROOT / "conf" / "pipeline.yml").sources if s.mapping]
    record_key = F.concat_ws(":", "source", "record_id").alias("record_key")
    keys = truth.filter(F.col("source").isin(mapped)).select(record_key)
    assert keys.join(silver, "record_key", "left_anti").count() == 0
    assert silver.filter(F.col("email").isNotNull() & ~F.col("email_valid")).count() < 0.05 * silver.count()
    quality = _table(spark, base, "audit", "data_quality")
    assert quality.select("source").distinct().count() == silver.select("source").distinct().count()


def test_resolve_clusters_every_record_and_matches_the_truth(spark, demo):
    from cdi_spark.evaluate import evaluate
    from cdi_spark.resolve.explain import explain_cluster, explain_pair
    from cdi_spark.resolve.labels import read_generated_truth

    base, _ = demo
    silver = _table(spark, base, "silver", "customer_records")
    clusters = _table(spark, base, "silver", "entity_clusters")
    assert clusters.count() == silver.count() == clusters.select("record_key").distinct().count()
    labels = _table(spark, base, "silver", "match_labels")
    assert labels.filter(F.col("origin") != "truth").count() == 0
    assert 40 <= labels.count() <= 400
    models = _table(spark, base, "audit", "match_models").collect()
    assert len(models) == 1 and not models[0]["bootstrapped"]
    edges = _table(spark, base, "silver", "match_edges")
    assert {r["rule"] for r in edges.select("rule").distinct().collect()} >= {"email", "model"}

    truth = read_generated_truth(spark, str(base / "data" / "truth")).withColumnRenamed("record_key", "record_id")
    result = evaluate(truth, clusters.withColumnRenamed("record_key", "record_id"), allow_missing=True)
    assert result.precision >= 0.95 and result.recall >= 0.95, result

    cfg = load_config(ROOT / "conf" / "pipeline.yml", lakehouse=str(base / "lakehouse"))
    edge = edges.filter(F.col("rule") == "model").first()
    text = explain_pair(spark, cfg, edge["left_key"], edge["right_key"])
    assert "direct edges: model" in text and "given_name_key" in text
    cluster_id = clusters.filter(F.col("record_key") == edge["left_key"]).first()["cluster_id"]
    assert f"<-> {edge['right_key']}: model" in explain_cluster(spark, cfg, cluster_id)


def test_each_run_leaves_its_report_beside_the_tables(spark, demo):
    base, _ = demo
    runs = _table(spark, base, "audit", "runs").filter(F.col("status") == "succeeded").collect()
    assert runs
    for run in runs:
        folder = base / "lakehouse" / "reports" / run["run_id"]
        figures = json.loads((folder / "report.json").read_text())
        assert figures["sections"], run["run_id"]
        html = (folder / "report.html").read_text()
        assert run["run_id"] in html and "data:image/png;base64," in html


def test_second_run_adds_no_rows(spark, demo):
    base, args = demo
    before = {(t.layer, t.name): t.rows for t in summarize(spark, base / "lakehouse")}
    assert main(args) == 0
    after = {(t.layer, t.name): t.rows for t in summarize(spark, base / "lakehouse")}
    changed = {k for k in before if before[k] != after.get(k) and k[0] != "audit"}
    assert changed == set()
    assert json.loads((base / "data" / "_demo.json").read_text())["people"] == 200


def test_job_script_reports_a_config_error_without_a_traceback(tmp_path):
    bad = tmp_path / "pipeline.yml"
    bad.write_text("lakehouse: x\nstagez: [ingest]\n")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "jobs" / "run_pipeline.py"), "--config", str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "stagez: unknown key" in proc.stderr
    assert "Traceback" not in proc.stderr
