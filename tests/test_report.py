"""The run report: its figures equal counts taken from the tables another way, the HTML is one
self-contained page, and stages a run did not run are marked "not run".

One small lakehouse for the module: the real ingest and standardize stages on a generated
demo of 60 people (run ``r-main``), then resolve and golden tables written by hand for the same
run (no Zingg training), and a later run's edge that the report of ``r-main`` must not see.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from cdi_spark import delta_io, runs, tables
from cdi_spark.config import load_config
from cdi_spark.generate import generate
from cdi_spark.pipeline import run_pipeline
from cdi_spark.report import JOB_GROUP as REPORT_JOB_GROUP
from cdi_spark.report import report_paths, write_report, write_text
from cdi_spark.report.figures import SCORE_BINS

CONF = Path(__file__).resolve().parents[1] / "conf"
RUN, LATER, INGEST_ONLY = "r-main", "r-later", "r-ingest-only"
EDGES = [  # left_key, right_key, rule, score, run_id
    ("a:1", "a:2", "email", 1.0, RUN),
    ("a:3", "a:4", "email", 1.0, "r-before"),
    ("a:1", "b:1", "phone", 1.0, RUN),
    ("a:5", "b:2", "model", 0.97, RUN),
    ("a:6", "b:3", "model", 0.95, RUN),
    ("a:7", "b:4", "model", 0.81, "r-before"),
    ("a:8", "b:5", "model", 0.5, RUN),
    ("a:9", "b:6", "model", 1.0, RUN),
]
PROFILES = [("C1", False), ("C2", False), ("C3", True), ("C4", False)]  # customer_id, is_deleted
EVENTS = [(RUN, "create", "C1"), (RUN, "create", "C2"), (RUN, "merge", "C3"), (RUN, "retire", "C3"),
          ("r-before", "create", "C9")]  # fmt: skip


def _path(cfg, layer, name):
    return tables.table_path(cfg.lakehouse, layer, name)


def _resolve_and_golden_by_hand(spark, cfg) -> dict[str, int]:
    """Tables the resolve and golden stages would write for RUN; returns their versions."""
    meta = {"user_metadata": RUN}
    versions = {}
    edges = spark.createDataFrame(EDGES, "left_key string, right_key string, rule string, score double, run_id string")
    versions["silver.match_edges"] = delta_io.append(spark, edges, _path(cfg, tables.SILVER, tables.MATCH_EDGES),
                                                     **meta)
    # Clusters of silver records by family name: a spread of sizes from real records.
    silver = delta_io.read(spark, _path(cfg, tables.SILVER, tables.CUSTOMER_RECORDS))
    clusters = silver.select(
        "record_key", F.coalesce("family_name_key", "record_key").alias("cluster_id"), F.lit(RUN).alias("run_id")
    )
    versions["silver.entity_clusters"] = delta_io.append(
        spark, clusters, _path(cfg, tables.SILVER, tables.ENTITY_CLUSTERS), **meta
    )
    profiles = spark.createDataFrame([(c, d, RUN) for c, d in PROFILES], "customer_id string, is_deleted boolean, "
                                                                         "run_id string")  # fmt: skip
    versions["gold.customer_profile"] = delta_io.append(
        spark, profiles, _path(cfg, tables.GOLD, tables.CUSTOMER_PROFILE), **meta
    )
    events = spark.createDataFrame(EVENTS, "run_id string, event string, customer_id string")
    versions["audit.id_events"] = delta_io.append(spark, events, _path(cfg, tables.AUDIT, tables.ID_EVENTS), **meta)
    return versions


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory):
    """(cfg, RUN's report paths) after RUN ran ingest + standardize for real and the rest by hand."""
    base = tmp_path_factory.mktemp("report")
    generate(spark, base / "data", people=60, seed=3)
    cfg = load_config(CONF / "pipeline.yml", lakehouse=str(base / "lakehouse"), raw_dir=str(base / "data" / "raw"),
                      stages=["ingest", "standardize"])  # fmt: skip
    run_pipeline(spark, cfg, run_id=RUN)
    record = runs.read_run(spark, cfg.lakehouse, RUN)
    versions = _resolve_and_golden_by_hand(spark, cfg)
    runs.record_run(spark, cfg.lakehouse, dataclasses.replace(
        record, stages=(*record.stages, "resolve", "golden"), versions={**record.versions, **versions},
        seconds={**record.seconds, "resolve": 12.5, "golden": 3.25}))  # fmt: skip
    # A later run adds an edge: RUN's report reads the edges as RUN left them.
    later = spark.createDataFrame([("z:1", "z:2", "model", 0.99, LATER)], "left_key string, right_key string, "
                                                                        "rule string, score double, run_id string")
    version = delta_io.append(spark, later, _path(cfg, tables.SILVER, tables.MATCH_EDGES), user_metadata=LATER)
    runs.record_run(spark, cfg.lakehouse, runs.RunRecord(
        LATER, record.started_at + timedelta(hours=1), ("resolve",), versions={"silver.match_edges": version}))
    return cfg, write_report(spark, cfg, RUN)


def _figures(paths) -> dict:
    return json.loads(Path(paths.json).read_text())


def _rows(spark, cfg, layer, name, where):
    path = _path(cfg, layer, name)
    return delta_io.read(spark, path).filter(where).collect() if delta_io.exists(spark, path) else []


@pytest.mark.slow  # the module's lakehouse runs the real ingest and standardize stages
def test_report_files_sit_under_the_lakehouse(lake):
    cfg, paths = lake
    assert paths == report_paths(cfg.lakehouse, RUN)
    assert paths.html == f"{Path(cfg.lakehouse).resolve()}/reports/{RUN}/report.html"
    assert Path(paths.html).is_file() and Path(paths.json).is_file()


@pytest.mark.slow
def test_flow_and_quarantine_equal_bronze_and_quarantine_rows(spark, lake):
    cfg, paths = lake
    flow, quarantine = _figures(paths)["sections"]["flow"], _figures(paths)["sections"]["quarantine"]
    bronze, quarantined, reasons = Counter(), Counter(), {}
    for source in (s.name for s in cfg.sources):
        bronze[source] = len(_rows(spark, cfg, tables.BRONZE, source, F.col(tables.BATCH_ID) == RUN))
        rows = _rows(spark, cfg, tables.QUARANTINE, source, F.col(tables.BATCH_ID) == RUN)
        quarantined[source] = len(rows)
        if rows:
            reasons[source] = dict(Counter(r[tables.Q_REASON] for r in rows))
    assert flow["status"] == "ok" and flow["not_run"] == []
    assert flow["this_run"]["bronze"] == dict(bronze)
    assert flow["this_run"]["quarantined"] == dict(quarantined)
    assert flow["this_run"]["read"] == {s: bronze[s] + quarantined[s] for s in bronze}  # read = bronze + quarantine
    assert quarantine["rows"] == reasons and quarantine["total"] == sum(quarantined.values()) > 0

    silver = _rows(spark, cfg, tables.SILVER, tables.CUSTOMER_RECORDS, F.col("run_id") == RUN)
    assert flow["this_run"]["silver"] == dict(Counter(r["source"] for r in silver))
    cluster_ids = [r["cluster_id"] for r in _rows(spark, cfg, tables.SILVER, tables.ENTITY_CLUSTERS, "true")]
    assert flow["after_run"] == {"records": len(cluster_ids), "clusters": len(set(cluster_ids)),
                                 "customers": sum(not deleted for _, deleted in PROFILES)}  # fmt: skip
    assert flow["totals"] == {k: sum(v.values()) for k, v in flow["this_run"].items()}


@pytest.mark.slow
def test_quality_figures_equal_audit_data_quality(spark, lake):
    cfg, paths = lake
    section = _figures(paths)["sections"]["data_quality"]
    rows = _rows(spark, cfg, tables.AUDIT, tables.DATA_QUALITY, F.col("run_id") == RUN)
    assert section["status"] == "ok" and rows
    expected = {}
    for r in rows:  # the rates the standardize stage stored
        expected.setdefault(r["source"], {})[r["field"]] = {k: r[k] for k in ("records", "filled", "invalid",
                                                                              "fill_rate", "invalid_rate")}
    assert section["sources"].keys() == expected.keys()
    for source, fields in expected.items():
        for name, values in fields.items():
            assert section["sources"][source][name] == pytest.approx(values), (source, name)


@pytest.mark.slow
def test_matching_figures_equal_the_tables_as_the_run_left_them(spark, lake):
    cfg, paths = lake
    section = _figures(paths)["sections"]["matching"]
    assert section["status"] == "ok"
    # The later run's edge is in the table now, but not in RUN's figures.
    assert delta_io.read(spark, _path(cfg, tables.SILVER, tables.MATCH_EDGES)).count() == len(EDGES) + 1
    rules = {}
    for _, _, rule, _, run_id in EDGES:
        counts = rules.setdefault(rule, {"total": 0, "this_run": 0})
        counts["total"] += 1
        counts["this_run"] += run_id == RUN
    assert section["edges_per_rule"] == rules
    scores = [score for _, _, rule, score, _ in EDGES if rule == "model"]
    expected, bins = np.histogram(scores, bins=SCORE_BINS)
    assert section["score_histogram"] == {"bins": list(bins), "counts": expected.tolist()}
    sizes = Counter(Counter(r["cluster_id"] for r in _rows(spark, cfg, tables.SILVER, tables.ENTITY_CLUSTERS,
                                                            "true")).values())  # fmt: skip
    assert section["cluster_sizes"] == [{"size": s, "clusters": n} for s, n in sorted(sizes.items())]
    assert section["totals"]["largest_cluster"] == max(sizes) and section["totals"]["edges"] == len(EDGES)


@pytest.mark.slow
def test_id_events_and_timings_equal_the_tables(spark, lake):
    cfg, paths = lake
    figures = _figures(paths)
    assert figures["sections"]["id_events"] == {"status": "ok", "counts": {"create": 2, "merge": 1, "retire": 1},
                                                "total": 4}  # fmt: skip
    record = runs.read_run(spark, cfg.lakehouse, RUN)
    assert set(record.seconds) == {"ingest", "standardize", "resolve", "golden"}  # finish_run recorded the first two
    assert record.seconds["ingest"] > 0 and record.seconds["standardize"] > 0
    timings = figures["sections"]["timings"]
    assert list(timings["seconds"]) == ["ingest", "standardize", "resolve", "golden"]
    assert timings["seconds"] == record.seconds and timings["total"] == pytest.approx(sum(record.seconds.values()))
    assert figures["run"]["status"] == "succeeded" and figures["run"]["config_hash"] == record.config_hash
    assert figures["run"]["started_at"] == record.started_at.isoformat()


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.sources, self.sections, self.text = [], [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs["src"])
        if "href" in attrs or tag in ("link", "script"):
            self.sources.append(attrs.get("href") or attrs.get("src") or tag)
        if tag == "section":
            self.sections.append(attrs["id"])

    def handle_data(self, data):
        self.text.append(data)


def _page(path) -> _Page:
    page = _Page()
    page.feed(Path(path).read_text(encoding="utf-8"))
    page.close()
    return page


@pytest.mark.slow
def test_html_is_self_contained_with_png_charts(lake):
    _, paths = lake
    page = _page(paths.html)
    assert page.sections == ["flow", "data_quality", "quarantine", "matching", "id_events", "timings"]
    assert len(page.images) == 6  # one chart per section
    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert all(href.startswith("#") for href in page.sources)  # in-page links only: no files, no server
    text = " ".join(page.text)
    record = _figures(paths)["run"]
    assert RUN in text and "succeeded" in text and record["config_hash"] in text and record["started_at"] in text


@pytest.mark.slow
def test_ingest_only_run_reports_other_stages_as_not_run(spark, lake):
    cfg, _ = lake
    run_pipeline(spark, cfg.with_stages(["ingest"]), run_id=INGEST_ONLY)  # every file already loaded
    paths = write_report(spark, cfg, INGEST_ONLY)
    sections = _figures(paths)["sections"]
    assert {name: s["status"] for name, s in sections.items()} == {
        "flow": "no data", "data_quality": "not run", "quarantine": "no data", "matching": "not run",
        "id_events": "not run", "timings": "ok"}  # fmt: skip
    assert sections["flow"]["not_run"] == ["standardize", "resolve", "golden"]
    assert sections["matching"]["edges_per_rule"] is None and list(sections["timings"]["seconds"]) == ["ingest"]
    page = _page(paths.html)
    assert " ".join(page.text).count("not run") >= 3 and len(page.images) == 1  # the timings chart


@pytest.mark.slow
def test_unrecorded_run_gets_a_report_without_run_facts_in_its_own_job_group(spark, lake):
    cfg, _ = lake
    sc = spark.sparkContext
    sc.setJobGroup("caller", "a caller counting its own jobs, as the benchmark does")
    try:
        figures = _figures(write_report(spark, cfg, "r-never-ran"))
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)
    assert figures["run"] == {"run_id": "r-never-ran", "recorded": False}
    assert {s["status"] for s in figures["sections"].values()} == {"no data", "ok"}
    assert not sc.statusTracker().getJobIdsForGroup("caller")
    assert sc.statusTracker().getJobIdsForGroup(REPORT_JOB_GROUP)


