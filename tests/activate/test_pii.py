"""PII: the shipped conf/pii.yml, the salt, the masks and the salted hash, the analysts' table, and
no email or phone value in the log lines of a pipeline run."""

from __future__ import annotations

import hashlib
import logging
import textwrap
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from chispa import assert_column_equality
from pyspark.sql import functions as F

from cdi_spark import delta_io, tables
from cdi_spark.activate import pii
from cdi_spark.activate.pii import (
    PiiConfig,
    hash_text,
    load_pii,
    mask_email,
    mask_phone,
    protect,
    publish_analyst_table,
    refresh_analyst_table,
    salt_from_env,
    salted_hash,
)
from cdi_spark.config import load_config
from cdi_spark.errors import ConfigError, MissingColumnError, SchemaError
from cdi_spark.golden.profile import PROFILE_SCHEMA

CONF = Path(__file__).resolve().parents[2] / "conf"
SALT = "a-test-salt-of-enough-length"


# --------------------------------------------------------------------------------------------
# Configuration and salt
# --------------------------------------------------------------------------------------------


def test_the_shipped_file_lists_pii_per_table_and_treats_every_pii_column_of_the_analysts_source():
    cfg = load_pii(CONF / "pii.yml")
    profile = cfg.columns_of("gold", "customer_profile")
    assert profile.email == ("email", "emails") and profile.phone == ("phone", "phones")
    assert set(profile.columns()) <= set(cfg.analyst.treatments)
    assert cfg.columns_of("quarantine", "crm_contacts").text == ("_raw",)  # from quarantine.*
    assert cfg.columns_of("bronze", "marketing_contacts").columns() == ("properties",)
    assert cfg.columns_of("silver", "match_edges").all() == ()


@pytest.mark.parametrize(("yaml", "message"), [
    ("tables: {gold.customer_profile: {email: [email]}}\nanalyst: {treatments: {}}",
     "PII column.s. email of gold.customer_profile have no treatment"),
    ("tables: {gold.customer_profile: {email: [email]}}\nanalyst: {treatments: {email: scramble}}",
     "analyst.treatments.email: expected one of 'hash'"),
    ("tables: {golden.customer_profile: {email: [email]}}", r"tables.golden.customer_profile: expected <layer>"),
    ("tables: {silver.customer_records: {email: [email]}}",
     "analyst.source gold.customer_profile has no entry under tables"),
    ("tables: {gold.customer_profile: {mail: [email]}}", "tables.gold.customer_profile.mail: unknown key"),
])
def test_a_wrong_pii_file_names_the_key_and_the_fix(tmp_path, yaml, message):
    path = tmp_path / "pii.yml"
    path.write_text(textwrap.dedent(yaml))
    with pytest.raises(ConfigError, match=message):
        load_pii(path)


def test_the_salt_comes_from_the_environment_and_must_be_long_enough():
    cfg = PiiConfig(tables={"gold.customer_profile": pii.PiiColumns()})
    assert salt_from_env(cfg, {"CDI_SPARK_PII_SALT": SALT}) == SALT
    with pytest.raises(ConfigError, match="environment: CDI_SPARK_PII_SALT: not set; set it to a secret of at least"):
        salt_from_env(cfg, {})
    with pytest.raises(ConfigError, match="only 4 characters long"):
        salt_from_env(cfg, {"CDI_SPARK_PII_SALT": "abcd"})


# --------------------------------------------------------------------------------------------
# Column functions
# --------------------------------------------------------------------------------------------


def test_mask_email_keeps_the_first_letter_and_the_domain(spark):
    df = spark.createDataFrame([
        ("jane.doe@example.com", "j***@example.com"),
        ("A@B.CO", "A***@B.CO"),
        ("no-at-sign", "***"),
        (None, None),
    ], "value string, expected string")
    assert_column_equality(df.withColumn("masked", mask_email(F.col("value"))), "masked", "expected")


def test_mask_phone_keeps_the_plus_and_two_digits_each_end(spark):
    df = spark.createDataFrame([
        ("+447911123467", "+44********67"),
        ("+1 (415) 555-0123", "+14*******23"),
        ("020 7946 0958", "02*******58"),
        ("1234", "****"),
        (None, None),
    ], "value string, expected string")
    assert_column_equality(df.withColumn("masked", mask_phone(F.col("value"))), "masked", "expected")


def test_the_salted_hash_is_sha256_of_salt_and_value_and_keeps_the_salt_out_of_the_plan(spark):
    df = spark.createDataFrame([("ann@example.com", ["+447911123467", None]), (None, None)],
                               "email string, phones array<string>")
    out = df.select(salted_hash(SALT)(F.col("email")).alias("email"),
                    salted_hash(SALT, array=True)(F.col("phones")).alias("phones"))
    rows = out.collect()
    assert rows[0]["email"] == hash_text(SALT, "ann@example.com") == hashlib.sha256(
        f"{SALT}ann@example.com".encode()).hexdigest()
    assert rows[0]["phones"] == [hash_text(SALT, "+447911123467"), None]
    assert (rows[1]["email"], rows[1]["phones"]) == (None, None)
    assert SALT not in out._jdf.queryExecution().toString()


def test_protect_hashes_masks_generalises_and_drops(spark):
    df = spark.createDataFrame([("C1", "ann@example.com", ["ann@example.com"], "+447911123467", date(1980, 5, 17),
                                 "Ann", "London")],
                               "customer_id string, email string, emails array<string>, phone string, "
                               "birth_date date, given_name string, city string")
    out = protect(df, {"email": "mask_email", "emails": "hash", "phone": "mask_phone", "birth_date": "year",
                       "given_name": "drop"}, SALT)
    assert out.columns == ["customer_id", "email", "emails", "phone", "birth_year", "city"]
    row = out.first()
    assert (row["email"], row["phone"], row["birth_year"], row["city"]) == ("a***@example.com", "+44********67",
                                                                            1980, "London")
    assert row["emails"] == [hash_text(SALT, "ann@example.com")]


