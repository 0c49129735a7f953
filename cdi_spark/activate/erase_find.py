"""Who to erase: every record key, customer id and address of the person an erasure request names.

Reads ``silver.customer_records``, ``silver.entity_clusters``, ``gold.customer_xref`` and
``gold.customer_ids`` (writes nothing). A person's ids are small: they are collected to the
driver. See :mod:`cdi_spark.activate.erase`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from cdi_spark import delta_io, tables
from cdi_spark.activate.erase import ErasureError, ErasureRequest, Person
from cdi_spark.config import PipelineConfig
from cdi_spark.golden import publish
from cdi_spark.standardize.emails import clean_email, email_key

log = logging.getLogger(__name__)


def table_or_none(spark: SparkSession, cfg: PipelineConfig, layer: str, name: str) -> DataFrame | None:
    """The table ``<layer>.<name>`` of the lakehouse, or None when it does not exist."""
    path = tables.table_path(cfg.lakehouse, layer, name)
    return delta_io.read(spark, path) if delta_io.exists(spark, path) else None


def values_of(df: DataFrame | None, column: str) -> set[str]:
    """Distinct non-null values of one column (a person's ids: small, collected)."""
    if df is None:
        return set()
    return {r[0] for r in df.select(column).filter(F.col(column).isNotNull()).distinct().collect()}


def is_in(column: str, values: set[str] | Sequence[str]) -> Column:
    return F.col(column).isin(sorted(values)) if values else F.lit(False)


def normalised_email(spark: SparkSession, value: str) -> tuple[str | None, str | None]:
    """``(email, email_key)`` exactly as the standardize stage cleans them (one tiny Spark job)."""
    email = clean_email(F.lit(value))
    row = spark.range(1).select(email.alias("e"), email_key(email).alias("k")).first()
    return row["e"], row["k"]


def _seed(spark: SparkSession, cfg: PipelineConfig, request: ErasureRequest) -> tuple[set[str], set[str], set[str]]:
    """``(record keys, customer ids, addresses)`` the request names directly."""
    records = table_or_none(spark, cfg, tables.SILVER, tables.CUSTOMER_RECORDS)
    xref = table_or_none(spark, cfg, tables.GOLD, tables.CUSTOMER_XREF)
    value = request.value.strip()
    if request.kind == "email":
        email, key = normalised_email(spark, value)
        if email is None:
            raise ErasureError("erase --email: the address is empty once cleaned")
        match = (F.col("email") == email) | (F.col("email_key") == key) if key else F.col("email") == email
        return values_of(records.filter(match) if records is not None else None, "record_key"), set(), {email}
    if request.kind == "customer_id":
        registry = table_or_none(spark, cfg, tables.GOLD, tables.CUSTOMER_IDS)
        named = registry.filter(F.col("customer_id") == value) if registry is not None else None
        return set(), {value} | values_of(named, "current_id"), set()
    prefix, sep, rid = value.partition(":")
    sources = {s.name: s for s in cfg.sources}
    systems = {s.system for s in cfg.sources}
    if not sep or not rid:
        raise ErasureError(f"erase --source-id: expected <source>:<id> or <system>:<id>, found {value!r}")
    if prefix in sources:
        return {value}, set(), set()
    if prefix not in systems:
        raise ErasureError(f"erase --source-id: {prefix!r} is neither a source ({', '.join(sorted(sources))}) "
                           f"nor a system ({', '.join(sorted(systems))})")
    person_sources = [s.name for s in cfg.sources if s.system == prefix and s.mapping is not None]
    keys = {f"{s}:{rid}" for s in person_sources}
    for frame in (records, xref):
        if frame is not None:
            keys |= values_of(frame.filter((F.col("system") == prefix) & (F.col("source_record_id") == rid)),
                            "record_key")
    return keys, set(), set()


def find_person(
    spark: SparkSession, cfg: PipelineConfig, request: ErasureRequest, *, allow_many: bool = False
) -> Person:
    """Every record key, customer id and address of the person the request names.

    From the request's records (or ids) to their customers in ``gold.customer_xref`` and
    their clusters in ``silver.entity_clusters``, then every record of those, every id that
    resolves to them in ``gold.customer_ids``, and the addresses of those records in
    ``silver.customer_records`` (role mailboxes such as info@ left out).

    Raises:
        ErasureError: the request reaches more than one active customer (a shared address)
            and ``allow_many`` is false: the message lists the customer ids.
    """
    keys, ids, emails = _seed(spark, cfg, request)
    xref = table_or_none(spark, cfg, tables.GOLD, tables.CUSTOMER_XREF)
    registry = table_or_none(spark, cfg, tables.GOLD, tables.CUSTOMER_IDS)
    clusters = table_or_none(spark, cfg, tables.SILVER, tables.ENTITY_CLUSTERS)
    records = table_or_none(spark, cfg, tables.SILVER, tables.CUSTOMER_RECORDS)

    live = xref.filter(~F.col(publish.IS_DELETED)) if xref is not None else None
    active = values_of(live.filter(is_in("record_key", keys)) if live is not None else None, "customer_id")
    if registry is not None:
        active |= values_of(registry.filter(is_in("customer_id", ids) & (F.col("status") == "active")), "customer_id")
    if len(active) > 1 and not allow_many:
        raise ErasureError(f"the {request.kind} given belongs to {len(active)} customers "
                           f"({', '.join(sorted(active))}): erase them one at a time with --customer-id, or pass "
                           "--allow-many to erase them all")
    ids |= active
    if xref is not None:
        keys |= values_of(xref.filter(is_in("customer_id", ids)), "record_key")
    if clusters is not None and keys:
        theirs = values_of(clusters.filter(is_in("record_key", keys)), "cluster_id")
        members = clusters.filter(is_in("cluster_id", theirs))
        keys |= values_of(members, "record_key")
    customer_of = {}
    if xref is not None and keys:
        rows = xref.filter(is_in("record_key", keys)).select("record_key", "customer_id").collect()  # the person's
        customer_of = {r["record_key"]: r["customer_id"] for r in rows}
        ids |= set(customer_of.values())
    if registry is not None and ids:
        ids |= values_of(registry.filter(is_in("current_id", ids) | is_in("merged_into", ids)), "customer_id")
    if records is not None and keys:
        mine = records.filter(is_in("record_key", keys) & ~F.coalesce(F.col("email_is_role"), F.lit(False)))
        emails |= values_of(mine, "email")
        # An address other customers' records hold too (a shared family mailbox) would match
        # their rows in bronze and quarantine: only the person's own addresses are matched.
        shared = values_of(records.filter(is_in("email", emails) & ~is_in("record_key", keys)), "email")
        if shared:
            log.info("erase: %d address(es) of the person are shared with other records; not matched in raw text",
                     len(shared))
            emails -= shared
    email_keys = values_of(spark.createDataFrame([(e,) for e in emails], "email string").select(
        email_key(F.col("email")).alias("key")), "key") if emails else set()
    return Person(tuple(sorted(keys)), tuple(sorted(ids)), tuple(sorted(active)), customer_of, tuple(sorted(emails)),
                  tuple(sorted(email_keys)))
