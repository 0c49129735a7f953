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
                              "--data-dir", str(tmp_path / "bench"), "--results", str(results)])  # fmt: skip
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
