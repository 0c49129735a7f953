"""Phone numbers to E.164 with ``phonenumbers``, in a vectorised pandas UDF.

Parsing phone numbers needs libphonenumber's metadata, so this is the one cleaner that
must run Python: :func:`parse_phone` is an ``Iterator``-form pandas UDF over Arrow batches
that parses each distinct (raw, region) pair of a batch once. A number that does not parse,
or parses but is not a valid number for its region, keeps its raw text and is flagged;
it is never completed or guessed.
"""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql.functions import pandas_udf
from pyspark.sql.types import BooleanType, StringType, StructField, StructType

from cdi_spark.standardize.names import squish

PHONE_TYPE = StructType(
    [
        StructField("e164", StringType()),
        StructField("is_valid", BooleanType()),
        StructField("raw", StringType()),
    ]
)


def _e164(raw: str | None, region: str | None) -> tuple[str | None, bool | None]:
    import phonenumbers

    if raw is None:
        return None, None
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None, False
    if not phonenumbers.is_valid_number(number):
        return None, False
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), True


def _none_if_missing(values: pd.Series) -> pd.Series:
    return values.astype(object).where(values.notna(), None)


@pandas_udf(PHONE_TYPE)
def _parse_phones(batches: Iterator[tuple[pd.Series, pd.Series]]) -> Iterator[pd.DataFrame]:
    for raw, region in batches:
        pairs = pd.DataFrame({"raw": _none_if_missing(raw), "region": _none_if_missing(region)})
        # Exports repeat numbers (household lines, switchboards): parse each pair once.
        parsed = {key: _e164(*key) for key in pairs.drop_duplicates().itertuples(index=False, name=None)}
        results = [parsed[key] for key in pairs.itertuples(index=False, name=None)]
        yield pd.DataFrame(
            {
                "e164": [r[0] for r in results],
                "is_valid": pd.array([r[1] for r in results], dtype="boolean"),
                "raw": pairs["raw"],
            }
        )


def parse_phone(raw: Column, region: Column | str | None = None) -> Column:
    """Parse a phone number into struct(e164, is_valid, raw).

    ``raw`` is squished first (blank becomes null); ``region`` is the record's country as
    ISO 3166-1 alpha-2 (clean it with :func:`cdi_spark.standardize.places.country_to_alpha2`)
    and is used only for numbers written without a "+" country code. Valid numbers get
    their E.164 form; invalid or unparseable ones get ``e164`` null and ``is_valid`` false,
    their text kept in ``raw``; a null number gives struct(null, null, null).

    Args:
        raw: the phone number as written.
        region: an alpha-2 column, a constant region such as ``"US"``, or None (then only
            numbers with a "+" country code can be valid).

    Example:
        >>> p = parse_phone(F.col("phone"), F.col("country"))
        >>> df.withColumns({"phone_e164": p["e164"], "phone_valid": p["is_valid"]})
        >>> # ("(202) 456-1111", "US") -> ("+12024561111", True, "(202) 456-1111")
    """
    if region is None:
        region_col = F.lit(None).cast("string")
    elif isinstance(region, str):
        region_col = F.lit(region)
    else:
        region_col = region
    return _parse_phones(squish(raw), F.upper(squish(region_col)))
