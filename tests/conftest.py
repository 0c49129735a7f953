"""One Spark session for the whole test run, small and quiet."""

from __future__ import annotations

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
        "spark.driver.memory": "2g",
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
