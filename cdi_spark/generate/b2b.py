"""CRM, marketing and support exports (people as contacts, leads and requesters).

Each builder returns the export's columns plus two hidden ones the writer drops:
``_person_id`` (the truth; null for records that are not a person) and ``_key`` (the
primary key as a string, used to order rows and to pick the rows of the malformed file).
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from cdi_spark.generate import ids, noise, vocab
from cdi_spark.generate.people import account_count, address, ascii_fold
from cdi_spark.generate.rand import Draws


def pid() -> Column:
    """The person id column of the latent people."""
    return F.col("person_id")


def ctry() -> Column:
    """The person's ISO alpha-2 country column."""
    return F.col("country")


def slots(r: Draws, p_dup: float, purpose: str) -> Column:
    """Slot 0 for every person, plus slot 1 (a second record of the same person) at ``p_dup``."""
    return F.explode(F.when(r.chance(p_dup, purpose, pid()), F.array(F.lit(0), F.lit(1)))
                     .otherwise(F.array(F.lit(0))))


def account_name(r: Draws, idx: Column) -> Column:
    last = r.pick(vocab.lookup("last", F.lit("US")), "acct_name", idx)
    other = r.pick(vocab.lookup("last", F.lit("GB")), "acct_name2", idx)
    suffix = r.pick(vocab.lookup("company_suffix", F.lit("*")), "acct_sfx", idx)
    return F.when(r.chance(0.3, "acct_and", idx), F.concat_ws(" ", last, F.lit("and"), other)) \
        .otherwise(F.concat_ws(" ", last, suffix))


def account_domain(r: Draws, idx: Column) -> Column:
    base = F.lower(F.regexp_replace(ascii_fold(account_name(r, idx)), "[^A-Za-z]", ""))
    return F.concat(base, idx.cast("string"), F.lit(".com"))


def _account_country(r: Draws, idx: Column) -> Column:
    return r.weighted(vocab.COUNTRIES, "acct_country", idx)


def crm_accounts(people: DataFrame, r: Draws, n_people: int, first: int = 0) -> DataFrame:
    """CRM accounts (employers) ``first .. account_count(n_people) - 1``."""
    spark = people.sparkSession
    idx = F.col("id")
    c = _account_country(r, idx)
    addr = address(r, c, -idx - 10**12, "acct")
    created = F.lit(1420070400) + r.randint(0, 8 * 365 * 86400, "acct_created", idx)
    return spark.range(first, account_count(n_people)).select(
        ids.salesforce_id("001", idx).alias("Id"), account_name(r, idx).alias("Name"),
        F.concat(F.lit("www."), account_domain(r, idx)).alias("Website"),
        account_phone(r, idx, c).alias("Phone"),
        noise.street(addr.line1, 0.3, r, "acct", idx).alias("BillingStreet"),
        addr.city.alias("BillingCity"), addr.postcode.alias("BillingPostalCode"),
        noise.country_as("crm_country", c, r, "acct", idx).alias("BillingCountry"),
        noise.maybe_null(r.pick(vocab.lookup("industry", F.lit("*")), "ind", idx), 0.2, r,
                         "ind", idx).alias("Industry"),
        ids.iso_ms(created).alias("CreatedDate"),
        c.alias("_country"), idx.alias("_idx"),
        F.lit(None).cast("long").alias("_person_id"), ids.salesforce_id("001", idx).alias("_key"))


def _account_nsn(r: Draws, idx: Column, c: Column, purpose: str = "acct_ph") -> Column:
    entry = r.pick(vocab.lookup("landline", c), purpose, idx)
    prefix = F.substring_index(entry, "|", 1)
    length = F.substring_index(entry, "|", -1).cast("int")
    return F.concat(prefix, r.digits(12, f"{purpose}_d", idx).substr(F.lit(1),
                                                                     length - F.length(prefix)))


def account_phone(r: Draws, idx: Column, c: Column, purpose: str = "acct_ph") -> Column:
    """The account's switchboard number; another ``purpose`` gives another number."""
    return noise.phone(c, _account_nsn(r, idx, c, purpose), noise.phone_style(r, "acct", idx))


