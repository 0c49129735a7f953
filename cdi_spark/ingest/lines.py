"""Numbered lines of text files, read in parallel: the first step of the CSV and JSON Lines readers.

Line numbers at scale: two passes
---------------------------------
Spark's CSV and JSON readers give no line numbers and hide the raw text of a good row, so
files are read with the ``text`` source, which splits a big file into byte ranges that
tasks read in parallel. Each line gets ``(_metadata.file_path, _metadata.file_block_start,
monotonically_increasing_id())``: the id grows by one per line within a split, so
``line = lines in earlier splits of the file + (id - first id of the split) + 1``.

The first pass (:func:`read_lines`) reads the raw bytes and aggregates one row per split (a
few per GB): first id, line count, first line, and lines with an odd number of quotes. That
small table comes to the driver (metadata) and gives each file's header and whether any
quoted field spans lines. The second pass numbers every line by a broadcast join with it
(no shuffle), decodes and parses; it is the only pass that decodes or parses a record. No
sort of a whole file, no driver loop over lines, no ``zipWithIndex``. Both passes use one
DataFrame, so they see the same file listing and the same splits.

Bytes and encodings
-------------------
Lines are taken as bytes and decoded with the source's ``encoding`` (which must be
ASCII-compatible, so that ``\\n`` splits lines and an ASCII quote is one byte). A line whose
bytes do not survive a decode/encode round trip holds undecodable bytes and is quarantined
(``undecodable``). A UTF-8 byte-order mark at the start of a file is dropped. ``\\r\\n``
line ends are accepted; inside a quoted CSV field they come back as ``\\n``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

BOM = "\ufeff"
_SPLITS = "_file string, _block long, _first long, _before long"
CHAINED_SPLITS = 64  # up to this many splits, a line finds its split by comparisons, not by a join


@dataclass(frozen=True)
class FileFacts:
    """What the first pass learnt about one text file (metadata).

    Attributes:
        lines: lines in the file.
        head: its first line, decoded, without a byte-order mark.
        odd_lines: lines with an odd number of quote characters (0 unless a quote was given).
        head_odd: the first line itself has an odd number of quotes (a header spanning lines).
    """

    lines: int
    head: str
    odd_lines: int = 0
    head_odd: bool = False


@dataclass(frozen=True)
class Lines:
    """Numbered lines (``_file, _line, _text, _decodable``; lazy) and per-file facts."""

    frame: DataFrame
    facts: dict[str, FileFacts]


def decoded(binary: Column, encoding: str) -> tuple[Column, Column]:
    """(text, decodable) of raw bytes in ``encoding``."""
    text = F.decode(binary, encoding)
    return text, F.encode(text, encoding) == binary


def odd_quotes(text: Column, quote: str, escape: str) -> Column:
    """Whether ``text`` holds an odd number of (unescaped) quote characters.

    Counts bytes, so it gives the same answer on a line's raw bytes (first pass) and on its
    decoded text: in an ASCII-compatible encoding an ASCII quote is one byte wherever it is.
    """
    if escape != quote:  # backslash-style escapes: an escaped quote does not open or close
        text = F.regexp_replace(text, re_char(escape) + "[" + re_char(escape) + re_char(quote) + "]", "")
    removed = F.octet_length(text) - F.octet_length(F.replace(text, F.lit(quote), F.lit("")))
    return (removed / len(quote.encode("utf-8"))) % 2 == 1


def re_char(char: str) -> str:
    return "\\" + char if not char.isalnum() else char


def read_lines(
    spark: SparkSession, paths: list[str], encoding: str, *, quote: str | None = None, escape: str | None = None
) -> Lines:
    """Number every line of ``paths`` and learn each file's facts; see the module doc.

    Runs the first pass (one Spark job; its result is a few rows per file) and returns the
    second as a lazy DataFrame.

    Args:
        spark: the session.
        paths: the files.
        encoding: their character set (ASCII-compatible).
        quote: count lines with an odd number of this quote character (CSV).
        escape: the character that escapes a quote (defaults to the quote: RFC 4180).
    """
    raw = (
        spark.read.format("text")
        .load(paths)
        .select(
            F.col("_metadata.file_path").alias("_file"),
            F.col("_metadata.file_block_start").alias("_block"),
            F.monotonically_increasing_id().alias("_mid"),
            F.col("value"),
        )
    )
    bytes_ = F.col("value").cast("binary")
    odd = odd_quotes(F.col("value"), quote, escape or quote).cast("long") if quote else F.lit(0).cast("long")
    first = F.min_by(F.struct(bytes_.alias("bytes"), odd.alias("odd")), "_mid")
    splits = (
        raw.groupBy("_file", "_block")
        .agg(F.min("_mid").alias("_first"), F.count(F.lit(1)).alias("_n"), F.sum(odd).alias("_odd"),
             first.alias("_head"))
        .select("_file", "_block", "_first", "_n", "_odd", F.decode("_head.bytes", encoding).alias("_head"),
                (F.col("_head.odd") == 1).alias("_head_odd"))
        .collect()  # metadata: one row per split of a file (a few per GB)
    )  # fmt: skip
    offsets, facts = _offsets(splits)
    text, decodable = decoded(bytes_, encoding)
    frame = (
        _with_line(spark, raw, offsets)
        .select("_file", "_line", text.alias("_text"), decodable.alias("_decodable"))
        .withColumn("_text", F.when(F.col("_line") == 1, F.regexp_replace("_text", f"^{BOM}", ""))
                    .otherwise(F.col("_text")))
    )  # fmt: skip
    return Lines(frame, facts)


def _with_line(spark: SparkSession, raw: DataFrame, offsets: list[tuple[str, int, int, int]]) -> DataFrame:
    """``raw`` with ``_line``: each row's id plus its split's offset (lines before it minus its first id).

    Ids grow by one within a task and tasks' id ranges do not overlap, so a row's split is the
    one with the largest first id not above the row's: with few splits a comparison chain
    finds it (a few long comparisons per row); with many, a broadcast join on (file, split).
    """
    if len(offsets) > CHAINED_SPLITS:
        joined = raw.join(F.broadcast(spark.createDataFrame(offsets, _SPLITS)), ["_file", "_block"])
        return joined.withColumn("_line", F.col("_before") + F.col("_mid") - F.col("_first") + 1)
    if not offsets:
        return raw.withColumn("_line", F.lit(None).cast("long"))
    (_, _, first, before), *rest = sorted(offsets, key=lambda o: -o[2])  # largest first id first
    offset = F.when(F.col("_mid") >= first, F.lit(before - first + 1))
    for _, _, first, before in rest:
        offset = offset.when(F.col("_mid") >= first, F.lit(before - first + 1))
    return raw.withColumn("_line", F.col("_mid") + offset)


def _offsets(splits: list) -> tuple[list[tuple[str, int, int, int]], dict[str, FileFacts]]:
    """Each split's lines before it in its file, and each file's facts, from the split rows."""
    by_file = defaultdict(list)
    for split in splits:
        by_file[split["_file"]].append(split)
    offsets, facts = [], {}
    for file, parts in by_file.items():
        parts.sort(key=lambda p: p["_block"])
        before = 0
        for part in parts:
            offsets.append((file, part["_block"], part["_first"], before))
            before += part["_n"]
        head = parts[0]["_head"] or ""
        facts[file] = FileFacts(
            before, head.removeprefix(BOM), sum(p["_odd"] for p in parts), bool(parts[0]["_head_odd"])
        )
    return offsets, facts


def numbered_lines(spark: SparkSession, paths: list[str], encoding: str) -> DataFrame:
    """``_file, _line, _text, _decodable`` for every line of ``paths``; see the module doc."""
    return read_lines(spark, paths, encoding).frame

