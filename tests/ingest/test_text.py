"""Line numbers across file splits and multi-line CSV records, without Delta."""

from __future__ import annotations

import pytest
from chispa import assert_df_equality

from cdi_spark.config import SourceConfig
from cdi_spark.ingest import text
from cdi_spark.ingest.text import csv_records, numbered_lines, parse_csv

SOURCE = SourceConfig(name="s", system="t", format="csv", path="*.csv", primary_key=("id",))


@pytest.fixture
def small_splits(spark):
    """Split files every 40 bytes, so one small file is read by several tasks."""
    before = spark.conf.get("spark.sql.files.maxPartitionBytes")
    spark.conf.set("spark.sql.files.maxPartitionBytes", "40")
    yield
    spark.conf.set("spark.sql.files.maxPartitionBytes", before)


def test_lines_are_numbered_in_file_order_across_splits(spark, tmp_path, small_splits):
    path = tmp_path / "f.csv"
    path.write_text("".join(f"line {i:03d} ........\n" for i in range(1, 31)))  # 30 lines, 600 bytes
    lines = numbered_lines(spark, [str(path)], "UTF-8")
    assert spark.read.text(str(path)).rdd.getNumPartitions() > 5
    actual = lines.select("_line", "_text")
    expected = spark.createDataFrame([(i, f"line {i:03d} ........") for i in range(1, 31)], "_line long, _text string")
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_quoted_newlines_glue_across_a_split_boundary(spark, tmp_path, small_splits):
    path = tmp_path / "q.csv"
    body = 'id,note\n1,"a note that\nruns over\nthree lines"\n2,plain\n3,"x ""quoted"" y"\n4,"two\nlines"\n'
    path.write_text(body)
    records = csv_records(numbered_lines(spark, [str(path)], "UTF-8"), SOURCE).select("_line", "_raw")
    expected = spark.createDataFrame(
        [(1, "id,note"), (2, '1,"a note that\nruns over\nthree lines"'), (5, "2,plain"),
         (6, '3,"x ""quoted"" y"'), (7, '4,"two\nlines"')],
        "_line long, _raw string",
    )
    assert_df_equality(records, expected, ignore_row_order=True, ignore_nullable=True)


def test_an_unclosed_quote_does_not_swallow_the_file(spark, tmp_path, monkeypatch):
    monkeypatch.setattr(text, "MAX_RECORD_LINES", 3)
    path = tmp_path / "b.csv"
    path.write_text('id,v\n1,"opens\n2,b\n3,c\n4,d\n5,"closes far away\n6,f\n')
    records = csv_records(numbered_lines(spark, [str(path)], "UTF-8"), SOURCE)
    actual = records.selectExpr("_line", "_parse_error.reason as reason")
    expected = spark.createDataFrame(
        [(1, None), (2, "broken_quotes"), (3, "broken_quotes"), (4, "broken_quotes"), (5, "broken_quotes"),
         (6, "broken_quotes"), (7, None)],
        "_line long, reason string",
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_a_csv_file_without_header_line_is_quarantined_not_dropped(spark, tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("\nid,v\n1,a\n")
    parsed = parse_csv(spark, [str(path)], SOURCE)
    actual = parsed.records.selectExpr("_line", "_parse_error.reason as reason")
    expected = spark.createDataFrame([(2, "missing_header"), (3, "missing_header")], "_line long, reason string")
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)
    parsed.lines.unpersist()