def crm_contacts(people: DataFrame, r: Draws, n_people: int) -> DataFrame:
    """CRM contacts; slot 1 is the same person at a second employer."""
    df = people.filter("in_crm").withColumn("slot", slots(r, 0.04, "crm_2nd_employer"))
    key = pid() * 2 + F.col("slot")
    acct = F.pmod(F.col("account_draw") + F.col("slot") * 7919, F.lit(account_count(n_people)))
    acct_c = _account_country(r, acct)
    first = noise.nickname(F.col("first_name"), 0.15, r, key)
    work_email = F.concat(F.lower(F.regexp_replace(ascii_fold(F.col("first_name")), "[^A-Za-z]",
                                                   "")), F.lit("."),
                          F.lower(F.regexp_replace(ascii_fold(F.col("last_name")), "[^A-Za-z]",
                                                   "")), F.lit("@"), account_domain(r, acct))
    email = F.when((F.col("slot") == 1) | r.chance(0.5, "crm_work", key), work_email) \
        .otherwise(noise.email_variant(F.col("email"), 0.15, r, "crm", key))
    home = F.when(F.col("mover") & r.chance(0.6, "crm_stale", key), F.col("old_home")) \
        .otherwise(F.col("home"))
    has_addr = ~r.chance(0.15, "crm_noaddr", key)
    office = noise.phone(acct_c, _account_nsn(r, acct, acct_c), noise.phone_style(r, "crm_o", key))
    own = noise.phone(ctry(), F.col("landline"), noise.phone_style(r, "crm_l", key))
    created = F.col("since") + F.col("slot") * 86400 * 200
    salutation = F.when(F.col("female"), F.lit("Ms.")).otherwise(F.lit("Mr."))
    return df.select(
        ids.salesforce_id("003", key).alias("Id"),
        ids.salesforce_id("001", acct).alias("AccountId"),
        noise.maybe_null(salutation, 0.4, r, "sal", key).alias("Salutation"),
        noise.case_and_space(noise.typo(first, 0.03, r, "crm_fn", key), 0.03, r, "crm_fn",
                             key).alias("FirstName"),
        noise.case_and_space(noise.typo(F.col("last_name"), 0.03, r, "crm_ln", key), 0.03, r,
                             "crm_ln", key).alias("LastName"),
        noise.maybe_null(email, 0.05, r, "crm_email", key).alias("Email"),
        noise.maybe_null(F.when(r.chance(0.4, "crm_office", key), office).otherwise(own), 0.3, r,
                         "crm_phone", key).alias("Phone"),
        noise.maybe_null(noise.phone(ctry(), F.col("mobile"), noise.phone_style(r, "crm_m", key)),
                         0.35, r, "crm_mobile", key).alias("MobilePhone"),
        F.when(has_addr, noise.street(home.line1, 0.3, r, "crm", key)).alias("MailingStreet"),
        F.when(has_addr, home.city).alias("MailingCity"),
        F.when(has_addr, home.region).alias("MailingState"),
        F.when(has_addr, home.postcode).alias("MailingPostalCode"),
        noise.maybe_null(noise.country_as("crm_country", ctry(), r, "crm", key), 0.05, r, "crm_c",
                         key).alias("MailingCountry"),
        noise.maybe_null(F.date_format("birthdate", "yyyy-MM-dd"), 0.6, r, "crm_dob",
                         key).alias("Birthdate"),
        F.when(r.chance(0.1, "crm_optout", key), "true").otherwise("false")
        .alias("HasOptedOutOfEmail"),
        ids.iso_ms(created).alias("CreatedDate"),
        ids.iso_ms(created + r.randint(0, 400 * 86400, "crm_mod", key)).alias("LastModifiedDate"),
        pid().alias("_person_id"), ids.salesforce_id("003", key).alias("_key"))


def marketing_contacts(people: DataFrame, r: Draws, n_people: int) -> DataFrame:
    """Marketing contacts; slot 1 signed up again with another spelling of the email."""
    df = people.filter("in_marketing").withColumn("slot", slots(r, 0.03, "mkt_dup"))
    key = pid() * 2 + F.col("slot")
    p_variant = F.when(F.col("slot") == 1, 1.0).otherwise(0.12)
    email = F.when(F.col("in_household") & r.chance(0.3, "mkt_fam", key), F.col("family_email")) \
        .otherwise(noise.email_variant(F.col("email"), p_variant, r, "mkt", key))
    home = F.when(F.col("mover") & r.chance(0.3, "mkt_stale", key), F.col("old_home")) \
        .otherwise(F.col("home"))
    created = (F.col("since") - r.randint(0, 300 * 86400, "mkt_created", key)
               + F.col("slot") * 86400 * 90)
    stage = r.pick(vocab.str_array(["subscriber", "lead", "marketingqualifiedlead", "customer",
                                    "opportunity"]), "mkt_stage", key)
    props = F.struct(
        email.alias("email"),
        noise.case_and_space(noise.nickname(F.col("first_name"), 0.1, r, key), 0.05, r, "mkt_fn",
                             key).alias("firstname"),
        noise.typo(F.col("last_name"), 0.03, r, "mkt_ln", key).alias("lastname"),
        noise.maybe_null(noise.phone(ctry(), F.col("mobile"), noise.phone_style(r, "mkt", key)),
                         0.5, r, "mkt_ph", key).alias("phone"),
        noise.maybe_null(noise.country_as("marketing_country", ctry(), r, "mkt", key), 0.1, r,
                         "mkt_c", key).alias("country"),
        noise.maybe_null(home.city, 0.2, r, "mkt_city", key).alias("city"),
        noise.maybe_null(home.postcode, 0.3, r, "mkt_zip", key).alias("zip"),
        stage.alias("lifecyclestage"),
        r.chance(0.08, "mkt_optout", key).alias("hs_email_optout"))
    vid = (F.lit(100000) + key * 3).cast("long")
    return df.select(vid.alias("vid"), props.alias("properties"),
                     (created * 1000 + r.randint(0, 999, "mkt_ms", key)).alias("createdAt"),
                     ((created + r.randint(0, 500 * 86400, "mkt_upd", key)) * 1000)
                     .alias("updatedAt"),
                     pid().alias("_person_id"), vid.cast("string").alias("_key"))


