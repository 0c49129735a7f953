"""Standardize: bronze records of every source into one canonical customer schema.

The field cleaners live in one module per kind of field (``names``, ``emails``, ``phones``,
``dates``, ``places``, ``money``); each is a ``Column -> Column`` function or a factory
returning one, composed by the stage with ``withColumns``.
"""

from cdi_spark.standardize.dates import date_parser, timestamp_parser, unparsed
from cdi_spark.standardize.emails import (
    clean_email,
    email_is_role,
    email_is_valid,
    email_key,
    standardize_email,
)
from cdi_spark.standardize.money import (
    currency_code,
    load_currency_rates,
    minor_to_amount,
    to_reporting_currency,
)
from cdi_spark.standardize.names import (
    clean_name,
    fold_accents,
    given_name_key,
    name_key,
    nickname_canonical,
    normalize_unicode,
    parse_full_name,
    proper_case,
    squish,
)
from cdi_spark.standardize.phones import parse_phone
from cdi_spark.standardize.places import (
    country_to_alpha2,
    normalize_postcode,
    normalize_street,
    street_number,
)

__all__ = [
    "clean_email", "clean_name", "country_to_alpha2", "currency_code", "date_parser",
    "email_is_role", "email_is_valid", "email_key", "fold_accents", "given_name_key",
    "load_currency_rates", "minor_to_amount", "name_key", "nickname_canonical",
    "normalize_postcode", "normalize_street", "normalize_unicode", "parse_full_name",
    "parse_phone", "proper_case", "squish", "standardize_email", "street_number",
    "timestamp_parser", "to_reporting_currency", "unparsed",
]  # fmt: skip
