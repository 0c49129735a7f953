"""Person names: display forms for people and accent-free keys for matching.

Column functions only (``Column -> Column``); the standardize stage composes them with
``withColumns``. Everything is a Spark built-in except :func:`normalize_unicode`, a
vectorised pandas UDF, because Spark 3.5 has no Unicode normalisation function. Text
helpers shared by the other cleaners (:func:`squish`, :func:`fold_accents`) live here too.

Two forms of each name are kept: the display form (``"Robert O'Brien"``) for profiles,
and a key (``"robert"``, ``"obrien"``) that is lower case, accent-free and, for given names,
nickname-canonical (Bob -> robert), for matching.
"""

from __future__ import annotations

import csv
import unicodedata
from functools import cache
from importlib import resources

import pandas as pd
from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql.functions import pandas_udf
from pyspark.sql.types import StringType

from cdi_spark.columns import let

# Runs of any Unicode space (NBSP, thin, ideographic ...) count as one space.
_SPACES = r"[\s\u00A0\u1680\u2000-\u200B\u202F\u205F\u3000\uFEFF]+"

# Titles before a name and post-nominals after it, matched case-insensitively, dot optional.
HONORIFICS = (
    "mr", "mrs", "ms", "miss", "mx", "dr", "prof", "professor", "sir", "dame", "lady", "lord",
    "rev", "revd", "reverend", "fr", "father", "hon", "capt", "col", "gen", "lt", "sgt",
    "herr", "frau", "mme", "mlle", "rabbi",
)  # fmt: skip
SUFFIXES = {
    "jr": "Jr", "jnr": "Jr", "sr": "Sr", "snr": "Sr", "ii": "II", "iii": "III", "iv": "IV",
    "phd": "PhD", "md": "MD", "dds": "DDS", "esq": "Esq", "mba": "MBA", "cpa": "CPA",
    "rn": "RN", "obe": "OBE", "mbe": "MBE", "cbe": "CBE", "kc": "KC", "qc": "QC",
}  # fmt: skip
# Family-name particles kept lower case inside a name and kept with the family name.
PARTICLES = (
    "van", "von", "de", "der", "den", "del", "della", "di", "da", "du", "dos", "das", "la",
    "le", "ter", "ten", "bin", "ibn", "zu",
)  # fmt: skip

_HONORIFIC_RE = r"(?i)^((?:(?:" + "|".join(HONORIFICS) + r")(?:\.\s*|\s+))+)"
_SUFFIX_WORD = (
    r"(?:"
    + "|".join(sorted(SUFFIXES, key=len, reverse=True)).replace("phd", r"ph\.?d").replace("md", r"m\.?d")
    + r")\.?"
)
_SUFFIX_RE = r"(?i)((?:[\s,]+" + _SUFFIX_WORD + r")+)$"
_PARTICLE_ALT = "|".join(PARTICLES)
# group 1: everything before the family name; group 2: particles + last token.
_FAMILY_RE = r"(?i)^(.*?)\s+((?:(?:" + _PARTICLE_ALT + r")\s+)*\S+)$"
_WORD_START_AFTER = ("-", "'", "\u2019")

# Letters that have no Unicode decomposition but an accepted ASCII spelling.
_SPECIAL_FOLDS = {
    "ß": "ss", "ẞ": "SS", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "þ": "th", "Þ": "TH",
    "ĳ": "ij", "Ĳ": "IJ", "ø": "o", "Ø": "O", "đ": "d", "Đ": "D", "ð": "d", "Ð": "D",
    "ł": "l", "Ł": "L", "ı": "i", "ħ": "h", "Ħ": "H", "ŧ": "t", "Ŧ": "T",
}  # fmt: skip


@cache
def _fold_table() -> tuple[str, str]:
    """``translate`` arguments folding accented Latin and full-width ASCII to plain ASCII."""
    src, dst = [], []
    ranges = [(0x00C0, 0x024F), (0x1E00, 0x1EFF), (0xFF01, 0xFF5E)]
    for lo, hi in ranges:
        for code in range(lo, hi + 1):
            ch = chr(code)
            folded = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
            if ch in _SPECIAL_FOLDS:
                folded = _SPECIAL_FOLDS[ch]
            if len(folded) == 1 and folded.isascii() and folded != ch:
                src.append(ch)
                dst.append(folded)
    return "".join(src), "".join(dst)


def squish(col: Column) -> Column:
    """Trim, collapse every run of (Unicode) whitespace to one space; blank becomes null.

    Example:
        >>> df.withColumn("x", squish(F.col("raw")))  # "  Anne\\u00a0 Marie " -> "Anne Marie"
    """
    out = F.trim(F.regexp_replace(col.cast("string"), _SPACES, " "))
    return F.when(out != "", out)


