"""What each column of an ad-hoc CSV of people holds, and the match frame built from it.

``cdi-spark resolve-file`` and ``cdi-spark init-matching`` take CSV files nobody described
in ``conf/sources/``. This module reads them (:func:`read_people_csv`: every column as
text, plus ``_input``, ids checked unique across the files), infers each column's role
(:data:`ROLES`) from its header *and* a sample of its values (:func:`infer_roles`), shows
the result (:func:`format_roles`), builds the standardized match frame with the
project's cleaners (:func:`match_frame`, column names of ``silver.customer_records``) and
proposes a ``matching.yml`` for it (:func:`matching_config_for`, :func:`render_matching_yaml`).

How a role is chosen: the header is normalised ("D.O.B." -> ``dob``, "addr_line_1" ->
``addr line``) and looked up in word lists (a *strong* guess: ``dob``, ``surname``, ``zip``;
or a *weak* one: ``date``, ``number``, ``code``). The sample's values are profiled by three
small Spark jobs over a long (column, value) frame: shares that are emails, yes/no flags,
street lines, postcodes, digit strings by length, letter codes, words, known given names;
then dates (:func:`~cdi_spark.standardize.dates.date_parser`, in the day order the numeric
dates show) and valid phone numbers (:func:`~cdi_spark.standardize.phones.parse_phone`,
with each of a few default regions), for the columns that look like them. Content decides for
meaningless headers (``col7``, ``x``), confirms or overturns a weak header, and overturns a
strong one only when the values are unmistakably something else (a "phone" column of
email addresses). Everything is deterministic: the sample is the first ``sample_rows`` rows
(topped up with rows that fill columns the first rows leave empty, as a second input may),
and ties break in a fixed order.

Reads CSV files; writes nothing. Only small metadata reaches the driver: per-column counts
of the profile, and the first few duplicate ids when there are some.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache, reduce

from pyspark.errors import AnalysisException
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from cdi_spark.config import BlockingConfig, ClusteringConfig, MatchingConfig, TrainingConfig, parse_blocking_part
from cdi_spark.errors import CdiError, MissingColumnError
from cdi_spark.standardize.dates import date_parser
from cdi_spark.standardize.emails import clean_email, email_is_role, email_is_valid, email_key
from cdi_spark.standardize.names import given_name_key, name_key, nickname_table, parse_full_name, proper_case, squish
from cdi_spark.standardize.phones import parse_phone
from cdi_spark.standardize.places import (
    POSTCODE_RULES,
    STREET_WORDS,
    normalize_postcode,
    normalize_street,
    street_number,
)

log = logging.getLogger(__name__)

ROLES = (
    "given_name", "family_name", "full_name", "birth_date", "street_number", "street", "locality",
    "postcode", "region", "phone", "email", "national_id", "other",
)  # fmt: skip
INPUT_COLUMN = "_input"  # which file a row came from
CSV_OPTIONS = {
    "header": "true",
    "inferSchema": "false",  # every column stays text: ids and postcodes keep their leading zeros
    "mode": "PERMISSIVE",
    "escape": '"',  # RFC 4180: a quote inside a quoted value is doubled
    "ignoreLeadingWhiteSpace": "true",  # FEBRL writes ", " between values and header names
    "ignoreTrailingWhiteSpace": "true",
}
# Default regions tried for phone numbers written without "+"; ties go to the first, so
# lenient numbering plans (variable-length Italy and Germany) come last. (Canada shares +1
# with the US: "US" stands for both.)
PHONE_REGIONS = ("US", "GB", "AU", "FR", "NZ", "IE", "NL", "ES", "BR", "MX", "IN", "ZA", "IT", "DE")
BIRTH_YEARS = (1880, 2030)  # a parsed date outside these years is not a date of birth


class InputError(CdiError, ValueError):
    """The input files cannot be used as they are; the message says which file and why."""


class DuplicateIdError(InputError):
    """An id is missing or used by more than one row across the inputs."""


@dataclass(frozen=True)
class ColumnRole:
    """What one input column holds.

    Attributes:
        column: the column name as read.
        role: one of :data:`ROLES`.
        confidence: 0 to 1; below about 0.6 the guess deserves a look.
        reason: the evidence, for people (header words, shares of sampled values).
    """

    column: str
    role: str
    confidence: float
    reason: str

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"role {self.role!r} of column {self.column!r} is not one of {', '.join(ROLES)}")


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def _col(name: str) -> Column:
    """A column by its exact name, whatever it contains ("D.O.B.", "Zip/Postal", "a`b")."""
    return F.col("`" + name.replace("`", "``") + "`")


def read_people_csv(spark: SparkSession, paths: Sequence[str], id_column: str) -> DataFrame:
    """Read CSV files of people: every column as text, plus ``_input`` (the file).

    Files with different columns are unioned by name (a column a file lacks is null there).
    Values and header names are trimmed; an empty value is null. A quoted value may not span
    lines: files are split to be read in parallel.

    Args:
        spark: the session.
        paths: one or more CSV files (each with a header line), in order.
        id_column: the column that identifies a row; present in every file, unique across all.

    Returns:
        The rows of all files, columns in first-seen order, then ``_input``.

    Raises:
        InputError: no paths, a file that cannot be read, or a file with an ``_input`` column.
        MissingColumnError: a file lacks ``id_column`` (the message lists its columns).
        DuplicateIdError: an id is empty or repeated (within or across files); the message
            names the first few and their files, and the count.

    Example:
        >>> people = read_people_csv(spark, ["a.csv", "b.csv"], "rec_id")
    """
    if not paths:
        raise InputError("no input files: pass at least one CSV file of people")
    frames = []
    for path in paths:
        try:
            frame = spark.read.options(**CSV_OPTIONS).csv(str(path))
        except AnalysisException as exc:
            raise InputError(f"input {path}: cannot be read: {str(exc).splitlines()[0]}") from None
        if id_column not in frame.columns:
            raise MissingColumnError(f"input {path}: id column", [id_column], frame.columns)
        if INPUT_COLUMN in frame.columns:
            raise InputError(f"input {path}: has a column {INPUT_COLUMN!r}, a name reserved for the input file")
        frames.append(frame.withColumn(INPUT_COLUMN, F.lit(str(path))))
    people = reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), frames)
    columns = [c for c in people.columns if c != INPUT_COLUMN]
    people = people.select(*[_col(c) for c in columns], INPUT_COLUMN)
    _check_ids(people, id_column)
    return people


def _check_ids(people: DataFrame, id_column: str, shown: int = 5) -> None:
    ids = people.groupBy(_col(id_column).alias("id")).agg(
        F.count(F.lit(1)).alias("rows"), F.min(INPUT_COLUMN).alias("first"), F.max(INPUT_COLUMN).alias("last")
    )
    bad = ids.filter((F.col("rows") > 1) | F.col("id").isNull())
    examples = bad.orderBy(F.col("id").asc_nulls_first()).limit(shown).collect()  # small metadata
    if not examples:
        return
    total = bad.count()
    listed = []
    for row in examples:
        files = row["first"] if row["first"] == row["last"] else f"{row['first']} and {row['last']}"
        what = "(empty id)" if row["id"] is None else repr(row["id"])
        listed.append(f"{what} x{row['rows']} in {files}")
    more = f" and {total - len(examples)} more" if total > len(examples) else ""
    raise DuplicateIdError(
        f"id column {id_column!r}: {total} id value(s) are empty or used by more than one row: "
        f"{'; '.join(listed)}{more}. Ids must be unique across all inputs; when files number their "
        "rows alike, prefix the ids per file first."
    )


# --------------------------------------------------------------------------------------------
# Headers
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _HeaderGuess:
    role: str
    strong: bool
    text: str


def _words(*items: str) -> frozenset[str]:
    return frozenset(w for item in items for w in item.split())


# role, whole headers (compact: words joined, digits dropped), single words, word pairs.
# Checked in this order, first hit wins: "email address" is an email, "birth country" other.
_STRONG: tuple[tuple[str, frozenset[str], frozenset[str], tuple[tuple[str, str], ...]], ...] = (
    ("other", _words("mname mi middlename middleinitial initials countrycode cc birthplace"),
     _words("country nationality gender sex age fax company employer organisation organization username "
            "login url website ip middle maiden title salutation suffix honorific created updated modified "
            "registered signup timestamp status notes comment comments birthplace opted optout opt consent "
            "subscribed unsubscribed marketing accepts verified bounced industry total orders spent amount "
            "price revenue balance currency tax quantity qty score points count visits stage lifecycle source "
            "channel segment tier category type language locale timezone password death died deceased expiry "
            "expiration expires issued due purchase visit visited seen hired joined enrolled admitted discharged "
            "start end"),
     (*((w, "birth") for w in ("place", "country", "city", "town", "state", "county", "region", "name")),
      *((w, n) for w in ("account", "acct", "customer", "client", "member", "policy", "card", "order", "invoice",
                         "patient", "employee", "user", "loyalty") for n in ("number", "no", "num", "nr", "code")))),
    ("email", _words("email mail emailaddress emailaddr courriel correo eaddress"), _words("email mail emails"),
     (("e", "mail"),)),
    ("phone", _words("phone tel telephone mobile cell cellphone phonenumber phoneno telno fon telefon telefono mob "
                     "ph mobileno contactno contactnumber cellular"),
     _words("phone tel telephone mobile cell cellphone telefon telefono mob phones"), ()),
    ("national_id", _words("idnumber idno idnum identitynumber personalid personalnumber ssn socsecid socsec "
                           "socialsecurity socialsecuritynumber ssno ssnumber nationalid nationalidnumber "
                           "nationalidentifier nin nino ni ninumber nationalinsurancenumber taxid "
                           "tin taxnumber itin sin bsn pesel personnummer cpr aadhaar curp dni nif cpf"),
     _words("ssn nin nino bsn pesel personnummer aadhaar"),
     (("national", "id"), ("national", "identifier"), ("national", "insurance"), ("social", "security"),
      ("soc", "sec"), ("tax", "id"), ("tax", "number"), ("id", "number"), ("id", "no"), ("identity", "number"))),
    ("other", _words("id key uuid guid ref"), _words("id uuid guid key ref reference"), ()),
    ("birth_date", _words("dob dateofbirth birthdate birthday bdate birth born bday dtofbirth geburtsdatum"),
     _words("dob birth birthdate birthday bdate born bday geburtsdatum"), ()),
    ("postcode", _words("zip zipcode postcode postalcode postal plz pincode postcd zippostal postalzip cp pc "
                        "codepostal postleitzahl postnummer"),
     _words("zip zipcode postcode plz pincode postalcode postleitzahl"),
     (("post", "code"), ("pin", "code"), ("postal", "code"))),
    ("region", _words("state province county region prov territory stateprovince stateorprovince statecode "
                      "bundesland cnty"),
     _words("state province county region prov territory bundesland"), ()),
    ("locality", _words("city town suburb locality municipality village ort stadt ville ciudad cityname citytown "
                        "towncity posttown gemeinde wohnort comune"),
     _words("city town suburb locality municipality village stadt"), ()),
    ("street_number", _words("streetnumber streetno streetnum stno stnum housenumber houseno housenum hausnummer "
                             "hnr hno buildingnumber civicnumber"),
     _words("hausnummer"),
     tuple((a, b) for a in ("street", "house", "st", "building") for b in ("number", "no", "num", "nr"))),
    ("street", _words("street address addr streetaddress addressline adr strasse straat calle rue"),
     _words("street address addr adr streetaddress addressline strasse straat calle thoroughfare"), ()),
    ("given_name", _words("firstname fname givenname givennames forename forenames first given christianname "
                          "firstnm vorname prenom voornaam nombre"),
     _words("fname forename forenames firstname givenname vorname prenom voornaam"),
     (("first", "name"), ("given", "name"), ("christian", "name"))),
    ("family_name", _words("lastname lname surname familyname last family surnames lastnm nachname nom apellido "
                           "apellidos achternaam"),
     _words("surname surnames lname lastname familyname nachname apellido apellidos achternaam"),
     (("last", "name"), ("family", "name"))),
    ("full_name", _words("name fullname names customername personname contactname displayname clientname "
                         "patientname membername nm fullnm"),
     _words("fullname"), (("full", "name"),)),
)  # fmt: skip
# Words that only hint at a role; the values decide.
_WEAK = (
    ("full_name", _words("name names nm")),
    ("birth_date", _words("date dt")),
    ("street", _words("line")),
    ("street_number", _words("number no nr num")),
    ("postcode", _words("code")),
    ("locality", _words("loc place")),
)


def _header_words(header: str) -> list[str]:
    """Lower-case, accent-free words of a header: "addr_line_1" -> [addr, line, 1], "firstName" -> [first, name]."""
    text = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", header)
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return re.findall(r"[a-z]+|\d+", text.lower())


def _header_guess(header: str) -> _HeaderGuess | None:
    words = [w for w in _header_words(header) if not w.isdigit()]
    compact, present = "".join(words), set(words)
    for role, wholes, _, _ in _STRONG:
        if compact in wholes:
            return _HeaderGuess(role, True, f"header {header!r} names {_label(role)}")
    for role, _, singles, pairs in _STRONG:
        if (
            present & singles
            or any(a in present and b in present for a, b in pairs)
            or (role == "email" and "email" in compact)
        ):
            return _HeaderGuess(role, True, f"header {header!r} names {_label(role)}")
    for role, singles in _WEAK:
        if present & singles:
            return _HeaderGuess(role, False, f"header {header!r} hints at {_label(role)}")
    return None


def header_role(header: str) -> tuple[str, bool] | None:
    """The role a header names, and whether it is sure (``True``) or only a hint; None if nothing.

    Example:
        >>> header_role("D.O.B."), header_role("Zip/Postal"), header_role("date"), header_role("col7")
        (('birth_date', True), ('postcode', True), ('birth_date', False), None)
    """
    guess = _header_guess(header)
    return None if guess is None else (guess.role, guess.strong)


def guess_id_column(columns: Sequence[str]) -> str | None:
    """The first column whose header names a record id ("rec_id", "Customer ID", "person_no"), or None.

    For ``init-matching`` when no id column is given; a national id ("soc_sec_id", "SSN") is
    not a record id.

    Example:
        >>> guess_id_column(["given_name", "soc_sec_id", "rec_id"])
        'rec_id'
    """
    for column in columns:
        words = [w for w in _header_words(column) if not w.isdigit()]
        if words and words[-1] in _ID_WORDS and header_role(column) == ("other", True):
            return column
    return None


_ID_WORDS = ("id", "key", "uuid", "guid", "no", "number", "nr", "num")


def _label(role: str) -> str:
    return {"other": "a field not used for matching", "email": "an email"}.get(role, "a " + role.replace("_", " "))


# --------------------------------------------------------------------------------------------
# Content profile of a sample (small Spark jobs over a long (column, value) frame)
# --------------------------------------------------------------------------------------------

_NOT_THOROUGHFARES = ("unit", "floor", "building", "po", "mount", "fort", "north", "south", "east", "west")
_THOROUGHFARES = sorted(
    {w for w, full in STREET_WORDS.items() if full not in _NOT_THOROUGHFARES and w.isalpha()}
    | {full for full in STREET_WORDS.values() if full not in _NOT_THOROUGHFARES}
    | {"way", "close", "circuit", "grove", "walk", "row", "highway", "esplanade"}
)
_STREET_RE = (
    r"(?i)(?:^|[\s,])(?:" + "|".join(_THOROUGHFARES) + r")\.?(?:$|[\s,])"
    r"|^\d+[a-z]?(?:-\d+)?[\s,]+\p{L}{2,}|\p{L}(?:strasse|straße|str\.)(?:\s|,|$)"
    r"|^(?:apt|apartment|suite|ste|unit|flat|#|p\.?\s?o\.? box)\.?\s*#?\s*\w"  # a second address line
)
# Postcodes in some country's form (on upper-case text without spaces), ZIP+4 included.
_POSTCODE_RE = "|".join(sorted({f"(?:{rx})" for rx, _ in POSTCODE_RULES.values()}))
_MAX_DIGITS = 12  # digit strings are profiled by length up to this


def _known_given_names() -> list[str]:
    table = nickname_table()
    return sorted(set(table) | set(table.values()))


_DATE_SHAPE = (
    r"(?i)^(?:\d{8}$|\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{4}|\d{1,2}[ -][a-z]{3}|[a-z]{3,9}\.? \d)"
)
_NUMERIC_DATE = r"^(\d{1,2})[-/.](\d{1,2})[-/.]\d{4}"


def _shape_tests(v: Column) -> dict[str, Column]:
    """Tests whose true counts make a column's profile (on squished, non-empty text)."""
    digit_count = F.length(F.regexp_replace(v, r"\D", ""))
    numeric_date = v.rlike(_NUMERIC_DATE)
    return {
        "email": email_is_valid(clean_email(v)),
        "date_shape": v.rlike(_DATE_SHAPE),
        "numeric_date": numeric_date,  # 31/01/1985 or 01/31/1985: the day order matters
        "day_first": numeric_date & (F.regexp_extract(v, _NUMERIC_DATE, 1).cast("int") > 12),
        "month_first": numeric_date & (F.regexp_extract(v, _NUMERIC_DATE, 2).cast("int") > 12),
        "time": v.rlike(r"\d{1,2}:\d{2}"),
        "digits": v.rlike(r"^\d+$"),
        # Separators or "+" and 7-15 digits; bare digits only from 10 digits or with a trunk 0
        # (a 7-digit id or a 9-digit SSN is valid in some numbering plan, but not written so).
        "phone_shape": v.rlike(r"^\+?[\d\s().\-/]{6,24}$")
        & digit_count.between(7, 15)
        & (~v.rlike(r"^\d+$") | v.startswith("0") | (digit_count >= 10)),
        "ssn": v.rlike(r"^\d{3}-\d{2}-\d{4}$"),
        "id_like": v.rlike(r"^(?=.*\d)(?=.*[A-Za-z])[A-Za-z0-9\-]{6,20}$"),
        "postcode": F.regexp_replace(F.upper(v), r"[\s.]", "").rlike(_POSTCODE_RE),
        "street": v.rlike(_STREET_RE),
        "words": v.rlike(r"^\p{L}[\p{L}'\u2019.\- ]*$"),
        "code": v.rlike(r"^\p{L}{2,3}$"),
        "flag": F.lower(v).isin("true", "false", "yes", "no", "y", "n", "t", "f"),
        "leading_zero": v.startswith("0"),
        "plus": v.startswith("+"),
        "multi": v.contains(" "),
        "given_first": name_key(F.substring_index(v, " ", 1)).isin(*_known_given_names()),
    }


