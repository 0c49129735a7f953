"""Candidate pairs from blocking keys: which records are worth comparing at all.

Comparing every record with every other is n²; blocking compares only records that share
the value of at least one *blocking key* (``blocking.keys`` in ``matching.yml``). Several
narrow keys are better than one wide key: a typo in the surname hides a true pair from
``family_birth`` but not from ``given_birth``. Each key is a list of parts, each a column or
``fn(column[, n])`` (see :class:`cdi_spark.config.BlockingKey`); a record whose parts are
not all present gets no value for that key.

Everything is an equi-join on ``(key, value)``, never a cross join. A value shared by more
than ``max_block_size`` records (a default date of birth, "john smith") would make
n(n-1)/2 pairs of mostly strangers: it is reported in :attr:`Candidates.skipped` and not
used, and the other keys still pair those records where they agree on something narrower.

Extra keys can be supplied as ``record_key, key, value`` rows: the match model's learnt
Zingg block hashes come in that way (see :func:`cdi_spark.resolve.zingg.block_hashes`).

Incremental runs (:mod:`cdi_spark.resolve.incremental`) pass ``changed`` record keys: only
pairs holding at least one of them are made, by joining the changed records' key values
against every record's (still an equi-join on ``(key, value)``). Block sizes are always
counted over every record, so a pair is a candidate in an incremental run exactly when it
would be one in a full run. Pairs of unchanged records can still change their standing when
a block crosses the cap: blocks skipped before (``skipped_before``, by :func:`value_hash`)
that are back under the cap give all their pairs again; blocks that grew over it are in
``skipped`` and :func:`pairs_in_usable_blocks` tells which old pairs are still candidates.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from cdi_spark.config import BlockingConfig, BlockingKey, parse_blocking_part
from cdi_spark.errors import MissingColumnError

log = logging.getLogger(__name__)

KEYED_COLUMNS = ("record_key", "key", "value")
PAIR_COLUMNS = ("left_key", "right_key", "blocking_keys")
_SEP = "\u001f"  # unit separator: never inside a standardized value


@dataclass(frozen=True)
class Candidates:
    """Candidate pairs and what blocking left out.

    Attributes:
        pairs: ``left_key < right_key`` and ``blocking_keys`` (sorted names of the keys that
            paired them), one row per pair.
        skipped: ``key, value, records``: key values shared by more than ``max_block_size``
            records, not used.
        keyed: ``record_key, key, value``: every record's blocking values.
    """

    pairs: DataFrame
    skipped: DataFrame
    keyed: DataFrame


def _present(col: Column) -> Column:
    text = F.trim(col.cast("string"))
    return F.when(F.length(text) > 0, text)


def part_value(part: str) -> Column:
    """The value of one blocking-key part (null when its column is null or empty)."""
    parsed = parse_blocking_part(part)
    if parsed is None:  # config validation rejects these first
        raise ValueError(f"not a blocking key part: {part!r}")
    fn, args = parsed
    value = _present(F.col(args[0]))
    if fn is None:
        return value
    if fn == "soundex":
        return F.when(value.rlike("[A-Za-z]"), F.soundex(value))
    if fn == "prefix":
        return F.substring(value, 1, int(args[1]))
    if fn == "suffix":
        return F.substring(value, -int(args[1]), int(args[1]))
    if fn == "year":
        return F.when(value.rlike(r"^\d{4}"), F.substring(value, 1, 4))
    if fn == "digits":
        return _present(F.regexp_replace(value, r"[^0-9]", ""))
    if fn == "local_part":
        return _present(F.substring_index(value, "@", 1))
    if fn == "sorted":
        other = _present(F.col(args[1]))
        return F.when(
            value.isNotNull() & other.isNotNull(), F.concat_ws(" ", F.least(value, other), F.greatest(value, other))
        )
    raise ValueError(f"blocking function {fn!r} is not implemented")  # pragma: no cover - config lists them


def value_hash(value: Column) -> Column:
    """A key value as it is remembered between runs: its SHA-256 (over-shared values are
    common names and dates; the hash is enough to recognise them and is not the value)."""
    return F.sha2(value.cast("string"), 256)


def key_value(key: BlockingKey) -> Column:
    """A record's value for a whole key: its parts joined, null unless every part is present."""
    parts = [part_value(p) for p in key.parts]
    present = reduce(lambda a, b: a & b, (p.isNotNull() for p in parts))
    return F.when(present, F.concat_ws(_SEP, *parts))


