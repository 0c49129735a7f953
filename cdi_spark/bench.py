"""The benchmark: time and size each pipeline stage on generated data of a given size.

``cdi-spark bench --people 100000 --repeat 3`` (or ``make bench PEOPLE=100000``):

1. generates the demo exports for ``people`` and ``seed`` under
   ``<data-dir>/people-<N>-seed-<S>`` (reused when a previous bench made them);
2. runs the selected stages (default: those of the config that this version has) through
   :func:`cdi_spark.pipeline.run_pipeline`, one stage at a time, on a fresh lakehouse
   (``<data-dir>/lakehouse``, removed before every repeat);
3. prints a table of medians and appends one JSON line per size to ``bench/results.jsonl``
   (date, git commit, cores, memory, load average, N, repeats, every repeat's figures);
4. with ``--day2``: generates the next day's batch of the same people (``--day2-share``, by
   default 1%, of the people new or changed, with joiners and new activity in proportion:
   see :mod:`cdi_spark.generate.day2`) of the largest size and runs the stages again on its
   last repeat's lakehouse, as an incremental run. Its figures go into the same JSON line
   under ``day2``: each stage, the run's total seconds as a ratio to the full run's (median)
   total, and, when the golden stage ran, the id stability
   (:func:`cdi_spark.golden.history.id_stability`: the share of the customers day 2 did not
   touch that kept their id).
5. with ``--peer splink``: resolves each size's standardized records with the peer as well
   (:func:`run_peer`).

``--on-last-run`` skips the full run: ``--peer`` and ``--day2`` run on the lakehouse a
previous bench of that one size left, against that bench's result line (a 1M full run takes
an hour; the peer and day 2 can be measured again without it).

The **I/O floor** (``--floor``, on by default) is measured beside them: every source's raw
files read with Spark's own reader for the format (CSV with its header and dialect, every
column a string; JSON with ``primitivesAsString``; Parquet as it is) and written once as
Delta, no checks, no lineage, no transformation: what this machine needs to move the bytes.
Stages and the whole run are reported as a ratio to it. With several ``--people`` sizes the
growth exponent of each stage is computed between the two largest
(:mod:`cdi_spark.bench_report`), and each bench run writes ``bench/results/<time>-<people>.json``
per size plus a Markdown table and a log-log plot of seconds per stage against records.

All stages of one pass share one run id (one row in ``audit.runs``); the bench writes no run
report, so report time is in no figure.

What each figure measures
-------------------------
``seconds``
    wall time of the stage (the pipeline's own timer); the median over repeats.
``rows in / out``
    ingest: records read from the raw files -> rows written to bronze (quarantine is listed
    apart); standardize: bronze rows of the sources with a mapping -> silver records; a later
    stage: the previous stage's output -> the first row count the stage reports. Counted
    after the stage, outside its time.
``rows/s``
    rows in / median seconds.
``jobs``
    Spark jobs the stage started (its job group in Spark's status tracker).
``heap MB``
    driver JVM heap peak: the sum of the heap pools' peak usage since the stage started
    (``MemoryPoolMXBean`` peaks, reset at the start; an upper bound of the true peak, as the
    pools need not peak together). In ``local[...]`` mode the executors are threads of this
    JVM, so this is the executors' heap too.
``RSS MB``
    peak resident memory of the driver's process tree (this Python process, the JVM it
    started and the Python workers under it), sampled every 0.2 s from ``/proc``; shared
    pages of forked workers are counted once per process.
``exec MB``
    executors' peak JVM heap as Spark's status store has it (``peakMemoryMetrics`` of each
    executor, sent with the heartbeats, so sampled every ``spark.executor.heartbeatInterval``;
    since the application started, not per stage; works with the UI off). In local mode
    the only executor is the driver.

Figures depend on the machine's other load: each result line carries the load average
before and after, and the table shows medians. No test asserts a time.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import platform
import shutil
import statistics
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cdi_spark import tables
from cdi_spark.config import PipelineConfig, load_config

log = logging.getLogger(__name__)

DEFAULT_CONFIG = "conf/pipeline.yml"
DEFAULT_DATA_DIR = "bench/data"
DEFAULT_RESULTS = "bench/results.jsonl"
DEFAULT_REPORTS = "bench/results"
MARKER = "_bench.json"
SAMPLE_SECONDS = 0.2
MB = 1024 * 1024


@dataclass(frozen=True)
class StageRun:
    """One stage of one repeat."""

    stage: str
    seconds: float
    rows_in: int | None
    rows_out: int | None
    jobs: int | None
    heap_peak_mb: float | None
    rss_peak_mb: float | None
    executor_peak_mb: float | None
    counts: dict[str, int] = field(default_factory=dict)
    sources: dict[str, dict[str, float]] = field(default_factory=dict)  # ingest: per source

    @property
    def rows_per_second(self) -> float | None:
        return self.rows_in / self.seconds if self.rows_in and self.seconds else None


# --------------------------------------------------------------------------------------------
# Memory
# --------------------------------------------------------------------------------------------


def _process_tree_rss(root: int) -> int:
    """Bytes resident in ``root`` and all its descendants (``/proc``, Linux only)."""
    parents: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                ppid = int(handle.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # the process ended while we looked
        parents.setdefault(ppid, []).append(int(entry.name))
    total, todo, page = 0, [root], os.sysconf("SC_PAGE_SIZE")
    while todo:
        pid = todo.pop()
        try:
            with open(f"/proc/{pid}/statm", "rb") as handle:
                total += int(handle.read().split()[1]) * page
        except (OSError, IndexError, ValueError):
            pass
        todo.extend(parents.get(pid, []))
    return total


class RssSampler:
    """Samples the process tree's RSS in a daemon thread; ``peak`` holds the maximum in bytes."""

    def __init__(self, root: int | None = None, every: float = SAMPLE_SECONDS) -> None:
        self.root, self.every, self.peak = root or os.getpid(), every, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-rss", daemon=True)

    def _run(self) -> None:
        while True:
            self.peak = max(self.peak, _process_tree_rss(self.root))
            if self._stop.wait(self.every):
                return

    def __enter__(self) -> RssSampler:
        if Path("/proc/self/statm").exists():
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
            self.peak = max(self.peak, _process_tree_rss(self.root))


