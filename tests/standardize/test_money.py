"""Currencies and money: ISO codes, minor units by exponent, reporting currency."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from chispa import assert_column_equality
from pyspark.sql import functions as F

from cdi_spark.errors import ConfigError
from cdi_spark.standardize.money import (
    currency_code,
    load_currency_rates,
    minor_to_amount,
    to_reporting_currency,
)

RATES_FILE = Path(__file__).parents[2] / "conf" / "currency_rates.yml"

CODE_CASES = [
    ("USD", "USD"), (" usd ", "USD"), ("eur", "EUR"), ("€", "EUR"), ("£", "GBP"),
    ("US$", "USD"), ("JPY", "JPY"), ("BHD", "BHD"), ("$", None), ("XYZ", None),
    ("dollars", None), ("", None), (None, None), ("E U R", None),
]  # fmt: skip

D = Decimal
# minor units, currency, amount, amount in EUR with the shipped rates
AMOUNT_CASES = [
    ("1999", "USD", D("19.9900"), D("19.1904")),
    ("1999", "JPY", D("1999.0000"), D("12.1939")),
    ("1999", "BHD", D("1.9990"), D("5.0974")),  # 5.09745, half-even
    ("1999", "EUR", D("19.9900"), D("19.9900")),
    ("-500", "GBP", D("-5.0000"), D("-6.0500")),
    ("0", "USD", D("0.0000"), D("0.0000")),
    ("123456789012", "USD", D("1234567890.1200"), D("1185185174.5152")),
    ("1999", "XAU", None, None),  # gold has no minor unit
    ("1999", "ZAR", D("19.9900"), None),  # no rate in the table: no guess
    ("1999", None, None, None),
    (None, "USD", None, None),
    ("abc", "USD", None, None),
]


def test_currency_code_validates_iso_4217(spark):
    df = spark.createDataFrame(CODE_CASES, "raw string, expected string")
    df = df.withColumn("clean", currency_code(F.col("raw")))
    assert_column_equality(df, "clean", "expected")


def test_minor_units_and_reporting_currency(spark):
    rates = load_currency_rates(RATES_FILE)
    df = spark.createDataFrame(
        AMOUNT_CASES, "minor string, cur string, amount decimal(20,4), eur decimal(20,4)"
    ).withColumn("clean", minor_to_amount(F.col("minor"), F.col("cur")))
    df = df.withColumn("clean_eur", to_reporting_currency(F.col("clean"), F.col("cur"), rates.rates))
    assert_column_equality(df, "clean", "amount")
    assert_column_equality(df, "clean_eur", "eur")


def test_shipped_rates_file_loads():
    rates = load_currency_rates(RATES_FILE)
    assert rates.reporting_currency == "EUR"
    assert rates.rates["EUR"] == 1


@pytest.mark.parametrize(
    "text,key",
    [
        ("reporting_currency: EUR\nas_of: 2024-12-31\nrates: {EUR: 1, ABC: 2}\n", "rates.ABC"),
        ("reporting_currency: EUR\nas_of: 2024-12-31\nrates: {EUR: 1, USD: -1}\n", "rates.USD"),
        ("reporting_currency: EUR\nas_of: 2024-12-31\nrates: {USD: 1}\n", "rates.EUR"),
        ("reporting_currency: EUR\nas_of: soon\nrates: {EUR: 1}\n", "as_of"),
        ("reporting_currency: EUR\nrates: {EUR: 1}\n", ""),
    ],
)
def test_bad_rates_file_names_the_key(tmp_path, text, key):
    path = tmp_path / "rates.yml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_currency_rates(path)
    assert err.value.key == key
