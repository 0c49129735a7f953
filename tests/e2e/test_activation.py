"""Activation end to end: the demo exports, and a copy of its lakehouse exported again, then an erasure.

The demo's own run ends with the ``activate`` stage (``conf/pipeline.yml``). Then, on a copy
of the demo lakehouse (the other end-to-end tests keep theirs) without those exports, the
stage sends every live customer to ``crm``, ``marketing``, ``support`` and ``bi``; after a
customer is erased (a hard DELETE), ``cdi-spark export`` sends exactly that delete, with its
CRM ids.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from delta.tables import DeltaTable
from pyspark.sql import functions as F

from cdi_spark import delta_io
from cdi_spark.cli import main

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
CONFIG = str(ROOT / "conf" / "pipeline.yml")


def _live(spark, lake: Path, name: str):
    return delta_io.read(spark, str(lake / "gold" / name)).filter(~F.col("is_deleted"))


def _jsonl(folder: Path) -> list[dict]:
    return [json.loads(line) for f in sorted(folder.glob("part-*.jsonl")) for line in f.read_text().splitlines()]


@pytest.fixture(scope="module")
def lake(demo, tmp_path_factory) -> Path:
    base, _ = demo
    lake = tmp_path_factory.mktemp("activation") / "lakehouse"
    shutil.copytree(base / "lakehouse", lake)
    shutil.rmtree(lake / "exports", ignore_errors=True)
    shutil.rmtree(lake / "audit" / "export_watermarks", ignore_errors=True)
    return lake


def test_the_demo_run_exports_to_every_shipped_target(spark, demo):
    base, _ = demo
    lake = base / "lakehouse"
    watermarks = delta_io.read(spark, str(lake / "audit" / "export_watermarks"))
    assert sorted(r["target"] for r in watermarks.collect()) == ["bi", "crm", "marketing", "support"]
    for target in ("crm", "marketing", "support", "bi"):
        assert len(list((lake / "exports" / target).glob("v*/part-00000.*"))) == 1, target


def test_demo_lakehouse_exports_every_customer_then_only_an_erasure(spark, lake):
    profile_version = delta_io.current_version(spark, str(lake / "gold" / "customer_profile"))
    c360_version = delta_io.current_version(spark, str(lake / "gold" / "customer_360"))
    live = _live(spark, lake, "customer_profile")
    n_live, n_live_360 = live.count(), _live(spark, lake, "customer_360").count()
    with_crm = live.filter(F.size(F.coalesce(F.col("source_ids")["crm"], F.array())) > 0)

    assert main(["run", "--config", CONFIG, "--lakehouse", str(lake), "--stages", "activate"]) == 0
    first = f"v00000000-v{profile_version:08d}"
    crm = pd.read_csv(lake / "exports" / "crm" / first / "part-00000.csv", dtype=str, keep_default_na=False)
    assert len(crm) == n_live and set(crm["change"]) == {"insert"}
    assert (crm["CrmContactIds"] != "").sum() == with_crm.count()
    assert len(_jsonl(lake / "exports" / "marketing" / first)) == n_live
    assert len(_jsonl(lake / "exports" / "support" / first)) == n_live
    bi = pd.read_parquet(lake / "exports" / "bi" / f"v00000000-v{c360_version:08d}" / "part-00000.parquet")
    assert len(bi) == n_live_360 and not {"email", "full_name", "phone"} & set(bi.columns)
    runs = delta_io.read(spark, str(lake / "audit" / "runs")).filter(F.array_contains("stages", "activate"))
    counts, sent = runs.first()["counts"]["activate"], 3 * n_live + n_live_360
    assert (counts["rows_insert"], counts["rows"], counts["targets"]) == (sent, sent, 4)

    erased = with_crm.orderBy("customer_id").first()
    DeltaTable.forPath(spark, str(lake / "gold" / "customer_profile")).delete(
        F.col("customer_id") == erased["customer_id"])
    assert main(["export", "--config", CONFIG, "--lakehouse", str(lake)]) == 0
    second = f"v{profile_version + 1:08d}-v{profile_version + 1:08d}"
    crm = pd.read_csv(lake / "exports" / "crm" / second / "part-00000.csv", dtype=str, keep_default_na=False)
    assert crm.to_dict("records") == [{
        "change": "delete", "ExternalId": erased["customer_id"],
        "CrmContactIds": "|".join(erased["source_ids"]["crm"]),
        **{c: "" for c in crm.columns if c not in ("change", "ExternalId", "CrmContactIds")},
    }]
    assert [r["change"] for r in _jsonl(lake / "exports" / "marketing" / second)] == ["delete"]
    assert sorted(p.name for p in (lake / "exports" / "bi").iterdir()) == [f"v00000000-v{c360_version:08d}"]
