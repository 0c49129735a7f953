"""``generate(spark, out_dir, people=..., seed=..., batch=...)``: the demo data generator.

Writes ``<out>/raw/<batch>/<source>/part-*.<ext>`` for the ten exports of
``docs/sources.md``, one planted-bad-rows file per source, and the ground truth under
``<out>/truth`` (``person_records`` Parquet and ``malformed.csv``; ``day2`` adds its own
files next to day 1's), which the pipeline never reads. Everything derives from
``spark.range(people)`` and hash-based draws, so a seed gives the same rows on one core or
a thousand.
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
from cdi_spark.generate import b2b, b2c, day2, events
from cdi_spark.generate.malformed import PLANTERS, Planted, split_sample
from cdi_spark.generate.people import latent_people
from cdi_spark.generate.rand import Draws
from cdi_spark.generate.writer import file_count, move_single_file, write_bytes, write_source

log = logging.getLogger(__name__)
BATCHES = ("day1", "day2")
DAY2_MIN_PEOPLE = 100
KEY_BASE = {"day1": 0, "day2": 100}   # made-up keys of planted rows differ per batch


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
        files: source -> main export files.
        changes: source -> {``new``, ``update``, ``duplicate``} -> good rows (day 1: all new).
    """

    records: dict[str, int]
    malformed: dict[str, int]
    people: int
    seed: int
    batch: str
    raw_dir: str
    truth_dir: str
    files: dict[str, int] = field(default_factory=dict)
    changes: dict[str, dict[str, int]] = field(default_factory=dict)


def generate(spark: SparkSession, out_dir: str | Path, *, people: int, seed: int = 42,
             batch: str = "day1", day2_share: float | None = None) -> GenerateSummary:
    """Generate the demo exports and their ground truth.

    Args:
        spark: the session (the generator never makes one).
        out_dir: output root. ``day1`` replaces ``raw/day1`` and all of ``truth``; ``day2``
            replaces ``raw/day2`` and its own part of ``truth``.
        people: number of latent people of day 1 (``>= 10``; ``>= 100`` for ``day2``).
        seed: seed of every draw; same seed and people give the same rows.
        batch: ``"day1"``, or ``"day2"``: the next day's incremental export of the same
            ``people`` and ``seed`` (new people, updated records, new duplicates, activity;
            see :mod:`cdi_spark.generate.day2`).
        day2_share: for ``day2``, the share of day 1's people that are new or changed on
            day 2 (the other rates scale with it); default 0.15, the generator's busy day.

    Returns:
        A :class:`GenerateSummary` with counts per source.

    Raises:
        GenerateError: ``people`` is too small, ``batch`` is unknown or ``day2_share`` is
            out of range.

    Example:
        >>> generate(spark, "data/demo", people=3000, seed=42)
        >>> summary = generate(spark, "data/demo", people=3000, seed=42, batch="day2")
        >>> summary.changes["crm_contacts"]
    """
    if not isinstance(people, int) or people < 10:
        raise GenerateError(f"people must be an integer >= 10, got {people!r}")
    if batch not in BATCHES:
        raise GenerateError(f"unknown batch {batch!r}: the generator makes {', '.join(BATCHES)}")
    if batch == "day2" and people < DAY2_MIN_PEOPLE:
        raise GenerateError(f"day2 needs people >= {DAY2_MIN_PEOPLE}, got {people}: a smaller day 2 "
                            "has too few rows per source to plant bad rows among")
    scale = 1.0
    if day2_share is not None:
        try:
            scale = day2.scale_for_share(day2_share)
        except ValueError as e:
            raise GenerateError(str(e)) from None
        if batch == "day2" and people * scale < DAY2_MIN_PEOPLE:
            raise GenerateError(f"a day 2 share of {day2_share} of {people:,} people is too small to plant bad "
                                f"rows among: people x share must be at least "
                                f"{DAY2_MIN_PEOPLE * (day2.NEW_PEOPLE_RATE + day2.CHANGE_RATE):g}")
    out = str(out_dir).rstrip("/")
    raw, truth = f"{out}/raw", f"{out}/truth"
    if batch == "day1":
        # materialised once: every export's plan then starts from rows, not from the
        # latent people's (large) expressions
        r, latent = Draws(seed), latent_people(spark, people, seed).localCheckpoint()
        frames = {spec.name: (lambda spec=spec: spec.build(latent, r, people)) for spec in SOURCES}
    else:
        c = day2.cohorts(spark, people, seed, scale)
        frames = {spec.name: (lambda spec=spec: day2.BUILDERS[spec.name](c)) for spec in SOURCES}
    summary = GenerateSummary({}, {}, people, seed, batch, raw, truth)
    planted_all: list[Planted] = []
    for i, spec in enumerate(SOURCES):
        df = frames[spec.name]().persist(StorageLevel.MEMORY_AND_DISK)
        try:
            planted_all.extend(_write_source(spark, spec, df, summary, first=i == 0))
        finally:
            df.unpersist()
    name = "malformed.csv" if batch == "day1" else f"malformed_{batch}.csv"
    _write_malformed_truth(spark, f"{truth}/{name}", planted_all)
    return summary


