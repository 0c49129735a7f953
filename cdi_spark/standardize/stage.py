"""The standardize stage: bronze rows of every person-bearing source -> ``silver.customer_records``.

Reads each ``bronze.<source>`` that has a ``mapping:`` block, at its current Delta version,
keeping only batches not standardized before (``silver.customer_records`` remembers the
``(source, batch_id)`` pairs it holds, so a rerun adds nothing). Each row becomes one
canonical record (:mod:`cdi_spark.standardize.canonical`) through the column cleaners of
this package. Field quality is measured per source and appended to ``audit.data_quality``;
a threshold crossed in ``conf/quality.yml`` fails the run before silver is written.

Silver is written with a MERGE on ``record_key``: a record re-exported in a later batch
(an update in the source system) replaces its earlier version, so silver holds one row per
source record, and each run is one table version.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import reduce

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from cdi_spark import delta_io, tables
from cdi_spark.config import PipelineConfig, SourceConfig, load_quality
from cdi_spark.errors import StageError
from cdi_spark.standardize import quality
from cdi_spark.standardize.canonical import COLUMNS, MAPPABLE_FIELDS
from cdi_spark.standardize.dates import date_parser, timestamp_parser
from cdi_spark.standardize.emails import standardize_email
from cdi_spark.standardize.mapping import mapped_columns
from cdi_spark.standardize.names import clean_name, given_name_key, name_key, parse_full_name, proper_case, squish
from cdi_spark.standardize.phones import parse_phone
from cdi_spark.standardize.places import country_to_alpha2, normalize_postcode, normalize_street, street_number

log = logging.getLogger(__name__)

STANDARDIZED_BATCHES = "standardized_batches"  # audit: (source, batch_id) pairs already standardized
DAY_ORDER = {"iso": "YMD", "mdy": "MDY", "dmy": "DMY", "epoch_s": "YMD", "epoch_ms": "YMD"}
TRUE_WORDS = ("true", "yes", "y", "1", "t", "opted_out", "unsubscribed")
FALSE_WORDS = ("false", "no", "n", "0", "f", "subscribed")


@dataclass(frozen=True)
class StandardizeResult:
    """What the stage did: rows in and out per source, quality problems, silver's version."""

    rows_in: dict[str, int]
    rows_out: int
    quality: list[quality.FieldQuality]
    silver_version: int | None


def _raw(name: str) -> Column:
    return F.col(f"{quality.RAW_PREFIX}{name}")


def _flag(col: Column) -> Column:
    text = F.lower(F.trim(col))
    return F.when(text.isin(*TRUE_WORDS), True).when(text.isin(*FALSE_WORDS), False)


def clean_records(mapped: DataFrame, source: SourceConfig) -> DataFrame:
    """Clean the ``_raw_<field>`` columns of :func:`map_source`'s output into canonical ones.

    Works in steps, each step reading the previous one's columns by name: a cleaned value
    used several times (the country for phones and postcodes, the given name for its key
    and the full name) is computed once instead of being copied into every use. The raw
    columns stay (the quality measure needs them); :func:`canonical` drops them.
    """
    formats = source.mapping.formats if source.mapping else {}

    def when_parser(name: str):
        order = DAY_ORDER[formats.get(name, "iso")]
        return date_parser(order) if name == "birth_date" else timestamp_parser(order)

    parsed = mapped.withColumns(
        {
            "country": country_to_alpha2(_raw("country")),
            "_name": parse_full_name(_raw("full_name")),
            "_email": standardize_email(_raw("email")),
        }
    )
    named = parsed.withColumns(
        {
            "given_name": F.coalesce(clean_name(_raw("given_name")), F.col("_name.given_name")),
            "family_name": F.coalesce(
                proper_case(squish(_raw("family_name")), family=True), F.col("_name.family_name")
            ),
            "_phone": parse_phone(_raw("phone"), F.col("country")),
            "_phone_alt": parse_phone(_raw("phone_alt"), F.col("country")),
        }
    )
    full = F.concat_ws(" ", F.col("given_name"), F.col("family_name"))
    return named.withColumns(
        {
            "full_name": F.when(full != "", full),
            "given_name_key": given_name_key(F.col("given_name")),
            "family_name_key": name_key(F.col("family_name")),
            "email": F.col("_email.email"),
            "email_key": F.col("_email.key"),
            "email_valid": F.col("_email.is_valid"),
            "email_is_role": F.col("_email.is_role"),
            "phone_raw": _raw("phone"),
            "phone_e164": F.col("_phone.e164"),
            "phone_valid": F.col("_phone.is_valid"),
            "phone_alt_e164": F.col("_phone_alt.e164"),
            "birth_date": when_parser("birth_date")(_raw("birth_date")),
            "street": normalize_street(_raw("street")),
            "street_number": street_number(_raw("street")),
            "city": proper_case(squish(_raw("city"))),
            "region": squish(_raw("region")),
            "postcode": normalize_postcode(_raw("postcode"), F.col("country")),
            "company": squish(_raw("company")),
            "email_opt_out": _flag(_raw("email_opt_out")),
            "created_at": when_parser("created_at")(_raw("created_at")),
            "updated_at": when_parser("updated_at")(_raw("updated_at")),
        }
    ).drop("_name", "_email", "_phone", "_phone_alt")


