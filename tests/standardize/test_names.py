"""Names: display case, keys, nicknames and full-name splitting, table-driven."""

from __future__ import annotations

from chispa import assert_column_equality
from pyspark.sql import functions as F

from cdi_spark.standardize.names import (
    clean_name,
    fold_accents,
    given_name_key,
    name_key,
    parse_full_name,
    squish,
)

CLEAN_CASES = [
    ("robert", "Robert"),
    ("  ROBERT  ", "Robert"),
    ("o'brien", "O'Brien"),
    ("O\u2019NEILL", "O\u2019Neill"),
    ("MCDONALD", "McDonald"),
    ("mcdonald", "McDonald"),
    ("anne-marie", "Anne-Marie"),
    ("JOSÉ", "José"),
    ("jose\u0301", "José"),  # decomposed accent composed by NFKC
    ("\uff2a\uff4f\uff48\uff4e", "John"),  # full-width letters
    ("ludwig VAN beethoven", "Ludwig van Beethoven"),
    ("Mary mcdonald", "Mary McDonald"),  # case is judged word by word
    ("DeShawn", "DeShawn"),  # mixed case is trusted
    ("MacArthur", "MacArthur"),
    ("mack", "Mack"),  # no "Mac" rule
    ("anne\u00a0  marie", "Anne Marie"),
    ("", None),
    ("   ", None),
    (None, None),
    ("d'angelo", "D'Angelo"),
    ("ZOË", "Zoë"),
]

KEY_CASES = [
    ("O'Brien", "obrien"),
    ("Anne-Marie", "annemarie"),
    ("Müller", "muller"),
    ("MÜLLER", "muller"),
    ("Strauß", "strauss"),
    ("Ørsted", "orsted"),
    ("Łukasz", "lukasz"),
    ("de la Cruz", "delacruz"),
    ("jose\u0301", "jose"),
    ("Æsir", "aesir"),
    ("Иван", "иван"),
    ("  ", None),
    ("--", None),
    (None, None),
    ("Nguyễn", "nguyen"),
]

GIVEN_KEY_CASES = [
    ("Bob", "robert"),
    ("bobby", "robert"),
    ("Liz", "elizabeth"),
    ("BILL", "william"),
    ("Robert", "robert"),
    ("Peggy", "margaret"),
    ("Jim", "james"),
    ("José María", "jose"),
    ("Anne-Marie", "annemarie"),
    ("Nathan", "nathan"),
    ("Chris", "chris"),  # too ambiguous to canonicalise
    ("", None),
    (None, None),
    ("  Mike  ", "michael"),
]


def test_clean_name_gives_display_form(spark):
    df = spark.createDataFrame(CLEAN_CASES, "raw string, expected string")
    df = df.withColumn("clean", clean_name(F.col("raw")))
    assert_column_equality(df, "clean", "expected")


def test_name_key_is_accent_free_lower_letters(spark):
    df = spark.createDataFrame(KEY_CASES, "raw string, expected string")
    df = df.withColumn("clean", name_key(F.col("raw")))
    assert_column_equality(df, "clean", "expected")


def test_given_name_key_canonicalises_nicknames(spark):
    df = spark.createDataFrame(GIVEN_KEY_CASES, "raw string, expected string")
    df = df.withColumn("clean", given_name_key(F.col("raw")))
    assert_column_equality(df, "clean", "expected")


def test_squish_and_fold_accents(spark):
    df = spark.createDataFrame(
        [(" a \t b\u3000c ", "a b c", "Zoë Ørsted", "Zoe Orsted"), ("", None, None, None)],
        "raw string, expected string, raw2 string, expected2 string",
    ).withColumns({"clean": squish(F.col("raw")), "clean2": fold_accents(F.col("raw2"))})
    assert_column_equality(df, "clean", "expected")
    assert_column_equality(df, "clean2", "expected2")


FULL_CASES = [
    ("Robert O'Brien", (None, "Robert", None, "O'Brien", None)),
    ("DR. ROBERT J. O'BRIEN JR.", ("Dr", "Robert", "J.", "O'Brien", "Jr")),
    ("O'Brien, Robert James", (None, "Robert", "James", "O'Brien", None)),
    ("smith,john", (None, "John", None, "Smith", None)),
    ("Mrs Mary Ann Smith-Jones", ("Mrs", "Mary", "Ann", "Smith-Jones", None)),
    ("Prof. Dr. Hans Müller", ("Prof Dr", "Hans", None, "Müller", None)),
    ("Ludwig van Beethoven", (None, "Ludwig", None, "van Beethoven", None)),
    ("maria DE LA cruz", (None, "Maria", None, "de la Cruz", None)),
    ("John Smith III", (None, "John", None, "Smith", "III")),
    ("Jane Doe, PhD", (None, "Jane", None, "Doe", "PhD")),
    ("Jane Doe, Jr., M.D.", (None, "Jane", None, "Doe", "Jr, MD")),
    ("Madonna", (None, "Madonna", None, None, None)),
    ("  jean-luc   picard ", (None, "Jean-Luc", None, "Picard", None)),
    ("Drake Bell", (None, "Drake", None, "Bell", None)),  # "Dr" only before a dot or space
    ("Msomi Ndlovu", (None, "Msomi", None, "Ndlovu", None)),
    ("Van Morrison", (None, "Van", None, "Morrison", None)),
    ("", (None, None, None, None, None)),
    (None, (None, None, None, None, None)),
    (" , ", (None, None, None, None, None)),
]


def test_parse_full_name_splits_parts(spark):
    df = spark.createDataFrame(
        FULL_CASES,
        "raw string, expected struct<honorific:string, given_name:string, "
        "middle_name:string, family_name:string, suffix:string>",
    ).withColumn("clean", parse_full_name(F.col("raw")))
    assert_column_equality(df, "clean", "expected")