def _heap_pools(spark) -> list:
    factory = spark.sparkContext._jvm.java.lang.management.ManagementFactory
    return [p for p in factory.getMemoryPoolMXBeans() if p.getType().name() == "HEAP"]


def reset_heap_peaks(spark) -> None:
    """Start a new peak for every heap pool of the driver JVM."""
    for pool in _heap_pools(spark):
        pool.resetPeakUsage()


def heap_peak_bytes(spark) -> int:
    """Sum of the driver JVM's heap pools' peak usage since :func:`reset_heap_peaks`."""
    return sum(int(pool.getPeakUsage().getUsed()) for pool in _heap_pools(spark))


def executor_peak_bytes(spark) -> int | None:
    """Largest executor peak JVM heap in Spark's status store (None when it has none yet)."""
    try:
        executors = spark.sparkContext._jsc.sc().statusStore().executorList(True)
        peaks = [e.peakMemoryMetrics() for e in executors.toList()]  # Scala Seq -> iterable
        values = [int(p.get().getMetricValue("JVMHeapMemory")) for p in peaks if p.isDefined()]
    except Exception:  # noqa: BLE001 - an internal API: no figure rather than no benchmark
        return None
    return max(values) if values else None


# --------------------------------------------------------------------------------------------
# Running stages
# --------------------------------------------------------------------------------------------