def _long(sample: DataFrame, columns: Sequence[str]) -> DataFrame:
    """``column, value``: one row per sampled row and column; ``value`` squished (blank -> null)."""
    pairs = F.array(
        *[F.struct(F.lit(c).alias("column"), squish(_col(c).cast("string")).alias("value")) for c in columns]
    )
    return sample.select(F.inline(pairs))


def _count(test: Column) -> Column:
    return F.sum(F.when(test, 1).otherwise(0))


def _by_column(rows: list) -> dict[str, dict[str, float]]:
    return {r["column"]: {k: float(x or 0) for k, x in r.asDict().items() if k != "column"} for r in rows}


def _shape_counts(values: DataFrame) -> dict[str, dict[str, float]]:
    v = F.col("value")
    digits = F.when(v.rlike(r"^\d+$"), F.length(v))
    aggs = [F.count(F.lit(1)).alias("rows"), F.count(v).alias("n"), F.approx_count_distinct(v).alias("distinct")]
    aggs += [_count(test).alias(name) for name, test in _shape_tests(v).items()]
    aggs += [_count(digits == k).alias(f"len{k}") for k in range(1, _MAX_DIGITS + 1)]
    return _by_column(values.groupBy("column").agg(*aggs).collect())  # counts per column: metadata


def _date_counts(values: DataFrame, orders: dict[str, str]) -> dict[str, dict[str, float]]:
    """Per column: values that parse as dates in the column's day order, and those in birth years."""
    if not orders:
        return {}
    column, groups = F.col("column"), {}
    for name, order in orders.items():
        groups.setdefault(order, []).append(name)
    # One parser per day order present (usually one): each is a large expression.
    parsed = F.coalesce(*[F.when(column.isin(*cs), date_parser(o)(F.col("value"))) for o, cs in sorted(groups.items())])
    dated = values.filter(column.isin(*orders) & F.col("value").isNotNull()).select("column", parsed.alias("date"))
    counts = dated.groupBy("column").agg(
        _count(F.col("date").isNotNull()).alias("date"),
        _count(F.year("date").between(*BIRTH_YEARS)).alias("birth_years"),
    )
    return _by_column(counts.collect())  # counts per column: metadata


