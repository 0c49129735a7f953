"""Line numbers across file splits, multi-line CSV records, headers and JSON parsing, without Delta."""

from __future__ import annotations

import hashlib

import pytest
from chispa import assert_df_equality

from cdi_spark.config import SourceConfig
from cdi_spark.ingest import lines as lines_module
from cdi_spark.ingest import text
from cdi_spark.ingest.checks import classify
from cdi_spark.ingest.lines import FileFacts, read_lines
from cdi_spark.ingest.text import FIELDS, csv_records, numbered_lines, parse_csv, parse_json_lines

SOURCE = SourceConfig(name="s", system="t", format="csv", path="*.csv", primary_key=("id",))
JSON_SOURCE = SourceConfig(name="j", system="t", format="jsonl", path="*.json", primary_key=("a",))
BOM_BYTES = b"\xef\xbb\xbf"


@pytest.fixture
def small_splits(spark):
    """Split files every 40 bytes, so one small file is read by several tasks."""
    before = spark.conf.get("spark.sql.files.maxPartitionBytes")
    spark.conf.set("spark.sql.files.maxPartitionBytes", "40")
    yield
    spark.conf.set("spark.sql.files.maxPartitionBytes", before)


@pytest.mark.parametrize("chained", [64, 0], ids=["comparisons", "join"])
def test_lines_are_numbered_in_file_order_across_splits(spark, tmp_path, small_splits, monkeypatch, chained):
    monkeypatch.setattr(lines_module, "CHAINED_SPLITS", chained)
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


def test_first_pass_learns_each_files_head_and_odd_lines_across_splits(spark, tmp_path, small_splits):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_bytes(BOM_BYTES + b"id,note\n" + b"".join(b"%d,plain text here\n" % i for i in range(20))
                  + b'99,"opens\ncloses"\n')
    b.write_text('"odd\nhead",v\n1,2\n')
    lines = read_lines(spark, [str(a), str(b)], "UTF-8", quote='"')
    facts = {path.rsplit("/", 1)[-1]: f for path, f in lines.facts.items()}
    assert facts["a.csv"] == FileFacts(lines=23, head="id,note", odd_lines=2, head_odd=False)
    assert facts["b.csv"] == FileFacts(lines=3, head='"odd', odd_lines=2, head_odd=True)
    assert lines.frame.filter("_file like '%a.csv' and _line = 23").first()["_text"] == "closes\""


def test_csv_files_with_other_headers_a_header_spanning_lines_and_no_header(spark, tmp_path):
    for name, body in (("a.csv", "id,v\n1,a\n"), ("b.csv", 'id,"long\nname"\n2,b\n'), ("c.csv", "\nid,v\n3,c\n")):
        (tmp_path / name).write_text(body)
    parsed = parse_csv(spark, sorted(str(p) for p in tmp_path.glob("*.csv")), SOURCE)
    columns = {path.rsplit("/", 1)[-1]: names for path, names in parsed.columns.items()}
    assert columns == {"a.csv": ["id", "v"], "b.csv": ["id", "long\nname"]}
    rows = sorted((r["_file"].rsplit("/", 1)[-1], r["_line"], r["id"], r["v"], r["long\nname"],
                   r["_parse_error"] and r["_parse_error"]["reason"]) for r in parsed.records.collect())
    assert rows == [("a.csv", 2, "1", "a", None, None), ("b.csv", 3, "2", None, "b", None),
                    ("c.csv", 2, None, None, None, "missing_header"), ("c.csv", 3, None, None, None, "missing_header")]


def test_json_values_stay_text_and_non_objects_are_told_from_invalid_json(spark, tmp_path):
    path = tmp_path / "e.json"
    path.write_text('{"a": 1, "b": {"x": [1, 2]}, "c": null, "d": true}\n[1, 2]\n"s"\nnull\n{}\n{"a": 1\n\n'
                    '[{"a": 1}]\n')
    parsed = parse_json_lines(spark, [str(path)], JSON_SOURCE)
    rows = {r["_line"]: (r["_parse_error"] and r["_parse_error"]["reason"], r[FIELDS])
            for r in parsed.records.collect()}
    assert rows == {
        1: (None, {"a": "1", "b": '{"x":[1,2]}', "c": None, "d": "true"}),
        2: ("not_an_object", None), 3: ("not_an_object", None), 4: ("not_an_object", None), 5: (None, {}),
        6: ("invalid_json", None), 8: ("not_an_object", None),
    }


def test_row_hash_of_json_fields_equals_the_hash_of_the_same_fields_as_columns(spark):
    meta = "_file string, _line long, _position string, _raw string, _decodable boolean"
    meta += ", _parse_error struct<reason:string,field:string,detail:string>"
    as_columns = spark.createDataFrame([("f", 1, "line", "r", True, None, "1", None, "x")],
                                       f"{meta}, id string, b string, a string")
    as_map = spark.createDataFrame([("f", 1, "line", "r", True, None, {"id": "1", "b": None, "a": "x"})],
                                   f"{meta}, {FIELDS} map<string,string>")
    source = SourceConfig(name="s", system="t", format="jsonl", path="*", primary_key=("id",))
    hashes = [classify(df, source, text_format=True, fields=f).first()["_row_hash"]
              for df, f in ((as_columns, None), (as_map, FIELDS))]
    assert hashes[0] == hashes[1] == hashlib.sha256(b'{"a":"x","id":"1"}').hexdigest()
