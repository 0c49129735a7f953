"""Source-system identifiers, derived from record keys (unique by construction)."""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F


def b36(n: Column, width: int) -> Column:
    """``n`` in base 36, upper case, left-padded with zeros to ``width``."""
    return F.lpad(F.upper(F.conv(n.cast("string"), 10, 36)), width, "0")


def salesforce_id(prefix: str, n: Column) -> Column:
    """An 18-character Salesforce-style id: key prefix, pod, base-36 number, suffix."""
    check = F.upper(F.substring(F.sha2(n.cast("string"), 256), 1, 3))
    return F.concat(F.lit(prefix), F.lit("5g"), b36(n, 10), check)


def stripe_id(prefix: str, n: Column) -> Column:
    """A Stripe-style id such as ``cus_9f3a0000002K1Q``."""
    return F.concat(F.lit(prefix), F.substring(F.sha2(n.cast("string"), 256), 1, 6), b36(n, 8))


def uuid(*keys: Column) -> Column:
    """A UUID-shaped string hashed from ``keys``."""
    h = F.sha2(F.concat_ws("/", *[k.cast("string") for k in keys]), 256)
    return F.concat_ws("-", *[F.substring(h, s, n) for s, n in
                              ((1, 8), (9, 4), (13, 4), (17, 4), (21, 12))])


def iso_ms(epoch_s: Column) -> Column:
    """``2021-03-04T12:34:56.000Z`` (the session time zone is UTC)."""
    return F.date_format(F.timestamp_seconds(epoch_s), "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'")


def iso_s(epoch_s: Column) -> Column:
    """``2021-03-04T12:34:56Z``."""
    return F.date_format(F.timestamp_seconds(epoch_s), "yyyy-MM-dd'T'HH:mm:ss'Z'")


def us_datetime(epoch_s: Column) -> Column:
    """``03/04/2021 12:34`` (Shopify's US order)."""
    return F.date_format(F.timestamp_seconds(epoch_s), "MM/dd/yyyy HH:mm")
