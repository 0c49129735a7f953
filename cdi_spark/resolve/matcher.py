"""The matcher: candidates, a trained Zingg model's scores, rule edges and clusters, end to end.

One code path serves the pipeline's resolve stage (``silver.customer_records``) and
``cdi-spark resolve-file`` (any CSV of people, standardized by :mod:`cdi_spark.resolve.roles`):
both hand over a *match frame*, ``record_key`` plus the columns ``matching.yml`` names.

Training (:func:`train_model`):

1. candidate pairs from our blocking keys (:mod:`cdi_spark.resolve.blocking`);
2. labelled pairs: the given labels when there are at least ``training.min_labels``
   matches and non-matches, else (``training.bootstrap``) *sure* matches and *sure*
   non-matches picked from the candidates by a field-agreement weight (below), and the log
   says so; at most ``training.max_labels``, half of each kind where the labels allow;
3. Zingg learns its blocking tree and classifier from them (:func:`cdi_spark.resolve.zingg.train`)
   into a new version folder ``<model_dir>/<version>/``.

Matching (:func:`match`): candidates from our keys plus the model's learnt block hashes,
scored by the model; deterministic rule edges; edges at or above
``clustering.model_threshold``; connected components with the size guard.
:func:`match_edges` is the part before clustering; given ``changed`` record keys it makes
only the edges an incremental run needs (see :mod:`cdi_spark.resolve.incremental`).

The agreement weight (:func:`compare`) is a Fellegi-Sunter style sum over the model's
fields, with fixed m-probabilities and u-probabilities measured from the data: two records
agreeing on a rare value is strong evidence, on a common one weak. Each field is compared at
four levels: ``exact``, ``close`` (edit distance at most a sixth of the longer value, at least 1),
``diff``, and ``null`` (a side is missing: no evidence). The weight orders candidates for
labelling and picks bootstrap pairs; it never links records by itself.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from cdi_spark.config import MatchingConfig
from cdi_spark.errors import CdiError, MissingColumnError
from cdi_spark.resolve import zingg
from cdi_spark.resolve.blocking import Candidates, candidate_pairs
from cdi_spark.resolve.clusters import ClusterResult, ClusterSettings, cluster
from cdi_spark.resolve.rules import deterministic_edges, rule_input_columns
from cdi_spark.resolve.zingg import ModelRef, ZinggField, ZinggSettings

log = logging.getLogger(__name__)

EDGE_COLUMNS = ("left_key", "right_key", "rule", "score")
LEVELS = ("exact", "close", "diff")
# m-probabilities: how often a true pair's field is at each level (typos, re-typed values).
_M = {"exact": 0.85, "close": 0.10, "diff": 0.05}
# EM may not learn that a field of a true pair disagrees outright more often than this: without
# the cap it can settle on "everything is a match" when blocking made every candidate agree on
# one rare field.
_MAX_M_DIFF = 0.2
_SURE_NON_MATCH_DIFFS = 3
TF_LIMITS = (0.001, 4.0)  # the term-frequency factor on the model's odds stays in this range


@dataclass(frozen=True)
class TrainedModel:
    """A trained match model and what it learnt from.

    Attributes:
        model: where it is stored (``<model_dir>/<version>``) and its fields.
        version: the version folder name.
        matches, non_matches: labelled pairs it was trained on.
        bootstrapped: True when the pairs were picked by agreement, not labelled.
    """

    model: ModelRef
    version: str
    matches: int
    non_matches: int
    bootstrapped: bool


@dataclass(frozen=True)
class EdgeResult:
    """What :func:`match_edges` produced.

    Attributes:
        edges: ``left_key, right_key, rule, score`` (cached: unpersist when written).
        candidates: the candidate pairs (persisted) and the skipped blocks.
        overshared: rule keys shared by too many records (not used).
    """

    edges: DataFrame
    candidates: Candidates
    overshared: DataFrame

    def release(self) -> None:
        """Drop the cached candidates and edges (after the results are written)."""
        self.candidates.pairs.unpersist()
        self.edges.unpersist()


@dataclass(frozen=True)
class MatchResult:
    """What :func:`match` produced.

    Attributes:
        edges: ``left_key, right_key, rule, score``: rule edges (score 1.0) and model edges
            at or above the threshold, one row per pair and rule.
        clusters: ``record_key, cluster_id``, one row per record.
        cut_edges: edges the size guard cut (see :mod:`cdi_spark.resolve.clusters`).
        candidates: the candidate pairs and skipped blocks.
        overshared: rule keys shared by too many records (not used).
        clustering: the clustering result with its counts.
    """

    edges: DataFrame
    clusters: DataFrame
    cut_edges: DataFrame
    candidates: Candidates
    overshared: DataFrame
    clustering: ClusterResult

    def release(self) -> None:
        """Drop the cached candidates and edges (after the results are written)."""
        self.candidates.pairs.unpersist()
        self.edges.unpersist()


def zingg_fields(matching: MatchingConfig) -> tuple[ZinggField, ...]:
    """The model's Zingg field definitions, in ``matching.yml`` order."""
    return tuple(ZinggField(f.name, f.match_type) for f in matching.fields)