def test_protect_refuses_a_missing_column_or_a_treatment_that_does_not_fit(spark):
    df = spark.createDataFrame([("C1", 3)], "customer_id string, record_count long")
    with pytest.raises(MissingColumnError, match="missing required column.s. email"):
        protect(df, {"email": "hash"}, SALT)
    with pytest.raises(SchemaError, match="mask_email needs a string or array<string> column; record_count is bigint"):
        protect(df, {"record_count": "mask_email"}, SALT)
    with pytest.raises(SchemaError, match="year needs a date or timestamp column"):
        protect(df, {"customer_id": "year"}, SALT)


# --------------------------------------------------------------------------------------------
# The analysts' table
# --------------------------------------------------------------------------------------------


def _profile(customer_id: str, email: str, phone: str) -> tuple:
    values = {"customer_id": customer_id, "given_name": "Ann", "family_name": "Lee", "full_name": "Ann Lee",
              "email": email, "phone": phone, "birth_date": date(1980, 5, 17), "street": "1 High Street",
              "street_number": "1", "city": "London", "postcode": "N1 9GU", "country": "GB", "emails": [email],
              "phones": [phone], "source_ids": {"crm": ["001"]}, "record_count": 1,
              "last_updated": datetime(2024, 1, 1, tzinfo=UTC), "lineage": {"email": "crm_contacts:001"}}
    return tuple(values.get(f.name) for f in PROFILE_SCHEMA.fields)


def test_the_analysts_table_holds_no_email_phone_or_name_and_is_rebuilt_whole(spark, tmp_path):
    cfg = load_config(CONF / "pipeline.yml", lakehouse=str(tmp_path / "lakehouse"))
    source = tables.table_path(cfg.lakehouse, "gold", "customer_profile")
    profiles = spark.createDataFrame([_profile("C1", "ann.lee@example.com", "+447911123467"),
                                      _profile("C2", "bo@example.org", "+14155550123")], PROFILE_SCHEMA)
    delta_io.append(spark, profiles, source)
    version = publish_analyst_table(spark, cfg, load_pii(CONF / "pii.yml"), salt=SALT)
    table = spark.table("gold.customer_profile_analyst")  # registered in the catalog
    text = " ".join(table.select(F.to_json(F.struct("*"))).toPandas().iloc[:, 0])
    for value in ("ann.lee@", "bo@example.org", "7911123467", "4155550123", "Ann", "Lee", "High Street", "N1 9GU"):
        assert value not in text
    row = table.filter("customer_id = 'C1'").first()
    assert (row["email"], row["phone"], row["birth_year"]) == ("a***@example.com", "+44********67", 1980)
    assert row["emails"] == [hash_text(SALT, "ann.lee@example.com")]
    assert row["source_ids"] == {"crm": ["001"]} and "given_name" not in table.columns

    delta_io.overwrite_partition(spark, profiles.filter("customer_id = 'C2'"), source, where="true")
    again = publish_analyst_table(spark, cfg, load_pii(CONF / "pii.yml"), salt=SALT)
    assert again == version + 1
    assert [r[0] for r in delta_io.read(spark, tables.table_path(cfg.lakehouse, "gold", "customer_profile_analyst"))
            .select("customer_id").collect()] == ["C2"]


def test_the_pipeline_hook_skips_the_analysts_table_without_a_salt(spark, tmp_path, monkeypatch, caplog):
    monkeypatch.delenv("CDI_SPARK_PII_SALT", raising=False)
    cfg = load_config(CONF / "pipeline.yml", lakehouse=str(tmp_path / "lakehouse"))
    with caplog.at_level(logging.WARNING, logger="cdi_spark"):
        assert refresh_analyst_table(spark, cfg) is None
    assert "analyst table: not rebuilt: environment: CDI_SPARK_PII_SALT: not set" in caplog.text


# --------------------------------------------------------------------------------------------
# No personal data in the logs of a pipeline run
# --------------------------------------------------------------------------------------------


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.mark.slow
def test_a_pipeline_run_logs_no_email_or_phone_value(spark, tmp_path):
    from cdi_spark.generate import generate
    from cdi_spark.pipeline import run_pipeline

    generate(spark, tmp_path / "data", people=30, seed=11, batch="day1")
    cfg = load_config(CONF / "pipeline.yml", lakehouse=str(tmp_path / "lakehouse"), raw_dir=str(tmp_path / "data/raw"),
                      stages=["ingest", "standardize"])
    logger, capture = logging.getLogger("cdi_spark"), _Capture()
    level = logger.level
    logger.addHandler(capture)
    logger.setLevel(logging.DEBUG)
    try:
        run_pipeline(spark, cfg)
    finally:
        logger.removeHandler(capture)
        logger.setLevel(level)
    records = delta_io.read(spark, tables.table_path(cfg.lakehouse, "silver", "customer_records"))
    values = {v for r in records.select("email", "phone_raw", "phone_e164").collect() for v in r if v}
    quarantined = {r[0] for p in (tmp_path / "lakehouse" / "quarantine").iterdir()
                   for r in delta_io.read(spark, str(p)).select("_raw").collect()}
    text = "\n".join(capture.lines)
    assert len(capture.lines) > 10 and len(values) > 30
    assert [v for v in values if v in text] == []
    assert [raw for raw in quarantined if raw and raw in text] == []
