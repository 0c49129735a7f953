"""Survivorship: one value per field per customer, chosen by declared rules, with its lineage.

Takes a customer's records (``silver.customer_records`` joined to ``gold.customer_xref``:
``customer_id`` plus the canonical columns) and returns one row per customer with the
surviving value of every field of :data:`~cdi_spark.config.SURVIVABLE_FIELDS` and
``lineage``, a map field -> record_key of the record the value came from. Reads and writes
no table; :mod:`cdi_spark.golden.profile` builds ``gold.customer_profile`` on it.

Rules (``conf/survivorship.yml``, :class:`~cdi_spark.config.SurvivorshipConfig`) apply per
*unit*: a single field, or a group of fields that survive together from one record, so an
address is never the street of one record and the city of another. A unit's value is the
field's value, or the struct of the group's fields; blank strings are no value, a group
has a value when any of its fields has one.

Plan (one shuffle). Each rule is written as a *rank*, a struct whose smallest value wins:
``(rule, system_rank, recency, record_key, value)``. The three middle fields are the fixed
tie-breakers: the default source priority, the record changed last (updated_at, else
created_at), the smallest record_key, so no tie is left to chance. The rule field is:

====================  =========================================================
source_priority       the system's place in the unit's order
most_recent           minus the record's last change (microseconds)
most_complete         minus the filled fields of the group / the value's length
custom                the value's place in ``values`` (not listed: after them)
most_restrictive      0 for true, 1 for false
most_frequent         minus the number of records holding the value
====================  =========================================================

1. A projection (compiled by Spark, evaluated once per record) turns blanks to null, computes the
   tie-breakers and, per unit, the record's rank, or null when it has no value.
2. One ``groupBy(customer_id)`` takes ``min`` of each unit's rank: an algebraic aggregate
   that Spark combines map-side before the shuffle. ``most_frequent`` needs counts per
   value, which no single record knows; instead of a second shuffle by (customer, field,
   value), such a unit collects its candidates (value, tie-breakers) in the same
   aggregation.
3. A projection sorts each such list by value and folds it once (``aggregate``): a run's
   length is the value's count, and its first element, the best record holding the value,
   represents it. That is O(k log k) per customer for k records and holds one customer's
   records in memory (the resolve stage caps cluster sizes).
4. A last projection unpacks the winners into columns and ``lineage``.

No window, no join, no pass per field. Callers add their own per-customer aggregates to
the same ``groupBy`` through ``aggregates=`` (the profile's arrays and counts).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DataType, StringType

from cdi_spark.columns import let
from cdi_spark.config import SURVIVABLE_FIELDS, SurvivorshipConfig, SurvivorshipRule
from cdi_spark.errors import MissingColumnError

# Columns survive() reads besides the fields themselves.
KEY_COLUMNS = ("customer_id", "record_key", "system", "created_at", "updated_at")
LINEAGE = "lineage"

_NO_TIME = 2**63 - 1  # recency of a record without timestamps: after every real one
_BLANK = " \t\r\n\f\v\u00a0"  # a string of only these characters is no value
# Working columns (not in the result): a field without blanks, the two record tie-breakers,
# and each unit's rank (or most_frequent candidate) per record, then per customer.
_VALUE, _RANK = "_sv_value_", "_sv_rank_"
_SYSTEM_RANK, _RECENCY = "_sv_system_rank", "_sv_recency"


@dataclass(frozen=True)
class _Unit:
    """One field or group with its rule."""

    name: str
    fields: tuple[str, ...]
    rule: SurvivorshipRule

    @property
    def column(self) -> str:
        return f"{_RANK}{self.name}"

    @property
    def is_group(self) -> bool:
        return self.fields != (self.name,)

    @staticmethod
    def member(name: str) -> Column:
        """A field's value, blank strings as null (a working column)."""
        return F.col(f"{_VALUE}{name}")

    def value(self) -> Column:
        if self.is_group:
            return F.struct(*[self.member(f).alias(f) for f in self.fields])
        return self.member(self.name)

    def present(self) -> Column:
        return reduce(lambda a, b: a | b, [self.member(f).isNotNull() for f in self.fields])

    def winner(self, field: str) -> Column:
        """The surviving value of one of the unit's fields, from the customer's best rank."""
        value = F.col(self.column)["value"]
        return value[field] if self.is_group else value


