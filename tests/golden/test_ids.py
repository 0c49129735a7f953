"""The id keeper: first run, stable re-runs, merges, splits, retirements, chains, ties, determinism.

Record keys are single letters and a cluster is a string of them: ``"abc"`` is one cluster
whose id is its smallest key, ``"a"``, as :mod:`cdi_spark.resolve.clusters` makes them.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from cdi_spark.errors import MissingColumnError, StageError
from cdi_spark.golden.ids import EVENTS_SCHEMA, REGISTRY_SCHEMA, XREF_SCHEMA, assign_ids, resolve_id

T0, T1, T2 = (datetime(2024, 1, d, 6, 0) for d in (1, 2, 3))


def _clusters(spark, *groups: str):
    return spark.createDataFrame([(k, min(g)) for g in groups for k in g], "record_key string, cluster_id string")


def _xref(spark, **records: str):
    """``X="ab"``: records a and b had customer id X."""
    return spark.createDataFrame([(k, cid) for cid, keys in records.items() for k in keys], XREF_SCHEMA)


def _active(cid, run="r0", at=T0):
    return (cid, "active", None, cid, run, at, None, None)


def _retired(cid, into, current, run, at, created=("r0", T0)):
    return (cid, "retired", into, current, *created, run, at)


def _registry(spark, *rows):
    return spark.createDataFrame(list(rows), REGISTRY_SCHEMA)


def _minted(cluster_id: str, registry_size: int) -> str:
    """The documented format, computed outside Spark."""
    return "C" + hashlib.sha256(f"{cluster_id}|{registry_size}".encode()).hexdigest()[:20].upper()


def _xref_of(result) -> dict[str, str]:
    return {r.record_key: r.customer_id for r in result.xref.collect()}


def _events_of(result, run_id, at) -> list[tuple]:
    rows = result.events.collect()
    assert {(r.run_id, r.at) for r in rows} <= {(run_id, at)}
    return sorted((r.event, r.customer_id, r.related_id, r.record_keys) for r in rows)


def _assert_registry(spark, result, *rows):
    expected = _registry(spark, *rows)
    assert_df_equality(result.registry, expected, ignore_row_order=True, ignore_nullable=True)


def _settled(result):
    """The outputs computed once, as the next run reads them back from their tables."""
    return type(result)(*(frame.localCheckpoint() for frame in (result.xref, result.registry, result.events)))


def _types(schema):
    return [(f.name, f.dataType) for f in schema.fields]


def test_first_run_creates_one_id_per_cluster(spark):
    result = assign_ids(_clusters(spark, "ab", "c"), None, None, run_id="r1", at=T1)

    x, y = _minted("a", 0), _minted("c", 0)
    assert re.fullmatch(r"C[0-9A-F]{20}", x)
    assert _xref_of(result) == {"a": x, "b": x, "c": y}
    _assert_registry(spark, result, _active(x, "r1", T1), _active(y, "r1", T1))
    assert _events_of(result, "r1", T1) == sorted([("create", x, None, ["a", "b"]), ("create", y, None, ["c"])])
    for frame, schema in ((result.xref, XREF_SCHEMA), (result.registry, REGISTRY_SCHEMA),
                          (result.events, EVENTS_SCHEMA)):
        assert _types(frame.schema) == _types(schema)


def test_rerun_on_the_same_clusters_keeps_every_id_and_raises_no_event(spark):
    clusters = _clusters(spark, "ab", "c")
    first = _settled(assign_ids(clusters, None, None, run_id="r1", at=T1))
    again = assign_ids(clusters, first.xref, first.registry, run_id="r2", at=T2)

    assert_df_equality(again.xref, first.xref, ignore_row_order=True, ignore_nullable=True)
    assert_df_equality(again.registry, first.registry, ignore_row_order=True, ignore_nullable=True)
    assert again.events.count() == 0


def test_records_moving_between_living_ids_change_the_xref_only(spark):
    registry = _registry(spark, _active("X"), _active("Y"))
    previous = _xref(spark, X="abc", Y="de")
    # c moves to Y's cluster, f is a new record there: X and Y both live on
    result = assign_ids(_clusters(spark, "ab", "cdef"), previous, registry, run_id="r1", at=T1)

    assert _xref_of(result) == {"a": "X", "b": "X", "c": "Y", "d": "Y", "e": "Y", "f": "Y"}
    _assert_registry(spark, result, _active("X"), _active("Y"))
    assert result.events.count() == 0


def test_merge_keeps_the_oldest_id_and_points_the_other_at_it(spark):
    registry = _registry(spark, _active("X", "r1", T1), _active("Y", "r0", T0), _retired("W", "X", "X", "r1", T1))
    # X has more records, but Y is older; extra xref columns are ignored
    previous = _xref(spark, X="abc", Y="d").withColumn("is_deleted", F.lit(False))
    result = assign_ids(_clusters(spark, "abcd"), previous, registry, run_id="r2", at=T2)

    assert set(_xref_of(result).values()) == {"Y"}
    _assert_registry(
        spark, result,
        _retired("X", "Y", "Y", "r2", T2, created=("r1", T1)),
        _active("Y"),
        _retired("W", "X", "Y", "r1", T1),  # an earlier merge into X now resolves to Y
    )
    assert _events_of(result, "r2", T2) == [("merge", "X", "Y", ["a", "b", "c"])]
    assert resolve_id(result.registry, "X") == "Y"


def test_split_keeps_the_id_where_most_records_went(spark):
    registry = _registry(spark, _active("X"))
    result = assign_ids(_clusters(spark, "a", "bc"), _xref(spark, X="abc"), registry, run_id="r2", at=T2)

    new = _minted("a", 1)  # salted by the registry's size
    assert _xref_of(result) == {"a": new, "b": "X", "c": "X"}
    _assert_registry(spark, result, _active("X"), _active(new, "r2", T2))
    assert _events_of(result, "r2", T2) == [("split", new, "X", ["a"])]


def test_id_with_no_record_left_is_retired_without_survivor(spark):
    registry = _registry(spark, _active("X"), _active("Y"), _retired("W", "X", "X", "r1", T1))
    result = assign_ids(_clusters(spark, "c"), _xref(spark, X="ab", Y="c"), registry, run_id="r2", at=T2)

    assert _xref_of(result) == {"c": "Y"}
    _assert_registry(
        spark, result,
        _retired("X", None, None, "r2", T2),
        _active("Y"),
        _retired("W", "X", None, "r1", T1),  # merged into X earlier: now resolves to nothing
    )
    assert _events_of(result, "r2", T2) == [("retire", "X", None, ["a", "b"])]
    assert resolve_id(result.registry, "X") is None


def test_chain_of_merges_resolves_to_the_last_survivor(spark):
    registry = _registry(spark, _active("X", "r0", T2), _active("Y", "r0", T1), _active("Z", "r0", T0))
    previous = _xref(spark, X="x", Y="y", Z="z")
    first = _settled(assign_ids(_clusters(spark, "xy", "z"), previous, registry, run_id="r1", at=T1))  # X -> Y
    second = assign_ids(_clusters(spark, "xyz"), first.xref, first.registry, run_id="r2", at=T2)  # Y -> Z

    _assert_registry(
        spark, second,
        _retired("X", "Y", "Z", "r1", T1, created=("r0", T2)),  # merged into Y, resolves to Z
        _retired("Y", "Z", "Z", "r2", T2, created=("r0", T1)),
        _active("Z"),
    )
    assert _events_of(second, "r2", T2) == [("merge", "Y", "Z", ["x", "y"])]
    assert [resolve_id(second.registry, cid) for cid in ("X", "Y", "Z", "nobody")] == ["Z", "Z", "Z", None]


def test_ties_break_on_the_smallest_cluster_and_id(spark):
    registry = _registry(spark, *(_active(cid) for cid in "PQRSX"))  # all of the same age
    previous = _xref(spark, X="abcd", Q="ef", P="gh", R="ijk", S="lmn")
    clusters = _clusters(spark, "ab", "cd", "efgh", "ij", "lm", "kn")
    result = assign_ids(clusters, previous, registry, run_id="r1", at=T1)

    c, k = _minted("c", 5), _minted("k", 5)
    assert _xref_of(result) == {
        "a": "X", "b": "X", "c": c, "d": c,  # X: 2 and 2 records, home is the smaller cluster a
        "e": "P", "f": "P", "g": "P", "h": "P",  # P and Q homed in one cluster, equally old: P wins
        "i": "R", "j": "R", "l": "S", "m": "S", "k": k, "n": k,
    }
    assert _events_of(result, "r1", T1) == sorted([
        ("split", c, "X", ["c", "d"]),
        ("merge", "Q", "P", ["e", "f"]),
        ("split", k, "R", ["k", "n"]),  # one record of R, one of S: the smaller id
    ])


def test_outputs_do_not_depend_on_row_order_or_partitioning(spark):
    registry = _registry(spark, _active("X"), _active("Y", "r1", T1))
    previous = _xref(spark, X="abcd", Y="efg")
    clusters = _clusters(spark, "ab", "cdef", "g", "h")
    one = assign_ids(clusters, previous, registry, run_id="r2", at=T2)
    other = assign_ids(clusters.orderBy("record_key", ascending=False).repartition(3),
                       previous.repartition(3), registry.repartition(2), run_id="r2", at=T2)

    for a, b in ((one.xref, other.xref), (one.registry, other.registry), (one.events, other.events)):
        assert_df_equality(a, b, ignore_row_order=True)
    assert one.events.filter("event in ('split', 'create')").count() == 2  # new ids were minted


def test_new_ids_are_salted_by_the_registry_size(spark):
    first = _settled(assign_ids(_clusters(spark, "a"), None, None, run_id="r1", at=T1))
    # record a comes back with no id (no xref): its old id is retired, a new one minted
    again = assign_ids(_clusters(spark, "a"), None, first.registry, run_id="r2", at=T2)

    old_a, new_a = _minted("a", 0), _minted("a", 1)
    assert new_a != old_a  # a retired id is never handed out again
    assert _xref_of(again) == {"a": new_a}
    assert _events_of(again, "r2", T2) == sorted([("retire", old_a, None, []), ("create", new_a, None, ["a"])])
    assert resolve_id(again.registry, old_a) is None


def test_inputs_are_checked_at_the_boundary(spark):
    clusters = _clusters(spark, "ab")
    with pytest.raises(MissingColumnError, match="cluster_id"):
        assign_ids(clusters.select("record_key"), None, None, run_id="r1", at=T1)
    with pytest.raises(StageError, match="without the registry"):
        assign_ids(clusters, _xref(spark, X="ab"), None, run_id="r1", at=T1)
    with pytest.raises(StageError, match="null cluster_id"):
        assign_ids(clusters.union(spark.createDataFrame([("c", None)], clusters.schema)), None, None,
                   run_id="r1", at=T1)
    with pytest.raises(StageError, match="1 customer ids that are not active"):
        assign_ids(clusters, _xref(spark, X="a", W="b"), _registry(spark, _active("X")), run_id="r1", at=T1)


def test_a_registry_with_a_broken_chain_fails_its_write(spark):
    registry = _registry(spark, _active("X"), _retired("W", "V", "V", "r0", T0))  # V was never issued
    result = assign_ids(_clusters(spark, "ab"), _xref(spark, X="ab"), registry, run_id="r1", at=T1)
    with pytest.raises(Exception, match="does not name an active id"):
        result.registry.collect()

