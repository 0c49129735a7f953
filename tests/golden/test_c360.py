"""Customer 360 activity: the shipped conf/customer_360.yml over small bronze-shaped frames.

Bronze keeps text exports as text (CSV and JSON values are strings, nested JSON is its JSON
text) and Parquet with its types, so the frames below do the same.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from chispa import assert_df_equality
from pyspark.sql import functions as F

from cdi_spark.config import PipelineConfig, SourceConfig, SourceMapping
from cdi_spark.errors import ConfigError, MissingColumnError, SchemaError
from cdi_spark.golden.c360 import (
    ACTIVITY_COLUMNS,
    ACTIVITY_SCHEMA,
    aggregate,
    check_sources,
    customer_360,
    load_c360,
)
from cdi_spark.standardize.money import load_currency_rates

CONF = Path(__file__).parents[2] / "conf"
CFG = load_c360(CONF / "customer_360.yml")
RATES = load_currency_rates(CONF / "currency_rates.yml")  # EUR; USD 0.96, JPY 0.0061, BHD 2.55
AS_OF = datetime(2024, 6, 30, 12, 0, tzinfo=UTC)

# Person records of three customers. C1 has a shop and a billing record.
XREF = [
    ("shop_customers:6001", "C1"),
    ("billing_customers:cus_A", "C1"),
    ("shop_customers:6002", "C2"),
    ("support_users:360001", "C2"),
    ("marketing_contacts:100001", "C3"),
    ("marketing_contacts:100002", "C3"),
    ("shop_customers:6003", "C3"),
]

ORDERS = (
    "`Order ID` string, `Customer ID` string, `Created At` string, Currency string, Total string,"
    " `Financial Status` string"
)
INVOICES = "id string, customer string, amount_paid string, currency string, status string, created string"
TICKETS = "id string, requester_id string, status string, created_at string, updated_at string"
EVENTS = "event_id string, event_type string, user_id string, anonymous_id string, timestamp timestamp"
CONTACTS = "vid string, properties string"


@pytest.fixture
def xref(spark):
    return spark.createDataFrame(XREF, "record_key string, customer_id string")


def run(spark, xref, *, as_of=AS_OF, cfg=CFG, rates=RATES, keys=None, **frames):
    """``aggregate`` over the given sources, each a (rows, schema) pair."""
    dfs = {name: spark.createDataFrame(rows, schema) for name, (rows, schema) in frames.items()}
    return aggregate(dfs, cfg, xref, rates, as_of, keys=keys)


def table(df, *columns):
    """Sorted rows of ``columns``; timestamps as "yyyy-MM-dd HH:mm:ss" text (UTC)."""
    types = dict(df.dtypes)
    cols = [F.date_format(c, "yyyy-MM-dd HH:mm:ss").alias(c) if types[c] == "timestamp" else F.col(c) for c in columns]
    return sorted(tuple(r) for r in df.select(*cols).collect())


def test_revenue_is_converted_to_the_reporting_currency_minor_units_included(spark, xref):
    result = run(
        spark,
        xref,
        shop_orders=(
            [
                ("1", "6001", "01/15/2024 10:00", "USD", "10.00", "paid"),
                ("2", "6001", "02/15/2024 10:00", "usd", "5.00", "paid"),  # 15 USD * 0.96
                ("3", "6002", "03/01/2024 09:30", "EUR", "19.99", "paid"),
            ],
            ORDERS,
        ),
        billing_invoices=(
            [
                ("in_1", "cus_A", "1999", "jpy", "paid", "1704067200"),  # 1999 JPY * 0.0061 = 12.1939
                ("in_2", "cus_A", "1999", "bhd", "paid", "1706745600"),  # 1.999 BHD * 2.55 = 5.09745
            ],
            INVOICES,
        ),
    )
    assert table(result.frame, "customer_id", "orders_count", "revenue", "revenue_currency") == [
        ("C1", 4, Decimal("31.6913"), "EUR"),  # 14.4000 + 12.1939 + 5.0974 (half-even)
        ("C2", 1, Decimal("19.9900"), "EUR"),
    ]
    assert result.unpriced == {}


def test_orders_with_excluded_statuses_are_not_counted(spark, xref):
    result = run(
        spark,
        xref,
        shop_orders=(
            [
                ("1", "6001", "01/15/2024 10:00", "EUR", "10.00", "paid"),
                ("2", "6001", "01/16/2024 10:00", "EUR", "20.00", "Partially_Refunded"),
                ("3", "6001", "01/17/2024 10:00", "EUR", "40.00", "refunded"),
                ("4", "6001", "01/18/2024 10:00", "EUR", "80.00", "pending"),
                ("5", "6001", "01/19/2024 10:00", "EUR", "160.00", None),
            ],
            ORDERS,
        ),
        billing_invoices=(
            [
                ("in_1", "cus_A", "500", "eur", "paid", "1704067200"),
                ("in_2", "cus_A", "0", "eur", "void", "1704067200"),
                ("in_3", "cus_A", "0", "eur", "open", "1704067200"),
            ],
            INVOICES,
        ),
    )
    assert table(result.frame, "customer_id", "orders_count", "revenue") == [("C1", 3, Decimal("35.0000"))]


def test_first_and_last_order_span_every_record_of_the_customer(spark, xref):
    result = run(
        spark,
        xref,
        shop_orders=(
            [
                ("1", "6001", "03/05/2024 08:15", "EUR", "1.00", "paid"),
                ("2", "6001", "04/05/2024 08:15", "EUR", "1.00", "paid"),
            ],
            ORDERS,
        ),
        billing_invoices=([("in_1", "cus_A", "100", "eur", "paid", "1704067200")], INVOICES),  # 2024-01-01
    )
    assert table(result.frame, "customer_id", "first_order_at", "last_order_at") == [
        ("C1", "2024-01-01 00:00:00", "2024-04-05 08:15:00"),
    ]


def test_tickets_open_and_total_and_last_contact(spark, xref):
    result = run(
        spark,
        xref,
        support_tickets=(
            [
                ("1", "360001", "open", "2024-01-02T10:00:00Z", "2024-01-03T10:00:00Z"),
                ("2", "360001", "Pending", "2024-02-01T10:00:00Z", None),
                ("3", "360001", "solved", "2024-03-01T10:00:00Z", "2024-05-20T16:30:00Z"),  # latest contact
                ("4", "360001", "closed", "2024-04-01T10:00:00Z", "2024-04-02T10:00:00Z"),
            ],
            TICKETS,
        ),
    )
    assert table(result.frame, "customer_id", "tickets_total", "tickets_open", "last_support_contact_at") == [
        ("C2", 4, 2, "2024-05-20 16:30:00"),
    ]


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_events_in_the_window_and_anonymous_events_attributed_through_identify(spark, xref):
    events = [
        ("e1", "identify", "6001", "anon-1", ts("2024-06-01 09:00")),  # ties anon-1 to 6001
        ("e2", "track", None, "anon-1", ts("2024-06-20 09:00")),  # anonymous, in the window: C1
        ("e3", "page", None, "anon-1", ts("2024-04-01 09:00")),  # anonymous, outside: C1
        ("e4", "track", "6002", "anon-2", ts("2024-06-30 12:00")),  # the window's last instant
        ("e5", "track", "6002", "anon-2", ts("2024-05-31 12:00")),  # exactly 30 days before: outside
        ("e6", "page", None, "anon-3", ts("2024-06-25 09:00")),  # no identify: nobody's
        ("e7", "identify", "6001", "anon-4", ts("2024-06-02 09:00")),
        ("e8", "identify", "6003", "anon-4", ts("2024-06-03 09:00")),  # a shared device
        ("e9", "page", None, "anon-4", ts("2024-06-26 09:00")),  # tied to two users: nobody's
        ("e10", "track", "6001", "anon-1", ts("2024-07-02 09:00")),  # after as_of: not in the window
    ]
    result = run(spark, xref, product_events=(events, EVENTS))
    assert table(result.frame, "customer_id", "events_total", "events_in_window", "last_seen_at") == [
        ("C1", 5, 3, "2024-07-02 09:00:00"),  # e1 e2 e3 e7 e10; e1 e2 e7 in the window
        ("C2", 2, 1, "2024-06-30 12:00:00"),
        ("C3", 1, 1, "2024-06-03 09:00:00"),
    ]
    assert result.unattributed == {"product_events": 2}
    assert result.as_of == AS_OF


def test_latest_event_as_of_is_the_last_event(spark, xref):
    events = [
        ("e1", "track", "6001", "anon-1", ts("2021-03-10 08:00")),
        ("e2", "track", "6001", "anon-1", ts("2021-02-20 08:00")),
        ("e3", "track", "6001", "anon-1", ts("2021-01-01 08:00")),
    ]
    result = run(spark, xref, as_of=None, product_events=(events, EVENTS))  # the shipped config: latest_event
    assert result.as_of == datetime(2021, 3, 10, 8, 0, tzinfo=UTC)
    assert table(result.frame, "customer_id", "events_in_window") == [("C1", 2)]

    at_run = dataclasses.replace(CFG, as_of="run")
    result = aggregate({"product_events": spark.createDataFrame(events, EVENTS)}, at_run, xref, RATES, run_at=AS_OF)
    assert result.as_of == AS_OF
    assert table(result.frame, "customer_id", "events_in_window") == [("C1", 0)]


def test_lifecycle_stage_is_the_most_advanced_and_opt_out_the_most_restrictive(spark, xref):
    contacts = [
        ("100001", '{"email": "a@x.com", "lifecyclestage": "opportunity", "hs_email_optout": false}'),
        ("100002", '{"email": "b@x.com", "lifecyclestage": "Lead", "hs_email_optout": true}'),
        ("100003", '{"email": "c@x.com", "lifecyclestage": "customer"}'),  # no customer holds it
    ]
    result = run(spark, xref, marketing_contacts=(contacts, CONTACTS))
    assert table(result.frame, "customer_id", "marketing_lifecycle_stage", "marketing_email_opt_out") == [
        ("C3", "opportunity", True),
    ]
    assert result.orphans == {"marketing_contacts": 1}


def test_a_customer_without_activity_gets_zeros(spark, xref):
    result = run(spark, xref, shop_orders=([("1", "6001", "01/15/2024 10:00", "EUR", "10.00", "paid")], ORDERS))
    profile = spark.createDataFrame([("C1", "Ann"), ("C4", "Bob")], "customer_id string, given_name string")
    c360 = customer_360(profile, result.frame, reporting_currency=result.reporting_currency)
    expected = spark.createDataFrame(
        [
            ("C1", "Ann", 1, Decimal("10.0000"), "EUR", 0, 0, 0, 0, None, None),
            ("C4", "Bob", 0, Decimal("0.0000"), "EUR", 0, 0, 0, 0, None, None),
        ],
        "customer_id string, given_name string, orders_count long, revenue decimal(20,4), revenue_currency string,"
        " tickets_total long, tickets_open long, events_total long, events_in_window long,"
        " marketing_lifecycle_stage string, marketing_email_opt_out boolean",
    )
    actual = c360.select(*expected.columns)
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)
    assert c360.columns == ["customer_id", "given_name", *ACTIVITY_COLUMNS[1:]]
    assert result.frame.schema.simpleString() == ACTIVITY_SCHEMA.simpleString()


def test_customer_360_refuses_a_profile_that_has_an_activity_column(spark, xref):
    result = run(spark, xref, shop_orders=([("1", "6001", "01/15/2024 10:00", "EUR", "10.00", "paid")], ORDERS))
    profile = spark.createDataFrame([("C1", 3)], "customer_id string, orders_count int")
    with pytest.raises(SchemaError, match="orders_count"):
        customer_360(profile, result.frame)
    with pytest.raises(MissingColumnError, match="customer_id"):
        customer_360(profile.drop("customer_id"), result.frame)


def test_orphan_activity_is_counted_not_dropped_silently(spark, xref):
    result = run(
        spark,
        xref,
        shop_orders=(
            [
                ("1", "6001", "01/15/2024 10:00", "EUR", "10.00", "paid"),
                ("2", "9999", "01/15/2024 10:00", "EUR", "10.00", "paid"),  # no person file has 9999
                ("3", "9999", "01/16/2024 10:00", "EUR", "10.00", "paid"),
                ("4", None, "01/16/2024 10:00", "EUR", "10.00", "paid"),  # no customer id at all
            ],
            ORDERS,
        ),
        support_tickets=([("1", "42", "open", "2024-01-02T10:00:00Z", None)], TICKETS),
    )
    assert table(result.frame, "customer_id", "orders_count") == [("C1", 1)]
    assert result.orphans == {"shop_orders": 2, "support_tickets": 1}
    assert result.unattributed == {"shop_orders": 1}


def test_unknown_currency_and_unreadable_amount_are_left_out_of_revenue_and_counted(spark, xref):
    result = run(
        spark,
        xref,
        shop_orders=(
            [
                ("1", "6001", "01/15/2024 10:00", "EUR", "10.00", "paid"),
                ("2", "6001", "01/15/2024 10:00", "XYZ", "10.00", "paid"),
                ("3", "6001", "01/15/2024 10:00", "ZAR", "10.00", "paid"),  # ISO, but no rate
                ("4", "6001", "01/15/2024 10:00", None, "10.00", "paid"),
                ("5", "6001", "01/15/2024 10:00", "EUR", "ten", "paid"),
            ],
            ORDERS,
        ),
    )
    assert table(result.frame, "customer_id", "orders_count", "revenue") == [("C1", 5, Decimal("10.0000"))]
    assert result.unpriced == {
        "shop_orders": {"XYZ": 1, "ZAR": 1, "(no currency)": 1, "(unreadable amount)": 1},
    }


def test_a_re_exported_ticket_counts_once_with_its_latest_status(spark, xref):
    lineage = ", _ingested_at timestamp, _batch_id string"
    day1, day2 = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 2, tzinfo=UTC)
    tickets = [
        ("1", "360001", "open", "2024-01-01T10:00:00Z", "2024-01-01T10:00:00Z", day1, "b1"),
        ("1", "360001", "solved", "2024-01-01T10:00:00Z", "2024-01-02T09:00:00Z", day2, "b2"),
        ("2", "360001", "open", "2024-01-01T11:00:00Z", None, day1, "b1"),
    ]
    result = run(spark, xref, keys={"support_tickets": ["id"]}, support_tickets=(tickets, TICKETS + lineage))
    assert table(result.frame, "customer_id", "tickets_total", "tickets_open", "last_support_contact_at") == [
        ("C2", 2, 1, "2024-01-02 09:00:00"),
    ]


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------


def order(**changes):
    """A shop_orders entry of the config, with ``changes``."""
    spec = {
        "source": "shop_orders",
        "person": {"source": "shop_customers", "column": "Customer ID"},
        "amount": {"column": "Total"},
        "currency": "Currency",
        "time": {"column": "Created At", "format": "mdy"},
    }
    return {**spec, **changes}


STAGE = {
    "source": "marketing_contacts",
    "person": {"source": "marketing_contacts", "column": "vid"},
    "lifecycle_stage": "properties.lifecyclestage",
}
BAD_CONFIGS = [
    ({"colour": "red"}, "colour", "unknown key"),
    ({"as_of": "yesterday"}, "as_of", "one of 'run', 'latest_event'"),
    ({"orders": {"sources": []}}, "(top level)", "no activity sources"),
    ({"orders": {"sources": [order(status="Financial Status")]}}, "orders.sources[0]", "go together"),
    ({"orders": {"sources": [order(amount={"column": "Total", "unit": "cents"})]}},
     "orders.sources[0].amount.unit", "'minor'"),
    ({"orders": {"sources": [order(), order()]}}, "orders", "listed twice"),
    ({"orders": {"sources": [order(time={"column": "Created At", "timezone": "Mars/Olympus"})]}},
     "orders.sources[0].time", "IANA"),
    ({"orders": {"sources": [order(person={"source": "shop_customers"})]}},
     "orders.sources[0].person.column", "missing"),
    ({"events": {"window_days": 0, "sources": []}}, "events", "at least 1"),
    ({"marketing": {"sources": [STAGE]}}, "marketing", "lifecycle_stages must list"),
    ({"rates": "nowhere.yml", "orders": {"sources": [order()]}}, "rates", "not found"),
]  # fmt: skip


@pytest.mark.parametrize(("data", "key", "problem"), BAD_CONFIGS)
def test_config_errors_name_the_file_and_the_key(tmp_path, data, key, problem):
    path = tmp_path / "customer_360.yml"
    path.write_text(yaml.safe_dump({"rates": str(CONF / "currency_rates.yml"), **data}))
    with pytest.raises(ConfigError) as err:
        load_c360(path)
    assert err.value.file == str(path)
    assert err.value.key == key
    assert problem in err.value.problem


def test_config_sources_must_be_pipeline_sources():
    shop = SourceConfig(
        name="shop_customers", system="ecommerce", format="csv", path="x", primary_key=("Customer ID",),
        mapping=SourceMapping(record_id="Customer ID"),
    )  # fmt: skip
    orders = SourceConfig(name="shop_orders", system="ecommerce", format="csv", path="y", primary_key=("Order ID",))
    pipeline = PipelineConfig()
    object.__setattr__(pipeline, "sources", (shop, orders))
    with pytest.raises(ConfigError) as err:
        check_sources(CFG, pipeline)
    assert err.value.key == "orders.sources[1].source"  # billing_invoices
    assert "known: shop_customers, shop_orders" in err.value.problem

    object.__setattr__(pipeline, "sources", (dataclasses.replace(shop, mapping=None), orders))
    only_shop = dataclasses.replace(CFG, orders=dataclasses.replace(CFG.orders, sources=CFG.orders.sources[:1]))
    with pytest.raises(ConfigError, match=r"orders.sources\[0\].person.source: 'shop_customers' is not a person"):
        check_sources(only_shop, pipeline)


def test_the_shipped_rates_are_the_ones_these_tests_assume():
    assert RATES.reporting_currency == "EUR"
    assert {c: RATES.rates[c] for c in ("USD", "JPY", "BHD")} == {
        "USD": Decimal("0.96"),
        "JPY": Decimal("0.0061"),
        "BHD": Decimal("2.55"),
    }
