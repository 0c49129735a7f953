"""Dates and timestamps from the text each source writes, to ``date`` and UTC ``timestamp``.

Spark built-ins only, and no pattern parser: the text is taken apart with one regular
expression per accepted shape, the parts are range-checked, and ``make_date`` /
``make_timestamp`` build the value. That keeps the result the same whatever the session's
``timeParserPolicy`` or ANSI mode (a bad day such as 31/02 gives null, never an error).

Accepted shapes: ISO 8601 (``2024-01-31``, ``2024-01-31T13:45:00.123+01:00``, ``Z``),
``yyyy/mm/dd``, ``yyyymmdd``, numeric dates in the source's day order (``MDY``: 01/31/2024,
``DMY``: 31.01.2024), English month names (``31 Jan 2024``, ``Jan 31, 2024``), an optional
time with seconds, fraction and AM/PM, an optional offset (``Z``, ``UTC``, ``+01:00``,
``-0500``), and Unix epochs (10 digits: seconds, 13 digits: milliseconds). Text without an
offset is read in the source's time zone. Two-digit years are ambiguous and give null.
"""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import Column
from pyspark.sql import functions as F

from cdi_spark.columns import let
from cdi_spark.standardize.names import squish

DAY_ORDERS = ("YMD", "MDY", "DMY")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_TIME = r"(?:[t ]+(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?\s*([ap]m)?)?"
_ZONE = r"\s*(z|utc|gmt|[+-]\d{2}(?::?\d{2})?)?$"
# Date shapes: regex for the date part and which group holds year, month, day.
_ISO = (r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})", (1, 2, 3))
_COMPACT = (r"^(\d{4})(\d{2})(\d{2})", (1, 2, 3))
_MDY = (r"^(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})", (3, 1, 2))
_DMY = (r"^(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})", (3, 2, 1))
_D_MON_Y = (r"^(\d{1,2})[ -]([a-z]{3})[a-z]*\.?,?[ -](\d{4})", (3, 2, 1))
_MON_D_Y = (r"^([a-z]{3})[a-z]*\.? (\d{1,2})(?:st|nd|rd|th)?,? (\d{4})", (3, 1, 2))


def _shapes(day_order: str) -> list[tuple[str, tuple[int, int, int]]]:
    if day_order not in DAY_ORDERS:
        raise ValueError(f"day_order must be one of {', '.join(DAY_ORDERS)}; got {day_order!r}")
    numeric = {"MDY": [_MDY], "DMY": [_DMY], "YMD": []}[day_order]
    return [_ISO, _COMPACT, *numeric, _D_MON_Y, _MON_D_Y]


def _month(text: Column) -> Column:
    names = F.create_map(*[F.lit(x) for i, m in enumerate(_MONTHS, 1) for x in (m, i)])
    return F.coalesce(F.try_element_at(names, text), text.cast("int"))


def _canonical(text: Column, day_order: str) -> Column:
    """``text`` rewritten as the array ``[y, m, d, h, mi, s, frac, ampm, zone]``.

    Each shape rewrites the text into one canonical ``y|m|d|h|mi|s|frac|ampm|zone`` string
    (one ``regexp_replace``), so the plan holds one small expression per shape.
    """
    canonical = F.lit(None).cast("string")
    for regex, (y, m, d) in reversed(_shapes(day_order)):
        full = regex + _TIME + _ZONE
        template = f"${y}|${m}|${d}|$4|$5|$6|$7|$8|$9"
        canonical = F.when(text.rlike(full), F.regexp_replace(text, full, template)).otherwise(canonical)
    return F.split(canonical, r"\|")


def _parts(f: Column) -> dict[str, Column]:
    """Year, month, day, hour, minute, second (decimal), am/pm and zone of a
    :func:`_canonical` array (bound once with :func:`~cdi_spark.columns.let`)."""

    def num(i: int, default: int | None = None) -> Column:
        value = F.nullif(F.get(f, F.lit(i)), F.lit("")).cast("int")
        return value if default is None else F.coalesce(value, F.lit(default))

    seconds = F.coalesce(F.nullif(F.get(f, F.lit(5)), F.lit("")), F.lit("0"))
    fraction = F.rpad(F.substring(F.get(f, F.lit(6)), 1, 6), 6, "0")
    return {
        "year": num(0),
        "month": _month(F.get(f, F.lit(1))),
        "day": num(2),
        "hour": num(3, 0),
        "minute": num(4, 0),
        "second": F.concat_ws(".", seconds, fraction).cast("decimal(8,6)"),
        "ampm": F.get(f, F.lit(7)),
        "zone": F.get(f, F.lit(8)),
    }