def map_source(bronze: DataFrame, source: SourceConfig, *, bronze_version: int, run_id: str) -> DataFrame:
    """Lineage plus one ``_raw_<field>`` text column per canonical field, from bronze rows."""
    if source.mapping is None:
        raise StageError("standardize", f"source {source.name} has no mapping: block")
    cols = mapped_columns(bronze, source.mapping, source=source.name)
    refs = [F.concat(F.lit(f"{target}:"), cols[f"ref:{target}"]) for target in source.mapping.references]
    return bronze.select(
        F.concat(F.lit(f"{source.name}:"), cols["source_record_id"]).alias("record_key"),
        F.lit(source.name).alias("source"),
        F.lit(source.system).alias("system"),
        cols["source_record_id"].alias("source_record_id"),
        F.col(tables.BATCH_ID).alias("batch_id"),
        F.lit(bronze_version).cast("long").alias("bronze_version"),
        F.lit(run_id).alias("run_id"),
        F.col(tables.INGESTED_AT).alias("_ingested_at"),
        *[cols[name].alias(f"{quality.RAW_PREFIX}{name}") for name in MAPPABLE_FIELDS],
        (F.coalesce(*refs) if refs else F.lit(None).cast("string")).alias("ref_record_key"),
    ).filter(F.col("source_record_id").isNotNull())


def latest_per_record(records: DataFrame) -> DataFrame:
    """One row per ``record_key``: the most recently ingested, then most recently updated."""
    order = Window.partitionBy("record_key").orderBy(
        F.col("_ingested_at").desc(), F.col("updated_at").desc_nulls_last(), F.col("batch_id").desc()
    )
    return records.withColumn("_n", F.row_number().over(order)).filter("_n = 1").drop("_n")


def canonical(records: DataFrame) -> DataFrame:
    """Only the canonical columns, in schema order."""
    return records.select(*COLUMNS)


def standardize_source(bronze: DataFrame, source: SourceConfig, *, bronze_version: int, run_id: str) -> DataFrame:
    """Bronze rows of one source -> cleaned records that still carry their raw columns.

    Args:
        bronze: rows of ``bronze.<source>`` (lineage columns included).
        source: the source's configuration; its ``mapping`` says which field is which.
        bronze_version: the Delta version of bronze that was read (lineage).
        run_id: the run writing the records.

    Returns:
        Canonical columns plus ``_raw_<field>`` and ``_ingested_at``; use :func:`canonical`
        to keep only the schema.
    """
    return clean_records(map_source(bronze, source, bronze_version=bronze_version, run_id=run_id), source)


def _new_batches(spark: SparkSession, bronze: DataFrame, source: str, log_path: str) -> DataFrame:
    # The batch log, not silver, says what was done: silver keeps only each record's latest
    # row, so a batch whose records were all superseded leaves no trace there.
    if not delta_io.exists(spark, log_path):
        return bronze
    done = (
        delta_io.read(spark, log_path)
        .filter(F.col("source") == source)
        .select(F.col("batch_id").alias(tables.BATCH_ID))
    )
    return bronze.join(F.broadcast(done), tables.BATCH_ID, "left_anti")


def standardize(spark: SparkSession, cfg: PipelineConfig, *, run_id: str) -> StandardizeResult:
    """Run the stage over every source with a ``mapping:`` block; see the module docstring.

    Raises:
        StageError: a data-quality threshold was crossed (after the figures are recorded).
    """
    silver_path = tables.table_path(cfg.lakehouse, tables.SILVER, tables.CUSTOMER_RECORDS)
    log_path = tables.table_path(cfg.lakehouse, tables.AUDIT, STANDARDIZED_BATCHES)
    frames = []
    for source in (s for s in cfg.sources if s.mapping is not None):
        bronze_path = tables.table_path(cfg.lakehouse, tables.BRONZE, source.name)
        if not delta_io.exists(spark, bronze_path):
            log.warning("standardize: no bronze table for %s yet; skipped", source.name)
            continue
        version = delta_io.current_version(spark, bronze_path)
        bronze = _new_batches(spark, delta_io.read(spark, bronze_path, version=version), source.name, log_path)
        frames.append(standardize_source(bronze, source, bronze_version=version, run_id=run_id))
    if not frames:
        return StandardizeResult({}, 0, [], None)

    records = reduce(DataFrame.unionByName, frames).persist()
    try:
        measured = quality.measure(records)
        rows_in = {q.source: q.records for q in measured}
        _record_quality(spark, cfg, measured, run_id)
        problems = quality.breaches(measured, load_quality(cfg))
        if problems:
            raise StageError("standardize", "data quality below the limits in conf/quality.yml: " + "; ".join(problems))
        if not rows_in:
            log.info("standardize: no new bronze batches")
            return StandardizeResult({}, 0, [], None)
        version = delta_io.merge_upsert(
            spark, canonical(latest_per_record(records)), silver_path, keys=["record_key"], partition_by=["source"],
            user_metadata=run_id,
        )
        # Written last: a run stopped before this line redoes its batches, and the MERGE
        # above makes that harmless.
        batches = records.groupBy("source", "batch_id").agg(F.count(F.lit(1)).alias("records"))
        delta_io.append(spark, batches.withColumn("run_id", F.lit(run_id)), log_path, user_metadata=run_id)
    finally:
        records.unpersist()
    log.info("standardize: %s records from %s sources", f"{sum(rows_in.values()):,}", len(rows_in))
    return StandardizeResult(rows_in, sum(rows_in.values()), measured, version)


def _record_quality(spark: SparkSession, cfg: PipelineConfig, measured: list, run_id: str) -> None:
    if not measured:
        return
    path = tables.table_path(cfg.lakehouse, tables.AUDIT, tables.DATA_QUALITY)
    rows = spark.createDataFrame(quality.as_rows(measured, run_id=run_id), quality.DQ_SCHEMA)
    delta_io.append(spark, rows, path, user_metadata=run_id)
