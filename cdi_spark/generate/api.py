"""``generate(spark, out_dir, people=..., seed=..., batch=...)``: the demo data generator.

Writes ``<out>/raw/<batch>/<source>/part-*.<ext>`` for the ten exports of
``docs/sources.md``, one planted-bad-rows file per source, and the ground truth under
``<out>/truth`` (``person_records`` Parquet and ``malformed.csv``), which the pipeline
never reads. Everything derives from ``spark.range(people)`` and hash-based draws, so a
seed gives the same rows on one core or a thousand.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from cdi_spark.errors import CdiError
from cdi_spark.generate import b2b, b2c, events
from cdi_spark.generate.malformed import PLANTERS, Planted, split_sample
from cdi_spark.generate.people import latent_people
from cdi_spark.generate.rand import Draws
from cdi_spark.generate.writer import file_count, write_bytes, write_source

log = logging.getLogger(__name__)
BATCHES = ("day1",)


class GenerateError(CdiError, ValueError):
    """The generator was asked for something it cannot make (bad size, unknown batch)."""


@dataclass(frozen=True)
class SourceSpec:
    """One export: its format, keys, builder and expected rows per person."""

    name: str
    fmt: str
    key: str
    bad_field: str            # the field that gets a wrong-typed value in the bad rows
    build: Callable[[DataFrame, Draws, int], DataFrame]
    rows_per_person: float
    person_bearing: bool


SOURCES: tuple[SourceSpec, ...] = (
    SourceSpec("crm_contacts", "csv", "Id", "Birthdate", b2b.crm_contacts, 0.47, True),
    SourceSpec("crm_accounts", "csv", "Id", "CreatedDate", b2b.crm_accounts, 0.04, False),
    SourceSpec("marketing_contacts", "jsonl", "vid", "createdAt", b2b.marketing_contacts,
               0.57, True),
    SourceSpec("support_users", "json_array", "id", "created_at", b2b.support_users, 0.31,
               True),
    SourceSpec("support_tickets", "json_array", "id", "requester_id", b2b.support_tickets,
               0.93, False),
    SourceSpec("billing_customers", "jsonl", "id", "created", b2c.billing_customers, 0.41, True),
    SourceSpec("billing_invoices", "jsonl", "id", "amount_due", b2c.billing_invoices, 1.43,
               False),
    SourceSpec("shop_customers", "csv", "Customer ID", "Total Spent", b2c.shop_customers, 0.53,
               True),
    SourceSpec("shop_orders", "csv", "Order ID", "Total", b2c.shop_orders, 1.3, False),
    SourceSpec("product_events", "parquet", "event_id", "timestamp", events.product_events,
               5.5, True),
)


@dataclass(frozen=True)
class GenerateSummary:
    """What one ``generate`` call wrote.

    Attributes:
        records: source -> rows written, planted bad rows included.
        malformed: source -> planted bad rows.
        people, seed, batch: the inputs.
        raw_dir: ``<out>/raw`` (the batch folder is ``raw_dir / batch``).
        truth_dir: ``<out>/truth``.
    """

    records: dict[str, int]
    malformed: dict[str, int]
    people: int
    seed: int
    batch: str
    raw_dir: str
    truth_dir: str
    files: dict[str, int] = field(default_factory=dict)


def generate(spark: SparkSession, out_dir: str | Path, *, people: int, seed: int = 42,
             batch: str = "day1") -> GenerateSummary:
    """Generate the demo exports and their ground truth.

    Args:
        spark: the session (the generator never makes one).
        out_dir: output root; ``raw/<batch>`` and ``truth`` are replaced.
        people: number of latent people (``>= 10``).
        seed: seed of every draw; same seed and people give the same rows.
        batch: ``"day1"`` (the only batch implemented so far).

    Returns:
        A :class:`GenerateSummary` with counts per source.

    Raises:
        GenerateError: ``people`` is too small or ``batch`` is unknown.

    Example:
        >>> summary = generate(spark, "data/demo", people=3000, seed=42)
        >>> summary.records["crm_contacts"]
    """
    if not isinstance(people, int) or people < 10:
        raise GenerateError(f"people must be an integer >= 10, got {people!r}")
    if batch not in BATCHES:
        raise GenerateError(f"unknown batch {batch!r}: the generator makes {', '.join(BATCHES)} "
                            "(day2, an incremental batch, is not implemented yet)")
    out = str(out_dir).rstrip("/")
    raw, truth = f"{out}/raw", f"{out}/truth"
    r = Draws(seed)
    latent = latent_people(spark, people, seed)
    records, malformed, files, planted_all = {}, {}, {}, []
    for i, spec in enumerate(SOURCES):
        n_files = file_count(people * spec.rows_per_person)
        df = spec.build(latent, r, people).persist(StorageLevel.MEMORY_AND_DISK)
        try:
            main, sample = split_sample(df, seed)
            folder = f"{raw}/{batch}/{spec.name}"
            write_source(main, folder, spec.fmt, n_files)
            planted = PLANTERS[spec.fmt](spark, spec.name, folder, sample, spec.key,
                                        spec.bad_field)
            if spec.person_bearing:
                _write_truth(df, spec.name, f"{truth}/person_records", first=i == 0)
            good = df.count()
        finally:
            df.unpersist()
        planted_all.extend(planted)
        records[spec.name], malformed[spec.name] = good + len(planted), len(planted)
        files[spec.name] = n_files
        log.info("generated %s: %d rows (%d planted bad) in %d files", spec.name,
                 records[spec.name], len(planted), n_files)
    _write_malformed_truth(spark, f"{truth}/malformed.csv", planted_all)
    return GenerateSummary(records, malformed, people, seed, batch, raw, truth, files)


def _write_truth(df: DataFrame, source: str, path: str, first: bool) -> None:
    rows = df.filter(F.col("_person_id").isNotNull()).select(
        F.lit(source).alias("source"), F.col("_key").alias("record_id"),
        F.col("_person_id").alias("person_id"))
    rows.coalesce(1).sortWithinPartitions("record_id").write \
        .mode("overwrite" if first else "append").parquet(path)


def _write_malformed_truth(spark: SparkSession, path: str, planted: list[Planted]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["source", "file", "line_or_row", "kind"])
    writer.writerows([p.source, p.file, p.line_or_row, p.kind] for p in planted)
    write_bytes(spark, path, buf.getvalue().encode())
