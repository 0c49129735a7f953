"""Countries (ISO 3166-1 alpha-2), street lines and postcodes, for display and matching.

Spark built-ins only. The country lookup is built once on the driver from ``pycountry``
(names, official and common names, alpha-2, alpha-3) plus the variants people type
("USA", "U.K.", "England", "Deutschland", "Holland"), and applied as a Spark map literal,
so no Python runs per row.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache

from pyspark.sql import Column
from pyspark.sql import functions as F

from cdi_spark.standardize.names import fold_accents, proper_case, squish

# Variants pycountry does not list, keyed as :func:`_key_py` makes keys.
COUNTRY_VARIANTS = {
    "usa": "US", "us": "US", "unitedstates": "US", "america": "US", "usofa": "US",
    "uk": "GB", "greatbritain": "GB", "britain": "GB", "england": "GB", "scotland": "GB",
    "wales": "GB", "northernireland": "GB", "unitedkingdom": "GB",
    "deutschland": "DE", "germany": "DE", "brd": "DE", "holland": "NL", "thenetherlands": "NL",
    "nederland": "NL", "espana": "ES", "italia": "IT", "brasil": "BR", "mexico": "MX",
    "schweiz": "CH", "suisse": "CH", "svizzera": "CH", "osterreich": "AT", "sverige": "SE",
    "norge": "NO", "danmark": "DK", "suomi": "FI", "polska": "PL", "belgique": "BE",
    "belgie": "BE", "turkey": "TR", "russia": "RU", "southkorea": "KR", "korea": "KR",
    "northkorea": "KP", "czechrepublic": "CZ", "ivorycoast": "CI", "uae": "AE",
    "vietnam": "VN", "iran": "IR", "syria": "SY", "laos": "LA", "bolivia": "BO",
    "venezuela": "VE", "tanzania": "TZ", "moldova": "MD", "macedonia": "MK",
    "vaticancity": "VA", "hongkong": "HK", "macau": "MO", "taiwan": "TW", "eire": "IE",
}  # fmt: skip
_PLACEHOLDERS = ("n/a", "n.a.", "none", "null", "unknown", "-", "--", "?", "tbd", "xx")


def _key_py(text: str) -> str:
    folded = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return re.sub(r"[^a-z0-9]", "", folded.lower())


def _key(col: Column) -> Column:
    """The Spark twin of :func:`_key_py`."""
    return F.regexp_replace(F.lower(fold_accents(col)), r"[^a-z0-9]", "")


@cache
def country_lookup() -> dict[str, str]:
    """``{key: alpha-2}`` from pycountry and :data:`COUNTRY_VARIANTS` (driver side, once)."""
    import pycountry

    table: dict[str, str] = {}
    for country in pycountry.countries:
        for attr in ("name", "official_name", "common_name", "alpha_3"):
            value = getattr(country, attr, None)
            if value:
                table.setdefault(_key_py(value), country.alpha_2)
        # "Korea, Republic of" is also written "Republic of Korea".
        if "," in country.name:
            head, tail = (p.strip() for p in country.name.split(",", 1))
            table.setdefault(_key_py(f"{tail} {head}"), country.alpha_2)
    table.update(COUNTRY_VARIANTS)
    return table


@cache
def _alpha2_codes() -> tuple[str, ...]:
    import pycountry

    return tuple(sorted(c.alpha_2 for c in pycountry.countries))


def country_to_alpha2(col: Column) -> Column:
    """ISO 3166-1 alpha-2 code of a country written any common way; null if unknown.

    "us", "USA", "U.S.A.", "United States of America", "Deutschland", "DEU", "Côte d'Ivoire",
    "England" (-> "GB"), "Holland" (-> "NL"). Placeholders ("n/a", "unknown") and
    unknown text give null.

    Example:
        >>> df.withColumn("country", country_to_alpha2(F.col("country")))
    """
    text = squish(col)
    key = _key(text)
    upper = F.upper(key)
    # alpha-2 codes are checked with an IN set (hashed); names with the map literal.
    lookup = F.create_map(*[F.lit(x) for pair in sorted(country_lookup().items()) for x in pair])
    code = F.when(
        (F.length(key) == 2) & upper.isin(*_alpha2_codes()) & ~F.lower(text).isin(*_PLACEHOLDERS),
        upper,
    )
    return F.when(key != "", F.coalesce(F.try_element_at(lookup, key), code))


# Street words, canonical full forms (lower case; matched as whole words, dot optional).
STREET_WORDS = {
    "st": "street", "str": "street", "ave": "avenue", "av": "avenue", "rd": "road",
    "blvd": "boulevard", "dr": "drive", "ln": "lane", "ct": "court", "pl": "place",
    "sq": "square", "hwy": "highway", "pkwy": "parkway", "cres": "crescent", "ter": "terrace",
    "cir": "circle", "trl": "trail", "mt": "mount", "ft": "fort", "apt": "unit",
    "apartment": "unit", "ste": "unit", "suite": "unit", "flat": "unit", "#": "unit",
    "fl": "floor", "bldg": "building", "po": "po", "n": "north", "s": "south", "e": "east",
    "w": "west", "ne": "northeast", "nw": "northwest", "se": "southeast", "sw": "southwest",
}  # fmt: skip
_DIRECTIONS = ("n", "s", "e", "w", "ne", "nw", "se", "sw")


def normalize_street(col: Column) -> Column:
    """Street line with canonical words, in display case: "12 n main st." -> "12 North Main Street".

    Abbreviations become full words (St/Str -> Street, Ave -> Avenue, Rd -> Road, Blvd,
    Dr -> Drive, Ln, Ct ...); unit designators (Apt, Apartment, Suite, Ste, Flat, #) all
    become "Unit" so that "Apt 4" and "#4" match. "St" starting a name ("St. John's Rd")
    is Saint and left alone, as are one-letter directions that do not follow the house
    number. German "-str." and "-straße" become "-strasse". Null stays null.

    Example:
        >>> df.withColumn("street", normalize_street(F.col("street")))
    """
    text = F.lower(squish(col))
    text = F.regexp_replace(text, r"#\s*", "# ")
    text = F.regexp_replace(text, r"([a-z])(str\.|straße|strasse)(\s|$)", "$1strasse$3")
    words = F.split(F.regexp_replace(text, r"[,]", " ,"), " ")
    table = F.create_map(*[F.lit(x) for pair in STREET_WORDS.items() for x in pair])

    def canon(w: Column, i: Column) -> Column:
        bare = F.regexp_replace(w, r"\.$", "")
        prev = F.get(words, i - 1)
        last = i == F.size(words) - 1
        saint = (bare == "st") & ((i == 0) | F.coalesce(prev.rlike(r"^\d"), F.lit(False))) & ~last
        direction_ok = ~bare.isin(*_DIRECTIONS) | prev.rlike(r"^\d+[a-z]?$")
        mapped = F.try_element_at(table, bare)
        return F.when(saint | ~direction_ok, w).otherwise(F.coalesce(mapped, w))

    joined = F.array_join(F.transform(words, canon), " ")
    return proper_case(F.regexp_replace(joined, r" ,", ","), force=True)


def street_number(col: Column) -> Column:
    """House number of a street line, for blocking: "12b Main St" -> "12b", "Hauptstr. 5" -> "5".

    A number leading the line wins, otherwise one ending it (continental order); unit
    numbers ("Apt 4", "#4", "Unit 4") are not house numbers. Lower case; null if none.

    Example:
        >>> df.withColumn("street_number", street_number(F.col("street")))
    """
    text = F.lower(squish(col))
    text = F.regexp_replace(text, r"(?:apt|apartment|suite|ste|unit|flat|#)\.?\s*\w+", "")
    lead = F.regexp_extract(text, r"^[\s,]*(\d+[a-z]?(?:-\d+)?)\b", 1)
    tail = F.regexp_extract(text, r"\s(\d+[a-z]?(?:-\d+)?)\s*,?\s*$", 1)
    return F.coalesce(F.nullif(lead, F.lit("")), F.nullif(tail, F.lit("")))


# Per-country postcode shapes on the upper-case, space-free text: (regex, replacement).
POSTCODE_RULES = {
    "US": (r"^(\d{5})(?:-?\d{4})?$", "$1"),
    "GB": (r"^([A-Z]{1,2}\d[A-Z\d]?)(\d[A-Z]{2})$", "$1 $2"),
    "CA": (r"^([A-Z]\d[A-Z])(\d[A-Z]\d)$", "$1 $2"),
    "NL": (r"^(\d{4})([A-Z]{2})$", "$1 $2"),
    "IE": (r"^([AC-FHKNPRTV-Y]\d{2}|D6W)([0-9AC-FHKNPRTV-Y]{4})$", "$1 $2"),
    "SE": (r"^(\d{3})(\d{2})$", "$1 $2"),
    "PL": (r"^(\d{2})-?(\d{3})$", "$1-$2"),
    "JP": (r"^(\d{3})-?(\d{4})$", "$1-$2"),
    "BR": (r"^(\d{5})-?(\d{3})$", "$1-$2"),
    "PT": (r"^(\d{4})-?(\d{3})$", "$1-$2"),
    **{c: (r"^(\d{5})$", "$1") for c in ("DE", "FR", "ES", "IT", "FI", "MX")},
    **{c: (r"^(\d{4})$", "$1") for c in ("AU", "AT", "BE", "CH", "DK", "NO", "NZ", "ZA")},
    "IN": (r"^(\d{6})$", "$1"),
}


def normalize_postcode(postcode: Column, country: Column) -> Column:
    """Postcode in its country's canonical form; null when it does not fit that form.

    US ZIP and ZIP+4 -> 5 digits ("02134-1234" -> "02134"), UK upper case with one space
    ("sw1a1aa" -> "SW1A 1AA"), Canada "A1A 1A1", Netherlands "1234 AB", Germany / France
    5 digits, and so on (:data:`POSTCODE_RULES`). Countries without a rule keep the text
    upper-cased with single spaces.

    Args:
        postcode: the postcode as written.
        country: ISO alpha-2 (see :func:`country_to_alpha2`).

    Example:
        >>> df.withColumn("postcode", normalize_postcode(F.col("zip"), F.col("country")))
    """
    text = F.upper(squish(postcode))
    compact = F.regexp_replace(text, r"[\s.]", "")
    out = text
    for code, (regex, repl) in sorted(POSTCODE_RULES.items()):
        fitted = F.when(compact.rlike(regex), F.regexp_replace(compact, regex, repl))
        out = F.when(country == code, fitted).otherwise(out)
    return F.when(text.isNotNull(), out)
