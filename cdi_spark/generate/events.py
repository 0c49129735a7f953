"""Product analytics events (Segment-like), Parquet.

Registered shop customers use 1-2 devices. Per device: one ``identify`` event that ties the
device's ``anonymous_id`` to ``user_id`` (= shop Customer ID) and carries ``traits.email``,
then a few ``track`` / ``page`` events, logged in or not. Some marketing-only people browse
anonymously (no identify, no user id): they are not person-bearing records.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from cdi_spark.generate import ids, vocab
from cdi_spark.generate.b2b import pid
from cdi_spark.generate.b2c import SHOP_ID_BASE
from cdi_spark.generate.rand import Draws

_TRACK = ["Product Viewed", "Product Added", "Checkout Started", "Order Completed",
          "Search Performed"]
_PAGES = ["/", "/products", "/cart", "/account", "/help", "/blog"]


def product_events(people: DataFrame, r: Draws, n_people: int, *, batch: str = "day1",
                   at: int | None = None) -> DataFrame:
    """Identify, track and page events of the people's devices.

    Args:
        people: latent people.
        r: the draws.
        n_people: unused (the builders' common signature).
        batch: events of a later batch get their own ids (the devices stay the same).
        at: epoch seconds; when given, events fall in the day after it instead of the
            person's history.
    """
    users = people.filter(F.col("in_shop") | (F.col("in_marketing") & r.chance(0.3, "anon", pid())))
    dev = users.withColumn("device", F.explode(F.sequence(F.lit(0), r.randint(0, 1, "dev", pid()))))
    dk = F.concat_ws("/", pid().cast("string"), F.col("device").cast("string"))
    dev = dev.select(
        pid(), "in_shop", "email", "since",
        ids.uuid(F.lit(r.seed), F.lit("device"), dk).alias("device_id"),
        ids.uuid(F.lit(r.seed), F.lit("anon"), dk).alias("anonymous_id"),
        F.when(F.col("in_shop"), (F.lit(SHOP_ID_BASE) + pid() * 14).cast("string")).alias("uid"),
        dk.alias("dk"))
    # k = 0 is the identify event of a logged-in device; k >= 1 are track/page events
    ev = dev.withColumn("k", F.explode(F.sequence(
        F.when(F.col("in_shop"), 0).otherwise(1), r.randint(2, 8, "n_ev", F.col("dk")))))
    ek = F.concat_ws("/", F.col("dk"), F.col("k").cast("string"))
    if batch != "day1":
        ek = F.concat_ws("/", F.lit(batch), ek)
    identify = F.col("k") == 0
    track = r.chance(0.6, "ev_track", ek)
    etype = F.when(identify, "identify").when(track, "track").otherwise("page")
    logged_in = identify | (F.col("uid").isNotNull() & r.chance(0.5, "ev_login", ek))
    name = F.when(identify, F.lit(None)).when(track, r.pick(vocab.str_array(_TRACK), "ev_n", ek)) \
        .otherwise(F.lit("Page Viewed"))
    props = F.when(track & ~identify, F.create_map(
        F.lit("product_id"), r.randint(1000, 9999, "ev_pid", ek).cast("string"),
        F.lit("value"), F.format_string("%.2f", r.uniform("ev_v", ek) * 200))) \
        .when(~identify, F.create_map(F.lit("path"), r.pick(vocab.str_array(_PAGES), "ev_p", ek)))\
        .otherwise(F.create_map().cast("map<string,string>"))
    traits = F.when(identify, F.create_map(F.lit("email"), F.col("email"))) \
        .otherwise(F.create_map().cast("map<string,string>"))
    eid = ids.uuid(F.lit(r.seed), F.lit("event"), ek)
    start = (F.col("since") + r.randint(0, 700 * 86400, "ev_ts", F.col("dk")) if at is None
             else F.lit(at) + r.randint(0, 20 * 3600, "ev_ts_at", F.col("dk")))
    ts = F.timestamp_seconds(start + F.col("k") * r.randint(30, 3600, "ev_gap", ek))
    return ev.select(
        eid.alias("event_id"), etype.alias("event_type"), name.alias("event_name"),
        F.when(logged_in, F.col("uid")).alias("user_id"), "anonymous_id",
        F.when(~r.chance(0.05, "ev_nodev", ek), F.col("device_id")).alias("device_id"),
        ts.alias("timestamp"), traits.alias("traits"), props.alias("properties"),
        F.when(identify, pid()).alias("_person_id"), eid.alias("_key"))
