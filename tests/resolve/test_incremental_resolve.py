"""Incremental resolve: the delta's pairs and edges are those a full run makes, the affected
region is whole components, only changed rows are written; and end to end with one trained
model: day 1 resolved in full, day 2 (new people, updated and erased records, new
duplicates, blocks crossing their caps) incrementally, compared with a full rebuild."""

from __future__ import annotations

import dataclasses
import logging
import shutil
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F
from synthetic_people import FIELDS, build_people

from cdi_spark import delta_io
from cdi_spark.config import BlockingConfig, BlockingKey
from cdi_spark.errors import StageError
from cdi_spark.resolve import incremental, matcher, roles
from cdi_spark.resolve.blocking import candidate_pairs, value_hash
from cdi_spark.resolve.incremental import ResolveTables
from cdi_spark.resolve.resolve_file import inferred_matching
from cdi_spark.resolve.rules import deterministic_edges
from cdi_spark.resolve.stage import resolve_records
from cdi_spark.resolve.zingg import load_model_ref

log = logging.getLogger(__name__)
PAIRS = "left_key string, right_key string"

# --------------------------------------------------------------------------------------------
# The pieces, on hand-made frames
# --------------------------------------------------------------------------------------------


def _pairs(frame) -> set[tuple[str, str]]:
    return {(r["left_key"], r["right_key"]) for r in frame.select("left_key", "right_key").collect()}


def test_changed_records_get_the_full_runs_pairs_and_reopened_blocks_all_theirs(spark):
    # family "lee": 4 records before (over the cap of 3); l4 moved away, so lee is back to 3.
    rows = [("l1", "lee"), ("l2", "lee"), ("l3", "lee"), ("l4", "kim"), ("k1", "kim"), ("s1", "park"), ("s2", "park")]
    records = spark.createDataFrame(rows, "record_key string, family_name_key string")
    blocking = BlockingConfig(keys=(BlockingKey("family", ("family_name_key",)),), max_block_size=3)
    changed = spark.createDataFrame([("l4",)], "record_key string")
    skipped_before = spark.createDataFrame([("family", "lee")], "key string, value string").select(
        "key", value_hash(F.col("value")).alias("value_hash")
    )
    full = _pairs(candidate_pairs(records, blocking).pairs)
    only_changed = _pairs(candidate_pairs(records, blocking, changed=changed).pairs)
    with_reopened = _pairs(candidate_pairs(records, blocking, changed=changed, skipped_before=skipped_before).pairs)
    assert only_changed == {p for p in full if "l4" in p} == {("k1", "l4")}
    assert with_reopened == {("k1", "l4"), ("l1", "l2"), ("l1", "l3"), ("l2", "l3")}


def test_changed_records_get_the_full_runs_rule_edges(spark):
    schema = "record_key string, given_name_key string, email_key string, phone_e164 string, ref_record_key string"
    rows = [
        ("a", "ann", "ann@x.com", None, None),
        ("b", "ann", "ann@x.com", "+1555", None),
        ("c", "ann", None, "+1555", "crm:z"),
        ("d", "bob", "bob@x.com", None, "a"),  # refers to a
        ("e", "ann", "ann@x.com", None, None),
    ]
    records = spark.createDataFrame(rows, schema)
    changed = spark.createDataFrame([("a",), ("c",)], "record_key string")

    def edges(**kwargs):
        result = deterministic_edges(records, rules=("email", "phone", "reference"), max_key_frequency=3, **kwargs)
        return {tuple(r) for r in result.edges.select("left_key", "right_key", "rule").collect()}

    full = edges()
    assert edges(changed=changed) == {e for e in full if {"a", "c"} & set(e[:2])}
    assert ("a", "d", "reference") in full and ("b", "e", "email") in full


