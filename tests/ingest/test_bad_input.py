"""Bad input loses nothing: every failure mode on a small file written here, one ingest run.

The module's fixture writes a raw folder with one source per format (plus an empty and a
missing one), runs the stage once, and each test checks one behaviour in its output.
"""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from chispa import assert_df_equality

from cdi_spark import delta_io, tables
from cdi_spark.config import ColumnSpec, PipelineConfig, SourceConfig
from cdi_spark.ingest import ingest

BOM = b"\xef\xbb\xbf"
PEOPLE_CSV = BOM + (
    b"id,name,born,score\n"
    b"1,Ann,1990-01-31,10\n"
    b'2,"Bob ""Bobby"" Stone\nsecond line, with comma",1985-05-05,20\n'  # lines 3-4: one record
    b"3,Cat,not-a-date,30\n"  # 5 wrong type
    b",Dan,1991-01-01,40\n"  # 6 empty key
    b"1,Ann again,1990-01-31,11\n"  # 7 duplicate of line 2
    b"4,Eve,1992-02-02\n"  # 8 too few fields
    b"\n"  # 9 blank: not a record
) + "5,M\u00fcller,1993-03-03,50\n".encode("latin-1") + (  # 10 undecodable in UTF-8
    b"6,Fay,1994-04-04,60\n"  # 11
    b"6,Fay,1994-04-04,60\n"  # 12 exact duplicate of line 11
    b'7,"Gus,1995-05-05,70\n'  # 13 quote never closed
)
LATIN_CSV = "id;name\n1;M\u00fcller\n2;\"Gar\u00e7on\"\n".encode("latin-1")
EVENTS_JSONL = (
    b'{"uid": 1, "email": "a@x.com", "props": {"plan": "pro", "tags": [1, 2]}, "seen": 1700000000}\n'
    b'{"uid": 2, "email": "b@x.com", "seen": 1700000001\n'  # 2 invalid JSON
    b"\n"
    b'{"uid": 3, "email": "c@x.com", "seen": "yesterday"}\n'  # 4 wrong type
    b'{"uid": null, "email": "d@x.com"}\n'  # 5 empty key
    b'[1, 2]\n'  # 6 not an object
    b'{"uid": 7, "email": "e@x.com", "se'  # 7 truncated last line, no newline
)
USERS = [{"id": 10, "name": "Ann"}, {"id": 11, "name": "Bob", "created_at": "soon"}, {"id": 10, "name": "Dup"}]


def _source(name: str, fmt: str, path: str, key: tuple[str, ...], columns=(), **kw) -> SourceConfig:
    return SourceConfig(name=name, system="test", format=fmt, path=path, primary_key=key, columns=columns, **kw)


SOURCES = (
    _source("people", "csv", "*/people/*.csv", ("id",), (
        ColumnSpec("id", required=True), ColumnSpec("name"), ColumnSpec("born", "date", format="yyyy-MM-dd"),
        ColumnSpec("score", "int"))),
    _source("latin", "csv", "*/latin/*.csv", ("id",), options={"delimiter": ";"}, encoding="ISO-8859-1"),
    _source("events", "jsonl", "*/events/*.json", ("uid",), (ColumnSpec("seen", "long"),)),
    _source("users", "json", "*/users/*.json", ("id",), (ColumnSpec("created_at", "timestamp"),)),
    _source("clicks", "parquet", "*/clicks/*.parquet", ("click_id",), (ColumnSpec("at", "long"),)),
    _source("hollow", "csv", "*/hollow/*.csv", ("id",)),
    _source("absent", "csv", "*/absent/*.csv", ("id",)),
)


def _write(root, rel: str, data: bytes) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


@pytest.fixture(scope="module")
def run(spark, tmp_path_factory):
    base = tmp_path_factory.mktemp("bad_input")
    raw = base / "raw"
    _write(raw, "day1/people/part-0.csv", PEOPLE_CSV)
    _write(raw, "day1/people/part-1.csv", b"id,name,born,score\n")  # header only: loads 0 rows
    _write(raw, "day1/latin/export.csv", LATIN_CSV)
    _write(raw, "day1/events/part-0.json", EVENTS_JSONL)
    _write(raw, "day1/users/users.json", ("[\n" + ",\n".join(json.dumps(u) for u in USERS) + "\n]").encode())
    _write(raw, "day1/users/cut.json", b'[\n{"id": 12, "name": "Cu')
    (raw / "day1/clicks").mkdir(parents=True)
    pq.write_table(pa.table({"click_id": ["c1", None, "c1", "c2"], "at": [1, 2, 3, 4]}), raw / "day1/clicks/a.parquet")
    pq.write_table(pa.table({"click_id": ["c9"], "at": ["late"]}), raw / "day1/clicks/b.parquet")
    _write(raw, "day1/hollow/zero.csv", b"")
    cfg = PipelineConfig(lakehouse=str(base / "lake"), raw_dir=str(raw))
    object.__setattr__(cfg, "sources", SOURCES)
    results = {r.source: r for r in ingest(spark, cfg, run_id="run-1")}
    return cfg, results


def _quarantine(spark, cfg, name):
    return delta_io.read(spark, tables.table_path(cfg.lakehouse, tables.QUARANTINE, name))


def _bronze(spark, cfg, name):
    return delta_io.read(spark, tables.table_path(cfg.lakehouse, tables.BRONZE, name))