class _IngestResults(logging.Handler):
    """Collects the :class:`~cdi_spark.ingest.IngestResult` the ingest stage logs per source."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.results: list = []

    def emit(self, record: logging.LogRecord) -> None:
        result = getattr(record, "ingest_result", None)
        if result is not None:
            self.results.append(result)


@contextmanager
def _capture_ingest() -> Iterator[_IngestResults]:
    logger = logging.getLogger("cdi_spark.ingest")
    handler, level = _IngestResults(), logger.level
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _source_figures(results: list) -> dict[str, dict[str, float]]:
    return {
        r.source: {
            "seconds": r.seconds,
            "rows_read": r.rows_read,
            "rows_bronze": r.rows_bronze,
            "rows_quarantined": r.rows_quarantined,
            "files": r.files_loaded,
        }
        for r in results
    }


def _table_rows(spark, cfg: PipelineConfig, layer: str, names: Sequence[str]) -> int:
    from cdi_spark import delta_io

    paths = [tables.table_path(cfg.lakehouse, layer, n) for n in names]
    return sum(delta_io.read(spark, p).count() for p in paths if delta_io.exists(spark, p))


def _rows(spark, cfg: PipelineConfig, stage: str, counts: dict[str, int], before: int | None):
    """(rows in, rows out) of a stage; see the module docstring."""
    if stage == "ingest":
        return counts.get("rows_read"), counts.get("rows_bronze")
    if stage == "standardize":
        mapped = [s.name for s in cfg.sources if s.mapping is not None]
        return _table_rows(spark, cfg, tables.BRONZE, mapped), counts.get("records")
    out = next((v for k, v in counts.items() if isinstance(v, int) and k not in ("sources",)), None)
    return before, out


def with_stages(cfg: PipelineConfig, stages: Sequence[str], **changes: str) -> PipelineConfig:
    """``cfg`` for other stages (and lakehouse or raw folder), without reading the YAML again.

    The YAML is read once when the bench starts: files that change while it runs (someone
    editing the tree) do not change the run.
    """
    out = dataclasses.replace(cfg, stages=tuple(stages), **changes)
    for f in dataclasses.fields(cfg):
        if not f.init:  # filled by load_config (sources, path): carry them over
            object.__setattr__(out, f.name, getattr(cfg, f.name))
    return out


def run_stage(spark, cfg: PipelineConfig, stage: str, *, before: int | None, run_id: str) -> StageRun:
    """Run one stage of run ``run_id`` through the pipeline runner and measure it."""
    from cdi_spark.pipeline import run_pipeline

    cfg = with_stages(cfg, [stage])
    sc = spark.sparkContext
    group = f"bench-{stage}-{time.time_ns()}"
    sc.setJobGroup(group, f"cdi-spark bench: {stage}")
    reset_heap_peaks(spark)
    try:
        with RssSampler() as rss, _capture_ingest() as ingest_log:
            (report,) = run_pipeline(spark, cfg, run_id=run_id, report=False)
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)
    heap, executor = heap_peak_bytes(spark), executor_peak_bytes(spark)
    jobs = len(sc.statusTracker().getJobIdsForGroup(group))
    rows_in, rows_out = _rows(spark, cfg, stage, report.counts, before)
    return StageRun(
        stage, report.seconds, rows_in, rows_out, jobs, _mb(heap), _mb(rss.peak), _mb(executor),
        dict(report.counts), _source_figures(ingest_log.results),
    )  # fmt: skip


def _mb(value: int | None) -> float | None:
    return None if value is None else round(value / MB, 1)


def run_once(
    spark,
    cfg: PipelineConfig,
    stages: Sequence[str],
    *,
    lakehouse: Path,
    raw_dir: str,
    fresh: bool = True,
    run_id: str | None = None,
) -> list[StageRun]:
    """All ``stages`` as one run: on a fresh lakehouse (the folder is removed first), or with
    ``fresh=False`` on the lakehouse as it is (an incremental run)."""
    from cdi_spark.pipeline import new_run_id

    if fresh and lakehouse.exists():
        shutil.rmtree(lakehouse)
    spark.catalog.clearCache()
    cfg = with_stages(cfg, stages, lakehouse=str(lakehouse), raw_dir=raw_dir)
    runs, before, run_id = [], None, run_id or new_run_id()
    for stage in stages:
        run = run_stage(spark, cfg, stage, before=before, run_id=run_id)
        log.info("bench %s: %.1f s, rows in %s, out %s", stage, run.seconds, run.rows_in, run.rows_out)
        runs.append(run)
        before = run.rows_out
    return runs


def run_day2(
    spark,
    cfg: PipelineConfig,
    stages: Sequence[str],
    *,
    lakehouse: Path,
    raw_dir: str,
    day1_run: str,
    full_seconds: float,
) -> dict:
    """The day-2 batch in ``raw_dir`` as an incremental run on ``lakehouse`` (left by run
    ``day1_run``): its stage figures, its cost as a ratio to ``full_seconds``, and the id
    stability when the golden stage ran."""
    from cdi_spark.golden.history import id_stability
    from cdi_spark.pipeline import new_run_id

    run_id = new_run_id()
    runs = run_once(spark, cfg, stages, lakehouse=lakehouse, raw_dir=raw_dir, fresh=False, run_id=run_id)
    seconds = sum(r.seconds for r in runs)
    out = {
        "run_id": run_id,
        "stages": summarize([runs]),
        "seconds": round(seconds, 1),
        "full_seconds": round(full_seconds, 1),
        "ratio_to_full": round(seconds / full_seconds, 3) if full_seconds else None,
        "id_stability": None,
    }
    if "golden" in stages:
        stability = id_stability(spark, str(lakehouse), day1_run, run_id)
        out["id_stability"] = {**asdict(stability), "untouched": stability.untouched, "rate": stability.rate}
    return out


def format_day2(people: int, day2: dict) -> str:
    """The stdout lines of the day-2 run: its stage table, its cost ratio, its id stability."""
    table = format_table(people, day2["stages"], 1, title=f"cdi-spark bench: day 2 on top of {people:,} people")
    lines = [
        table,
        f"day 2: {day2['seconds']:.1f} s, {day2['ratio_to_full']} of the full run's {day2['full_seconds']:.1f} s",
    ]
    stable = day2["id_stability"]
    if stable is not None:
        rate = "-" if stable["rate"] is None else f"{stable['rate']:.4%}"
        lines.append(
            f"id stability: {stable['kept']:,} of the {stable['untouched']:,} customers day 2 did not touch "
            f"kept their id ({rate}); {stable['touched']:,} of {stable['customers']:,} were touched"
        )
    return "\n".join(lines)


def io_floor(spark, cfg: PipelineConfig, *, raw_dir: str, out: Path) -> dict:
    """Read every source's raw files with Spark's plain reader and write each once as Delta
    under ``out`` (replaced); see the module docstring.

    Returns:
        ``{"seconds": wall seconds, "rows": rows written, "sources": {name: seconds}}``.
    """
    from cdi_spark.ingest.files import list_files

    if out.exists():
        shutil.rmtree(out)
    spark.catalog.clearCache()
    seconds: dict[str, float] = {}
    rows = 0
    started = time.perf_counter()
    for source in cfg.sources:
        paths = [f.path for f in list_files(spark, raw_dir, source.path)]
        if not paths:
            continue
        began = time.perf_counter()
        if source.format == "csv":
            options = {"header": str(source.header).lower(), "multiLine": "true", "encoding": source.encoding,
                       "sep": source.options.get("delimiter", ","), "quote": source.options.get("quote", '"'),
                       "escape": source.options.get("escape", source.options.get("quote", '"'))}  # fmt: skip
            df = spark.read.options(**options).csv(paths)
        elif source.format in ("json", "jsonl"):
            multiline = source.multiline if source.multiline is not None else source.format == "json"
            df = spark.read.options(multiLine=str(multiline).lower(), primitivesAsString="true").json(paths)
        else:
            _parquet_floor(spark, paths, out / source.name)
            seconds[source.name] = round(time.perf_counter() - began, 2)
            continue
        df.write.format("delta").mode("overwrite").save(str(out / source.name))
        seconds[source.name] = round(time.perf_counter() - began, 2)
    total = round(time.perf_counter() - started, 2)
    for table in sorted(p.parent for p in out.glob("**/_delta_log")):  # counted outside the time
        rows += spark.read.format("delta").load(str(table)).count()
    return {"seconds": total, "rows": rows, "sources": seconds}


def _parquet_floor(spark, paths: list[str], out: Path) -> None:
    """Parquet files written as Delta, one table per distinct file schema under ``out``.

    One read of files whose schemas clash (an export that wrote a column as text once)
    fails, so the plain floor reads each schema's files together, as a reader that knows
    its folder would.
    """
    groups: dict[str, list[str]] = {}
    for path in paths:  # a footer read per file
        groups.setdefault(spark.read.parquet(path).schema.json(), []).append(path)
    for i, files in enumerate(groups.values()):
        spark.read.parquet(*files).write.format("delta").mode("overwrite").save(str(out / f"schema-{i}"))


def match_quality(spark, lakehouse: Path, truth_dir: Path) -> dict | None:
    """The resolve stage's clusters against the generator's truth, as ``cdi-spark evaluate`` does.

    Records on one side only are left out and counted: the truth also names records that
    ingest quarantined (the planted bad rows), which never reach silver.

    Returns:
        Pairwise and B-cubed precision, recall and F1, adjusted Rand, records, clusters,
        the largest cluster and the one-sided counts; None when there are no clusters.
    """
    from cdi_spark import delta_io, tables

    path = tables.table_path(str(lakehouse), tables.SILVER, tables.ENTITY_CLUSTERS)
    if not delta_io.exists(spark, path):
        return None
    return clusters_quality(spark, delta_io.read(spark, path), truth_dir, name=path)


def clusters_quality(spark, clusters, truth_dir: Path, *, name: str) -> dict:
    """``clusters`` (``record_key``, ``cluster_id``) against the generator's truth: see :func:`match_quality`."""
    from cdi_spark.evaluate import evaluate
    from cdi_spark.resolve.labels import read_generated_truth

    truth = read_generated_truth(spark, str(truth_dir)).withColumnRenamed("record_key", "record_id")
    clusters = clusters.withColumnRenamed("record_key", "record_id")
    ev = evaluate(truth, clusters, worst=0, allow_missing=True, truth_name=str(truth_dir), clusters_name=name)
    fields = ("precision", "recall", "f1", "bcubed_precision", "bcubed_recall", "bcubed_f1", "adjusted_rand")
    return {**{f: round(getattr(ev, f), 4) for f in fields},
            **{f: getattr(ev, f) for f in ("records", "clusters", "entities", "largest_cluster", "true_pairs",
                                           "predicted_pairs", "only_in_truth", "only_in_clusters")}}  # fmt: skip


