"""Runs the configured stages in order and logs each one's counts and seconds.

A stage is a function ``(spark, cfg, run_id) -> StageReport``; stages that can run
incrementally also take ``full=True`` (rebuild from their inputs instead). :data:`STAGES`
maps the names used in ``pipeline.yml`` to them; a stage that is not in this version yet is
refused by :func:`check_stages` before Spark starts.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pyspark.sql import SparkSession

from cdi_spark import runs
from cdi_spark.config import PipelineConfig
from cdi_spark.errors import ConfigError, StageError
from cdi_spark.logs import timed

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StageReport:
    """What one stage did: row and file counts, seconds, and problems that did not stop it."""

    stage: str
    counts: dict[str, int]
    seconds: float = 0.0
    problems: tuple[str, ...] = field(default=())


def _ingest(spark: SparkSession, cfg: PipelineConfig, run_id: str) -> StageReport:
    from cdi_spark.ingest import ingest  # stage modules load only when their stage runs

    results = ingest(spark, cfg, run_id=run_id)
    counts = {
        "sources": len(results),
        "files_loaded": sum(r.files_loaded for r in results),
        "files_skipped": sum(r.files_skipped for r in results),
        "rows_read": sum(r.rows_read for r in results),
        "rows_bronze": sum(r.rows_bronze for r in results),
        "rows_quarantined": sum(r.rows_quarantined for r in results),
    }
    problems = tuple(f"source {r.source}: {r.error}" for r in results if r.error)
    return StageReport("ingest", counts, problems=problems)


def _standardize(spark: SparkSession, cfg: PipelineConfig, run_id: str) -> StageReport:
    from cdi_spark.standardize.stage import standardize

    result = standardize(spark, cfg, run_id=run_id)
    counts = {"sources": len(result.rows_in), "records": result.rows_out}
    return StageReport("standardize", counts)


def _train_matcher(spark: SparkSession, cfg: PipelineConfig, run_id: str) -> StageReport:
    from cdi_spark.resolve.stage import train_matcher

    trained = train_matcher(spark, cfg, run_id=run_id)
    counts = {"label_matches": trained.matches, "label_non_matches": trained.non_matches,
              "bootstrapped": int(trained.bootstrapped)}
    return StageReport("train_matcher", counts)


def _resolve(spark: SparkSession, cfg: PipelineConfig, run_id: str, *, full: bool = False) -> StageReport:
    from cdi_spark.resolve.stage import resolve

    result = resolve(spark, cfg, run_id=run_id, full=full)
    counts = {k: v for k, v in result.__dict__.items() if isinstance(v, int)}
    return StageReport("resolve", counts)


def _golden(spark: SparkSession, cfg: PipelineConfig, run_id: str, *, full: bool = False) -> StageReport:
    from cdi_spark.golden.stage import build_golden

    return StageReport("golden", build_golden(spark, cfg, run_id=run_id, full=full).counts())


def _activate(spark: SparkSession, cfg: PipelineConfig, run_id: str) -> StageReport:
    from cdi_spark.activate.export import counts, export
    from cdi_spark.config import load_activation

    return StageReport("activate", counts(export(spark, cfg, load_activation(cfg), run_id=run_id)))


STAGES: dict[str, Callable[..., StageReport]] = {
    "ingest": _ingest,
    "standardize": _standardize,
    "train_matcher": _train_matcher,
    "resolve": _resolve,
    "golden": _golden,
    "activate": _activate,
}
# Stages that run incrementally by default and rebuild everything with ``full=True``.
FULL_CAPABLE = frozenset({"resolve", "golden"})


def check_stages(cfg: PipelineConfig) -> None:
    """Refuse stages this version does not have yet, before any Spark work.

    Raises:
        ConfigError: naming the stage and the available ones.
    """
    for stage in cfg.stages:
        if stage not in STAGES:
            raise ConfigError(
                cfg.path,
                "stages",
                f"stage {stage!r} is not available in this version; available: {', '.join(STAGES)}",
            )


def new_run_id() -> str:
    """A sortable, unique run id: ``20260101T120000Z-1a2b3c``."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


def run_pipeline(
    spark: SparkSession, cfg: PipelineConfig, *, run_id: str | None = None, full: bool = False, report: bool = True
) -> list[StageReport]:
    """Run ``cfg.stages`` in order, recording the run in ``audit.runs``.

    Every Delta commit of the run carries the run id in its user metadata, so
    ``DESCRIBE HISTORY`` says which run wrote each version. ``audit.runs`` gets a
    ``running`` row before the first stage and the final row (``succeeded``, or ``failed``
    with the error) after the last; see :mod:`cdi_spark.runs`.

    Args:
        spark: the session (from :func:`cdi_spark.session.build_session`).
        cfg: the loaded pipeline configuration.
        run_id: defaults to a new id.
        full: stages that run incrementally (:data:`FULL_CAPABLE`) rebuild from all their
            inputs instead.
        report: write the run report (``<lakehouse>/reports/<run_id>/report.html`` and
            ``.json``, see :mod:`cdi_spark.report`) once the run is recorded, after a failure
            too. A report that cannot be written is logged, never raised.

    Returns:
        One report per stage, in order.

    Raises:
        StageError: a stage failed; the message names the stage and what to do.
    """
    check_stages(cfg)
    run_id = run_id or new_run_id()
    spark.conf.set("spark.databricks.delta.commitInfo.userMetadata", run_id)
    log.info("run %s: stages %s, lakehouse %s", run_id, ", ".join(cfg.stages), cfg.lakehouse)
    reports: list[StageReport] = []
    try:
        run = runs.start_run(spark, cfg, run_id)
        try:
            with run_checkpoints(spark, cfg, run_id):
                for name in cfg.stages:
                    reports.append(_run_stage(spark, cfg, name, run_id, full=full))
        except Exception as exc:
            _record_failure(spark, cfg, run, reports, exc)
            if report:
                _write_report(spark, cfg, run_id)
            raise
        runs.finish_run(spark, cfg, run, reports)
        if report:
            _write_report(spark, cfg, run_id)
    finally:
        spark.conf.unset("spark.databricks.delta.commitInfo.userMetadata")
    return reports


