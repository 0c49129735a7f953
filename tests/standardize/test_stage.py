"""The standardize stage on a small multi-source bronze: mapping, cleaning, lineage, quality."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from cdi_spark import delta_io, tables
from cdi_spark.config import FieldThreshold, PipelineConfig, QualityConfig, SourceConfig, SourceMapping
from cdi_spark.standardize import quality
from cdi_spark.standardize.stage import canonical, latest_per_record, standardize, standardize_source

INGESTED = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

CRM = SourceConfig(
    name="crm_contacts",
    system="crm",
    format="csv",
    path="*/crm_contacts/*.csv",
    primary_key=("Id",),
    mapping=SourceMapping(
        record_id="Id",
        fields={
            "given_name": "FirstName",
            "family_name": "LastName",
            "email": "Email",
            "phone": "Phone",
            "birth_date": "Birthdate",
            "street": "MailingStreet",
            "postcode": "MailingPostalCode",
            "country": "MailingCountry",
            "email_opt_out": "HasOptedOutOfEmail",
            "created_at": "CreatedDate",
        },
    ),
)

SUPPORT = SourceConfig(
    name="support_users",
    system="support",
    format="json",
    path="*/support_users/*.json",
    primary_key=("id",),
    mapping=SourceMapping(
        record_id="id",
        fields={"full_name": "name", "email": "email", "phone": "phone", "created_at": "created_at"},
        constants={"country": "GB"},
        formats={"created_at": "dmy"},
    ),
)

BILLING = SourceConfig(
    name="billing_customers",
    system="billing",
    format="jsonl",
    path="*/billing_customers/*.json",
    primary_key=("id",),
    mapping=SourceMapping(
        record_id="id",
        fields={"full_name": "name", "email": "email", "street": ["address.line1", "address.line2"],
                "country": "address.country", "created_at": "created"},
        formats={"created_at": "epoch_s"},
        references={"crm_contacts": "metadata.crm_id"},
    ),
)


def _bronze(spark, rows, schema):
    df = spark.createDataFrame(rows, schema)
    return df.withColumns({"_batch_id": F.lit("b1"), "_ingested_at": F.lit(INGESTED)})


def test_crm_row_becomes_a_clean_canonical_record(spark):
    bronze = _bronze(
        spark,
        [("003A", " BOB ", "o'brien", " Bob.OBrien+crm@Example.COM ", "(202) 456-1111", "1985-03-12",
          "12 n main st.", "20500-0003", "USA", "true", "2023-01-05T10:00:00Z")],
        "Id string, FirstName string, LastName string, Email string, Phone string, Birthdate string, "
        "MailingStreet string, MailingPostalCode string, MailingCountry string, HasOptedOutOfEmail string, "
        "CreatedDate string",
    )
    row = canonical(standardize_source(bronze, CRM, bronze_version=3, run_id="r1")).first()

    assert (row.record_key, row.source, row.system, row.batch_id, row.bronze_version) == (
        "crm_contacts:003A", "crm_contacts", "crm", "b1", 3)
    assert (row.given_name, row.family_name, row.full_name) == ("Bob", "O'Brien", "Bob O'Brien")
    assert (row.given_name_key, row.family_name_key) == ("robert", "obrien")
    assert (row.email, row.email_key, row.email_valid, row.email_is_role) == (
        "bob.obrien+crm@example.com", "bob.obrien@example.com", True, False)
    assert (row.phone_e164, row.phone_valid) == ("+12024561111", True)
    assert row.birth_date == date(1985, 3, 12)
    assert (row.street, row.street_number, row.postcode, row.country) == ("12 North Main Street", "12", "20500", "US")
    assert row.email_opt_out is True
    assert row.created_at == datetime(2023, 1, 5, 10, 0)


def test_full_name_is_split_and_source_constants_fill_gaps(spark):
    bronze = _bronze(
        spark,
        [(17, "Dr. Jane van der Berg", "JANE@corp.co.uk", "020 7946 0958", "31/01/2024 13:45"),
         (18, "Smith, John", "info@corp.co.uk", "12345", None)],
        "id long, name string, email string, phone string, created_at string",
    )
    out = canonical(standardize_source(bronze, SUPPORT, bronze_version=0, run_id="r1"))
    expected = spark.createDataFrame(
        [("support_users:17", "Jane", "van der Berg", "jane@corp.co.uk", False, "+442079460958", True, "GB",
          datetime(2024, 1, 31, 13, 45)),
         ("support_users:18", "John", "Smith", "info@corp.co.uk", True, None, False, "GB", None)],
        "record_key string, given_name string, family_name string, email string, email_is_role boolean, "
        "phone_e164 string, phone_valid boolean, country string, created_at timestamp",
    )
    assert_df_equality(out.select(*expected.columns), expected, ignore_row_order=True, ignore_nullable=True)


def test_nested_fields_joined_lines_epochs_and_references(spark):
    bronze = _bronze(
        spark,
        [("cus_1", "Ana Lima", "ana@x.com", ("1 High St", "Flat 2", "GB"), 1700000000, {"crm_id": "003A"}),
         ("cus_2", "Li Wei", "li@x.com", ("5 Rue", None, "FR"), 1600000000, {})],
        "id string, name string, email string, address struct<line1:string,line2:string,country:string>, "
        "created long, metadata map<string,string>",
    )
    out = canonical(standardize_source(bronze, BILLING, bronze_version=0, run_id="r1"))
    expected = spark.createDataFrame(
        [("billing_customers:cus_1", "1 High Street Unit 2", "GB", datetime(2023, 11, 14, 22, 13, 20),
          "crm_contacts:003A"),
         ("billing_customers:cus_2", "5 Rue", "FR", datetime(2020, 9, 13, 12, 26, 40), None)],
        "record_key string, street string, country string, created_at timestamp, ref_record_key string",
    )
    assert_df_equality(out.select(*expected.columns), expected, ignore_row_order=True, ignore_nullable=True)


def test_rows_without_a_record_id_are_not_records(spark):
    bronze = _bronze(spark, [(None, "A B", None, None, None)],
                     "id long, name string, email string, phone string, created_at string")
    assert standardize_source(bronze, SUPPORT, bronze_version=0, run_id="r").count() == 0


def test_latest_export_of_a_record_wins(spark):
    early, late = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 2, 1, tzinfo=UTC)
    df = spark.createDataFrame(
        [("k1", "b1", early, None, "old@x.com"), ("k1", "b2", late, None, "new@x.com"),
         ("k2", "b1", early, None, "k2@x.com")],
        "record_key string, batch_id string, _ingested_at timestamp, updated_at timestamp, email string",
    )
    out = latest_per_record(df).select("record_key", "email")
    expected = spark.createDataFrame([("k1", "new@x.com"), ("k2", "k2@x.com")], "record_key string, email string")
    assert_df_equality(out, expected, ignore_row_order=True)


def test_quality_measures_fill_and_invalid_rates_per_source(spark):
    bronze = _bronze(
        spark,
        [(1, "A B", "a@x.com", "+44 20 7946 0958", None), (2, "C D", "not-an-email", None, None),
         (3, "E F", None, None, None), (4, "G H", None, None, None)],
        "id long, name string, email string, phone string, created_at string",
    )
    measured = quality.measure(standardize_source(bronze, SUPPORT, bronze_version=0, run_id="r"))
    email = next(q for q in measured if q.field == "email")
    assert (email.records, email.filled, email.invalid) == (4, 2, 1)
    assert email.fill_rate == pytest.approx(0.5)
    assert email.invalid_rate == pytest.approx(0.5)


def test_quality_threshold_names_the_source_and_field():
    measured = [quality.FieldQuality("crm_contacts", "email", records=1000, filled=0, invalid=0),
                quality.FieldQuality("crm_contacts", "phone", records=1000, filled=900, invalid=10)]
    limits = QualityConfig({"crm_contacts": {"email": FieldThreshold(min_fill=0.5),
                                             "phone": FieldThreshold(max_invalid=0.2)}})
    assert quality.breaches(measured, limits) == [
        "source crm_contacts, field email: fill rate 0.0% is below the minimum 50.0% (0 of 1,000 records)"
    ]


def test_only_new_bronze_batches_are_standardized_and_a_rerun_adds_nothing(spark, tmp_path):
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "quality.yml").write_text("sources: {}\n")
    cfg = PipelineConfig(lakehouse=str(tmp_path / "lake"))
    object.__setattr__(cfg, "path", str(conf / "pipeline.yml"))
    object.__setattr__(cfg, "sources", (SUPPORT,))
    bronze_path = tables.table_path(cfg.lakehouse, tables.BRONZE, SUPPORT.name)
    silver_path = tables.table_path(cfg.lakehouse, tables.SILVER, tables.CUSTOMER_RECORDS)
    schema = "id long, name string, email string, phone string, created_at string, _batch_id string"

    def land(rows, batch):
        df = spark.createDataFrame([(*r, batch) for r in rows], schema).withColumn("_ingested_at", F.lit(INGESTED))
        delta_io.append(spark, df, bronze_path)

    land([(1, "Ann Lee", "ann@x.com", None, "01/02/2024"), (2, "Bo Li", "bo@x.com", None, "01/02/2024")], "b1")
    first = standardize(spark, cfg, run_id="r1")
    land([(2, "Bo Li", "bo.li@x.com", None, "02/02/2024"), (3, "Cy Ng", "cy@x.com", None, "02/02/2024")], "b2")
    second = standardize(spark, cfg, run_id="r2")
    version = delta_io.current_version(spark, silver_path)
    third = standardize(spark, cfg, run_id="r3")

    assert (first.rows_in, second.rows_in, third.rows_in) == ({SUPPORT.name: 2}, {SUPPORT.name: 2}, {})
    assert third.silver_version is None and delta_io.current_version(spark, silver_path) == version
    silver = delta_io.read(spark, silver_path).select("record_key", "email", "batch_id")
    expected = spark.createDataFrame(
        [("support_users:1", "ann@x.com", "b1"), ("support_users:2", "bo.li@x.com", "b2"),
         ("support_users:3", "cy@x.com", "b2")],
        "record_key string, email string, batch_id string",
    )
    assert_df_equality(silver, expected, ignore_row_order=True, ignore_nullable=True)
