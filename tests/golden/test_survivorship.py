"""Survivorship rules on a few readable records: each rule, its ties, blanks and lineage."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from pyspark.sql import functions as F
from pyspark.sql.types import BooleanType, DateType, StringType, StructField, StructType, TimestampType

from cdi_spark.config import SURVIVABLE_FIELDS, SurvivorshipConfig, SurvivorshipRule
from cdi_spark.errors import MissingColumnError
from cdi_spark.golden.survivorship import survive

TYPES = {"birth_date": DateType(), "email_opt_out": BooleanType(), "created_at": TimestampType(),
         "updated_at": TimestampType()}
COLUMNS = ("customer_id", "record_key", "system", "created_at", "updated_at", *SURVIVABLE_FIELDS)
SCHEMA = StructType([StructField(c, TYPES.get(c, StringType())) for c in COLUMNS])

PRIORITY = ("crm", "billing", "marketing")


def _records(spark, *rows: dict):
    """Records of customer c1 from crm unless a row says otherwise; unset fields are null."""
    defaults = {"customer_id": "c1", "system": "crm"}
    return spark.createDataFrame([tuple({**defaults, **row}.get(c) for c in COLUMNS) for row in rows], SCHEMA)


def _config(**rules: SurvivorshipRule | str) -> SurvivorshipConfig:
    parsed = {k: SurvivorshipRule(v) if isinstance(v, str) else v for k, v in rules.items()}
    return SurvivorshipConfig(source_priority=PRIORITY, rules=parsed)


def _survive(spark, config, *rows):
    """customer_id -> surviving row as a dict."""
    return {row["customer_id"]: row.asDict() for row in survive(_records(spark, *rows), config).collect()}


def _day(d: int) -> datetime:
    return datetime(2024, 1, d, 12, 0)


def test_source_priority_takes_the_first_system_with_a_value(spark):
    got = _survive(
        spark, _config(),
        {"record_key": "m:1", "system": "marketing", "email": "m@x.com", "updated_at": _day(9)},
        {"record_key": "b:1", "system": "billing", "email": "b@x.com"},
        {"record_key": "c:1", "system": "crm", "email": None, "company": "Acme"},
    )["c1"]
    assert (got["email"], got["company"]) == ("b@x.com", "Acme")
    assert got["lineage"]["email"] == "b:1"


def test_a_field_order_wins_over_the_default_and_unlisted_systems_follow_the_default(spark):
    config = _config(company=SurvivorshipRule("source_priority", order=("marketing",)),
                     email=SurvivorshipRule("source_priority", order=("marketing",)))
    got = _survive(
        spark, config,
        {"record_key": "c:1", "system": "crm", "company": "Acme Ltd", "email": "c@x.com"},
        {"record_key": "b:1", "system": "billing", "email": "b@x.com"},
        {"record_key": "m:1", "system": "marketing", "company": "ACME"},
    )["c1"]
    assert (got["company"], got["email"]) == ("ACME", "c@x.com")  # no marketing email: crm before billing


def test_unknown_systems_come_after_listed_ones(spark):
    got = _survive(
        spark, _config(),
        {"record_key": "a:1", "system": "analytics", "phone": "+441", "updated_at": _day(9)},
        {"record_key": "m:1", "system": "marketing", "phone": "+442", "updated_at": _day(1)},
    )["c1"]
    assert got["phone"] == "+442"


def test_most_recent_uses_updated_at_else_created_at(spark):
    got = _survive(
        spark, _config(email="most_recent"),
        {"record_key": "c:1", "email": "old@x.com", "updated_at": _day(2), "created_at": _day(1)},
        {"record_key": "c:2", "email": "new@x.com", "created_at": _day(5)},  # never updated: created counts
        {"record_key": "c:3", "email": "undated@x.com"},
    )["c1"]
    assert (got["email"], got["lineage"]["email"]) == ("new@x.com", "c:2")


def test_most_frequent_takes_the_value_most_records_hold(spark):
    got = _survive(
        spark, _config(birth_date="most_frequent"),
        {"record_key": "c:1", "system": "crm", "birth_date": date(1985, 3, 12)},
        {"record_key": "m:1", "system": "marketing", "birth_date": date(1985, 12, 3)},
        {"record_key": "m:2", "system": "marketing", "birth_date": date(1985, 12, 3), "updated_at": _day(1)},
        {"record_key": "b:1", "system": "billing", "birth_date": date(1985, 12, 3), "updated_at": _day(3)},
    )["c1"]
    assert got["birth_date"] == date(1985, 12, 3)
    assert got["lineage"]["birth_date"] == "b:1"  # the best record holding the value: billing before marketing


def test_most_frequent_tie_goes_to_the_value_of_the_best_record(spark):
    got = _survive(
        spark, _config(phone="most_frequent"),
        {"record_key": "m:1", "system": "marketing", "phone": "+441"},
        {"record_key": "m:2", "system": "marketing", "phone": "+441"},
        {"record_key": "m:3", "system": "marketing", "phone": "+442", "updated_at": _day(1)},
        {"record_key": "b:1", "system": "billing", "phone": "+442"},
        {"record_key": "c:1", "system": "crm", "phone": "+443", "updated_at": _day(1)},
    )["c1"]
    assert (got["phone"], got["lineage"]["phone"]) == ("+442", "b:1")  # 2 against 2: billing beats marketing


def test_most_frequent_name_group_counts_whole_names(spark):
    got = _survive(
        spark, _config(name="most_frequent"),
        {"record_key": "c:1", "given_name": "Robert", "family_name": "Smith", "full_name": "Robert Smith"},
        {"record_key": "m:1", "system": "marketing", "given_name": "Bob", "family_name": "Smith",
         "full_name": "Bob Smith"},
        {"record_key": "m:2", "system": "marketing", "given_name": "Bob", "family_name": "Smith",
         "full_name": "Bob Smith"},
    )["c1"]
    assert (got["given_name"], got["family_name"], got["full_name"]) == ("Bob", "Smith", "Bob Smith")
    assert {got["lineage"][f] for f in ("given_name", "family_name", "full_name")} == {"m:1"}


def test_most_complete_group_takes_the_whole_address_from_one_record(spark):
    got = _survive(
        spark, _config(address="most_complete"),
        {"record_key": "c:1", "street": "12 Main Street", "street_number": "12", "city": "Springfield",
         "postcode": "12345", "country": "US"},
        {"record_key": "c:2", "city": "Shelbyville", "region": "IL", "updated_at": _day(9)},
    )["c1"]
    address = tuple(got[f] for f in ("street", "street_number", "city", "region", "postcode", "country"))
    assert address == ("12 Main Street", "12", "Springfield", None, "12345", "US")  # no region from c:2
    assert {k: v for k, v in got["lineage"].items() if k in ("city", "region", "postcode")} == {
        "city": "c:1", "postcode": "c:1"}


def test_most_complete_single_field_takes_the_longest_value(spark):
    got = _survive(
        spark, _config(company="most_complete"),
        {"record_key": "c:1", "company": "Acme"},
        {"record_key": "b:1", "system": "billing", "company": "Acme Holdings Ltd"},
    )["c1"]
    assert got["company"] == "Acme Holdings Ltd"


def test_custom_order_first_listed_wins_and_unlisted_values_lose(spark):
    config = SurvivorshipConfig(source_priority=PRIORITY, groups={},
                                rules={"country": SurvivorshipRule("custom", values=("GB", "IE"))})
    got = _survive(
        spark, config,
        {"customer_id": "c1", "record_key": "c:1", "country": "US"},
        {"customer_id": "c1", "record_key": "m:1", "system": "marketing", "country": "IE"},
        {"customer_id": "c1", "record_key": "m:2", "system": "marketing", "country": "GB"},
        {"customer_id": "c2", "record_key": "c:9", "country": "US"},
        {"customer_id": "c2", "record_key": "m:9", "system": "marketing", "country": "IE"},
    )
    assert (got["c1"]["country"], got["c2"]["country"]) == ("GB", "IE")


def test_opt_out_is_most_restrictive_by_default(spark):
    got = _survive(
        spark, _config(),
        {"record_key": "c:1", "email_opt_out": False, "updated_at": _day(9)},
        {"record_key": "m:1", "system": "marketing", "email_opt_out": True},
        {"customer_id": "c2", "record_key": "c:2", "email_opt_out": False},
        {"customer_id": "c2", "record_key": "m:2", "system": "marketing"},
    )
    assert (got["c1"]["email_opt_out"], got["c1"]["lineage"]["email_opt_out"]) == (True, "m:1")
    assert got["c2"]["email_opt_out"] is False


def test_blank_strings_are_not_values(spark):
    got = _survive(
        spark, _config(email="most_recent", address="most_complete"),
        {"record_key": "c:1", "email": "  ", "city": "", "street": " ", "updated_at": _day(9)},
        {"record_key": "m:1", "system": "marketing", "email": "m@x.com", "city": "Leeds"},
        {"customer_id": "c2", "record_key": "c:2", "email": "", "company": "\t"},
    )
    assert (got["c1"]["email"], got["c1"]["city"], got["c1"]["street"]) == ("m@x.com", "Leeds", None)
    assert (got["c2"]["email"], got["c2"]["company"], got["c2"]["lineage"]) == (None, None, {})


def test_ties_go_to_source_priority_then_recency_then_smallest_record_key(spark):
    rows = [
        {"record_key": "m:1", "system": "marketing", "email": "a@x.com", "updated_at": _day(9)},
        {"record_key": "b:2", "system": "billing", "email": "b@x.com", "updated_at": _day(1)},
        {"record_key": "b:1", "system": "billing", "email": "c@x.com", "created_at": _day(3)},
        {"record_key": "b:4", "system": "billing", "email": "d@x.com", "updated_at": _day(3)},
        {"record_key": "b:3", "system": "billing", "email": "e@x.com", "updated_at": _day(3)},
    ]
    config = _config(email="most_complete")  # every value has the same length: all tie on the rule
    assert _survive(spark, config, *rows)["c1"]["email"] == "c@x.com"  # billing, day 3, smallest key b:1
    assert _survive(spark, config, *reversed(rows))["c1"]["email"] == "c@x.com"


def test_lineage_names_the_record_of_each_value_and_skips_nulls(spark):
    got = _survive(
        spark, _config(email="most_recent", address="most_complete"),
        {"record_key": "c:1", "given_name": "Ann", "email": "ann@old.com", "city": "York", "updated_at": _day(1)},
        {"record_key": "m:1", "system": "marketing", "email": "ann@new.com", "updated_at": _day(2),
         "email_opt_out": True},
    )["c1"]
    assert got["lineage"] == {"given_name": "c:1", "email": "m:1", "city": "c:1", "email_opt_out": "m:1"}


def test_every_customer_gets_one_row_even_without_values(spark):
    df = survive(_records(spark, {"customer_id": "c1", "record_key": "c:1"},
                          {"customer_id": "c2", "record_key": "c:2", "email": "x@y.com"}), _config())
    assert df.columns == ["customer_id", *SURVIVABLE_FIELDS, "lineage"]
    assert dict(df.groupBy("customer_id").count().collect()) == {"c1": 1, "c2": 1}
    assert df.schema["birth_date"].dataType == DateType()
    assert df.schema["email_opt_out"].dataType == BooleanType()


def test_extra_aggregates_come_from_the_same_group_by(spark):
    records = _records(spark, {"record_key": "c:1"}, {"record_key": "m:1", "system": "marketing"})
    row = survive(records, _config(), aggregates=[F.count("record_key").alias("n")]).first()
    assert (row["customer_id"], row["n"]) == ("c1", 2)


def test_missing_column_is_named(spark):
    with pytest.raises(MissingColumnError, match="survive: records: missing required column.*phone"):
        survive(_records(spark, {"record_key": "c:1"}).drop("phone"), _config())