# --------------------------------------------------------------------------------------------
# The peer: Splink 5 on DuckDB, in its own virtual environment
# --------------------------------------------------------------------------------------------

PEERS = ("splink",)
DEFAULT_PEER_PYTHON = ".venv-peer/bin/python"
PEER_SCRIPT = Path(__file__).resolve().parent / "peer" / "splink_peer.py"
# The standardized fields the peer compares: the ones our matcher reads.
PEER_COLUMNS = ("record_key", "given_name_key", "family_name_key", "email_key", "phone_e164", "birth_date",
                "street", "street_number", "postcode", "city", "country")  # fmt: skip


def run_peer(spark, lakehouse: Path, truth_dir: Path, out: Path, *, python: str, threads: int, seed: int) -> dict:
    """Resolve the run's ``silver.customer_records`` with the peer and score its clusters.

    The records the resolve stage read are exported once as Parquet (``export_seconds``,
    outside the peer's time); the peer runs as its own process (:mod:`cdi_spark.peer.splink_peer`
    under ``python``, the peer's virtual environment) with ``threads`` DuckDB threads; its
    ``seconds`` are the process's wall time (start-up and imports included, as our stage's
    include the session's work), its phases come from its own ``peer.json``. Its clusters
    are scored against the truth exactly as ours are (:func:`clusters_quality`).

    Raises:
        ConfigError: the peer's python is not there (``bash scripts/setup_peer.sh`` makes it).
        RuntimeError: the peer process failed (its last lines of output are in the message).
    """
    import subprocess

    from cdi_spark import delta_io, tables
    from cdi_spark.errors import ConfigError

    if not Path(python).is_file():
        raise ConfigError("(command line)", "--peer-python", f"{python} not found: run `bash scripts/setup_peer.sh` "
                          "(or `make setup-peer`) to make the peer's virtual environment")  # fmt: skip
    if out.exists():
        shutil.rmtree(out)
    records = out / "records"
    began = time.perf_counter()
    silver = delta_io.read(spark, tables.table_path(str(lakehouse), tables.SILVER, tables.CUSTOMER_RECORDS))
    silver.select(*PEER_COLUMNS).write.parquet(str(records))
    export_seconds = round(time.perf_counter() - began, 1)
    command = [python, str(PEER_SCRIPT), "--records", str(records), "--out", str(out / "result"),
               "--threads", str(threads), "--seed", str(seed)]  # fmt: skip
    log.info("bench: peer splink: %s", " ".join(command))
    began = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with RssSampler(root=proc.pid) as rss:  # the peer's own memory, not our JVM's
        stdout, stderr = proc.communicate()
    seconds = round(time.perf_counter() - began, 1)
    if proc.returncode != 0:
        tail = "\n".join((stderr or stdout).splitlines()[-15:])
        raise RuntimeError(f"the peer (splink) exited with {proc.returncode}:\n{tail}")
    report = json.loads((out / "result" / "peer.json").read_text())
    clusters = spark.read.parquet(str(out / "result" / "clusters.parquet"))
    quality = clusters_quality(spark, clusters, truth_dir, name=f"splink clusters in {out / 'result'}")
    return {"name": "splink", "seconds": seconds, "export_seconds": export_seconds, "rss_peak_mb": _mb(rss.peak),
            "report": report, "quality": quality}  # fmt: skip


