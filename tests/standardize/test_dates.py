"""Dates and timestamps: ISO, US and European day order, epochs, offsets -> UTC."""

from __future__ import annotations

import datetime as dt

import pytest
from chispa import assert_column_equality
from pyspark.sql import functions as F

from cdi_spark.standardize.dates import date_parser, timestamp_parser, unparsed

UTC = dt.UTC


def ts(*parts: int) -> dt.datetime:
    # The session runs in UTC, so naive datetimes collected from Spark are UTC wall clock.
    return dt.datetime(*parts)


# raw, day order, source zone, expected UTC timestamp
TS_CASES = [
    ("2024-01-31", "YMD", "UTC", ts(2024, 1, 31)),
    ("2024-01-31T13:45:00Z", "YMD", "UTC", ts(2024, 1, 31, 13, 45)),
    ("2024-01-31T13:45:00.123456+01:00", "YMD", "UTC", ts(2024, 1, 31, 12, 45, 0, 123456)),
    ("2024-01-31 13:45:00 -0500", "YMD", "UTC", ts(2024, 1, 31, 18, 45)),
    ("2024-07-01 12:00", "YMD", "Europe/Berlin", ts(2024, 7, 1, 10, 0)),  # summer time
    ("2024-01-01 12:00", "YMD", "Europe/Berlin", ts(2024, 1, 1, 11, 0)),
    ("01/31/2024 1:45 PM", "MDY", "America/New_York", ts(2024, 1, 31, 18, 45)),
    ("31.01.2024 13:45", "DMY", "UTC", ts(2024, 1, 31, 13, 45)),
    ("31/01/2024", "DMY", "UTC", ts(2024, 1, 31)),
    ("31/01/2024", "MDY", "UTC", None),  # month 31 in US order
    ("1706708700", "YMD", "UTC", ts(2024, 1, 31, 13, 45)),  # epoch seconds
    ("1706708700123", "YMD", "UTC", ts(2024, 1, 31, 13, 45, 0, 123000)),  # epoch millis
    ("20240131", "YMD", "UTC", ts(2024, 1, 31)),
    ("Jan 31, 2024", "YMD", "UTC", ts(2024, 1, 31)),
    ("31 January 2024", "DMY", "UTC", ts(2024, 1, 31)),
    ("2024-02-30", "YMD", "UTC", None),
    ("2024-01-31 25:00", "YMD", "UTC", None),
    ("12/03/85", "DMY", "UTC", None),  # two-digit year: ambiguous
    ("yesterday", "YMD", "UTC", None),
    ("", "YMD", "UTC", None),
    (None, "YMD", "UTC", None),
]


@pytest.mark.parametrize(
    "order,zone", [("YMD", "UTC"), ("MDY", "America/New_York"), ("DMY", "UTC"), ("YMD", "Europe/Berlin")]
)
def test_timestamp_parser_reads_each_source_format_as_utc(spark, order, zone):
    rows = [(raw, exp) for raw, o, z, exp in TS_CASES if (o, z) == (order, zone)]
    df = spark.createDataFrame(rows, "raw string, expected timestamp")
    df = df.withColumn("clean", timestamp_parser(order, zone)(F.col("raw")))
    assert_column_equality(df, "clean", "expected")


DATE_CASES = [
    ("1985-03-12", dt.date(1985, 3, 12)),
    ("1985-03-12T23:00:00-05:00", dt.date(1985, 3, 12)),  # the date as written
    ("12.03.1985", dt.date(1985, 3, 12)),
    ("12/3/1985", dt.date(1985, 3, 12)),
    ("2000-02-29", dt.date(2000, 2, 29)),
    ("1900-02-29", None),
    ("12 Mar 1985", dt.date(1985, 3, 12)),
    ("March 12th, 1985", dt.date(1985, 3, 12)),
    ("479433600", dt.date(1985, 3, 12)),  # epoch seconds
    ("00.00.0000", None),
    ("1985-13-01", None),
    ("  ", None),
    (None, None),
    ("n/a", None),
]


def test_date_parser_reads_european_dates(spark):
    df = spark.createDataFrame(DATE_CASES, "raw string, expected date")
    df = df.withColumn("clean", date_parser("DMY")(F.col("raw")))
    assert_column_equality(df, "clean", "expected")


def test_unparsed_flags_text_that_gave_no_value(spark):
    df = spark.createDataFrame(
        [("2024-01-31", False), ("garbage", True), ("", None), (None, None)],
        "raw string, expected boolean",
    ).withColumn("clean", unparsed(F.col("raw"), date_parser()(F.col("raw"))))
    assert_column_equality(df, "clean", "expected")


def test_parsers_do_not_fail_under_ansi_mode(spark):
    spark.conf.set("spark.sql.ansi.enabled", "true")
    try:
        df = spark.createDataFrame(
            [("2024-02-30", None), ("2024-02-29 10:00", ts(2024, 2, 29, 10))],
            "raw string, expected timestamp",
        ).withColumn("clean", timestamp_parser()(F.col("raw")))
        assert_column_equality(df, "clean", "expected")
    finally:
        spark.conf.unset("spark.sql.ansi.enabled")


def test_unknown_day_order_is_refused():
    with pytest.raises(ValueError, match="day_order"):
        timestamp_parser("DYM")
