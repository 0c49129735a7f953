"""The session builder: Delta works end to end, jars are checked, the network is closed."""

from __future__ import annotations

import pytest
from chispa import assert_df_equality
from py4j.protocol import Py4JJavaError

from cdi_spark import session as session_mod
from cdi_spark.errors import SessionError


def test_delta_table_writes_reads_back_and_time_travels(spark, tmp_path):
    path = str(tmp_path / "people")
    v0 = spark.createDataFrame([(1, "ada"), (2, "bob")], "id int, name string")
    v0.write.format("delta").save(path)
    spark.createDataFrame([(3, "cy")], "id int, name string").write.format("delta").mode(
        "append"
    ).save(path)

    current = spark.read.format("delta").load(path)
    old = spark.read.format("delta").option("versionAsOf", 0).load(path)

    assert current.count() == 3
    assert_df_equality(old, v0, ignore_row_order=True)


def test_session_uses_utc_and_delta_catalog(spark):
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
    assert spark.conf.get("spark.sql.catalog.spark_catalog").endswith("DeltaCatalog")


def test_zingg_classes_are_on_the_driver(spark):
    assert session_mod._has_class(spark, session_mod.ZINGG_CLASS)


def test_build_session_returns_the_running_session(spark):
    assert session_mod.build_session() is spark


def test_missing_delta_jars_say_how_to_fetch_them(monkeypatch, tmp_path):
    monkeypatch.setenv("CDI_SPARK_JARS_DIR", str(tmp_path / "empty"))
    with pytest.raises(SessionError, match=r"make setup.*Maven Central"):
        session_mod.local_jars()


def test_session_without_jars_names_the_spark_submit_flag(spark, monkeypatch):
    monkeypatch.setattr(session_mod, "_has_class", lambda _spark, name: name != session_mod.ZINGG_CLASS)
    with pytest.raises(SessionError, match=r"--jars .*zingg-0.7.0.jar"):
        session_mod._check_jars(spark)


def test_driver_cannot_reach_the_internet(spark):
    jvm = spark.sparkContext._jvm
    connection = jvm.java.net.URL("https://www.google-analytics.com/mp/collect").openConnection()
    connection.setConnectTimeout(2000)
    with pytest.raises(Py4JJavaError, match="Connection refused"):
        connection.connect()
