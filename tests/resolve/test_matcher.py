"""The matcher's parts that need no model: field agreement, u-probabilities, label choice,
EM posteriors and the name-frequency adjustment, on small hand-made frames."""

from __future__ import annotations

import math

import pytest

from cdi_spark.config import BlockingConfig, BlockingKey, MatchField, MatchingConfig
from cdi_spark.resolve import matcher

MATCHING = MatchingConfig(
    fields=(
        MatchField("given_name_key", "FUZZY", term_frequency=True),
        MatchField("family_name_key", "FUZZY", term_frequency=True),
        MatchField("birth_date", "EXACT"),
    ),
    blocking=BlockingConfig(keys=(BlockingKey("family", ("family_name_key",)),)),
)
COLUMNS = "record_key string, given_name_key string, family_name_key string, birth_date string"


@pytest.fixture(scope="module")
def records(spark):
    rows = [
        ("a", "john", "smith", "1980-01-02"),
        ("b", "jon", "smith", "1980-01-02"),  # a typo away from a
        ("c", "mary", "smith", None),
        ("d", "john", "smith", "1999-09-09"),
        ("e", "xavier", "quintero", "1970-05-05"),
        ("f", "xavier", "quintero", "1970-05-05"),
    ]
    return spark.createDataFrame(rows, COLUMNS)


def test_compare_levels_counts_and_pattern(spark, records):
    pairs = spark.createDataFrame([("a", "b"), ("a", "c"), ("a", "d")], "left_key string, right_key string")
    u = {"given_name_key": 0.1, "family_name_key": 0.5, "birth_date": 0.05}
    got = {r["right_key"]: r for r in matcher.compare(records, pairs, MATCHING, u).collect()}
    assert got["b"]["levels"] == {"given_name_key": "close", "family_name_key": "exact", "birth_date": "exact"}
    assert got["c"]["levels"] == {"given_name_key": "diff", "family_name_key": "exact", "birth_date": None}
    assert got["c"]["pattern"] == "diff|exact|null"
    assert (got["b"]["exact"], got["b"]["agree"], got["b"]["diff"]) == (2, 3, 0)
    assert (got["d"]["exact"], got["d"]["agree"], got["d"]["diff"]) == (2, 2, 1)
    assert got["b"]["weight"] > got["d"]["weight"] > got["c"]["weight"]
    assert 0 < got["c"]["similarity"] < got["b"]["similarity"] < 1


def test_u_probabilities_are_the_chance_of_agreeing_by_accident(records):
    u = matcher.u_probabilities(records, ["family_name_key", "birth_date"])
    # family: smith x4, quintero x2 of 6 -> (16 + 4) / 36; dates: 2,1,2 of 5 -> (4 + 1 + 4) / 25
    assert math.isclose(u["family_name_key"], 20 / 36)
    assert math.isclose(u["birth_date"], 9 / 25)


def test_water_fill_shares_evenly_then_gives_the_rest_to_big_patterns():
    assert matcher._water_fill({"a": 100, "b": 3, "c": 1}, 10) == {"a": 6, "b": 3, "c": 1}
    assert matcher._water_fill({"a": 2, "b": 2}, 10) == {"a": 2, "b": 2}
    assert sum(matcher._water_fill({str(i): 5 for i in range(7)}, 12).values()) == 12


def test_diverse_pairs_cover_every_pattern(spark):
    rows = [(f"l{i}", f"r{i}", "exact|exact", 0.9) for i in range(50)] + [("x", "y", "diff|exact", 0.4)]
    compared = spark.createDataFrame(rows, "left_key string, right_key string, pattern string, similarity double")
    chosen = matcher.diverse_pairs(compared, 4, seed=1).collect()
    assert len(chosen) == 4
    assert {r["pattern"] for r in chosen} == {"exact|exact", "diff|exact"}
    assert chosen == matcher.diverse_pairs(compared.repartition(3), 4, seed=1).collect()
    assert matcher.diverse_pairs(compared.limit(0), 4, seed=1).count() == 0


def test_em_finds_matches_and_non_matches_without_labels(spark):
    # 300 pairs agreeing on everything, 40 with a typo; 500 strangers agreeing on nothing
    # (paired by another key) and 100 sharing a fairly common surname.
    rows = [("exact|exact|exact", 300), ("close|exact|exact", 40), ("diff|diff|diff", 500), ("diff|exact|diff", 100)]
    compared = spark.createDataFrame(
        [(f"{p}-{i}", "z", p) for p, n in rows for i in range(n)], "left_key string, right_key string, pattern string"
    )
    u = {"given_name_key": 0.01, "family_name_key": 0.05, "birth_date": 0.01}
    post = matcher.em_posteriors(compared, MATCHING, u)
    assert post["exact|exact|exact"] > 0.99
    assert post["close|exact|exact"] > 0.9
    assert post["diff|diff|diff"] < 0.01
    assert post["diff|exact|diff"] < 0.5


def test_random_pairs_are_distinct_unordered_and_avoid_excluded(spark):
    records = spark.createDataFrame([(f"k{i:03d}",) for i in range(200)], "record_key string")
    exclude = spark.createDataFrame([("k000", "k001")], "left_key string, right_key string")
    pairs = matcher.random_pairs(records, 30, seed=3, exclude=exclude).collect()
    assert len(pairs) == 30
    assert all(p["left_key"] < p["right_key"] for p in pairs)
    assert len({tuple(p) for p in pairs}) == 30
    assert ("k000", "k001") not in {tuple(p) for p in pairs}


def test_name_frequency_lowers_common_names_and_raises_rare_ones(spark, records):
    scored = spark.createDataFrame(
        [("a", "d", 0.9), ("e", "f", 0.9), ("a", "e", None)], "left_key string, right_key string, score double"
    )
    got = {(r["left_key"], r["right_key"]): r for r in matcher.frequency_adjusted(records, scored, MATCHING).collect()}
    common, rare = got[("a", "d")], got[("e", "f")]
    assert common["model_score"] == rare["model_score"] == 0.9
    assert common["score"] < 0.9 < rare["score"]
    assert got[("a", "e")]["score"] is None
    low, high = matcher.TF_LIMITS
    assert rare["score"] <= (9 * high) / (1 + 9 * high) + 1e-9
