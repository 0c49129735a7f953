"""Day 2: an incremental export on top of day 1, as the systems would send it the next day.

Same seed and people as day 1; four groups of people, all hash-drawn from the person id:

- **new people** (``NEW_PEOPLE_RATE``): ids ``people ..``, in whichever systems they draw,
  first seen just before ``DAY2_AT``;
- **changed people** (``CHANGE_RATE`` of day 1's): moved, changed email or changed mobile.
  Each system hears of it with ``HEARD_RATE`` and re-exports the records it holds for them
  under the same key, with the change and (where the export has one) a later
  ``LastModifiedDate`` / ``updatedAt``. Only records that really changed are sent;
- **joiners** (``JOIN_RATE`` per system): people known in some system on day 1 who appear in
  a system they were not in: new records of known people, the duplicates to resolve;
- **active customers** (``ACTIVE_RATE``): new tickets, invoices, orders and events for day 1
  records; a shop customer with new orders is re-exported with new totals.

``scale`` multiplies the four rates (not ``HEARD_RATE``): the default 1.0 makes a big day
(5% new people and 10% changed, 15% of the people together); :func:`scale_for_share` gives the
scale of a quieter one, e.g. the 1% of people new or changed that the benchmark's incremental
run uses.

Every row carries a hidden ``_change``: ``new`` (new person, or activity), ``update`` (a day 1
record re-exported) or ``duplicate`` (a new record of a day 1 person).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import reduce

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from cdi_spark.generate import b2b, b2c, events, ids, vocab
from cdi_spark.generate.people import PRESENCE, account_count, address, latent_people, national_number
from cdi_spark.generate.rand import Draws
from cdi_spark.generate.writer import visible

DAY2_AT = 1_811_808_000      # 2027-06-01T00:00:00Z: after every day 1 timestamp
NEW_PEOPLE_RATE = 0.05
CHANGE_RATE = 0.10
CHANGE_KINDS = (("move", 0.4), ("email", 0.3), ("phone", 0.3))
HEARD_RATE = 0.8
JOIN_RATE = 0.03
ACTIVE_RATE = 0.15
ACCOUNT_UPDATE_RATE = 0.10
MIN_ACCOUNT_UPDATES = 3      # so that a small run still has rows to plant bad ones among
_DAY = 20 * 3600             # day 2's exports span the 20 hours after DAY2_AT

Builder = Callable[[DataFrame, Draws, int], DataFrame]


def new_people_count(people: int, scale: float = 1.0) -> int:
    """People first seen on day 2 (ids ``people .. people + count - 1``)."""
    return max(1, round(people * NEW_PEOPLE_RATE * scale))


def scale_for_share(share: float) -> float:
    """The ``scale`` at which ``share`` of day 1's people are new or changed on day 2.

    Raises:
        ValueError: ``share`` is not in (0, 1].
    """
    if not 0 < share <= 1:
        raise ValueError(f"the share of new and changed people must be in (0, 1], found {share}")
    return share / (NEW_PEOPLE_RATE + CHANGE_RATE)


@dataclass(frozen=True)
class Cohorts:
    """The latent people of day 2.

    Attributes:
        day1: day 1's people as day 1 knew them.
        current: day 1's people as of day 2: changes applied everywhere, ``in_<system>`` set
            for joiners, plus ``joined_<system>`` and ``d2_active`` flags.
        new: the new people.
        people: day 1's count.
        total: day 1's and the new people together.
        r: the draws.
        scale: the multiplier of the rates (see the module docstring).
    """

    day1: DataFrame
    current: DataFrame
    new: DataFrame
    people: int
    total: int
    r: Draws
    scale: float = 1.0

    def seen_by(self, system: str) -> DataFrame:
        """Day 1's people as ``system`` knows them on day 2 (the changes it heard of applied)."""
        return _apply_changes(self.day1, self.r, self.heard(system))

    def heard(self, system: str) -> Column:
        """True for a day 1 person with a change that ``system`` heard of."""
        pid = F.col("person_id")
        return _changed(self.r, pid, self.scale) & self.r.chance(HEARD_RATE, f"d2_heard_{system}", pid)

    def active(self, pid: Column | None = None) -> Column:
        """True for a day 1 person (``pid``, by default ``person_id``) with new activity."""
        return self.r.chance(ACTIVE_RATE * self.scale, "d2_active", F.col("person_id") if pid is None else pid)