CHECKPOINTS = "_checkpoints"
_RUN_FOLDERS: set[str] = set()  # checkpoint folders run_checkpoints set (and deleted)


@contextmanager
def run_checkpoints(spark: SparkSession, cfg: PipelineConfig, run_id: str) -> Iterator[str]:
    """A reliable checkpoint folder for the run, deleted when it ends.

    Stages cut long lineages with ``DataFrame.checkpoint()`` when the SparkContext has a
    checkpoint folder, and fall back to ``localCheckpoint()`` (blocks kept by the executors,
    lost with an executor) when it has none. A session whose folder someone else set keeps
    it and this does nothing; otherwise the run's checkpoints go to
    ``<checkpoint_dir>/<run_id>`` (``checkpoint_dir`` defaults to ``<lakehouse>/_checkpoints``),
    deleted afterwards, failed runs included: checkpoints hold copies of personal data.
    """
    sc = spark.sparkContext
    current = sc.getCheckpointDir()
    if current and not any(current.startswith(f) or current.startswith(f"file:{f}") for f in _RUN_FOLDERS):
        yield current
        return
    root = (cfg.checkpoint_dir or f"{cfg.lakehouse.rstrip('/')}/{CHECKPOINTS}").rstrip("/")
    folder = f"{root}/{run_id}"
    sc.setCheckpointDir(folder)  # Spark adds a folder of its own below
    _RUN_FOLDERS.add(folder)
    log.info("run %s: checkpoints in %s", run_id, folder)
    try:
        yield folder
    finally:
        _delete_folder(spark, folder)


def _delete_folder(spark: SparkSession, folder: str) -> None:
    """Delete ``folder`` through Hadoop (local, HDFS or object store); a failure is logged."""
    jvm = spark.sparkContext._jvm  # noqa: SLF001
    path = jvm.org.apache.hadoop.fs.Path(folder)
    try:
        path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).delete(path, True)  # noqa: SLF001
    except Exception:  # noqa: BLE001 - the run's own outcome stands
        log.warning("could not delete the checkpoint folder %s; delete it by hand", folder)


def _record_failure(
    spark: SparkSession, cfg: PipelineConfig, run: runs.RunRecord, reports: list[StageReport], exc: Exception
) -> None:
    """Record the failed run; a failure to record it is logged, never raised over ``exc``."""
    try:
        runs.finish_run(spark, cfg, run, reports, error=exc)
    except Exception:  # noqa: BLE001 - the stage's error is the one to raise
        log.exception("run %s: could not record the failure in audit.runs", run.run_id)


def _write_report(spark: SparkSession, cfg: PipelineConfig, run_id: str) -> None:
    """Write the run's report; a report that fails is logged, never raised (the run is done)."""
    from cdi_spark.report import write_report

    try:
        write_report(spark, cfg, run_id)
    except Exception:  # noqa: BLE001 - the run's own outcome stands
        log.exception("run %s: the run report could not be written", run_id)


def _run_stage(spark: SparkSession, cfg: PipelineConfig, name: str, run_id: str, *, full: bool = False) -> StageReport:
    log.info("stage %s: starting%s", name, " (full rebuild)" if full and name in FULL_CAPABLE else "")
    with timed() as clock:
        if full and name in FULL_CAPABLE:
            report = STAGES[name](spark, cfg, run_id, full=True)
        else:
            report = STAGES[name](spark, cfg, run_id)
    report = StageReport(report.stage, report.counts, clock["seconds"], report.problems)
    counts = ", ".join(f"{k}={v:,}" for k, v in report.counts.items())
    log.info("stage %s: done in %.1f s: %s", name, report.seconds, counts)
    for problem in report.problems:
        log.error("stage %s: %s", name, problem)
    return report


def raise_for_problems(reports: list[StageReport]) -> None:
    """Fail a run whose stages finished but left problems (a source that could not load).

    Raises:
        StageError: listing every problem.
    """
    problems = [f"{r.stage}: {p}" for r in reports for p in r.problems]
    if problems:
        raise StageError("run", f"finished with {len(problems)} problem(s): " + "; ".join(problems))
