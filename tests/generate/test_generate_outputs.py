"""The demo generator writes the contract's exports, planted bad rows and a true ground truth."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest
from generate_demo import CONTRACT, KEYS, planted_csv_rows, read, truth
from pyspark.sql import functions as F

from cdi_spark.generate import GenerateError, generate
from cdi_spark.generate.malformed import SAMPLE_ROWS


def test_every_export_has_the_contract_columns(spark, demo):
    for source, columns in CONTRACT.items():
        df = read(spark, demo, source)
        assert sorted(df.columns) == sorted(columns), source
        assert df.count() > 0, source


def test_summary_counts_all_rows_including_planted(spark, demo):
    for source in CONTRACT:
        main = read(spark, demo, source).count()
        assert demo.records[source] == main + SAMPLE_ROWS + demo.malformed[source], source


def test_planted_bad_rows_are_recorded_per_source(demo):
    with open(f"{demo.truth_dir}/malformed.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    by_source = {s: [r for r in rows if r["source"] == s] for s in CONTRACT}
    for source, planted in by_source.items():
        assert len(planted) == demo.malformed[source] >= 3, source
        for row in planted:
            path = f"{demo.raw_dir}/{demo.batch}/{source}/{row['file']}"
            assert os.path.isfile(path), path
    kinds = {r["kind"] for r in rows}
    assert {"broken_quotes", "wrong_column_count", "invalid_utf8", "empty_key", "duplicate_key",
            "exact_duplicate", "wrong_type", "invalid_json", "truncated_line",
            "wrong_type_column"} <= kinds
    raw = Path(f"{demo.raw_dir}/{demo.batch}/crm_contacts/part-99999-malformed.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")


def test_truth_covers_every_good_person_record_exactly_once(spark, demo):
    t = truth(spark, demo)
    assert t.groupBy("source", "record_id").count().filter("count > 1").count() == 0
    for source, key in KEYS.items():
        df = read(spark, demo, source)
        if source == "product_events":
            df = df.filter("event_type = 'identify'")
        main = df.select(F.col(key).cast("string").alias("record_id"))
        ids = t.filter(F.col("source") == source).select("record_id")
        assert main.subtract(ids).count() == 0, source          # no good record left out
        # the rest of the truth are the good rows moved into the malformed file
        assert ids.subtract(main).count() <= SAMPLE_ROWS, source


def test_people_appear_in_several_systems_and_twice_within_a_source(spark, demo):
    t = truth(spark, demo).filter("source != 'product_events'")
    per_person = t.groupBy("person_id").agg(F.countDistinct("source").alias("systems"))
    multi = per_person.filter("systems >= 2").count() / per_person.count()
    assert 0.4 <= multi <= 0.95
    dups = t.groupBy("source", "person_id").count().filter("count >= 2")
    assert dups.filter("source = 'shop_customers'").count() >= 1
    assert dups.select("source").distinct().count() >= 3


def test_relatives_share_an_address_or_family_email(spark, demo):
    t = truth(spark, demo)
    shop = read(spark, demo, "shop_customers").select(
        F.col("Customer ID").alias("record_id"), F.lit("shop_customers").alias("source"),
        F.col("Default Address Address1").alias("street"), F.lower("Email").alias("email"))
    crm = read(spark, demo, "crm_contacts").select(
        F.col("Id").alias("record_id"), F.lit("crm_contacts").alias("source"),
        F.col("MailingStreet").alias("street"), F.lower("Email").alias("email"))
    billing = read(spark, demo, "billing_customers").select(
        F.col("id").alias("record_id"), F.lit("billing_customers").alias("source"),
        F.col("address.line1").alias("street"), F.lower("email").alias("email"))
    marketing = read(spark, demo, "marketing_contacts").select(
        F.col("vid").cast("string").alias("record_id"),
        F.lit("marketing_contacts").alias("source"), F.lit(None).cast("string").alias("street"),
        F.lower("properties.email").alias("email"))
    records = shop.unionByName(crm).unionByName(billing).unionByName(marketing) \
        .join(t, ["source", "record_id"])
    # number and name survive "Street" -> "St"; different person ids at one place = relatives
    place = F.lower(F.regexp_extract("street", r"^(\S+ \S+)", 1))
    shared = records.withColumn("place", place).filter("place != ''") \
        .groupBy("place").agg(F.countDistinct("person_id").alias("n")).filter("n >= 2")
    assert shared.count() >= 1
    family = records.filter(F.col("email").contains("family")) \
        .groupBy("email").agg(F.countDistinct("person_id").alias("n")).filter("n >= 2")
    assert family.count() >= 1


def test_cross_system_references_point_at_existing_records(spark, demo):
    crm = read(spark, demo, "crm_contacts").select(F.col("Id").alias("ref"))
    billing = read(spark, demo, "billing_customers")
    refs = billing.select(F.col("metadata.crm_id").alias("ref")).dropna()
    assert refs.count() > 0
    assert refs.subtract(crm).count() <= SAMPLE_ROWS  # a few targets moved to the bad file
    shop = read(spark, demo, "shop_customers").select(F.col("Customer ID").alias("ref"))
    users = read(spark, demo, "product_events").select(F.col("user_id").alias("ref")).dropna()
    assert users.subtract(shop).count() <= SAMPLE_ROWS
    orders = read(spark, demo, "shop_orders").select(F.col("Customer ID").alias("ref"))
    assert orders.distinct().subtract(shop).count() <= SAMPLE_ROWS


def test_unknown_batch_is_a_clear_error(spark, tmp_path):
    with pytest.raises(GenerateError, match="unknown batch 'day9'"):
        generate(spark, tmp_path, people=100, batch="day9")


def test_planted_csv_rows_with_made_up_keys_each_have_their_own(demo):
    for source in ("crm_contacts", "shop_customers"):
        rows = planted_csv_rows(demo, source)
        good_keys = {row[0] for kind, row in rows if kind is None}
        made_up = [row[0] for kind, row in rows
                   if kind in ("wrong_column_count", "wrong_type", "invalid_utf8")]
        assert len(made_up) == 4, source
        assert len(set(made_up)) == len(made_up), source     # no two bad rows share a key
        assert not set(made_up) & good_keys, source


def test_planted_csv_duplicates_are_one_exact_and_one_conflicting(demo):
    rows = planted_csv_rows(demo, "crm_contacts")
    good = {row[0]: row for kind, row in rows if kind is None}
    exact = [row for kind, row in rows if kind == "exact_duplicate"]
    conflict = [row for kind, row in rows if kind == "duplicate_key"]
    assert len(exact) == len(conflict) == 1
    assert exact[0] == good[exact[0][0]]
    assert conflict[0][0] in good and conflict[0] != good[conflict[0][0]]