def format_peer(people: int, peer: dict, ours_seconds: float | None, ours_quality: dict | None) -> str:
    """One line comparing our resolve stage with the peer at one size."""
    q = peer["quality"]
    line = (f"peer splink at {people:,} people: {peer['seconds']:.1f} s, pairwise F1 {q['f1']:.4f}, "
            f"B-cubed F1 {q['bcubed_f1']:.4f}, {q['clusters']:,} clusters")  # fmt: skip
    if ours_seconds and peer["seconds"]:
        line += f"; our resolve took {ours_seconds / peer['seconds']:.2f} of its time"
    if ours_quality and q["f1"]:
        line += f" with {ours_quality['f1'] / q['f1']:.3f} of its pairwise F1"
    return line


def format_quality(people: int, quality: dict) -> str:
    """One line of match quality for the console."""
    return (f"match quality at {people:,} people: pairwise P {quality['precision']:.4f} R {quality['recall']:.4f} "
            f"F1 {quality['f1']:.4f}, B-cubed F1 {quality['bcubed_f1']:.4f}, ARI {quality['adjusted_rand']:.4f}; "
            f"{quality['records']:,} records in {quality['clusters']:,} clusters "
            f"(largest {quality['largest_cluster']}), {quality['only_in_truth']:,} truth records not in silver")


def ensure_data(
    spark, data_dir: Path, people: int, seed: int, batch: str = "day1", day2_share: float | None = None
) -> tuple[Path, float | None]:
    """The raw folder of ``batch`` for ``people``/``seed``, generated unless a marker says it is there.

    Each batch has a folder of its own (``people-N-seed-S`` for day 1, ``...-day2`` for day
    2, ``...-day2-share-X`` for a day 2 of share X): an incremental run reads only the new
    batch's files.

    Returns:
        The raw folder and the generation seconds (None when the data was reused).
    """
    from cdi_spark.generate import generate

    share = f"-share-{day2_share:g}" if batch == "day2" and day2_share is not None else ""
    out = data_dir / (f"people-{people}-seed-{seed}" + ("" if batch == "day1" else f"-{batch}{share}"))
    wanted = {"people": people, "seed": seed, "batch": batch, **({"day2_share": day2_share} if share else {})}
    marker = out / MARKER
    if marker.is_file() and json.loads(marker.read_text()) == wanted:
        log.info("bench: reusing %s", out)
        return out / "raw", None
    if out.exists():
        shutil.rmtree(out)
    started = time.perf_counter()
    generate(spark, out, people=people, seed=seed, batch=batch, day2_share=day2_share if batch == "day2" else None)
    marker.write_text(json.dumps(wanted))
    return out / "raw", round(time.perf_counter() - started, 1)


# --------------------------------------------------------------------------------------------
# Summaries
# --------------------------------------------------------------------------------------------


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


