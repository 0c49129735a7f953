"""Zingg's classifier on a small synthetic person set: trained once per module from ground truth.

The data builder makes 420 people; 160 of them have one or two extra records with typos,
missing fields and case changes, and 60 have a sibling (same family name, street, city and
birth year, another given name and birthday): the hard non-matches. Candidates come from a
plain equi-join key (family-name initial + birth year), as our own blocking would make them.
"""

from __future__ import annotations

import itertools
import logging
import random
import time

import pytest
from pyspark.sql import functions as F
from synthetic_people import FIELDS, build_people

from cdi_spark.errors import MissingColumnError
from cdi_spark.resolve.zingg import (
    ModelRef,
    ZinggError,
    ZinggField,
    ZinggSettings,
    block_hashes,
    load_model_ref,
    score_pairs,
    train,
)

pytestmark = [pytest.mark.zingg, pytest.mark.slow]
log = logging.getLogger(__name__)


SETTINGS = ZinggSettings(
    fields=(
        ZinggField("given_name", "FUZZY"),
        ZinggField("family_name", "FUZZY"),
        ZinggField("birth_date", "EXACT"),
        ZinggField("street", "FUZZY"),
        ZinggField("city", "FUZZY"),
        ZinggField("postcode", "EXACT"),
        ZinggField("email", "FUZZY,NULL_OR_BLANK"),
    ),
    model_id="people",
)


@pytest.fixture(scope="module")
def people(spark):
    schema = "record_key string, entity_id string, " + ", ".join(f"{f} string" for f in FIELDS)
    return spark.createDataFrame(build_people(), schema).cache()


@pytest.fixture(scope="module")
def truth_pairs(people):
    """All true pairs (left_key < right_key) of the built set."""
    a, b = people.alias("a"), people.alias("b")
    return a.join(b, (F.col("a.entity_id") == F.col("b.entity_id")) & (F.col("a.record_key") < F.col("b.record_key")))


@pytest.fixture(scope="module")
def labels(spark, people, truth_pairs):
    """<= 200 labels: 90 true pairs, 60 siblings or same-key strangers (hard), 50 random strangers."""
    rng = random.Random(11)
    truth = sorted(tuple(r) for r in truth_pairs.select("a.record_key", "b.record_key").collect())
    rows = sorted((r.record_key, r.entity_id, r.family_name.lower(), r.birth_date[:4]) for r in people.collect())
    positives = rng.sample(truth, 90)
    by_key: dict[tuple, list] = {}
    for key, entity, family, year in rows:
        by_key.setdefault((family[0], year), []).append((key, entity))
    hard = [(x[0], y[0]) for group in by_key.values() for x, y in itertools.combinations(group, 2) if x[1] != y[1]]
    hard = rng.sample(sorted(hard), min(60, len(hard)))
    easy = []
    while len(easy) < 50:
        x, y = rng.sample(rows, 2)
        if x[1] != y[1]:
            easy.append((x[0], y[0]))
    data = [(a, b, True) for a, b in positives] + [(a, b, False) for a, b in hard + easy]
    return spark.createDataFrame(data, "left_key string, right_key string, is_match boolean")


@pytest.fixture(scope="module")
def candidates(people):
    """Our blocking: family-name initial + birth year (upper/lower case folded), left < right."""
    keyed = people.withColumn(
        "block", F.concat(F.lower(F.substring("family_name", 1, 1)), F.substring("birth_date", 1, 4))
    )
    a, b = keyed.alias("a"), keyed.alias("b")
    return (
        a.join(b, (F.col("a.block") == F.col("b.block")) & (F.col("a.record_key") < F.col("b.record_key")))
        .select(
            F.col("a.record_key").alias("left_key"),
            F.col("b.record_key").alias("right_key"),
            (F.col("a.entity_id") == F.col("b.entity_id")).alias("truth"),
        )
        .cache()
    )


@pytest.fixture(scope="module")
def model(spark, people, labels, tmp_path_factory):
    model_dir = str(tmp_path_factory.mktemp("zingg_models") / "v1")
    start = time.perf_counter()
    ref = train(spark, people.drop("entity_id"), labels, SETTINGS, model_dir)
    log.info(f"zingg train: {time.perf_counter() - start:.1f}s")
    return ref


@pytest.fixture(scope="module")
def scored(spark, people, candidates, model):
    start = time.perf_counter()
    result = score_pairs(spark, people, candidates.select("left_key", "right_key"), model).cache()
    result.count()
    log.info(f"zingg score {candidates.count()} pairs: {time.perf_counter() - start:.1f}s")
    return result.join(candidates, ["left_key", "right_key"])


def test_model_folder_holds_zingg_tree_classifier_and_marked_labels(model, tmp_path_factory):
    from pathlib import Path

    root = Path(model.path)
    assert (root / "model" / "block" / "zingg.block").is_dir()
    assert (root / "model" / "classifier" / "best.model").is_dir()
    assert list((root / "trainingData" / "marked").glob("*.parquet"))
    assert (root / "cdi_model").is_dir()


def test_every_candidate_pair_is_scored_once_with_a_probability(scored, candidates):
    assert scored.count() == candidates.count()
    assert scored.select("left_key", "right_key").distinct().count() == candidates.count()
    bounds = scored.agg(F.min("score"), F.max("score"), F.sum(F.col("score").isNull().cast("int"))).first()
    assert bounds[0] >= 0.0 and bounds[1] <= 1.0 and bounds[2] == 0


