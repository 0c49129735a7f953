"""publish: one MERGE per changing run, content hash, soft deletes, revival; maintain."""

from __future__ import annotations

import pytest
from pyspark.sql import functions as F

from cdi_spark import delta_io
from cdi_spark.golden.publish import MaintenanceResult, PublishResult, content_hash, maintain, optimize_due, publish
from cdi_spark.tables import CUSTOMER_PROFILE, GOLD, table_path

SCHEMA = "customer_id string, name string, source_ids map<string, array<string>>"


def _profiles(spark, rows):
    return spark.createDataFrame(rows, SCHEMA)


def _state(spark, path):
    cols = ["customer_id", "name", "run_id", "is_deleted", "deleted_run_id"]
    return sorted(tuple(r) for r in delta_io.read(spark, path).select(*cols).collect())


def test_content_hash_ignores_column_order_map_order_and_all_null_columns(spark):
    a = spark.createDataFrame([("Ann", {"crm": ["1"], "shop": ["9"]})], "name string, ids map<string, array<string>>")
    b = spark.createDataFrame([({"shop": ["9"], "crm": ["1"]}, "Ann", None)],
                              "ids map<string, array<string>>, name string, tier string")
    c = spark.createDataFrame([("Anne", {"crm": ["1"], "shop": ["9"]})], "name string, ids map<string, array<string>>")
    hashes = [df.select(content_hash(df, df.columns)).first()[0] for df in (a, b, c)]
    assert hashes[0] == hashes[1] != hashes[2]


def test_publish_inserts_updates_changed_rows_only_soft_deletes_and_revives(spark, tmp_path):
    path = table_path(str(tmp_path), GOLD, CUSTOMER_PROFILE)
    ann, bob, cid = ("C1", "Ann", {"crm": ["1"], "shop": ["9"]}), ("C2", "Bob", {"crm": ["2"]}), ("C3", "Cy", None)
    first = publish(spark, _profiles(spark, [ann, bob, cid]), path, keys=["customer_id"], run_id="r1")
    assert first == PublishResult(0, True, 3, 0, 0, 0)

    ann_reordered = ("C1", "Ann", {"shop": ["9"], "crm": ["1"]})  # same content, other map order
    second = publish(spark, _profiles(spark, [ann_reordered, ("C2", "Robert", {"crm": ["2"]}), ("C4", "Di", None)]),
                     path, keys=["customer_id"], run_id="r2")
    assert second == PublishResult(1, True, inserted=1, updated=1, deleted=1, unchanged=1)
    assert _state(spark, path) == [
        ("C1", "Ann", "r1", False, None), ("C2", "Robert", "r2", False, None),
        ("C3", "Cy", "r2", True, "r2"), ("C4", "Di", "r2", False, None),
    ]

    third = publish(spark, _profiles(spark, [ann, ("C2", "Robert", {"crm": ["2"]}), cid, ("C4", "Di", None)]),
                    path, keys=["customer_id"], run_id="r3")
    assert third == PublishResult(2, True, inserted=0, updated=1, deleted=0, unchanged=3)
    assert ("C3", "Cy", "r3", False, None) in _state(spark, path)
    history = sorted((r["version"], r["userMetadata"]) for r in delta_io.history(spark, path).collect())
    assert history == [(0, "r1"), (1, "r2"), (2, "r3")]  # one version per publish


def test_republishing_commits_nothing_and_the_change_feed_shows_real_changes_only(spark, tmp_path):
    path = str(tmp_path / "gold" / "t")
    rows = [("C1", "Ann", None), ("C2", "Bob", None)]
    publish(spark, _profiles(spark, rows), path, keys=["customer_id"], run_id="r1")
    changed = _profiles(spark, [("C1", "Ann", None), ("C2", "Bobby", None)])
    assert publish(spark, changed, path, keys=["customer_id"], run_id="r2").version == 1
    again = publish(spark, changed, path, keys=["customer_id"], run_id="r2-rerun")
    assert again == PublishResult(1, False, 0, 0, 0, None)
    assert delta_io.current_version(spark, path) == 1

    assert delta_io.table_properties(spark, path)["delta.enableChangeDataFeed"] == "true"
    feed = delta_io.changes(spark, path).select("_commit_version", "_change_type", "customer_id", "name", "run_id")
    assert sorted(tuple(r) for r in feed.collect()) == [
        (0, "insert", "C1", "Ann", "r1"), (0, "insert", "C2", "Bob", "r1"),
        (1, "update_postimage", "C2", "Bobby", "r2"), (1, "update_preimage", "C2", "Bob", "r1"),
    ]