@cache
def _trunk_zero_regions() -> tuple[str, ...]:
    """Regions whose national numbers are written with a leading 0 (libphonenumber's metadata)."""
    import phonenumbers

    prefix = {r: phonenumbers.PhoneMetadata.metadata_for_region(r).national_prefix for r in PHONE_REGIONS}
    return tuple(r for r in PHONE_REGIONS if prefix[r] == "0")


def _phone_counts(values: DataFrame, columns: Sequence[str]) -> dict[str, dict[str, float]]:
    """Per column: values that are valid phone numbers with each default region of
    :data:`PHONE_REGIONS` (``phone_US`` ...), in at least one of them (``phone_any``), and on
    their own "+" country code (``phone_``). A number written without "+" or a leading 0
    does not count for a region that writes its numbers with a trunk 0: lenient numbering
    plans (Germany's) would otherwise claim other countries' numbers."""
    if not columns:
        return {}
    regions = (None, *PHONE_REGIONS)
    value = F.col("value")
    tried = values.filter(F.col("column").isin(*columns) & value.isNotNull()).select(
        "column", "value", F.explode(F.array(*[F.lit(r).cast("string") for r in regions])).alias("region")
    )
    written = value.startswith("+") | value.startswith("0") | ~F.col("region").isin(*_trunk_zero_regions())
    valid = parse_phone(value, F.col("region"))["is_valid"] & written
    checked = tried.select("column", "value", "region", F.when(valid, 1).otherwise(0).alias("ok"))
    names = [f"phone_{r or ''}" for r in regions]
    per_value = checked.groupBy("column", "value").agg(
        (F.count(F.lit(1)) / len(regions)).alias("times"),  # how often the value occurs
        F.max("ok").alias("phone_any"),
        *[
            F.max(F.when(F.col("region").eqNullSafe(F.lit(r)), F.col("ok"))).alias(name)
            for r, name in zip(regions, names, strict=True)
        ],
    )
    totals = per_value.groupBy("column").agg(
        *[F.sum(F.col("times") * F.col(name)).alias(name) for name in ["phone_any", *names]]
    )
    return _by_column(totals.collect())  # counts per column: metadata


