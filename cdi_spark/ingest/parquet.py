"""Parquet exports -> records that keep their Parquet types, with file and row number.

Parquet is typed, so bronze keeps its types (timestamps stay timestamps, maps stay maps).
Files are grouped by their footer schema (one small metadata read per file on the driver)
and each group is read in parallel; the row number is ``_metadata.row_index + 1``.

Each column has a target type: the ``type`` declared in the source YAML, else the type it
already has in bronze, else its type in the first file that has it. A file whose column
has another type is a broken contract: integer widening (int -> long, float -> double) is
applied, anything else sends every row of that file to quarantine as ``wrong_type`` with
the column named, instead of failing the write or coercing values silently.

A quarantined row's ``_raw`` is its JSON, made by the checks for rejected rows only (every
row of a file with a wrong type: before the wrong column is nulled).
"""

from __future__ import annotations

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from cdi_spark.config import SourceConfig
from cdi_spark.ingest.text import RECORD_META, Parsed, no_error, parse_error

SPEC_TYPES: dict[str, T.DataType] = {
    "string": T.StringType(),
    "int": T.IntegerType(),
    "long": T.LongType(),
    "double": T.DoubleType(),
    "boolean": T.BooleanType(),
    "date": T.DateType(),
    "timestamp": T.TimestampType(),
}
_WIDENS = {
    T.LongType(): (T.IntegerType(), T.ShortType(), T.ByteType()),
    T.IntegerType(): (T.ShortType(), T.ByteType()),
    T.DoubleType(): (T.FloatType(), T.IntegerType(), T.ShortType(), T.ByteType()),
}


def _fits(actual: T.DataType, target: T.DataType) -> bool:
    return actual == target or actual in _WIDENS.get(target, ())


def parse_parquet(
    spark: SparkSession, paths: list[str], source: SourceConfig, existing: T.StructType | None
) -> Parsed:
    """Read Parquet files; see the module docstring.

    Args:
        spark: the session.
        paths: the files to read.
        source: the source configuration (declared column types).
        existing: bronze's current schema, or None before the first load.
    """
    schemas = {path: spark.read.parquet(path).schema for path in paths}  # footers: metadata
    targets: dict[str, T.DataType] = {}
    for spec in source.columns:
        if spec.type in SPEC_TYPES:
            targets[spec.name] = SPEC_TYPES[spec.type]
    for field in existing.fields if existing else []:
        targets.setdefault(field.name, field.dataType)
    for path in paths:
        for field in schemas[path].fields:
            targets.setdefault(field.name, field.dataType)

    groups: dict[str, list[str]] = {}
    for path in paths:
        groups.setdefault(schemas[path].json(), []).append(path)
    frames = []
    for files in groups.values():
        schema = schemas[files[0]]
        wrong = [f for f in schema.fields if not _fits(f.dataType, targets[f.name])]
        df = spark.read.parquet(*files)
        data = list(df.columns)
        error, raw = no_error(), F.lit(None).cast("string")  # raw JSON: made by the checks for rejected rows
        if wrong:
            first = wrong[0]
            detail = F.format_string(
                f"%s row %d: column {first.name} is {first.dataType.simpleString()} in this file; "
                f"expected {targets[first.name].simpleString()}",
                F.col("_metadata.file_path"), F.col("_metadata.row_index") + 1,
            )
            error = parse_error("wrong_type", detail, first.name)
            raw = F.to_json(F.struct(*[F.col(c) for c in data]))  # before the wrong column is nulled
        wrong_names = {w.name for w in wrong}
        kept = [(F.lit(None) if c in wrong_names else F.col(c)).cast(targets[c]).alias(c) for c in data]
        frames.append(
            df.select(
                F.col("_metadata.file_path").alias("_file"),
                (F.col("_metadata.row_index") + 1).alias("_line"),
                F.lit("row").alias("_position"),
                raw.alias("_raw"),
                F.lit(True).alias("_decodable"),
                error.alias("_parse_error"),
                *kept,
            )
        )
    out = frames[0]
    for frame in frames[1:]:
        out = out.unionByName(frame, allowMissingColumns=True)
    columns = {path: schemas[path].fieldNames() for path in paths}
    return Parsed(out.select(*RECORD_META, *[F.col(f"`{c}`") for c in out.columns if c not in RECORD_META]), columns)