def test_true_pairs_score_high_and_non_pairs_low(scored):
    stats = {
        r.truth: r
        for r in scored.groupBy("truth")
        .agg(F.expr("percentile(score, 0.5)").alias("median"), F.count("*").alias("n"))
        .collect()
    }
    log.info(f"candidates: {stats[True].n} true, {stats[False].n} false")
    assert stats[True].median > 0.9
    assert stats[False].median < 0.1


def test_precision_and_recall_on_candidates_clear_floors(scored):
    counts = scored.agg(
        F.sum((F.col("prediction") & F.col("truth")).cast("int")).alias("tp"),
        F.sum((F.col("prediction") & ~F.col("truth")).cast("int")).alias("fp"),
        F.sum((~F.col("prediction") & F.col("truth")).cast("int")).alias("fn"),
    ).first()
    precision = counts.tp / (counts.tp + counts.fp)
    recall = counts.tp / (counts.tp + counts.fn)
    log.info(f"zingg on candidates: tp={counts.tp} fp={counts.fp} fn={counts.fn} P={precision:.3f} R={recall:.3f}")
    assert precision >= 0.95
    assert recall >= 0.95


def test_model_loads_again_from_its_folder_and_scores_the_same(spark, people, candidates, model, scored):
    fresh = ModelRef(model.model_dir, model.model_id, SETTINGS.fields)
    assert load_model_ref(spark, model.model_dir, model.model_id) == fresh
    again = score_pairs(spark, people, candidates.select("left_key", "right_key"), fresh)
    diff = again.join(scored, ["left_key", "right_key"]).filter(
        (F.abs(again["score"] - scored["score"]) > 1e-12) | (again["prediction"] != scored["prediction"])
    )
    assert again.count() == scored.count()
    assert diff.count() == 0


def test_unknown_keys_and_duplicate_pairs_come_back_once_unscored(spark, people, model):
    pairs = spark.createDataFrame(
        [("r0001", "r0002"), ("r0001", "r0002"), ("r0001", "nobody")], "left_key string, right_key string"
    )
    rows = {(r.left_key, r.right_key): r for r in score_pairs(spark, people, pairs, model).collect()}
    assert set(rows) == {("r0001", "r0002"), ("r0001", "nobody")}
    assert rows[("r0001", "nobody")].score is None and rows[("r0001", "nobody")].prediction is None
    assert rows[("r0001", "r0002")].score is not None


def test_block_hashes_give_one_hash_per_record_that_depends_on_the_record_only(spark, people, model, truth_pairs):
    hashes = block_hashes(spark, people, model).cache()
    assert hashes.columns == ["record_key", "z_hash"]
    assert hashes.count() == people.count() == hashes.select("record_key").distinct().count()
    alone = block_hashes(spark, people.limit(40), model)
    assert alone.join(hashes, "record_key").filter(alone["z_hash"] != hashes["z_hash"]).count() == 0
    blocks = hashes.groupBy("z_hash").count()
    assert blocks.count() > 1
    same_block = (
        truth_pairs.select(F.col("a.record_key").alias("l"), F.col("b.record_key").alias("r"))
        .join(hashes.withColumnRenamed("record_key", "l").withColumnRenamed("z_hash", "hl"), "l")
        .join(hashes.withColumnRenamed("record_key", "r").withColumnRenamed("z_hash", "hr"), "r")
    )
    share = same_block.filter(F.col("hl") == F.col("hr")).count() / same_block.count()
    log.info(f"zingg blocks: {blocks.count()}, true pairs sharing a block: {share:.3f}")
    assert share > 0.3


def test_usage_analytics_record_nothing(spark, model, scored):
    """collectMetrics is false, and no step we call posts: Zingg's metrics map stays empty."""
    jvm = spark.sparkContext._jvm
    cls = jvm.org.apache.spark.util.Utils.classForName("zingg.common.core.util.Analytics", True, False)
    metrics = cls.getDeclaredField("metrics")
    metrics.setAccessible(True)
    recorded = metrics.get(None)
    assert recorded is None or recorded.isEmpty()


def test_missing_columns_and_too_few_labels_are_refused_with_the_fix(spark, people, tmp_path):
    with pytest.raises(MissingColumnError, match="email"):
        train(spark, people.drop("email"), people.limit(0), SETTINGS, str(tmp_path))
    few = spark.createDataFrame([("r0001", "r0002", True)], "left_key string, right_key string, is_match boolean")
    with pytest.raises(ZinggError, match="at least 5 matching"):
        train(spark, people, few, SETTINGS, str(tmp_path))


def test_field_settings_are_checked_before_spark_is_touched():
    assert ZinggField("email", "fuzzy, null_or_blank").match_types == ("FUZZY", "NULL_OR_BLANK")
    with pytest.raises(ValueError, match="unknown match type"):
        ZinggField("email", "FUZY")
    with pytest.raises(ValueError, match="reserved|not usable"):
        ZinggField("z_hash", "FUZZY")
    with pytest.raises(ValueError, match="not DONT_USE"):
        ZinggSettings(fields=(ZinggField("a", "DONT_USE"),))