def fold_accents(col: Column) -> Column:
    """Accent-free ASCII spelling of Latin text: "Zoë Ørsted-Łukasz" -> "Zoe Orsted-Lukasz".

    Built-ins only: ``translate`` for single letters (composed accents, full-width forms,
    ``ø``, ``ł``), ``regexp_replace`` for the few that spell as two letters (``ß`` -> ``ss``,
    ``æ`` -> ``ae``) and for combining marks of decomposed input. Other scripts (Cyrillic,
    CJK) pass through unchanged. Null stays null.

    Example:
        >>> df.withColumn("k", fold_accents(F.col("name")))  # "Müller" -> "Muller"
    """
    src, dst = _fold_table()
    out = F.translate(col, src, dst)
    for ch, folded in _SPECIAL_FOLDS.items():
        if len(folded) > 1:
            out = F.regexp_replace(out, ch, folded)
    return F.regexp_replace(out, r"\p{M}+", "")


@pandas_udf(StringType())
def _nfkc(values: pd.Series) -> pd.Series:
    return values.str.normalize("NFKC")


def normalize_unicode(col: Column) -> Column:
    """Unicode NFKC normalisation (a vectorised pandas UDF: Spark 3.5 has no built-in).

    Composes decomposed accents ("e" + U+0301 -> "é"), turns full-width and compatibility
    characters into their plain forms ("Ｊｏｈｎ" -> "John", "ﬁ" -> "fi") and keeps accents.
    Null stays null.

    Example:
        >>> df.withColumn("name", normalize_unicode(F.col("name")))
    """
    return _nfkc(col)


def _capitalize_word(word: Column) -> Column:
    chars = F.split(word, "")

    def cap(ch: Column, i: Column) -> Column:
        prev = F.get(chars, i - 1)
        mc = (i == 2) & (F.substring(word, 1, 2) == "mc") & (F.length(word) > 3)
        possessive = (ch == "s") & (i == F.size(chars) - 1)  # "John's", not "John'S"
        after_mark = prev.isin(*_WORD_START_AFTER) & ~possessive
        return F.when((i == 0) | after_mark | mc, F.upper(ch)).otherwise(ch)

    return F.array_join(F.transform(chars, cap), "")


def proper_case(col: Column, *, force: bool = False, family: bool = False) -> Column:
    """Display case for names: "o'BRIEN" -> "O'Brien", "mcdonald" -> "McDonald".

    Words start upper case, as do the parts after a hyphen or apostrophe ("Anne-Marie",
    "D'Angelo"); "Mc" names get their third letter capitalised ("Mac" names do not: Mack,
    Macy); particles inside a name stay lower case ("Ludwig van Beethoven"). A word that is
    already mixed case is trusted and kept ("DeShawn", "MacArthur") unless ``force``.
    Whitespace is squished; blank becomes null.

    Args:
        col: a name column.
        force: recase mixed-case input too.
        family: the column holds family names only, so a leading particle stays lower
            case too ("van Beethoven", "de la Cruz").

    Example:
        >>> df.withColumn("family", proper_case(F.col("family")))  # "MCDONALD" -> "McDonald"
    """
    words = F.split(squish(col), " ")
    last = F.size(words) - 1
    first = -1 if family else 0

    def word_case(w: Column, i: Column) -> Column:
        low = F.lower(w)
        recase = (w == low) | (w == F.upper(w)) if not force else F.lit(True)
        return (
            F.when((i > first) & (i < last) & low.isin(*PARTICLES), low)
            .when(recase, _capitalize_word(low))
            .otherwise(w)
        )

    return F.array_join(F.transform(words, word_case), " ")


def clean_name(col: Column, *, unicode_form: bool = True) -> Column:
    """Display form of a name part: NFKC, squished whitespace, proper case.

    Args:
        col: a given or family name (not a full name: see :func:`parse_full_name`).
        unicode_form: apply :func:`normalize_unicode` first (set False to stay in the JVM
            when the source is known to be plain ASCII).

    Example:
        >>> df.withColumn("given", clean_name(F.col("given")))  # " JOSÉ " -> "José"
    """
    text = normalize_unicode(col) if unicode_form else col
    return proper_case(text)


def name_key(col: Column) -> Column:
    """Matching key of a name: accent-free, lower case, letters and digits only.

    "O'Brien" -> "obrien", "Anne-Marie" -> "annemarie", "Müller" -> "muller",
    "de la Cruz" -> "delacruz". Letters of other scripts are kept ("Иван" -> "иван").
    Blank or punctuation-only input gives null.

    Example:
        >>> df.withColumn("family_key", name_key(F.col("family")))
    """
    key = F.regexp_replace(F.lower(fold_accents(col)), r"[^\p{L}\p{N}]+", "")
    return F.when(key != "", key)


@cache
def nickname_table() -> dict[str, str]:
    """``{nickname: canonical}`` from ``data/nicknames.csv`` (see its header for sources)."""
    text = resources.files(__package__).joinpath("data/nicknames.csv").read_text("utf-8")
    rows = csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))
    return {row["nickname"]: row["canonical"] for row in rows}


