"""Countries, streets and postcodes, table-driven."""

from __future__ import annotations

from chispa import assert_column_equality
from pyspark.sql import functions as F

from cdi_spark.standardize.places import (
    country_to_alpha2,
    normalize_postcode,
    normalize_street,
    street_number,
)

COUNTRY_CASES = [
    ("US", "US"), ("us", "US"), ("USA", "US"), ("U.S.A.", "US"), ("U.S.", "US"),
    ("United States of America", "US"), ("united states", "US"), ("U.K.", "GB"),
    ("England", "GB"), ("United Kingdom", "GB"), ("Deutschland", "DE"), ("DEU", "DE"),
    ("Germany", "DE"), ("Holland", "NL"), ("the Netherlands", "NL"), ("Côte d'Ivoire", "CI"),
    ("Republic of Korea", "KR"), ("Korea, Republic of", "KR"), ("  france ", "FR"),
    ("España", "ES"), ("NA", "NA"), ("n/a", None), ("Atlantis", None), ("", None),
    (None, None), ("12345", None),
]  # fmt: skip

STREET_CASES = [
    ("12 Main St", "12 Main Street"),
    ("12 main st.", "12 Main Street"),
    ("12  N  MAIN  ST", "12 North Main Street"),
    ("500 5th Ave, Apt 4", "500 5th Avenue, Unit 4"),
    ("500 Fifth Avenue #4", "500 Fifth Avenue Unit 4"),
    ("1 Elm Rd Suite 200", "1 Elm Road Unit 200"),
    ("9 Sunset Blvd", "9 Sunset Boulevard"),
    ("3 Oak Dr", "3 Oak Drive"),
    ("8 Mill Ln", "8 Mill Lane"),
    ("St. John's Rd 4", "St. John's Road 4"),
    ("Hauptstr. 5", "Hauptstrasse 5"),
    ("Flat 3, 221B Baker Street", "Unit 3, 221b Baker Street"),
    ("   ", None),
    (None, None),
]

NUMBER_CASES = [
    ("12 Main St", "12"), ("12b Main St", "12b"), ("Hauptstr. 5", "5"),
    ("Hauptstrasse 12a", "12a"), ("Apt 4, 500 5th Ave", "500"), ("Main St", None),
    ("Flat 3, 221B Baker Street", "221b"), ("10-12 High St", "10-12"), ("#4 Main", None),
    ("", None), (None, None), ("Rue de Rivoli 99, ", "99"),
]  # fmt: skip

POSTCODE_CASES = [
    ("02134", "US", "02134"), ("02134-1234", "US", "02134"), ("021341234", "US", "02134"),
    ("2134", "US", None), ("sw1a1aa", "GB", "SW1A 1AA"), (" SW1A  1AA ", "GB", "SW1A 1AA"),
    ("ec1a 1bb", "GB", "EC1A 1BB"), ("k1a0b1", "CA", "K1A 0B1"), ("10115", "DE", "10115"),
    ("1011", "DE", None), ("1234ab", "NL", "1234 AB"), ("75001", "FR", "75001"),
    ("d02 x285", "IE", "D02 X285"), ("12345", None, "12345"), ("ab 12", "XX", "AB 12"),
    ("", "US", None), (None, "GB", None),
]  # fmt: skip


def test_country_to_alpha2_reads_names_codes_and_variants(spark):
    df = spark.createDataFrame(COUNTRY_CASES, "raw string, expected string")
    df = df.withColumn("clean", country_to_alpha2(F.col("raw")))
    assert_column_equality(df, "clean", "expected")


def test_normalize_street_canonicalises_abbreviations(spark):
    df = spark.createDataFrame(STREET_CASES, "raw string, expected string")
    df = df.withColumn("clean", normalize_street(F.col("raw")))
    assert_column_equality(df, "clean", "expected")


def test_street_number_for_blocking(spark):
    df = spark.createDataFrame(NUMBER_CASES, "raw string, expected string")
    df = df.withColumn("clean", street_number(F.col("raw")))
    assert_column_equality(df, "clean", "expected")


def test_normalize_postcode_per_country(spark):
    df = spark.createDataFrame(POSTCODE_CASES, "raw string, country string, expected string")
    df = df.withColumn("clean", normalize_postcode(F.col("raw"), F.col("country")))
    assert_column_equality(df, "clean", "expected")