MEDIANS = ("seconds", "jobs", "heap_peak_mb", "rss_peak_mb", "executor_peak_mb")
COLUMNS = (  # header, key, width, format of the stdout table
    ("seconds", "seconds", 9, ".1f"),
    ("rows in", "rows_in", 12, ",.0f"),
    ("rows out", "rows_out", 12, ",.0f"),
    ("rows/s", "rows_per_s", 9, ",.0f"),
    ("jobs", "jobs", 6, ".0f"),
    ("heap MB", "heap_peak_mb", 9, ",.0f"),
    ("RSS MB", "rss_peak_mb", 9, ",.0f"),
    ("exec MB", "executor_peak_mb", 9, ",.0f"),
)
SOURCE_COLUMNS = (
    ("seconds", "seconds", 9, ".1f"),
    ("rows read", "rows_read", 12, ",.0f"),
    ("bronze", "rows_bronze", 12, ",.0f"),
    ("quarant.", "rows_quarantined", 10, ",.0f"),
    ("rows/s", "rows_per_s", 9, ",.0f"),
)


def _per_second(rows: int | None, seconds: float | None) -> int | None:
    return round(rows / seconds) if rows is not None and seconds else None


def summarize(repeats: list[list[StageRun]]) -> dict[str, dict]:
    """Median figures per stage and per ingest source over repeats (row counts: the first repeat's)."""
    out: dict[str, dict] = {}
    for i, first in enumerate(repeats[0]):
        runs = [r[i] for r in repeats]
        stage = {k: _median([getattr(r, k) for r in runs]) for k in MEDIANS}
        stage.update(rows_in=first.rows_in, rows_out=first.rows_out, seconds_all=[r.seconds for r in runs])
        stage["rows_per_s"] = _per_second(first.rows_in, stage["seconds"])
        sources = {}
        for name, figures in first.sources.items():
            seconds = _median([r.sources.get(name, {}).get("seconds") for r in runs])
            sources[name] = {**figures, "seconds": seconds, "rows_per_s": _per_second(figures["rows_read"], seconds)}
        out[first.stage] = {**stage, "counts": first.counts, "sources": sources}
    return out


def _cells(row: dict, columns: tuple) -> str:
    return "".join(f"{'-' if row.get(k) is None else format(row[k], f):>{w}}" for _, k, w, f in columns)


def format_table(people: int, summary: dict[str, dict], repeats: int, *, title: str | None = None) -> str:
    """The stdout table: one line per stage, then one per ingest source."""
    head = f"{'stage':<14}" + "".join(f"{h:>{w}}" for h, _, w, _ in COLUMNS)
    title = title or f"cdi-spark bench: {people:,} people"
    lines = [f"{title}, median of {repeats} run(s)", head, "-" * len(head)]
    lines += [f"{stage:<14}{_cells(s, COLUMNS)}" for stage, s in summary.items()]
    for stage, s in summary.items():
        if s["sources"]:
            lines += ["", f"  {stage + ' by source':<22}" + "".join(f"{h:>{w}}" for h, _, w, _ in SOURCE_COLUMNS)]
            lines += [f"  {name:<22}{_cells(f, SOURCE_COLUMNS)}" for name, f in s["sources"].items()]
    return "\n".join(lines)


def machine() -> dict:
    """Cores, memory, load and versions of the machine the figures were taken on."""
    import pyspark

    with open("/proc/meminfo") as handle:
        total_kb = int(handle.readline().split()[1])
    return {
        "cores": os.cpu_count(),
        "memory_gb": round(total_kb / 1024 / 1024, 1),
        "load_avg": os.getloadavg(),
        "python": platform.python_version(),
        "spark": pyspark.__version__,
        "host": platform.node(),
    }


def git_commit() -> dict:
    """The checked-out commit and whether the tree has uncommitted changes."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], capture_output=True, text=True, check=False)
        return done.stdout.strip()

    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    return {"commit": git("rev-parse", "HEAD") or None, "dirty": dirty}


def append_result(path: Path, record: dict) -> None:
    """Append one JSON line to the results file (created with its folder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        handle.write(json.dumps(record, default=str) + "\n")


# --------------------------------------------------------------------------------------------
# Command
# --------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of the ``bench`` command (shared with the ``cdi-spark`` CLI)."""
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="pipeline YAML (default: %(default)s)")
    parser.add_argument(
        "--people",
        type=int,
        nargs="+",
        default=[100_000],
        help="people to generate; several sizes run one after the other (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=42, help="random seed of the data (default: %(default)s)")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per size; the table shows medians (default: %(default)s)"
    )
    parser.add_argument("--stages", help="comma-separated stages (default: the config's stages this version has)")
    parser.add_argument(
        "--data-dir", default=DEFAULT_DATA_DIR, help="generated data and the bench lakehouse (default: %(default)s)"
    )
    parser.add_argument(
        "--results", default=DEFAULT_RESULTS, help="JSON Lines file the runs are appended to (default: %(default)s)"
    )
    parser.add_argument("--profile", help="Spark profile of the config (default: the config's)")
    parser.add_argument("--note", help="free text kept with the result line (what this run compares)")
    parser.add_argument(
        "--reports",
        default=DEFAULT_REPORTS,
        help="folder of the per-run JSON, Markdown table and log-log plot (default: %(default)s)",
    )
    parser.add_argument(
        "--floor",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="measure the I/O floor beside each size (default: on)",
    )
    parser.add_argument(
        "--day2",
        action="store_true",
        help="after the largest size, run the generated day-2 batch incrementally on top of it: its cost as a "
        "ratio to the full run and the id stability",
    )
    parser.add_argument(
        "--peer",
        choices=PEERS,
        help="also resolve each size's standardized records with this peer (Splink 5 on DuckDB, in its own "
        "virtual environment: bash scripts/setup_peer.sh) and compare time and match quality",
    )
    parser.add_argument(
        "--peer-python",
        default=DEFAULT_PEER_PYTHON,
        help="python of the peer's virtual environment (default: %(default)s)",
    )
    parser.add_argument(
        "--day2-share",
        type=float,
        default=0.01,
        help="share of the people new or changed in the day-2 batch; joiners and new activity scale with it "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--on-last-run",
        action="store_true",
        help="skip the full run: run --peer and/or --day2 on the lakehouse the last bench of this one size left in "
        "--data-dir, against that bench's line in --results",
    )


