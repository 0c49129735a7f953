"""Golden profiles: one ``gold.customer_profile`` row per customer id.

Reads ``silver.customer_records`` and ``gold.customer_xref`` (``record_key, customer_id``)
as DataFrames and returns, for every customer id of the xref, the surviving contact fields
(the rules of ``conf/survivorship.yml``, see :mod:`cdi_spark.golden.survivorship`), every
known valid email and phone, the source record ids per system, the number of records, when
the customer was first seen and last updated, and the lineage of each surviving value.
Writes nothing; :mod:`cdi_spark.golden.publish` merges the result into the table.

Plan: a key-only check that every record has exactly one customer (one aggregation over
the record keys of both inputs, one small job), the join of the xref with the records on
record_key, and one ``groupBy(customer_id)`` that computes survivorship and the profile's
arrays and counts together (:func:`~cdi_spark.golden.survivorship.survive` with
``aggregates=``). Only valid values count: an email with ``email_valid`` false is no email,
and ``phone_e164`` / ``phone_alt_e164`` are null for numbers that did not parse.
"""

from __future__ import annotations

import logging

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DateType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from cdi_spark.columns import let
from cdi_spark.config import SurvivorshipConfig
from cdi_spark.errors import MissingColumnError, StageError
from cdi_spark.golden.survivorship import survive

log = logging.getLogger(__name__)

STAGE = "profile"

# gold.customer_profile: the surviving contact fields (SURVIVABLE_FIELDS, in that order),
# then what is known across all of the customer's records. Nullability is the contract
# (customer_id, the arrays, maps and count are never null); element types stay nullable so
# the final cast can always reach them.
PROFILE_SCHEMA = StructType([
    StructField("customer_id", StringType(), False),
    StructField("given_name", StringType()),
    StructField("family_name", StringType()),
    StructField("full_name", StringType()),
    StructField("email", StringType()),
    StructField("phone", StringType()),  # E.164
    StructField("birth_date", DateType()),
    StructField("street", StringType()),
    StructField("street_number", StringType()),
    StructField("city", StringType()),
    StructField("region", StringType()),
    StructField("postcode", StringType()),
    StructField("country", StringType()),
    StructField("company", StringType()),
    StructField("email_opt_out", BooleanType()),
    StructField("emails", ArrayType(StringType()), False),  # distinct valid emails, sorted
    StructField("phones", ArrayType(StringType()), False),  # distinct E.164 numbers (main and alt), sorted
    StructField("source_ids", MapType(StringType(), ArrayType(StringType())), False),  # system -> ids
    StructField("record_count", LongType(), False),
    StructField("first_seen", TimestampType()),  # min created_at
    StructField("last_updated", TimestampType()),  # max updated_at
    StructField("lineage", MapType(StringType(), StringType()), False),  # field -> record_key
])
PROFILE_COLUMNS = tuple(f.name for f in PROFILE_SCHEMA.fields)

# The columns of silver.customer_records the profile reads.
RECORD_COLUMNS = (
    "record_key", "system", "source_record_id", "created_at", "updated_at",
    "given_name", "family_name", "full_name", "email", "email_valid", "phone_e164", "phone_alt_e164",
    "birth_date", "street", "street_number", "city", "region", "postcode", "country", "company", "email_opt_out",
)
XREF_COLUMNS = ("record_key", "customer_id")

_FOUND = "_found"  # 1 on rows that joined a record: the xref may name a record that is gone