def support_users(people: DataFrame, r: Draws, n_people: int) -> DataFrame:
    """Support requesters; slot 1 wrote in from a second address (work vs personal)."""
    df = people.filter("in_support").withColumn("slot", slots(r, 0.04, "sup_dup"))
    key = pid() * 2 + F.col("slot")
    first = noise.nickname(F.col("first_name"), 0.12, r, key)
    full = F.when(r.chance(0.08, "sup_lastfirst", key),
                  F.concat_ws(", ", F.col("last_name"), first)) \
        .otherwise(F.concat_ws(" ", first, F.col("last_name")))
    email = F.when(F.col("slot") == 1, noise.email_variant(F.col("email"), 1.0, r, "sup2", key)) \
        .when(F.col("in_household") & r.chance(0.1, "sup_fam", key), F.col("family_email")) \
        .otherwise(noise.email_variant(F.col("email"), 0.1, r, "sup", key))
    acct = F.pmod(F.col("account_draw"), F.lit(account_count(n_people)))
    uid = (F.lit(360000000000) + key).cast("long")
    return df.select(
        uid.alias("id"),
        noise.case_and_space(noise.typo(full, 0.03, r, "sup_n", key), 0.08, r, "sup_n", key)
        .alias("name"), email.alias("email"),
        noise.maybe_null(noise.phone(ctry(), F.col("mobile"), noise.phone_style(r, "sup", key)),
                         0.4, r, "sup_ph", key).alias("phone"),
        noise.maybe_null(account_name(r, acct), 0.7, r, "sup_org", key).alias("organization"),
        vocab.scalar_map(vocab.LOCALE)[ctry()].alias("locale"),
        vocab.scalar_map(vocab.TIME_ZONE)[ctry()].alias("time_zone"),
        ids.iso_s(F.col("since") + r.randint(0, 500 * 86400, "sup_c", key)).alias("created_at"),
        pid().alias("_person_id"), uid.cast("string").alias("_key"))


def ticket_count(r: Draws, requester_id: Column) -> Column:
    """Index of a support user's last ticket (``0..4``: 1-5 tickets, ``k = 0..n``)."""
    return r.randint(0, 4, "tix", requester_id)


def ticket_id(requester_id: Column, k: Column) -> Column:
    """Ticket ``k`` of a requester (8 ids per requester: ``k = 0..7``)."""
    return (requester_id - F.lit(360000000000)) * 8 + k


def support_tickets(people: DataFrame, r: Draws, n_people: int) -> DataFrame:
    """1-5 tickets per support user record."""
    users = support_users(people, r, n_people).select(
        F.col("id").alias("requester_id"), F.col("created_at").alias("user_created"))
    df = users.withColumn("k", F.explode(F.sequence(F.lit(0), ticket_count(r, F.col("requester_id")))))
    tid = ticket_id(F.col("requester_id"), F.col("k"))
    created = F.unix_timestamp(F.col("user_created"), "yyyy-MM-dd'T'HH:mm:ss'Z'") \
        + r.randint(3600, 700 * 86400, "tix_c", tid)
    return tickets(df, r, created)


def tickets(df: DataFrame, r: Draws, created: Column) -> DataFrame:
    """Ticket rows for ``df`` (``requester_id``, ``k``) opened at ``created`` (epoch s)."""
    tid = ticket_id(F.col("requester_id"), F.col("k"))
    subjects = ["Cannot log in", "Refund request", "Invoice question", "Order not received",
                "Change my address", "Cancel subscription", "App crashes on start",
                "Password reset", "Wrong item delivered", "Feature request"]
    return df.select(
        tid.cast("long").alias("id"), F.col("requester_id"),
        r.pick(vocab.str_array(subjects), "tix_s", tid).alias("subject"),
        r.pick(vocab.str_array(["closed", "closed", "solved", "open", "pending"]), "tix_st", tid)
        .alias("status"),
        r.pick(vocab.str_array(["low", "normal", "normal", "high", "urgent"]), "tix_p", tid)
        .alias("priority"),
        r.pick(vocab.str_array(["email", "web", "chat", "phone"]), "tix_ch", tid).alias("channel"),
        ids.iso_s(created).alias("created_at"),
        ids.iso_s(created + r.randint(60, 30 * 86400, "tix_u", tid)).alias("updated_at"),
        F.lit(None).cast("long").alias("_person_id"), tid.cast("string").alias("_key"))