@dataclass(frozen=True)
class _Profile:
    """Counts of one column's sampled values (:func:`_shape_counts`, :func:`_date_counts`,
    :func:`_phone_counts`)."""

    counts: dict[str, float]

    @property
    def n(self) -> int:
        return int(self.counts.get("n", 0))

    def share(self, name: str) -> float:
        return self.counts.get(name, 0.0) / self.n if self.n else 0.0

    @property
    def day_order(self) -> tuple[str, bool]:
        """How numeric dates are written, and whether no value told day from month."""
        if not self.counts.get("numeric_date"):
            return "YMD", False
        day, month = self.counts.get("day_first", 0.0), self.counts.get("month_first", 0.0)
        if day != month:
            return ("DMY" if day > month else "MDY"), False
        return "MDY", True

    @property
    def phone_region(self) -> str | None:
        """The default region for numbers written without "+": the one under which most of
        them are valid, if that is at least 80% of them; None when they are of several
        countries (then they are not guessed) or all carry "+"."""
        local = self.n - self.counts.get("plus", 0.0)
        own = self.counts.get("phone_", 0.0)  # valid on their own "+" code, whatever the region
        gains = {r: self.counts.get(f"phone_{r}", 0.0) - own for r in PHONE_REGIONS}
        best = max(PHONE_REGIONS, key=lambda r: (gains[r], -PHONE_REGIONS.index(r)))
        return best if local and gains[best] >= 0.8 * local else None


def _profiles(
    df: DataFrame, columns: Sequence[str], sample_rows: int, hints: dict[str, str], *, parse_dates: bool = True
) -> dict[str, _Profile]:
    """Profiles of ``columns`` from a sample of ``df``.

    The sample is the first ``sample_rows`` rows; a column with fewer than 20 values there
    (one only a later input has) is profiled from up to ``sample_rows`` rows where it is
    filled instead. ``hints`` (column -> header role) make sure that a column the header
    calls a birth date or a phone is parsed as one; ``parse_dates=False`` leaves dates
    unparsed (their day order needs only the shape counts).
    """
    first = df.select(*[_col(c) for c in columns]).limit(sample_rows).cache()
    more = None
    try:
        shapes = _shape_counts(_long(first, columns))
        rows = max((s["rows"] for s in shapes.values()), default=0.0)
        sparse = [c for c in columns if shapes.get(c, {}).get("n", 0) < min(20, sample_rows)]
        values = _long(first, columns)
        if rows >= sample_rows and sparse:
            filled = df.filter(F.coalesce(*[_col(c) for c in sparse]).isNotNull())
            more = filled.select(*[_col(c) for c in sparse]).limit(sample_rows).cache()
            shapes.update(_shape_counts(_long(more, sparse)))
            dense = [c for c in columns if c not in sparse]
            values = _long(more, sparse).unionByName(_long(first, dense)) if dense else _long(more, sparse)
        orders = {
            c: _Profile(s).day_order[0]
            for c, s in shapes.items()
            if parse_dates and s["n"] and (s["date_shape"] >= 0.3 * s["n"] or hints.get(c) == "birth_date")
        }
        phones = [
            c for c, s in shapes.items() if s["n"] and (s["phone_shape"] >= 0.3 * s["n"] or hints.get(c) == "phone")
        ]
        dates, numbers = _date_counts(values, orders), _phone_counts(values, sorted(phones))
    finally:
        first.unpersist()
        if more is not None:
            more.unpersist()
    return {c: _Profile({**shapes.get(c, {}), **dates.get(c, {}), **numbers.get(c, {})}) for c in columns}


