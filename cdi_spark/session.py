"""The only place a SparkSession is made.

``build_session(profile)`` returns a session with Delta's SQL extension and catalog, the
Delta and Zingg jars, UTC session time, and the profile's settings. It works the same way
in three places:

* ``python jobs/run_pipeline.py`` or a notebook: this process starts the JVM, so the
  profile's master, memory and jars are applied (jars from ``$CDI_SPARK_JARS_DIR``, filled
  by ``scripts/setup.sh``, and the jar shipped inside the ``zingg`` wheel);
* ``spark-submit``: the JVM already exists and the cluster's settings come from
  spark-submit; a default is applied only to keys nobody has set, and missing jars are
  reported with the ``--jars`` flag that fixes it;
* tests: the same function with a small local profile.

Zingg's usage analytics are switched off where Zingg is called (``resolve/zingg.py``
passes ``collectMetrics=false``); with ``block_outbound_http`` the driver JVM cannot make
an outbound HTTP(S) connection at all.
"""

from __future__ import annotations

import glob
import importlib.metadata
import importlib.util
import logging
import os
import sys
from pathlib import Path

from pyspark import SparkConf
from pyspark.sql import SparkSession

from cdi_spark.config import SparkProfile
from cdi_spark.errors import SessionError

log = logging.getLogger(__name__)

DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"
ZINGG_CLASS = "zingg.spark.client.SparkClient"

# Applied to every session unless already set: correctness, not tuning.
BASE_CONF = {
    "spark.sql.extensions": DELTA_EXTENSION,
    "spark.sql.catalog.spark_catalog": DELTA_CATALOG,
    "spark.sql.session.timeZone": "UTC",
    "spark.databricks.delta.properties.defaults.enableChangeDataFeed": "true",
}

# A closed port on loopback: HttpURLConnection fails at once instead of reaching the internet.
_NO_HTTP = (
    "-Dhttp.proxyHost=127.0.0.1 -Dhttp.proxyPort=9 -Dhttps.proxyHost=127.0.0.1 "
    "-Dhttps.proxyPort=9 -Dhttp.nonProxyHosts=localhost|127.*|[::1]"
)


def jars_dir() -> Path:
    """Folder holding the Delta jars (``$CDI_SPARK_JARS_DIR`` or ``~/.cache/cdi-spark/jars``)."""
    return Path(os.environ.get("CDI_SPARK_JARS_DIR", Path.home() / ".cache" / "cdi-spark" / "jars"))


def delta_version() -> str:
    """Version of the installed delta-spark Python package; the jar must match it."""
    return importlib.metadata.version("delta-spark")


def local_jars() -> list[str]:
    """Paths of the Delta and Zingg jars for a session this process starts.

    Raises:
        SessionError: a jar is missing, with the command that fetches it.
    """
    version = delta_version()
    wanted = [f"delta-spark_2.12-{version}.jar", f"delta-storage-{version}.jar"]
    found = [jars_dir() / name for name in wanted]
    missing = [str(p) for p in found if not p.is_file()]
    if missing:
        raise SessionError(
            f"Delta jar(s) not found: {', '.join(missing)}. Run `make setup` (scripts/setup.sh), "
            "which fetches io.delta:delta-spark_2.12 and io.delta:delta-storage "
            f"{version} from Maven Central with mvn, or set CDI_SPARK_JARS_DIR to a folder "
            "holding them."
        )
    return [str(p) for p in found] + [zingg_jar()]


def zingg_jar() -> str:
    """Path of the jar shipped inside the ``zingg`` wheel (found without importing zingg,
    whose client module starts a JVM on import)."""
    spec = importlib.util.find_spec("zingg")
    if spec is None or not spec.submodule_search_locations:
        raise SessionError(
            "The zingg package is not installed. Run `make setup`, or "
            "`pip install --no-deps zingg==0.7.0` (--no-deps: its py4j pin conflicts with pyspark)."
        )
    jars = glob.glob(os.path.join(spec.submodule_search_locations[0], "jars", "zingg-*[0-9].jar"))
    if not jars:
        raise SessionError("the zingg package has no jars/zingg-<version>.jar; reinstall zingg==0.7.0")
    return sorted(jars)[-1]


