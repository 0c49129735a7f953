"""Source fields onto canonical fields, as declared in a source's ``mapping:`` block.

:func:`mapped_columns` turns a bronze DataFrame into one raw-text column per canonical
field (no cleaning yet), so that every source reaches the cleaners in the same shape. A
source field is named by a dotted path; the path may go through a struct (Parquet, JSON read
as structs), a map (``traits.email``) or a column holding JSON text.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import MapType, StringType, StructType

from cdi_spark.config import SourceMapping
from cdi_spark.errors import MissingColumnError
from cdi_spark.standardize.canonical import MAPPABLE_FIELDS


def source_field(df: DataFrame, path: str, *, where: str) -> Column:
    """The value at a dotted ``path`` of ``df`` as a trimmed string ('' becomes null).

    Args:
        df: the bronze DataFrame.
        path: ``Email``, ``properties.email``, ``traits.email`` or ``metadata.crm_id``.
        where: the source name, for the error message.

    Raises:
        MissingColumnError: the first part of the path is not a column of ``df``.
    """
    head, _, rest = path.partition(".")
    fields = {f.name: f.dataType for f in df.schema.fields}
    if head not in fields:
        raise MissingColumnError(f"source {where}: mapping field {path!r}", [head], list(fields))
    column, dtype = F.col(f"`{head}`"), fields[head]
    for part in rest.split(".") if rest else []:
        if isinstance(dtype, StructType):
            names = {f.name: f.dataType for f in dtype.fields}
            if part not in names:
                raise MissingColumnError(f"source {where}: mapping field {path!r}", [part], list(names))
            column, dtype = column.getField(part), names[part]
        elif isinstance(dtype, MapType):
            column, dtype = column.getItem(part), dtype.valueType
        elif isinstance(dtype, StringType):  # JSON kept as text
            column, dtype = F.get_json_object(column, f"$.{part}"), StringType()
        else:
            raise MissingColumnError(f"source {where}: mapping field {path!r}", [part], [])
    text = F.trim(column.cast("string"))
    return F.when(text != "", text)


def _joined(columns: list[Column]) -> Column:
    # concat_ws skips nulls; an all-null list gives "" which becomes null.
    text = F.concat_ws(" ", *columns)
    return F.when(text != "", text)


def mapped_columns(df: DataFrame, mapping: SourceMapping, *, source: str) -> dict[str, Column]:
    """One raw-text Column per canonical field (null where the source has no such field).

    Args:
        df: the bronze DataFrame of one source.
        mapping: the source's mapping block.
        source: the source name, for error messages.

    Returns:
        ``{"given_name": Column, ...}`` for every field of :data:`MAPPABLE_FIELDS`, plus
        ``source_record_id`` and, per reference, ``ref:<source>``.
    """
    out: dict[str, Column] = {name: F.lit(None).cast("string") for name in MAPPABLE_FIELDS}
    for name, spec in mapping.fields.items():
        if isinstance(spec, str):
            out[name] = source_field(df, spec, where=source)
        else:
            out[name] = _joined([source_field(df, p, where=source) for p in spec])
    for name, value in mapping.constants.items():
        out[name] = F.coalesce(out[name], F.lit(value)) if name in mapping.fields else F.lit(value)
    out["source_record_id"] = source_field(df, mapping.record_id, where=source)
    for target, path in mapping.references.items():
        out[f"ref:{target}"] = source_field(df, path, where=source)
    return out
