"""One Spark session for the whole test run, small and quiet."""

from __future__ import annotations

import gc

import pytest

from cdi_spark.config import SparkProfile
from cdi_spark.session import build_session

TEST_PROFILE = SparkProfile(
    master="local[2]",
    conf={
        "spark.sql.shuffle.partitions": "2",
        "spark.default.parallelism": "2",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.adaptive.enabled": "false",
        "spark.driver.memory": "3g",
        "spark.databricks.delta.snapshotPartitions": "2",
        "spark.sql.sources.parallelPartitionDiscovery.parallelism": "2",
    },
    block_outbound_http=True,
)


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    """The session every test shares (never a new SparkContext per test)."""
    base = tmp_path_factory.mktemp("spark")
    session = build_session(
        TEST_PROFILE,
        app_name="cdi-spark-tests",
        extra_conf={
            "spark.sql.warehouse.dir": str(base / "warehouse"),
            "spark.local.dir": str(base / "local"),
        },
    )
    session.sparkContext.setCheckpointDir(str(base / "checkpoints"))
    yield session
    session.stop()


@pytest.fixture(autouse=True)
def _clean_spark_state(request):
    """Clear cached tables and temp views after each test that used Spark."""
    yield
    if "spark" in request.fixturenames:
        session = request.getfixturevalue("spark")
        session.catalog.clearCache()
        for view in session.catalog.listTables():
            if view.isTemporary:
                session.catalog.dropTempView(view.name)


@pytest.fixture(scope="module", autouse=True)
def _forget_delta_tables():
    """After each module, drop Delta's cache of table logs and their snapshot states.

    Delta keeps every table it has read (a ``DeltaLog`` with its snapshot's cached state and
    query plans) for an hour. A test run reads hundreds of short-lived tables in one JVM;
    kept, they filled the driver's heap and the run ended in back-to-back full GCs.
    """
    yield
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    context, session = SparkContext._active_spark_context, SparkSession.getActiveSession()
    if context is None or session is None:
        return  # the module used no Spark
    gc.collect()  # Python's DataFrame proxies, so the JVM may free what they held
    session.catalog.clearCache()
    context._jvm.org.apache.spark.sql.delta.DeltaLog.clearCache()