def _hour_24(hour: Column, ampm: Column) -> Column:
    return (
        F.when(ampm == "", hour)
        .when((hour < 1) | (hour > 12), F.lit(None))
        .when(ampm == "am", hour % 12)
        .otherwise(hour % 12 + 12)
    )


def _valid_date(year: Column, month: Column, day: Column) -> Column:
    first = F.make_date(year, F.when(month.between(1, 12), month), F.lit(1))
    return (year >= 1) & month.between(1, 12) & day.between(1, 31) & (day <= F.dayofmonth(F.last_day(first)))


def _zone_id(zone: Column, default_tz: str) -> Column:
    sign_hh_mm = F.regexp_replace(zone, r"^([+-]\d{2}):?(\d{2})?$", "$1:$2")
    offset = F.regexp_replace(sign_hh_mm, r":$", ":00")
    return F.when(zone == "", F.lit(default_tz)).when(zone.isin("z", "utc", "gmt"), "UTC").otherwise(offset)


def _epoch(text: Column) -> Column:
    seconds = F.when(text.rlike(r"^\d{9,10}(\.\d{1,6})?$"), F.timestamp_seconds(text.cast("decimal(18,6)")))
    millis = F.when(text.rlike(r"^\d{12,13}$"), F.timestamp_millis(text.cast("long")))
    return F.coalesce(seconds, millis)


def timestamp_parser(day_order: str = "YMD", timezone: str = "UTC") -> Callable[[Column], Column]:
    """Factory: a ``Column -> Column`` turning a source's date-time text into a timestamp.

    Args:
        day_order: how the source writes numeric dates that are not ISO: ``"MDY"`` (US),
            ``"DMY"`` (European) or ``"YMD"`` (ISO only).
        timezone: the zone of text that carries no offset, as an IANA id ("UTC",
            "Europe/Berlin", "America/New_York").

    Returns:
        A function from a string (or numeric epoch) column to a ``timestamp`` column: the
        instant, null when the text cannot be read (see :func:`unparsed`).

    Example:
        >>> to_ts = timestamp_parser("MDY", "America/New_York")
        >>> df.withColumn("created_at", to_ts(F.col("created")))
        >>> # "01/31/2024 1:45 PM" -> 2024-01-31 18:45:00 UTC
    """
    _shapes(day_order)  # fail early on a bad day order

    def from_parts(text: Column, f: Column) -> Column:
        p = _parts(f)
        hour = _hour_24(p["hour"], p["ampm"])
        ok = (
            _valid_date(p["year"], p["month"], p["day"])
            & hour.between(0, 23)
            & p["minute"].between(0, 59)
            & (p["second"] < 60)
        )
        made = F.make_timestamp(
            p["year"], p["month"], p["day"], hour, p["minute"], p["second"],
            _zone_id(p["zone"], timezone),
        )  # fmt: skip
        return F.coalesce(_epoch(text), F.when(ok, made))

    def parse(col: Column) -> Column:
        return let(
            F.lower(squish(col.cast("string"))),
            lambda text: let(_canonical(text, day_order), lambda f: from_parts(text, f)),
        )

    return parse


def date_parser(day_order: str = "YMD") -> Callable[[Column], Column]:
    """Factory: a ``Column -> Column`` turning a source's date text into a ``date``.

    The calendar date as written: a time or offset after it is ignored
    ("1985-03-12T23:00:00-05:00" -> 1985-03-12), which is what a birth date means. Epochs
    give their UTC date.

    Args:
        day_order: ``"MDY"``, ``"DMY"`` or ``"YMD"``, as in :func:`timestamp_parser`.

    Example:
        >>> df.withColumn("birth_date", date_parser("DMY")(F.col("dob")))  # "31.01.1985"
    """
    _shapes(day_order)

    def from_parts(text: Column, f: Column) -> Column:
        p = _parts(f)
        made = F.when(
            _valid_date(p["year"], p["month"], p["day"]),
            F.make_date(p["year"], p["month"], p["day"]),
        )
        # The UTC day of an epoch, whatever the session's time zone.
        epoch_day = F.floor(F.unix_seconds(_epoch(text)) / 86400).cast("int")
        return F.coalesce(F.date_from_unix_date(epoch_day), made)

    def parse(col: Column) -> Column:
        return let(
            F.lower(squish(col.cast("string"))),
            lambda text: let(_canonical(text, day_order), lambda f: from_parts(text, f)),
        )

    return parse


def unparsed(raw: Column, parsed: Column) -> Column:
    """True where there was text but no value came out: the invalid-value flag.

    Null when the input is null or blank (nothing to judge).

    Example:
        >>> df.withColumn("dob_invalid", unparsed(F.col("dob_raw"), F.col("birth_date")))
    """
    return F.when(squish(raw).isNotNull(), parsed.isNull())
