"""Same seed, same rows, however the data is partitioned; another seed, other rows."""

from __future__ import annotations

from chispa import assert_df_equality

from cdi_spark.generate import b2b, b2c
from cdi_spark.generate.people import latent_people
from cdi_spark.generate.rand import Draws


def _contacts(spark, seed, partitions=None):
    people = latent_people(spark, 100, seed)
    if partitions:
        people = people.repartition(partitions)
    return b2b.crm_contacts(people, Draws(seed), 100)


def test_same_seed_gives_the_same_rows_whatever_the_partitioning(spark):
    first = _contacts(spark, 11)
    second = _contacts(spark, 11, partitions=5)
    assert_df_equality(first, second, ignore_row_order=True)


def test_another_seed_gives_other_rows(spark):
    a = _contacts(spark, 11).select("FirstName", "LastName", "Email")
    b = _contacts(spark, 12).select("FirstName", "LastName", "Email")
    assert a.exceptAll(b).count() > 0.9 * a.count()


def test_shop_totals_match_the_orders_written(spark):
    people = latent_people(spark, 100, 3)
    customers = b2c.shop_customers(people, Draws(3), 100)
    orders = b2c.shop_orders(people, Draws(3), 100)
    per_customer = orders.groupBy("Customer ID").count()
    joined = customers.join(per_customer, "Customer ID", "left").fillna(0, ["count"])
    assert joined.filter("cast(`Total Orders` as int) != count").count() == 0
