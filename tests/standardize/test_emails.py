"""Emails: clean form, syntax check, matching key and role flag, table-driven."""

from __future__ import annotations

from chispa import assert_column_equality
from pyspark.sql import functions as F

from cdi_spark.standardize.emails import standardize_email

# raw, (email, key, is_valid, is_role)
CASES = [
    ("Ann.Lee@Example.com", ("ann.lee@example.com", "ann.lee@example.com", True, False)),
    ("  ann.lee@example.com  ", ("ann.lee@example.com", "ann.lee@example.com", True, False)),
    ("A.N.N+promo@GoogleMail.com", ("a.n.n+promo@googlemail.com", "ann@gmail.com", True, False)),
    ("ann.lee+news@gmail.com", ("ann.lee+news@gmail.com", "annlee@gmail.com", True, False)),
    ("ann.lee+news@yahoo.co.uk", ("ann.lee+news@yahoo.co.uk", "ann.lee@yahoo.co.uk", True, False)),
    ("mailto:Bob@Acme.io", ("bob@acme.io", "bob@acme.io", True, False)),
    ("<bob@acme.io>", ("bob@acme.io", "bob@acme.io", True, False)),
    ("info@acme.com", ("info@acme.com", "info@acme.com", True, True)),
    ("Sales+EU@acme.com", ("sales+eu@acme.com", "sales@acme.com", True, True)),
    ("no-reply@shop.de", ("no-reply@shop.de", "no-reply@shop.de", True, True)),
    ("jürgen@müller.de", ("jürgen@müller.de", None, False, False)),  # IDN: not in the key
    ("ann@@example.com", ("ann@@example.com", None, False, False)),
    ("ann@example", ("ann@example", None, False, False)),
    ("ann.@example.com", ("ann.@example.com", None, False, False)),
    ("ann lee@example.com", ("annlee@example.com", "annlee@example.com", True, False)),
    ("not an email", ("notanemail", None, False, False)),
    ("+tag@gmail.com", ("+tag@gmail.com", None, True, False)),
    ("", (None, None, None, None)),
    ("   ", (None, None, None, None)),
    (None, (None, None, None, None)),
]


def test_standardize_email_cleans_keys_and_flags(spark):
    df = spark.createDataFrame(
        CASES,
        "raw string, expected struct<email:string, key:string, is_valid:boolean, is_role:boolean>",
    ).withColumn("clean", standardize_email(F.col("raw")))
    assert_column_equality(df, "clean", "expected")