def keyed_records(records: DataFrame, keys: tuple[BlockingKey, ...]) -> DataFrame:
    """``record_key, key, value`` for every record and key it has a value for."""
    missing = sorted({c for k in keys for c in k.columns} - set(records.columns))
    if missing:
        raise MissingColumnError("blocking keys", missing, records.columns)
    values = F.array(*(F.struct(F.lit(k.name).alias("key"), key_value(k).alias("value")) for k in keys))
    return (
        records.select("record_key", F.explode(values).alias("kv"))
        .select("record_key", "kv.key", "kv.value")
        .filter(F.col("value").isNotNull())
    )


def candidate_pairs(
    records: DataFrame,
    blocking: BlockingConfig,
    *,
    extra: DataFrame | None = None,
    changed: DataFrame | None = None,
    skipped_before: DataFrame | None = None,
) -> Candidates:
    """Pairs of records that share a value of any blocking key.

    Args:
        records: ``record_key`` (unique) and the columns the keys read: every record, also
            in an incremental run (block sizes are counted over all of them).
        blocking: keys and the block size cap.
        extra: more ``record_key, key, value`` rows (e.g. Zingg block hashes), same cap.
        changed: ``record_key`` of new and changed records: only pairs holding one of them
            are made (an incremental run). None: every pair.
        skipped_before: ``key, value_hash`` of blocks the previous run skipped; with
            ``changed``, every pair of those blocks that are back under the cap is made too.

    Returns:
        :class:`Candidates`; nothing is computed until they are used.
    """
    keyed = keyed_records(records, blocking.keys)
    if extra is not None:
        keyed = keyed.unionByName(extra.select(*KEYED_COLUMNS))
    sizes = keyed.groupBy("key", "value").agg(F.count(F.lit(1)).alias("records"))
    skipped = sizes.filter(F.col("records") > blocking.max_block_size)
    usable = keyed.join(
        sizes.filter((F.col("records") > 1) & (F.col("records") <= blocking.max_block_size)).select("key", "value"),
        ["key", "value"],
    )
    if changed is None:
        focus, other = usable.alias("l"), usable.alias("r")
        apart = F.col("l.record_key") < F.col("r.record_key")
    else:
        focus = usable.join(changed.select("record_key"), "record_key", "left_semi")
        if skipped_before is not None:
            reopened = usable.withColumn("value_hash", value_hash(F.col("value"))).join(
                skipped_before.select("key", "value_hash"), ["key", "value_hash"], "left_semi"
            )
            focus = focus.unionByName(reopened.drop("value_hash"))
        focus, other = focus.alias("l"), usable.alias("r")
        apart = F.col("l.record_key") != F.col("r.record_key")
    joined = focus.join(
        other, (F.col("l.key") == F.col("r.key")) & (F.col("l.value") == F.col("r.value")) & apart
    )
    left = F.least("l.record_key", "r.record_key").alias("left_key")
    right = F.greatest("l.record_key", "r.record_key").alias("right_key")
    pairs = joined.groupBy(left, right).agg(F.array_sort(F.collect_set(F.col("l.key"))).alias("blocking_keys"))
    return Candidates(pairs, skipped, keyed)


def pairs_in_usable_blocks(pairs: DataFrame, candidates: Candidates) -> DataFrame:
    """The ``left_key, right_key`` of ``pairs`` that share a block not skipped: those that
    are still candidates (an incremental run checks old model edges this way when a block
    they shared has grown over the cap)."""
    usable = candidates.keyed.join(candidates.skipped.select("key", "value"), ["key", "value"], "left_anti")
    left = usable.withColumnRenamed("record_key", "left_key")
    right = usable.withColumnRenamed("record_key", "right_key")
    shared = pairs.select("left_key", "right_key").join(left, "left_key").join(right, ["right_key", "key", "value"])
    return shared.select("left_key", "right_key").distinct()


def pairs_per_key(candidates: Candidates) -> dict[str, int]:
    """How many candidate pairs each key proposed (a pair counts for every key that made it)."""
    rows = candidates.pairs.select(F.explode("blocking_keys").alias("key")).groupBy("key").count().collect()
    return {r["key"]: r["count"] for r in sorted(rows, key=lambda r: r["key"])}
