"""Vocabulary tables for the generator, read once on the driver.

Names and address parts come from ``faker``'s locale providers, used as plain tables (no
Faker object, no call per row). Each table is shipped to Spark as a single constant
``map<string, array<string>>`` literal (``from_json`` of one JSON string, folded by the
optimizer), so a lookup is ``element_at(table, country)`` followed by a hashed pick.
"""

from __future__ import annotations

import functools
import importlib
import json
from collections.abc import Mapping, Sequence

from pyspark.sql import Column
from pyspark.sql import functions as F

COUNTRIES: tuple[tuple[str, float], ...] = (
    ("US", 0.36), ("GB", 0.16), ("DE", 0.14), ("FR", 0.12), ("CA", 0.11), ("AU", 0.11),
)
_NAME_LOCALE = {"US": "en_US", "GB": "en_GB", "DE": "de_DE", "FR": "fr_FR", "CA": "en_US",
                "AU": "en_GB"}
_ADDRESS_LOCALE = {"US": "en_US", "GB": "en_GB", "DE": "de_DE", "FR": "fr_FR", "CA": "en_CA",
                   "AU": "en_AU"}

# Common names make the hard negatives: different people, same name, same city.
COMMON_FIRST = {"US": ["John", "Michael", "David"], "CA": ["John", "Michael", "David"],
                "GB": ["John", "David", "James"], "AU": ["John", "David", "James"],
                "DE": ["Thomas", "Michael", "Andreas"], "FR": ["Jean", "Pierre", "Michel"]}
COMMON_LAST = {"US": ["Smith"], "CA": ["Smith"], "GB": ["Smith"], "AU": ["Smith"],
               "DE": ["Müller"], "FR": ["Martin"]}

NICKNAMES: dict[str, list[str]] = {
    "Robert": ["Bob", "Rob", "Bobby"], "William": ["Bill", "Will", "Billy"],
    "Elizabeth": ["Liz", "Beth", "Betty"], "Margaret": ["Peggy", "Maggie", "Meg"],
    "James": ["Jim", "Jimmy", "Jamie"], "Richard": ["Rick", "Rich", "Dick"],
    "Michael": ["Mike", "Mick"], "Christopher": ["Chris"], "Jennifer": ["Jen", "Jenny"],
    "Katherine": ["Kate", "Kathy"], "Catherine": ["Cathy", "Kate"], "Thomas": ["Tom", "Tommy"],
    "Joseph": ["Joe", "Joey"], "Daniel": ["Dan", "Danny"], "Anthony": ["Tony"],
    "Matthew": ["Matt"], "Jonathan": ["Jon"], "Alexander": ["Alex"], "Patricia": ["Pat", "Patty"],
    "Susan": ["Sue", "Susie"], "Deborah": ["Deb", "Debbie"], "Rebecca": ["Becky"],
    "Samantha": ["Sam"], "Nicholas": ["Nick"], "Benjamin": ["Ben"], "Edward": ["Ed", "Ted"],
    "Charles": ["Charlie", "Chuck"], "Steven": ["Steve"], "Stephen": ["Steve"],
    "Timothy": ["Tim"], "Andrew": ["Andy", "Drew"], "David": ["Dave"], "Victoria": ["Vicky"],
    "Jessica": ["Jess"], "Kimberly": ["Kim"], "Gregory": ["Greg"], "Jeffrey": ["Jeff"],
    "Johannes": ["Hans"], "Wolfgang": ["Wolf"], "Katharina": ["Kathi"], "Stefanie": ["Steffi"],
    "Alexandre": ["Alex"], "Nicolas": ["Nico"], "Guillaume": ["Guy"], "Frédéric": ["Fred"],
}

# Street-type words and their abbreviations; the faker suffix lists are cut to these.
STREET_ABBREV: dict[str, str] = {
    "Street": "St", "Avenue": "Ave", "Road": "Rd", "Drive": "Dr", "Lane": "Ln",
    "Boulevard": "Blvd", "Court": "Ct", "Place": "Pl", "Terrace": "Tce", "Parkway": "Pkwy",
}
STREET_REGEX_ABBREV: tuple[tuple[str, str], ...] = tuple(
    [(rf"\b{full}$", short) for full, short in STREET_ABBREV.items()]
    + [("straße(?= )", "str."), ("^avenue ", "av. "), ("^boulevard ", "bd ")]
)

EMAIL_DOMAINS = {
    "US": ["gmail.com", "gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "icloud.com",
           "aol.com"],
    "CA": ["gmail.com", "gmail.com", "yahoo.ca", "outlook.com", "hotmail.com", "rogers.com"],
    "GB": ["gmail.com", "gmail.com", "btinternet.com", "hotmail.co.uk", "yahoo.co.uk",
           "outlook.com"],
    "AU": ["gmail.com", "gmail.com", "bigpond.com", "outlook.com", "yahoo.com.au"],
    "DE": ["gmx.de", "web.de", "gmail.com", "t-online.de", "gmail.com"],
    "FR": ["orange.fr", "gmail.com", "free.fr", "laposte.net", "hotmail.fr", "gmail.com"],
}

# National significant numbers: "prefix|length"; the rest is random digits.
MOBILE_PREFIXES = {
    "US": ["212|10", "415|10", "312|10", "617|10", "206|10", "512|10", "303|10", "404|10"],
    "CA": ["416|10", "604|10", "514|10", "403|10", "613|10"],
    "GB": ["7400|10", "7700|10", "7800|10", "7900|10", "7500|10"],
    "DE": ["151|11", "160|11", "170|11", "176|11", "152|11"],
    "FR": ["6|9", "7|9"], "AU": ["4|9"],
}
LANDLINE_PREFIXES = {
    "US": ["212|10", "415|10", "312|10", "617|10", "713|10", "305|10"],
    "CA": ["416|10", "604|10", "514|10"], "GB": ["20|10", "161|10", "131|10"],
    "DE": ["30|10", "89|10", "40|10", "221|10"], "FR": ["1|9", "4|9", "5|9"],
    "AU": ["2|9", "3|9", "7|9", "8|9"],
}

