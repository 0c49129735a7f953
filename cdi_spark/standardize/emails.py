"""Email addresses: a clean display form, a syntax check, a matching key and a role flag.

Spark built-ins only. The matching key drops plus-tags ("ann+news@x.com" -> "ann@x.com")
and, for providers that ignore dots in the local part (Gmail), the dots; role and shared
mailboxes (info@, sales@ ...) are flagged, because several people share them and they must
never be a match key on their own.

Flags follow one rule across the cleaners: null input gives a null flag (nothing to
judge), any other input gives true or false.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

from cdi_spark.standardize.names import squish

# Domains that are one mailbox namespace; the key uses the first.
DOMAIN_ALIASES = {"googlemail.com": "gmail.com"}
# Providers that deliver "a.n.n@" and "ann@" to the same mailbox.
DOT_INSENSITIVE_DOMAINS = ("gmail.com",)
# Local parts that name a function or a team, not a person.
ROLE_LOCAL_PARTS = (
    "info", "sales", "support", "admin", "administrator", "noreply", "no-reply",
    "donotreply", "do-not-reply", "office", "hello", "contact", "team", "billing",
    "accounts", "accounting", "enquiries", "inquiries", "help", "helpdesk", "hr", "jobs",
    "careers", "marketing", "media", "press", "service", "customerservice", "webmaster",
    "postmaster", "hostmaster", "abuse", "security", "privacy", "legal", "finance",
    "orders", "shop", "mail", "reception", "feedback", "newsletter", "all", "staff",
)  # fmt: skip

# Pragmatic RFC 5322 subset: dot-atom local part, dotted domain, alphabetic TLD of 2+.
_LOCAL = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
EMAIL_PATTERN = rf"^{_LOCAL}@(?:{_LABEL}\.)+[a-z]{{2,63}}$"


def clean_email(col: Column) -> Column:
    """Lower case, trimmed, "mailto:" and angle brackets removed; blank becomes null.

    Does not judge the syntax (see :func:`email_is_valid`): a typo stays visible.

    Example:
        >>> df.withColumn("email", clean_email(F.col("email")))  # " <Ann@X.COM> " -> "ann@x.com"
    """
    text = F.lower(squish(col))
    text = F.regexp_replace(text, r"^mailto:|^<|>$|\s+", "")
    return F.when(text != "", text)


def email_is_valid(email: Column) -> Column:
    """True when a cleaned address has plausible syntax (at most 254 chars, local part 64).

    Args:
        email: the output of :func:`clean_email`.

    Example:
        >>> df.withColumn("email_valid", email_is_valid(F.col("email")))
    """
    local = F.substring_index(email, "@", 1)
    return email.rlike(EMAIL_PATTERN) & (F.length(email) <= 254) & (F.length(local) <= 64)


def _mapping(values: dict[str, str]) -> Column:
    return F.create_map(*[F.lit(x) for pair in values.items() for x in pair])


def email_key(email: Column) -> Column:
    """Matching key of a cleaned address; null when the address is not valid.

    The plus-tag is dropped from the local part, domain aliases are folded
    (googlemail.com -> gmail.com), and on dot-insensitive providers the dots of the local
    part go too: "A.N.N+promo@GoogleMail.com" -> "ann@gmail.com".

    Args:
        email: the output of :func:`clean_email`.

    Example:
        >>> df.withColumn("email_key", email_key(F.col("email")))
    """
    local = F.substring_index(F.substring_index(email, "@", 1), "+", 1)
    domain = F.substring_index(email, "@", -1)
    domain = F.coalesce(F.try_element_at(_mapping(DOMAIN_ALIASES), domain), domain)
    local = F.when(domain.isin(*DOT_INSENSITIVE_DOMAINS), F.regexp_replace(local, r"\.", ""))
    local = local.otherwise(F.substring_index(F.substring_index(email, "@", 1), "+", 1))
    return F.when(email_is_valid(email) & (local != ""), F.concat_ws("@", local, domain))


def email_is_role(email: Column) -> Column:
    """True when the local part (plus-tag aside) names a role or shared mailbox.

    "info@acme.com", "Sales+eu@acme.com", "no-reply@shop.de" -> true.

    Args:
        email: the output of :func:`clean_email`.

    Example:
        >>> df.withColumn("email_is_role", email_is_role(F.col("email")))
    """
    local = F.substring_index(F.substring_index(email, "@", 1), "+", 1)
    return F.when(email.isNotNull(), local.isin(*ROLE_LOCAL_PARTS))


def standardize_email(col: Column) -> Column:
    """All of the above at once: struct(email, key, is_valid, is_role).

    Example:
        >>> e = standardize_email(F.col("raw_email"))
        >>> df.withColumns({"email": e["email"], "email_key": e["key"]})
    """
    email = clean_email(col)
    return F.struct(
        email.alias("email"),
        email_key(email).alias("key"),
        F.when(email.isNotNull(), email_is_valid(email)).alias("is_valid"),
        email_is_role(email).alias("is_role"),
    )
