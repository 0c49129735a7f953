"""Text exports (CSV, JSON Lines, JSON arrays) -> one row per record, with line and raw text.

Every reader here returns *records*: ``_file``, ``_line``, ``_position``, ``_raw``,
``_decodable`` and ``_parse_error`` (a struct of reason / field / detail, null when the
record parsed), plus the source's fields as strings. The check step
(:mod:`cdi_spark.ingest.checks`) turns that into bronze and quarantine rows.

Line numbers at scale
---------------------
Spark's CSV and JSON readers give no line numbers and hide the raw text of a good row, so
files are read with the ``text`` source, which splits a big file into byte ranges that
tasks read in parallel. Each line gets ``(_metadata.file_path, _metadata.file_block_start,
monotonically_increasing_id())``: the id grows by one per line within a split, so
``line = lines in earlier splits of the file + (id - first id of the split) + 1``. The only
aggregation is one row per split (a few per GB), joined back by broadcast: no sort of a
whole file, no driver loop, no ``zipWithIndex`` pass.

Quoted CSV fields that span lines
---------------------------------
A record continues on the next line while it has an odd number of quote characters
(RFC 4180: an escaped quote is doubled, so it counts twice). Only lines with an odd count
matter, and they are rare: they are numbered per file with a window over *those lines
alone*, paired opener -> closer, and each pair's lines are glued back together with a
group-by on ``(file, first line)``. Lines with no open quote around them never leave their
task. A quote opened and never closed within ``MAX_RECORD_LINES`` lines (broken quoting)
does not swallow the rest of the file: each line it would have swallowed is quarantined
on its own as ``broken_quotes``.

Bytes and encodings
-------------------
Lines are taken as bytes and decoded with the source's ``encoding`` (which must be
ASCII-compatible, so that ``\\n`` splits lines). A line whose bytes do not survive a
decode/encode round trip holds undecodable bytes and is quarantined (``undecodable``). A
UTF-8 byte-order mark at the start of a file is dropped. ``\\r\\n`` line ends are accepted;
inside a quoted CSV field they come back as ``\\n``.

JSON
----
JSON Lines are parsed line by line with ``from_json`` against a schema of *string*
fields built from the top-level keys found in the files (``json_object_keys``): strings
stay as they came, numbers and booleans keep their JSON text, and nested objects and
arrays are kept as JSON text (``{"email": ...}``), which standardize reads with
``get_json_object``. So bronze never coerces a value, and a new nested key is not a schema
change. A JSON array file (``multiline``) cannot be split: each file is read whole by one
task (keep such files under ~1 GB, or export JSON Lines), exploded into elements, and each
element is parsed as above; its position is its 1-based element number. A file that is not
one valid array (truncated) is quarantined as one row with the whole text.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from cdi_spark.config import SourceConfig
from cdi_spark.errors import SchemaError

BROADCAST_SPANS = 1_000_000  # fewer multi-line records than this: broadcast their line list
MAX_RECORD_LINES = 1000  # a quoted field spanning more lines than this is broken quoting
BOM = "\ufeff"
RECORD_META = ("_file", "_line", "_position", "_raw", "_decodable", "_parse_error")


@dataclass(frozen=True)
class Parsed:
    """Records of one read, and the columns each file holds (metadata for drift checks)."""

    records: DataFrame
    columns: dict[str, list[str]]  # file -> its columns (CSV header, JSON keys) in order
    lines: DataFrame | None = None  # persisted input, to unpersist when done


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


def _decoded(binary: Column, encoding: str) -> tuple[Column, Column]:
    """(text, decodable) of raw bytes in ``encoding``."""
    text = F.decode(binary, encoding)
    return text, F.encode(text, encoding) == binary


def numbered_lines(spark: SparkSession, paths: list[str], encoding: str) -> DataFrame:
    """``_file, _line, _text, _decodable`` for every line of ``paths``; see the module doc."""
    raw = spark.read.format("text").load(paths).select(
        F.col("_metadata.file_path").alias("_file"),
        F.col("_metadata.file_block_start").alias("_block"),
        F.monotonically_increasing_id().alias("_mid"),
        F.col("value").cast("binary").alias("_bytes"),
    )
    splits = raw.groupBy("_file", "_block").agg(F.min("_mid").alias("_first"), F.count(F.lit(1)).alias("_n"))
    earlier = Window.partitionBy("_file").orderBy("_block").rowsBetween(Window.unboundedPreceding, -1)
    splits = splits.withColumn("_before", F.coalesce(F.sum("_n").over(earlier), F.lit(0)))
    text, decodable = _decoded(F.col("_bytes"), encoding)
    line = F.col("_before") + F.col("_mid") - F.col("_first") + 1
    return (
        raw.join(F.broadcast(splits), ["_file", "_block"])
        .select("_file", line.alias("_line"), text.alias("_text"), decodable.alias("_decodable"))
        .withColumn("_text", F.when(F.col("_line") == 1, F.regexp_replace("_text", f"^{BOM}", "")).otherwise(
            F.col("_text")))
    )


# --------------------------------------------------------------------------------------------
# CSV
# --------------------------------------------------------------------------------------------


def _quote_count(text: Column, quote: str, escape: str) -> Column:
    if escape != quote:  # backslash-style escapes: an escaped quote does not open or close
        text = F.regexp_replace(text, _re(escape) + "[" + _re(escape) + _re(quote) + "]", "")
    return F.length(text) - F.length(F.replace(text, F.lit(quote), F.lit("")))


def _re(char: str) -> str:
    return "\\" + char if not char.isalnum() else char


def csv_records(lines: DataFrame, source: SourceConfig) -> DataFrame:
    """Glue lines into CSV records (quoted fields may span lines); see the module doc.

    Returns ``_file, _line`` (first line of the record), ``_raw``, ``_decodable`` and
    ``_parse_error`` (``broken_quotes`` for lines inside a runaway quote).
    """
    quote = source.options.get("quote", '"')
    escape = source.options.get("escape", quote)
    lines = lines.withColumn("_odd", _quote_count(F.col("_text"), quote, escape) % 2 == 1)
    by_file = Window.partitionBy("_file").orderBy("_line")
    odd = (
        lines.filter("_odd").select("_file", "_line")
        .withColumn("_k", F.row_number().over(by_file))
        .withColumn("_close", F.lead("_line").over(by_file))
        .filter(F.col("_k") % 2 == 1)  # openers; the next odd line closes
        .select("_file", F.col("_line").alias("_open"), "_close")
    )
    runaway_span = F.col("_close").isNull() | (F.col("_close") - F.col("_open") >= MAX_RECORD_LINES)
    n_spans = odd.count()  # multi-line records (a count, usually small), to pick the join
    if n_spans == 0:  # no quoted field spans lines: every line is a record, no shuffle at all
        return lines.select(
            "_file", "_line", F.lit("line").alias("_position"), F.col("_text").alias("_raw"), "_decodable",
            no_error().alias("_parse_error"),
        ).filter(F.col("_raw") != "")
    spans = odd.filter(~runaway_span)
    runaway = odd.filter(runaway_span).select("_file", "_open", F.coalesce("_close", F.lit(2**62)).alias("_close"))
    members = spans.select("_file", F.col("_open").alias("_start"),
                           F.explode(F.sequence("_open", "_close")).alias("_line"))
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
    )
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
    quote = source.options.get("quote", '"')
    escape = source.options.get("escape", quote)
    delimiter = source.options.get("delimiter", ",")
    q, e = _re(quote), _re(escape)
    inner = f"(?:[^{q}]|{q}{q})*" if escape == quote else f"(?:[^{q}{e}]|{e}.)*"
    unquoted = F.regexp_replace(raw, f"(?s){q}{inner}{q}", "")
    return F.length(unquoted) - F.length(F.replace(unquoted, F.lit(delimiter), F.lit(""))) + 1


def parse_csv(spark: SparkSession, paths: list[str], source: SourceConfig) -> Parsed:
    """Read CSV files into records with one string column per header field."""
    lines = numbered_lines(spark, paths, source.encoding).persist()
    records = csv_records(lines, source)
    headers = {r["_file"]: r["_raw"] for r in records.filter(F.col("_line") == 1).select("_file", "_raw").collect()}
    columns = {file: split_header(text, source) for file, text in headers.items()}  # one header per file
    data = records.filter(F.col("_line") > 1)
    options = {
        "sep": source.options.get("delimiter", ","),
        "quote": source.options.get("quote", '"'),
        "escape": source.options.get("escape", source.options.get("quote", '"')),
        "mode": "PERMISSIVE",
    }
    frames = []
    for header in sorted({tuple(c) for c in columns.values()}):
        files = [f for f, c in columns.items() if tuple(c) == header]
        schema = T.StructType([T.StructField(name, T.StringType()) for name in header])
        part = data.filter(F.col("_file").isin(files))
        count = _field_count(F.col("_raw"), source)
        detail = F.format_string(f"%s line %d: %d fields, the header has {len(header)}", "_file", "_line", count)
        error = F.coalesce(
            "_parse_error",
            F.when(count != len(header), parse_error("wrong_column_count", detail)),
        )
        parsed = F.from_csv(F.col("_raw"), _ddl(schema), options)
        frames.append(
            part.withColumn("_parse_error", error)
            .withColumn("_fields", F.when(F.col("_parse_error").isNull(), parsed))
            .select(*RECORD_META, *[F.col("_fields").getField(n).alias(n) for n in header])
        )
    # A file whose first line is blank has no header: its records are quarantined, not dropped.
    headless = data.filter(~F.col("_file").isin(list(columns))).withColumn(
        "_parse_error", parse_error("missing_header", _where("the file's first line is blank, so it has no header"))
    )
    out = headless.select(*RECORD_META)
    for frame in frames:
        out = out.unionByName(frame, allowMissingColumns=True)
    return Parsed(out, columns, lines)


def _ddl(schema: T.StructType) -> str:
    return ", ".join(f"`{f.name.replace('`', '``')}` STRING" for f in schema.fields)


# --------------------------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------------------------


def _json_fields(records: DataFrame, columns: dict[str, list[str]]) -> DataFrame:
    """Parse ``_raw`` (one JSON object each) into string fields named after the keys found."""
    names = sorted({k for keys in columns.values() for k in keys})
    schema = T.StructType([T.StructField(n, T.StringType()) for n in names]
                          + [T.StructField("_corrupt", T.StringType())])
    parsed = F.from_json("_raw", schema, {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": "_corrupt"})
    is_object = F.json_object_keys("_raw").isNotNull()
    is_json = F.get_json_object("_raw", "$").isNotNull()  # any valid JSON value
    valid = F.col("_j").isNotNull() & F.col("_j._corrupt").isNull()
    what = F.col("_position")
    error = F.coalesce(
        "_parse_error",
        F.when(~is_object & is_json, parse_error("not_an_object", F.format_string(
            "%s %s %d: a JSON value that is not an object", F.col("_file"), what, F.col("_line")))),
        F.when(~valid | ~is_object, parse_error("invalid_json", F.format_string(
            "%s %s %d: not valid JSON (malformed or truncated)", F.col("_file"), what, F.col("_line")))),
    )
    return (
        records.withColumn("_j", parsed)
        .withColumn("_parse_error", error)
        .select(*RECORD_META, *[F.when(F.col("_parse_error").isNull(), F.col("_j").getField(n)).alias(n)
                                for n in names])
    )


def _keys_per_file(records: DataFrame) -> dict[str, list[str]]:
    keys = (
        records.select("_file", F.explode(F.json_object_keys("_raw")).alias("k"))
        .groupBy("_file").agg(F.array_sort(F.collect_set("k")).alias("keys"))
        .collect()  # metadata: the set of top-level keys per file
    )
    return {r["_file"]: list(r["keys"]) for r in keys}


def parse_json_lines(spark: SparkSession, paths: list[str], source: SourceConfig) -> Parsed:
    """Read JSON Lines files: one record per non-blank line."""
    lines = numbered_lines(spark, paths, source.encoding).persist()
    records = lines.filter(F.trim("_text") != "").select(
        "_file", "_line", F.lit("line").alias("_position"), F.col("_text").alias("_raw"), "_decodable",
        no_error().alias("_parse_error"),
    )
    columns = _keys_per_file(records)
    for path in paths:
        columns.setdefault(path, [])
    return Parsed(_json_fields(records, columns), columns, lines)


def parse_json_arrays(spark: SparkSession, paths: list[str], source: SourceConfig) -> Parsed:
    """Read files that each hold one JSON array of objects (read whole, one task per file)."""
    files = spark.read.format("text").option("wholetext", True).load(paths).select(
        F.col("_metadata.file_path").alias("_file"), F.col("value").cast("binary").alias("_bytes")
    )
    text, decodable = _decoded(F.col("_bytes"), source.encoding)
    files = files.select("_file", F.regexp_replace(text, f"^{BOM}", "").alias("_text"), decodable.alias("_ok"))
    files = files.withColumn("_elems", F.from_json("_text", T.ArrayType(T.StringType()))).persist()
    bad_files = files.filter(F.col("_elems").isNull()).select(
        "_file", F.lit(1).cast("long").alias("_line"), F.lit("file").alias("_position"),
        F.col("_text").alias("_raw"), F.col("_ok").alias("_decodable"),
        parse_error("invalid_json", F.format_string(
            "%s: not one valid JSON array (malformed or truncated file)", F.col("_file"))).alias("_parse_error"),
    )
    elements = files.filter(F.col("_elems").isNotNull()).select(
        "_file", "_ok", F.posexplode("_elems").alias("_pos", "_raw")
    ).select(
        "_file", (F.col("_pos") + 1).cast("long").alias("_line"), F.lit("element").alias("_position"), "_raw",
        # Undecodable bytes became U+FFFD; in a file that failed the round trip, pin them down per element.
        (F.col("_ok") | ~F.col("_raw").contains("\ufffd")).alias("_decodable"), no_error().alias("_parse_error"),
    )
    columns = _keys_per_file(elements)
    for path in paths:
        columns.setdefault(path, [])
    parsed = _json_fields(elements, columns).unionByName(bad_files, allowMissingColumns=True)
    return Parsed(parsed, columns, files)


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
