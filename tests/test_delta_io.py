"""delta_io: appends, merges, time travel, history with run ids, catalog, retries."""

from __future__ import annotations

import pytest
from chispa import assert_df_equality
from delta.exceptions import ConcurrentAppendException

from cdi_spark import delta_io


def test_append_creates_then_appends_with_run_id_and_time_travel(spark, tmp_path):
    path = str(tmp_path / "gold" / "t")
    v0 = delta_io.append(spark, spark.createDataFrame([(1, "a")], "id int, v string"), path, user_metadata="run-1")
    v1 = delta_io.append(spark, spark.createDataFrame([(2, "b", True)], "id int, v string, new boolean"), path,
                         user_metadata="run-2")
    assert (v0, v1) == (0, 1) and delta_io.current_version(spark, path) == 1
    assert delta_io.read_as_of(spark, path, 0).count() == 1
    expected = spark.createDataFrame([(1, "a", None), (2, "b", True)], "id int, v string, new boolean")
    assert_df_equality(delta_io.read(spark, path), expected, ignore_row_order=True, ignore_nullable=True)
    history = {r["version"]: r["userMetadata"] for r in delta_io.history(spark, path).collect()}
    assert history == {0: "run-1", 1: "run-2"}
    assert delta_io.last_commit(spark, path)["metrics"]["numOutputRows"] == "1"


def test_merge_upsert_is_one_version_per_run(spark, tmp_path):
    path = str(tmp_path / "gold" / "m")
    delta_io.merge_upsert(spark, spark.createDataFrame([(1, "a"), (2, "b")], "id int, v string"), path, keys=["id"])
    version = delta_io.merge_upsert(
        spark, spark.createDataFrame([(2, "B", 7), (3, "c", 8)], "id int, v string, n int"), path, keys=["id"],
        user_metadata="run-9",
    )
    assert version == 1
    expected = spark.createDataFrame([(1, "a", None), (2, "B", 7), (3, "c", 8)], "id int, v string, n int")
    assert_df_equality(delta_io.read(spark, path), expected, ignore_row_order=True, ignore_nullable=True)
    assert delta_io.last_commit(spark, path)["user_metadata"] == "run-9"
    assert spark.conf.get(delta_io.AUTO_MERGE_CONF, None) is None  # set for the MERGE only


def test_overwrite_where_replaces_only_matching_rows(spark, tmp_path):
    path = str(tmp_path / "bronze" / "o")
    delta_io.append(spark, spark.createDataFrame([("f1", 1), ("f2", 2)], "f string, n int"), path)
    delta_io.overwrite_partition(spark, spark.createDataFrame([("f1", 10)], "f string, n int"), path, where="f = 'f1'")
    assert sorted(tuple(r) for r in delta_io.read(spark, path).collect()) == [("f1", 10), ("f2", 2)]


def test_register_lakehouse_makes_tables_queryable_by_layer_name(spark, tmp_path):
    lake, spaced = tmp_path / "lake", {"delta.columnMapping.mode": "name"}
    df = spark.createDataFrame([("x y", 1)], "`Customer ID` string, n int")
    delta_io.append(spark, df, str(lake / "audit" / "t1"), table_properties=spaced)
    assert delta_io.register_lakehouse(spark, str(lake)) == ["audit.t1"]
    assert spark.sql("SELECT `Customer ID` FROM audit.t1").first()[0] == "x y"
    other = tmp_path / "other"
    df = spark.createDataFrame([("z", 2)], "`Customer ID` string, n int")
    delta_io.append(spark, df, str(other / "audit" / "t1"), table_properties=spaced)
    delta_io.register_lakehouse(spark, str(other))  # re-points the name at the other lakehouse
    assert spark.sql("SELECT `Customer ID` FROM audit.t1").first()[0] == "z"


def test_concurrent_commit_is_retried_then_raised(spark, monkeypatch):  # the exception needs a JVM
    monkeypatch.setattr(delta_io.time, "sleep", lambda s: None)
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise ConcurrentAppendException(desc="conflict", stackTrace="")
        return "ok"

    assert delta_io.with_retry(flaky, what="test") == "ok" and len(calls) == 3

    def always():
        raise ConcurrentAppendException(desc="conflict", stackTrace="")

    with pytest.raises(ConcurrentAppendException):
        delta_io.with_retry(always, what="test", retries=1)
