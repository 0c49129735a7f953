"""Column helpers shared by every stage."""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import Column
from pyspark.sql import functions as F


def let(value: Column, body: Callable[[Column], Column]) -> Column:
    """``body(value)`` with ``value`` evaluated once.

    A cleaner that uses its input many times would copy the input's whole expression into
    every use; nested cleaners then grow the plan exponentially (hundreds of kilobytes of
    plan, tens of seconds of planning for a few rows). A one-element ``transform`` binds the
    value to a lambda variable instead.

    Example:
        >>> let(F.lower(F.trim(F.col("raw"))), lambda text: F.when(text != "", text))
    """
    return F.element_at(F.transform(F.array(value), body), 1)