def _write_source(spark: SparkSession, spec: SourceSpec, df: DataFrame, summary: GenerateSummary,
                  first: bool) -> list[Planted]:
    """Write one export, its planted rows and its truth; fill in the summary's counts."""
    batch = summary.batch
    n_files = file_count(summary.people * spec.rows_per_person)
    main, sample = split_sample(df, summary.seed)
    folder = f"{summary.raw_dir}/{batch}/{spec.name}"
    write_source(main, folder, spec.fmt, n_files)
    planted = PLANTERS[spec.fmt](spark, spec.name, folder, sample, spec.key, spec.bad_field,
                                key_base=KEY_BASE[batch])
    truth = f"{summary.truth_dir}/person_records"
    if batch == "day1":
        if spec.person_bearing:
            _write_truth(df, spec.name, truth, first=first)
        changes = {"new": df.count()}
    else:
        if spec.person_bearing:   # an updated record is in day 1's truth already
            _write_truth_file(spark, df.filter(F.col("_change") != "update"), spec.name,
                              f"{truth}/{batch}-{spec.name}.parquet")
        changes = {row["_change"]: row["count"] for row in df.groupBy("_change").count().collect()}
    good = sum(changes.values())
    summary.records[spec.name], summary.malformed[spec.name] = good + len(planted), len(planted)
    summary.files[spec.name], summary.changes[spec.name] = n_files, changes
    log.info("generated %s %s: %d rows (%d planted bad) in %d files; %s", batch, spec.name,
             summary.records[spec.name], len(planted), n_files,
             ", ".join(f"{k} {v}" for k, v in sorted(changes.items())))
    return planted


def _truth_rows(df: DataFrame, source: str) -> DataFrame:
    rows = df.filter(F.col("_person_id").isNotNull()).select(
        F.lit(source).alias("source"), F.col("_key").alias("record_id"),
        F.col("_person_id").alias("person_id"))
    return rows.coalesce(1).sortWithinPartitions("record_id")


def _write_truth(df: DataFrame, source: str, path: str, first: bool) -> None:
    _truth_rows(df, source).write.mode("overwrite" if first else "append").parquet(path)


def _write_truth_file(spark: SparkSession, df: DataFrame, source: str, target: str) -> None:
    """One Parquet file of a later batch's truth, named for it (a rerun replaces it)."""
    tmp = f"{target.rsplit('/', 2)[0]}/_tmp_{source}"
    _truth_rows(df, source).write.mode("overwrite").parquet(tmp)
    move_single_file(spark, tmp, target)


def _write_malformed_truth(spark: SparkSession, path: str, planted: list[Planted]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["source", "file", "line_or_row", "kind"])
    writer.writerows([p.source, p.file, p.line_or_row, p.kind] for p in planted)
    write_bytes(spark, path, buf.getvalue().encode())
