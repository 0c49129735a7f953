"""Deterministic edges on hand-made records: keys, name compatibility, over-shared keys."""

from __future__ import annotations

from chispa import assert_df_equality

from cdi_spark.resolve.rules import deterministic_edges

SCHEMA = (
    "record_key string, given_name_key string, email_key string, email_valid boolean, "
    "email_is_role boolean, phone_e164 string, ref_record_key string"
)


def _edges(spark, rows, **kwargs):
    result = deterministic_edges(spark.createDataFrame(rows, SCHEMA), **kwargs)
    return result.edges.select("left_key", "right_key", "rule"), result.overshared


def _expected(spark, rows):
    return spark.createDataFrame(rows, "left_key string, right_key string, rule string")


def test_same_email_key_links_records_with_compatible_names(spark):
    edges, _ = _edges(spark, [
        ("crm:1", "robert", "bob@x.com", True, False, None, None),
        ("shop:9", "robert", "bob@x.com", True, False, None, None),
        ("mkt:4", None, "bob@x.com", True, False, None, None),
    ])
    assert_df_equality(edges, _expected(spark, [
        ("crm:1", "shop:9", "email"), ("crm:1", "mkt:4", "email"), ("mkt:4", "shop:9", "email"),
    ]), ignore_row_order=True, ignore_nullable=True)


def test_a_family_email_does_not_link_relatives(spark):
    edges, _ = _edges(spark, [
        ("crm:1", "robert", "smiths@x.com", True, False, None, None),
        ("crm:2", "rachel", "smiths@x.com", True, False, None, None),
    ])
    assert edges.count() == 0


def test_role_and_invalid_emails_never_link(spark):
    edges, _ = _edges(spark, [
        ("a:1", "ann", "info@x.com", True, True, None, None),
        ("a:2", "ann", "info@x.com", True, True, None, None),
        ("a:3", "ann", "broken", False, False, None, None),
        ("a:4", "ann", "broken", False, False, None, None),
    ])
    assert edges.count() == 0


def test_phone_links_typo_initial_and_nickname_compatible_names(spark):
    edges, _ = _edges(spark, [
        ("a:1", "jonathan", None, None, None, "+15550001", None),
        ("b:1", "jonathon", None, None, None, "+15550001", None),
        ("a:2", "j", None, None, None, "+15550002", None),
        ("b:2", "john", None, None, None, "+15550002", None),
        ("a:3", "mary", None, None, None, "+15550003", None),
        ("b:3", "mark", None, None, None, "+15550003", None),
    ])
    assert_df_equality(edges, _expected(spark, [
        ("a:1", "b:1", "phone"), ("a:2", "b:2", "phone"),
    ]), ignore_row_order=True, ignore_nullable=True)


def test_overshared_key_is_reported_and_not_used(spark):
    rows = [(f"s:{i}", "ann", "test@x.com", True, False, "+10000000000", None) for i in range(5)]
    rows += [("s:a", "ann", "ann@x.com", True, False, None, None), ("s:b", "ann", "ann@x.com", True, False, None, None)]
    edges, overshared = _edges(spark, rows, max_key_frequency=3)
    assert_df_equality(edges, _expected(spark, [("s:a", "s:b", "email")]), ignore_nullable=True)
    assert sorted((r.rule, r.key, r.records) for r in overshared.collect()) == [
        ("email", "test@x.com", 5), ("phone", "+10000000000", 5)]


def test_reference_to_a_known_record_links_it_whatever_the_names(spark):
    edges, _ = _edges(spark, [
        ("crm_contacts:003A", "robert", None, None, None, None, None),
        ("billing:cus_1", "rob", None, None, None, None, "crm_contacts:003A"),
        ("billing:cus_2", "ann", None, None, None, None, "crm_contacts:missing"),
    ])
    expected = _expected(spark, [("billing:cus_1", "crm_contacts:003A", "reference")])
    assert_df_equality(edges, expected, ignore_nullable=True)