def test_run_ids_that_are_not_folder_names_are_refused():
    for bad in ("", "..", "a/b"):
        with pytest.raises(ValueError, match="cannot name a report folder"):
            report_paths("lake", bad)


def test_write_text_goes_through_hadoop_for_uris(spark, tmp_path):
    target = tmp_path / "deep" / "report.html"
    write_text(spark, target.as_uri(), "<p>ü</p>")
    write_text(spark, target.as_uri(), "<p>é</p>")  # replaced
    assert target.read_text(encoding="utf-8") == "<p>é</p>"


def test_runs_table_written_before_seconds_existed_gains_the_column(spark, tmp_path):
    lakehouse = str(tmp_path / "lake")
    old = StructType([f for f in runs.RUNS_SCHEMA.fields if f.name != "seconds"])
    started = datetime(2026, 1, 1, tzinfo=UTC)
    row = ("old", started, None, "succeeded", None, [], None, {}, {}, {})
    delta_io.append(spark, spark.createDataFrame([row], old), runs.runs_path(lakehouse))
    runs.record_run(spark, lakehouse, runs.RunRecord("new", started, seconds={"ingest": 1.5}))
    assert runs.read_run(spark, lakehouse, "old").seconds == {}
    assert runs.read_run(spark, lakehouse, "new").seconds == {"ingest": 1.5}