def nickname_canonical(key: Column, table: dict[str, str] | None = None) -> Column:
    """Canonical given-name key for a nickname key: "bob" -> "robert"; others unchanged.

    Args:
        key: a key as made by :func:`name_key` (lower case, accent-free).
        table: ``{nickname: canonical}``; defaults to :func:`nickname_table`.

    Example:
        >>> df.withColumn("given_key", nickname_canonical(name_key(F.col("given"))))
    """
    table = nickname_table() if table is None else table
    lookup = F.create_map(*[F.lit(x) for pair in sorted(table.items()) for x in pair])
    return F.when(key.isNotNull(), F.coalesce(F.try_element_at(lookup, key), key))


def given_name_key(col: Column) -> Column:
    """Key of a given name for matching: first word, :func:`name_key`, nickname-canonical.

    "Bob" -> "robert", "Liz" -> "elizabeth", "José María" -> "jose", "Anne-Marie" ->
    "annemarie".

    Example:
        >>> df.withColumn("given_name_key", given_name_key(F.col("given_name")))
    """
    first = F.get(F.split(squish(col), " "), F.lit(0))
    return nickname_canonical(name_key(first))


def _blank_null(col: Column) -> Column:
    return squish(F.regexp_replace(col, r"^[\s,.]+|[\s,]+$", ""))


def parse_full_name(col: Column, *, unicode_form: bool = True) -> Column:
    """Split a full name into struct(honorific, given_name, middle_name, family_name, suffix).

    Handles "First Middle Last", "Last, First Middle", honorifics before ("Dr.", "Mrs",
    "Prof. Dr.") and suffixes after ("Jr.", "III", "PhD"), family-name particles
    ("Ludwig van Beethoven" -> family "van Beethoven"). A single word is a given name.
    Name parts are in display form (:func:`proper_case`); the honorific is dot-free
    ("Dr"); suffixes are canonical and comma-joined ("Jr, PhD"). Null or blank input gives
    a struct of nulls.

    Args:
        col: a full-name column.
        unicode_form: apply :func:`normalize_unicode` first.

    Example:
        >>> parts = parse_full_name(F.col("full_name"))
        >>> df.withColumns({"given": parts["given_name"], "family": parts["family_name"]})
        >>> # "DR. ROBERT J. O'BRIEN JR." -> ("Dr", "Robert", "J.", "O'Brien", "Jr")
    """
    # Each intermediate is bound once with let(): written inline, the text expression would
    # be copied into every use and the plan would grow to hundreds of kilobytes.
    text = squish(normalize_unicode(col) if unicode_form else col)
    return let(text, lambda t: let(F.regexp_replace(t, _HONORIFIC_RE, ""), lambda rest: _split_rest(t, rest)))


def _split_rest(text: Column, rest: Column) -> Column:
    honorific = F.regexp_extract(text, _HONORIFIC_RE, 1)
    suffix_raw = F.regexp_extract(rest, _SUFFIX_RE, 1)
    core = _blank_null(F.regexp_replace(rest, _SUFFIX_RE, ""))
    return let(core, lambda c: _split_core(honorific, suffix_raw, c))


def _split_core(honorific: Column, suffix_raw: Column, core: Column) -> Column:
    has_comma = core.contains(",")
    comma_family = F.substring_index(core, ",", 1)
    comma_rest = F.regexp_replace(F.regexp_replace(core, r"^[^,]*,", ""), ",", " ")
    spaced = F.regexp_extract(core, _FAMILY_RE, 0) != ""
    family = F.when(has_comma, comma_family).when(spaced, F.regexp_extract(core, _FAMILY_RE, 2))
    before = squish(F.when(has_comma, comma_rest).when(spaced, F.regexp_extract(core, _FAMILY_RE, 1)).otherwise(core))

    suffix_words = F.filter(F.split(F.lower(F.regexp_replace(suffix_raw, r"\.", "")), r"[\s,]+"), lambda w: w != "")
    suffix_map = F.create_map(*[F.lit(x) for pair in SUFFIXES.items() for x in pair])
    suffix = F.array_join(F.transform(suffix_words, lambda w: suffix_map[w]), ", ")
    honor = F.initcap(F.lower(squish(F.regexp_replace(honorific, r"\.", " "))))

    def parts(b: Column) -> Column:
        given = F.substring_index(b, " ", 1)
        middle = F.when(b.contains(" "), F.regexp_replace(b, r"^\S+\s+", ""))
        return F.struct(
            F.when(honor != "", honor).alias("honorific"),
            proper_case(_blank_null(given)).alias("given_name"),
            proper_case(_blank_null(middle)).alias("middle_name"),
            proper_case(_blank_null(family), family=True).alias("family_name"),
            F.when(suffix != "", suffix).alias("suffix"),
        )

    return let(before, parts)