def _load(args: argparse.Namespace) -> PipelineConfig:
    """The configuration, read once; its stages are ``--stages`` or those of the config this version has."""
    from cdi_spark.pipeline import STAGES, check_stages

    wanted = [s.strip() for s in args.stages.split(",") if s.strip()] if args.stages else None
    cfg = load_config(args.config, profile=args.profile, stages=wanted)
    if wanted:
        check_stages(cfg)
        return cfg
    return with_stages(cfg, [s for s in cfg.stages if s in STAGES])


def cmd_bench(args: argparse.Namespace) -> int:
    """Generate demo data of each size (once), run the pipeline's stages on a fresh lakehouse,
    and report seconds, rows, rows/s and peak memory per stage (medians of --repeat runs)."""
    from cdi_spark.errors import ConfigError
    from cdi_spark.pipeline import new_run_id
    from cdi_spark.session import build_session

    if args.repeat < 1:
        raise ConfigError("(command line)", "--repeat", f"expected a count >= 1, found {args.repeat}")
    if args.on_last_run and len(args.people) != 1:
        raise ConfigError("(command line)", "--on-last-run", f"expected one --people size, found {len(args.people)}")
    cfg = _load(args)
    stages = cfg.stages
    spark = build_session(cfg.spark, app_name="cdi-spark bench")
    data_dir = Path(args.data_dir)
    if args.on_last_run:
        records = [on_last_run(spark, cfg, args)]
        return _reports(records, args)
    records = []
    for people in args.people:
        raw_dir, generated = ensure_data(spark, data_dir, people, args.seed)
        load_before = os.getloadavg()
        lakehouse, run_ids = data_dir / "lakehouse", [new_run_id() for _ in range(args.repeat)]
        repeats = [
            run_once(spark, cfg, stages, lakehouse=lakehouse, raw_dir=str(raw_dir), run_id=run_id) for run_id in run_ids
        ]
        summary = summarize(repeats)
        print(format_table(people, summary, args.repeat), flush=True)
        quality = match_quality(spark, lakehouse, raw_dir.parent / "truth") if "resolve" in stages else None
        if quality:
            print(format_quality(people, quality), flush=True)
        peer = None
        if args.peer and quality:
            peer = run_peer(spark, lakehouse, raw_dir.parent / "truth", data_dir / "peer", python=args.peer_python,
                            threads=os.cpu_count() or 1, seed=args.seed)  # fmt: skip
            print(format_peer(people, peer, summary.get("resolve", {}).get("seconds"), quality), flush=True)
        floor = None
        if args.floor:
            floors = [io_floor(spark, cfg, raw_dir=str(raw_dir), out=data_dir / "floor") for _ in range(args.repeat)]
            floor = {**floors[0], "seconds": statistics.median(f["seconds"] for f in floors),
                     "seconds_all": [f["seconds"] for f in floors]}  # fmt: skip
            total = sum(s["seconds"] or 0 for s in summary.values())
            print(f"I/O floor: {floor['seconds']:.1f} s for {floor['rows']:,} rows; the stages took "
                  f"{total / floor['seconds']:.1f} times that", flush=True)  # fmt: skip
        day2 = None
        if args.day2 and people == max(args.people):
            day2_raw, _ = ensure_data(spark, data_dir, people, args.seed, batch="day2", day2_share=args.day2_share)
            full_seconds = statistics.median(sum(r.seconds for r in runs) for runs in repeats)
            day2 = run_day2(
                spark,
                cfg,
                stages,
                lakehouse=lakehouse,
                raw_dir=str(day2_raw),
                day1_run=run_ids[-1],
                full_seconds=full_seconds,
            )
            day2["share"] = args.day2_share
            print(format_day2(people, day2), flush=True)
        record = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            **git_commit(),
            "machine": {**machine(), "load_avg_before": load_before},
            "people": people,
            "seed": args.seed,
            "repeats": args.repeat,
            "stages": summary,
            "generate_seconds": generated,
            "spark_conf": {k: v for k, v in cfg.spark.conf.items()},
            "master": cfg.spark.master,
            "runs": [[asdict(r) for r in runs] for runs in repeats],
            "run_ids": run_ids,
            "note": args.note,
            "io_floor": floor,
            "quality": quality,
            "peer": peer,
            "day2": day2,
        }
        records.append(record)
        append_result(Path(args.results), record)
        log.info("bench: %s people appended to %s", f"{people:,}", args.results)
    return _reports(records, args)


