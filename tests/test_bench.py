"""The benchmark's plumbing: medians, the table, memory probes, and one tiny run end to end.

No test here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import pytest

from cdi_spark import bench
from cdi_spark.bench import StageRun
from cdi_spark.errors import ConfigError

CONF = Path(__file__).resolve().parents[1] / "conf"


def _run(stage: str, seconds: float, heap: float, sources: dict | None = None) -> StageRun:
    return StageRun(stage, seconds, 1000, 990, 12, heap, 900.0, None, {"rows_read": 1000}, sources or {})


def test_summary_takes_medians_over_repeats_and_rows_per_second_from_the_median():
    ingest = {"crm": {"seconds": 4.0, "rows_read": 400, "rows_bronze": 390, "rows_quarantined": 10, "files": 2}}
    repeats = [
        [_run("ingest", 10.0, 300.0, ingest), _run("standardize", 4.0, 200.0)],
        [_run("ingest", 30.0, 100.0, {"crm": {**ingest["crm"], "seconds": 2.0}}), _run("standardize", 6.0, 400.0)],
        [_run("ingest", 20.0, 200.0, {"crm": {**ingest["crm"], "seconds": 8.0}}), _run("standardize", 5.0, 300.0)],
    ]
    summary = bench.summarize(repeats)
    assert list(summary) == ["ingest", "standardize"]
    assert (summary["ingest"]["seconds"], summary["ingest"]["rows_per_s"]) == (20.0, 50)
    assert summary["ingest"]["seconds_all"] == [10.0, 30.0, 20.0]
    assert summary["ingest"]["heap_peak_mb"] == 200.0 and summary["ingest"]["executor_peak_mb"] is None
    assert summary["ingest"]["sources"]["crm"]["seconds"] == 4.0
    assert summary["ingest"]["sources"]["crm"]["rows_per_s"] == 100
    assert summary["standardize"]["seconds"] == 5.0


def test_table_has_a_line_per_stage_and_per_ingest_source():
    ingest = {"crm": {"seconds": 4.0, "rows_read": 400, "rows_bronze": 390, "rows_quarantined": 10, "files": 2}}
    summary = bench.summarize([[_run("ingest", 10.0, 300.0, ingest), _run("standardize", 4.0, 200.0)]])
    table = bench.format_table(1000, summary, 1).splitlines()
    assert table[0] == "cdi-spark bench: 1,000 people, median of 1 run(s)"
    assert table[3].split()[:5] == ["ingest", "10.0", "1,000", "990", "100"]
    assert table[4].split()[0] == "standardize" and table[4].split()[-1] == "-"  # no executor figure
    assert table[-1].split() == ["crm", "4.0", "400", "390", "10", "100"]


def test_process_tree_rss_counts_this_process():
    if not Path("/proc/self/statm").exists():
        pytest.skip("needs /proc")
    with bench.RssSampler(every=0.05) as rss:
        pass
    assert rss.peak > 10 * bench.MB


def test_heap_peak_is_measured_after_a_reset(spark):
    bench.reset_heap_peaks(spark)
    spark.range(1000).count()
    assert bench.heap_peak_bytes(spark) > 0


def _prepared(tmp_path: Path, people: int, seed: int) -> Path:
    """A config with one CSV source and bench data for it that needs no generating."""
    (tmp_path / "sources").mkdir()
    (tmp_path / "sources" / "orders.yml").write_text(
        "name: orders\nsystem: shop\nformat: csv\npath: '*/orders/*.csv'\nprimary_key: [order_id]\n"
        "columns:\n  - {name: order_id, required: true}\n  - {name: total, type: double}\n"
    )
    config = tmp_path / "pipeline.yml"
    config.write_text(
        "stages: [ingest]\nprofile: test\nprofiles:\n  test:\n    master: local[2]\n"
        + "".join(f"{key}: {CONF / name}\n" for key, name in
                  (("matching", "matching.yml"), ("survivorship", "survivorship.yml"), ("quality", "quality.yml")))
    )  # fmt: skip
    data = tmp_path / "bench" / f"people-{people}-seed-{seed}"
    (data / "raw" / "day1" / "orders").mkdir(parents=True)
    (data / "raw" / "day1" / "orders" / "a.csv").write_text("order_id,total\no1,1.5\no2,x\no3,3\no3,3\n")
    (data / bench.MARKER).write_text(json.dumps({"people": people, "seed": seed, "batch": "day1"}))
    return config


@pytest.mark.slow
def test_bench_runs_the_stages_on_prepared_data_and_appends_one_result_line(spark, tmp_path, capsys):
    config = _prepared(tmp_path, people=10, seed=7)
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    results = tmp_path / "results.jsonl"
    args = parser.parse_args(["--config", str(config), "--people", "10", "--seed", "7", "--repeat", "2",
                              "--data-dir", str(tmp_path / "bench"), "--results", str(results),
                              "--reports", str(tmp_path / "reports")])  # fmt: skip
    assert bench.cmd_bench(args) == 0

    assert "ingest" in capsys.readouterr().out
    (line,) = results.read_text().splitlines()
    record = json.loads(line)
    assert (record["people"], record["seed"], record["repeats"]) == (10, 7, 2)
    assert record["machine"]["cores"] == os.cpu_count() and len(record["runs"]) == 2
    ingest = record["stages"]["ingest"]
    assert (ingest["rows_in"], ingest["rows_out"], ingest["counts"]["rows_quarantined"]) == (4, 2, 2)
    assert ingest["sources"]["orders"]["rows_read"] == 4 and ingest["jobs"] > 0
    assert ingest["heap_peak_mb"] > 0 and ingest["rss_peak_mb"] > 0
    assert record["io_floor"]["rows"] == 4 and record["io_floor"]["seconds"] > 0  # read and written, nothing checked
    written = sorted(p.suffix for p in (tmp_path / "reports").iterdir())
    assert written == [".json", ".md", ".png"]


def _day2_prepared(tmp_path: Path, day2_csv: str) -> tuple[argparse.ArgumentParser, list[str], Path]:
    """Prepared day 1 data, a day-2 batch of share 0.05 holding ``day2_csv``; the bench's
    parser, its common arguments and the results file."""
    config = _prepared(tmp_path, people=10, seed=7)
    day2 = tmp_path / "bench" / "people-10-seed-7-day2-share-0.05"
    (day2 / "raw" / "day2" / "orders").mkdir(parents=True)
    (day2 / "raw" / "day2" / "orders" / "b.csv").write_text(day2_csv)
    (day2 / bench.MARKER).write_text(json.dumps({"people": 10, "seed": 7, "batch": "day2", "day2_share": 0.05}))
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    results = tmp_path / "results.jsonl"
    common = ["--config", str(config), "--people", "10", "--seed", "7", "--day2-share", "0.05",
              "--data-dir", str(tmp_path / "bench"), "--results", str(results), "--reports", str(tmp_path / "reports")]
    return parser, common, results


@pytest.mark.slow
def test_bench_day2_runs_the_next_batch_incrementally_on_the_last_lakehouse(spark, tmp_path, capsys):
    from cdi_spark import delta_io

    parser, common, results = _day2_prepared(tmp_path, "order_id,total\no4,4\no5,5\no6,y\n")
    assert bench.cmd_bench(parser.parse_args([*common, "--day2"])) == 0

    assert "day 2 on top of 10 people" in capsys.readouterr().out
    record = json.loads(results.read_text())
    ingest = record["day2"]["stages"]["ingest"]
    assert (ingest["rows_in"], ingest["rows_out"], ingest["counts"]["rows_quarantined"]) == (3, 2, 1)
    assert record["day2"]["ratio_to_full"] > 0 and record["day2"]["id_stability"] is None  # no golden stage
    assert record["day2"]["share"] == 0.05
    lakehouse = tmp_path / "bench" / "lakehouse"
    assert delta_io.read(spark, str(lakehouse / "bronze" / "orders")).count() == 4  # day 1's 2 rows kept
    runs = delta_io.read(spark, str(lakehouse / "audit" / "runs")).select("run_id").collect()
    assert len(runs) == 2 and record["day2"]["run_id"] in {r["run_id"] for r in runs}  # one row per pass

    # the lakehouse now holds day 2 as well: --on-last-run refuses to add it again
    with pytest.raises(ConfigError, match="holds 2 run"):
        bench.cmd_bench(parser.parse_args([*common, "--day2", "--on-last-run"]))


@pytest.mark.slow
def test_bench_on_last_run_runs_day2_on_the_lakehouse_a_full_run_left(spark, tmp_path, capsys):
    from cdi_spark import delta_io

    parser, common, results = _day2_prepared(tmp_path, "order_id,total\no4,4\n")
    common.append("--no-floor")
    with pytest.raises(ConfigError, match="has no full run of 10 people"):
        bench.cmd_bench(parser.parse_args([*common, "--day2", "--on-last-run"]))
    assert bench.cmd_bench(parser.parse_args(common)) == 0
    full = json.loads(results.read_text())

    with pytest.raises(ConfigError, match="nothing to do"):
        bench.cmd_bench(parser.parse_args([*common, "--on-last-run"]))
    assert bench.cmd_bench(parser.parse_args([*common, "--day2", "--on-last-run"])) == 0

    _, record = [json.loads(line) for line in results.read_text().splitlines()]
    assert record["on_last_run"] and record["full_run_date"] == full["date"] and record["stages"] == full["stages"]
    assert record["day2"]["full_seconds"] == round(sum(s["seconds"] for s in full["stages"].values()), 1)
    assert record["day2"]["stages"]["ingest"]["rows_out"] == 1
    assert delta_io.read(spark, str(tmp_path / "bench" / "lakehouse" / "bronze" / "orders")).count() == 3
    assert any("(the full run of" in p.read_text() for p in (tmp_path / "reports").glob("*.md"))


def _result(people: int, seconds: dict[str, float], floor: float | None = None) -> dict:
    stages = {name: {"seconds": t, "rows_in": people * 10, "rows_out": people * 10, "rows_per_s": None}
              for name, t in seconds.items()}  # fmt: skip
    machine = {"cores": 2, "memory_gb": 24.0, "spark": "3.5.3", "python": "3.11", "load_avg_before": [1.0, 1.0, 1.0]}
    return {"date": "2026-11-23T10:00:00+00:00", "commit": "abc", "dirty": False, "repeats": 1, "machine": machine,
            "people": people, "stages": stages, "io_floor": floor and {"seconds": floor, "rows": people * 10}}


def test_growth_exponent_is_the_log_log_slope_between_the_two_largest_sizes():
    from cdi_spark.bench_report import TOTAL, growth_exponents

    results = [_result(1000, {"ingest": 1.0, "resolve": 1.0}), _result(2000, {"ingest": 5.0, "resolve": 3.0}),
               _result(4000, {"ingest": 10.0, "resolve": 12.0})]  # fmt: skip
    exponents = growth_exponents(results)
    assert exponents["ingest"] == pytest.approx(1.0) and exponents["resolve"] == pytest.approx(2.0)
    assert exponents[TOTAL] == pytest.approx(1.4594, abs=1e-4)  # 8 s -> 22 s over doubled people
    assert growth_exponents(results[:1]) == {}


def test_markdown_flags_a_superlinear_stage_and_gives_ratios_to_the_floor(tmp_path):
    from cdi_spark.bench_report import markdown, write_reports

    results = [_result(1000, {"ingest": 2.0, "resolve": 1.0}, floor=1.0),
               _result(2000, {"ingest": 4.0, "resolve": 4.0}, floor=2.0)]  # fmt: skip
    text = markdown(results)
    assert "| 2,000 | resolve | 4.0 | 20,000 | 20,000 | – | 2.0 | – | – | **2.00** (above 1.15) |" in text
    assert "| 2,000 | ingest | 4.0 | 20,000 | 20,000 | – | 2.0 | – | – | 1.00 |" in text
    assert "| 1,000 | **whole run** | 3.0 | | | | 3.0 |" in text
    assert "Match quality" not in text  # no size measured it
    quality = {"precision": 0.99, "recall": 0.98, "f1": 0.985, "bcubed_f1": 0.99, "adjusted_rand": 0.97,
               "records": 4000, "clusters": 1900, "largest_cluster": 6}  # fmt: skip
    assert "| 2,000 | 0.9900 | 0.9800 | 0.9850 | 0.9900 | 0.9700 | 4,000 | 1,900 | 6 |" in markdown(
        [results[0], {**results[1], "quality": quality}])
    assert "Peer" not in text
    peer = {"seconds": 2.0, "quality": {**quality, "f1": 0.9, "bcubed_f1": 0.95}}
    peered = markdown([results[0], {**results[1], "quality": quality, "peer": peer}])
    # our resolve 4.0 s against the peer's 2.0 s; our F1 0.985 against its 0.9
    assert "| 2,000 | 4.0 | 2.0 | 2.00 | 0.9850 | 0.9000 | 1.094 | 0.9900 | 0.9500 |" in peered
    paths = write_reports(results, tmp_path)
    assert [p.name for p in paths] == ["2026-11-23T100000-1000.json", "2026-11-23T100000-2000.json",
                                       "2026-11-23T100000-1000-2000.md", "2026-11-23T100000-1000-2000.png"]
    assert paths[-1].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_io_floor_reads_parquet_files_whose_schemas_clash_one_schema_at_a_time(spark, tmp_path):
    """An export that once wrote a timestamp column as text: one plain read of both files fails."""
    from datetime import datetime

    from cdi_spark.config import PipelineConfig, SourceConfig

    raw = tmp_path / "raw" / "events"
    spark.createDataFrame([("e1", datetime(2024, 1, 1)), ("e2", datetime(2024, 1, 2))], "id string, ts timestamp") \
        .coalesce(1).write.parquet(str(raw / "good"))
    spark.createDataFrame([("e3", "not a time")], "id string, ts string").coalesce(1).write.parquet(str(raw / "bad"))
    cfg = PipelineConfig()
    source = SourceConfig(name="events", system="product", format="parquet", path="events/*/*.parquet",
                          primary_key=("id",))  # fmt: skip
    object.__setattr__(cfg, "sources", (source,))

    floor = bench.io_floor(spark, cfg, raw_dir=str(tmp_path / "raw"), out=tmp_path / "floor")

    assert floor["rows"] == 3 and set(floor["sources"]) == {"events"}
    assert sorted(p.name for p in (tmp_path / "floor" / "events").iterdir()) == ["schema-0", "schema-1"]


def test_match_quality_compares_the_clusters_with_the_generators_truth(spark, tmp_path):
    from cdi_spark import delta_io, tables

    truth = spark.createDataFrame(  # crm:4 was quarantined: in the truth, not in silver
        [("crm", "1", 10), ("shop", "1", 10), ("crm", "2", 20), ("shop", "2", 20), ("crm", "3", 30), ("crm", "4", 40)],
        "source string, record_id string, person_id long",
    )
    truth.write.parquet(str(tmp_path / "truth" / "person_records"))
    clusters = spark.createDataFrame(  # one missed pair (2), one false merge (1 with 3)
        [("crm:1", "crm:1"), ("shop:1", "crm:1"), ("crm:3", "crm:1"), ("crm:2", "crm:2"), ("shop:2", "shop:2")],
        "record_key string, cluster_id string",
    )
    delta_io.append(spark, clusters, tables.table_path(str(tmp_path / "lake"), tables.SILVER, tables.ENTITY_CLUSTERS))

    quality = bench.match_quality(spark, tmp_path / "lake", tmp_path / "truth")

    # true pairs {crm:1-shop:1, crm:2-shop:2}; predicted {crm:1-shop:1, crm:1-crm:3, shop:1-crm:3}
    assert (quality["true_pairs"], quality["predicted_pairs"]) == (2, 3)
    assert (quality["precision"], quality["recall"]) == (round(1 / 3, 4), 0.5)
    assert (quality["records"], quality["only_in_truth"], quality["largest_cluster"]) == (5, 1, 3)
    assert "pairwise P 0.3333 R 0.5000" in bench.format_quality(10, quality)
    assert bench.match_quality(spark, tmp_path / "empty", tmp_path / "truth") is None


PEER_PYTHON = Path(__file__).resolve().parents[1] / bench.DEFAULT_PEER_PYTHON


@pytest.mark.slow
@pytest.mark.skipif(not PEER_PYTHON.is_file(), reason="no peer venv: make setup-peer (make test makes it)")
def test_the_peer_resolves_silver_records_and_is_scored_like_our_clusters(spark, tmp_path):
    from datetime import date

    from pyspark.sql import functions as F

    from cdi_spark import delta_io, tables

    people = [  # (given, family, email, phone, birth date, postcode, city); person i has records i*10 + k
        ("anna", "schmidt", "anna.schmidt@mail.de", "+4915112345678", date(1980, 5, 1), "10115", "berlin"),
        ("bob", "jones", "bob.jones@mail.com", "+442071234567", date(1975, 2, 3), "SW1A1AA", "london"),
        ("chen", "wei", "chen.wei@mail.cn", "+8613800138000", date(1990, 7, 9), "100000", "beijing"),
        ("dora", "silva", "dora.silva@mail.pt", "+351912345678", date(1985, 1, 30), "1000-001", "lisboa"),
        ("emil", "novak", "emil.novak@mail.cz", "+420601123456", date(1970, 12, 24), "11000", "praha"),
        ("fay", "olsen", "fay.olsen@mail.dk", "+4520123456", date(1995, 3, 14), "1050", "kobenhavn"),
    ]
    rows, truth = [], []
    for i, (given, family, email, phone, born, postcode, city) in enumerate(people):
        for k in range(3):  # the same person three times: one without email, one without phone
            key = f"{i * 10 + k}"
            rows.append((f"crm_contacts:{key}", given, family, None if k == 1 else email, None if k == 2 else phone,
                         born, "1 main street", "1", postcode, city, "DE"))  # fmt: skip
            truth.append(("crm_contacts", key, i))
    schema = ("record_key string, given_name_key string, family_name_key string, email_key string, "
              "phone_e164 string, birth_date date, street string, street_number string, postcode string, "
              "city string, country string")  # fmt: skip
    lakehouse = tmp_path / "lakehouse"
    delta_io.append(spark, spark.createDataFrame(rows, schema).withColumn("source", F.lit("crm_contacts")),
                    tables.table_path(str(lakehouse), tables.SILVER, tables.CUSTOMER_RECORDS))  # fmt: skip
    spark.createDataFrame(truth, "source string, record_id string, person_id long").write.parquet(
        str(tmp_path / "truth" / "person_records"))

    peer = bench.run_peer(spark, lakehouse, tmp_path / "truth", tmp_path / "peer", python=str(PEER_PYTHON),
                          threads=2, seed=7)  # fmt: skip

    assert peer["quality"]["records"] == 18 and peer["quality"]["only_in_truth"] == 0
    assert peer["report"]["records"] == 18 and peer["seconds"] > 0 and peer["export_seconds"] > 0
    assert peer["quality"]["precision"] == 1.0  # six people who share nothing are never merged
    assert "our resolve took" in bench.format_peer(6, peer, 10.0, peer["quality"])
