"""Golden profiles end to end: day 1, an incremental day 2, a run killed between stages, a full rebuild.

Day 1 is the demo lakehouse (built by the session fixture); day 2 is the shared day-2 copy
(:func:`lakehouse_copies.day2_copy`: the generator's day-2 batch plus a support user who
bridges two customers, run incrementally). Tests that write work on copies of their own:

* ``killed``: day 1 as day 2 found it, the same day-2 run killed (SIGKILL) right after its
  resolve stage, then run again;
* ``rebuilt``: bronze, the labels and the model of day 2 with every derived table removed,
  then standardize, resolve and golden from scratch.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from lakehouse_copies import day2_copy
from pyspark.sql import functions as F

from cdi_spark import delta_io
from cdi_spark.cli import main
from cdi_spark.golden import history, publish

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
CONFIG = str(ROOT / "conf" / "pipeline.yml")
# Derived tables a full rebuild starts without (bronze, labels and models are kept).
DERIVED = ("silver/customer_records", "silver/entity_clusters", "silver/match_edges", "silver/oversized_keys", "gold",
           "audit/standardized_batches", "audit/golden_runs", "audit/id_events", "audit/resolve_runs")


def _run(lakehouse: Path, raw: Path, *extra: str) -> None:
    assert main(["run", "--config", CONFIG, "--lakehouse", str(lakehouse), "--raw-dir", str(raw), *extra]) == 0


def _gold(spark, lakehouse: Path, name: str, version: int | None = None):
    return delta_io.read(spark, str(lakehouse / "gold" / name), version=version)


def _live(spark, lakehouse: Path, name: str):
    return _gold(spark, lakehouse, name).filter(~F.col(publish.IS_DELETED)).drop(*publish.BOOKKEEPING)


def _content(spark, lakehouse: Path, name: str) -> set[tuple]:
    """Every row as (key, content hash, deleted): equal sets mean equal tables (maps cannot be compared)."""
    key = "record_key" if name == "customer_xref" else "customer_id"
    rows = _gold(spark, lakehouse, name).select(key, publish.CONTENT_HASH, publish.IS_DELETED).collect()
    return {tuple(r) for r in rows}


@dataclass(frozen=True)
class Day2:
    lakehouse: Path  # after the day-2 run (shared: read only)
    raw: Path  # the raw folder that run read (day 2's exports only)
    day1: Path  # the lakehouse as the day-2 run found it (shared: copy before writing)
    work: Path  # this module's own folder


@pytest.fixture(scope="module")
def day2(spark, demo, tmp_path_factory) -> Day2:
    base, _ = demo
    lakehouse, _ = day2_copy(spark, base, tmp_path_factory)
    return Day2(lakehouse, lakehouse.parent / "raw", lakehouse.parent / "day1", tmp_path_factory.mktemp("golden"))


def test_day1_gives_every_record_one_customer_and_every_cluster_one_profile(spark, demo):
    base, _ = demo
    lake = base / "lakehouse"
    clusters = delta_io.read(spark, str(lake / "silver" / "entity_clusters"))
    xref = _live(spark, lake, "customer_xref")
    assert xref.count() == clusters.count() == xref.select("record_key").distinct().count()
    per_cluster = xref.groupBy("cluster_id").agg(F.countDistinct("customer_id").alias("n"))
    assert per_cluster.filter("n != 1").count() == 0
    profiles = _live(spark, lake, "customer_profile")
    assert profiles.count() == clusters.select("cluster_id").distinct().count()
    assert _live(spark, lake, "customer_360").count() == profiles.count()
    events = delta_io.read(spark, str(lake / "audit" / "id_events"))
    assert {r["event"] for r in events.select("event").distinct().collect()} == {"create"}
    assert events.count() == profiles.count()
    with_orders = _live(spark, lake, "customer_360").filter("orders_count > 0")
    assert with_orders.count() > 0 and with_orders.filter("revenue <= 0").count() == 0


def test_day2_keeps_the_ids_of_customers_it_does_not_touch(spark, day2):
    lake = day2.lakehouse
    runs = delta_io.read(spark, str(lake / "audit" / "golden_runs")).orderBy("generation").collect()
    modes = [r["mode"] for r in runs]  # day 1, the demo tests' second run when they ran first, day 2
    assert modes[0] == "full" and set(modes[1:]) == {"incremental"}
    stability = history.id_stability(spark, str(lake), runs[0]["run_id"], runs[-1]["run_id"])
    print(f"\nid stability: {stability}, rate {stability.rate:.4f}")
    assert stability.touched > 0 and stability.untouched > 100
    assert stability.rate >= 0.999


def test_id_stability_of_a_run_against_itself_keeps_every_customer(spark, day2):
    lake = day2.lakehouse
    runs = delta_io.read(spark, str(lake / "audit" / "golden_runs")).orderBy("generation").collect()
    same = history.id_stability(spark, str(lake), runs[-1]["run_id"], runs[-1]["run_id"])
    live = _live(spark, lake, "customer_xref").select("customer_id").distinct().count()
    assert (same.customers, same.touched, same.kept) == (live, 0, live)


def test_each_run_is_one_version_of_each_gold_table_and_time_travel_gives_the_older_profile(spark, day2):
    lake = day2.lakehouse
    runs = delta_io.read(spark, str(lake / "audit" / "golden_runs")).orderBy("generation").collect()
    path = str(lake / "gold" / "customer_profile")
    writes = delta_io.history(spark, path).filter(F.col("operation").isin("WRITE", "MERGE")).count()
    assert writes == 2  # day 1 and day 2; the run in between changed nothing, so it committed nothing
    v1, v2 = runs[0]["versions"]["customer_profile"], runs[-1]["versions"]["customer_profile"]
    changed = (
        _gold(spark, lake, "customer_profile", v1).alias("a")
        .join(_gold(spark, lake, "customer_profile", v2).alias("b"), "customer_id")
        .filter(~F.col("a.email").eqNullSafe(F.col("b.email")) & ~F.col("b.is_deleted"))
        .select("customer_id", F.col("a.email").alias("old"), F.col("b.email").alias("new"))
        .first()
    )
    assert changed is not None, "day 2 changes some emails"
    old = history.profile_as_of(spark, str(lake), changed["customer_id"], version=v1).first()
    assert old["email"] == changed["old"]
    fields = history.profile_history(spark, str(lake), changed["customer_id"]).filter(F.col("field") == "email")
    assert (changed["old"], changed["new"]) in [(r["old_value"], r["new_value"]) for r in fields.collect()]


def test_a_run_killed_between_stages_and_run_again_ends_like_an_uninterrupted_run(spark, day2):
    lake, raw = day2.work / "killed", day2.raw
    shutil.copytree(day2.day1, lake)
    cmd = [sys.executable, str(ROOT / "jobs" / "run_pipeline.py"), "--config", CONFIG,
           "--lakehouse", str(lake), "--raw-dir", str(raw)]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    killed = False
    for line in proc.stderr:
        if "stage resolve: done" in line:
            proc.send_signal(signal.SIGKILL)
            killed = True
            break
    proc.wait(timeout=600)
    assert killed, "the run never finished its resolve stage"
    _run(lake, raw)
    for name in ("customer_xref", "customer_profile", "customer_360"):
        assert _content(spark, lake, name) == _content(spark, day2.lakehouse, name), name
    ids = [_gold(spark, x, "customer_ids").select("customer_id", "status", "current_id") for x in
           (lake, day2.lakehouse)]
    assert ids[0].exceptAll(ids[1]).count() == 0 and ids[1].exceptAll(ids[0]).count() == 0


def test_a_full_rebuild_from_bronze_gives_the_same_profiles(spark, day2):
    lake = day2.work / "rebuilt"
    shutil.copytree(day2.lakehouse, lake)
    for derived in DERIVED:
        shutil.rmtree(lake / derived, ignore_errors=True)
    _run(lake, day2.raw, "--stages", "standardize,resolve,golden")

    def by_records(root: Path) -> dict[tuple, tuple]:
        """Profiles keyed by their records (ids differ: a rebuild mints its own), with every field
        (maps and arrays as sorted JSON text) but the id and the lineage's record choice."""
        xref = _live(spark, root, "customer_xref").groupBy("customer_id").agg(
            F.array_sort(F.collect_list("record_key")).alias("records"))
        profiles = _live(spark, root, "customer_profile")
        fields = [F.to_json(F.col(c)).alias(c) if c in ("source_ids", "lineage") else F.col(c)
                  for c in profiles.columns if c != "customer_id"]
        rows = profiles.join(xref, "customer_id").select("records", *fields).collect()
        return {tuple(r["records"]): tuple(r)[1:] for r in rows}

    incremental, rebuilt = by_records(day2.lakehouse), by_records(lake)
    assert incremental.keys() == rebuilt.keys()
    differ = [k for k in incremental if incremental[k] != rebuilt[k]]
    assert differ == [], [(incremental[k], rebuilt[k]) for k in differ[:3]]
