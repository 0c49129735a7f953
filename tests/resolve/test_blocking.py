"""Blocking keys on hand-made records: part functions, pairs, block size cap, extra keys."""

from __future__ import annotations

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from cdi_spark.config import BlockingConfig, BlockingKey
from cdi_spark.errors import MissingColumnError
from cdi_spark.resolve.blocking import candidate_pairs, keyed_records, pairs_per_key, part_value

COLUMNS = "record_key string, given_name_key string, family_name_key string, birth_date string, email_key string"


@pytest.fixture(scope="module")
def people(spark):
    rows = [
        ("a1", "john", "smith", "1980-01-02", "john@x.com"),
        ("a2", "smith", "john", "1980-01-02", None),  # names swapped
        ("a3", "jon", "smyth", "1980-03-04", "john@x.com"),  # typos; same email as a1
        ("b1", "mary", "jones", None, ""),
        ("b2", "mary", "jones", "1975-05-06", None),
        ("c1", None, "brown", "1990-07-08", None),
    ]
    return spark.createDataFrame(rows, COLUMNS)


def test_part_functions(spark):
    df = spark.createDataFrame(
        [("r1", "Smith", "1980-01-02", "j.doe+tag@mail.com", "ab 12-3"), ("r2", " ", None, None, "---")],
        "record_key string, name string, born string, email string, code string",
    )
    parts = {
        "name": "name",
        "soundex(name)": "sx",
        "prefix(name, 3)": "p3",
        "suffix(name, 2)": "s2",
        "year(born)": "yr",
        "local_part(email)": "lp",
        "digits(code)": "dg",
        "sorted(name, code)": "so",
    }
    got = df.select("record_key", *(part_value(p).alias(a) for p, a in parts.items())).orderBy("record_key")
    expected = spark.createDataFrame(
        [
            ("r1", "Smith", "S530", "Smi", "th", "1980", "j.doe+tag", "123", "Smith ab 12-3"),
            ("r2", None, None, None, None, None, None, None, None),
        ],
        "record_key string, name string, sx string, p3 string, s2 string, yr string, lp string, dg string, so string",
    )
    assert_df_equality(got, expected, ignore_nullable=True)


def test_pairs_from_several_keys_and_their_names(spark, people):
    blocking = BlockingConfig(
        keys=(
            BlockingKey("names", ("sorted(given_name_key, family_name_key)",)),
            BlockingKey("sounds_year", ("soundex(given_name_key)", "soundex(family_name_key)", "year(birth_date)")),
            BlockingKey("email", ("email_key",)),
            BlockingKey("family_birth", ("family_name_key", "birth_date")),
        )
    )
    got = candidate_pairs(people, blocking).pairs.orderBy("left_key", "right_key")
    expected = spark.createDataFrame(
        [
            ("a1", "a2", ["names"]),  # swapped names; a2's soundex pair is (S530, J500), a1's (J500, S530)
            ("a1", "a3", ["email", "sounds_year"]),
            ("b1", "b2", ["names"]),  # b1 has no birth date: only the names key pairs them
        ],
        "left_key string, right_key string, blocking_keys array<string>",
    )
    assert_df_equality(got, expected, ignore_nullable=True)


def test_oversized_blocks_are_reported_and_not_used(spark):
    rows = [(f"r{i}", "0000000000") for i in range(5)] + [("s1", "555"), ("s2", "555")]
    df = spark.createDataFrame(rows, "record_key string, phone string")
    blocking = BlockingConfig(keys=(BlockingKey("phone", ("phone",)),), max_block_size=4)
    result = candidate_pairs(df, blocking)
    assert [tuple(r) for r in result.pairs.collect()] == [("s1", "s2", ["phone"])]
    assert [tuple(r) for r in result.skipped.collect()] == [("phone", "0000000000", 5)]
    assert pairs_per_key(result) == {"phone": 1}


def test_extra_keys_join_in_with_the_same_cap(spark, people):
    blocking = BlockingConfig(keys=(BlockingKey("email", ("email_key",)),))
    extra = spark.createDataFrame(
        [("b2", "zingg", "17"), ("c1", "zingg", "17")], "record_key string, key string, value string"
    )
    got = candidate_pairs(people, blocking, extra=extra).pairs.orderBy("left_key")
    assert [tuple(r) for r in got.collect()] == [("a1", "a3", ["email"]), ("b2", "c1", ["zingg"])]


def test_missing_columns_are_named(people):
    with pytest.raises(MissingColumnError, match="postcode"):
        keyed_records(people, (BlockingKey("pc", ("postcode",)),))


def test_empty_values_make_no_block(spark):
    df = spark.createDataFrame([("r1", ""), ("r2", ""), ("r3", None), ("r4", None)], "record_key string, e string")
    keyed = keyed_records(df, (BlockingKey("e", ("e",)),))
    assert keyed.count() == 0
    assert keyed.filter(F.col("value").isNull()).count() == 0
