"""cdi_spark.notebook: the labelling state, its HTML, truth answers, widgets and Spark settings."""

from __future__ import annotations

import pytest

from cdi_spark.notebook import Labelling, collect_pairs, label_in_notebook, spark_conf_from_env

FIELDS = ["given_name", "city"]


def _labelling() -> Labelling:
    return Labelling(FIELDS, [
        ("crm:1", "shop:7", ("Ann", "Rome"), ("Ann", "Roma")),
        ("crm:2", "shop:8", ("Bo", None), ("Bob", None)),
        ("crm:3", "shop:9", ("<b>", "X"), ("Z", "X")),
    ])


def test_answers_move_through_the_pairs_and_unsure_is_skipped():
    labelling = _labelling()
    assert labelling.status() == "pair 1 of 3 · 0 matches, 0 non-matches, 0 unsure"
    labelling.answer(True)
    labelling.answer(None)
    labelling.answer(False)
    labelling.answer(True)  # past the end: ignored
    assert labelling.done
    assert labelling.answers == [("crm:1", "shop:7", True), ("crm:3", "shop:9", False)]
    assert labelling.status() == "done · 1 match, 1 non-match, 1 unsure"


def test_stop_keeps_the_answers_given():
    labelling = _labelling()
    labelling.answer(True)
    labelling.stop()
    assert labelling.done and labelling.answers == [("crm:1", "shop:7", True)]


def test_html_puts_the_fields_side_by_side_marks_equal_values_and_escapes():
    labelling = _labelling()
    first = labelling.html()
    assert "<th>crm:1</th><th>shop:7</th>" in first
    assert "<tr><td>=</td><th>given_name</th><td>Ann</td><td>Ann</td></tr>" in first
    assert "<tr><td></td><th>city</th><td>Rome</td><td>Roma</td></tr>" in first
    assert "&lt;b&gt;" in labelling.html(2) and "<b>" not in labelling.html(2)
    assert "<tr><td></td><th>city</th><td></td><td></td></tr>" in labelling.html(1)  # both missing: not "="


def test_spark_conf_from_env_reads_key_value_pairs(monkeypatch):
    monkeypatch.setenv("CDI_SPARK_CONF", " spark.driver.memory=2g, spark.sql.shuffle.partitions = 2 ,")
    assert spark_conf_from_env() == {"spark.driver.memory": "2g", "spark.sql.shuffle.partitions": "2"}
    monkeypatch.delenv("CDI_SPARK_CONF")
    assert spark_conf_from_env() == {}
    monkeypatch.setenv("CDI_SPARK_CONF", "spark.driver.memory")
    with pytest.raises(ValueError, match="CDI_SPARK_CONF: expected key=value"):
        spark_conf_from_env()


def _frames(spark):
    records = spark.createDataFrame(
        [("crm:1", "Ann", "Rome"), ("shop:7", "Ann", "Roma"), ("crm:2", "Bo", None), ("shop:8", "Bob", None)],
        "record_key string, given_name string, city string",
    )
    pairs = spark.createDataFrame(
        [("crm:1", "shop:7", 0.9), ("crm:2", "shop:8", 0.4), ("crm:2", "gone:1", 0.3)],
        "left_key string, right_key string, similarity double",
    )
    return pairs, records


def test_collect_pairs_leaves_out_pairs_of_unknown_records(spark):
    pairs, records = _frames(spark)
    labelling = collect_pairs(pairs, records, FIELDS, limit=10)
    assert labelling.pairs == [
        ("crm:1", "shop:7", ("Ann", "Rome"), ("Ann", "Roma")),
        ("crm:2", "shop:8", ("Bo", None), ("Bob", None)),
    ]


def test_truth_mode_answers_every_pair_from_the_ground_truth(spark):
    pairs, records = _frames(spark)
    truth = spark.createDataFrame([("crm:1", "p1"), ("shop:7", "p1"), ("crm:2", "p2"), ("shop:8", "p3")],
                                  "record_key string, entity_id string")
    labelling = label_in_notebook(pairs, records, FIELDS, limit=10, truth=truth)
    assert labelling.done
    assert labelling.answers == [("crm:1", "shop:7", True), ("crm:2", "shop:8", False)]


def test_truth_mode_without_truth_and_unknown_modes_are_refused(spark):
    pairs, records = _frames(spark)
    with pytest.raises(ValueError, match="needs truth"):
        label_in_notebook(pairs, records, FIELDS, mode="truth")
    with pytest.raises(ValueError, match="mode must be"):
        label_in_notebook(pairs, records, FIELDS, mode="buttons")


def test_buttons_answer_the_current_pair_and_stop_disables_them():
    pytest.importorskip("ipywidgets")  # optional: the notebook falls back to input() without it
    from cdi_spark.notebook import show_widgets

    labelling = _labelling()
    status, table, row = show_widgets(labelling).children
    buttons = {b.description: b for b in row.children}
    buttons["same person"].click()
    buttons["unsure"].click()
    assert status.value == "pair 3 of 3 · 1 match, 0 non-matches, 1 unsure"
    assert "<th>crm:3</th>" in table.value
    buttons["stop"].click()
    assert labelling.answers == [("crm:1", "shop:7", True)]
    assert all(b.disabled for b in row.children)