CRM_COUNTRY = {
    "US": ["United States", "United States", "United States", "USA", "US", "U.S.A.",
           "United States of America", "usa"],
    "GB": ["United Kingdom", "United Kingdom", "UK", "U.K.", "Great Britain", "England"],
    "DE": ["Germany", "Germany", "Germany", "DE", "germany"],
    "FR": ["France", "France", "France", "FR"],
    "CA": ["Canada", "Canada", "Canada", "CA"],
    "AU": ["Australia", "Australia", "Australia", "AU", "Aus"],
}
MARKETING_COUNTRY = {
    "US": ["United States"], "GB": ["United Kingdom"], "CA": ["Canada"], "AU": ["Australia"],
    "DE": ["Germany", "Germany", "Deutschland"], "FR": ["France", "France", "France"],
}
CURRENCY = {"US": "USD", "CA": "CAD", "GB": "GBP", "AU": "AUD", "DE": "EUR", "FR": "EUR"}
LOCALE = {"US": "en-US", "CA": "en-CA", "GB": "en-GB", "AU": "en-AU", "DE": "de", "FR": "fr"}
TIME_ZONE = {"US": "Eastern Time (US & Canada)", "CA": "Eastern Time (US & Canada)",
             "GB": "London", "AU": "Sydney", "DE": "Berlin", "FR": "Paris"}
INDUSTRIES = ["Technology", "Finance", "Healthcare", "Retail", "Manufacturing", "Education",
              "Consulting", "Media", "Energy", "Transportation"]


def _provider(kind: str, locale: str) -> type:
    return importlib.import_module(f"faker.providers.{kind}.{locale}").Provider


def _names(locale: str, attr: str) -> list[str]:
    return list(dict.fromkeys(getattr(_provider("person", locale), attr)))


def _cities(country: str) -> list[str]:
    """About 60 city names per country, built from the locale's tables (no randomness)."""
    addr = _provider("address", _ADDRESS_LOCALE[country])
    if hasattr(addr, "cities"):
        return list(addr.cities)[:200]
    lasts = _names(_NAME_LOCALE[country], "last_names")
    prefixes = getattr(addr, "city_prefixes", ("Saint",))
    suffixes = addr.city_suffixes
    out = []
    for i in range(60):
        last = lasts[(i * 7) % len(lasts)]
        if i % 3 == 0:
            out.append(f"{prefixes[i % len(prefixes)]} {last}")
        else:
            out.append(f"{last}{suffixes[i % len(suffixes)]}")
    return list(dict.fromkeys(out))


def _street_types(country: str) -> list[str]:
    if country == "DE":
        return ["straße", "straße", "weg", "allee", "ring"]
    if country == "FR":
        return ["rue", "rue", "avenue", "boulevard", "chemin"]
    suffixes = _provider("address", _ADDRESS_LOCALE[country]).street_suffixes
    return [s for s in dict.fromkeys(suffixes) if s in STREET_ABBREV] or ["Street"]


def _regions(country: str) -> list[str]:
    addr = _provider("address", _ADDRESS_LOCALE[country])
    for attr in ("states_abbr", "provinces_abbr", "counties", "states", "regions"):
        if hasattr(addr, attr):
            return list(getattr(addr, attr))
    return []


@functools.cache
def tables() -> dict[str, dict[str, list[str]]]:
    """Every per-country table, as plain Python lists (built once per process)."""
    countries = [c for c, _ in COUNTRIES]
    per = {
        "first_m": {c: _names(_NAME_LOCALE[c], "first_names_male") for c in countries},
        "first_f": {c: _names(_NAME_LOCALE[c], "first_names_female") for c in countries},
        "last": {c: _names(_NAME_LOCALE[c], "last_names") for c in countries},
        "city": {c: _cities(c) for c in countries},
        "street_type": {c: _street_types(c) for c in countries},
        "region": {c: _regions(c) for c in countries},
        "common_first": COMMON_FIRST, "common_last": COMMON_LAST,
        "email_domain": EMAIL_DOMAINS, "mobile": MOBILE_PREFIXES, "landline": LANDLINE_PREFIXES,
        "crm_country": CRM_COUNTRY, "marketing_country": MARKETING_COUNTRY,
        "nickname": NICKNAMES,
    }
    per["industry"] = {"*": INDUSTRIES}
    per["company_suffix"] = {"*": list(_provider("company", "en_US").company_suffixes)}
    return per


def table(name: str) -> Column:
    """The table ``name`` as one constant ``map<string, array<string>>`` column."""
    return F.from_json(F.lit(json.dumps(tables()[name], ensure_ascii=False)),
                       "map<string,array<string>>")


def lookup(name: str, key: Column) -> Column:
    """``tables()[name][key]`` as an array column (null when the key is absent)."""
    return F.element_at(table(name), key)


def scalar_map(mapping: Mapping[str, str]) -> Column:
    """A small ``map<string,string>`` literal (currencies, locales, time zones)."""
    return F.from_json(F.lit(json.dumps(dict(mapping))), "map<string,string>")


def str_array(values: Sequence[str]) -> Column:
    """A constant ``array<string>`` literal."""
    return F.from_json(F.lit(json.dumps(list(values))), "array<string>")