def build_profiles(records: DataFrame, xref: DataFrame, config: SurvivorshipConfig) -> DataFrame:
    """``gold.customer_profile`` rows: one per customer id of the xref.

    Args:
        records: ``silver.customer_records`` rows (the columns of :data:`RECORD_COLUMNS`).
        xref: ``record_key, customer_id`` for every record (``gold.customer_xref``).
        config: the survivorship rules.

    Returns:
        A DataFrame with the columns of :data:`PROFILE_SCHEMA`. A customer whose xref rows
        name no current record still gets its row (record_count 0, empty arrays and maps).

    Raises:
        MissingColumnError: an input lacks a required column.
        StageError: a record has no customer in the xref, or two; or a record_key appears
            twice in the records. The message gives the count and an example key.

    Example:
        >>> profiles = build_profiles(silver, xref, load_survivorship(cfg))  # doctest: +SKIP
    """
    for frame, columns, where in ((records, RECORD_COLUMNS, "records"), (xref, XREF_COLUMNS, "xref")):
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise MissingColumnError(f"build_profiles: {where}", missing, frame.columns)
    check_keys(records, xref)

    customers = xref.select(*XREF_COLUMNS).where(F.col("customer_id").isNotNull())
    found = records.select(*RECORD_COLUMNS, F.lit(1).alias(_FOUND))
    joined = customers.join(found, "record_key", "left").withColumns({
        "email": F.when(F.col("email_valid"), F.col("email")),
        "phone": F.col("phone_e164"),
    })
    profiles = survive(joined, config, aggregates=_facts())
    return profiles.select(*[F.col(f.name).cast(f.dataType).alias(f.name) for f in PROFILE_SCHEMA.fields])


def _facts() -> list[Column]:
    """What the profile knows across all of a customer's records (aggregates per customer)."""
    ids = F.collect_set(F.when(F.col(_FOUND).isNotNull() & F.col("system").isNotNull(),
                               F.struct("system", "source_record_id")))
    return [
        F.array_sort(F.collect_set("email")).alias("emails"),
        F.array_sort(F.array_union(F.collect_set("phone_e164"), F.collect_set("phone_alt_e164"))).alias("phones"),
        let(ids, _ids_by_system).alias("source_ids"),
        F.count(_FOUND).alias("record_count"),
        F.min("created_at").alias("first_seen"),
        F.max("updated_at").alias("last_updated"),
    ]


def _ids_by_system(pairs: Column) -> Column:
    """array<struct(system, source_record_id)> -> map system -> sorted ids."""
    systems = F.array_sort(F.array_distinct(F.transform(pairs, lambda p: p["system"])))
    return let(systems, lambda names: F.map_from_arrays(names, F.transform(
        names,
        lambda name: F.array_sort(F.transform(F.filter(pairs, lambda p: p["system"] == name),
                                              lambda p: p["source_record_id"])),
    )))


def check_keys(records: DataFrame, xref: DataFrame) -> None:
    """Check that every record has exactly one customer in the xref, cheaply.

    One aggregation over the record keys of both inputs (no other column is read), run as
    one small job. xref rows that name no record are allowed (their customer's profile is
    empty) and logged as a count.

    Raises:
        StageError: records without a customer, records with two or more, or record keys
            that appear twice in the records; the message gives the count and an example.
    """
    keys = records.select("record_key", F.lit(1).alias("_records"), F.lit(0).alias("_customers")).unionByName(
        xref.where(F.col("customer_id").isNotNull() & F.col("record_key").isNotNull())
        .select("record_key", F.lit(0).alias("_records"), F.lit(1).alias("_customers"))
    )
    per_key = keys.groupBy("record_key").agg(F.sum("_records").alias("n_records"),
                                             F.sum("_customers").alias("n_customers"))
    problems = {
        "orphans": (F.col("n_records") > 0) & (F.col("n_customers") == 0),
        "shared": (F.col("n_records") > 0) & (F.col("n_customers") > 1),
        "duplicated": F.col("n_records") > 1,
    }
    stats = per_key.agg(
        *[F.count(F.when(cond, 1)).alias(name) for name, cond in problems.items()],
        *[F.min(F.when(cond, F.col("record_key"))).alias(f"{name}_example") for name, cond in problems.items()],
        F.count(F.when(F.col("n_records") == 0, 1)).alias("unmatched"),
    ).first()  # one row of counts: small metadata
    if stats["unmatched"]:
        log.warning("%s: %d xref record keys name no current record; their customers' profiles lack them",
                    STAGE, stats["unmatched"])
    messages = {
        "orphans": ("records without a customer_id in the xref", "assign ids for the same silver records "
                    "(golden ids) before building profiles"),
        "shared": ("records with more than one customer_id in the xref", "the xref must map each record_key to "
                   "one customer"),
        "duplicated": ("record keys that appear more than once in the records", "silver.customer_records must "
                       "have unique record keys"),
    }
    for name, (what, fix) in messages.items():
        if stats[name]:
            raise StageError(STAGE, f"{what}: {stats[name]} (e.g. record_key {stats[name + '_example']!r}); {fix}")