def _reports(records: list[dict], args: argparse.Namespace) -> int:
    from cdi_spark.bench_report import growth_exponents, write_reports

    for stage, exponent in growth_exponents(records).items():
        log.info("bench: growth exponent of %s: %.2f", stage, exponent)
    for path in write_reports(records, Path(args.reports)):
        print(f"bench: wrote {path}", flush=True)
    return 0


def full_run_record(results: Path, people: int, seed: int) -> dict:
    """The newest line of ``results`` for a full run of ``people`` and ``seed``.

    Raises:
        ConfigError: there is none.
    """
    from cdi_spark.errors import ConfigError

    lines = [json.loads(line) for line in results.read_text().splitlines() if line.strip()] if results.is_file() else []
    found = [r for r in lines
             if (r.get("people"), r.get("seed")) == (people, seed) and r.get("stages") and not r.get("on_last_run")]
    if not found:
        raise ConfigError("(command line)", "--on-last-run", f"{results} has no full run of {people:,} people with "
                          f"seed {seed}: run the bench without --on-last-run first")  # fmt: skip
    return found[-1]


def on_last_run(spark, cfg: PipelineConfig, args: argparse.Namespace) -> dict:
    """``--peer`` and then ``--day2`` on the lakehouse a previous bench of the one ``--people``
    size left: the record of that full run with this ``peer`` and ``day2``, appended to
    ``--results`` (marked ``on_last_run``, with the full run's date).

    Raises:
        ConfigError: neither --peer nor --day2 was asked for, no full run of that size is on
            record, or the lakehouse is not as that full run left it (missing, or holding
            more than its one run: a day 2 ran on it already).
    """
    from cdi_spark import delta_io, tables
    from cdi_spark.bench_report import total_seconds
    from cdi_spark.errors import ConfigError

    if not (args.peer or args.day2):
        raise ConfigError("(command line)", "--on-last-run", "nothing to do: add --peer and/or --day2")
    (people,) = args.people
    data_dir = Path(args.data_dir)
    full = full_run_record(Path(args.results), people, args.seed)
    lakehouse = data_dir / "lakehouse"
    runs_path = tables.table_path(str(lakehouse), tables.AUDIT, tables.RUNS)
    run_ids = (
        sorted({r["run_id"] for r in delta_io.read(spark, runs_path).select("run_id").collect()})
        if delta_io.exists(spark, runs_path)
        else []
    )
    if len(run_ids) != 1 or (full.get("run_ids") and run_ids[0] != full["run_ids"][-1]):
        raise ConfigError("(command line)", "--on-last-run", f"{lakehouse} holds {len(run_ids)} run(s) "
                          f"{', '.join(run_ids)}; it must be as the full run of {full['date']} left it: "
                          "run the bench again without --on-last-run")  # fmt: skip
    record = {**full, "on_last_run": True, "full_run_date": full["date"],
              "date": datetime.now(UTC).isoformat(timespec="seconds"), "note": args.note}  # fmt: skip
    if args.peer:
        raw_dir, _ = ensure_data(spark, data_dir, people, args.seed)
        record["peer"] = run_peer(spark, lakehouse, raw_dir.parent / "truth", data_dir / "peer",
                                  python=args.peer_python, threads=os.cpu_count() or 1, seed=args.seed)  # fmt: skip
        resolve = full["stages"].get("resolve", {}).get("seconds")
        print(format_peer(people, record["peer"], resolve, full.get("quality")), flush=True)
    if args.day2:
        day2_raw, _ = ensure_data(spark, data_dir, people, args.seed, batch="day2", day2_share=args.day2_share)
        day2 = run_day2(spark, cfg, cfg.stages, lakehouse=lakehouse, raw_dir=str(day2_raw), day1_run=run_ids[0],
                        full_seconds=total_seconds(full))  # fmt: skip
        record["day2"] = {**day2, "share": args.day2_share}
        print(format_day2(people, day2), flush=True)
    append_result(Path(args.results), record)
    log.info("bench: %s people, on the last run, appended to %s", f"{people:,}", args.results)
    return record


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m cdi_spark.bench --people 100000 --repeat 3``; returns the exit code."""
    import sys

    from cdi_spark.errors import CdiError
    from cdi_spark.logs import setup_logging

    parser = argparse.ArgumentParser(prog="cdi-spark bench", description=cmd_bench.__doc__)
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (default: %(default)s)")
    add_arguments(parser)
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    try:
        return cmd_bench(args)
    except CdiError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
