"""history: profile time travel, retired ids, field history from the change feed, run diffs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cdi_spark import delta_io, runs
from cdi_spark.golden.history import IdStability, diff_runs, id_stability, profile_as_of, profile_history, run_version
from cdi_spark.golden.publish import publish
from cdi_spark.tables import CUSTOMER_IDS, CUSTOMER_PROFILE, CUSTOMER_RECORDS, CUSTOMER_XREF, GOLD, SILVER, table_path

PROFILE = "customer_id string, name string, email string, emails array<string>"
RUN_1 = [("C1", "Ann", "ann@old.example", ["ann@old.example"]), ("C2", "Bob", None, []), ("C3", "Bobby", None, [])]
# Run 2: Ann's email changed, C3 was merged into C2 (so it is gone), C4 is new.
RUN_2 = [("C1", "Ann", "ann@new.example", ["ann@new.example", "ann@old.example"]), ("C2", "Bob", None, []),
         ("C4", "Di", None, [])]


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory):
    """Three runs: r1 creates the profiles, r2 changes them, r3 publishes r2's content again."""
    lakehouse = str(tmp_path_factory.mktemp("history") / "lakehouse")
    path = table_path(lakehouse, GOLD, CUSTOMER_PROFILE)
    for n, rows in enumerate([RUN_1, RUN_2, RUN_2], start=1):
        result = publish(spark, spark.createDataFrame(rows, PROFILE), path, keys=["customer_id"], run_id=f"r{n}")
        versions = {"gold.customer_profile": result.version} if result.committed else {}
        started = datetime(2026, 1, n, tzinfo=UTC)
        runs.record_run(spark, lakehouse, runs.RunRecord(f"r{n}", started, ("golden",), versions=versions))
    registry = [("C1", "active", "C1"), ("C2", "active", "C2"), ("C3", "retired", "C2"), ("C4", "active", "C4")]
    delta_io.append(spark, spark.createDataFrame(registry, "customer_id string, status string, current_id string"),
                    table_path(lakehouse, GOLD, CUSTOMER_IDS))
    return lakehouse


def test_profile_as_of_reads_a_version_or_a_time(spark, lake):
    def email(**as_of):
        return [r["email"] for r in profile_as_of(spark, lake, "C1", **as_of).collect()]

    assert email(version=0) == ["ann@old.example"]
    assert email() == ["ann@new.example"]
    path = table_path(lake, GOLD, CUSTOMER_PROFILE)
    first_commit = delta_io.history(spark, path).filter("version = 0").selectExpr(
        "date_format(timestamp, 'yyyy-MM-dd HH:mm:ss.SSS')").first()[0]
    assert email(timestamp=first_commit) == ["ann@old.example"]
    assert email(timestamp="2999-01-01 00:00:00") == ["ann@new.example"]  # after the last commit: the last version
    assert email(timestamp="2000-01-01 00:00:00") == []  # before the table existed


def test_retired_id_resolves_to_its_survivor(spark, lake):
    assert [r["customer_id"] for r in profile_as_of(spark, lake, "C3").collect()] == ["C2"]
    own = profile_as_of(spark, lake, "C3", resolve=False).first()
    assert (own["customer_id"], own["name"], own["is_deleted"], own["deleted_run_id"]) == ("C3", "Bobby", True, "r2")


def test_profile_history_lists_each_changed_field_per_version(spark, lake):
    rows = [tuple(r) for r in profile_history(spark, lake, "C1").drop("timestamp").collect()]
    assert rows == [
        (0, "r1", "C1", "insert", "email", None, "ann@old.example"),
        (0, "r1", "C1", "insert", "emails", None, '["ann@old.example"]'),
        (0, "r1", "C1", "insert", "name", None, "Ann"),
        (1, "r2", "C1", "update", "email", "ann@old.example", "ann@new.example"),
        (1, "r2", "C1", "update", "emails", '["ann@old.example"]', '["ann@new.example","ann@old.example"]'),
    ]
    merged = profile_history(spark, lake, "C3").filter("customer_id = 'C3' AND version = 1").collect()
    assert {(r["change"], r["field"], r["old_value"], r["new_value"]) for r in merged} == {
        ("delete", "emails", "[]", None), ("delete", "name", "Bobby", None),
    }
    assert profile_history(spark, lake, "C3").filter("customer_id = 'C2'").count() == 2  # the survivor's too


def test_diff_runs_lists_added_removed_and_changed_customers(spark, lake):
    rows = diff_runs(spark, lake, "r1", "r2").collect()
    diff = [(r["customer_id"], r["change"], list(r["changed_fields"])) for r in rows]
    assert diff == [("C1", "changed", ["email", "emails"]), ("C3", "removed", ["emails", "name"]),
                    ("C4", "added", ["emails", "name"])]
    assert run_version(spark, lake, "r3", "gold.customer_profile") == 1  # r3 committed nothing: r2's version
    assert diff_runs(spark, lake, "r2", "r3").count() == 0
    with pytest.raises(ValueError, match="not in audit.runs"):
        run_version(spark, lake, "r404", "gold.customer_profile")


def test_id_stability_keeps_only_customers_no_new_or_rewritten_record_reached(spark, tmp_path):
    lakehouse = str(tmp_path / "lakehouse")
    xref_path = table_path(lakehouse, GOLD, CUSTOMER_XREF)
    silver_path = table_path(lakehouse, SILVER, CUSTOMER_RECORDS)
    day1 = {"a1": ("C1", "r1"), "a2": ("C1", "r1"), "b1": ("C2", "r1"), "c1": ("C3", "r1"),
            "d1": ("C4", "r1"), "d2": ("C4", "r1"), "e1": ("C5", "r1")}
    # r2: new record n1 joins C2 and C3 (C3 merged into C2); d2 is sent again; e1 got a new id
    # though nothing touched it (the one instability)
    day2 = {**day1, "c1": ("C2", "r1"), "n1": ("C2", "r2"), "d2": ("C4", "r2"), "e1": ("C6", "r1")}
    for run, records in (("r1", day1), ("r2", day2)):
        xref = spark.createDataFrame([(k, c) for k, (c, _) in records.items()], "record_key string, customer_id string")
        silver = spark.createDataFrame([(k, r) for k, (_, r) in records.items()], "record_key string, run_id string")
        versions = {
            "gold.customer_xref": publish(spark, xref, xref_path, keys=["record_key"], run_id=run).version,
            "silver.customer_records": delta_io.merge_upsert(spark, silver, silver_path, keys=["record_key"]),
        }
        started = datetime(2026, 2, int(run[1:]), tzinfo=UTC)
        runs.record_run(spark, lakehouse, runs.RunRecord(run, started, ("golden",), versions=versions))

    stability = id_stability(spark, lakehouse, "r1", "r2")
    assert stability == IdStability(customers=5, touched=3, kept=1)  # touched: C2, C3, C4; kept: C1, not C5
    assert (stability.untouched, stability.rate) == (2, 0.5)
    assert id_stability(spark, lakehouse, "r2", "r2") == IdStability(customers=4, touched=0, kept=4)
