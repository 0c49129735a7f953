"""Record checks: which parsed records go to bronze and which to quarantine, and why.

A record's first failed check, in this order, is its quarantine reason:

1. ``undecodable``: bytes that do not decode in the source's encoding;
2. the reader's own finding: ``invalid_json``, ``not_an_object``, ``wrong_column_count``,
   ``broken_quotes``, ``missing_header``, or ``wrong_type`` for a Parquet column of another type;
3. ``empty_key``: a primary-key field that is null or blank;
4. ``wrong_type``: a value of a typed column (YAML ``type``) that does not parse as that
   type (text formats; bronze still stores the text);
5. ``exact_duplicate`` / ``duplicate_key``: a key seen on an earlier line of the same file,
   with the same fields or with different ones. The first good occurrence goes to
   bronze, later ones to quarantine with the first line named. (The same key in another
   file is not a duplicate: a later export re-sends a record that changed.)

Checks 1-4 are Column expressions on each record (:func:`check_records`). Check 5 needs the
other records of the file: the good records' keys are grouped by ``(file, key)`` (only
those columns are shuffled), the keys held more than once (few) are broadcast, and a left
join marks every later record of such a key (:func:`mark_duplicates`). No filter, inner join
or union on the records: every record read is exactly one checked row, which is what lets
the stage count read, bronze and quarantine rows in one aggregation. The row hash is
computed here once: it tells exact duplicates from conflicting ones and is bronze's
``_row_hash``.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from cdi_spark import tables
from cdi_spark.config import ColumnSpec, SourceConfig
from cdi_spark.ingest.text import RECORD_META

ERROR = "_error"
ERROR_TYPE = "struct<reason:string,field:string,detail:string>"
CHECK_META = ("_decodable", "_parse_error")  # reader columns folded into ``_error``


def _problem(condition: Column, reason: str, field: str | None, detail: Column) -> Column:
    return F.when(
        condition,
        F.struct(F.lit(reason).alias("reason"), F.lit(field).cast("string").alias("field"), detail.alias("detail")),
    )


def _where() -> Column:
    return F.format_string("%s %s %d", F.col("_file"), F.col("_position"), F.col("_line"))


def _sql_name(name: str) -> str:
    return f"`{name.replace('`', '``')}`"


def typed_check(ref: str, spec: ColumnSpec) -> Column:
    """True when the value at SQL reference ``ref`` is null, blank, or parses as ``spec.type``."""
    text = f"trim({ref})"
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
    return F.expr(f"{ref} is null or {text} = '' or {parsed} is not null")


class _Fields:
    """Where a record's fields are: columns (CSV, Parquet) or one map column (JSON)."""

    def __init__(self, records: DataFrame, fields: str | None) -> None:
        self.map = fields
        self.names = [c for c in records.columns if c not in (*RECORD_META, fields, ERROR, tables.ROW_HASH)]

    def ref(self, name: str) -> str | None:
        """SQL reference of field ``name``, None when the records have no such column."""
        if self.map:
            escaped = name.replace("\\", "\\\\").replace("'", "\\'")
            return f"{_sql_name(self.map)}['{escaped}']"
        return _sql_name(name) if name in self.names else None

    def json(self) -> Column:
        """The fields as JSON, sorted by name, nulls left out (what ``_row_hash`` hashes)."""
        if self.map:
            present = F.map_filter(F.col(self.map), lambda _, v: v.isNotNull())
            return F.to_json(F.map_from_entries(F.array_sort(F.map_entries(present))))
        return F.to_json(F.struct(*[F.col(_sql_name(c)) for c in sorted(self.names)]))

    def raw(self) -> Column:
        """A record's raw text where the reader left none (a Parquet row: its JSON)."""
        if self.map or not self.names:
            return F.col("_raw")
        return F.coalesce(F.col("_raw"), F.to_json(F.struct(*[F.col(_sql_name(c)) for c in self.names])))


def check_records(
    records: DataFrame, source: SourceConfig, *, text_format: bool, fields: str | None = None
) -> DataFrame:
    """Checks 1-4 of each record on its own: add ``_error`` and ``_row_hash`` (one row per record).

    ``_decodable`` and ``_parse_error`` are folded into ``_error`` and dropped.

    Args:
        records: the reader's output (``_file``, ``_line``, ... and the source's fields).
        source: keys and typed columns.
        text_format: whether fields hold text that the typed checks must parse.
        fields: the map column holding the fields (JSON records), None when they are columns.
    """
    where = _Fields(records, fields)
    checks: list[Column] = [
        _problem(~F.col("_decodable"), "undecodable", None,
                 F.format_string(f"%s: bytes that are not valid {source.encoding}", _where())),
        F.col("_parse_error"),
    ]  # fmt: skip
    for key in source.primary_key:
        ref = where.ref(key)
        value = F.trim(F.expr(ref).cast("string")) if ref else F.lit(None)
        checks.append(_problem(value.isNull() | (value == ""), "empty_key", key,
                               F.format_string(f"%s: key field {key} is empty", _where())))  # fmt: skip
    if text_format:
        for spec in source.columns:
            ref = where.ref(spec.name)
            if ref and spec.type not in ("string", "any"):
                detail = F.format_string(f"%s: {spec.name} does not parse as {spec.format or spec.type}", _where())
                checks.append(_problem(~typed_check(ref, spec), "wrong_type", spec.name, detail))
    return records.select(
        *[F.col(_sql_name(c)) for c in records.columns if c not in CHECK_META],
        F.coalesce(*checks).cast(ERROR_TYPE).alias(ERROR),
        F.sha2(where.json(), 256).alias(tables.ROW_HASH),
    )


