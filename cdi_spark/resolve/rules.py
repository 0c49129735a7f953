"""Deterministic match edges: cheap, exact, explainable links on strong identifiers.

Rules (each edge records the rule that made it):

* ``email``: same email matching key (plus-tag and provider-dot free); role and shared
  mailboxes (info@, sales@ ...) and invalid addresses never count;
* ``phone``: same E.164 number;
* ``reference``: a record names another source's record id (billing ``metadata.crm_id``
  -> the CRM contact).

Strong identifiers are shared by families (a household email, a landline), so ``email``
and ``phone`` edges also need compatible given names (equal nickname-canonical keys, one
missing, one an initial of the other, or one typo apart in a name of six letters or more);
``reference`` edges are taken as the source system states them.

Every rule is an equi-join on its key, never a cross join. A key shared by more than
``max_key_frequency`` records (a default phone such as 0000000000, a test email) is
detected, reported in :class:`RulesResult.overshared` and not used: one bad key would
otherwise pull thousands of records into one cluster.

An incremental run (:mod:`cdi_spark.resolve.incremental`) passes ``changed`` record keys:
only edges holding one of them are made, with key counts still taken over every record, plus
every edge of keys that were over-shared before (``overshared_before``) and are not any more.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from cdi_spark.resolve.blocking import value_hash

log = logging.getLogger(__name__)

EDGE_COLUMNS = ("left_key", "right_key", "rule", "score")


@dataclass(frozen=True)
class RulesResult:
    """Edges and the keys left out.

    Attributes:
        edges: left_key < right_key, rule, score (1.0); one row per pair and rule.
        overshared: rule, key, records: keys shared by too many records (not used).
    """

    edges: DataFrame
    overshared: DataFrame


def compatible_given_names(left: Column, right: Column) -> Column:
    """True when two given-name keys can belong to one person.

    Equal keys, a missing side, an initial ("j" and "john"), or one edit apart for names
    of six letters or more ("jonathon" and "jonathan"; "mary" and "mark" are two people).
    """
    shorter = F.least(F.length(left), F.length(right))
    return (
        left.isNull()
        | right.isNull()
        | (left == right)
        | ((shorter == 1) & (F.substring(left, 1, 1) == F.substring(right, 1, 1)))
        | ((shorter >= 6) & (F.levenshtein(left, right) <= 1))
    )


def _key_pairs(
    records: DataFrame,
    rule: str,
    key: Column,
    max_key_frequency: int,
    changed: DataFrame | None,
    overshared_before: DataFrame | None,
) -> tuple[DataFrame, DataFrame]:
    given = F.col("given_name_key") if "given_name_key" in records.columns else F.lit(None).cast("string")
    keyed = records.select("record_key", given.alias("given_name_key"), key.alias("_key")).filter(
        F.col("_key").isNotNull()
    )
    counts = keyed.groupBy("_key").agg(F.count(F.lit(1)).alias("records"))
    overshared = counts.filter(F.col("records") > max_key_frequency)
    usable = keyed.join(overshared.select("_key"), "_key", "left_anti")
    if changed is None:
        focus, apart = usable, F.col("l.record_key") < F.col("r.record_key")
    else:
        focus, apart = _focus(usable, rule, changed, overshared_before), F.col("l.record_key") != F.col("r.record_key")
    left, right = focus.alias("l"), usable.alias("r")
    pairs = left.join(right, (F.col("l._key") == F.col("r._key")) & apart)
    pairs = pairs.filter(compatible_given_names(F.col("l.given_name_key"), F.col("r.given_name_key")))
    edges = pairs.select(
        F.least("l.record_key", "r.record_key").alias("left_key"),
        F.greatest("l.record_key", "r.record_key").alias("right_key"),
        F.lit(rule).alias("rule"),
    )
    return edges, overshared.select(F.lit(rule).alias("rule"), F.col("_key").alias("key"), "records")


def _focus(usable: DataFrame, rule: str, changed: DataFrame, overshared_before: DataFrame | None) -> DataFrame:
    """Keyed rows whose pairs an incremental run makes: changed records, and records holding
    a key that was over-shared before and is usable now."""
    focus = usable.join(changed.select("record_key"), "record_key", "left_semi")
    if overshared_before is None:
        return focus
    before = overshared_before.filter(F.col("rule") == rule).select("value_hash")
    reopened = usable.withColumn("value_hash", value_hash(F.col("_key"))).join(before, "value_hash", "left_semi")
    return focus.unionByName(reopened.drop("value_hash"))


def _reference_pairs(records: DataFrame, changed: DataFrame | None) -> DataFrame:
    refs = records.filter(F.col("ref_record_key").isNotNull()).select("record_key", "ref_record_key")
    known = records.select(F.col("record_key").alias("ref_record_key"))
    linked = refs.join(known, "ref_record_key")  # references to records we do not hold are dropped
    if changed is not None:  # either side may be the changed one
        keys = changed.select("record_key")
        linked = linked.join(keys, "record_key", "left_semi").unionByName(
            linked.join(keys.withColumnRenamed("record_key", "ref_record_key"), "ref_record_key", "left_semi")
        )
    return linked.select(
        F.least("record_key", "ref_record_key").alias("left_key"),
        F.greatest("record_key", "ref_record_key").alias("right_key"),
        F.lit("reference").alias("rule"),
    )


RULE_COLUMNS = {"email": ("email_key",), "phone": ("phone_e164",), "reference": ("ref_record_key",)}


def rule_input_columns(rules: tuple[str, ...]) -> tuple[str, ...]:
    """Every column the given rules may read (those a record lacks are simply not used)."""
    cols = ["given_name_key", *(c for r in rules for c in RULE_COLUMNS.get(r, ()))]
    if "email" in rules:
        cols += ["email_valid", "email_is_role"]
    return tuple(dict.fromkeys(cols))


def _shared_keys(records: DataFrame, rules: tuple[str, ...]) -> dict[str, Column]:
    """rule -> the key column of the shared-key rules (email, phone) the records can use."""
    cols = set(records.columns)
    keys: dict[str, Column] = {}
    if "email" in rules and "email_key" in cols:
        email = F.col("email_key")
        if "email_valid" in cols:
            email = F.when(F.col("email_valid"), email)
        if "email_is_role" in cols:
            email = F.when(~F.coalesce(F.col("email_is_role"), F.lit(False)), email)
        keys["email"] = email
    if "phone" in rules and "phone_e164" in cols:
        keys["phone"] = F.col("phone_e164")
    return keys


def rule_keys(records: DataFrame, rules: tuple[str, ...]) -> DataFrame:
    """``record_key, rule, value_hash``: each record's key of each shared-key rule (hashed as
    :class:`RulesResult.overshared` keys are remembered between runs)."""
    spark = records.sparkSession
    out = spark.createDataFrame([], "record_key string, rule string, value_hash string")
    for rule, key in _shared_keys(records, rules).items():
        keyed = records.select("record_key", F.lit(rule).alias("rule"), value_hash(key).alias("value_hash"))
        out = out.unionByName(keyed.filter(F.col("value_hash").isNotNull()))
    return out


def deterministic_edges(
    records: DataFrame,
    *,
    rules: tuple[str, ...] = ("email", "phone", "reference"),
    max_key_frequency: int = 50,
    changed: DataFrame | None = None,
    overshared_before: DataFrame | None = None,
) -> RulesResult:
    """All deterministic edges over canonical records.

    Args:
        records: ``silver.customer_records`` rows, or any match frame: record_key, and
            given_name_key, email_key, email_valid, email_is_role, phone_e164,
            ref_record_key where present. A rule whose key column is absent makes no edges
            (logged); without ``given_name_key`` names count as compatible; without
            ``email_valid``/``email_is_role`` every email key counts.
        rules: which rules to apply (``email``, ``phone``, ``reference``).
        max_key_frequency: keys shared by more records than this are reported, not used.
        changed: ``record_key`` of new and changed records: only edges holding one of them
            are made (an incremental run; ``records`` are still every record). None: all.
        overshared_before: ``rule, value_hash`` of keys over-shared in the previous run;
            with ``changed``, every edge of those keys usable now is made too.

    Returns:
        Edges (score 1.0) and the over-shared keys (over every record).
    """
    cols = set(records.columns)
    unknown = [r for r in rules if r not in RULE_COLUMNS]
    if unknown:
        raise ValueError(f"unknown rules {unknown}; expected some of {', '.join(RULE_COLUMNS)}")
    usable = [r for r in rules if set(RULE_COLUMNS[r]) <= cols]
    for rule in sorted(set(rules) - set(usable)):
        log.info("rules: %s makes no edges: the records have no %s column", rule, RULE_COLUMNS[rule][0])
    spark = records.sparkSession
    edges = spark.createDataFrame([], "left_key string, right_key string, rule string")
    overshared = spark.createDataFrame([], "rule string, key string, records long")
    for rule, key in _shared_keys(records, tuple(usable)).items():
        e, o = _key_pairs(records, rule, key, max_key_frequency, changed, overshared_before)
        edges, overshared = edges.unionByName(e), overshared.unionByName(o)
    if "reference" in usable:
        edges = edges.unionByName(_reference_pairs(records, changed))
    edges = edges.dropDuplicates(["left_key", "right_key", "rule"]).withColumn("score", F.lit(1.0))
    return RulesResult(edges.select(*EDGE_COLUMNS), overshared)
