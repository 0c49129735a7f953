"""Copies of the session's demo lakehouse for tests that write to it or need a second run.

The ``demo`` fixture's lakehouse is shared by every end-to-end test, so a test that writes
(a notebook that saves labels, a day-2 run) works on a copy. The day-2 copy is made once per
test session and shared by the modules that only read it (the audit notebook, the readers
outside Spark, the README's SQL): building it costs a pipeline run.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from pyspark.sql import functions as F

from cdi_spark import delta_io
from cdi_spark.cli import main
from cdi_spark.generate import generate

ROOT = Path(__file__).resolve().parents[2]
CONFIG = str(ROOT / "conf" / "pipeline.yml")
_day2: dict[Path, Path] = {}


def copy_demo(demo_base: Path, into: Path) -> tuple[Path, Path]:
    """Copy the demo's lakehouse and data into ``into``: ``(lakehouse, data)``."""
    into.mkdir(parents=True, exist_ok=True)
    shutil.copytree(demo_base / "lakehouse", into / "lakehouse")
    shutil.copytree(demo_base / "data", into / "data")
    return into / "lakehouse", into / "data"


def day2_copy(spark, demo_base: Path, tmp_path_factory) -> tuple[Path, Path]:
    """A copy of the demo lakehouse after a second run on the generator's day-2 batch
    (changed records, new people, new duplicates) plus one support-desk user who bridges two
    day-1 customers (:func:`_bridge_user`): ``(lakehouse, data)``. The data's truth covers
    the generated records of both days; the day-2 exports are in ``<lakehouse>/../raw/day2``,
    and ``<lakehouse>/../day1`` is the lakehouse as the day-2 run found it (for a test that
    runs day 2 again its own way). Built on the first call of the session; treat it as
    read-only."""
    if demo_base not in _day2:
        lakehouse, data = copy_demo(demo_base, tmp_path_factory.mktemp("day2"))
        shutil.copytree(lakehouse, lakehouse.parent / "day1")
        demo = json.loads((data / "_demo.json").read_text())
        generate(spark, data, people=demo["people"], seed=demo["seed"], batch="day2")
        # The manifest knows the day-1 files by their path in the demo's folder, not the copy's:
        # the run reads a raw folder holding only day 2, as the demo's own folder would look new.
        raw = lakehouse.parent / "raw"
        raw.mkdir()
        shutil.move(data / "raw" / "day2", raw / "day2")
        bridge = raw / "day2" / "support_users" / "part-00001-bridge.json"
        bridge.write_text(json.dumps([_bridge_user(spark, lakehouse)]))
        args = ["run", "--config", CONFIG, "--lakehouse", str(lakehouse), "--raw-dir", str(raw)]
        if main(args) != 0:
            raise RuntimeError(f"the day-2 run failed: cdi-spark {' '.join(args)}")
        _day2[demo_base] = lakehouse.parent
    base = _day2[demo_base]
    return base / "lakehouse", base / "data"


def _bridge_user(spark, lakehouse: Path) -> dict:
    """A nameless support-desk user with one day-1 customer's email and another's phone (a
    household's shared details, say). The email and phone rules link it to both, so the
    day-2 run merges the two customers: 200 demo people give no merge of their own."""
    records = delta_io.read(spark, str(lakehouse / "silver" / "customer_records"))
    xref = delta_io.read(spark, str(lakehouse / "gold" / "customer_xref")).filter(~F.col("is_deleted"))
    owned = records.join(xref.select("record_key", "customer_id"), "record_key")
    email = (owned.filter(F.col("email_valid") & ~F.col("email_is_role")).groupBy("customer_id")
             .agg(F.min("email").alias("email")).orderBy("customer_id").first())
    phone = (owned.filter(F.col("phone_e164").isNotNull() & (F.col("customer_id") != email["customer_id"]))
             .groupBy("customer_id").agg(F.min("phone_e164").alias("phone")).orderBy("customer_id").first())
    return {"id": 369999999001, "email": email["email"], "phone": phone["phone"], "locale": "en",
            "created_at": "2027-06-01T10:00:00Z"}
