"""Zingg's pair classifier and learned blocking, without its candidate generation or clustering.

The only module that touches Zingg. It uses the jar that ships in the ``zingg`` wheel
(already on the session's classpath, see :mod:`cdi_spark.session`) through the py4j gateway
of the running session, and never imports the ``zingg`` Python package: ``zingg.client``
builds contexts and may launch a JVM of its own at import time, and it holds the gateway
in module globals. Everything Zingg-specific (field and match types, the model folder
layout, the ``z_`` column prefix, preprocessing, analytics) stays in this file.

An Estimator-like pair:

* :func:`train` writes the labelled pairs in Zingg's marked-training-data format where
  Zingg keeps them (``<model_dir>/<model_id>/trainingData/marked/``), reads them back with
  Zingg's reader, learns Zingg's blocking tree and its classifier (similarity features per
  field, polynomial expansion, logistic regression chosen by 2-fold cross-validation) and
  stores them under ``<model_dir>/<model_id>/model/``, plus a small ``cdi_model`` manifest;
* :func:`score_pairs` scores candidate pairs that *we* generate (our blocking keys plus
  Zingg's hashes) with the stored classifier: ``left_key, right_key, score, prediction``;
* :func:`block_hashes` gives every record the hash of its path through the learned
  blocking tree, one more source of candidates (a hash depends only on its record).

How Zingg is driven (Zingg 0.7.0, ``zingg.spark.core.executor``): ``SparkTrainer`` and
``SparkMatcher`` are built and ``init``-ed with our ``Arguments``; their public steps are
called one by one (``preprocess``, ``getDSUtil().getTraining/joinWithItself``,
``getBlockingTreeUtil().createBlockingTree/writeBlockingTree/readBlockingTree/
getBlockHashes``, ``getModelUtil().createModel``, ``getModel().predict``). Their
``execute()`` is never called, and neither is ``postMetrics()``: in the 0.7.0 jar the only
code that opens an HTTP connection is ``zingg.common.core.util.Analytics``, reached only
through ``ZinggBaseCommon.postMetrics``, which only ``Client.execute``/``Client.postMetrics``
call. ``collectMetrics`` is set to false on the arguments as well, so the steps we call
record nothing (``Analytics.track`` is a no-op then).

Determinism: Zingg samples the records for its blocking tree twice without a seed
(``sample(0.5)`` of ``sample(0.5)``). Here the sample is drawn by Spark with our seed, capped
at ``block_sample_max_records`` (the tree learner collects it to the driver), sorted by
record key, and handed to Zingg with fraction 1.0, which Spark's Bernoulli sampler keeps
whole. Label pairs are ordered before training; the cross-validator's folds are seeded by
Spark ML. Measured on the tests' 695 records: two trainings gave the same hash for every
record and the same score for every pair (largest difference 0.0), though the serialised
tree's bytes differ. Not fixed: the logistic regression's result depends on the partition
layout of its input, so another Spark configuration may move scores in the last digits.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from cdi_spark.errors import CdiError, MissingColumnError
from cdi_spark.resolve.zingg_settings import (
    KEY,
    LABEL_COLUMNS,
    MATCH_TYPES,
    RESERVED_PREFIX,
    ModelRef,
    ZinggField,
    ZinggSettings,
)

log = logging.getLogger(__name__)

__all__ = [
    "HASH_COLUMN",
    "MATCH_TYPES",
    "SCORE_COLUMNS",
    "ModelRef",
    "ZinggError",
    "ZinggField",
    "ZinggSettings",
    "block_hashes",
    "load_model_ref",
    "score_pairs",
    "train",
]

PAIR_COLUMNS = ("left_key", "right_key")
SCORE_COLUMNS = ("left_key", "right_key", "score", "prediction")
HASH_COLUMN = "z_hash"  # the output column of block_hashes; Zingg's own name for it

_PREFIX = RESERVED_PREFIX  # Zingg's ColName.COL_PREFIX
_ZID = "z_zid"
_CLUSTER = "z_cluster"
_IS_MATCH = "z_isMatch"
_MANIFEST = "cdi_model"
_MIN_LABELS = 5  # Zingg's Trainer.verifyTraining refuses fewer matches or non-matches


class ZinggError(CdiError, RuntimeError):
    """Zingg cannot train or score with what it was given; the message says what to change."""


def train(
    spark: SparkSession, records: DataFrame, labels: DataFrame, settings: ZinggSettings, model_dir: str
) -> ModelRef:
    """Learn Zingg's blocking tree and pair classifier from labelled pairs.

    Args:
        spark: the session (its JVM has the Zingg jar).
        records: ``record_key`` (string, unique) and every field of ``settings.fields``.
        labels: ``left_key, right_key, is_match`` (bool); keys are ``record_key`` values.
            Self-pairs, pairs naming unknown records and pairs labelled both ways are left out.
        settings: fields, model id, sampling and seed.
        model_dir: folder (any Hadoop path) that receives ``<model_id>/``; pass a versioned one.

    Returns:
        A :class:`ModelRef` to score with.

    Raises:
        MissingColumnError: records or labels lack a column.
        ZinggError: fewer than 5 usable matching or non-matching pairs.
    """
    _require(records, (KEY, *(f.name for f in settings.fields)), "zingg.train records")
    _require(labels, LABEL_COLUMNS, "zingg.train labels")
    ref = ModelRef(model_dir, settings.model_id, settings.fields)
    jvm = spark.sparkContext._jvm
    args = _arguments(jvm, ref, settings)
    trainer = jvm.zingg.spark.core.executor.SparkTrainer()
    trainer.init(args, spark._jsparkSession, jvm.zingg.common.client.ClientOptions())
    prepared = _select_fields(records, settings.fields)
    pairs = _labelled_pairs(spark, trainer, args, prepared, labels)
    positives = pairs.filter(F.col(_IS_MATCH) == 1)
    negatives = pairs.filter(F.col(_IS_MATCH) == 0)
    n_pos, n_neg = positives.count(), negatives.count()
    if n_pos < _MIN_LABELS or n_neg < _MIN_LABELS:
        raise ZinggError(
            f"Zingg needs at least {_MIN_LABELS} matching and {_MIN_LABELS} non-matching labelled pairs "
            f"whose records are present; found {n_pos} and {n_neg}. Label more pairs, or check that the "
            f"labels' keys are {KEY} values of the records."
        )
    log.info("zingg train: %d matching and %d non-matching labelled pairs", n_pos, n_neg)
    _learn_blocking_tree(spark, trainer, args, _block_sample(prepared, settings), positives)
    model = trainer.getModelUtil().createModel(_zframe(jvm, positives), _zframe(jvm, negatives), False, args)
    model.save(trainer.getModelHelper().getModel(args))
    pairs.unpersist()
    _write_manifest(spark, ref, settings, n_pos, n_neg)
    log.info("zingg train: model %s written", settings.model_id)
    return ref


def load_model_ref(spark: SparkSession, model_dir: str, model_id: str = "cdi") -> ModelRef:
    """The :class:`ModelRef` of a model :func:`train` stored, read from its manifest.

    Raises:
        ZinggError: no model manifest in ``<model_dir>/<model_id>/``.
    """
    ref = ModelRef(model_dir, model_id)
    try:
        text = spark.read.text(f"{ref.path}/{_MANIFEST}").first()
    except AnalysisException as exc:  # the path does not exist
        raise ZinggError(f"no Zingg model manifest under {ref.path}; train a model there first") from exc
    manifest = json.loads(text[0])
    fields = tuple(ZinggField(f["name"], f["match_type"]) for f in manifest["fields"])
    return ModelRef(model_dir, model_id, fields)


def block_hashes(spark: SparkSession, records: DataFrame, model: ModelRef) -> DataFrame:
    """Hash of each record's path through the model's learnt blocking tree.

    Records with equal hashes form one Zingg block; each record gets exactly one hash, and
    a hash depends only on its own record, so hashes of resolved records can be stored.

    Returns:
        ``record_key, z_hash`` (int), one row per input record.
    """
    _require(records, (KEY, *(f.name for f in model.fields)), "zingg.block_hashes records")
    jvm = spark.sparkContext._jvm
    matcher, args = _matcher(spark, model)
    btu = matcher.getBlockingTreeUtil()
    tree = btu.readBlockingTree(args, matcher.getModelHelper())
    prepared = matcher.preprocess(_zframe(jvm, _select_fields(records, model.fields)))
    return _df(spark, btu.getBlockHashes(prepared, tree)).select(KEY, HASH_COLUMN)


def score_pairs(spark: SparkSession, records: DataFrame, pairs: DataFrame, model: ModelRef) -> DataFrame:
    """Score candidate pairs with the model's classifier.

    Args:
        spark: the session.
        records: ``record_key`` and the model's fields.
        pairs: ``left_key, right_key``; duplicates are scored once, the order within a
            pair is kept.
        model: from :func:`train` or :func:`load_model_ref`.

    Returns:
        ``left_key, right_key, score, prediction``: one row per distinct input pair;
        ``score`` is Zingg's match probability in [0, 1], ``prediction`` its decision (its
        threshold was chosen by cross-validation); both are null when a key is not a record.
    """
    _require(records, (KEY, *(f.name for f in model.fields)), "zingg.score_pairs records")
    _require(pairs, PAIR_COLUMNS, "zingg.score_pairs pairs")
    jvm = spark.sparkContext._jvm
    matcher, _ = _matcher(spark, model)
    classifier = matcher.getModel()  # loads classifier/best.model and registers its UDFs
    left = _df(spark, matcher.preprocess(_zframe(jvm, _select_fields(records, model.fields))))
    right = left.select([F.col(c).alias(_PREFIX + c) for c in left.columns])
    candidates = (
        pairs.select(*PAIR_COLUMNS)
        .dropDuplicates()
        .join(left, F.col("left_key") == F.col(KEY), "left")
        .join(right, F.col("right_key") == F.col(_PREFIX + KEY), "left")
    )
    scored = _df(spark, classifier.predict(_zframe(jvm, candidates)))
    known = F.col(KEY).isNotNull() & F.col(_PREFIX + KEY).isNotNull()
    return scored.select(
        "left_key",
        "right_key",
        F.when(known, F.col("z_score")).cast("double").alias("score"),
        F.when(known, F.col("z_prediction") == 1.0).alias("prediction"),
    )


def _arguments(jvm, ref: ModelRef, settings: ZinggSettings | None = None):
    """Zingg ``Arguments`` for a model: fields (record_key as DONT_USE), folders, analytics off."""
    args = jvm.zingg.common.client.arguments.model.Arguments()
    definitions = jvm.java.util.ArrayList()
    # Our key rides along as DONT_USE: no features, no preprocessing, and pairs join back by it.
    for name, match_types in ((KEY, ("DONT_USE",)), *((f.name, f.match_types) for f in ref.fields)):
        definition = jvm.zingg.common.client.FieldDefinition()
        definition.setFieldName(name)
        definition.setFields(name)
        definition.setDataType("string")
        types = jvm.java.util.ArrayList()
        for match_type in match_types:
            types.add(jvm.zingg.common.client.MatchTypes.getByName(match_type))
        definition.setMatchType(types)
        definitions.add(definition)
    args.setFieldDefinition(definitions)
    args.setZinggDir(ref.model_dir.rstrip("/"))
    args.setModelId(ref.model_id)
    args.setCollectMetrics(False)
    if settings is not None:
        args.setLabelDataSampleSize(float(settings.label_sample_size))
        args.setBlockSize(settings.block_size)
    return args


def _labelled_pairs(spark: SparkSession, trainer, args, prepared: DataFrame, labels: DataFrame) -> DataFrame:
    """Write the labels as Zingg's marked training data, read them back with Zingg's reader,
    preprocess them and pair them up (one row per pair, right-hand columns prefixed), cached."""
    helper = trainer.getModelHelper()
    _marked_records(prepared, labels).write.mode("overwrite").parquet(helper.getZinggTrainingDataMarkedDir(args))
    training = trainer.preprocess(trainer.getDSUtil().getTraining(trainer.getPipeUtil(), args, helper))
    # One partition: the cross-validated logistic regression then runs one task per step
    # instead of one per shuffle partition, on a few hundred rows.
    pairs = _df(spark, trainer.getDSUtil().joinWithItself(training, _CLUSTER, True))
    return pairs.orderBy(_CLUSTER).coalesce(1).cache()


def _learn_blocking_tree(spark: SparkSession, trainer, args, sample: DataFrame, positives: DataFrame) -> None:
    jvm = spark.sparkContext._jvm
    btu = trainer.getBlockingTreeUtil()
    tree = btu.createBlockingTree(
        trainer.preprocess(_zframe(jvm, sample)),
        _zframe(jvm, positives),
        1.0,  # the sample is already drawn, with our seed; Spark keeps every row at 1.0
        -1,  # block size from Zingg's heuristic (0.1% of the sample), capped by settings.block_size
        args,
        trainer.getHashUtil().getHashFunctionList(),
    )
    if tree is None or tree.getSubTrees() is None:
        log.warning("zingg train: no blocking rules were learnt; block_hashes will give one block")
    btu.writeBlockingTree(tree, args, trainer.getModelHelper())


def _matcher(spark: SparkSession, model: ModelRef):
    if not model.fields:
        raise ZinggError(
            f"ModelRef for {model.path} has no fields; use load_model_ref(spark, model_dir, model_id) "
            "or pass the fields the model was trained with"
        )
    jvm = spark.sparkContext._jvm
    args = _arguments(jvm, model)
    matcher = jvm.zingg.spark.core.executor.SparkMatcher()
    matcher.init(args, spark._jsparkSession, jvm.zingg.common.client.ClientOptions())
    return matcher, args


def _select_fields(records: DataFrame, fields: tuple[ZinggField, ...]) -> DataFrame:
    return records.select(F.col(KEY).cast("string").alias(KEY), *(F.col(f.name).cast("string") for f in fields))


def _marked_records(prepared: DataFrame, labels: DataFrame) -> DataFrame:
    """Labelled pairs as Zingg's marked training data: two rows per pair sharing ``z_cluster``.

    Pairs are made unordered; a pair labelled both ways is left out (Zingg's "not sure").
    """
    lo, hi = F.least("left_key", "right_key"), F.greatest("left_key", "right_key")
    unique = (
        labels.select(lo.cast("string").alias("a"), hi.cast("string").alias("b"), F.col("is_match").cast("boolean"))
        .filter((F.col("a") != F.col("b")) & F.col("is_match").isNotNull())
        .groupBy("a", "b")
        .agg(F.min("is_match").alias("lo"), F.max("is_match").alias("hi"))
        .filter(F.col("lo") == F.col("hi"))
        .select(F.concat_ws("|", "a", "b").alias(_CLUSTER), "a", "b", F.col("hi").cast("int").alias(_IS_MATCH))
    )
    sides = unique.select(_CLUSTER, _IS_MATCH, F.col("a").alias("key")).unionByName(
        unique.select(_CLUSTER, _IS_MATCH, F.col("b").alias("key"))
    )
    rows = sides.join(prepared, sides["key"] == prepared[KEY]).drop("key")
    # A pair keeps its two rows only when both records exist.
    complete = rows.groupBy(_CLUSTER).count().filter(F.col("count") == 2).select(_CLUSTER)
    return (
        rows.join(complete, _CLUSTER)
        .withColumn(_ZID, F.xxhash64(KEY))
        .withColumn("z_prediction", F.lit(None).cast("double"))
        .withColumn("z_score", F.lit(None).cast("double"))
        .withColumn("z_zsource", F.lit("cdi"))
        .orderBy(_CLUSTER, KEY)
    )


def _block_sample(prepared: DataFrame, settings: ZinggSettings) -> DataFrame:
    total = prepared.count()
    fraction = min(settings.block_sample_fraction, settings.block_sample_max_records / max(total, 1))
    sample = prepared.sample(fraction=fraction, seed=settings.seed).orderBy(KEY)
    log.info("zingg train: blocking tree learns from a %.3f sample of %d records", fraction, total)
    return sample


def _write_manifest(spark: SparkSession, ref: ModelRef, settings: ZinggSettings, n_pos: int, n_neg: int) -> None:
    manifest = {
        "zingg_version": "0.7.0",
        "model_id": ref.model_id,
        "fields": [asdict(f) for f in ref.fields],
        "settings": {k: v for k, v in asdict(settings).items() if k != "fields"},
        "labels": {"matches": n_pos, "non_matches": n_neg},
    }
    spark.createDataFrame([(json.dumps(manifest, sort_keys=True),)], "manifest string").coalesce(1).write.mode(
        "overwrite"
    ).text(f"{ref.path}/{_MANIFEST}")


def _require(df: DataFrame, columns, where: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise MissingColumnError(where, missing, df.columns)


def _zframe(jvm, df: DataFrame):
    return jvm.zingg.spark.client.SparkFrame(df._jdf)


def _df(spark: SparkSession, zframe) -> DataFrame:
    return DataFrame(zframe.df(), spark)
