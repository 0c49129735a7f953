"""``cdi-spark resolve-file``: deduplicate and link CSV files of people, no code, no lakehouse.

The same matcher as the pipeline's resolve stage (:mod:`cdi_spark.resolve.matcher`), fed
from files instead of ``silver.customer_records``:

1. read the inputs (all text; ids unique across inputs) and infer each column's role from
   its name and content (:mod:`cdi_spark.resolve.roles`), printed for the user;
2. standardize the columns into a match frame with the pipeline's standardizers;
3. take the matching settings from ``--matching`` or infer them from the roles
   (``cdi-spark init-matching`` prints the inferred file for editing);
4. train a Zingg model on the ``--labels`` CSV, or bootstrap one from sure pairs;
5. match, cluster, and write ``record_id,cluster_id,input`` as one CSV with a header.

Everything temporary (model, checkpoints) lives in a work folder that is removed at the end
unless ``--keep-work`` is given.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from cdi_spark.config import MatchingConfig, parse, read_yaml
from cdi_spark.errors import CdiError
from cdi_spark.logs import timed
from cdi_spark.resolve import matcher, roles

log = logging.getLogger(__name__)


@dataclass
class ResolveFileReport:
    """What ``resolve-file`` did: counts and seconds per step."""

    records: int = 0
    clusters: int = 0
    multi_record_clusters: int = 0
    largest_cluster: int = 0
    candidates: int = 0
    edges: int = 0
    matches: int = 0
    non_matches: int = 0
    bootstrapped: bool = False
    seconds: dict[str, float] = field(default_factory=dict)

    def format(self) -> str:
        """A few lines for the console."""
        steps = ", ".join(f"{k} {v:.1f} s" for k, v in self.seconds.items())
        trained = "bootstrapped sure pairs" if self.bootstrapped else "labelled pairs"
        return (
            f"{self.records:,} records -> {self.clusters:,} clusters ({self.multi_record_clusters:,} with more "
            f"than one record, largest {self.largest_cluster})\n"
            f"{self.candidates:,} candidate pairs, {self.edges:,} match edges; model trained on "
            f"{self.matches} matching and {self.non_matches} non-matching {trained}\n"
            f"time: {steps}"
        )


def load_matching_file(path: str | Path) -> MatchingConfig:
    """A matching.yml given with ``--matching`` (strictly validated)."""
    return parse(MatchingConfig, read_yaml(path), file=path)


def inferred_matching(inferred: list[roles.ColumnRole]) -> MatchingConfig:
    """The matching settings ``init-matching`` would write for these roles."""
    return parse(MatchingConfig, yaml.safe_load(roles.render_matching_yaml(inferred)), file="(inferred)")


def write_single_csv(frame: DataFrame, output: str | Path) -> None:
    """Write a frame as one CSV file with a header, replacing ``output`` atomically."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = output.parent / f".{output.name}.parts"
    if staging.exists():
        shutil.rmtree(staging)
    frame.coalesce(1).write.option("header", True).option("escape", '"').csv(str(staging))
    parts = sorted(staging.glob("part-*.csv"))
    if len(parts) != 1:
        raise CdiError(f"writing {output}: expected one CSV part in {staging}, found {len(parts)}")
    parts[0].replace(output)
    shutil.rmtree(staging)


def resolve_file(
    spark: SparkSession,
    inputs: list[str],
    *,
    id_column: str,
    output: str,
    labels_csv: str | None = None,
    matching_path: str | None = None,
    work_dir: str | None = None,
    keep_work: bool = False,
    show=print,
) -> ResolveFileReport:
    """Resolve the people in ``inputs`` into clusters written to ``output``; see the module docstring.

    Raises:
        CdiError: unreadable inputs, duplicate ids, a bad matching file or labels CSV.
    """
    from cdi_spark.resolve.labels import read_labels_csv

    report = ResolveFileReport()
    work = Path(work_dir or tempfile.mkdtemp(prefix="cdi-resolve-"))
    work.mkdir(parents=True, exist_ok=True)
    spark.sparkContext.setCheckpointDir(str(work / "checkpoints"))
    frame = None
    try:
        with timed() as clock:
            people = roles.read_people_csv(spark, inputs, id_column)
            inferred = roles.infer_roles(people, id_column)
            show("Column roles (from names and content):\n" + roles.format_roles(inferred))
            matching = load_matching_file(matching_path) if matching_path else inferred_matching(inferred)
            frame = roles.match_frame(people, id_column, inferred).persist()
            report.records = frame.count()
        report.seconds["read+standardize"] = clock["seconds"]
        log.info("resolve-file: %d records from %d input(s)", report.records, len(inputs))
        matcher.require_columns(
            frame, matching, "resolve-file (the matching settings name columns the inputs do not have)"
        )

        with timed() as clock:
            labels = None
            if labels_csv:
                labels = read_labels_csv(spark, labels_csv, known_keys=frame.select("record_key"))
            trained = matcher.train_model(spark, frame, matching, str(work / "models"), labels=labels)
        report.seconds["train"] = clock["seconds"]
        report.matches, report.non_matches, report.bootstrapped = (
            trained.matches,
            trained.non_matches,
            trained.bootstrapped,
        )

        with timed() as clock:
            result = matcher.match(spark, frame, matching, trained.model)
            clusters = result.clusters.join(frame.select("record_key", "_input"), "record_key").select(
                F.col("record_key").alias("record_id"), "cluster_id", F.col("_input").alias("input")
            )
            write_single_csv(clusters.orderBy("cluster_id", "record_id"), output)
        report.seconds["match+cluster+write"] = clock["seconds"]
        sizes = result.clusters.groupBy("cluster_id").count()
        agg = sizes.agg(
            F.count(F.lit(1)).alias("n"),
            F.sum((F.col("count") > 1).cast("int")).alias("multi"),
            F.max("count").alias("largest"),
        ).first()
        report.clusters, report.multi_record_clusters, report.largest_cluster = agg["n"], agg["multi"], agg["largest"]
        report.candidates = result.candidates.pairs.count()
        report.edges = result.edges.count()
        result.release()
        show(f"\nWrote {output}\n" + report.format())
        return report
    finally:
        if frame is not None:
            frame.unpersist()
        if keep_work:
            log.info("resolve-file: work folder kept at %s", work)
        else:
            shutil.rmtree(work, ignore_errors=True)
