"""Golden profiles from silver records and the xref: fields, arrays, maps, counts, key checks."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from cdi_spark.config import SURVIVABLE_FIELDS, SurvivorshipConfig, SurvivorshipRule
from cdi_spark.errors import StageError
from cdi_spark.golden.profile import PROFILE_COLUMNS, PROFILE_SCHEMA, build_profiles
from cdi_spark.standardize.canonical import COLUMNS, SCHEMA

CONFIG = SurvivorshipConfig(
    source_priority=("crm", "billing", "marketing"),
    rules={"email": SurvivorshipRule("most_recent"), "phone": SurvivorshipRule("most_frequent")},
)
SOURCES = {"crm": "crm_contacts", "billing": "billing_customers", "marketing": "marketing_contacts"}


def _silver(spark, *rows: dict):
    """silver.customer_records rows; record_key is "<system>:<source_record_id>" here."""
    def full(row: dict) -> tuple:
        system, record_id = row["record_key"].split(":")
        lineage = {"source": SOURCES[system], "system": system, "source_record_id": record_id,
                   "batch_id": "b1", "bronze_version": 0, "run_id": "r1"}
        return tuple({**lineage, **row}.get(c) for c in COLUMNS)
    return spark.createDataFrame([full(r) for r in rows], SCHEMA)


def _xref(spark, pairs: dict[str, str]):
    return spark.createDataFrame(list(pairs.items()), "record_key string, customer_id string")


def _profiles(spark, records, xref) -> dict[str, dict]:
    return {r["customer_id"]: r.asDict() for r in build_profiles(records, xref, CONFIG).collect()}


def test_profile_has_the_declared_columns_and_types(spark):
    df = build_profiles(_silver(spark, {"record_key": "crm:1"}), _xref(spark, {"crm:1": "C1"}), CONFIG)
    assert df.columns == list(PROFILE_COLUMNS)
    assert [(f.name, f.dataType) for f in df.schema] == [(f.name, f.dataType) for f in PROFILE_SCHEMA]
    assert [c for c in PROFILE_COLUMNS if c in SURVIVABLE_FIELDS] == list(SURVIVABLE_FIELDS)


def test_profile_gathers_every_valid_email_phone_and_source_id(spark):
    records = _silver(
        spark,
        {"record_key": "crm:7", "given_name": "Ann", "family_name": "Lee", "email": "ann@old.com",
         "email_valid": True, "phone_e164": "+442071234567", "phone_alt_e164": "+447700900123",
         "birth_date": date(1990, 5, 1), "created_at": datetime(2020, 1, 1), "updated_at": datetime(2021, 1, 1)},
        {"record_key": "marketing:42", "email": "ann@new.com", "email_valid": True,
         "phone_e164": "+447700900123", "created_at": datetime(2019, 6, 1), "updated_at": datetime(2023, 3, 1)},
        {"record_key": "marketing:5", "email": "ann@", "email_valid": False, "updated_at": datetime(2024, 1, 1)},
        {"record_key": "billing:x1", "phone_e164": "+447700900123", "email_opt_out": True},
        {"record_key": "crm:9", "given_name": "Bo", "email": "bo@x.com", "email_valid": True},
    )
    xref = _xref(spark, {"crm:7": "C1", "marketing:42": "C1", "marketing:5": "C1", "billing:x1": "C1",
                         "crm:9": "C2"})
    got = _profiles(spark, records, xref)
    ann = got["C1"]
    assert ann["emails"] == ["ann@new.com", "ann@old.com"]  # "ann@" is not valid
    assert ann["phones"] == ["+442071234567", "+447700900123"]
    assert ann["source_ids"] == {"billing": ["x1"], "crm": ["7"], "marketing": ["42", "5"]}
    assert (ann["record_count"], ann["first_seen"], ann["last_updated"]) == (
        4, datetime(2019, 6, 1), datetime(2024, 1, 1))
    assert (ann["given_name"], ann["email"], ann["phone"], ann["email_opt_out"]) == (
        "Ann", "ann@new.com", "+447700900123", True)
    assert ann["lineage"] == {"given_name": "crm:7", "family_name": "crm:7", "email": "marketing:42",
                              "phone": "billing:x1", "birth_date": "crm:7", "email_opt_out": "billing:x1"}
    assert (got["C2"]["record_count"], got["C2"]["emails"], got["C2"]["first_seen"]) == (1, ["bo@x.com"], None)


def test_customer_whose_records_are_gone_gets_an_empty_row(spark):
    got = _profiles(spark, _silver(spark, {"record_key": "crm:1"}), _xref(spark, {"crm:1": "C1", "crm:2": "C2"}))
    empty = got["C2"]
    assert (empty["record_count"], empty["emails"], empty["phones"], empty["source_ids"], empty["lineage"]) == (
        0, [], [], {}, {})
    assert empty["first_seen"] is None and empty["email"] is None


@pytest.mark.parametrize(
    ("keys", "xref", "message"),
    [
        (["crm:1", "crm:2", "crm:3"], [("crm:1", "C1")], r"records without a customer_id in the xref: 2 "
                                                           r"\(e\.g\. record_key 'crm:2'\)"),
        (["crm:1"], [("crm:1", "C1"), ("crm:1", "C2")], r"records with more than one customer_id in the xref: 1 "
                                                        r"\(e\.g\. record_key 'crm:1'\)"),
        (["crm:1", "crm:1"], [("crm:1", "C1")], r"record keys that appear more than once in the records: 1"),
        (["crm:1"], [("crm:1", None)], r"records without a customer_id in the xref: 1"),
    ],
)
def test_records_must_have_exactly_one_customer(spark, keys, xref, message):
    records = _silver(spark, *[{"record_key": k} for k in keys])
    xref_df = spark.createDataFrame(xref, "record_key string, customer_id string")
    with pytest.raises(StageError, match=message):
        build_profiles(records, xref_df, CONFIG)