# --------------------------------------------------------------------------------------------
# Deciding
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Evidence:
    """What the values alone say: a role (or None), the kind of content, its strength, in words."""

    role: str | None
    kind: str  # email, flag, date, phone, code, address, text, mixed, empty
    strength: float
    text: str


# Kinds of content a header's role can hold without doubt.
_ACCEPTS = {
    "email": {"email"},
    "phone": {"phone"},
    "birth_date": {"date"},
    "national_id": {"code", "phone", "date", "mixed"},
    "postcode": {"code", "text"},
    "street_number": {"code"},
    "street": {"address", "text", "code"},
    **{role: {"text", "address"} for role in ("given_name", "family_name", "full_name", "locality", "region")},
}
_DECISIVE = {"email", "date", "phone", "flag"}  # kinds clear enough to overturn a header


def _content_evidence(p: _Profile) -> _Evidence:
    if p.n == 0:
        return _Evidence(None, "empty", 0.0, "no values in the sample")
    of = f"of {p.n} sampled value{'s' if p.n != 1 else ''}"
    if p.share("email") >= 0.6:
        return _Evidence("email", "email", p.share("email"), f"{p.share('email'):.0%} {of} are email addresses")
    if p.share("flag") >= 0.8:
        return _Evidence("other", "flag", p.share("flag"), f"{p.share('flag'):.0%} {of} are yes/no flags")
    if p.share("date") >= 0.6:
        return _date_evidence(p, of)
    if p.share("ssn") >= 0.6:  # before phones: 123-45-6789 is valid in some numbering plan
        return _Evidence("national_id", "code", p.share("ssn"), f"{p.share('ssn'):.0%} {of} are written 123-45-6789")
    if p.share("phone_any") >= 0.6:
        region, local = p.phone_region, p.n - p.counts.get("plus", 0.0)
        where = f"; default region {region}" if region else "; those without + of no one country" if local else ""
        text = f"{p.share('phone_any'):.0%} {of} are valid phone numbers{where}"
        return _Evidence("phone", "phone", p.share("phone_any"), text)
    if p.share("street") >= 0.5:
        return _Evidence("street", "address", p.share("street"), f"{p.share('street'):.0%} {of} read as street lines")
    if p.share("digits") >= 0.8:
        return _digit_evidence(p, of)
    if p.share("postcode") >= 0.6:
        return _Evidence("postcode", "code", p.share("postcode"), f"{p.share('postcode'):.0%} {of} are postcodes")
    if p.share("id_like") >= 0.6 and p.share("distinct") >= 0.5:
        text = f"{p.share('id_like'):.0%} {of} are codes of letters and digits, mostly different"
        return _Evidence("national_id", "code", p.share("id_like"), text)
    if p.share("words") >= 0.8:
        return _word_evidence(p, of)
    return _Evidence(None, "mixed", 0.0, f"no common pattern in {p.n} sampled values")


def _date_evidence(p: _Profile, of: str) -> _Evidence:
    order, ambiguous = p.day_order
    share = p.share("date")
    how = {"YMD": "year first", "MDY": "month first", "DMY": "day first"}[order]
    how += " (day order ambiguous)" if ambiguous else ""
    if p.share("time") >= 0.3:
        return _Evidence("other", "date", share, f"{share:.0%} {of} are dates with a time of day, not birth dates")
    if p.share("birth_years") < 0.8 * share:
        return _Evidence("other", "date", share, f"{share:.0%} {of} are dates, but not in birth years")
    return _Evidence("birth_date", "date", share, f"{share:.0%} {of} parse as dates, {how}")


def _digit_evidence(p: _Profile, of: str) -> _Evidence:
    lengths = {k: p.counts[f"len{k}"] for k in range(1, _MAX_DIGITS + 1)}

    def share(low: int, high: int) -> float:
        return sum(lengths[k] for k in range(low, high + 1)) / p.counts["digits"]

    top = max(lengths, key=lambda k: (lengths[k], -k))
    strength = p.share("digits")
    if share(4, 6) >= 0.9:
        size = f"{top}-digit" if share(top, top) >= 0.9 else "4-6 digit"
        return _Evidence("postcode", "code", strength, f"{strength:.0%} {of} are {size} numbers")
    if share(1, 5) >= 0.9 and share(1, 3) >= 0.5 and p.share("leading_zero") < 0.05:  # counts start with 0
        return _Evidence("street_number", "code", strength, f"{strength:.0%} {of} are short numbers")
    if share(6, _MAX_DIGITS) >= 0.9 and p.share("distinct") >= 0.5:
        size = f"{top}" if share(top, top) >= 0.9 else f"6-{_MAX_DIGITS}"
        return _Evidence(
            "national_id", "code", strength, f"{strength:.0%} {of} are {size}-digit numbers, mostly different"
        )
    return _Evidence(None, "code", 0.3, f"{strength:.0%} {of} are numbers")


def _word_evidence(p: _Profile, of: str) -> _Evidence:
    words, given = p.share("words"), p.share("given_first")
    if p.share("code") >= 0.8:
        return _Evidence("region", "text", p.share("code"), f"{p.share('code'):.0%} {of} are 2-3 letter codes")
    if p.share("multi") >= 0.7 and given >= 0.1:
        return _Evidence("full_name", "text", words, f"{words:.0%} {of} are words, {given:.0%} start with a given name")
    if p.share("multi") < 0.3 and given >= 0.1:
        return _Evidence("given_name", "text", words, f"{given:.0%} {of} are known given names")
    return _Evidence(None, "text", 0.0, f"{words:.0%} {of} are words (names or places)")


