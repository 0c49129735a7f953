"""The golden stage over small silver tables: first run, incremental run, a crash between writes."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from cdi_spark import delta_io, tables
from cdi_spark.config import load_config
from cdi_spark.golden import publish
from cdi_spark.golden import stage as golden
from cdi_spark.standardize.canonical import COLUMNS, SCHEMA

CONF = Path(__file__).resolve().parents[2] / "conf"
SOURCES = {"crm": "crm_contacts", "marketing": "marketing_contacts"}


def _records(spark, run_id: str, rows: list[dict]):
    def full(row: dict) -> tuple:
        system, record_id = row["record_key"].split(":")
        lineage = {"source": SOURCES[system], "system": system, "source_record_id": record_id,
                   "batch_id": run_id, "bronze_version": 0, "run_id": run_id, "email_valid": True,
                   "updated_at": datetime(2024, 1, 1)}
        return tuple({**lineage, **row}.get(c) for c in COLUMNS)

    return spark.createDataFrame([full(r) for r in rows], SCHEMA)


def _silver(spark, cfg, run_id: str, records: list[dict], clusters: dict[str, str]) -> None:
    """Make silver hold these records (rows already there keep their run_id unless listed)."""
    path = tables.table_path(cfg.lakehouse, tables.SILVER, tables.CUSTOMER_RECORDS)
    delta_io.merge_upsert(spark, _records(spark, run_id, records), path, keys=["record_key"], delete_missing=False)
    rows = spark.createDataFrame(list(clusters.items()), "record_key string, cluster_id string")
    delta_io.merge_upsert(spark, rows, tables.table_path(cfg.lakehouse, tables.SILVER, tables.ENTITY_CLUSTERS),
                          keys=["record_key"], delete_missing=True)


def _gold(spark, cfg, name):
    return delta_io.read(spark, tables.table_path(cfg.lakehouse, tables.GOLD, name))


def _xref(spark, cfg) -> dict[str, str]:
    live = _gold(spark, cfg, tables.CUSTOMER_XREF).filter(~F.col(publish.IS_DELETED))
    return {r["record_key"]: r["customer_id"] for r in live.collect()}


def _content(spark, cfg, name) -> set[tuple]:
    """Every row as (key, content hash, deleted): equal sets mean equal tables (maps cannot be compared)."""
    key = "record_key" if name == tables.CUSTOMER_XREF else "customer_id"
    rows = _gold(spark, cfg, name).select(key, publish.CONTENT_HASH, publish.IS_DELETED).collect()
    return {tuple(r) for r in rows}


def _day1(spark, cfg):
    _silver(spark, cfg, "r1", [
        {"record_key": "crm:1", "given_name": "Ann", "email": "ann@x.com"},
        {"record_key": "marketing:1", "given_name": "Ann", "email": "ann@y.com"},
        {"record_key": "crm:2", "given_name": "Bob", "email": "bob@x.com"},
        {"record_key": "crm:3", "given_name": "Cy", "email": "cy@x.com"},
        {"record_key": "marketing:3", "given_name": "Cy"},
    ], {"crm:1": "crm:1", "marketing:1": "crm:1", "crm:2": "crm:2", "crm:3": "crm:3", "marketing:3": "crm:3"})
    return golden.build_golden(spark, cfg, run_id="r1")


def _day2(spark, cfg):
    # Bob's record changes and joins Cy's cluster (a merge); Dee is new.
    _silver(spark, cfg, "r2", [
        {"record_key": "crm:2", "given_name": "Bob", "email": "bob@new.com"},
        {"record_key": "crm:4", "given_name": "Dee", "email": "dee@x.com"},
    ], {"crm:1": "crm:1", "marketing:1": "crm:1", "crm:2": "crm:2", "crm:3": "crm:2", "marketing:3": "crm:2",
        "crm:4": "crm:4"})


@dataclass(frozen=True)
class Runs:
    """One lakehouse after day 1 and an incremental day 2, and a copy of it as day 1 left it."""

    cfg: object
    day1: golden.GoldenResult
    day2: golden.GoldenResult
    xref1: dict[str, str]
    copy: object  # the config of the copy taken after day 1


@pytest.fixture(scope="module")
def runs(spark, tmp_path_factory) -> Runs:
    base = tmp_path_factory.mktemp("golden_stage")
    cfg = load_config(CONF / "pipeline.yml", lakehouse=str(base / "lakehouse"))
    day1 = _day1(spark, cfg)
    xref1 = _xref(spark, cfg)
    shutil.copytree(base / "lakehouse", base / "copy")
    _day2(spark, cfg)
    day2 = golden.build_golden(spark, cfg, run_id="r2")
    return Runs(cfg, day1, day2, xref1, load_config(CONF / "pipeline.yml", lakehouse=str(base / "copy")))


def test_first_run_gives_every_cluster_one_id_and_one_profile(spark, runs):
    result, xref = runs.day1, runs.xref1
    assert (result.generation, result.mode, result.records, result.customers) == (1, "full", 5, 3)
    assert result.events == {"create": 3}
    assert xref["crm:1"] == xref["marketing:1"] != xref["crm:2"]
    first = golden.last_state(spark, runs.copy)
    profiles = delta_io.read(spark, tables.table_path(runs.cfg.lakehouse, tables.GOLD, tables.CUSTOMER_PROFILE),
                             version=first.versions[tables.CUSTOMER_PROFILE]).collect()
    assert sorted(p["given_name"] for p in profiles) == ["Ann", "Bob", "Cy"]
    assert {p["customer_id"] for p in profiles} == set(xref.values())
    c360 = _gold(spark, runs.copy, tables.CUSTOMER_360)
    assert c360.count() == 3 and c360.filter("orders_count != 0").count() == 0


def test_an_incremental_run_rebuilds_only_the_affected_customers(spark, runs):
    before, after, result = runs.xref1, _xref(spark, runs.cfg), runs.day2
    assert result.mode == "incremental"
    assert after["crm:1"] == before["crm:1"]  # untouched: same id
    assert after["crm:3"] == after["crm:2"]  # merged: the oldest id survives (a tie: the smallest id)
    assert result.events["merge"] == 1 and result.events["create"] == 1
    assert result.affected_customers == 3  # Bob's, Cy's, Dee's; not Ann's
    profile = _gold(spark, runs.cfg, tables.CUSTOMER_PROFILE)
    assert profile.filter(F.col("customer_id") == after["crm:1"]).first()[publish.RUN_ID] == "r1"
    retired = {before["crm:2"], before["crm:3"]} - {after["crm:2"]}
    deleted = profile.filter(F.col(publish.IS_DELETED)).collect()
    assert [r["customer_id"] for r in deleted] == list(retired)
    merged = profile.filter(F.col("customer_id") == after["crm:2"]).first()
    assert sorted(merged["emails"]) == ["bob@new.com", "cy@x.com"]
    registry = _gold(spark, runs.cfg, tables.CUSTOMER_IDS)
    assert registry.filter(F.col("customer_id") == list(retired)[0]).first()["current_id"] == after["crm:2"]


def test_a_run_that_fails_between_its_writes_ends_like_one_that_did_not(spark, runs, monkeypatch):
    cfg = runs.copy
    _day2(spark, cfg)
    real = publish.publish

    def failing(spark_, df, path, **kwargs):
        if path.endswith(tables.CUSTOMER_XREF):
            raise RuntimeError("killed")
        return real(spark_, df, path, **kwargs)

    monkeypatch.setattr(publish, "publish", failing)
    with pytest.raises(RuntimeError, match="killed"):
        golden.build_golden(spark, cfg, run_id="r2-first-try")
    monkeypatch.setattr(publish, "publish", real)
    golden.build_golden(spark, cfg, run_id="r2")

    for name in (tables.CUSTOMER_XREF, tables.CUSTOMER_PROFILE, tables.CUSTOMER_360):
        assert _content(spark, cfg, name) == _content(spark, runs.cfg, name), name
    events = delta_io.read(spark, tables.table_path(cfg.lakehouse, tables.AUDIT, tables.ID_EVENTS))
    assert events.filter("generation = 2").count() == 2  # the failed try's events were replaced
    done = delta_io.read(spark, tables.table_path(cfg.lakehouse, tables.AUDIT, tables.GOLDEN_RUNS))
    assert [r["run_id"] for r in done.orderBy("generation").collect()] == ["r1", "r2"]
