"""Day 2: new people, updated records, new duplicates of known people, activity, bad rows."""

from __future__ import annotations

import csv
import dataclasses
import os

import pytest
from generate_demo import CONTRACT, KEYS, PEOPLE, SEED, planted_csv_rows, read, truth
from pyspark.sql import functions as F

from cdi_spark.generate import GenerateError, day2, generate
from cdi_spark.generate.malformed import SAMPLE_ROWS


def keyed(spark, summary, source):
    key = KEYS.get(source, CONTRACT[source][0])
    return read(spark, summary, source).withColumn("record_id", F.col(f"`{key}`").cast("string"))


def test_day2_writes_every_export_with_each_kind_of_change(spark, demo_batches):
    d2 = demo_batches.day2
    for source, columns in CONTRACT.items():
        df = read(spark, d2, source)
        assert set(df.columns) <= set(columns), source   # JSON drops a field null in every row
        assert d2.records[source] == df.count() + SAMPLE_ROWS + d2.malformed[source], source
    for source in KEYS:
        assert d2.changes[source].get("new", 0) > 0, source
        if source != "product_events":       # events are never re-sent
            assert d2.changes[source].get("duplicate", 0) > 0, source
    for source in ("crm_contacts", "marketing_contacts", "shop_customers", "crm_accounts"):
        assert d2.changes[source].get("update", 0) > 0, source


def test_new_people_get_ids_after_day1s(spark, demo_batches):
    t2 = truth(spark, demo_batches.day2, "day2")
    ids = [r["person_id"] for r in t2.filter(F.col("person_id") >= PEOPLE)
           .select("person_id").distinct().collect()]
    assert ids and max(ids) < PEOPLE + day2.new_people_count(PEOPLE)
    assert truth(spark, demo_batches.day1).filter(F.col("person_id") >= PEOPLE).count() == 0


def test_updated_records_keep_their_id_with_changed_fields_and_a_later_stamp(spark, demo_batches):
    d1, d2 = demo_batches.day1, demo_batches.day2
    before = keyed(spark, d1, "crm_contacts").alias("a")
    after = keyed(spark, d2, "crm_contacts").alias("b")
    both = before.join(after, "record_id")
    assert both.count() > 0
    fields = ["Email", "Phone", "MobilePhone", "MailingStreet", "MailingCity", "MailingPostalCode"]
    changed = " or ".join(f"not (a.{c} <=> b.{c})" for c in fields)
    assert both.filter(changed).count() == both.count()          # every re-sent row changed
    assert both.filter("b.LastModifiedDate <= a.LastModifiedDate").count() == 0
    mkt = keyed(spark, d1, "marketing_contacts").alias("a") \
        .join(keyed(spark, d2, "marketing_contacts").alias("b"), "record_id")
    assert mkt.count() > 0 and mkt.filter("b.updatedAt <= a.updatedAt").count() == 0
    # an updated record keeps its person: it is in day 1's truth and not again in day 2's
    ids = truth(spark, d2, "day2").filter("source = 'crm_contacts'").select("record_id")
    assert both.select("record_id").intersect(ids).count() == 0


def test_shop_customers_with_new_orders_are_resent_with_new_totals(spark, demo_batches):
    d1, d2 = demo_batches.day1, demo_batches.day2
    orders = keyed(spark, d2, "shop_orders").groupBy("Customer ID").count()
    before = keyed(spark, d1, "shop_customers").select("Customer ID", F.col("Total Orders").alias("n1"))
    after = keyed(spark, d2, "shop_customers").select("Customer ID", F.col("Total Orders").alias("n2"))
    grown = before.join(after, "Customer ID").join(orders, "Customer ID")
    assert grown.count() > 0
    assert grown.filter("cast(n2 as int) != cast(n1 as int) + count").count() == 0


def test_new_duplicates_map_to_people_known_on_day1(spark, demo_batches):
    t1, t2 = truth(spark, demo_batches.day1), truth(spark, demo_batches.day2, "day2")
    dups = t2.filter(F.col("person_id") < PEOPLE).join(t1, ["source", "record_id"], "left_anti")
    assert dups.select("source").distinct().count() >= 4
    known = t1.select("person_id").distinct()
    assert dups.select("person_id").distinct().subtract(known).count() == 0


