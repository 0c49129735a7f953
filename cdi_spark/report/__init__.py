"""The run report: one self-contained HTML page and a JSON file of the same figures, per run.

:func:`write_report` reads everything from the lakehouse tables for one run id
(:mod:`cdi_spark.report.figures`), draws the charts with matplotlib
(:mod:`cdi_spark.report.charts`) and writes

* ``<lakehouse>/reports/<run_id>/report.html``: inline CSS, charts as PNG data URIs, readable
  from disk without a server (:mod:`cdi_spark.report.render`);
* ``<lakehouse>/reports/<run_id>/report.json``: exactly the numbers the charts show.

Writing again for the same run id replaces both files. A lakehouse given as a URI
(``s3a://``, ``abfss://``, ``hdfs://``, ``file:``) is written through Hadoop's FileSystem, the
same way Spark reaches the tables; a plain path is written with Python.

Reads: ``audit.runs``, ``audit.ingest_manifest``, ``quarantine.<source>``,
``audit.data_quality``, ``silver.customer_records``, ``silver.match_edges``,
``silver.entity_clusters``, ``gold.customer_profile``, ``audit.id_events``. Writes no table.

Example:
    >>> paths = write_report(spark, cfg, run_id)
    >>> print(paths.html)
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import SparkSession

from cdi_spark.config import PipelineConfig
from cdi_spark.logs import timed
from cdi_spark.report.figures import gather
from cdi_spark.report.render import render_html
from cdi_spark.runs import own_job_group

log = logging.getLogger(__name__)

REPORTS = "reports"  # folder under the lakehouse, beside the layers
JOB_GROUP = "cdi-spark run report"  # the report's Spark jobs, apart from the stages' (the benchmark counts those)


@dataclass(frozen=True)
class ReportPaths:
    """Where a run's report files are (absolute for a local lakehouse)."""

    html: str
    json: str


def _is_uri(path: str) -> bool:
    return "://" in path or path.startswith("file:")


def report_paths(lakehouse: str, run_id: str) -> ReportPaths:
    """``<lakehouse>/reports/<run_id>/report.html`` and ``report.json``.

    Raises:
        ValueError: ``run_id`` is empty or could leave the reports folder (``/``, ``..``).
    """
    if not run_id or "/" in run_id or "\\" in run_id or run_id in (".", ".."):
        raise ValueError(f"run id {run_id!r} cannot name a report folder; run ids have no slashes")
    root = str(lakehouse).rstrip("/")
    if not _is_uri(root):
        root = os.path.abspath(root)
    folder = f"{root}/{REPORTS}/{run_id}"
    return ReportPaths(html=f"{folder}/report.html", json=f"{folder}/report.json")


def write_text(spark: SparkSession, path: str, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path``, replacing it: with Python for a plain path, through
    Hadoop's FileSystem for a URI (object stores included)."""
    data = text.encode("utf-8")
    if not _is_uri(path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(data)
        return
    jvm = spark.sparkContext._jvm
    target = jvm.org.apache.hadoop.fs.Path(path)
    stream = target.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).create(target, True)
    try:
        stream.write(bytearray(data))
    finally:
        stream.close()


def write_report(spark: SparkSession, cfg: PipelineConfig, run_id: str) -> ReportPaths:
    """Write the run report of ``run_id`` (HTML and JSON) under ``<lakehouse>/reports/<run_id>/``.

    Call it after the run is recorded in ``audit.runs`` (after
    :func:`cdi_spark.runs.finish_run`), so the page shows the final status, times and stage
    timings. Stages the run did not run get sections marked ``not run``.

    Args:
        spark: the session.
        cfg: the pipeline configuration (its lakehouse and sources).
        run_id: the run to report on.

    Returns:
        The paths of the two files.

    Raises:
        ValueError: ``run_id`` cannot name a folder (see :func:`report_paths`).
    """
    paths = report_paths(cfg.lakehouse, run_id)
    with timed() as clock, own_job_group(spark, JOB_GROUP):
        figures = gather(spark, cfg, run_id)
        write_text(spark, paths.json, json.dumps(figures, indent=2) + "\n")
        write_text(spark, paths.html, render_html(figures))
    statuses = ", ".join(f"{name} {s['status']}" for name, s in figures["sections"].items())
    log.info("run %s: report written in %.1f s to %s (%s)", run_id, clock["seconds"], paths.html, statuses)
    return paths


__all__ = ["JOB_GROUP", "ReportPaths", "report_paths", "write_report", "write_text"]
