"""Text exports (CSV, JSON Lines, JSON arrays) -> one row per record, with line and raw text.

Every reader here returns *records*: ``_file``, ``_line``, ``_position``, ``_raw``,
``_decodable`` and ``_parse_error`` (a struct of reason / field / detail, null when the
record parsed), plus the source's fields as strings: CSV as one column per header field,
JSON as one ``map<string,string>`` column (:data:`FIELDS`) from each top-level key to its
value's text, because a JSON file's keys are known only once it is parsed. The check step
(:mod:`cdi_spark.ingest.checks`) turns that into bronze and quarantine rows.

Lines are numbered by :mod:`cdi_spark.ingest.lines` (two passes over the text; the first
also learns each CSV file's header and whether any quoted field spans lines).

Quoted CSV fields that span lines
---------------------------------
A record continues on the next line while it has an odd number of quote characters
(RFC 4180: an escaped quote is doubled, so it counts twice). When the first pass found no
such line (the usual case) every non-empty line is a record. Otherwise odd lines are
numbered per file with a window over *those lines alone*, paired opener -> closer, and each
pair's lines are glued back together with a group-by on ``(file, first line)``. Lines with
no open quote around them never leave their task. A quote opened and never closed within
``MAX_RECORD_LINES`` lines (broken quoting) does not swallow the rest of the file: each
line it would have swallowed is quarantined on its own as ``broken_quotes``.

JSON
----
Each record is parsed once with ``from_json`` into a ``map<string,string>``: strings stay
as they came, numbers and booleans keep their JSON text, and nested objects and arrays are
kept as JSON text (``{"email": ...}``), which standardize reads with ``get_json_object``.
So bronze never coerces a value, and a new nested key is not a schema change. A record
that does not parse is ``not_an_object`` when it is some other JSON value and
``invalid_json`` otherwise. A JSON array file (``multiline``) cannot be split: each file is
read whole by one task (keep such files under ~1 GB, or export JSON Lines), exploded into
elements, and each element is parsed as above; its position is its 1-based element number.
A file that is not one valid array (truncated) is quarantined as one row with the whole text.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from cdi_spark.config import SourceConfig
from cdi_spark.errors import SchemaError
from cdi_spark.ingest.lines import (
    BOM,
    Lines,
    decoded,
    numbered_lines,  # noqa: F401  (re-exported: it lived here first)
    odd_quotes,
    re_char,
    read_lines,
)

BROADCAST_SPANS = 1_000_000  # fewer multi-line records than this: broadcast their line list
MAX_RECORD_LINES = 1000  # a quoted field spanning more lines than this is broken quoting
RECORD_META = ("_file", "_line", "_position", "_raw", "_decodable", "_parse_error")
FIELDS = "_fields"  # JSON records: map<string,string> of top-level key -> value text


@dataclass(frozen=True)
class Parsed:
    """Records of one read, and what is known about each file's columns (metadata).

    Attributes:
        records: one row per record (``RECORD_META`` and the fields).
        columns: file -> its columns (CSV header, Parquet schema) in order; for JSON, empty:
            the keys are known once the records are parsed (see ``fields``).
        fields: the map column holding the fields (JSON), or None when they are columns.
    """

    records: DataFrame
    columns: dict[str, list[str]] = field(default_factory=dict)
    fields: str | None = None


def parse_error(reason: str, detail: Column, field: str | None = None) -> Column:
    """The ``_parse_error`` struct."""
    return F.struct(
        F.lit(reason).alias("reason"), F.lit(field).cast("string").alias("field"), detail.alias("detail")
    )


def no_error() -> Column:
    """A null ``_parse_error``."""
    return F.lit(None).cast("struct<reason:string,field:string,detail:string>")


def _where(message: str) -> Column:
    """``<file> line <n>: <message>``."""
    return F.format_string(f"%s line %d: {message.replace('%', '%%')}", F.col("_file"), F.col("_line"))


# --------------------------------------------------------------------------------------------
# CSV
# --------------------------------------------------------------------------------------------


def _dialect(source: SourceConfig) -> tuple[str, str, str]:
    """(delimiter, quote, escape) of a CSV source."""
    quote = source.options.get("quote", '"')
    return source.options.get("delimiter", ","), quote, source.options.get("escape", quote)


def csv_records(lines: DataFrame, source: SourceConfig, *, odd_lines: int | None = None) -> DataFrame:
    """Glue lines into CSV records (quoted fields may span lines); see the module doc.

    Args:
        lines: numbered lines.
        source: the CSV dialect.
        odd_lines: how many lines have an odd number of quotes, when the caller knows
            (:class:`~cdi_spark.ingest.lines.FileFacts`); None counts them with a Spark job.

    Returns ``_file, _line`` (first line of the record), ``_position``, ``_raw``, ``_decodable``
    and ``_parse_error`` (``broken_quotes`` for lines inside a runaway quote).
    """
    _, quote, escape = _dialect(source)
    odd_line = odd_quotes(F.col("_text"), quote, escape)
    if odd_lines is None:
        odd_lines = lines.filter(odd_line).count()  # a count (usually 0), to pick the plan
    if odd_lines == 0:  # no quoted field spans lines: every line is a record, no shuffle at all
        return lines.select(
            "_file", "_line", F.lit("line").alias("_position"), F.col("_text").alias("_raw"), "_decodable",
            no_error().alias("_parse_error"),
        ).filter(F.col("_raw") != "")  # fmt: skip
    lines = lines.withColumn("_odd", odd_line)
    by_file = Window.partitionBy("_file").orderBy("_line")
    odd = (
        lines.filter("_odd").select("_file", "_line")
        .withColumn("_k", F.row_number().over(by_file))
        .withColumn("_close", F.lead("_line").over(by_file))
        .filter(F.col("_k") % 2 == 1)  # openers; the next odd line closes
        .select("_file", F.col("_line").alias("_open"), "_close")
    )  # fmt: skip
    return _glued(lines, odd, (odd_lines + 1) // 2, quote)


def _glued(lines: DataFrame, odd: DataFrame, n_spans: int, quote: str) -> DataFrame:
    """Records of files where quoted fields span lines: glued spans, single lines, runaways.

    ``n_spans`` (at most, the number of multi-line records) picks the join.
    """
    runaway_span = F.col("_close").isNull() | (F.col("_close") - F.col("_open") >= MAX_RECORD_LINES)
    spans = odd.filter(~runaway_span)
    runaway = odd.filter(runaway_span).select("_file", "_open", F.coalesce("_close", F.lit(2**62)).alias("_close"))
    members = spans.select("_file", F.col("_open").alias("_start"),
                           F.explode(F.sequence("_open", "_close")).alias("_line"))  # fmt: skip
    if n_spans < BROADCAST_SPANS:
        members = F.broadcast(members)
    tagged = lines.join(members, ["_file", "_line"], "left")
    inside = (tagged["_file"] == runaway["_file"]) & tagged["_line"].between(runaway["_open"], runaway["_close"])
    in_runaway = tagged.join(F.broadcast(runaway), inside, "left_semi")
    not_runaway = tagged.join(F.broadcast(runaway), inside, "left_anti")
    single = not_runaway.filter(F.col("_start").isNull()).select(
        "_file", "_line", F.col("_text").alias("_raw"), "_decodable", no_error().alias("_parse_error")
    )
    glued = (
        not_runaway.filter(F.col("_start").isNotNull())
        .groupBy("_file", "_start")
        .agg(
            F.sort_array(F.collect_list(F.struct("_line", "_text"))).alias("_parts"),
            F.min(F.col("_decodable").cast("int")).alias("_ok"),
        )
        .select(
            "_file",
            F.col("_start").alias("_line"),
            F.concat_ws("\n", F.transform("_parts", lambda p: p["_text"])).alias("_raw"),
            (F.col("_ok") == 1).alias("_decodable"),
            no_error().alias("_parse_error"),
        )
    )
    broken = in_runaway.select(
        "_file", "_line", F.col("_text").alias("_raw"), "_decodable",
        parse_error("broken_quotes", _where(f"a {quote} quote is opened and never closed")).alias("_parse_error"),
    )  # fmt: skip
    records = single.unionByName(glued).unionByName(broken)
    return records.filter(F.col("_raw") != "").withColumn("_position", F.lit("line"))


def split_header(text: str, source: SourceConfig) -> list[str]:
    """The column names of a header line, unquoted (Python's csv module: metadata only)."""
    import csv

    quote = source.options.get("quote", '"')
    escape = source.options.get("escape", quote)
    reader = csv.reader(
        [text],
        delimiter=source.options.get("delimiter", ","),
        quotechar=quote,
        escapechar=None if escape == quote else escape,
        doublequote=escape == quote,
    )
    names = next(reader, [])
    out, seen = [], set()
    for i, name in enumerate(names):
        name = name.strip() or f"_c{i}"
        while name in seen:
            name = f"{name}_{i}"
        seen.add(name)
        out.append(name)
    return out


def _field_count(raw: Column, source: SourceConfig) -> Column:
    delimiter, quote, escape = _dialect(source)
    q, e = re_char(quote), re_char(escape)
    inner = f"(?:[^{q}]|{q}{q})*" if escape == quote else f"(?:[^{q}{e}]|{e}.)*"
    # quoted fields may hold delimiters: drop them first, with a regex only where a quote is
    unquoted = F.when(raw.contains(quote), F.regexp_replace(raw, f"(?s){q}{inner}{q}", "")).otherwise(raw)
    return F.length(unquoted) - F.length(F.replace(unquoted, F.lit(delimiter), F.lit(""))) + 1


def _csv_file_records(lines: Lines, source: SourceConfig) -> DataFrame:
    """CSV records of every file: lines as they are where no quoted field spans lines, glued elsewhere."""
    spanning = {file: f.odd_lines for file, f in lines.facts.items() if f.odd_lines}
    if not spanning:
        return csv_records(lines.frame, source, odd_lines=0)
    odd_lines = sum(spanning.values())
    if len(spanning) == len(lines.facts):
        return csv_records(lines.frame, source, odd_lines=odd_lines)
    in_spanning = F.col("_file").isin(list(spanning))
    plain = csv_records(lines.frame.filter(~in_spanning), source, odd_lines=0)
    return plain.unionByName(csv_records(lines.frame.filter(in_spanning), source, odd_lines=odd_lines))


def parse_csv(spark: SparkSession, paths: list[str], source: SourceConfig) -> Parsed:
    """Read CSV files into records with one string column per header field.

    Records of a file whose first line is blank (no header) are quarantined as
    ``missing_header``, never dropped.
    """
    delimiter, quote, escape = _dialect(source)
    lines = read_lines(spark, paths, source.encoding, quote=quote, escape=escape)
    records = _csv_file_records(lines, source)
    headers = {file: f.head for file, f in lines.facts.items() if f.head and not f.head_odd}
    odd_heads = [file for file, f in lines.facts.items() if f.head_odd]
    if odd_heads:  # a header whose quoted name spans lines (rare): take the glued record
        first = records.filter((F.col("_line") == 1) & F.col("_file").isin(odd_heads)).select("_file", "_raw")
        headers.update({r["_file"]: r["_raw"] for r in first.collect()})  # one row per file: metadata
    columns = {file: split_header(text, source) for file, text in headers.items()}
    data = records.filter(F.col("_line") > 1)
    options = {"sep": delimiter, "quote": quote, "escape": escape, "mode": "PERMISSIVE"}
    groups = sorted({tuple(c) for c in columns.values()})
    headless = [file for file in lines.facts if file not in columns]
    frames = []
    for header in groups:
        files = [f for f, c in columns.items() if tuple(c) == header]
        part = data if len(groups) == 1 and not headless else data.filter(F.col("_file").isin(files))
        count = _field_count(F.col("_raw"), source)
        detail = F.format_string(f"%s line %d: %d fields, the header has {len(header)}", "_file", "_line", count)
        error = F.coalesce("_parse_error", F.when(count != len(header), parse_error("wrong_column_count", detail)))
        parsed = F.from_csv(F.col("_raw"), _ddl(header), options)
        frames.append(
            part.withColumn("_parse_error", error)
            .withColumn("_csv", F.when(F.col("_parse_error").isNull(), parsed))
            .select(*RECORD_META, *[F.col("_csv").getField(n).alias(n) for n in header])
        )
    if headless or not frames:
        frames.append(data.filter(F.col("_file").isin(headless)).withColumn(
            "_parse_error", parse_error("missing_header", _where("the file's first line is blank, so it has no header"))
        ).select(*RECORD_META))  # fmt: skip
    out = frames[0]
    for frame in frames[1:]:
        out = out.unionByName(frame, allowMissingColumns=True)
    return Parsed(out, columns)


def _ddl(names: tuple[str, ...]) -> str:
    return ", ".join(f"`{name.replace('`', '``')}` STRING" for name in names)


# --------------------------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------------------------


def _json_fields(records: DataFrame) -> DataFrame:
    """Parse each ``_raw`` (one JSON object) into :data:`FIELDS`, key -> value text; see the module doc."""
    what = F.col("_position")
    parsed = F.from_json("_raw", T.MapType(T.StringType(), T.StringType()))
    not_object = parse_error("not_an_object", F.format_string(
        "%s %s %d: a JSON value that is not an object", F.col("_file"), what, F.col("_line")))
    invalid = parse_error("invalid_json", F.format_string(
        "%s %s %d: not valid JSON (malformed or truncated)", F.col("_file"), what, F.col("_line")))
    failed = F.when(F.get_json_object("_raw", "$").isNotNull(), not_object).otherwise(invalid)
    return (
        records.withColumn(FIELDS, F.when(F.col("_parse_error").isNull(), parsed))
        .withColumn("_parse_error", F.coalesce("_parse_error", F.when(F.col(FIELDS).isNull(), failed)))
        .select(*RECORD_META, FIELDS)
    )  # fmt: skip


def parse_json_lines(spark: SparkSession, paths: list[str], source: SourceConfig) -> Parsed:
    """Read JSON Lines files: one record per non-blank line."""
    lines = read_lines(spark, paths, source.encoding)
    records = lines.frame.filter(F.trim("_text") != "").select(
        "_file", "_line", F.lit("line").alias("_position"), F.col("_text").alias("_raw"), "_decodable",
        no_error().alias("_parse_error"),
    )  # fmt: skip
    return Parsed(_json_fields(records), fields=FIELDS)


def parse_json_arrays(spark: SparkSession, paths: list[str], source: SourceConfig) -> Parsed:
    """Read files that each hold one JSON array of objects (read whole, one task per file)."""
    files = spark.read.format("text").option("wholetext", True).load(paths).select(
        F.col("_metadata.file_path").alias("_file"), F.col("value").cast("binary").alias("_bytes")
    )  # fmt: skip
    text, decodable = decoded(F.col("_bytes"), source.encoding)
    files = files.select("_file", F.regexp_replace(text, f"^{BOM}", "").alias("_text"), decodable.alias("_ok"))
    files = files.select("_file", "_ok", "_text", F.from_json("_text", T.ArrayType(T.StringType())).alias("_elems"))
    # One generator for good and bad files: a file that is not one array yields one row that
    # carries its whole text; an element row carries only its element. Every column is made
    # before the generator: an expression next to it would run once per element, not per file.
    files = files.select(
        "_file", "_ok", F.when(F.col("_elems").isNull(), F.col("_text")).alias("_whole"),
        F.coalesce("_elems", F.array(F.lit(None).cast("string"))).alias("_elems"),
    )  # fmt: skip
    exploded = files.select("_file", "_ok", "_whole", F.posexplode("_elems").alias("_pos", "_element"))
    bad_file = F.col("_whole").isNotNull()
    records = exploded.select(
        "_file",
        (F.col("_pos") + 1).cast("long").alias("_line"),
        F.when(bad_file, "file").otherwise("element").alias("_position"),
        F.coalesce("_element", "_whole").alias("_raw"),
        # Undecodable bytes became U+FFFD; in a file that failed the round trip, pin them down per element.
        (F.col("_ok") | (~bad_file & ~F.coalesce(F.col("_element").contains("\ufffd"), F.lit(False))))
        .alias("_decodable"),
        F.when(bad_file, parse_error("invalid_json", F.format_string(
            "%s: not one valid JSON array (malformed or truncated file)", F.col("_file")))).alias("_parse_error"),
    )  # fmt: skip
    return Parsed(_json_fields(records), fields=FIELDS)


def reject_missing(columns: dict[str, list[str]], required: list[str], source: str) -> None:
    """Fail when a file lacks a required column (key columns included).

    Raises:
        SchemaError: naming the source, the file, the missing column(s) and what is there.
    """
    for file, present in sorted(columns.items()):
        missing = [c for c in required if c not in present]
        if missing and present:
            raise SchemaError(
                f"source {source}: file {file} has no column {', '.join(repr(m) for m in missing)} "
                f"(required in conf/sources/{source}.yml); it has: {', '.join(present)}. "
                "Fix the export or mark the column required: false."
            )
