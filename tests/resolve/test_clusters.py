"""Clustering of match edges: components, thresholds, the size guard, ids, input checks."""

from __future__ import annotations

import random

import pytest
from chispa import assert_df_equality

from cdi_spark.errors import MissingColumnError, StageError
from cdi_spark.resolve.clusters import ClusterSettings, cluster

EDGE_SCHEMA = "left_key string, right_key string, rule string, score double"


def _run(spark, keys, edges, settings=None):
    records = spark.createDataFrame([(k,) for k in keys], "record_key string")
    result = cluster(records, spark.createDataFrame(edges, EDGE_SCHEMA), settings or ClusterSettings())
    # every input record is in exactly one cluster
    assert result.clusters.count() == len(keys)
    assert result.clusters.select("record_key").distinct().count() == len(keys)
    return result


def _expected(spark, groups):
    rows = [(k, min(g)) for g in groups for k in g]
    return spark.createDataFrame(rows, "record_key string, cluster_id string")


def test_chains_stars_and_isolated_records_become_components(spark):
    keys = list("abcdefghij")
    edges = [
        ("c", "d", "email", 1.0), ("a", "b", "email", 1.0), ("b", "c", "phone", 1.0),  # chain a-b-c-d
        ("f", "e", "phone", 1.0), ("f", "g", "phone", 1.0), ("f", "h", "model", 0.9),  # star around f
        ("i", "i", "email", 1.0),  # a self-loop changes nothing
    ]
    result = _run(spark, keys, edges)
    expected = _expected(spark, ["abcd", "efgh", "i", "j"])
    assert_df_equality(result.clusters, expected, ignore_row_order=True, ignore_nullable=True)
    assert result.oversized == 0
    assert result.cut_edges.count() == 0


def test_a_long_shuffled_chain_converges_in_few_rounds(spark):
    keys = [f"r{i:04d}" for i in range(300)]
    order = keys[:]
    random.Random(7).shuffle(order)
    edges = [(a, b, "email", 1.0) for a, b in zip(order, order[1:], strict=False)]
    result = _run(spark, keys, edges, ClusterSettings(max_cluster_size=1000))
    assert result.clusters.filter("cluster_id = 'r0000'").count() == 300
    assert 1 <= result.iterations <= 12


def test_edges_below_their_rule_threshold_are_ignored(spark):
    keys = ["a", "b", "c", "d", "e", "f", "g", "h"]
    edges = [
        ("a", "b", "model", 0.45),  # below model's 0.5
        ("c", "d", "model", 0.55),
        ("e", "f", "fuzzy", 0.7),  # below fuzzy's own 0.8
        ("g", "h", "other", 0.6),  # unnamed rule: default 0.5
    ]
    settings = ClusterSettings(min_score={"model": 0.5, "fuzzy": 0.8}, default_min_score=0.5)
    result = _run(spark, keys, edges, settings)
    expected = _expected(spark, ["a", "b", "cd", "e", "f", "gh"])
    assert_df_equality(result.clusters, expected, ignore_row_order=True, ignore_nullable=True)


def test_a_weak_model_edge_joining_two_groups_is_cut_by_the_size_cap_and_reported(spark):
    left, right = ["a1", "a2", "a3", "a4"], ["b1", "b2", "b3", "b4"]
    edges = [(x, y, "email", 1.0) for x, y in zip(left, left[1:], strict=False)]
    edges += [(x, y, "model", 0.97) for x, y in zip(right, right[1:], strict=False)]
    edges += [("a4", "b1", "model", 0.65), ("a3", "b2", "model", 0.75)]  # the weak bridge
    result = _run(spark, left + right + ["z"], edges, ClusterSettings(max_cluster_size=5))
    expected = _expected(spark, [left, right, ["z"]])
    assert_df_equality(result.clusters, expected, ignore_row_order=True, ignore_nullable=True)
    assert result.oversized == 1
    assert result.still_oversized == 0
    cuts = result.cut_edges.orderBy("score").collect()
    assert [(c.left_key, c.right_key, c.cut_level) for c in cuts] == [("a4", "b1", 0.7), ("a3", "b2", 0.8)]
    assert cuts[0].component_size == 8
    assert cuts[0].reason == "size cap: component of 8 records > 5; score 0.6500 < 0.7000"


def test_a_component_held_by_protected_rules_stays_whole_and_is_counted(spark):
    keys = ["k1", "k2", "k3", "k4", "k5"]
    edges = [(x, y, "phone", 1.0) for x, y in zip(keys, keys[1:], strict=False)] + [("k5", "k1", "model", 0.99)]
    result = _run(spark, keys, edges, ClusterSettings(max_cluster_size=3))
    assert result.clusters.select("cluster_id").distinct().collect()[0].cluster_id == "k1"
    assert (result.oversized, result.still_oversized) == (1, 1)
    assert result.cut_edges.count() == 0  # the model edge went, but k1 and k5 stay together


def test_cluster_ids_do_not_depend_on_edge_order_direction_or_partitioning(spark):
    keys = [f"n{i:02d}" for i in range(30)]
    rng = random.Random(3)
    edges = [(rng.choice(keys), rng.choice(keys), "model", 0.9) for _ in range(25)]
    first = _run(spark, keys, edges, ClusterSettings(max_cluster_size=100)).clusters
    flipped = [(b, a, r, s) for a, b, r, s in reversed(edges)]
    records = spark.createDataFrame([(k,) for k in reversed(keys)], "record_key string").repartition(3)
    second = cluster(records, spark.createDataFrame(flipped, EDGE_SCHEMA).repartition(3),
                     ClusterSettings(max_cluster_size=100)).clusters
    assert_df_equality(first, second, ignore_row_order=True, ignore_nullable=True)


def test_edges_naming_unknown_records_are_an_error(spark):
    with pytest.raises(StageError, match="1 of 2 edges name a record_key that is not among the records"):
        _run(spark, ["a", "b"], [("a", "b", "email", 1.0), ("a", "ghost", "email", 1.0)])


def test_duplicate_record_keys_are_an_error(spark):
    with pytest.raises(StageError, match="1 keys appear more than once"):
        _run(spark, ["a", "a", "b"], [("a", "b", "email", 1.0)])


def test_missing_edge_column_names_what_is_present(spark):
    records = spark.createDataFrame([("a",)], "record_key string")
    edges = spark.createDataFrame([("a", "a", 1.0)], "left_key string, right_key string, score double")
    with pytest.raises(MissingColumnError, match="missing required column.s. rule; present: left_key"):
        cluster(records, edges, ClusterSettings())


def test_no_convergence_within_max_iterations_is_an_error(spark):
    keys = [f"c{i:02d}" for i in range(20)]
    edges = [(a, b, "email", 1.0) for a, b in zip(keys[::-1], keys[-2::-1], strict=False)]
    with pytest.raises(StageError, match="did not converge in 1 rounds"):
        _run(spark, keys, edges, ClusterSettings(max_iterations=1))
