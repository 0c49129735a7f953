"""Noise that real exports carry, as ``Column -> Column`` functions.

Each function takes the clean value, the record's key column and a :class:`Draws`, and
returns the value as a system would hold it: typos, case and whitespace, nicknames, email
variants, phone formats, abbreviated streets, missing values. Only phone formatting needs
a library (``phonenumbers``), in a vectorised pandas UDF; the rest is Spark built-ins.
"""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql.functions import pandas_udf
from pyspark.sql.types import StringType

from cdi_spark.columns import let
from cdi_spark.generate import vocab
from cdi_spark.generate.rand import Draws

PHONE_STYLES = ("E164", "INTERNATIONAL", "NATIONAL", "FREE_DASH", "FREE_DOTS", "DIGITS")


def maybe_null(col: Column, p: float, r: Draws, purpose: str, key: Column) -> Column:
    """``col``, or null with probability ``p`` (a field the user left empty)."""
    return F.when(~r.chance(p, f"null_{purpose}", key), col)


def typo(value: Column, p: float, r: Draws, purpose: str, key: Column) -> Column:
    """With probability ``p``: drop, double or swap one character (never the first)."""
    return let(value, lambda col: _typo(col, p, r, purpose, key))


def _typo(col: Column, p: float, r: Draws, purpose: str, key: Column) -> Column:
    n = F.length(col)
    pos = F.greatest(F.lit(2), r.randint(2, 12, f"typo_pos_{purpose}", key) % (n + 1))
    kind = r.randint(0, 2, f"typo_kind_{purpose}", key)
    head = col.substr(F.lit(1), pos - 1)
    ch = col.substr(pos, F.lit(1))
    nxt = col.substr(pos + 1, F.lit(1))
    tail = col.substr(pos + 1, F.lit(1000))
    tail2 = col.substr(pos + 2, F.lit(1000))
    changed = (F.when(kind == 0, F.concat(head, tail))
               .when(kind == 1, F.concat(head, ch, ch, tail))
               .otherwise(F.concat(head, nxt, ch, tail2)))
    return F.when(r.chance(p, f"typo_{purpose}", key) & (n >= 4), changed).otherwise(col)


def case_and_space(value: Column, p: float, r: Draws, purpose: str, key: Column) -> Column:
    """With probability ``p``: upper, lower, padded or doubled inner spaces."""
    return let(value, lambda col: _case_and_space(col, p, r, purpose, key))


def _case_and_space(col: Column, p: float, r: Draws, purpose: str, key: Column) -> Column:
    kind = r.randint(0, 3, f"case_kind_{purpose}", key)
    changed = (F.when(kind == 0, F.upper(col)).when(kind == 1, F.lower(col))
               .when(kind == 2, F.concat(F.lit(" "), col, F.lit("  ")))
               .otherwise(F.regexp_replace(col, " ", "  ")))
    return F.when(r.chance(p, f"case_{purpose}", key), changed).otherwise(col)


def nickname(first: Column, p: float, r: Draws, key: Column) -> Column:
    """A known nickname (Robert -> Bob) with probability ``p`` when one exists."""
    return let(first, lambda f: let(
        r.pick(vocab.lookup("nickname", f), "nick_pick", key),
        lambda nick: F.when(r.chance(p, "nick", key) & nick.isNotNull(), nick).otherwise(f)))


def email_variant(value: Column, p: float, r: Draws, purpose: str, key: Column) -> Column:
    """With probability ``p``: a gmail dot, a plus-tag, upper/title case, or a domain typo."""
    return let(value, lambda email: _email_variant(email, p, r, purpose, key))


def _email_variant(email: Column, p: float, r: Draws, purpose: str, key: Column) -> Column:
    local = F.substring_index(email, "@", 1)
    domain = F.substring_index(email, "@", -1)
    kind = r.randint(0, 4, f"email_kind_{purpose}", key)
    dotted = F.when(domain == "gmail.com", F.concat(
        local.substr(F.lit(1), F.lit(2)), F.lit("."), local.substr(F.lit(3), F.lit(200)))
    ).otherwise(local)
    tag = r.pick(vocab.str_array(["news", "shop", "promo", "work", "2019"]), f"tag_{purpose}", key)
    changed = (F.when(kind == 0, F.concat(dotted, F.lit("@"), domain))
               .when(kind == 1, F.concat(local, F.lit("+"), tag, F.lit("@"), domain))
               .when(kind == 2, F.upper(email))
               .when(kind == 3, F.concat(F.initcap(local), F.lit("@"), F.upper(domain)))
               .otherwise(F.concat(local, F.lit("@"),
                                   F.regexp_replace(domain, r"^(gm)ail|^(hot)mail", "$1$2mial"))))
    return F.when(r.chance(p, f"email_{purpose}", key), changed).otherwise(email)


def street(line1: Column, p_abbrev: float, r: Draws, purpose: str, key: Column) -> Column:
    """The street line, abbreviated (Street -> St, straße -> str.) with probability ``p``."""
    short = line1
    for pattern, repl in vocab.STREET_REGEX_ABBREV:
        short = F.regexp_replace(short, pattern, repl)
    return F.when(r.chance(p_abbrev, f"abbr_{purpose}", key), short).otherwise(line1)


def country_as(table: str, country: Column, r: Draws, purpose: str, key: Column) -> Column:
    """The country the way a system spells it (a pick from ``vocab.tables()[table]``)."""
    return r.pick(vocab.lookup(table, country), f"country_{purpose}", key)


def phone_style(r: Draws, purpose: str, key: Column, styles: tuple[str, ...] = PHONE_STYLES
                ) -> Column:
    """A phone format name drawn uniformly from ``styles``."""
    return r.pick(vocab.str_array(styles), f"phone_style_{purpose}", key)


def _format_one(region: str, nsn: str, style: str) -> str | None:
    import phonenumbers as pn

    if not isinstance(nsn, str) or not nsn or not isinstance(region, str):
        return None
    number = pn.PhoneNumber(country_code=pn.country_code_for_region(region),
                            national_number=int(nsn))
    if style in ("E164", "INTERNATIONAL", "NATIONAL"):
        return pn.format_number(number, getattr(pn.PhoneNumberFormat, style))
    intl = pn.format_number(number, pn.PhoneNumberFormat.INTERNATIONAL)
    if style == "FREE_DASH":
        return intl.replace(" ", "-")
    national = pn.format_number(number, pn.PhoneNumberFormat.NATIONAL)
    if style == "FREE_DOTS":
        return "".join(c if c.isdigit() else "." for c in national).strip(".").replace("..", ".")
    return "".join(c for c in national if c.isdigit())


@pandas_udf(StringType())
def _format_phone_udf(batches: Iterator[tuple[pd.Series, pd.Series, pd.Series]]
                      ) -> Iterator[pd.Series]:
    for region, nsn, style in batches:
        yield pd.Series([_format_one(a, b, c) for a, b, c in zip(region, nsn, style, strict=True)],
                        dtype=object)


def phone(country: Column, nsn: Column, style: Column) -> Column:
    """Format a national number (``nsn``) of ``country`` in ``style`` with phonenumbers."""
    return _format_phone_udf(country, nsn, style)