def test_csv_bad_rows_are_quarantined_with_line_reason_and_field(spark, run):
    cfg, _ = run
    actual = _quarantine(spark, cfg, "people").select("_line", "_reason", "_field")
    expected = spark.createDataFrame(
        [(5, "wrong_type", "born"), (6, "empty_key", "id"), (7, "duplicate_key", "id"),
         (8, "wrong_column_count", None), (10, "undecodable", None), (12, "exact_duplicate", "id"),
         (13, "broken_quotes", None)],
        "_line long, _reason string, _field string",
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_bom_dropped_and_quoted_newline_kept_in_one_record(spark, run):
    cfg, _ = run
    actual = _bronze(spark, cfg, "people").select("id", "name", "born", "score")
    expected = spark.createDataFrame(
        [("1", "Ann", "1990-01-31", "10"), ("2", 'Bob "Bobby" Stone\nsecond line, with comma', "1985-05-05", "20"),
         ("6", "Fay", "1994-04-04", "60")],
        "id string, name string, born string, score string",
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_quarantine_keeps_raw_text_and_names_the_file(spark, run):
    cfg, _ = run
    row = _quarantine(spark, cfg, "people").filter("_line = 10").first()
    assert row["_raw"].startswith("5,M") and row["_source_file"].endswith("people/part-0.csv")
    assert "part-0.csv line 10" in row["_detail"]


def test_latin1_file_decodes_with_configured_encoding(spark, run):
    cfg, results = run
    actual = _bronze(spark, cfg, "latin").select("id", "name")
    expected = spark.createDataFrame([("1", "M\u00fcller"), ("2", "Gar\u00e7on")], "id string, name string")
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)
    assert results["latin"].rows_quarantined == 0


def test_json_lines_keep_text_and_nested_json_and_quarantine_bad_lines(spark, run):
    cfg, _ = run
    bronze = _bronze(spark, cfg, "events").select("uid", "email", "props", "seen")
    expected = spark.createDataFrame(
        [("1", "a@x.com", '{"plan":"pro","tags":[1,2]}', "1700000000")],
        "uid string, email string, props string, seen string",
    )
    assert_df_equality(bronze, expected, ignore_nullable=True)
    bad = _quarantine(spark, cfg, "events").select("_line", "_reason")
    expected_bad = spark.createDataFrame(
        [(2, "invalid_json"), (4, "wrong_type"), (5, "empty_key"), (6, "not_an_object"), (7, "invalid_json")],
        "_line long, _reason string",
    )
    assert_df_equality(bad, expected_bad, ignore_row_order=True, ignore_nullable=True)


def test_json_array_elements_and_truncated_array_file(spark, run):
    cfg, _ = run
    assert [r["name"] for r in _bronze(spark, cfg, "users").collect()] == ["Ann"]
    bad = _quarantine(spark, cfg, "users").select("_position", "_line", "_reason", "_source_file")
    rows = sorted((r["_position"], r["_line"], r["_reason"], r["_source_file"].rsplit("/", 1)[-1])
                  for r in bad.collect())
    assert rows == [("element", 2, "wrong_type", "users.json"), ("element", 3, "duplicate_key", "users.json"),
                    ("file", 1, "invalid_json", "cut.json")]


def test_parquet_keeps_types_and_quarantines_keys_and_changed_types(spark, run):
    cfg, _ = run
    bronze = _bronze(spark, cfg, "clicks")
    assert dict(bronze.dtypes)["at"] == "bigint"
    assert sorted((r["click_id"], r["at"]) for r in bronze.collect()) == [("c1", 1), ("c2", 4)]
    bad = sorted((r["_source_file"][-9:], r["_line"], r["_reason"])
                 for r in _quarantine(spark, cfg, "clicks").collect())
    assert bad == [("a.parquet", 2, "empty_key"), ("a.parquet", 3, "duplicate_key"), ("b.parquet", 1, "wrong_type")]


def test_zero_byte_file_and_missing_path_report_without_stopping_others(run):
    _, results = run
    assert "zero.csv is empty (0 bytes)" in results["hollow"].error
    assert results["hollow"].files_failed == 1
    assert "no files match" in results["absent"].error and "*/absent/*.csv" in results["absent"].error
    assert all(results[s].error is None for s in ("people", "latin", "events", "users", "clicks"))


def test_rows_read_equal_bronze_plus_quarantine(spark, run):
    cfg, results = run
    expected = {"people": (10, 3, 7), "latin": (2, 2, 0), "events": (6, 1, 5), "users": (4, 1, 3), "clicks": (5, 2, 3)}
    for name, (read, good, bad) in expected.items():
        r = results[name]
        assert (r.rows_read, r.rows_bronze, r.rows_quarantined) == (read, good, bad), name
        assert _bronze(spark, cfg, name).count() == good
        if bad:
            assert _quarantine(spark, cfg, name).count() == bad
        else:  # nothing rejected: no quarantine table is made
            assert not delta_io.exists(spark, tables.table_path(cfg.lakehouse, tables.QUARANTINE, name))


def test_every_bronze_row_has_lineage_and_tables_are_in_the_catalog(spark, run):
    cfg, _ = run
    rows = spark.sql("SELECT _source, _source_file, _batch_id, _ingested_at, _row_hash, _ingest_date "
                     "FROM bronze.people").collect()
    assert len(rows) == 3
    assert all(r["_source"] == "people" and r["_batch_id"] == "run-1" and len(r["_row_hash"]) == 64
               and r["_ingested_at"] and r["_ingest_date"] and r["_source_file"].startswith("file:") for r in rows)
    assert spark.sql("SELECT count(*) FROM quarantine.people").first()[0] == 7
    manifest = spark.table("audit.ingest_manifest").filter("source = 'people'").collect()
    assert sorted((m["file"].rsplit("/", 1)[-1], m["rows_read"]) for m in manifest) == [("part-0.csv", 10),
                                                                                         ("part-1.csv", 0)]