def _changed(r: Draws, pid: Column, scale: float) -> Column:
    return r.chance(CHANGE_RATE * scale, "d2_change", pid)


def cohorts(spark: SparkSession, people: int, seed: int, scale: float = 1.0) -> Cohorts:
    """Day 2's groups of people for a day 1 of ``people`` people and ``seed``, the rates times ``scale``."""
    most = 1 / (NEW_PEOPLE_RATE + CHANGE_RATE)  # every day 1 person new or changed
    if not 0 < scale <= most:
        raise ValueError(f"scale must be above 0 and at most {most:.2f}, found {scale}")
    r = Draws(seed)
    pid = F.col("person_id")
    day1 = latent_people(spark, people, seed)
    n_new = new_people_count(people, scale)
    new = latent_people(spark, n_new, seed, start=people).withColumn(
        "since", F.lit(DAY2_AT) - r.randint(0, 14 * 86400, "d2_since", pid))
    known = reduce(lambda a, b: a | b, [F.col(f"in_{s}") for s in PRESENCE])
    joined = {s: ~F.col(f"in_{s}") & known & r.chance(JOIN_RATE * scale, f"d2_join_{s}", pid) for s in PRESENCE}
    current = _apply_changes(day1, r, _changed(r, pid, scale)) \
        .withColumns({f"joined_{s}": cond for s, cond in joined.items()}) \
        .withColumns({f"in_{s}": F.col(f"in_{s}") | F.col(f"joined_{s}") for s in PRESENCE}) \
        .withColumn("d2_active", r.chance(ACTIVE_RATE * scale, "d2_active", pid))
    # materialised once, so that each export's plan starts from rows (see api.generate)
    return Cohorts(day1.localCheckpoint(), current.localCheckpoint(), new.localCheckpoint(), people,
                   people + n_new, r, scale)


def _apply_changes(people: DataFrame, r: Draws, when: Column) -> DataFrame:
    """``people`` with the day 2 change of each person for whom ``when`` holds."""
    pid, country = F.col("person_id"), F.col("country")
    kind = F.when(when, r.weighted(CHANGE_KINDS, "d2_kind", pid))
    domains = vocab.lookup("email_domain", country)
    old_domain = F.substring_index(F.col("email"), "@", -1)
    new_email = F.concat(F.substring_index(F.col("email"), "@", 1), F.lit("@"),
                         F.coalesce(r.pick(F.filter(domains, lambda d: d != old_domain), "d2_domain", pid),
                                    F.lit("mail.com")))
    moved = kind == "move"
    return people.withColumns({
        "home": F.when(moved, address(r, country, pid, "d2_home")).otherwise(F.col("home")),
        "mover": F.when(moved, F.lit(False)).otherwise(F.col("mover")),   # every record moves along
        "email": F.when(kind == "email", new_email).otherwise(F.col("email")),
        "mobile": F.when(kind == "phone", national_number(r, "mobile", country, pid, "d2_mobile"))
        .otherwise(F.col("mobile")),
        "d2_change": kind,
    })


def _stamp(r: Draws, purpose: str, key: Column) -> Column:
    """An epoch second within day 2's export window."""
    return F.lit(DAY2_AT) + r.randint(0, _DAY, purpose, key)


def _tag(df: DataFrame, change: str | Column) -> DataFrame:
    return df.withColumn("_change", change if isinstance(change, Column) else F.lit(change))