def new_version() -> str:
    """A model version folder name: the UTC time, sortable (``v20261123T101500Z``)."""
    return datetime.now(UTC).strftime("v%Y%m%dT%H%M%SZ")


def require_columns(records: DataFrame, matching: MatchingConfig, where: str) -> None:
    """Raise :class:`MissingColumnError` unless the records hold every column matching needs."""
    missing = [c for c in ("record_key", *matching.columns) if c not in records.columns]
    if missing:
        raise MissingColumnError(where, missing, records.columns)


def input_columns(records: DataFrame, matching: MatchingConfig) -> tuple[str, ...]:
    """The columns of ``records`` that matching reads (model fields, blocking keys, rules),
    sorted: a record whose values in these are unchanged is matched the same way."""
    wanted = {*matching.columns, *rule_input_columns(matching.rules)}
    return tuple(sorted(c for c in records.columns if c in wanted))


# --------------------------------------------------------------------------------------------
# Field agreement
# --------------------------------------------------------------------------------------------


def _norm(col: Column) -> Column:
    text = F.lower(F.trim(col.cast("string")))
    return F.when(F.length(text) > 0, text)


def u_probabilities(records: DataFrame, fields: list[str]) -> dict[str, float]:
    """Chance that two random records agree exactly on each field (one aggregation).

    ``sum(count(value)²) / (sum(count(value)))²`` over the non-empty values.
    """
    values = F.array(*(F.struct(F.lit(f).alias("field"), _norm(F.col(f)).alias("value")) for f in fields))
    counts = (
        records.select(F.explode(values).alias("fv"))
        .select("fv.field", "fv.value")
        .filter(F.col("value").isNotNull())
        .groupBy("field", "value")
        .count()
        .groupBy("field")
        .agg(F.sum(F.col("count") * F.col("count")).alias("sq"), F.sum("count").alias("n"))
        .collect()
    )
    found = {r["field"]: r["sq"] / (r["n"] * r["n"]) for r in counts if r["n"]}
    return {f: min(max(found.get(f, 1.0), 1e-6), 0.9) for f in fields}


def _level(left: Column, right: Column) -> Column:
    longer = F.greatest(F.length(left), F.length(right))
    return (
        F.when(left.isNull() | right.isNull(), F.lit(None))
        .when(left == right, F.lit("exact"))
        .when(F.levenshtein(left, right) <= F.greatest(F.lit(1), F.floor(longer / 6)), F.lit("close"))
        .otherwise(F.lit("diff"))
    )


