"""Billing, shop and product-analytics exports (people as customers and users).

Same conventions as :mod:`cdi_spark.generate.b2b`: hidden ``_person_id`` and ``_key``.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from cdi_spark.generate import ids, noise, vocab
from cdi_spark.generate.b2b import ctry, pid, slots
from cdi_spark.generate.rand import Draws

SHOP_ID_BASE = 6_000_000_000_000
ORDER_ID_BASE = 5_000_000_000_000


def _full_name(r: Draws, key: Column, purpose: str) -> Column:
    full = F.concat_ws(" ", noise.nickname(F.col("first_name"), 0.08, r, key), F.col("last_name"))
    return noise.case_and_space(noise.typo(full, 0.03, r, purpose, key), 0.05, r, purpose, key)


def _personal_or_family(r: Draws, key: Column, purpose: str, p_family: float) -> Column:
    return F.when(F.col("in_household") & r.chance(p_family, f"{purpose}_fam", key),
                  F.col("family_email")).otherwise(
        noise.email_variant(F.col("email"), 0.12, r, purpose, key))


def billing_customers(people: DataFrame, r: Draws, n_people: int) -> DataFrame:
    """Stripe-like customers; some carry ``metadata.crm_id`` of the person's CRM contact."""
    df = people.filter("in_billing").withColumn("slot", slots(r, 0.02, "bill_dup"))
    key = pid() * 2 + F.col("slot")
    home = F.when(F.col("mover") & r.chance(0.3, "bill_stale", key), F.col("old_home")) \
        .otherwise(F.col("home"))
    addr = F.struct(noise.street(home.line1, 0.3, r, "bill", key).alias("line1"),
                    home.line2.alias("line2"), home.city.alias("city"),
                    home.postcode.alias("postal_code"), home.region.alias("state"),
                    ctry().alias("country"))
    crm_id = ids.salesforce_id("003", pid() * 2)
    linked = F.col("in_crm") & (F.col("slot") == 0) & r.chance(0.6, "bill_crm", key)
    meta = F.when(linked, F.create_map(F.lit("crm_id"), crm_id)).otherwise(
        F.create_map().cast("map<string,string>"))
    style = noise.phone_style(r, "bill", key, ("E164", "INTERNATIONAL", "NATIONAL"))
    cid = ids.stripe_id("cus_", key)
    return df.select(
        cid.alias("id"), F.lit("customer").alias("object"),
        noise.maybe_null(_personal_or_family(r, key, "bill", 0.3), 0.03, r, "bill_e", key)
        .alias("email"),
        noise.maybe_null(_full_name(r, key, "bill_n"), 0.05, r, "bill_n", key).alias("name"),
        noise.maybe_null(noise.phone(ctry(), F.col("mobile"), style), 0.4, r, "bill_ph", key)
        .alias("phone"),
        F.when(~r.chance(0.2, "bill_noaddr", key), addr).alias("address"),
        F.lower(vocab.scalar_map(vocab.CURRENCY)[ctry()]).alias("currency"),
        (F.col("since") + r.randint(0, 200 * 86400, "bill_c", key)).alias("created"),
        meta.alias("metadata"), r.chance(0.04, "bill_del", key).alias("delinquent"),
        pid().alias("_person_id"), cid.alias("_key"))


def billing_invoices(people: DataFrame, r: Draws, n_people: int) -> DataFrame:
    """1-6 invoices per billing customer, in the customer's currency."""
    cus = billing_customers(people, r, n_people).select(
        F.col("id").alias("customer"), "currency", F.col("created").alias("cus_created"),
        F.col("_key").alias("cus_key"))
    df = cus.withColumn("k", F.explode(F.sequence(F.lit(0), invoice_count(r, F.col("cus_key")))))
    return invoices(df, r, F.col("cus_created") + (F.col("k") + 1) * 30 * 86400)


def invoice_count(r: Draws, cus_key: Column) -> Column:
    """Index of a billing customer's last invoice (``0..5``: 1-6 invoices, ``k = 0..n``)."""
    return r.randint(0, 5, "inv", cus_key)


def invoices(df: DataFrame, r: Draws, created: Column) -> DataFrame:
    """Invoice rows for ``df`` (``customer``, ``currency``, ``cus_key``, ``k``) at ``created``."""
    ik = F.concat_ws("/", F.col("cus_key"), F.col("k"))
    due = (r.randint(5, 500, "inv_amt", ik) * 100 + F.lit(99)).cast("long")
    status = r.pick(vocab.str_array(["paid"] * 6 + ["open", "void", "uncollectible"]), "inv_s", ik)
    inv_id = F.concat(F.lit("in_"), F.substring(F.sha2(ik, 256), 1, 24))
    return df.select(
        inv_id.alias("id"), "customer", due.alias("amount_due"),
        F.when(status == "paid", due).otherwise(F.lit(0).cast("long")).alias("amount_paid"),
        "currency", status.alias("status"), created.alias("created"),
        F.lit(None).cast("long").alias("_person_id"), inv_id.alias("_key"))


def order_total(r: Draws, shop_key: Column, k: Column) -> Column:
    """Total of order ``k`` of shop customer ``shop_key``."""
    return F.round(F.lit(9.5) + r.uniform("ord_amt", shop_key, k) * 290, 2)


