"""Match quality against ground truth: pairwise and cluster-level measures, worst mistakes.

Reads a truth table (record_id, entity_id) and a clustering (record_id, cluster_id), as
DataFrames or as CSV files with headers; writes nothing. Backs ``cdi-spark evaluate``.

Everything is computed from the contingency table ``n[c, e]`` = records in cluster ``c``
and entity ``e`` (one ``groupBy``), never from a self-join, so it scales with the number
of records, not pairs:

* correct pairs = sum C(n[c,e], 2); predicted pairs = sum over clusters of C(|c|, 2);
  true pairs = sum over entities of C(|e|, 2); pairwise precision = correct / predicted,
  recall = correct / true (1.0 when the denominator is 0: no pairs, no mistakes);
* B-cubed precision = (1/N) sum n[c,e]^2 / |c|, recall = (1/N) sum n[c,e]^2 / |e|;
* adjusted Rand index from the same three pair counts;
* worst false merges: clusters with the most wrong pairs (spanning most entities);
  worst false splits: entities with the most missed pairs (spread over most clusters).

Record ids present in one input but not the other are an error by default, with the
counts and a few example ids: a clustering that lost records, or a truth file for other
data, would otherwise give believable but wrong numbers. ``allow_missing=True`` evaluates
on the records in both and logs a warning with the counts; they are also in the result.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pyspark import StorageLevel
from pyspark.errors import AnalysisException
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from cdi_spark.errors import CdiError, MissingColumnError, StageError

log = logging.getLogger(__name__)

STAGE = "evaluate"
EXAMPLES = 5


@dataclass(frozen=True)
class Span:
    """A cluster (or entity) and how many entities (or clusters) its records span.

    Attributes:
        id: the cluster id (false merges) or entity id (false splits).
        size: its records.
        spans: distinct entities (or clusters) among them.
        wrong_pairs: pairs wrongly joined (merges) or wrongly apart (splits).
    """

    id: str
    size: int
    spans: int
    wrong_pairs: int


@dataclass(frozen=True)
class Evaluation:
    """Quality of a clustering against the truth (small metadata only)."""

    precision: float
    recall: float
    f1: float
    true_pairs: int
    predicted_pairs: int
    correct_pairs: int
    bcubed_precision: float
    bcubed_recall: float
    bcubed_f1: float
    adjusted_rand: float
    records: int
    clusters: int
    entities: int
    largest_cluster: int
    worst_false_merges: tuple[Span, ...] = ()
    worst_false_splits: tuple[Span, ...] = ()
    only_in_truth: int = 0
    only_in_clusters: int = 0


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def _ratio(num: float, den: float) -> float:
    return num / den if den else 1.0


def _pairs(n: Column) -> Column:
    """C(n, 2) as an exact long (``n`` is a long count)."""
    return F.shiftright(n * (n - 1), 1)


def evaluate(truth: DataFrame, clusters: DataFrame, *, worst: int = 5, allow_missing: bool = False,
             truth_name: str = "truth", clusters_name: str = "clusters") -> Evaluation:
    """Compare a clustering with the truth.

    Args:
        truth: record_id, entity_id (other columns are ignored).
        clusters: record_id, cluster_id (other columns are ignored).
        worst: how many worst false merges and splits to report.
        allow_missing: evaluate on the records in both inputs instead of failing when
            some record ids are in only one of them.
        truth_name: how messages name the truth input (a file name, say).
        clusters_name: how messages name the clusters input.

    Returns:
        The measures; see :class:`Evaluation`.

    Raises:
        MissingColumnError: an input lacks record_id or its id column.
        StageError: empty, null or duplicated record ids, null entity or cluster ids, or
            (unless ``allow_missing``) record ids in only one input, with counts.
    """
    _require(truth, ("record_id", "entity_id"), truth_name)
    _require(clusters, ("record_id", "cluster_id"), clusters_name)
    t = truth.select(F.col("record_id").cast("string"), F.col("entity_id").cast("string"))
    c = clusters.select(F.col("record_id").cast("string"), F.col("cluster_id").cast("string"))
    t = t.groupBy("record_id").agg(F.count(F.lit(1)).alias("_t"), F.min("entity_id").alias("entity_id"),
                                   F.count("entity_id").alias("_te"))
    c = c.groupBy("record_id").agg(F.count(F.lit(1)).alias("_c"), F.min("cluster_id").alias("cluster_id"),
                                   F.count("cluster_id").alias("_ce"))
    joined = t.join(c, "record_id", "full_outer").persist(StorageLevel.MEMORY_AND_DISK)
    try:
        only_truth, only_clusters = _check(joined, truth_name, clusters_name, allow_missing)
        both = joined.filter(F.col("_t").isNotNull() & F.col("_c").isNotNull())
        table = both.groupBy("cluster_id", "entity_id").agg(F.count(F.lit(1)).alias("n"))
        table = table.persist(StorageLevel.MEMORY_AND_DISK)
        try:
            return _measure(table, worst, only_truth, only_clusters)
        finally:
            table.unpersist()
    finally:
        joined.unpersist()


def _require(frame: DataFrame, columns: tuple[str, ...], where: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise MissingColumnError(where, missing, frame.columns)


def _check(joined: DataFrame, truth_name: str, clusters_name: str, allow_missing: bool) -> tuple[int, int]:
    """Raise on unusable ids; return (only in truth, only in clusters) counts (small metadata)."""
    in_t, in_c = F.col("_t").isNotNull(), F.col("_c").isNotNull()
    s = joined.agg(
        F.count(F.when(F.col("record_id").isNull(), True)).alias("null_ids"),
        F.count(F.when(F.col("_t") > 1, True)).alias("dup_t"),
        F.count(F.when(F.col("_c") > 1, True)).alias("dup_c"),
        F.count(F.when(in_t & (F.col("_te") < F.col("_t")), True)).alias("null_t"),
        F.count(F.when(in_c & (F.col("_ce") < F.col("_c")), True)).alias("null_c"),
        F.count(F.when(in_t & ~in_c, True)).alias("only_t"),
        F.count(F.when(in_c & ~in_t, True)).alias("only_c"),
        F.count(F.when(in_t & in_c, True)).alias("both"),
    ).first()
    problems = []
    if s["null_ids"]:
        problems.append(f"rows with an empty record_id in {truth_name} or {clusters_name}")
    for key, name, column in (("dup_t", truth_name, "entity_id"), ("dup_c", clusters_name, "cluster_id")):
        if s[key]:
            problems.append(f"{s[key]} record ids appear more than once in {name} (one {column} per record)")
    for key, name, column in (("null_t", truth_name, "entity_id"), ("null_c", clusters_name, "cluster_id")):
        if s[key]:
            problems.append(f"{s[key]} records have an empty {column} in {name}")
    if problems:
        raise StageError(STAGE, "; ".join(problems))
    only_t, only_c = int(s["only_t"]), int(s["only_c"])
    if only_t or only_c:
        detail = (
            f"{only_t} record ids are in {truth_name} but not in {clusters_name}{_examples(joined, '_c')}; "
            f"{only_c} are in {clusters_name} but not in {truth_name}{_examples(joined, '_t')}; {s['both']} in both"
        )
        if not allow_missing:
            raise StageError(STAGE, f"{detail}. Check that both files describe the same records, or evaluate on "
                                    "the records in both (allow_missing=True / --allow-missing)")
        log.warning("evaluate: %s; evaluating on the %d records in both", detail, s["both"])
    if not s["both"]:
        raise StageError(STAGE, f"no record id is in both {truth_name} and {clusters_name}")
    return only_t, only_c


def _examples(joined: DataFrame, absent: str) -> str:
    """A few example ids (small metadata for the message)."""
    if not joined.filter(F.col(absent).isNull()).limit(1).count():
        return ""
    rows = joined.filter(F.col(absent).isNull()).select("record_id").orderBy("record_id").limit(EXAMPLES).collect()
    return " (e.g. " + ", ".join(r.record_id for r in rows) + ")"


def _measure(table: DataFrame, worst: int, only_truth: int, only_clusters: int) -> Evaluation:
    n = F.col("n")
    per_cluster = table.groupBy("cluster_id").agg(
        F.sum(n).alias("size"), F.count(F.lit(1)).alias("spans"),
        F.sum(_pairs(n)).alias("right"), F.sum(n * n).alias("sq"),
    )
    per_entity = table.groupBy("entity_id").agg(
        F.sum(n).alias("size"), F.count(F.lit(1)).alias("spans"),
        F.sum(_pairs(n)).alias("right"), F.sum(n * n).alias("sq"),
    )
    side = [F.count(F.lit(1)).alias("groups"), F.sum(_pairs(F.col("size"))).alias("pairs"),
            F.sum(F.col("sq") / F.col("size")).alias("bcubed"), F.sum("right").alias("right"),
            F.sum("size").alias("records"), F.max("size").alias("largest")]
    cs, es = per_cluster.agg(*side).first(), per_entity.agg(*side).first()  # one row each: small metadata
    records, correct = int(cs["records"]), int(cs["right"])
    predicted, true = int(cs["pairs"]), int(es["pairs"])
    precision, recall = _ratio(correct, predicted), _ratio(correct, true)
    bp, br = cs["bcubed"] / records, es["bcubed"] / records
    return Evaluation(
        precision=precision, recall=recall, f1=_f1(precision, recall),
        true_pairs=true, predicted_pairs=predicted, correct_pairs=correct,
        bcubed_precision=bp, bcubed_recall=br, bcubed_f1=_f1(bp, br),
        adjusted_rand=_adjusted_rand(correct, predicted, true, records),
        records=records, clusters=int(cs["groups"]), entities=int(es["groups"]), largest_cluster=int(cs["largest"]),
        worst_false_merges=_worst(per_cluster, "cluster_id", worst),
        worst_false_splits=_worst(per_entity, "entity_id", worst),
        only_in_truth=only_truth, only_in_clusters=only_clusters,
    )


def _adjusted_rand(index: int, predicted: int, true: int, records: int) -> float:
    """Hubert-Arabie adjusted Rand index from pair counts (1.0 when both sides are trivial)."""
    total = records * (records - 1) / 2
    expected = predicted * true / total if total else 0.0
    best = (predicted + true) / 2
    return (index - expected) / (best - expected) if best != expected else 1.0


def _worst(groups: DataFrame, id_column: str, worst: int) -> tuple[Span, ...]:
    """The groups with the most wrong pairs (small metadata: at most ``worst`` rows)."""
    if worst <= 0:
        return ()
    wrong = (_pairs(F.col("size")) - F.col("right")).alias("wrong")
    rows = (groups.filter(F.col("spans") > 1).select(id_column, "size", "spans", wrong)
            .orderBy(F.desc("wrong"), F.desc("spans"), id_column).limit(worst).collect())
    return tuple(Span(r[id_column], int(r["size"]), int(r["spans"]), int(r["wrong"])) for r in rows)


def read_csv_pairs(spark: SparkSession, path: str, id_column: str, value_column: str) -> DataFrame:
    """Read a CSV with a header into (id_column, value_column), all text.

    Header names are matched without surrounding spaces, a byte-order mark or case; extra
    columns are allowed.

    Raises:
        CdiError: the file cannot be read.
        MissingColumnError: a column is absent (the message names the file and lists the header).
    """
    try:
        frame = spark.read.option("header", True).option("inferSchema", False).csv(path)
    except AnalysisException as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CdiError(f"{path}: cannot read the CSV file: {reason}") from exc
    present = {c.strip().lstrip("\ufeff").strip().lower(): c for c in frame.columns}
    missing = [c for c in (id_column, value_column) if c not in present]
    if missing:
        raise MissingColumnError(f"{path} (header)", missing, frame.columns)
    return frame.select(F.col(f"`{present[id_column]}`").alias(id_column),
                        F.col(f"`{present[value_column]}`").alias(value_column))


def evaluate_files(spark: SparkSession, truth_csv: str, clusters_csv: str, *, worst: int = 5,
                   allow_missing: bool = False) -> Evaluation:
    """Evaluate a clusters CSV (record_id,cluster_id) against a truth CSV (record_id,entity_id).

    Args:
        spark: the session.
        truth_csv: path of the truth file.
        clusters_csv: path of the clusters file (``resolve-file``'s output).
        worst: how many worst false merges and splits to report.
        allow_missing: evaluate on the records in both files instead of failing.

    Raises:
        CdiError: unreadable file, missing column (named with the file), or unusable ids.
    """
    truth = read_csv_pairs(spark, truth_csv, "record_id", "entity_id")
    clusters = read_csv_pairs(spark, clusters_csv, "record_id", "cluster_id")
    return evaluate(truth, clusters, worst=worst, allow_missing=allow_missing,
                    truth_name=str(truth_csv), clusters_name=str(clusters_csv))


def format_evaluation(ev: Evaluation) -> str:
    """A console report of an :class:`Evaluation`."""
    lines = [
        f"records {ev.records:,}   clusters {ev.clusters:,}   entities {ev.entities:,}   "
        f"largest cluster {ev.largest_cluster:,}",
        "",
        f"pairwise    precision {ev.precision:.4f}   recall {ev.recall:.4f}   F1 {ev.f1:.4f}",
        f"            pairs: true {ev.true_pairs:,}   predicted {ev.predicted_pairs:,}   "
        f"correct {ev.correct_pairs:,}",
        f"B-cubed     precision {ev.bcubed_precision:.4f}   recall {ev.bcubed_recall:.4f}   F1 {ev.bcubed_f1:.4f}",
        f"adjusted Rand index {ev.adjusted_rand:.4f}",
    ]
    if ev.only_in_truth or ev.only_in_clusters:
        lines.append(f"not evaluated: {ev.only_in_truth:,} records only in the truth, "
                     f"{ev.only_in_clusters:,} only in the clusters")
    for title, spans, what, missing in (
        ("worst false merges (clusters holding several entities)", ev.worst_false_merges, "entities", "wrong"),
        ("worst false splits (entities spread over several clusters)", ev.worst_false_splits, "clusters", "missed"),
    ):
        lines += ["", title + ":"]
        if not spans:
            lines.append("  none")
        for s in spans:
            lines.append(f"  {s.id}: {s.size:,} records in {s.spans:,} {what}, {s.wrong_pairs:,} {missing} pairs")
    return "\n".join(lines)