def survive(records: DataFrame, config: SurvivorshipConfig, *, aggregates: Sequence[Column] = ()) -> DataFrame:
    """The surviving value of every field per customer, and where each came from.

    Args:
        records: one row per record: ``customer_id``, ``record_key``, ``system``,
            ``created_at``, ``updated_at`` and every field of
            :data:`~cdi_spark.config.SURVIVABLE_FIELDS` (``phone`` holds the E.164 number).
        config: the survivorship rules.
        aggregates: more per-customer aggregate expressions over ``records``, each aliased;
            computed in the same ``groupBy`` and returned as columns after ``lineage``.

    Returns:
        One row per ``customer_id`` of ``records``: ``customer_id``, the survivable fields
        (their types as in ``records``; null when no record has a value), ``lineage``
        (``map<string,string>`` field -> record_key; no entry for a null value), then the
        ``aggregates``.

    Raises:
        MissingColumnError: ``records`` lacks a column listed above.

    Example:
        >>> survive(records, SurvivorshipConfig(source_priority=("crm", "billing")))
        ... # doctest: +SKIP
    """
    needed = (*KEY_COLUMNS, *SURVIVABLE_FIELDS)
    missing = [c for c in needed if c not in records.columns]
    if missing:
        raise MissingColumnError("survive: records", missing, records.columns)
    units = [_Unit(name, fields, config.rule_for(name)) for name, fields in config.units]

    # Per record, once, in a projection Spark compiles: values without blanks, tie-breakers,
    # then each unit's rank; the aggregation itself only compares and collects.
    types = {f.name: f.dataType for f in records.schema.fields}
    prepared = records.withColumns({
        **{f"{_VALUE}{f}": _no_blank(F.col(f), types[f]) for f in SURVIVABLE_FIELDS},
        _SYSTEM_RANK: _system_rank(config.source_priority),
        _RECENCY: _recency(),
    }).withColumns({unit.column: _candidate(unit, config) for unit in units})
    grouped = prepared.groupBy("customer_id").agg(
        *[_aggregate(unit).alias(unit.column) for unit in units], *aggregates
    )
    extra = grouped.columns[1 + len(units):]
    ranked = grouped.withColumns(
        {unit.column: _most_frequent(F.col(unit.column)) for unit in units if unit.rule.rule == "most_frequent"}
    )
    unit_of = {f: unit for unit in units for f in unit.fields}
    winners = {f: unit_of[f].winner(f) for f in SURVIVABLE_FIELDS}
    lineage = F.map_from_arrays(
        F.array(*[F.lit(f) for f in SURVIVABLE_FIELDS]),
        F.array(*[F.when(winners[f].isNotNull(), F.col(unit_of[f].column)["record_key"]) for f in SURVIVABLE_FIELDS]),
    )
    return ranked.select(
        "customer_id",
        *[winners[f].alias(f) for f in SURVIVABLE_FIELDS],
        F.map_filter(lineage, lambda _, key: key.isNotNull()).alias(LINEAGE),
        *extra,
    )


def _no_blank(col: Column, data_type: DataType) -> Column:
    if isinstance(data_type, StringType):
        return F.when(F.btrim(col, F.lit(_BLANK)) != "", col)
    return col


def _candidate(unit: _Unit, config: SurvivorshipConfig) -> Column:
    """A record's rank for the unit; null when the record has no value for it.

    most_frequent units rank later, per value: their candidate is (value, tie-breakers).
    """
    tie_breakers = [F.col(_SYSTEM_RANK).alias("system_rank"), F.col(_RECENCY).alias("recency"),
                    F.col("record_key").alias("record_key")]
    if unit.rule.rule == "most_frequent":
        rank = F.struct(unit.value().alias("value"), *tie_breakers)
    else:
        rank = F.struct(_rule_key(unit, config).cast("long").alias("rule"), *tie_breakers,
                        unit.value().alias("value"))
    return F.when(unit.present(), rank)


