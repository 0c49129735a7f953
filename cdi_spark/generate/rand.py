"""Deterministic per-row pseudo-randomness from hashing.

Every random draw is ``xxhash64(seed, purpose, key...)`` mapped to ``[0, 1)``, so a value
depends only on the seed, what it is for and the row's key, never on partitioning, task
order or the number of executors. Two draws with different ``purpose`` strings are
independent for practical purposes.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column
from pyspark.sql import functions as F

from cdi_spark.columns import let

_BITS = 1 << 53


class Draws:
    """Column factories for hash-based draws bound to one seed.

    Args:
        seed: the generator's seed; folded into every hash.

    Example:
        >>> r = Draws(42)
        >>> df.withColumn("u", r.uniform("country", F.col("person_id")))
    """

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)

    def hash(self, purpose: str, *keys: Column) -> Column:
        """A 64-bit hash of (seed, purpose, keys)."""
        return F.xxhash64(F.lit(self.seed), F.lit(purpose), *keys)

    def uniform(self, purpose: str, *keys: Column) -> Column:
        """A double in [0, 1)."""
        return F.pmod(self.hash(purpose, *keys), F.lit(_BITS)).cast("double") / float(_BITS)

    def chance(self, p: float | Column, purpose: str, *keys: Column) -> Column:
        """True with probability ``p``."""
        return self.uniform(purpose, *keys) < p

    def randint(self, low: int, high: int, purpose: str, *keys: Column) -> Column:
        """An integer in [low, high] (both ends included)."""
        span = high - low + 1
        return (F.floor(self.uniform(purpose, *keys) * span) + low).cast("long")

    def pick(self, values: Column, purpose: str, *keys: Column) -> Column:
        """A uniformly chosen element of an array column (null for an empty array)."""
        u = self.uniform(purpose, *keys)
        return let(values, lambda v: F.when(
            F.size(v) > 0, F.element_at(v, F.floor(u * F.size(v)).cast("int") + 1)))

    def weighted(self, choices: Sequence[tuple[object, float]], purpose: str, *keys: Column
                 ) -> Column:
        """One of ``choices`` [(value, weight), ...] as a literal-valued column."""
        total = float(sum(w for _, w in choices))
        u = self.uniform(purpose, *keys)
        expr = None
        acc = 0.0
        for value, weight in choices[:-1]:
            acc += weight / total
            expr = (F.when(u < acc, F.lit(value)) if expr is None
                    else expr.when(u < acc, F.lit(value)))
        last = F.lit(choices[-1][0])
        return last if expr is None else expr.otherwise(last)

    def digits(self, n: int, purpose: str, *keys: Column) -> Column:
        """A string of ``n`` pseudo-random decimal digits (leading zeros kept)."""
        parts = []
        for start in range(0, n, 15):
            width = min(15, n - start)
            value = F.pmod(self.hash(f"{purpose}#{start}", *keys), F.lit(10**width))
            parts.append(F.lpad(value.cast("string"), width, "0"))
        return F.concat(*parts) if len(parts) > 1 else parts[0]
