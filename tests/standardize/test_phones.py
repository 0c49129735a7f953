"""Phones: E.164 with the record's country as default region; invalid kept raw, flagged."""

from __future__ import annotations

from chispa import assert_column_equality
from pyspark.sql import functions as F

from cdi_spark.standardize.phones import parse_phone

# raw, region, (e164, is_valid, raw)
CASES = [
    ("(202) 456-1111", "US", ("+12024561111", True, "(202) 456-1111")),
    ("202.456.1111", "us", ("+12024561111", True, "202.456.1111")),
    ("+1 202 456 1111", None, ("+12024561111", True, "+1 202 456 1111")),
    ("1-202-456-1111 ext. 12", "US", ("+12024561111", True, "1-202-456-1111 ext. 12")),
    ("020 7946 0958", "GB", ("+442079460958", True, "020 7946 0958")),
    ("+44 (0)20 7946 0958", "DE", ("+442079460958", True, "+44 (0)20 7946 0958")),
    ("0044 20 7946 0958", "DE", ("+442079460958", True, "0044 20 7946 0958")),
    ("030 901820", "DE", ("+4930901820", True, "030 901820")),
    ("06 12 34 56 78", "FR", ("+33612345678", True, "06 12 34 56 78")),
    ("  (202)\u00a0456-1111 ", "US", ("+12024561111", True, "(202) 456-1111")),
    ("020 7946 0958", None, (None, False, "020 7946 0958")),  # no region, no "+"
    ("555-1234", "US", (None, False, "555-1234")),  # too short: never completed
    ("123", "US", (None, False, "123")),
    ("not a phone", "US", (None, False, "not a phone")),
    ("+1 000 000 0000", "US", (None, False, "+1 000 000 0000")),
    ("2.02456E+09", "US", (None, False, "2.02456E+09")),  # spreadsheet damage
    ("(202) 456-1111", "XX", (None, False, "(202) 456-1111")),  # unknown region
    ("", "US", (None, None, None)),
    (None, "US", (None, None, None)),
    (None, None, (None, None, None)),
]


def test_parse_phone_to_e164_with_record_region(spark):
    df = spark.createDataFrame(
        CASES * 3,  # repeats exercise the per-batch cache
        "raw string, region string, expected struct<e164:string, is_valid:boolean, raw:string>",
    ).withColumn("clean", parse_phone(F.col("raw"), F.col("region")))
    assert_column_equality(df, "clean", "expected")


def test_parse_phone_accepts_a_constant_region(spark):
    df = spark.createDataFrame(
        [("020 7946 0958", "+442079460958"), ("+1 202 456 1111", "+12024561111"), (None, None)],
        "raw string, expected string",
    ).withColumn("clean", parse_phone(F.col("raw"), "GB")["e164"])
    assert_column_equality(df, "clean", "expected")