def _aggregate(unit: _Unit) -> Column:
    """The customer's best rank for the unit, or (most_frequent) the list of candidates."""
    if unit.rule.rule == "most_frequent":
        return F.collect_list(unit.column)
    return F.min(unit.column)


def _system_rank(order: Sequence[str]) -> Column:
    """1 for the first system of ``order``; every system not listed (or null) comes after."""
    return _place(order, F.col("system"))


def _place(items: Sequence[str], value: Column) -> Column:
    """1-based place of ``value`` in ``items``; ``len(items) + 1`` when absent or null."""
    if not items:
        return F.lit(1)
    places = F.create_map(*[part for i, item in enumerate(items, 1) for part in (F.lit(item), F.lit(i))])
    return F.coalesce(F.try_element_at(places, value), F.lit(len(items) + 1))


def _recency() -> Column:
    """Minus the record's last change in microseconds: the latest record ranks first."""
    changed = F.coalesce(F.col("updated_at"), F.col("created_at"))
    return F.coalesce(-F.unix_micros(changed), F.lit(_NO_TIME))


def _rule_key(unit: _Unit, config: SurvivorshipConfig) -> Column:
    rule = unit.rule
    if rule.rule == "source_priority":
        return _system_rank((*rule.order, *(s for s in config.source_priority if s not in rule.order)))
    if rule.rule == "most_recent":
        return F.col(_RECENCY)
    if rule.rule == "most_complete":
        if unit.is_group:
            return -reduce(lambda a, b: a + b, [unit.member(f).isNotNull().cast("int") for f in unit.fields])
        return -F.length(unit.value().cast("string"))
    if rule.rule == "custom":
        return _place(rule.values, unit.value().cast("string"))
    if rule.rule == "most_restrictive":
        return F.when(unit.value(), 0).otherwise(1)
    raise ValueError(f"no rank for rule {rule.rule!r}")  # pragma: no cover - SurvivorshipRule checks the name


def _most_frequent(candidates: Column) -> Column:
    """The rank of the value held by most candidates, null when there are none.

    The candidates (value, system_rank, recency, record_key) are sorted, so each value's
    records form a run that starts with its best record. One fold keeps the best rank seen
    (``(-count, tie-breakers of the run's first record, value)``) and the current run.
    """

    def rank(count: Column, first: Column) -> Column:
        return F.struct(
            (-count).alias("rule"),
            first["system_rank"].alias("system_rank"),
            first["recency"].alias("recency"),
            first["record_key"].alias("record_key"),
            first["value"].alias("value"),
        )

    def step(acc: Column, x: Column) -> Column:
        same = x["value"].eqNullSafe(acc["run"]["value"])
        return F.struct(
            F.when(same, acc["best"]).otherwise(F.least(acc["best"], rank(acc["count"], acc["run"]))).alias("best"),
            F.when(same, acc["count"] + 1).otherwise(F.lit(1).cast("long")).alias("count"),
            F.when(same, acc["run"]).otherwise(x).alias("run"),
        )

    def fold(ordered: Column) -> Column:
        first = F.try_element_at(ordered, F.lit(1))
        # The first run starts at count 0 with its own first element, and best starts as a
        # rank of count 0, which every real run (count >= 1) beats.
        start = F.struct(rank(F.lit(0).cast("long"), first).alias("best"),
                         F.lit(0).cast("long").alias("count"), first.alias("run"))
        return F.aggregate(ordered, start, step, lambda acc: F.least(acc["best"], rank(acc["count"], acc["run"])))

    return let(F.array_sort(candidates), lambda ordered: F.when(F.size(ordered) > 0, fold(ordered)))