def _decide(column: str, header: _HeaderGuess | None, ev: _Evidence, p: _Profile) -> ColumnRole:
    if header is not None and header.strong:
        return _decide_strong(column, header, ev, p)
    if header is not None:  # weak: the values decide
        if ev.role == header.role:
            return ColumnRole(column, header.role, 0.85, f"{header.text}; {ev.text}")
        if ev.role is not None and ev.strength >= 0.6:
            return ColumnRole(column, ev.role, _content_confidence(ev), f"{ev.text}; {header.text} only")
        if ev.kind in _ACCEPTS.get(header.role, ()):
            return ColumnRole(column, header.role, 0.65, f"{header.text}; {ev.text}")
        return ColumnRole(column, "other", 0.5, f"{header.text}, but {ev.text}")
    if ev.role is not None and ev.strength >= 0.5:
        return ColumnRole(column, ev.role, _content_confidence(ev), f"{ev.text}; header {column!r} says nothing")
    return ColumnRole(column, "other", 0.5, f"header {column!r} says nothing; {ev.text}")


def _decide_strong(column: str, header: _HeaderGuess, ev: _Evidence, p: _Profile) -> ColumnRole:
    role = header.role
    if role == "other":
        return ColumnRole(column, "other", 0.9, header.text)
    if ev.kind == "empty":
        return ColumnRole(column, role, 0.6, f"{header.text}; {ev.text}")
    if ev.role == role:
        return ColumnRole(column, role, 0.95, f"{header.text}; {ev.text}")
    if ev.kind in _ACCEPTS[role]:
        return ColumnRole(column, role, 0.85 if ev.role is None else 0.75, f"{header.text}; {ev.text}")
    if ev.kind in _DECISIVE and ev.strength >= 0.8 and ev.role is not None:
        return ColumnRole(column, ev.role, _content_confidence(ev), f"{header.text}, but {ev.text}")
    shortfall = {
        "birth_date": ("date", "parse as dates"),
        "phone": ("phone_any", "are valid phone numbers"),
        "email": ("email", "are email addresses"),
    }.get(role)
    if shortfall is not None:  # the header is kept, but its column may come out empty
        name, what = shortfall
        return ColumnRole(column, role, 0.5, f"{header.text}, but only {p.share(name):.0%} of {p.n} {what}")
    return ColumnRole(column, role, 0.5, f"{header.text}, but {ev.text}")


def _content_confidence(ev: _Evidence) -> float:
    return round(min(0.9, 0.4 + 0.5 * ev.strength), 2)


def infer_roles(df: DataFrame, id_column: str, *, sample_rows: int = 2000) -> list[ColumnRole]:
    """The role of every column but the id and ``_input``, from its header and a sample.

    Args:
        df: the people (from :func:`read_people_csv`, or any DataFrame).
        id_column: the id column; it gets no role.
        sample_rows: rows profiled (the first ones, see the module docstring).

    Returns:
        One :class:`ColumnRole` per column, in column order. Several columns may share a
        role (two address lines are both ``street``; :func:`match_frame` joins them in order).

    Raises:
        MissingColumnError: ``id_column`` is not a column of ``df``.

    Example:
        >>> print(format_roles(infer_roles(people, "rec_id")))
    """
    if id_column not in df.columns:
        raise MissingColumnError("infer_roles: id column", [id_column], df.columns)
    columns = [c for c in df.columns if c not in (id_column, INPUT_COLUMN)]
    if not columns:
        return []
    headers = {c: _header_guess(c) for c in columns}
    hints = {c: h.role for c, h in headers.items() if h is not None}
    profiles = _profiles(df, columns, sample_rows, hints)
    roles = [_decide(c, headers[c], _content_evidence(profiles[c]), profiles[c]) for c in columns]
    log.info("infer_roles: %d columns, %d with a role for matching", len(roles), sum(r.role != "other" for r in roles))
    return roles


def override_roles(roles: Sequence[ColumnRole], overrides: dict[str, str]) -> list[ColumnRole]:
    """``roles`` with some columns' roles set by hand (``{"col7": "email"}``), confidence 1.

    Raises:
        InputError: a column that is not among ``roles`` or a role not in :data:`ROLES`.
    """
    known = {r.column for r in roles}
    for column, role in overrides.items():
        if column not in known:
            raise InputError(f"role override: no column {column!r}; columns: {', '.join(sorted(known))}")
        if role not in ROLES:
            raise InputError(f"role override for {column!r}: {role!r} is not one of {', '.join(ROLES)}")
    return [
        ColumnRole(r.column, overrides[r.column], 1.0, "set by hand") if r.column in overrides else r for r in roles
    ]


def format_roles(roles: Iterable[ColumnRole]) -> str:
    """A console table of the roles: column, role, confidence, reason.

    Example:
        >>> print(format_roles([ColumnRole("D.O.B.", "birth_date", 0.95, "header 'D.O.B.' names ...")]))
        column  role        confidence  reason
        D.O.B.  birth_date        0.95  header 'D.O.B.' names ...
    """
    rows = [("column", "role", "confidence", "reason")]
    rows += [(r.column, r.role, f"{r.confidence:.2f}", r.reason) for r in roles]
    wide = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [f"{c:<{wide[0]}}  {r:<{wide[1]}}  {conf:>{wide[2]}}  {why}" for c, r, conf, why in rows]
    return "\n".join(line.rstrip() for line in lines)


# --------------------------------------------------------------------------------------------
# The match frame
# --------------------------------------------------------------------------------------------

# Output columns (names of silver.customer_records where there is one) each role feeds.
ROLE_OUTPUTS = {
    "given_name": ("given_name_key",),
    "family_name": ("family_name_key",),
    "full_name": ("given_name_key", "family_name_key"),
    "birth_date": ("birth_date",),
    "street_number": ("street_number",),
    "street": ("street_number", "street"),
    "locality": ("city",),
    "postcode": ("postcode",),
    "region": ("region",),
    "phone": ("phone_e164",),
    "email": ("email_key", "email_valid", "email_is_role"),
    "national_id": ("national_id",),
}
MATCH_COLUMNS = (
    "given_name_key", "family_name_key", "birth_date", "street_number", "street", "city", "postcode", "region",
    "phone_e164", "email_key", "email_valid", "email_is_role", "national_id",
)  # fmt: skip


def match_columns(roles: Iterable[ColumnRole]) -> tuple[str, ...]:
    """The columns :func:`match_frame` makes for these roles, besides record_key and _input."""
    made = {out for r in roles for out in ROLE_OUTPUTS.get(r.role, ())}
    return tuple(c for c in MATCH_COLUMNS if c in made)