def u_levels(u_exact: float) -> dict[str, float]:
    """Chance of each level for two records of different people, from the exact-agreement chance."""
    u_close = min(0.3, 4 * u_exact + 0.002)
    return {"exact": u_exact, "close": u_close, "diff": max(1.0 - u_exact - u_close, 0.05)}


def field_weights(u_exact: float) -> dict[str, float]:
    """log2(m/u) per level for a field whose exact-agreement chance is ``u_exact``."""
    u = u_levels(u_exact)
    return {level: math.log2(_M[level] / u[level]) for level in LEVELS}


def compare(records: DataFrame, pairs: DataFrame, matching: MatchingConfig, u: dict[str, float]) -> DataFrame:
    """Per-field agreement levels and the summed agreement weight of each pair.

    Returns:
        ``left_key, right_key`` (and the pairs' other columns), ``levels`` (map field ->
        level), ``exact``, ``diff``, ``agree`` (exact or close) counts of fields, ``weight`` and ``similarity``
        (the weight squashed to [0, 1]).
    """
    names = [f.name for f in matching.fields]
    side = records.select("record_key", *(_norm(F.col(n)).alias(n) for n in names))
    left = side.select(F.col("record_key").alias("left_key"), *(F.col(n).alias(f"l_{n}") for n in names))
    right = side.select(F.col("record_key").alias("right_key"), *(F.col(n).alias(f"r_{n}") for n in names))
    joined = pairs.join(left, "left_key").join(right, "right_key")
    levels = {n: _level(F.col(f"l_{n}"), F.col(f"r_{n}")) for n in names}
    with_levels = joined.select(*pairs.columns, *(levels[n].alias(f"lv_{n}") for n in names))
    weight = F.lit(0.0)
    for n in names:
        w = field_weights(u[n])
        lv = F.col(f"lv_{n}")
        weight = weight + F.coalesce(
            F.when(lv == "exact", w["exact"]).when(lv == "close", w["close"]).when(lv == "diff", w["diff"]), F.lit(0.0)
        )

    def count(level: str) -> Column:
        return sum(F.coalesce((F.col(f"lv_{n}") == level).cast("int"), F.lit(0)) for n in names)

    return with_levels.select(
        *pairs.columns,
        F.create_map(*[x for n in names for x in (F.lit(n), F.col(f"lv_{n}"))]).alias("levels"),
        F.concat_ws("|", *(F.coalesce(F.col(f"lv_{n}"), F.lit("null")) for n in names)).alias("pattern"),
        count("exact").alias("exact"),
        count("diff").alias("diff"),
        (count("exact") + count("close")).alias("agree"),
        weight.alias("weight"),
        (1 / (1 + F.pow(F.lit(2.0), -weight / 2))).alias("similarity"),
    )


def diverse_pairs(compared: DataFrame, n: int, seed: int) -> DataFrame:
    """Up to ``n`` compared pairs that cover every agreement pattern, for labelling.

    A pattern is the tuple of per-field levels (exact / close / diff / missing). Pairs are
    shared out over patterns like water filling: every pattern gets the same quota ``q``
    (or all its pairs when it has fewer), with ``q`` as large as ``n`` allows, and the pairs
    left over go to the largest patterns. So rare but telling patterns (same surname and
    address, another given name) are asked about, not only the common ones. Within a pattern
    pairs are taken in the order of a hash of the seed and the pair: deterministic.

    Returns:
        The chosen rows of ``compared`` (from :func:`compare`), most similar first.
    """
    with_pattern = compared
    sizes = {r["pattern"]: r["count"] for r in with_pattern.groupBy("pattern").count().collect()}
    quota = _water_fill(sizes, n)
    rank = F.row_number().over(
        Window.partitionBy("pattern").orderBy(F.xxhash64(F.lit(seed), "left_key", "right_key"), "left_key", "right_key")
    )
    if not any(quota.values()):
        return with_pattern.limit(0)
    limits = F.create_map(*[F.lit(v) for kv in quota.items() for v in kv])
    return (
        with_pattern.withColumn("_rank", rank)
        .filter(F.col("_rank") <= F.coalesce(limits[F.col("pattern")], F.lit(0)))
        .drop("_rank")
        .orderBy(F.desc("similarity"), "left_key", "right_key")
    )