def _launched_by_spark_submit() -> bool:
    # spark-submit starts the JVM first and hands the Python driver the gateway's port.
    return "PYSPARK_GATEWAY_PORT" in os.environ


def build_session(
    profile: SparkProfile | None = None,
    *,
    app_name: str = "cdi-spark",
    extra_conf: dict[str, str] | None = None,
) -> SparkSession:
    """Build (or return the running) SparkSession, configured for Delta and Zingg.

    Args:
        profile: master and Spark properties for runs this process starts; under
            spark-submit only keys nobody set are applied. ``None`` means Spark's defaults.
        app_name: the application name shown in the Spark UI and history server.
        extra_conf: more properties with the same "only if unset" rule (tests use it for
            warehouse and checkpoint folders).

    Returns:
        The active SparkSession.

    Raises:
        SessionError: the Delta or Zingg classes are not on the driver's classpath, with the
            command or flag that fixes it.
    """
    profile = profile or SparkProfile()
    active = SparkSession.getActiveSession()
    if active is not None:
        _check_jars(active)
        return active

    preset = SparkConf()  # what spark-submit, spark-defaults or the environment already set
    submitted = _launched_by_spark_submit()
    wanted: dict[str, str] = {**BASE_CONF, **profile.conf, **(extra_conf or {})}
    if not submitted:
        wanted["spark.jars"] = ",".join(local_jars())
        # Python workers (pandas UDFs) must run this interpreter, which has the dependencies;
        # otherwise Spark starts whatever `python3` is first on PATH.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        if profile.block_outbound_http:
            java_opts = wanted.get("spark.driver.extraJavaOptions", "")
            wanted["spark.driver.extraJavaOptions"] = f"{java_opts} {_NO_HTTP}".strip()

    builder = SparkSession.builder.appName(app_name)
    if profile.master and not preset.contains("spark.master") and not submitted:
        builder = builder.master(profile.master)
    for key, value in wanted.items():
        if not preset.contains(key):
            builder = builder.config(key, str(value))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(os.environ.get("CDI_SPARK_LOG_LEVEL", "WARN"))
    _check_jars(spark)
    log.info(
        "spark %s session: master=%s, app=%s, shuffle partitions=%s",
        spark.version,
        spark.sparkContext.master,
        app_name,
        spark.conf.get("spark.sql.shuffle.partitions"),
    )
    return spark


def _has_class(spark: SparkSession, name: str) -> bool:
    try:
        spark.sparkContext._jvm.org.apache.spark.util.Utils.classForName(name, True, False)
        return True
    except Exception:  # py4j wraps ClassNotFoundException in Py4JJavaError
        return False


def _check_jars(spark: SparkSession) -> None:
    missing = [name for name in (DELTA_EXTENSION, ZINGG_CLASS) if not _has_class(spark, name)]
    if not missing:
        if DELTA_EXTENSION not in spark.conf.get("spark.sql.extensions", ""):
            raise SessionError(
                "The session was started without Delta's SQL extension. Add "
                f"--conf spark.sql.extensions={DELTA_EXTENSION} "
                f"--conf spark.sql.catalog.spark_catalog={DELTA_CATALOG} to spark-submit, or "
                "stop the running session and let cdi_spark.session.build_session start it."
            )
        return
    version = delta_version()
    raise SessionError(
        f"The Spark driver cannot load {', '.join(missing)}: the session was started without "
        "the Delta and Zingg jars. With spark-submit, pass them: "
        f"--jars $CDI_SPARK_JARS_DIR/delta-spark_2.12-{version}.jar,"
        f"$CDI_SPARK_JARS_DIR/delta-storage-{version}.jar,<site-packages>/zingg/jars/zingg-0.7.0.jar "
        f"(or --packages io.delta:delta-spark_2.12:{version} plus --jars for Zingg). "
        "In a notebook, stop the running session and call build_session() before anything else "
        "starts Spark. `make setup` fetches the jars."
    )