def test_changes_keep_unchanged_rows_out_and_delete_what_left_the_scope(spark):
    schema = "record_key string, cluster_id string, run_id string"
    existing = spark.createDataFrame(
        [("a", "a", "r1"), ("b", "a", "r1"), ("c", "c", "r1"), ("x", "x", "r1")], schema
    )
    fresh = spark.createDataFrame([("a", "a", "r2"), ("b", "b", "r2"), ("d", "b", "r2")], schema)
    scope = spark.createDataFrame([("a",), ("b",), ("c",)], "record_key string")
    got = incremental.changes(fresh, existing, keys=("record_key",), compare=("cluster_id",), scope=scope)
    expected = spark.createDataFrame(
        [("b", "b", "r2", False), ("d", "b", "r2", False), ("c", None, None, True)],
        schema + ", _delete boolean",
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_only_changed_rows_are_written_and_an_old_table_is_upgraded_once(spark, tmp_path):
    path = str(tmp_path / "entity_clusters")
    old = spark.createDataFrame([("a", "a", "r1"), ("b", "a", "r1")],
                                "record_key string, cluster_id string, run_id string")
    delta_io.merge_upsert(spark, old, path, keys=("record_key",))  # as resolve wrote it before match_hash
    schema = "record_key string, cluster_id string, match_hash string, run_id string"
    fresh = spark.createDataFrame([("a", "a", "h1", "r2"), ("b", "a", "h2", "r2")], schema)
    scope = fresh.select("record_key")
    with pytest.raises(StageError, match="run a full resolve"):
        incremental.write_changes(spark, fresh, path, keys=("record_key",), compare=("cluster_id",), run_id="r2",
                                  scope=scope)
    compare = ("cluster_id", "match_hash")
    incremental.write_changes(spark, fresh, path, keys=("record_key",), compare=compare, run_id="r2")
    assert_df_equality(delta_io.read(spark, path), fresh, ignore_row_order=True, ignore_column_order=True,
                       ignore_nullable=True)
    version = delta_io.current_version(spark, path)
    later = spark.createDataFrame([("a", "a", "h1", "r3"), ("b", "b", "h2", "r3")], schema)
    written = incremental.write_changes(spark, later, path, keys=("record_key",), compare=compare, run_id="r3")
    assert [r["record_key"] for r in written.collect()] == ["b"]
    assert delta_io.current_version(spark, path) == version + 1
    assert {tuple(r) for r in delta_io.read(spark, path).select("record_key", "run_id").collect()} == {
        ("a", "r2"), ("b", "r3")
    }


def test_maintenance_between_runs_does_not_count_as_a_change(spark, tmp_path):
    path = str(tmp_path / "match_edges")
    rows = spark.createDataFrame([("a", "b")], PAIRS)
    delta_io.append(spark, rows, path)
    delta_io.append(spark, rows.select(F.lit("c").alias("left_key"), "right_key"), path)
    version = delta_io.current_version(spark, path)
    spark.sql(f"OPTIMIZE delta.`{path}`")  # what a maintenance job does
    assert delta_io.current_version(spark, path) == version + 1
    assert not incremental._written_since(spark, path, version)
    delta_io.append(spark, rows, path)
    assert incremental._written_since(spark, path, version)


def test_the_affected_region_takes_whole_clusters_and_follows_cut_edges(spark):
    # old clusters {a1,a2}, {b1,b2} (an edge a2-b1 the size guard cut), {c1,c2}; a1 changed.
    resolved = spark.createDataFrame(
        [("a1", "a1"), ("a2", "a1"), ("b1", "b1"), ("b2", "b1"), ("c1", "c1"), ("c2", "c1")],
        "record_key string, cluster_id string",
    )
    edges = spark.createDataFrame(
        [("a1", "a2"), ("a2", "b1"), ("b1", "b2"), ("c1", "c2")], PAIRS
    )
    records = resolved.select("record_key")
    seeds = spark.createDataFrame([("a1",)], "record_key string")
    vanished = spark.createDataFrame([], "record_key string")
    region = incremental.affected_region(records, resolved, edges, seeds, vanished)
    assert {r[0] for r in region.collect()} == {"a1", "a2", "b1", "b2"}


# --------------------------------------------------------------------------------------------
# End to end with one trained model
# --------------------------------------------------------------------------------------------

COPIES = 3  # exact copies that push one person's blocks over the cap of 3


def _days() -> tuple[list[tuple], list[tuple]]:
    """Day-1 and day-2 people rows (record_key, *FIELDS), deterministic.

    Day 2 holds: 30 new people (with their duplicates), the last record of 15 day-1 people
    (new duplicates of existing people), 8 people who moved house, 3 erased records, copies
    of one person that push its blocks over the cap, and one erased copy of another person
    whose blocks were over the cap on day 1 (they are back under it).
    """
    rows = build_people(people=250)
    by_entity: dict[str, list[tuple]] = {}
    for row in sorted(rows):
        by_entity.setdefault(row[1], []).append((row[0], *row[2:]))
    entities = sorted(by_entity)
    newcomers, old = entities[-30:], entities[:-30]
    multi = [e for e in old if len(by_entity[e]) >= 2]
    single = [e for e in old if len(by_entity[e]) == 1]
    held = {by_entity[e][-1][0] for e in multi[:15]}
    day1 = [r for e in old for r in by_entity[e] if r[0] not in held]
    email = FIELDS.index("email") + 1
    grown = by_entity[multi[20]][0]
    # a person none of whose other records shares the first one's email: its copies make the
    # email over-shared on day 1 and, one copy erased, usable again on day 2
    reopened = next(by_entity[e][0] for e in multi[21:] if all(r[email] != by_entity[e][0][email]
                                                                  for r in by_entity[e][1:]))
    day1 += [(f"{reopened[0]}c{i}", *reopened[1:]) for i in range(COPIES)]
    moved = {by_entity[e][0][0] for e in single[:8]}
    erased = {by_entity[e][0][0] for e in single[8:11]} | {f"{reopened[0]}c0"}
    street = FIELDS.index("street") + 1
    day2 = [r[:street] + (f"{7 + i} harbour street",) + r[street + 1:] if r[0] in moved else r
            for i, r in enumerate(day1) if r[0] not in erased]
    day2 += [r for e in newcomers for r in by_entity[e]] + [r for e in multi[:15] for r in by_entity[e][-1:]]
    day2 += [(f"{grown[0]}c{i}", *grown[1:]) for i in range(COPIES)]
    return day1, day2


@pytest.fixture(scope="module")
def setup(spark, tmp_path_factory):
    """The match frames of both days, the matching settings and one model trained on day 1."""
    folder = tmp_path_factory.mktemp("incremental")
    day1, day2 = _days()
    schema = "record_id string, " + ", ".join(f"{f} string" for f in FIELDS)
    people1 = spark.createDataFrame(day1, schema)
    inferred = roles.infer_roles(people1, "record_id")
    trained_with = inferred_matching(inferred)

    def frame(rows, run_id):
        people = spark.createDataFrame(rows, schema)
        built = roles.match_frame(people, "record_id", inferred, formats=formats)
        return built.withColumn("run_id", F.lit(run_id)).cache()

    formats = roles.infer_formats(people1, inferred)
    frame1 = frame(day1, "day1")
    day1_keys = {r[0]: r for r in day1}
    frame2 = frame(day2, "day2")
    unchanged = [r[0] for r in day2 if day1_keys.get(r[0]) == r]
    frame2 = frame2.withColumn("run_id", F.when(F.col("record_key").isin(unchanged), "day1").otherwise("day2"))
    trained = matcher.train_model(spark, frame1, trained_with, str(folder / "models"), version="v1")
    # Small caps, so that day 2 moves blocks and rule keys across them.
    matching = dataclasses.replace(
        trained_with, blocking=dataclasses.replace(trained_with.blocking, max_block_size=3), max_key_frequency=3
    )
    return {"folder": folder, "day1": frame1, "day2": frame2, "matching": matching, "model": trained.model}


def _partition(spark, path) -> set[frozenset[str]]:
    rows = delta_io.read(spark, path).groupBy("cluster_id").agg(F.collect_list("record_key").alias("keys")).collect()
    return {frozenset(r["keys"]) for r in rows}


def _edges(spark, path) -> dict[tuple[str, str, str], float]:
    return {(r[0], r[1], r[2]): r[3] for r in delta_io.read(spark, path).select(*matcher.EDGE_COLUMNS).collect()}


@pytest.fixture(scope="module")
def incremental_lake(spark, setup):
    """Day 1 resolved in full, then day 2 incrementally; results and day-1 snapshots."""
    paths = ResolveTables.under(str(setup["folder"] / "lake_incremental"))
    run = dict(matching=setup["matching"], model=setup["model"], paths=paths)
    first = resolve_records(spark, setup["day1"], run["matching"], run["model"], paths, run_id="day1")
    before = {
        "clusters": {r["record_key"]: (r["cluster_id"], r["match_hash"])
                     for r in delta_io.read(spark, paths.clusters).collect()},
        "clusters_version": delta_io.current_version(spark, paths.clusters),
        "oversized": {tuple(r) for r in delta_io.read(spark, paths.oversized).select("kind", "key", "value_hash")
                      .collect()},
    }
    second = resolve_records(spark, setup["day2"], run["matching"], run["model"], paths, run_id="day2")
    return {"paths": paths, "first": first, "second": second, "before": before}


@pytest.fixture(scope="module")
def rebuilt_lake(spark, setup):
    """Day 2's records resolved in full in another lakehouse."""
    paths = ResolveTables.under(str(setup["folder"] / "lake_full"))
    result = resolve_records(spark, setup["day2"], setup["matching"], setup["model"], paths, run_id="day2", full=True)
    return {"paths": paths, "result": result}


@pytest.mark.zingg
@pytest.mark.slow
def test_day_one_is_resolved_in_full_and_day_two_incrementally(incremental_lake):
    first, second = incremental_lake["first"], incremental_lake["second"]
    assert not first.incremental and "no silver.entity_clusters" in first.reason
    assert second.incremental, second.reason
    assert 0 < second.delta_records < second.records / 2
    assert second.delta_records <= second.affected_records < second.records


@pytest.mark.zingg
@pytest.mark.slow
def test_day_two_moves_blocks_and_rule_keys_across_their_caps(spark, incremental_lake):
    before = incremental_lake["before"]["oversized"]
    paths = incremental_lake["paths"]
    after = {tuple(r) for r in delta_io.read(spark, paths.oversized).select("kind", "key", "value_hash").collect()}
    for kind in ("blocking", "rule"):
        assert {k for k in after - before if k[0] == kind}, f"no {kind} value grew over its cap"
        assert {k for k in before - after if k[0] == kind}, f"no {kind} value fell back under its cap"


@pytest.mark.zingg
@pytest.mark.slow
def test_incremental_clusters_equal_a_full_rebuild(spark, incremental_lake, rebuilt_lake):
    got = _partition(spark, incremental_lake["paths"].clusters)
    want = _partition(spark, rebuilt_lake["paths"].clusters)
    assert got == want
    inc, full = _edges(spark, incremental_lake["paths"].edges), _edges(spark, rebuilt_lake["paths"].edges)
    common = inc.keys() & full.keys()
    drift = max((abs(inc[k] - full[k]) for k in common), default=0.0)
    moved = sum(1 for k in common if inc[k] != full[k])
    log.info("incremental vs full: %d and %d edges, %d only incremental, %d only full; %d common edges with "
             "another score, largest difference %.6f", len(inc), len(full), len(inc.keys() - full.keys()),
             len(full.keys() - inc.keys()), moved, drift)
    assert inc.keys() == full.keys()
    assert drift < 0.02


@pytest.mark.zingg
@pytest.mark.slow
def test_clusters_untouched_by_day_two_are_not_rewritten(spark, incremental_lake):
    paths, before, second = incremental_lake["paths"], incremental_lake["before"], incremental_lake["second"]
    changes = (
        spark.read.format("delta").option("readChangeFeed", "true")
        .option("startingVersion", before["clusters_version"] + 1).load(paths.clusters)
        .filter(F.col("_change_type") != "update_preimage")
        .select("record_key", "cluster_id", "match_hash", "_change_type").collect()
    )
    old = before["clusters"]
    touched = {r["record_key"] for r in changes}
    assert 0 < len(touched) <= second.affected_records + second.delta_records
    for r in changes:  # every row written is a real change: a new record, another cluster or new content
        if r["_change_type"] == "update_postimage":
            assert (r["cluster_id"], r["match_hash"]) != old[r["record_key"]]
    now = {r["record_key"]: r for r in delta_io.read(spark, paths.clusters).collect()}
    untouched = [k for k in now if k not in touched]
    assert len(untouched) > len(now) / 2
    assert all(now[k]["run_id"] == "day1" and now[k]["cluster_id"] == old[k][0] for k in untouched)


@pytest.mark.zingg
@pytest.mark.slow
def test_a_rerun_with_nothing_new_writes_nothing(spark, setup, incremental_lake):
    paths = incremental_lake["paths"]
    versions = paths.state_versions(spark)
    again = resolve_records(spark, setup["day2"], setup["matching"], setup["model"], paths, run_id="day2-again")
    assert again.incremental and again.delta_records == 0 and again.affected_records == 0
    assert paths.state_versions(spark) == versions
    assert again.clusters == incremental_lake["second"].clusters


@pytest.mark.zingg
@pytest.mark.slow
def test_a_new_model_version_forces_a_full_run(spark, setup, rebuilt_lake):
    model = setup["model"]
    shutil.copytree(Path(model.model_dir) / model.model_id, Path(model.model_dir) / "v2")
    newer = load_model_ref(spark, model.model_dir, "v2")
    paths = rebuilt_lake["paths"]
    before = _partition(spark, paths.clusters)
    result = resolve_records(spark, setup["day2"], setup["matching"], newer, paths, run_id="day2-new-model")
    assert not result.incremental and "model changed (v1 -> v2)" in result.reason
    assert _partition(spark, paths.clusters) == before
    assert {r["model_version"] for r in delta_io.read(spark, paths.clusters).select("model_version").collect()} == {
        "v2"
    }
