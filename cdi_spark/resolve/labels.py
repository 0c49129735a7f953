"""Match labels: pairs of records a person (or the ground truth) has said are, or are not, one person.

Labels live in the Delta table ``silver.match_labels`` (one row per unordered pair, stored
with ``left_key < right_key``; :data:`LABEL_SCHEMA`). A newer label of a pair replaces the
older one by MERGE, and the older answer stays in the table's Delta history, with the run
that wrote each version in its commit's ``userMetadata``.

Where labels come from (the ``origin`` column):

* ``console`` / ``notebook``: :func:`label_interactively` shows candidate pairs chosen by
  :func:`pairs_to_label` one at a time, fields side by side, and asks yes / no / unsure;
* ``csv``: :func:`import_labels_csv` reads a data steward's ``left_id,right_id,is_match``
  file, checks all of it, and writes nothing unless every line is good;
* ``truth``: for generated demo data, :func:`truth_labels` answers from the ground truth
  (:func:`read_generated_truth`, :func:`read_truth_csv`), so the demo and the tests train a
  real model without a person;
* ``bootstrap``: sure matches and non-matches the training stage finds by itself.

How they are used: the training stage reads them with :func:`read_labels` and gives the
match model (:func:`cdi_spark.resolve.zingg.train`, which takes ``left_key, right_key,
is_match``) at most ``training.max_labels`` of them.

Reads: a labels CSV, ground truth, candidate pairs, ``silver.customer_records`` (for the
fields shown while labelling). Writes: ``silver.match_labels`` only, through
:func:`cdi_spark.delta_io.merge_upsert`.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from pyspark import StorageLevel
from pyspark.errors import AnalysisException
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from cdi_spark import delta_io
from cdi_spark.errors import CdiError, MissingColumnError
from cdi_spark.evaluate import read_csv_pairs
from cdi_spark.ingest.text import numbered_lines
from cdi_spark.resolve.zingg_settings import KEY, LABEL_COLUMNS

log = logging.getLogger(__name__)

PAIR_KEYS = ("left_key", "right_key")
LABEL_SCHEMA = T.StructType(
    [
        T.StructField("left_key", T.StringType()),  # record_key; left_key < right_key
        T.StructField("right_key", T.StringType()),
        T.StructField("is_match", T.BooleanType()),
        T.StructField("origin", T.StringType()),  # one of ORIGINS
        T.StructField("labelled_by", T.StringType()),  # user name, file path or "ground truth"
        T.StructField("labelled_at", T.TimestampType()),
        T.StructField("run_id", T.StringType()),
    ]
)
LABEL_TABLE_COLUMNS = tuple(LABEL_SCHEMA.fieldNames())
ORIGINS = ("console", "notebook", "csv", "truth", "bootstrap")
CSV_COLUMNS = ("left_id", "right_id", "is_match")
TRUE_VALUES = ("true", "1", "yes", "y")
FALSE_VALUES = ("false", "0", "no", "n")
MAX_SHOWN_PROBLEMS = 10
MAX_INTERACTIVE_PAIRS = 5_000  # pairs are collected to the driver to be shown
WIDTH = 40  # longest value shown in a message or a labelling column


class LabelsError(CdiError, ValueError):
    """Labels cannot be read or saved; nothing was written.

    Attributes:
        file: the labels file at fault, when there is one.
        problems: the first few problems as ``(line, field, what)``.
        total: how many problems were found in all.
    """

    def __init__(self, message: str, *, file: str | None = None, problems=(), total: int = 0) -> None:
        self.file = file
        self.problems = tuple(problems)
        self.total = total
        super().__init__(message)


# --------------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------------


def save_labels(
    spark: SparkSession, table_path: str, labels: DataFrame, *, origin: str, labelled_by: str, run_id: str
) -> int:
    """Upsert labelled pairs into the labels table: one MERGE, one Delta version.

    Pairs are stored ordered (``left_key < right_key``); ``(b, a)`` and ``(a, b)`` are one
    pair. A pair already in the table takes the new answer (the old one stays in history).
    Pairs of a record with itself are dropped and counted in a warning.

    Args:
        spark: the session.
        table_path: the table folder (``<lakehouse>/silver/match_labels``); created if missing.
        labels: ``left_key, right_key, is_match`` (other columns are ignored).
        origin: one of :data:`ORIGINS`.
        labelled_by: who answered: a user name, the file's path, ``"ground truth"``.
        run_id: recorded in every row and in the commit's ``userMetadata``.

    Returns:
        The number of pairs written.

    Raises:
        MissingColumnError: ``labels`` lacks a column.
        LabelsError: unknown origin; empty keys or answers; a pair answered both ways in
            ``labels``. Nothing is written then.
    """
    _require(labels, LABEL_COLUMNS, "save_labels labels")
    if origin not in ORIGINS:
        raise LabelsError(f"save_labels: origin {origin!r} is not one of {', '.join(ORIGINS)}")
    answer = F.col("is_match").cast("boolean")
    pairs = labels.groupBy(*_unordered("left_key", "right_key")).agg(
        F.count(F.lit(1)).alias("_n"),
        F.min(answer).alias("_lo"),
        F.max(answer).alias("_hi"),
        F.count(answer).alias("_answered"),
    )
    keyed = F.col("left_key").isNotNull() & F.col("right_key").isNotNull()
    self_pair = F.col("left_key") == F.col("right_key")
    stats = pairs.agg(  # one row: small metadata
        F.sum(F.when(~keyed | (F.col("_answered") < F.col("_n")), F.col("_n")).otherwise(0)).alias("empty"),
        F.sum(F.when(keyed & self_pair, F.col("_n")).otherwise(0)).alias("self"),
        F.count(F.when(keyed & ~self_pair & (F.col("_lo") != F.col("_hi")), True)).alias("contradictory"),
        F.count(F.when(keyed & ~self_pair, True)).alias("pairs"),
    ).first()
    if stats["empty"]:
        raise LabelsError(
            f"save_labels: {_count(stats['empty'], 'label')} with an empty left_key, right_key or is_match; "
            "nothing was saved"
        )
    if stats["contradictory"]:
        raise LabelsError(
            f"save_labels: {_count(stats['contradictory'], 'pair')} labelled both as a match and as a "
            "non-match in this batch; keep one answer per pair. Nothing was saved"
        )
    if stats["self"]:
        log.warning("save_labels: %d labels pair a record with itself; dropped", stats["self"])
    written = int(stats["pairs"] or 0)
    if not written:
        log.warning("save_labels: no labels to save (origin %s, run %s)", origin, run_id)
        return 0
    rows = pairs.filter(~self_pair).select(
        "left_key",
        "right_key",
        F.col("_hi").alias("is_match"),
        F.lit(origin).alias("origin"),
        F.lit(str(labelled_by)).alias("labelled_by"),
        F.lit(datetime.now(UTC)).alias("labelled_at"),
        F.lit(run_id).cast("string").alias("run_id"),
    )
    version = delta_io.merge_upsert(spark, rows, table_path, keys=PAIR_KEYS, user_metadata=run_id)
    log.info("save_labels: %d pairs (origin %s) -> %s version %d", written, origin, table_path, version)
    return written


def read_labels(spark: SparkSession, table_path: str) -> DataFrame:
    """The labels table, or an empty frame of :data:`LABEL_SCHEMA` when there is none yet."""
    if not delta_io.exists(spark, table_path):
        return spark.createDataFrame([], LABEL_SCHEMA)
    return delta_io.read(spark, table_path)


# --------------------------------------------------------------------------------------------
# A steward's CSV
# --------------------------------------------------------------------------------------------


def import_labels_csv(
    spark: SparkSession, path: str, table_path: str, *, run_id: str, known_keys: DataFrame | None = None
) -> int:
    """Check a labels CSV (see :func:`read_labels_csv`) and save it with origin ``csv``.

    Returns:
        The number of pairs written; nothing is written when the file has any problem.

    Raises:
        LabelsError: the file is unreadable or has problems (file, lines, fields and count).
    """
    labels = read_labels_csv(spark, path, known_keys=known_keys)
    return save_labels(spark, table_path, labels, origin="csv", labelled_by=str(path), run_id=run_id)


def read_labels_csv(spark: SparkSession, path: str, *, known_keys: DataFrame | None = None) -> DataFrame:
    """Read and check a CSV of labelled record pairs; raise on any problem in it.

    The header (line 1) names ``left_id``, ``right_id`` and ``is_match`` in any order and
    case, with spaces around them allowed; other columns are ignored. Ids are ``record_key``
    values (``<source>:<source_record_id>``), trimmed.
    ``is_match`` is one of true/false, 1/0, yes/no, y/n in any case. Blank lines are
    skipped. Quoted fields may hold commas but not line breaks: a line is a record, so the
    numbers in messages are the lines of the file an editor shows.

    Every line is checked before anything is returned, with Spark (the file may hold
    millions of pairs): empty ids, a bad ``is_match``, a record paired with itself, a pair
    answered both ways in the file (an answer repeated is fine), bytes that are not UTF-8,
    and, with ``known_keys``, ids that are not records.

    Args:
        spark: the session.
        path: one CSV file.
        known_keys: a frame with ``record_key`` (the records); ids must be among them.

    Returns:
        ``left_key, right_key, is_match`` as in the file (one row per data line).

    Raises:
        LabelsError: the file cannot be read, has no usable header, or has problems; the
            message names the file, the first few lines and fields, and the total count.
    """
    if known_keys is not None:
        _require(known_keys, (KEY,), "read_labels_csv known_keys")
    name = str(path)
    lines = _numbered_lines(spark, name).persist(StorageLevel.MEMORY_AND_DISK)  # read once for all the checks
    try:
        parsed = _parse_lines(lines, _header_columns(lines, name))
        problems = _problems(parsed, known_keys)
        total = problems.count()
        if total:
            first = problems.orderBy("line", "field").limit(MAX_SHOWN_PROBLEMS).collect()  # a few rows for the message
            raise _problems_error(name, [(r.line, r.field, r.what) for r in first], total)
    finally:
        lines.unpersist()
    return parsed.select(F.col("l").alias("left_key"), F.col("r").alias("right_key"), F.col("m").alias("is_match"))


def _numbered_lines(spark: SparkSession, name: str) -> DataFrame:
    try:
        return numbered_lines(spark, [name], "UTF-8")
    except AnalysisException as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise LabelsError(f"{name}: cannot read the labels file: {reason}", file=name) from exc


def _header_columns(lines: DataFrame, name: str) -> dict[str, int]:
    """Position of each of :data:`CSV_COLUMNS` in the header; raise when one is missing."""
    headers = lines.filter(F.col("_line") == 1).select("_file", "_text").collect()  # one row per file: metadata
    if len(headers) != 1:
        found = "no lines" if not headers else f"{len(headers)} files"
        raise LabelsError(
            f"{name}: expected one CSV file with a header line {','.join(CSV_COLUMNS)}; found {found}", file=name
        )
    names = [c.strip().lower() for c in next(csv.reader([headers[0]["_text"] or ""]), [])]
    problems = []
    for column in CSV_COLUMNS:
        if names.count(column) != 1:
            what = "missing" if column not in names else "named more than once"
            problems.append((1, column, f"column {what}; the header has: {', '.join(names) or '(nothing)'}"))
    if problems:
        raise _problems_error(name, problems, len(problems))
    return {column: names.index(column) for column in CSV_COLUMNS}


def _parse_lines(lines: DataFrame, columns: dict[str, int]) -> DataFrame:
    """``line, l, r, m_raw, m, decodable`` for each non-blank data line."""
    width = max(columns.values()) + 1
    ddl = ", ".join(f"_c{i} STRING" for i in range(width))
    fields = F.from_csv(F.col("_text"), ddl, {"escape": '"', "mode": "PERMISSIVE"})
    value = {column: F.trim(fields.getField(f"_c{i}")) for column, i in columns.items()}
    m_raw = F.lower(value["is_match"])
    return lines.filter((F.col("_line") > 1) & (F.trim("_text") != "")).select(
        F.col("_line").alias("line"),
        value["left_id"].alias("l"),
        value["right_id"].alias("r"),
        value["is_match"].alias("m_raw"),
        F.when(m_raw.isin(*TRUE_VALUES), True).when(m_raw.isin(*FALSE_VALUES), False).alias("m"),
        F.col("_decodable").alias("decodable"),
    )


def _problem(field: str, what: Column) -> Column:
    return F.struct(F.lit(field).alias("field"), what.alias("what"))


def _quoted(column: str) -> Column:
    """A value for a message: quoted, and cut at :data:`WIDTH` characters."""
    value = F.col(column)
    cut = F.when(F.length(value) > WIDTH, F.concat(F.substring(value, 1, WIDTH - 1), F.lit("…"))).otherwise(value)
    return F.concat(F.lit("'"), cut, F.lit("'"))


def _problems(parsed: DataFrame, known_keys: DataFrame | None) -> DataFrame:
    """``line, field, what``: one row per problem found in the parsed lines."""
    empty = {c: F.col(c).isNull() | (F.col(c) == "") for c in ("l", "r", "m_raw")}
    accepted = "/".join(f"{t}/{f}" for t, f in zip(TRUE_VALUES, FALSE_VALUES, strict=True))
    checks = F.array(
        F.when(~F.col("decodable"), _problem("encoding", F.lit("bytes that are not UTF-8"))),
        F.when(empty["l"], _problem("left_id", F.lit("empty"))),
        F.when(empty["r"], _problem("right_id", F.lit("empty"))),
        F.when(empty["m_raw"], _problem("is_match", F.lit(f"empty; expected one of {accepted}"))).when(
            F.col("m").isNull(), _problem("is_match", F.format_string(f"%s is not one of {accepted}", _quoted("m_raw")))
        ),
        F.when(
            ~empty["l"] & (F.col("l") == F.col("r")),
            _problem("right_id", F.format_string("%s is the left_id too: a record paired with itself", _quoted("r"))),
        ),
    )
    per_line = parsed.select("line", F.explode(F.filter(checks, lambda p: p.isNotNull())).alias("p"))
    problems = per_line.select("line", "p.field", "p.what")
    usable = parsed.filter(~empty["l"] & ~empty["r"] & F.col("m").isNotNull() & (F.col("l") != F.col("r")))
    problems = problems.unionByName(_contradictions(usable))
    if known_keys is not None:
        known = known_keys.select(F.col(KEY).cast("string").alias("_key"))
        for column, field in (("l", "left_id"), ("r", "right_id")):
            unknown = usable.join(known, F.col(column) == F.col("_key"), "left_anti")
            problems = problems.unionByName(
                unknown.select(
                    "line",
                    F.lit(field).alias("field"),
                    F.format_string("%s is not the record_key of any record", _quoted(column)).alias("what"),
                )
            )
    return problems


def _contradictions(usable: DataFrame) -> DataFrame:
    """A problem on the later of the first 'yes' and the first 'no' line of each pair answered both ways."""
    first = usable.groupBy(*_unordered("l", "r", names=("a", "b"))).agg(
        F.min(F.when(F.col("m"), F.col("line"))).alias("yes"), F.min(F.when(~F.col("m"), F.col("line"))).alias("no")
    )
    later_yes = F.col("yes") > F.col("no")
    what = F.format_string(
        "the pair (%s, %s) is labelled %s here and %s on line %d",
        "a",
        "b",
        F.when(later_yes, "yes").otherwise("no"),
        F.when(later_yes, "no").otherwise("yes"),
        F.least("yes", "no"),
    )
    return first.filter(F.col("yes").isNotNull() & F.col("no").isNotNull()).select(
        F.greatest("yes", "no").alias("line"), F.lit("is_match").alias("field"), what.alias("what")
    )


def _problems_error(name: str, problems: list[tuple[int, str, str]], total: int) -> LabelsError:
    shown = "; ".join(f"line {line}, {field}: {what}" for line, field, what in problems)
    more = f"; and {total - len(problems)} more" if total > len(problems) else ""
    return LabelsError(
        f"{name}: {_count(total, 'problem')} in the labels file, nothing was imported: {shown}{more}. "
        f"Fix the file (header {','.join(CSV_COLUMNS)}; line 1 is the header) and import it again",
        file=name,
        problems=problems,
        total=total,
    )


# --------------------------------------------------------------------------------------------
# Ground truth
# --------------------------------------------------------------------------------------------


def truth_labels(pairs: DataFrame, truth: DataFrame) -> DataFrame:
    """Answer candidate pairs from the ground truth: a match when both records are one entity.

    Args:
        pairs: ``left_key, right_key`` (other columns are ignored).
        truth: ``record_key, entity_id``, one row per record.

    Returns:
        ``left_key, right_key, is_match``; pairs where either record has no truth are left out.
    """
    _require(pairs, PAIR_KEYS, "truth_labels pairs")
    _require(truth, (KEY, "entity_id"), "truth_labels truth")
    side = truth.select(F.col(KEY).cast("string"), F.col("entity_id").cast("string"))
    left = side.select(F.col(KEY).alias("left_key"), F.col("entity_id").alias("_left_entity"))
    right = side.select(F.col(KEY).alias("right_key"), F.col("entity_id").alias("_right_entity"))
    return (
        pairs.select(F.col("left_key").cast("string"), F.col("right_key").cast("string"))
        .join(left, "left_key")
        .join(right, "right_key")
        .select("left_key", "right_key", (F.col("_left_entity") == F.col("_right_entity")).alias("is_match"))
    )


def read_truth_csv(spark: SparkSession, path: str) -> DataFrame:
    """A truth CSV ``record_id,entity_id`` (as ``cdi-spark evaluate --truth``) as ``record_key, entity_id``."""
    return read_csv_pairs(spark, path, "record_id", "entity_id").withColumnRenamed("record_id", KEY)


def read_generated_truth(spark: SparkSession, truth_dir: str) -> DataFrame:
    """The demo generator's truth (``<out>/truth``) as ``record_key, entity_id``.

    ``person_records`` holds ``source, record_id, person_id``; a record's key in
    ``silver.customer_records`` is ``<source>:<record_id>``.

    Raises:
        LabelsError: there is no ``person_records`` under ``truth_dir``.
    """
    path = f"{str(truth_dir).rstrip('/')}/person_records"
    try:
        truth = spark.read.parquet(path)
    except AnalysisException as exc:
        raise LabelsError(f"{path}: no generated ground truth there; run cdi-spark generate first") from exc
    return truth.select(
        F.concat_ws(":", "source", "record_id").alias(KEY), F.col("person_id").cast("string").alias("entity_id")
    )


# --------------------------------------------------------------------------------------------
# Choosing pairs to label
# --------------------------------------------------------------------------------------------


def pairs_to_label(
    candidates: DataFrame, n: int, *, seed: int, similarity: str = "similarity", bins: int = 10
) -> DataFrame:
    """Choose up to ``n`` candidate pairs to label, spread evenly over similarity bins.

    Similarity in [0, 1] is cut into ``bins`` equal bins, so sure matches, sure non-matches
    and the uncertain middle are all asked about; a bin with fewer pairs than its share
    gives the rest to the others. Within a bin, pairs are taken in the order of a hash of
    the seed and the pair, so the choice depends on the seed and the pairs only, never on
    partitioning. Pairs are made unordered (``left_key < right_key``; a repeated pair keeps
    its highest similarity); self-pairs and pairs without a similarity are left out, and
    similarities outside [0, 1] count in the end bins.

    Args:
        candidates: ``left_key, right_key`` and ``similarity``.
        n: how many pairs at most.
        seed: the choice's seed.
        similarity: the similarity column.
        bins: how many bins.

    Returns:
        ``left_key, right_key, <similarity>``, ordered for presentation: the first pair of
        each bin (most similar bin first), then the second of each, and so on, so a labeller
        who stops early has still seen every bin.
    """
    _require(candidates, (*PAIR_KEYS, similarity), "pairs_to_label candidates")
    if n < 0 or bins < 1:
        raise ValueError(f"pairs_to_label: n must be >= 0 and bins >= 1, found n={n}, bins={bins}")
    pairs = (
        candidates.filter((F.col("left_key") != F.col("right_key")) & F.col(similarity).isNotNull())
        .groupBy(*_unordered("left_key", "right_key"))
        .agg(F.max(F.col(similarity).cast("double")).alias("_sim"))
    )
    position = F.least(F.greatest(F.floor(F.col("_sim") * bins), F.lit(0)), F.lit(bins - 1)).cast("int")
    in_bin = Window.partitionBy("_bin").orderBy(F.xxhash64(F.lit(seed), "left_key", "right_key"), *PAIR_KEYS)
    # rank <= n lets Spark keep only the top n of each bin before the shuffle (WindowGroupLimit,
    # for n up to spark.sql.optimizer.windowGroupLimitThreshold, 1000 by default).
    ranked = (
        pairs.withColumn("_bin", position).withColumn("_rank", F.row_number().over(in_bin)).filter(F.col("_rank") <= n)
    )
    sizes = {r["_bin"]: r["count"] for r in ranked.groupBy("_bin").count().collect()}  # <= bins rows: metadata
    quotas = [F.lit(v) for bin_and_quota in _quotas(sizes, n).items() for v in bin_and_quota]
    quota = F.create_map(*quotas)[F.col("_bin")] if quotas else F.lit(0)
    return (
        ranked.filter(F.col("_rank") <= quota)
        .orderBy("_rank", F.desc("_bin"))
        .select("left_key", "right_key", F.col("_sim").alias(similarity))
    )


def _quotas(sizes: dict[int, int], n: int) -> dict[int, int]:
    """Share ``n`` among bins as evenly as their sizes allow (smallest bins settled first)."""
    quotas, left = {}, n
    order = sorted(sizes, key=lambda b: (sizes[b], b))
    for i, b in enumerate(order):
        quotas[b] = min(sizes[b], left // (len(order) - i))
        left -= quotas[b]
    return quotas


# --------------------------------------------------------------------------------------------
# Labelling by hand (console and notebook)
# --------------------------------------------------------------------------------------------

ANSWERS = {"y": True, "yes": True, "n": False, "no": False, "u": None, "unsure": None, "q": "quit", "quit": "quit"}
PROMPT = "same person? [y]es / [n]o / [u]nsure / [q]uit: "


def label_interactively(
    pairs: DataFrame,
    records: DataFrame,
    fields: list[str],
    *,
    ask: Callable[[str], str] = input,
    show: Callable[[str], object] = print,
    limit: int | None = None,
) -> list[tuple[str, str, bool]]:
    """Ask a person about each pair, one at a time, the two records' fields side by side.

    Works on a console and in a notebook (``input`` and ``print``); pass ``ask`` and
    ``show`` to drive it otherwise. Answers: y(es), n(o), u(nsure: skipped), q(uit: stop and
    keep the answers given); end of input and Ctrl-C stop like quit. Save the result with
    ``save_labels(spark, path, labels_from_answers(spark, answers), origin="console", ...)``.

    Args:
        pairs: ``left_key, right_key`` in the order to ask (:func:`pairs_to_label`'s);
            collected to the driver, so at most :data:`MAX_INTERACTIVE_PAIRS`.
        records: ``record_key`` and ``fields``.
        fields: the fields to show, in order.
        ask: reads an answer given a prompt.
        show: displays a block of text.
        limit: ask about at most this many pairs.

    Returns:
        ``(left_key, right_key, is_match)`` for each pair answered yes or no, in order.

    Raises:
        MissingColumnError: a column is missing.
        LabelsError: more than :data:`MAX_INTERACTIVE_PAIRS` pairs.
    """
    shown = _pairs_with_records(pairs, records, fields, limit)
    answers: list[tuple[str, str, bool]] = []
    counts = {True: 0, False: 0, None: 0}
    for i, (left_key, right_key, left, right) in enumerate(shown, 1):
        table = _side_by_side(left_key, right_key, fields, left, right)
        show(f"\npair {i} of {len(shown)} · {_tally(counts)} so far\n{table}")
        answer = _ask(ask, show)
        if answer == "quit":
            break
        counts[answer] += 1
        if answer is not None:
            answers.append((left_key, right_key, answer))
    show(f"\n{sum(counts.values())} of {len(shown)} pairs answered: {_tally(counts)}")
    log.info(
        "labelling: %d of %d pairs answered (%d matches, %d non-matches, %d unsure)",
        sum(counts.values()),
        len(shown),
        counts[True],
        counts[False],
        counts[None],
    )
    return answers


def labels_from_answers(spark: SparkSession, answers: list[tuple[str, str, bool]]) -> DataFrame:
    """The answers of :func:`label_interactively` as a ``left_key, right_key, is_match`` frame."""
    return spark.createDataFrame(answers, "left_key string, right_key string, is_match boolean")


def _pairs_with_records(pairs: DataFrame, records: DataFrame, fields: list[str], limit: int | None):
    """``(left_key, right_key, left fields, right fields)`` per pair (driver-side: the pairs a person sees)."""
    _require(pairs, PAIR_KEYS, "label_interactively pairs")
    _require(records, (KEY, *fields), "label_interactively records")
    cap = MAX_INTERACTIVE_PAIRS if limit is None else min(limit, MAX_INTERACTIVE_PAIRS)
    rows = pairs.select(F.col("left_key").cast("string"), F.col("right_key").cast("string")).limit(cap + 1).collect()
    if limit is None and len(rows) > MAX_INTERACTIVE_PAIRS:
        raise LabelsError(
            f"label_interactively: more than {MAX_INTERACTIVE_PAIRS} pairs; choose some with "
            "pairs_to_label(candidates, n, seed=...) or pass limit"
        )
    rows = rows[:cap]
    keys = sorted({k for r in rows for k in r})
    found = (
        records.filter(F.col(KEY).cast("string").isin(keys))
        .select(F.col(KEY).cast("string"), *(F.col(f).cast("string") for f in fields))
        .collect()
    )
    values = {r[0]: tuple(r[1:]) for r in found}
    missing = [r for r in rows if r[0] not in values or r[1] not in values]
    if missing:
        log.warning("labelling: %d pairs name a record that is not in the records; skipped", len(missing))
    return [(a, b, values[a], values[b]) for a, b in rows if a in values and b in values]


def _ask(ask: Callable[[str], str], show: Callable[[str], object]) -> bool | None | str:
    while True:
        try:
            reply = ask(PROMPT).strip().lower()
        except (EOFError, KeyboardInterrupt):
            return "quit"
        if reply in ANSWERS:
            return ANSWERS[reply]
        show("please answer y, n, u or q")


def _tally(counts: dict) -> str:
    text = f"{_count(counts[True], 'match', 'es')}, {_count(counts[False], 'non-match', 'es')}"
    return text + (f", {counts[None]} unsure" if counts[None] else "")


def _side_by_side(left_key: str, right_key: str, fields: list[str], left: tuple, right: tuple) -> str:
    """A table ``field | left | right``; ``=`` marks a field whose two values are equal."""

    def cut(value: str | None) -> str:
        text = "" if value is None else str(value)
        return text if len(text) <= WIDTH else text[: WIDTH - 1] + "…"

    rows = [("", "record", cut(left_key), cut(right_key))]
    for field, a, b in zip(fields, left, right, strict=True):
        same = a is not None and a != "" and a == b
        rows.append(("=" if same else " ", field, cut(a), cut(b)))
    w1, w2 = (max(len(r[i]) for r in rows) for i in (1, 2))
    return "\n".join(f"{mark:1} {name:<{w1}} | {a:<{w2}} | {b}".rstrip() for mark, name, a, b in rows)


def _count(k: int, word: str, suffix: str = "s") -> str:
    """``1 match``, ``2 matches``."""
    return f"{k} {word}{'' if k == 1 else suffix}"


def _unordered(left: str, right: str, names: tuple[str, str] = PAIR_KEYS) -> tuple[Column, Column]:
    """A pair's two keys as text, smaller first; both null when either is (``least`` skips nulls)."""
    a, b = F.col(left).cast("string"), F.col(right).cast("string")
    both = a.isNotNull() & b.isNotNull()
    return F.when(both, F.least(a, b)).alias(names[0]), F.when(both, F.greatest(a, b)).alias(names[1])


def _require(df: DataFrame, columns, where: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise MissingColumnError(where, missing, df.columns)
