"""Currencies (ISO 4217) and money amounts: codes, minor units, reporting currency.

Spark built-ins only. Valid codes come from ``pycountry``; each currency's minor-unit
exponent (JPY 0, USD 2, BHD 3) from the ``iso4217`` package, which ships the ISO 4217
table itself (pycountry has no exponents). Amounts are ``decimal(20,4)``: exact, never
floating point. Reporting-currency rates are read from ``conf/currency_rates.yml`` with
:func:`load_currency_rates`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path

import yaml
from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql.types import DecimalType

from cdi_spark.errors import ConfigError
from cdi_spark.standardize.names import squish

AMOUNT_TYPE = DecimalType(20, 4)
RATE_TYPE = DecimalType(20, 10)
# Symbols and local spellings that name one currency without doubt ("$" and "¥" do not).
CURRENCY_ALIASES = {"€": "EUR", "EURO": "EUR", "EUROS": "EUR", "£": "GBP", "US$": "USD"}


@cache
def currency_codes() -> tuple[str, ...]:
    """Every ISO 4217 alphabetic code pycountry knows."""
    import pycountry

    return tuple(sorted(c.alpha_3 for c in pycountry.currencies))


@cache
def currency_exponents() -> dict[str, int]:
    """``{code: minor-unit exponent}`` from the ISO 4217 table (codes without one left out)."""
    from iso4217 import Currency

    return {c.code: c.exponent for c in Currency if c.exponent is not None}


def _literal_map(values: Mapping[str, object]) -> Column:
    return F.create_map(*[F.lit(x) for pair in sorted(values.items()) for x in pair])


def currency_code(col: Column) -> Column:
    """ISO 4217 code, upper case; null when not a known code: " usd " -> "USD", "€" -> "EUR".

    Example:
        >>> df.withColumn("currency", currency_code(F.col("currency")))
    """
    text = F.upper(squish(col))
    text = F.coalesce(F.try_element_at(_literal_map(CURRENCY_ALIASES), text), text)
    return F.when(text.isin(*currency_codes()), text)


def minor_to_amount(minor_units: Column, currency: Column) -> Column:
    """Decimal amount from an integer count of minor units, by the currency's exponent.

    1999 USD -> 19.99, 1999 JPY -> 1999, 1999 BHD -> 1.999. Null when the amount or the
    currency is null or the currency has no exponent (XAU, XXX).

    Args:
        minor_units: integer (or integer text) amount in cents, pence, fils ...
        currency: a code cleaned with :func:`currency_code`.

    Example:
        >>> df.withColumn("amount", minor_to_amount(F.col("amount_cents"), F.col("currency")))
    """
    exponent = F.try_element_at(_literal_map(currency_exponents()), currency)
    minor = minor_units.cast(DecimalType(20, 0))
    return (minor / F.pow(F.lit(10), exponent).cast(DecimalType(5, 0))).cast(AMOUNT_TYPE)


def to_reporting_currency(amount: Column, currency: Column, rates: Mapping[str, Decimal | float | str]) -> Column:
    """Amount converted with ``rates`` (reporting units per one unit of ``currency``).

    Rounded half-even to 4 places; null when the currency has no rate, never a guess.

    Args:
        amount: a decimal amount (e.g. from :func:`minor_to_amount`).
        currency: a code cleaned with :func:`currency_code`.
        rates: ``CurrencyRates.rates`` from :func:`load_currency_rates`, or any mapping.

    Example:
        >>> rates = load_currency_rates("conf/currency_rates.yml")
        >>> df.withColumn("amount_eur", to_reporting_currency(F.col("amount"),
        ...     F.col("currency"), rates.rates))
    """
    table = {code: F.lit(Decimal(str(rate))).cast(RATE_TYPE) for code, rate in rates.items()}
    lookup = F.create_map(*[x for code in sorted(table) for x in (F.lit(code), table[code])])
    rate = F.try_element_at(lookup, currency)
    return F.bround(amount.cast(AMOUNT_TYPE) * rate, 4).cast(AMOUNT_TYPE)


@dataclass(frozen=True)
class CurrencyRates:
    """A rates table: ``rates[code]`` reporting-currency units for one unit of ``code``."""

    reporting_currency: str
    as_of: dt.date
    rates: Mapping[str, Decimal]


def load_currency_rates(path: str | Path) -> CurrencyRates:
    """Read and check a rates file such as ``conf/currency_rates.yml``.

    Raises:
        ConfigError: missing or unknown keys, an unknown currency code, a rate that is not
            a positive number, or a reporting currency whose own rate is not 1.
    """
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    expected = {"reporting_currency", "as_of", "rates"}
    if not isinstance(data, dict) or set(data) != expected:
        found = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise ConfigError(path, "", f"expected keys {sorted(expected)}; found {found}")
    if not isinstance(data["as_of"], dt.date):
        raise ConfigError(path, "as_of", f"expected a date like 2024-12-31; found {data['as_of']!r}")
    codes = set(currency_codes())
    reporting = str(data["reporting_currency"]).upper()
    if reporting not in codes:
        raise ConfigError(path, "reporting_currency", f"{reporting!r} is not an ISO 4217 code")
    rates: dict[str, Decimal] = {}
    for code, value in (data["rates"] or {}).items():
        key = f"rates.{code}"
        if str(code).upper() not in codes:
            raise ConfigError(path, key, f"{code!r} is not an ISO 4217 code")
        try:
            rate = Decimal(str(value))
        except InvalidOperation:
            rate = Decimal(-1)
        if not rate > 0:
            raise ConfigError(path, key, f"expected a positive number; found {value!r}")
        rates[str(code).upper()] = rate
    if rates.get(reporting) != 1:
        raise ConfigError(path, f"rates.{reporting}", "the reporting currency's rate must be 1")
    return CurrencyRates(reporting, data["as_of"], rates)