def _fresh(c: Cohorts, build: Builder, system: str, person_bearing: bool = True) -> DataFrame:
    """Records of new people (``new``) and of joiners of ``system`` (``duplicate``).

    Both are built in one plan; their contacts may pick the accounts new on day 2. The
    activity of either is ``new``.
    """
    joiners = c.current.filter(F.col(f"joined_{system}")).select(*c.new.columns)
    rows = build(c.new.unionByName(joiners), c.r, c.total)
    if not person_bearing:
        return _tag(rows, "new")
    return _tag(rows, F.when(F.col("_person_id") >= c.people, "new").otherwise("duplicate"))


def _changed_rows(old: DataFrame, cur: DataFrame) -> DataFrame:
    """Rows of ``cur`` whose key was in ``old`` with other values (a real update)."""
    cols = visible(old)
    digest = F.sha2(F.to_json(F.struct(*cols)), 256)
    before = old.select("_key", digest.alias("_before"))
    return cur.join(before, "_key").filter(digest != F.col("_before")).drop("_before")


def _updates(c: Cohorts, build: Builder, system: str, stamp: dict[str, Callable[[Column], Column]]
             ) -> DataFrame:
    """Day 1 records of changed people re-exported with the change and later stamps."""
    who = c.heard(system)
    old = build(c.day1.filter(who), c.r, c.people)
    cur = build(c.seen_by(system).filter(who), c.r, c.people)
    rows = _changed_rows(old, cur)
    key = F.col("_key")
    return _tag(rows.withColumns({col: fn(key) for col, fn in stamp.items()}), "update")


def crm_contacts(c: Cohorts) -> DataFrame:
    mod = {"LastModifiedDate": lambda k: ids.iso_ms(_stamp(c.r, "d2_crm_mod", k))}
    return _fresh(c, b2b.crm_contacts, "crm").unionByName(_updates(c, b2b.crm_contacts, "crm", mod))


def marketing_contacts(c: Cohorts) -> DataFrame:
    mod = {"updatedAt": lambda k: _stamp(c.r, "d2_mkt_upd", k) * 1000}
    return _fresh(c, b2b.marketing_contacts, "marketing").unionByName(
        _updates(c, b2b.marketing_contacts, "marketing", mod))


def support_users(c: Cohorts) -> DataFrame:
    return _fresh(c, b2b.support_users, "support").unionByName(
        _updates(c, b2b.support_users, "support", {}))


def billing_customers(c: Cohorts) -> DataFrame:
    return _fresh(c, b2c.billing_customers, "billing").unionByName(
        _updates(c, b2c.billing_customers, "billing", {}))


def crm_accounts(c: Cohorts) -> DataFrame:
    """Accounts first needed by new people's contacts, and a few with a new phone number."""
    new = _tag(b2b.crm_accounts(c.new, c.r, c.total, first=account_count(c.people)), "new")
    idx = F.col("_idx")
    old = b2b.crm_accounts(c.day1, c.r, c.people)
    picked = old.filter((idx < MIN_ACCOUNT_UPDATES) | c.r.chance(ACCOUNT_UPDATE_RATE * c.scale, "d2_acct", idx))
    updated = picked.withColumn("Phone", b2b.account_phone(c.r, idx, F.col("_country"), "d2_acct_ph"))
    return new.unionByName(_tag(updated, "update"))


def _more(n: Column, r: Draws, purpose: str, key: Column, most: int) -> Column:
    """Indexes ``n + 1 .. n + m`` (``m`` in 1..2, never past ``most``) of new activity."""
    return F.explode(F.sequence(n + 1, F.least(n + r.randint(1, 2, purpose, key), F.lit(most))))


def support_tickets(c: Cohorts) -> DataFrame:
    users = b2b.support_users(c.seen_by("support").filter(c.active()), c.r, c.people) \
        .select(F.col("id").alias("requester_id"))
    rid = F.col("requester_id")
    more = users.withColumn("k", _more(b2b.ticket_count(c.r, rid), c.r, "d2_tix_n", rid, 7))
    created = _stamp(c.r, "d2_tix_c", b2b.ticket_id(rid, F.col("k")))
    return _fresh(c, b2b.support_tickets, "support", person_bearing=False).unionByName(
        _tag(b2b.tickets(more, c.r, created), "new"))