def duplicate_groups(checked: DataFrame, source: SourceConfig, fields: str | None = None) -> DataFrame | None:
    """Keys that more than one good record of a file holds: file, key, count, first line and hash.

    Few in practice, so small enough to broadcast; None when the records lack a key column.
    Only the file, the key, the line and the hash of good records are shuffled.
    """
    where = _Fields(checked, fields)
    refs = [where.ref(k) for k in source.primary_key]
    if not all(refs):
        return None
    return (
        checked.filter(F.col(ERROR).isNull())
        .groupBy(F.col("_file").alias("_dup_file"), *[F.expr(r).alias(f"_dup_key{i}") for i, r in enumerate(refs)])
        .agg(F.count(F.lit(1)).alias("_dup_n"), F.min("_line").alias("_dup_first"),
             F.min_by(tables.ROW_HASH, "_line").alias("_dup_hash"))
        .filter(F.col("_dup_n") > 1)
    )  # fmt: skip


def mark_duplicates(
    checked: DataFrame, groups: DataFrame | None, source: SourceConfig, *, fields: str | None = None,
    broadcast: bool = True,
) -> DataFrame:
    """Check 5: a good record whose key an earlier good record of its file holds is a duplicate.

    A left join with ``groups`` (one row per key, so one row out per row in) then the final
    columns: ``_raw`` is kept only where ``_error`` is set (quarantine needs it, bronze does not).

    Args:
        checked: :func:`check_records`' output.
        groups: :func:`duplicate_groups` of it (None: no duplicate check).
        source: the keys.
        fields: the map column holding the fields (JSON records).
        broadcast: ship ``groups`` to every task (it is small) instead of shuffling ``checked``.
    """  # fmt: skip
    where = _Fields(checked, fields)
    columns = [c for c in checked.columns if c != "_raw"]
    if groups is not None:
        refs = [F.expr(where.ref(k)) for k in source.primary_key]
        on = [F.col("_file") == groups["_dup_file"]] + [r == groups[f"_dup_key{i}"] for i, r in enumerate(refs)]
        checked = checked.join(F.broadcast(groups) if broadcast else groups, on, "left")
        checked = checked.withColumn(ERROR, F.coalesce(ERROR, _duplicate(source)))
    return checked.select(*[F.col(_sql_name(c)) for c in columns],
                          F.when(F.col(ERROR).isNotNull(), where.raw()).alias("_raw"))  # fmt: skip


def classify(records: DataFrame, source: SourceConfig, *, text_format: bool, fields: str | None = None) -> DataFrame:
    """All the checks in one plan (:func:`check_records`, :func:`duplicate_groups`, :func:`mark_duplicates`).

    The stage runs the steps itself so that the checked records are parsed once, into a
    cache; this is the same for small inputs and tests.
    """
    checked = check_records(records, source, text_format=text_format, fields=fields)
    return mark_duplicates(checked, duplicate_groups(checked, source, fields), source, fields=fields)


def _duplicate(source: SourceConfig) -> Column:
    """``exact_duplicate`` / ``duplicate_key`` for a good record after its key's first good one."""
    first = F.col("_dup_first")
    later = F.col(ERROR).isNull() & first.isNotNull() & (F.col("_line") > first)
    same_data = F.col("_dup_hash") == F.col(tables.ROW_HASH)
    key = ",".join(source.primary_key)
    exact = _problem(same_data, "exact_duplicate", key, F.format_string(
        "%s: the same record is already on %s %d of this file", _where(), F.col("_position"), first))
    other = _problem(F.lit(True), "duplicate_key", key, F.format_string(
        "%s: another record with this key is on %s %d of this file", _where(), F.col("_position"), first))
    return F.when(later, F.coalesce(exact, other)).cast(ERROR_TYPE)  # fmt: skip


def data_columns(df: DataFrame) -> list[str]:
    """The source's own fields of a records or checked DataFrame (no reader or check columns)."""
    return [c for c in df.columns if c not in (*RECORD_META, ERROR, tables.ROW_HASH)]