def test_publish_adds_missing_properties_and_keeps_the_table_s_own(spark, tmp_path):
    path = str(tmp_path / "gold" / "t")
    own = {"delta.logRetentionDuration": "interval 60 days", "delta.enableChangeDataFeed": "false"}
    publish(spark, _profiles(spark, [("C1", "Ann", None)]), path, keys=["customer_id"], run_id="r1",
            table_properties=own)
    assert delta_io.table_properties(spark, path)["delta.enableChangeDataFeed"] == "false"
    result = publish(spark, _profiles(spark, [("C1", "Anne", None)]), path, keys=["customer_id"], run_id="r2")
    assert (result.version, result.updated) == (2, 1)  # version 1 turned the feed on
    properties = delta_io.table_properties(spark, path)
    assert properties["delta.logRetentionDuration"] == "interval 60 days"
    assert properties["delta.enableChangeDataFeed"] == properties["delta.enableDeletionVectors"] == "true"


def test_scoped_publish_deletes_in_scope_only_and_leaves_other_rows_alone(spark, tmp_path):
    path = str(tmp_path / "gold" / "t")
    rows = [("C1", "Ann", None), ("C2", "Bob", None), ("C3", "Cy", None), ("C5", "Ed", None)]
    publish(spark, _profiles(spark, rows), path, keys=["customer_id"], run_id="r1")
    keys = spark.createDataFrame([("C1",), ("C2",)], "customer_id string")
    gone = spark.createDataFrame([("C3",)], "customer_id string")
    result = publish(spark, _profiles(spark, [("C1", "Anne", None), ("C4", "Di", None)]), path,
                     keys=["customer_id"], run_id="r2", scope=keys, deleted=gone)
    assert result == PublishResult(1, True, inserted=1, updated=1, deleted=2, unchanged=None)
    assert _state(spark, path) == [
        ("C1", "Anne", "r2", False, None), ("C2", "Bob", "r2", True, "r2"), ("C3", "Cy", "r2", True, "r2"),
        ("C4", "Di", "r2", False, None), ("C5", "Ed", "r1", False, None),
    ]


def test_publish_refuses_a_frame_with_bookkeeping_columns(spark, tmp_path):
    df = _profiles(spark, [("C1", "Ann", None)]).withColumn("run_id", F.lit("x"))
    with pytest.raises(ValueError, match="bookkeeping column"):
        publish(spark, df, str(tmp_path / "t"), keys=["customer_id"], run_id="r1")


@pytest.fixture
def short_retention(spark):
    key = "spark.databricks.delta.retentionDurationCheck.enabled"
    spark.conf.set(key, "false")
    yield
    spark.conf.unset(key)


def test_maintain_optimizes_on_schedule_and_vacuum_bounds_time_travel(spark, tmp_path, short_retention):
    path = str(tmp_path / "gold" / "t")
    for n in range(2):
        delta_io.append(spark, spark.createDataFrame([(f"C{n}", n)], "customer_id string, n int"), path)
    assert not optimize_due(spark, path, every=3)
    assert maintain(spark, path, optimize_every=3) == MaintenanceResult(optimized=False, vacuumed=False)
    delta_io.append(spark, spark.createDataFrame([("C2", 2)], "customer_id string, n int"), path)
    assert optimize_due(spark, path, every=3) and optimize_due(spark, path, every=5, run_number=10)

    done = maintain(spark, path, optimize_every=3, vacuum_retention_hours=0, run_id="r9")
    assert done == MaintenanceResult(optimized=True, vacuumed=True)
    operations = [c["operation"] for c in delta_io.commits(spark, path, 10)]
    assert operations[:3] == ["VACUUM END", "VACUUM START", "OPTIMIZE"]
    assert not optimize_due(spark, path, every=3)  # counted again from the OPTIMIZE
    assert delta_io.read(spark, path).count() == 3
    with pytest.raises(Exception, match=r"(?i)not found|does not exist"):
        delta_io.read(spark, path, version=0).collect()  # its files are vacuumed
