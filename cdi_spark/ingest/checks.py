"""Record checks: which parsed records go to bronze and which to quarantine, and why.

A record's first failed check, in this order, is its quarantine reason:

1. ``undecodable``: bytes that do not decode in the source's encoding;
2. the reader's own finding: ``invalid_json``, ``not_an_object``, ``wrong_column_count``,
   ``broken_quotes``, or ``wrong_type`` for a Parquet column of another type;
3. ``empty_key``: a primary-key field that is null or blank;
4. ``wrong_type``: a value of a typed column (YAML ``type``) that does not parse as that
   type (text formats; bronze still stores the text);
5. ``exact_duplicate`` / ``duplicate_key``: a key seen on an earlier line of the same file,
   with the same fields or with different ones. The first good occurrence goes to
   bronze, later ones to quarantine with the first line named. (The same key in another
   file is not a duplicate: a later export re-sends a record that changed.)

Everything is Column expressions plus one window partitioned by ``(file, key)``.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from cdi_spark.config import ColumnSpec, SourceConfig
from cdi_spark.ingest.text import RECORD_META

ERROR = "_error"
ERROR_TYPE = "struct<reason:string,field:string,detail:string>"


def _problem(condition: Column, reason: str, field: str | None, detail: Column) -> Column:
    return F.when(
        condition,
        F.struct(F.lit(reason).alias("reason"), F.lit(field).cast("string").alias("field"), detail.alias("detail")),
    )


def _where() -> Column:
    return F.format_string("%s %s %d", F.col("_file"), F.col("_position"), F.col("_line"))


def typed_check(name: str, spec: ColumnSpec) -> Column:
    """True when column ``name`` is null, blank, or parses as ``spec.type``."""
    quoted = f"`{name.replace('`', '``')}`"
    text = f"trim({quoted})"
    if spec.type in ("int", "long", "double", "boolean"):
        parsed = f"try_cast({text} as {spec.type})"
    elif spec.format:
        fmt = spec.format.replace("'", "\\'")
        parsed = f"try_to_timestamp({text}, '{fmt}')"
    elif spec.type == "date":
        parsed = f"try_cast({text} as date)"
    elif spec.type == "timestamp":
        parsed = f"try_cast({text} as timestamp)"
    else:
        return F.lit(True)
    return F.expr(f"{quoted} is null or {text} = '' or {parsed} is not null")


def classify(records: DataFrame, source: SourceConfig, *, text_format: bool) -> DataFrame:
    """Add ``_error`` (reason, field, detail; null for a good record) to parsed records.

    Args:
        records: the reader's output (``_file``, ``_line``, ... and the source's fields).
        source: keys and typed columns.
        text_format: whether fields hold text that the typed checks must parse.
    """
    present = set(records.columns)
    checks: list[Column] = [
        _problem(~F.col("_decodable"), "undecodable", None,
                 F.format_string(f"%s: bytes that are not valid {source.encoding}", _where())),
        F.col("_parse_error"),
    ]
    for key in source.primary_key:
        value = F.trim(F.col(f"`{key}`").cast("string")) if key in present else F.lit(None)
        checks.append(_problem(value.isNull() | (value == ""), "empty_key", key,
                               F.format_string(f"%s: key field {key} is empty", _where())))
    if text_format:
        for spec in source.columns:
            if spec.name in present and spec.type not in ("string", "any"):
                shown = spec.format or spec.type
                checks.append(_problem(~typed_check(spec.name, spec), "wrong_type", spec.name,
                                       F.format_string(f"%s: {spec.name} does not parse as {shown}", _where())))
    checked = records.withColumn(ERROR, F.coalesce(*checks).cast(ERROR_TYPE))

    good, bad = checked.filter(F.col(ERROR).isNull()), checked.filter(F.col(ERROR).isNotNull())
    keys = [F.col(f"`{k}`") for k in source.primary_key if k in present]
    if len(keys) == len(source.primary_key):
        same_key = Window.partitionBy("_file", *keys).orderBy("_line")
        first = F.first("_line").over(same_key)
        later = F.row_number().over(same_key) > 1
        same_data = F.first(F.to_json(F.struct(*[F.col(f"`{c}`") for c in data_columns(records)]))).over(same_key) \
            == F.to_json(F.struct(*[F.col(f"`{c}`") for c in data_columns(records)]))
        key = ",".join(source.primary_key)
        dup = F.coalesce(
            _problem(later & same_data, "exact_duplicate", key,
                     F.format_string("%s: the same record is already on %s %d of this file", _where(),
                                     F.col("_position"), first)),
            _problem(later, "duplicate_key", key,
                     F.format_string("%s: another record with this key is on %s %d of this file", _where(),
                                     F.col("_position"), first)),
        )
        good = good.withColumn(ERROR, dup.cast(ERROR_TYPE))
    return good.unionByName(bad)


def data_columns(df: DataFrame) -> list[str]:
    """The source's own fields of a records DataFrame (no reader or check columns)."""
    return [c for c in df.columns if c not in (*RECORD_META, ERROR)]
