"""Idempotent, incremental loads and schema drift, over successive runs on one lakehouse."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from cdi_spark import delta_io, tables
from cdi_spark.config import ColumnSpec, PipelineConfig, SourceConfig
from cdi_spark.errors import StageError
from cdi_spark.ingest import ingest
from cdi_spark.ingest.checks import classify
from cdi_spark.ingest.stage import _append_checked, _Context, _count
from cdi_spark.ingest.text import no_error

ORDERS = SourceConfig(
    name="orders", system="shop", format="csv", path="*/orders/*.csv", primary_key=("order_id",),
    columns=(ColumnSpec("order_id", required=True), ColumnSpec("total", "double", required=True)),
)
CONTACTS = SourceConfig(
    name="contacts", system="crm", format="jsonl", path="*/contacts/*.json", primary_key=("cid",),
    columns=(ColumnSpec("cid", "long", required=True), ColumnSpec("email")),
)


def _config(base) -> PipelineConfig:
    cfg = PipelineConfig(lakehouse=str(base / "lake"), raw_dir=str(base / "raw"))
    object.__setattr__(cfg, "sources", (ORDERS, CONTACTS))
    return cfg


def _write(base, rel: str, text: str) -> None:
    path = base / "raw" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _bronze(spark, cfg, name):
    return delta_io.read(spark, tables.table_path(cfg.lakehouse, tables.BRONZE, name))


@pytest.fixture
def base(tmp_path):
    _write(tmp_path, "day1/orders/a.csv", "order_id,total\no1,10.5\no2,20\n")
    _write(tmp_path, "day1/contacts/a.json", '{"cid": 1, "email": "a@x.com"}\n{"cid": 2, "email": "b@x.com"}\n')
    return tmp_path


def test_rerun_adds_nothing_new_file_adds_its_rows_changed_file_is_reported(spark, base):
    cfg = _config(base)
    first = {r.source: r for r in ingest(spark, cfg, run_id="r1")}
    assert (first["orders"].files_loaded, first["orders"].rows_bronze) == (1, 2)
    bronze_path = tables.table_path(cfg.lakehouse, tables.BRONZE, "orders")
    version = delta_io.current_version(spark, bronze_path)

    again = {r.source: r for r in ingest(spark, cfg, run_id="r2")}
    assert (again["orders"].files_loaded, again["orders"].files_skipped, again["orders"].rows_read) == (0, 1, 0)
    assert delta_io.current_version(spark, bronze_path) == version
    assert _bronze(spark, cfg, "orders").count() == 2

    _write(base, "day2/orders/b.csv", "order_id,total\no3,30\n")
    a = base / "raw/day1/orders/a.csv"
    a.write_text("order_id,total\no1,10.5\no2,20\no9,99\n")  # changed after it was loaded
    os.utime(a, (1_700_000_000, 1_700_000_000))
    third = {r.source: r for r in ingest(spark, cfg, run_id="r3")}
    assert (third["orders"].files_loaded, third["orders"].rows_bronze) == (1, 1)
    assert [p.rsplit("/", 1)[-1] for p in third["orders"].changed_files] == ["a.csv"]
    actual = _bronze(spark, cfg, "orders").select("order_id", "_batch_id")
    expected = spark.createDataFrame([("o1", "r1"), ("o2", "r1"), ("o3", "r3")], "order_id string, _batch_id string")
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)
    history = delta_io.history(spark, bronze_path).select("userMetadata").collect()
    assert {h[0] for h in history} == {"r1", "r3"}


def test_new_column_is_added_and_reported_missing_required_column_fails_that_source(spark, base):
    cfg = _config(base)
    ingest(spark, cfg, run_id="r1")
    _write(base, "day2/contacts/b.json", '{"cid": 3, "email": "c@x.com", "tier": "gold"}\n')
    _write(base, "day2/orders/b.csv", "order_id,amount\no3,30\n")  # "total" renamed
    results = {r.source: r for r in ingest(spark, cfg, run_id="r2")}

    assert results["contacts"].new_columns == ("tier",) and results["contacts"].error is None
    actual = _bronze(spark, cfg, "contacts").select("cid", "tier")
    expected = spark.createDataFrame([("1", None), ("2", None), ("3", "gold")], "cid string, tier string")
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)

    error = results["orders"].error
    assert "b.csv" in error and "'total'" in error and "order_id, amount" in error
    assert _bronze(spark, cfg, "orders").count() == 2  # nothing of the failed load written
    assert results["orders"].files_loaded == 0


def test_checks_keep_every_record_once_so_read_equals_bronze_plus_quarantine(spark):
    records = spark.createDataFrame(
        [("f1", 1, "a", "1"), ("f1", 2, "a", "1"), ("f1", 3, "a", "2"), ("f1", 4, None, "3"), ("f2", 1, "a", "1")],
        "_file string, _line long, order_id string, total string",
    ).select("_file", "_line", F.lit("line").alias("_position"), F.lit("raw").alias("_raw"),
             F.lit(True).alias("_decodable"), no_error().alias("_parse_error"), "order_id", "total")
    checked = classify(records, ORDERS, text_format=True)
    counts, _ = _count(checked)
    assert counts == {"f1": (4, 1, 3), "f2": (1, 1, 0)}
    reasons = sorted((r["_file"], r["_line"], r["_error"]["reason"] if r["_error"] else None)
                     for r in checked.collect())
    assert reasons == [("f1", 1, None), ("f1", 2, "exact_duplicate"), ("f1", 3, "duplicate_key"),
                       ("f1", 4, "empty_key"), ("f2", 1, None)]


def test_a_commit_that_does_not_write_the_counted_rows_raises_stage_error(spark, tmp_path):
    ctx = _Context(_config(tmp_path), "r1", datetime.now(UTC), {})
    rows = spark.createDataFrame([("f1", 1), ("f1", 2)], "_source_file string, n long").withColumn(
        tables.INGEST_DATE, F.current_date())
    with pytest.raises(StageError, match="wrote 2 rows, expected 3"):
        _append_checked(spark, rows, str(tmp_path / "lake/bronze/t"), 3, tables.BRONZE, "t", ctx, ["f1"])