def test_truth_of_both_days_maps_every_person_record_once(spark, demo_batches):
    d2 = demo_batches.day2
    both = spark.read.parquet(f"{d2.truth_dir}/person_records")
    assert both.groupBy("source", "record_id").count().filter("count > 1").count() == 0
    for source in KEYS:
        df = keyed(spark, d2, source)
        if source == "product_events":
            df = df.filter("event_type = 'identify'")
        ids = both.filter(F.col("source") == source).select("record_id")
        assert df.select("record_id").subtract(ids).count() == 0, source


def test_day2_activity_points_at_known_records(spark, demo_batches):
    d1, d2 = demo_batches.day1, demo_batches.day2
    users = keyed(spark, d1, "support_users").select("id") \
        .unionByName(keyed(spark, d2, "support_users").select("id"))
    tickets = keyed(spark, d2, "support_tickets")
    # a few targets moved into the malformed files, day 1's and day 2's
    assert tickets.select("requester_id").subtract(users.select("id")).count() <= 2 * SAMPLE_ROWS
    day1_tickets = keyed(spark, d1, "support_tickets").select("record_id")
    assert tickets.select("record_id").intersect(day1_tickets).count() == 0   # new ids only


def test_day2_planted_rows_are_recorded_with_their_own_keys(spark, demo_batches):
    d1, d2 = demo_batches.day1, demo_batches.day2
    with open(f"{d2.truth_dir}/malformed_day2.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for source in CONTRACT:
        planted = [r for r in rows if r["source"] == source]
        assert len(planted) == d2.malformed[source] >= 3, source
        for row in planted:
            assert os.path.isfile(f"{d2.raw_dir}/day2/{source}/{row['file']}")
    assert {"duplicate_key", "exact_duplicate", "wrong_column_count"} <= {r["kind"] for r in rows}
    day1_made_up = {row[0] for kind, row in planted_csv_rows(d1, "crm_contacts") if kind}
    day2_made_up = {row[0] for kind, row in planted_csv_rows(d2, "crm_contacts", "malformed_day2.csv")
                    if kind and kind not in ("exact_duplicate", "duplicate_key", "empty_key")}
    assert day2_made_up and not day2_made_up & day1_made_up


def _hash_sum(df):
    return df.select(F.sum(F.xxhash64(*df.columns)).alias("h")).first()["h"]


def test_day2_is_the_same_for_a_seed_whatever_the_partitioning(spark):
    c = day2.cohorts(spark, 100, SEED)
    spread = dataclasses.replace(c, day1=c.day1.repartition(5), current=c.current.repartition(3),
                                 new=c.new.repartition(2))
    assert _hash_sum(day2.crm_contacts(c)) == _hash_sum(day2.crm_contacts(spread))


def test_day2_needs_enough_people(spark, tmp_path):
    with pytest.raises(GenerateError, match="day2 needs people >= 100"):
        generate(spark, tmp_path, people=50, batch="day2")


def test_a_quieter_day2_scales_new_and_changed_people_by_its_share(spark):
    busy = day2.cohorts(spark, 1000, SEED)
    quiet = day2.cohorts(spark, 1000, SEED, scale=day2.scale_for_share(0.03))
    assert (busy.total - busy.people, quiet.total - quiet.people) == (50, 10)   # 5% and 1% new
    changed = [c.current.filter(F.col("d2_change").isNotNull()).count() for c in (busy, quiet)]
    active = [c.current.filter("d2_active").count() for c in (busy, quiet)]
    assert 70 < changed[0] < 130 and 5 < changed[1] < 35        # about 10% and 2% changed
    assert 100 < active[0] < 200 and 10 < active[1] < 50         # about 15% and 3% active
    assert day2.scale_for_share(0.15) == pytest.approx(1.0)


def test_day2_share_must_leave_enough_people(spark, tmp_path):
    with pytest.raises(GenerateError, match="too small to plant bad rows"):
        generate(spark, tmp_path, people=1000, batch="day2", day2_share=0.01)
    with pytest.raises(GenerateError, match=r"must be in \(0, 1\]"):
        generate(spark, tmp_path, people=1000, batch="day2", day2_share=0)
