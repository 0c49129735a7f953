"""Data quality of standardized records: fill and invalid rates per source and field.

For each source and canonical field, over the records standardized in a run:

* ``fill_rate``    = records whose raw value is present / records;
* ``invalid_rate`` = records whose raw value is present but did not clean to a valid value
  / records whose raw value is present (an email that fails the syntax check, a phone that
  is not a valid number, a date or country that cannot be read).

The figures are appended to ``audit.data_quality`` (one row per run, source and field), and
thresholds from ``conf/quality.yml`` fail the run when a source falls off a cliff (a CRM
export where every email is empty).
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from cdi_spark.config import QualityConfig

RAW_PREFIX = "_raw_"

# canonical field -> the cleaned column that must be non-null (or true) for a usable value
CHECKS: dict[str, str] = {
    "given_name": "given_name_key",
    "family_name": "family_name_key",
    "email": "email_valid",
    "phone": "phone_valid",
    "birth_date": "birth_date",
    "street": "street",
    "city": "city",
    "postcode": "postcode",
    "country": "country",
    "created_at": "created_at",
}


def _usable(name: str) -> Column:
    cleaned = F.col(CHECKS[name])
    if name in ("email", "phone"):
        return F.coalesce(cleaned, F.lit(False))
    return cleaned.isNotNull()


@dataclass(frozen=True)
class FieldQuality:
    """Quality of one field of one source in one run (small metadata, kept on the driver)."""

    source: str
    field: str
    records: int
    filled: int
    invalid: int

    @property
    def fill_rate(self) -> float:
        return self.filled / self.records if self.records else 0.0

    @property
    def invalid_rate(self) -> float:
        return self.invalid / self.filled if self.filled else 0.0


def measure(records: DataFrame) -> list[FieldQuality]:
    """Fill and invalid counts per source and field, in one aggregation.

    Args:
        records: standardized rows that still carry ``_raw_<field>`` columns beside the
            cleaned ones, and a ``source`` column.

    Returns:
        One :class:`FieldQuality` per source and checked field present in ``records``.
    """
    fields = [f for f in CHECKS if f"{RAW_PREFIX}{f}" in records.columns]
    aggs = [F.count(F.lit(1)).alias("records")]
    for name in fields:
        raw = F.col(f"{RAW_PREFIX}{name}").isNotNull()
        aggs.append(F.sum(raw.cast("long")).alias(f"{name}__filled"))
        aggs.append(F.sum((raw & ~_usable(name)).cast("long")).alias(f"{name}__invalid"))
    out = []
    for row in records.groupBy("source").agg(*aggs).collect():  # one row per source
        for name in fields:
            out.append(
                FieldQuality(row["source"], name, row["records"], row[f"{name}__filled"] or 0,
                             row[f"{name}__invalid"] or 0)
            )
    return sorted(out, key=lambda q: (q.source, q.field))


def breaches(measured: list[FieldQuality], cfg: QualityConfig) -> list[str]:
    """Every threshold of ``cfg`` that a measured field crosses, as readable sentences."""
    problems = []
    for q in measured:
        limits = cfg.sources.get(q.source, {}).get(q.field)
        if limits is None or q.records == 0:
            continue
        if limits.min_fill is not None and q.fill_rate < limits.min_fill:
            problems.append(
                f"source {q.source}, field {q.field}: fill rate {q.fill_rate:.1%} is below the "
                f"minimum {limits.min_fill:.1%} ({q.filled:,} of {q.records:,} records)"
            )
        if limits.max_invalid is not None and q.invalid_rate > limits.max_invalid:
            problems.append(
                f"source {q.source}, field {q.field}: invalid rate {q.invalid_rate:.1%} is above the "
                f"maximum {limits.max_invalid:.1%} ({q.invalid:,} of {q.filled:,} filled values)"
            )
    return problems


def as_rows(measured: list[FieldQuality], *, run_id: str) -> list[tuple]:
    """Rows for ``audit.data_quality``: run_id, source, field, records, filled, invalid,
    fill_rate, invalid_rate."""
    return [
        (run_id, q.source, q.field, q.records, q.filled, q.invalid, q.fill_rate, q.invalid_rate)
        for q in measured
    ]


DQ_SCHEMA = (
    "run_id string, source string, field string, records long, filled long, invalid long, "
    "fill_rate double, invalid_rate double"
)