def billing_invoices(c: Cohorts) -> DataFrame:
    cus = b2c.billing_customers(c.seen_by("billing").filter(c.active()), c.r, c.people).select(
        F.col("id").alias("customer"), "currency", F.col("_key").alias("cus_key"))
    key = F.col("cus_key")
    more = cus.withColumn("k", _more(b2c.invoice_count(c.r, key), c.r, "d2_inv_n", key, 99))
    created = _stamp(c.r, "d2_inv_c", F.concat_ws("/", key, F.col("k")))
    return _fresh(c, b2c.billing_invoices, "billing", person_bearing=False).unionByName(
        _tag(b2c.invoices(more, c.r, created), "new"))


def _shop_with_new_orders(c: Cohorts) -> tuple[DataFrame, DataFrame]:
    """(day 1 shop customers as day 2 sees them, their new orders); guests order no more."""
    who = c.heard("shop") | c.active()
    cus = b2c.shop_customers(c.seen_by("shop").filter(who), c.r, c.people)
    sid, n = F.col("Customer ID"), F.col("Total Orders").cast("int")
    ordering = c.active(F.col("_person_id")) & (F.col("_slot") == 0)
    orders = cus.filter(ordering).withColumn("k", _more(n, c.r, "d2_ord_n", sid, 55))
    orders = b2c.orders(orders, c.r, _stamp(c.r, "d2_ord_c", F.concat_ws("/", sid, F.col("k"))))
    added = orders.groupBy(F.col("Customer ID").alias("_sid")).agg(
        F.count("*").alias("_n"), F.sum(F.col("Total").cast("double")).alias("_spent"))
    cus = cus.join(added, sid == F.col("_sid"), "left").withColumns({
        "Total Orders": (n + F.coalesce(F.col("_n"), F.lit(0))).cast("string"),
        "Total Spent": F.format_string("%.2f", F.round(F.col("Total Spent").cast("double")
                                                       + F.coalesce(F.col("_spent"), F.lit(0.0)), 2)),
    }).drop("_sid", "_n", "_spent")
    return cus, orders


def shop_customers(c: Cohorts) -> DataFrame:
    who = c.heard("shop") | c.active()
    old = b2c.shop_customers(c.day1.filter(who), c.r, c.people)
    cur, _ = _shop_with_new_orders(c)
    return _fresh(c, b2c.shop_customers, "shop").unionByName(_tag(_changed_rows(old, cur), "update"))


def shop_orders(c: Cohorts) -> DataFrame:
    _, orders = _shop_with_new_orders(c)
    return _fresh(c, b2c.shop_orders, "shop", person_bearing=False).unionByName(_tag(orders, "new"))


def product_events(c: Cohorts) -> DataFrame:
    """Events of new people, of shop joiners and of active users; all with day 2 ids."""
    def build(people: DataFrame, r: Draws, n: int) -> DataFrame:
        return events.product_events(people, r, n, batch="day2", at=DAY2_AT)

    known = c.current.filter(F.col("joined_shop") | F.col("d2_active")).select(*c.new.columns)
    rows = build(c.new.unionByName(known), c.r, c.total)
    return _tag(rows, F.when(F.col("_person_id") < c.people, "duplicate").otherwise("new"))


BUILDERS: dict[str, Callable[[Cohorts], DataFrame]] = {
    "crm_contacts": crm_contacts, "crm_accounts": crm_accounts,
    "marketing_contacts": marketing_contacts, "support_users": support_users,
    "support_tickets": support_tickets, "billing_customers": billing_customers,
    "billing_invoices": billing_invoices, "shop_customers": shop_customers,
    "shop_orders": shop_orders, "product_events": product_events,
}