def _by_role(roles: Iterable[ColumnRole]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for r in roles:
        if r.role != "other":
            out.setdefault(r.role, []).append(r.column)
    return out


def _raw(columns: list[str], role: str) -> Column:
    """One text value from a role's columns: address lines joined in order, others the first non-empty."""
    texts = [squish(_col(c).cast("string")) for c in columns]
    if role == "street":
        joined = F.concat_ws(" ", *texts)
        return F.when(joined != "", joined)
    return F.coalesce(*texts)


def infer_formats(df: DataFrame, roles: Iterable[ColumnRole], *, sample_rows: int = 2000) -> dict[str, str | None]:
    """How the sample writes its birth dates and phone numbers.

    Returns:
        ``{column: day order}`` for ``birth_date`` columns (``YMD``, ``MDY``, ``DMY``) and
        ``{column: default region or None}`` for ``phone`` columns: the region under which
        most sampled numbers written without "+" are valid, or None when they all carry "+" or
        are of several countries (they are not guessed then).
    """
    by_role = _by_role(roles)
    dates, phones = by_role.get("birth_date", []), by_role.get("phone", [])
    if not dates and not phones:
        return {}
    hints = {**{c: "birth_date" for c in dates}, **{c: "phone" for c in phones}}
    profiles = _profiles(df, list(hints), sample_rows, hints, parse_dates=False)
    return {
        c: profiles[c].day_order[0] if role == "birth_date" else profiles[c].phone_region for c, role in hints.items()
    }


def match_frame(
    df: DataFrame,
    id_column: str,
    roles: Sequence[ColumnRole],
    *,
    country: str | None = None,
    formats: dict[str, str | None] | None = None,
    sample_rows: int = 2000,
) -> DataFrame:
    """Standardized match columns, one row per input row, with the project's cleaners.

    ``record_key`` is the id as text; then, for the roles present, ``given_name_key`` and
    ``family_name_key`` (split from a full name where there are no separate columns),
    ``birth_date`` (``yyyy-MM-dd``), ``street_number``, ``street``, ``city``, ``postcode``,
    ``region``, ``phone_e164``, ``email_key`` (with ``email_valid`` and ``email_is_role`` for
    the email rule), ``national_id`` (letters and digits, upper case); ``_input`` is kept.
    Columns are text (Zingg compares strings) except the two email flags.

    Args:
        df: the people.
        id_column: their id column.
        roles: from :func:`infer_roles` (or edited).
        country: ISO alpha-2 of the people's country: default region of phone numbers and
            the postcode format. Without it, phone regions come from ``formats`` and
            postcodes are only upper-cased and spaced.
        formats: ``{column: day order or phone region}`` as :func:`infer_formats` returns;
            inferred from a sample when None.
        sample_rows: rows sampled for ``formats``.

    Raises:
        MissingColumnError: the id column or a role's column is not in ``df``.
    """
    missing = [c for c in [id_column, *(r.column for r in roles)] if c not in df.columns]
    if missing:
        raise MissingColumnError("match_frame", missing, df.columns)
    by_role = _by_role(roles)
    if formats is None:
        formats = infer_formats(df, roles, sample_rows=sample_rows)
    # Phones and birth dates are parsed per column (each has its own region or day order).
    phones = {f"_phone_{i}": c for i, c in enumerate(by_role.get("phone", []))}
    births = {f"_birth_{i}": c for i, c in enumerate(by_role.get("birth_date", []))}
    keep = [INPUT_COLUMN] if INPUT_COLUMN in df.columns else []
    base = df.select(
        F.trim(_col(id_column).cast("string")).alias("record_key"),
        *[_raw(columns, role).alias(f"_raw_{role}") for role, columns in by_role.items()],
        *[squish(_col(c).cast("string")).alias(name) for name, c in {**phones, **births}.items()],
        *keep,
    )
    parsed = base.withColumns(_parsed_columns(by_role, phones, births, country, formats))
    cleaned = parsed.withColumns(_clean_columns(by_role, country))
    return cleaned.select("record_key", *match_columns(roles), *keep)


def _parsed_columns(
    by_role: dict[str, list[str]],
    phones: dict[str, str],
    births: dict[str, str],
    country: str | None,
    formats: dict[str, str | None],
) -> dict[str, Column]:
    """Struct, phone and date columns computed once; :func:`_clean_columns` reads them."""
    out: dict[str, Column] = {}
    if "full_name" in by_role:
        # NFKC is left out: name_key folds accents and full-width forms itself, and the
        # pandas UDF would cost a Python round trip per row.
        out["_name"] = parse_full_name(F.col("_raw_full_name"), unicode_form=False)
    if "email" in by_role:
        # Cleaned once here: standardize_email's struct would repeat the cleaning in each field.
        out["_email"] = clean_email(F.col("_raw_email"))
    if phones:  # the first valid number wins
        out["phone_e164"] = F.coalesce(
            *[parse_phone(F.col(n), country or formats.get(c))["e164"] for n, c in phones.items()]
        )
    if births:
        dates = [date_parser(formats.get(c) or "YMD")(F.col(n)) for n, c in births.items()]
        out["birth_date"] = F.coalesce(*dates).cast("string")
    return out


def _clean_columns(by_role: dict[str, list[str]], country: str | None) -> dict[str, Column]:
    def raw(role: str) -> Column:
        return F.col(f"_raw_{role}") if role in by_role else F.lit(None).cast("string")

    out: dict[str, Column] = {}
    if by_role.keys() & {"given_name", "full_name"}:
        given = (
            F.coalesce(raw("given_name"), F.col("_name.given_name")) if "full_name" in by_role else raw("given_name")
        )
        out["given_name_key"] = given_name_key(given)
    if by_role.keys() & {"family_name", "full_name"}:
        family = raw("family_name")
        if "full_name" in by_role:
            family = F.coalesce(family, F.col("_name.family_name"))
        out["family_name_key"] = name_key(family)
    if by_role.keys() & {"street", "street_number"}:
        out["street_number"] = F.coalesce(street_number(raw("street_number")), street_number(raw("street")))
    if "street" in by_role:
        out["street"] = normalize_street(raw("street"))
    if "locality" in by_role:
        out["city"] = proper_case(raw("locality"))
    if "postcode" in by_role:
        out["postcode"] = normalize_postcode(raw("postcode"), F.lit(country).cast("string"))
    if "region" in by_role:
        out["region"] = raw("region")
    if "email" in by_role:
        email = F.col("_email")
        out["email_key"] = email_key(email)
        out["email_valid"] = F.when(email.isNotNull(), email_is_valid(email))
        out["email_is_role"] = email_is_role(email)
    if "national_id" in by_role:
        text = F.upper(F.regexp_replace(raw("national_id"), r"[^\p{L}\p{N}]+", ""))
        out["national_id"] = F.when(text != "", text)
    return out


# --------------------------------------------------------------------------------------------
# matching.yml
# --------------------------------------------------------------------------------------------

FIELD_TYPES = {
    "given_name_key": "FUZZY,NULL_OR_BLANK",
    "family_name_key": "FUZZY,NULL_OR_BLANK",
    "birth_date": "FUZZY,NULL_OR_BLANK",
    "email_key": "EMAIL,NULL_OR_BLANK",
    "phone_e164": "FUZZY,NULL_OR_BLANK",
    "national_id": "FUZZY,NULL_OR_BLANK",
    "street_number": "EXACT,NULL_OR_BLANK",
    "street": "FUZZY,NULL_OR_BLANK",
    "city": "FUZZY,NULL_OR_BLANK",
    "postcode": "EXACT,NULL_OR_BLANK",
    "region": "EXACT,NULL_OR_BLANK",
}
# Candidate keys, narrowest ideas first; a key is used when its columns exist.
BLOCKING_KEYS = (
    ("names", ("sorted(given_name_key, family_name_key)",)),
    ("family_birth", ("family_name_key", "birth_date")),
    ("given_birth", ("given_name_key", "birth_date")),
    ("sounds_birth_year", ("soundex(given_name_key)", "soundex(family_name_key)", "year(birth_date)")),
    ("national_id", ("national_id",)),
    ("email", ("email_key",)),
    ("email_user", ("local_part(email_key)", "prefix(family_name_key, 1)")),
    ("phone", ("phone_e164",)),
    ("postcode_family", ("postcode", "prefix(family_name_key, 3)")),
    ("postcode_birth", ("postcode", "birth_date")),
    ("number_postcode", ("street_number", "postcode")),
    ("street_given", ("street", "prefix(given_name_key, 1)")),
    ("city_family", ("city", "family_name_key")),
)
_RULE_NEEDS = {"email": ("email_key", "given_name_key"), "phone": ("phone_e164",)}


def _part_columns(part: str) -> list[str]:
    _, args = parse_blocking_part(part)  # type: ignore[misc]  # every part of BLOCKING_KEYS parses
    return [a for a in args if not a.isdigit()]


# Names: agreeing on a common one ("smith") is weaker evidence than on a rare one.
_FREQUENCY_FIELDS = ("given_name_key", "family_name_key")


def matching_config_for(roles: Sequence[ColumnRole]) -> dict:
    """The matching settings for a file with these roles, as the plain mapping ``matching.yml`` holds.

    Fields: every match column with a Zingg match type per kind (names, streets and places
    FUZZY; postcode, region and house number EXACT; email EMAIL; each with NULL_OR_BLANK so
    that two empty values are not agreement). Blocking keys and rules: those whose columns
    exist (the ``reference`` rule never: files name no other source). The rest: defaults.

    Raises:
        InputError: no column has a role the match model can compare.

    Example:
        >>> cfg = parse(MatchingConfig, matching_config_for(roles), file="inferred")
    """
    columns = [c for c in match_columns(roles) if c in FIELD_TYPES]
    if not columns:
        found = ", ".join(f"{r.column} ({r.role})" for r in roles) or "no columns"
        raise InputError(
            f"no column has a role the match model can compare; found: {found}. Give the columns telling "
            "headers (given_name, surname, date_of_birth, email ...) or set their roles by hand."
        )
    present = set(columns)
    keys = [
        {"name": name, "parts": list(parts)}
        for name, parts in BLOCKING_KEYS
        if all(set(_part_columns(p)) <= present for p in parts)
    ]
    keys = keys or [{"name": c, "parts": [c]} for c in columns]
    blocking_defaults = {f.name: f.default for f in dataclasses.fields(BlockingConfig) if f.name != "keys"}
    matching_defaults = {f.name: f.default for f in dataclasses.fields(MatchingConfig)}
    return {
        "fields": [
            {"name": c, "match_type": FIELD_TYPES[c], **({"term_frequency": True} if c in _FREQUENCY_FIELDS else {})}
            for c in columns
        ],
        "blocking": {**blocking_defaults, "keys": keys},
        "rules": [rule for rule, needs in _RULE_NEEDS.items() if set(needs) <= present],
        "max_key_frequency": matching_defaults["max_key_frequency"],
        "model_dir": matching_defaults["model_dir"],
        "training": _plain(dataclasses.asdict(TrainingConfig())),
        "clustering": _plain(dataclasses.asdict(ClusteringConfig())),
    }


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


_YAML_WORDS = ("true", "false", "null", "yes", "no", "on", "off", "y", "n")  # plain, YAML would not read them as text


def _flow(value) -> str:
    """A YAML flow scalar, list or mapping (strings in JSON quotes, which YAML reads the same)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_flow(v)}" for k, v in value.items()) + "}"
    text = str(value)
    plain = re.fullmatch(r"[A-Za-z_][A-Za-z0-9_/]*", text) and text.lower() not in _YAML_WORDS
    return text if plain else json.dumps(text)


def render_matching_yaml(roles: Sequence[ColumnRole]) -> str:
    """:func:`matching_config_for` as a commented ``matching.yml``, the inferred roles on top.

    The text parses into :class:`~cdi_spark.config.MatchingConfig`.
    """
    cfg = matching_config_for(roles)
    table = "\n".join("#   " + line.replace("\n", " ") for line in format_roles(roles).splitlines())
    lines = [
        "# Matching settings inferred by `cdi-spark init-matching` from these column roles:",
        "#",
        table,
        "#",
        "# Edit freely; `cdi-spark resolve-file --matching <this file>` reads it.",
        "",
        "# What the match model compares (columns of the match frame). NULL_OR_BLANK makes",
        '# "both missing" count as no evidence instead of agreement.',
        "fields:",
        *[f"  - {_flow(f)}" for f in cfg["fields"]],
        "",
        "# Candidate pairs: records sharing every part of any one key.",
        "blocking:",
        *[f"  {k}: {_flow(v)}" for k, v in cfg["blocking"].items() if k != "keys"],
        "  keys:",
        *[f"    - {_flow(k)}" for k in cfg["blocking"]["keys"]],
        "",
        "# Deterministic rules: edges without the model (email and phone also need compatible",
        "# given names; reference links records of other sources and never applies to files).",
        f"rules: {_flow(cfg['rules'])}",
        f"max_key_frequency: {_flow(cfg['max_key_frequency'])}",
        f"model_dir: {_flow(cfg['model_dir'])}",
        "",
    ]
    for section in ("training", "clustering"):
        lines += [f"{section}:", *[f"  {k}: {_flow(v)}" for k, v in cfg[section].items()]]
    return "\n".join(lines) + "\n"