def _order_count(r: Draws, key: Column, guest: Column) -> Column:
    return F.when(guest, F.lit(1)).otherwise(r.randint(0, 5, "ord_n", key)).cast("int")


def shop_customers(people: DataFrame, r: Draws, n_people: int) -> DataFrame:
    """Shopify-like customers; slot 1 is a guest checkout of a registered customer."""
    df = people.filter("in_shop").withColumn("slot", slots(r, 0.06, "shop_guest"))
    key = pid() * 2 + F.col("slot")
    guest = F.col("slot") == 1
    sid = (F.lit(SHOP_ID_BASE) + key * 7).cast("long")
    n = _order_count(r, key, guest)
    spent = F.aggregate(F.sequence(F.lit(1), n), F.lit(0.0).cast("double"),
                        lambda acc, k: acc + order_total(r, sid, k))
    email = F.when(guest, noise.email_variant(F.col("email"), 0.7, r, "shop_g", key)) \
        .otherwise(_personal_or_family(r, key, "shop", 0.35))
    home = F.when(F.col("mover") & ~r.chance(0.5, "shop_new", key), F.col("old_home")) \
        .otherwise(F.col("home"))
    has_addr = ~guest & ~r.chance(0.1, "shop_noaddr", key)
    a = lambda c: F.when(has_addr, c)  # noqa: E731 - a guest checkout keeps no address
    yes_no = lambda c: F.when(c, "yes").otherwise("no")  # noqa: E731
    return df.select(
        sid.alias("Customer ID"),
        noise.case_and_space(noise.typo(F.col("first_name"), 0.03, r, "shop_fn", key), 0.1, r,
                             "shop_fn", key).alias("First Name"),
        noise.case_and_space(F.col("last_name"), 0.1, r, "shop_ln", key).alias("Last Name"),
        email.alias("Email"),
        yes_no(~guest & r.chance(0.4, "shop_mkt", key)).alias("Accepts Email Marketing"),
        F.lit(None).cast("string").alias("Default Address Company"),
        a(noise.street(home.line1, 0.35, r, "shop", key)).alias("Default Address Address1"),
        a(home.line2).alias("Default Address Address2"),
        a(home.city).alias("Default Address City"),
        a(F.when(ctry().isin("US", "CA", "AU"), home.region))
        .alias("Default Address Province Code"),
        a(ctry()).alias("Default Address Country Code"),
        a(home.postcode).alias("Default Address Zip"),
        noise.maybe_null(noise.phone(ctry(), F.col("mobile"), noise.phone_style(
            r, "shop", key, ("E164", "NATIONAL", "INTERNATIONAL"))), 0.5, r, "shop_ph", key)
        .alias("Phone"),
        F.format_string("%.2f", spent).alias("Total Spent"), n.cast("string").alias("Total Orders"),
        yes_no(r.chance(0.02, "shop_tax", key)).alias("Tax Exempt"),
        ids.us_datetime(F.col("since") + r.randint(0, 100 * 86400, "shop_c", key))
        .alias("Created At"),
        ctry().alias("_country"), F.col("slot").alias("_slot"),
        pid().alias("_person_id"), sid.cast("string").alias("_key"))


def shop_orders(people: DataFrame, r: Draws, n_people: int) -> DataFrame:
    """Orders of shop customers (the count matches each customer's Total Orders)."""
    cus = shop_customers(people, r, n_people)
    sid = F.col("Customer ID")
    df = cus.withColumn("k", F.explode(F.sequence(F.lit(1), F.col("Total Orders").cast("int"))))
    created = F.unix_timestamp(F.col("Created At"), "MM/dd/yyyy HH:mm") \
        + F.col("k") * r.randint(86400, 60 * 86400, "ord_gap", sid)
    return orders(df.filter(F.col("Total Orders").cast("int") > 0), r, created)


def orders(df: DataFrame, r: Draws, created: Column) -> DataFrame:
    """Order rows for ``df`` (shop customer columns, ``_country``, ``k``) placed at ``created``.

    Order ``k`` of a customer has id ``ORDER_ID_BASE + key * 56 + k``: room for 55 orders.
    """
    sid = F.col("Customer ID")
    oid = (F.lit(ORDER_ID_BASE) + (sid - F.lit(SHOP_ID_BASE)) * 8 + F.col("k")).cast("long")
    total = order_total(r, sid, F.col("k"))
    return df.select(
        oid.alias("Order ID"),
        F.concat(F.lit("#"), (oid - F.lit(ORDER_ID_BASE) + 1000).cast("string")).alias("Name"),
        sid.alias("Customer ID"), F.col("Email"), ids.us_datetime(created).alias("Created At"),
        vocab.scalar_map(vocab.CURRENCY)[F.col("_country")].alias("Currency"),
        F.format_string("%.2f", total).alias("Total"),
        F.format_string("%.2f", F.round(total / 1.08, 2)).alias("Subtotal"),
        r.pick(vocab.str_array(["paid"] * 5 + ["refunded", "pending", "partially_refunded"]),
               "ord_fs", oid).alias("Financial Status"),
        F.lit(None).cast("long").alias("_person_id"), oid.cast("string").alias("_key"))
