"""The latent people: one row per real person, the truth every source export is drawn from.

``latent_people(spark, people, seed)`` starts from ``spark.range(people)``; every attribute
is a hash-based draw keyed by the person id (or the household id for what relatives share),
so the frame is the same for a seed however it is partitioned. Nothing here is written out.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from cdi_spark.generate import vocab
from cdi_spark.generate.rand import Draws

# Share of people present in each system (independent draws).
PRESENCE = {"crm": 0.45, "marketing": 0.55, "support": 0.30, "billing": 0.40, "shop": 0.50}
HOUSEHOLD_PAIR_RATE = 0.10   # pairs (2k, 2k+1) living together: same address, family email
COMMON_NAME_RATE = 0.02      # "John Smith" in the country's first city
MOVER_RATE = 0.12            # people with a previous address some systems still hold
ACCOUNTS_PER_PERSON = 1 / 25

_FOLD_FROM = "äöüßéèêëàâáçîïíôóùûúÿñÄÖÜÉÈÀÇÎÔÛ'"
_FOLD_TO = "aousee" + "eeaaacii" + "iooouuuyn" + "AOUEEACIOU"


def ascii_fold(col: Column) -> Column:
    """Accents dropped and apostrophes removed, as people type them into email addresses."""
    return F.translate(col, _FOLD_FROM, _FOLD_TO)


def account_count(people: int) -> int:
    """Number of CRM accounts (employers) for a run of ``people``."""
    return max(5, int(people * ACCOUNTS_PER_PERSON))


def national_number(r: Draws, kind: str, country: Column, key: Column, purpose: str | None = None
                    ) -> Column:
    """A ``mobile`` or ``landline`` national number of ``country``; ``purpose`` varies the draw."""
    purpose = purpose or kind
    entry = r.pick(vocab.lookup(kind, country), f"{purpose}_prefix", key)
    prefix = F.substring_index(entry, "|", 1)
    length = F.substring_index(entry, "|", -1).cast("int")
    rest = r.digits(12, f"{purpose}_digits", key).substr(F.lit(1), length - F.length(prefix))
    return F.concat(prefix, rest)


def _postcode(r: Draws, country: Column, city: Column, key: Column) -> Column:
    d = r.digits(6, "postcode", key)
    city_d = r.digits(3, "postcode_city", city)
    letters = F.upper(F.substring(F.sha2(F.concat(city, key.cast("string")), 256), 1, 6))
    letters = F.translate(letters, "0123456789", "ABCEGHJKLM")
    return (F.when(country.isin("US", "DE", "FR"), F.concat(city_d, F.substring(d, 1, 2)))
            .when(country == "AU", F.concat(F.substring(city_d, 1, 2), F.substring(d, 1, 2)))
            .when(country == "CA", F.concat(F.substring(letters, 1, 1), F.substring(d, 1, 1),
                                            F.substring(letters, 2, 1), F.lit(" "),
                                            F.substring(d, 2, 1), F.substring(letters, 3, 1),
                                            F.substring(d, 3, 1)))
            .otherwise(F.concat(F.substring(letters, 1, 2), F.substring(d, 1, 1), F.lit(" "),
                                F.substring(d, 2, 1), F.substring(letters, 3, 2))))


def address(r: Draws, country: Column, key: Column, purpose: str, city: Column | None = None
            ) -> Column:
    """A home address struct (line1, line2, city, region, postcode) for ``key``."""
    drawn = r.pick(vocab.lookup("city", country), f"{purpose}_c", key)
    city = drawn if city is None else F.coalesce(city, drawn)
    name = r.pick(vocab.lookup("last", country), f"{purpose}_sn", key)
    stype = r.pick(vocab.lookup("street_type", country), f"{purpose}_st", key)
    number = r.randint(1, 420, f"{purpose}_no", key).cast("string")
    line1 = (F.when(country == "DE", F.concat(name, stype, F.lit(" "), number))
             .when(country == "FR", F.concat(number, F.lit(" "), stype, F.lit(" "), name))
             .otherwise(F.concat(number, F.lit(" "), name, F.lit(" "), stype)))
    line2 = F.when(r.chance(0.15, f"{purpose}_l2", key),
                   F.concat(F.lit("Apt "), r.randint(1, 40, f"{purpose}_apt", key).cast("string")))
    region = r.pick(vocab.lookup("region", country), "region", city)
    return F.struct(line1.alias("line1"), line2.alias("line2"), city.alias("city"),
                    region.alias("region"), _postcode(r, country, city, key).alias("postcode"))


def _email_local(r: Draws, first: Column, last: Column, key: Column) -> Column:
    f = F.lower(F.regexp_replace(ascii_fold(first), r"[^A-Za-z]", ""))
    la = F.lower(F.regexp_replace(ascii_fold(last), r"[^A-Za-z]", ""))
    # The person id in the local part keeps two people from ever sharing a personal address
    # by accident; shared addresses are planted on purpose (family emails).
    num = key.cast("string")
    style = r.randint(0, 4, "email_style", key)
    return (F.when(style == 0, F.concat(f, F.lit("."), la, num))
            .when(style == 1, F.concat(f, la, num))
            .when(style == 2, F.concat(F.substring(f, 1, 1), la, num))
            .when(style == 3, F.concat(f, F.lit("_"), la, num))
            .otherwise(F.concat(la, F.lit("."), f, num)))


def latent_people(spark: SparkSession, people: int, seed: int, start: int = 0) -> DataFrame:
    """One row per person with every attribute the sources draw from.

    Args:
        spark: the session.
        people: number of people (ids ``start .. start + people - 1``).
        seed: generator seed.
        start: first person id (a later batch adds people after the first batch's).

    Returns:
        A DataFrame keyed by ``person_id``.
    """
    r = Draws(seed)
    pid = F.col("id")
    pair = F.floor(pid / 2)
    in_pair = r.chance(HOUSEHOLD_PAIR_RATE, "pair", pair)
    hh = F.when(in_pair, -pair - 1).otherwise(pid)          # relatives share hh's draws
    df = spark.range(start, start + people).select(
        pid.alias("person_id"), hh.alias("household_id"), in_pair.alias("in_household"),
        r.weighted(vocab.COUNTRIES, "country", hh).alias("country"),
        r.chance(COMMON_NAME_RATE, "common", pid).alias("common_name"),
        r.chance(0.5, "gender", pid).alias("female"),
        F.date_add(F.lit("1945-01-01").cast("date"),
                   r.randint(0, 20000, "dob", pid).cast("int")).alias("birthdate"),
        r.chance(MOVER_RATE, "mover", pid).alias("mover"),
        r.randint(0, 1 << 30, "account", pid).alias("account_draw"),
        (F.lit(1514764800) + r.randint(0, 6 * 365 * 86400, "since", pid)).alias("since"),
        *[r.chance(p, f"in_{s}", pid).alias(f"in_{s}") for s, p in PRESENCE.items()],
    )
    return df.transform(lambda d: _names_and_contacts(d, r))


def _names_and_contacts(df: DataFrame, r: Draws) -> DataFrame:
    pid, hh, country = F.col("person_id"), F.col("household_id"), F.col("country")
    common = F.col("common_name")
    firsts = F.when(common, vocab.lookup("common_first", country)).when(
        F.col("female"), vocab.lookup("first_f", country)).otherwise(
        vocab.lookup("first_m", country))
    last = F.when(common, F.element_at(vocab.lookup("common_last", country), 1)).otherwise(
        r.pick(vocab.lookup("last", country), "last", hh))
    common_city = F.element_at(vocab.lookup("city", country), 1)
    df = df.withColumns({
        "first_name": r.pick(firsts, "first", pid),
        "last_name": last,
        "home": address(r, country, hh, "home", F.when(common, common_city)),
        "old_home": F.when(F.col("mover"), address(r, country, pid, "old")),
        "mobile": national_number(r, "mobile", country, pid),
        "landline": national_number(r, "landline", country, hh),
    })
    domains = vocab.lookup("email_domain", country)
    family = F.concat(F.lower(F.regexp_replace(ascii_fold(F.col("last_name")), "[^A-Za-z]", "")),
                      F.lit("family"), r.randint(1, 99, "fam_no", hh).cast("string"), F.lit("@"),
                      r.pick(domains, "fam_dom", hh))
    return df.withColumns({
        "email": F.concat(_email_local(r, F.col("first_name"), F.col("last_name"), pid),
                          F.lit("@"), r.pick(domains, "domain", pid)),
        "family_email": F.when(F.col("in_household"), family),
    })