def _water_fill(sizes: dict[str, int], n: int) -> dict[str, int]:
    """Per-pattern quotas summing to min(n, total): equal shares, capped by each size."""
    quota = {p: 0 for p in sizes}
    left = min(n, sum(sizes.values()))
    open_ = sorted(sizes, key=lambda p: (sizes[p], p))
    while left > 0 and open_:
        share = max(left // len(open_), 1)
        for p in list(open_):
            take = min(share, sizes[p] - quota[p], left)
            quota[p] += take
            left -= take
            if quota[p] >= sizes[p]:
                open_.remove(p)
            if left == 0:
                break
    return quota


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


def em_posteriors(
    compared: DataFrame, matching: MatchingConfig, u: dict[str, float], *, iterations: int = 30
) -> dict[str, float]:
    """Match probability of each agreement pattern, by expectation-maximisation (Fellegi-Sunter).

    Candidates are grouped by pattern (a few thousand rows at most: collected). The
    u-probabilities (chance of each level among different people) are fixed from value
    frequencies; the m-probabilities (among true pairs) and the share of true pairs are
    estimated from the candidates, so that, say, a different given name turns out rare
    among matches (never above ``_MAX_M_DIFF``). A missing field is no evidence either way.

    Returns:
        pattern -> posterior probability that a pair with this pattern is a match.
    """
    names = [f.name for f in matching.fields]
    counts = [(r["pattern"].split("|"), r["count"]) for r in compared.groupBy("pattern").count().collect()]
    if not counts:
        return {}
    ul = {n: u_levels(u[n]) for n in names}
    m = {n: dict(_M) for n in names}
    share = 0.2
    posterior: list[float] = []
    for _ in range(iterations):
        posterior = []
        for levels, _count in counts:
            pm, pu = share, 1.0 - share
            for n, level in zip(names, levels, strict=True):
                if level != "null":
                    pm *= m[n][level]
                    pu *= ul[n][level]
            posterior.append(pm / (pm + pu) if pm + pu > 0 else 0.0)
        total = sum(c for _, c in counts)
        share = min(max(sum(p * c for p, (_, c) in zip(posterior, counts, strict=True)) / total, 1e-4), 0.9999)
        for i, n in enumerate(names):
            weights = {level: 1e-3 for level in LEVELS}  # a little smoothing: no level is impossible
            for p, (levels, c) in zip(posterior, counts, strict=True):
                if levels[i] != "null":
                    weights[levels[i]] += p * c
            norm = sum(weights.values())
            m[n] = {level: w / norm for level, w in weights.items()}
            if m[n]["diff"] > _MAX_M_DIFF:  # keeps EM from calling everything a match
                rest = m[n]["exact"] + m[n]["close"]
                m[n] = {
                    "exact": m[n]["exact"] / rest * (1 - _MAX_M_DIFF),
                    "close": m[n]["close"] / rest * (1 - _MAX_M_DIFF),
                    "diff": _MAX_M_DIFF,
                }
    log.info(
        "em: share of candidates that match %.3f; m(exact) %s",
        share,
        ", ".join(f"{n} {m[n]['exact']:.2f}" for n in names),
    )
    return {"|".join(levels): p for p, (levels, _) in zip(posterior, counts, strict=True)}


def bootstrap_labels(
    records: DataFrame, compared: DataFrame, matching: MatchingConfig, u: dict[str, float], n: int, seed: int
) -> DataFrame:
    """Sure matches and sure non-matches among compared candidates, ``n`` at most, half each.

    Each candidate's match probability comes from :func:`em_posteriors` (unsupervised
    Fellegi-Sunter); sure means at least 0.99 or at most 0.01 (or three fields disagreeing:
    a sure non-match), and a sure match also has at most one disagreeing field (a replaced
    value is common in true pairs; relatives at one address differ in more). Within each
    kind, pairs are spread over agreement patterns (:func:`diverse_pairs`) so the model sees
    the least obvious sure pairs too.
    When the candidates hold too few sure non-matches (blocking does its job), random pairs
    of records make up the rest.
    """
    posteriors = em_posteriors(compared, matching, u)
    spark = compared.sparkSession
    table = spark.createDataFrame(list(posteriors.items()), "pattern string, posterior double")
    scored = compared.join(F.broadcast(table), "pattern")
    sure_match = scored.filter((F.col("posterior") >= 0.99) & (F.col("diff") <= 1))
    # Three fields disagreeing outright is a non-match whatever the rest: address fields
    # agree together (one household), which the independence of Fellegi-Sunter overcounts.
    sure_non = scored.filter((F.col("posterior") <= 0.01) | (F.col("diff") >= _SURE_NON_MATCH_DIFFS))
    half = n // 2
    picked_match = diverse_pairs(sure_match, half, seed).select("left_key", "right_key").cache()
    picked_non = diverse_pairs(sure_non, n - half, seed).select("left_key", "right_key").cache()
    missing = n - half - picked_non.count()
    if missing > 0:  # few candidates are sure strangers: add random pairs of records, nearly always strangers
        log.info(
            "bootstrap: %d sure non-matches among the candidates; adding %d random pairs", n - half - missing, missing
        )
        picked_non = picked_non.unionByName(random_pairs(records, missing, seed, exclude=compared))
    return picked_match.select("left_key", "right_key", F.lit(True).alias("is_match")).unionByName(
        picked_non.select("left_key", "right_key", F.lit(False).alias("is_match"))
    )


def random_pairs(records: DataFrame, n: int, seed: int, *, exclude: DataFrame | None = None) -> DataFrame:
    """About ``n`` pairs of records drawn at random (records sharing a hash bucket), not in ``exclude``.

    No window over the whole table and no cross join: records are hashed into buckets of
    about two and paired inside their bucket.
    """
    total = records.count()
    buckets = max(total // 2, 1)
    hashed = records.select("record_key", F.pmod(F.xxhash64(F.lit(seed), "record_key"), F.lit(buckets)).alias("_b"))
    left, right = hashed.alias("l"), hashed.alias("r")
    pairs = left.join(right, (F.col("l._b") == F.col("r._b")) & (F.col("l.record_key") < F.col("r.record_key")))
    pairs = pairs.select(F.col("l.record_key").alias("left_key"), F.col("r.record_key").alias("right_key"))
    if exclude is not None:
        pairs = pairs.join(exclude.select("left_key", "right_key"), ["left_key", "right_key"], "left_anti")
    return pairs.orderBy(F.xxhash64(F.lit(seed), "left_key", "right_key")).limit(n)


def _balanced(labels: DataFrame, n: int, seed: int) -> DataFrame:
    """At most n labels, up to half of each kind, the rest from the other kind."""
    ranked = labels.withColumn("_r", F.xxhash64(F.lit(seed), "left_key", "right_key"))
    counts = {r["is_match"]: r["count"] for r in labels.groupBy("is_match").count().collect()}
    pos, neg = counts.get(True, 0), counts.get(False, 0)
    take_pos = min(pos, max(n // 2, n - neg))
    take_neg = min(neg, n - take_pos)
    chosen = (
        ranked.filter("is_match")
        .orderBy("_r")
        .limit(take_pos)
        .unionByName(ranked.filter(~F.col("is_match")).orderBy("_r").limit(take_neg))
    )
    return chosen.drop("_r")


def training_pairs(
    records: DataFrame, matching: MatchingConfig, labels: DataFrame | None, candidates: Candidates | None = None
) -> tuple[DataFrame, bool]:
    """The labelled pairs to train on, and whether they were bootstrapped.

    Raises:
        CdiError: not enough labels and ``training.bootstrap`` is off, or no sure pairs.
    """
    training = matching.training
    if labels is not None:
        counts = {r["is_match"]: r["count"] for r in labels.groupBy("is_match").count().collect()}
        pos, neg = counts.get(True, 0), counts.get(False, 0)
        if pos >= training.min_labels and neg >= training.min_labels:
            log.info(
                "train: %d matching and %d non-matching labels available; using at most %d",
                pos,
                neg,
                training.max_labels,
            )
            return _balanced(labels, training.max_labels, training.seed).cache(), False
        log.info("train: only %d matching and %d non-matching labels (need %d of each)", pos, neg, training.min_labels)
    if not training.bootstrap:
        raise CdiError(
            f"not enough labelled pairs to train the match model (need {training.min_labels} matches and "
            f"{training.min_labels} non-matches) and training.bootstrap is off; import or label more pairs"
        )
    candidates = candidates or candidate_pairs(records, matching.blocking)
    names = [f.name for f in matching.fields]
    u = u_probabilities(records, names)
    compared = compare(records, candidates.pairs, matching, u).cache()
    picked = bootstrap_labels(records, compared, matching, u, training.max_labels, training.seed).cache()
    counts = {r["is_match"]: r["count"] for r in picked.groupBy("is_match").count().collect()}
    compared.unpersist()
    log.warning(
        "train: no labels to learn from, so the model is bootstrapped from %d sure matches and %d sure "
        "non-matches picked by field agreement (unsupervised Fellegi-Sunter); label pairs "
        "(cdi-spark label / import-labels) for a better model",
        counts.get(True, 0),
        counts.get(False, 0),
    )
    return picked, True


def train_model(
    spark: SparkSession,
    records: DataFrame,
    matching: MatchingConfig,
    model_dir: str,
    *,
    labels: DataFrame | None = None,
    version: str | None = None,
) -> TrainedModel:
    """Train a match model on labelled (or bootstrapped) pairs into ``<model_dir>/<version>``.

    Args:
        spark: the session (its JVM has the Zingg jar).
        records: the match frame.
        matching: fields, blocking and training settings.
        model_dir: folder of model versions (any Hadoop path).
        labels: ``left_key, right_key, is_match``; None or too few: bootstrap.
        version: the version folder name (default :func:`new_version`).

    Returns:
        The :class:`TrainedModel`.
    """
    require_columns(records, matching, "train_model records")
    version = version or new_version()
    pairs, bootstrapped = training_pairs(records, matching, labels)
    counts = {r["is_match"]: r["count"] for r in pairs.groupBy("is_match").count().collect()}
    settings = ZinggSettings(zingg_fields(matching), model_id=version, seed=matching.training.seed)
    ref = zingg.train(spark, records, pairs, settings, model_dir)
    pairs.unpersist()
    return TrainedModel(ref, version, counts.get(True, 0), counts.get(False, 0), bootstrapped)


def latest_model(spark: SparkSession, model_dir: str) -> ModelRef:
    """The newest model version under ``model_dir`` (version folders sort by time).

    Raises:
        CdiError: no trained model there.
    """
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(model_dir)
    fs = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    versions = []
    if fs.exists(path):
        for status in fs.listStatus(path):
            name = status.getPath().getName()
            if status.isDirectory() and fs.exists(jvm.org.apache.hadoop.fs.Path(status.getPath(), "cdi_model")):
                versions.append(name)
    if not versions:
        raise CdiError(
            f"no trained match model under {model_dir}; run the train_matcher stage "
            "(cdi-spark run --stages train_matcher) first"
        )
    return zingg.load_model_ref(spark, model_dir, max(versions))


# --------------------------------------------------------------------------------------------
# Matching
# --------------------------------------------------------------------------------------------


def frequency_adjusted(records: DataFrame, scored: DataFrame, matching: MatchingConfig) -> DataFrame:
    """Scores with the model's odds weighed by how common the agreed values are.

    For each field marked ``term_frequency``, a pair holding the same (normalised) value on
    both sides has its odds multiplied by ``u / share(value)``: ``u`` the chance that two
    random records agree on the field, ``share`` the fraction of records holding this
    value. The product over fields is kept within :data:`TF_LIMITS`. Other pairs keep
    their score. Adds ``model_score`` (the score before) and replaces ``score``.
    """
    fields = [f.name for f in matching.fields if f.term_frequency]
    if not fields:
        return scored.withColumn("model_score", F.col("score"))
    u = u_probabilities(records, fields)
    total = records.count()
    out = scored
    factor = F.lit(1.0)
    for name in fields:
        values = records.select("record_key", _norm(F.col(name)).alias("_v"))
        shares = values.filter(F.col("_v").isNotNull()).groupBy("_v").agg((F.count(F.lit(1)) / total).alias("_share"))
        keyed = values.join(shares, "_v", "left")
        out = out.join(
            keyed.select(
                F.col("record_key").alias("left_key"),
                F.col("_v").alias(f"_l_{name}"),
                F.col("_share").alias(f"_s_{name}"),
            ),
            "left_key",
            "left",
        ).join(
            keyed.select(F.col("record_key").alias("right_key"), F.col("_v").alias(f"_r_{name}")), "right_key", "left"
        )
        same = F.col(f"_l_{name}") == F.col(f"_r_{name}")
        factor = factor * F.coalesce(F.when(same, F.lit(u[name]) / F.col(f"_s_{name}")), F.lit(1.0))
    low, high = TF_LIMITS
    factor = F.least(F.greatest(factor, F.lit(low)), F.lit(high))
    p = F.least(F.greatest(F.col("score"), F.lit(1e-9)), F.lit(1 - 1e-9))
    odds = p / (1 - p) * factor
    adjusted = F.when(F.col("score").isNotNull(), odds / (1 + odds))
    return out.select(
        *[c for c in scored.columns if c != "score"], adjusted.alias("score"), F.col("score").alias("model_score")
    )


def rule_edges(
    records: DataFrame,
    matching: MatchingConfig,
    *,
    changed: DataFrame | None = None,
    overshared_before: DataFrame | None = None,
) -> tuple[DataFrame, DataFrame]:
    """Deterministic edges of the configured rules, and the over-shared keys left out.

    With ``changed`` only the edges an incremental run needs
    (:func:`cdi_spark.resolve.rules.deterministic_edges`).
    """
    result = deterministic_edges(
        records,
        rules=matching.rules,
        max_key_frequency=matching.max_key_frequency,
        changed=changed,
        overshared_before=overshared_before,
    )
    return result.edges, result.overshared


def cluster_settings(matching: MatchingConfig) -> ClusterSettings:
    """The clustering thresholds and size guard of ``matching.clustering``."""
    threshold = matching.clustering.model_threshold
    return ClusterSettings(
        min_score={**{r: 0.0 for r in matching.rules}, "model": threshold},
        default_min_score=threshold,
        max_cluster_size=matching.clustering.max_cluster_size,
        protected_rules=tuple(matching.rules),
        cut_levels=tuple(c for c in matching.clustering.cut_levels if c > threshold),
    )


def model_edges(
    spark: SparkSession,
    records: DataFrame,
    pairs: DataFrame,
    matching: MatchingConfig,
    model: ModelRef,
    *,
    scoring: DataFrame | None = None,
) -> DataFrame:
    """Candidate pairs the model links: scored, weighed by value frequencies over all
    ``records``, at or above the threshold and agreeing on enough fields.

    Args:
        scoring: the records Zingg prepares for scoring (default ``records``); pass those
            the pairs name when they are few.

    Returns:
        ``left_key, right_key, rule ("model"), score``.
    """
    scoring = records if scoring is None else scoring
    scored = zingg.score_pairs(spark, scoring, pairs.select("left_key", "right_key"), model)
    scored = frequency_adjusted(records, scored, matching)
    threshold = matching.clustering.model_threshold
    edges = scored.filter(F.col("score") >= threshold).select(
        "left_key", "right_key", F.lit("model").alias("rule"), "score"
    )
    needed = matching.clustering.min_agreeing_fields
    if needed:
        u = u_probabilities(records, [f.name for f in matching.fields])
        edges = compare(records, edges, matching, u).filter(F.col("agree") >= needed)
        edges = edges.select("left_key", "right_key", "rule", "score")
    return edges


def match_edges(
    spark: SparkSession,
    records: DataFrame,
    matching: MatchingConfig,
    model: ModelRef,
    *,
    changed: DataFrame | None = None,
    skipped_before: DataFrame | None = None,
    overshared_before: DataFrame | None = None,
) -> EdgeResult:
    """Candidates, model edges and rule edges over the match frame.

    Args:
        spark: the session.
        records: the match frame (``record_key`` unique): every record, also when
            ``changed`` is given (block sizes, key counts and value frequencies are
            counted over all of them).
        matching: blocking, rules and clustering settings.
        model: a trained model (:func:`train_model` or :func:`latest_model`).
        changed: ``record_key`` of new and changed records: only edges holding one of them
            are made, plus those of blocks and rule keys back under their caps (below).
            None: every edge.
        skipped_before: ``key, value_hash`` of blocks skipped in the previous run.
        overshared_before: ``rule, value_hash`` of rule keys over-shared in the previous run.

    Returns:
        :class:`EdgeResult` (edges cached, candidate pairs persisted).
    """
    require_columns(records, matching, "match records")
    extra = None
    if matching.blocking.zingg:  # a record's hash depends on that record only
        hashes = zingg.block_hashes(spark, records, model)
        extra = hashes.select(
            "record_key", F.lit("zingg").alias("key"), F.col(zingg.HASH_COLUMN).cast("string").alias("value")
        )
    candidates = candidate_pairs(
        records, matching.blocking, extra=extra, changed=changed, skipped_before=skipped_before
    )
    candidates = Candidates(candidates.pairs.persist(), candidates.skipped, candidates.keyed)
    log.info("match: %d candidate pairs", candidates.pairs.count())
    scoring = None
    if changed is not None:  # Zingg prepares only the records it scores; frequencies stay over all
        keys = candidates.pairs.select(F.explode(F.array("left_key", "right_key")).alias("record_key")).distinct()
        scoring = records.join(keys, "record_key", "left_semi")
    linked = model_edges(spark, records, candidates.pairs, matching, model, scoring=scoring)
    rules, overshared = rule_edges(records, matching, changed=changed, overshared_before=overshared_before)
    edges = rules.unionByName(linked).cache()
    return EdgeResult(edges, candidates, overshared)


def match(spark: SparkSession, records: DataFrame, matching: MatchingConfig, model: ModelRef) -> MatchResult:
    """Candidates, model scores, rule edges and clusters over the whole match frame.

    Args:
        spark: the session.
        records: the match frame (``record_key`` unique).
        matching: blocking, rules and clustering settings.
        model: a trained model (:func:`train_model` or :func:`latest_model`).

    Returns:
        :class:`MatchResult` (the edges are cached; unpersist when written).
    """
    found = match_edges(spark, records, matching, model)
    clustering = cluster(records.select("record_key"), found.edges, cluster_settings(matching))
    return MatchResult(
        found.edges, clustering.clusters, clustering.cut_edges, found.candidates, found.overshared, clustering
    )
