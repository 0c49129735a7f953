"""Change-only exports to downstream targets: net changes, deletes, watermarks, formats, full mode.

A small ``gold.customer_profile`` is published version by version with the golden stage's own
``publish`` (and a hard DELETE, as an erasure does), and three targets read it: ``crm`` (CSV,
renames, formats, CRM ids), ``mkt`` (JSON Lines, no deletes) and ``bi`` (Parquet). Files are
read back with plain Python (csv, json) and pandas (Parquet), so what is checked is what a
downstream system would receive.
"""

from __future__ import annotations

import csv
import json
import shutil
import textwrap
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pytest
from delta.tables import DeltaTable

from cdi_spark import delta_io
from cdi_spark.activate import export as export_module
from cdi_spark.activate.export import check_fields, export, read_watermark, watermarks_path
from cdi_spark.cli import main
from cdi_spark.config import ActivationConfig, PipelineConfig, load_activation, load_config
from cdi_spark.errors import ConfigError, StageError
from cdi_spark.golden.publish import publish
from cdi_spark.tables import CUSTOMER_PROFILE, GOLD, table_path

PROFILE = ("customer_id string, given_name string, email string, birth_date date, emails array<string>, "
           "source_ids map<string, array<string>>, last_updated timestamp")
TABLE = "gold.customer_profile"
ACTIVATION = """
    targets:
      - name: crm
        format: csv
        path: out/crm
        source_ids: crm
        fields:
          - {from: customer_id, to: Id}
          - {from: crm_ids, to: CrmIds, join: "|"}
          - {from: given_name, to: First Name}
          - email
          - {from: birth_date, to: Birthdate, format: dd/MM/yyyy}
          - {from: emails, to: Emails}
          - {from: last_updated, to: Updated, format: "yyyy-MM-dd HH:mm"}
      - name: mkt
        format: jsonl
        path: out/mkt
        include_deleted: false
        change_column: action
        fields: [customer_id, email, emails]
      - name: bi
        format: parquet
        path: out/bi
        fields: [customer_id, given_name, birth_date]
"""
AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
DIANA = 'Diana "Di", Jr.'  # quotes and a comma: CSV quoting is RFC 4180's


def _row(cid, name, email, crm=(), born=date(1980, 5, 17)):
    ids = {"crm": list(crm)} if crm else {"web": [f"w-{cid}"]}
    return (cid, name, email, born, [email] if email else [], ids, AT)


DAY_1 = [_row("C1", "Ann", "ann@example.com", ["crm-1"]), _row("C2", "Bob", "bob@example.com", ["crm-2", "crm-9"]),
         _row("C3", "Cy", None), _row("C4", "Di", "di@example.com")]
# Day 2: Ann's email changes, Cy is gone (soft delete), Di's name changes (not a column mkt gets), Eve is new.
DAY_2 = [_row("C1", "Ann", "ann@new.example", ["crm-1"]), _row("C2", "Bob", "bob@example.com", ["crm-2", "crm-9"]),
         _row("C4", DIANA, "di@example.com"), _row("C5", "Eve", "eve@example.com", ["crm-5"])]
# Day 3: Ann's email changes again, Fay appears (and is erased before the next export).
DAY_3 = [_row("C1", "Ann", "ann@newer.example", ["crm-1"]), _row("C4", DIANA, "di@example.com"),
         _row("C5", "Eve", "eve@example.com", ["crm-5"]), _row("C6", "Fay", "fay@example.com")]


class Lake:
    """A lakehouse with a profile table and the test targets."""

    def __init__(self, spark, base: Path):
        self.spark, self.base = spark, base
        self.lakehouse = str(base / "lakehouse")
        self.path = table_path(self.lakehouse, GOLD, CUSTOMER_PROFILE)
        (base / "activation.yml").write_text(textwrap.dedent(ACTIVATION))
        self.cfg = PipelineConfig(lakehouse=self.lakehouse, activation=str(base / "activation.yml"))
        self.activation = load_activation(self.cfg)
        self.runs = 0

    def publish(self, rows) -> int:
        self.runs += 1
        df = self.spark.createDataFrame(rows, PROFILE)
        return publish(self.spark, df, self.path, keys=["customer_id"], run_id=f"r{self.runs}").version

    def erase(self, customer_id: str) -> None:
        DeltaTable.forPath(self.spark, self.path).delete(f"customer_id = '{customer_id}'")

    def export(self, *targets, full=False):
        return {r.target: r for r in export(self.spark, self.cfg, self.activation, run_id=f"x{self.runs}",
                                            targets=list(targets) or None, full=full)}

    def out(self, target: str) -> Path:
        return Path(self.lakehouse) / "out" / target


def _csv(folder: str) -> list[dict]:
    with open(Path(folder) / "part-00000.csv", newline="", encoding="utf-8") as handle:
        return sorted(csv.DictReader(handle), key=lambda r: r["Id"])


def _jsonl(folder: str) -> list[dict]:
    lines = (Path(folder) / "part-00000.jsonl").read_text(encoding="utf-8").splitlines()
    return sorted((json.loads(line) for line in lines), key=lambda r: r["customer_id"])


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory):
    """Day 1 published and exported (the first export), then days 2 and 3 and two erasures."""
    lake = Lake(spark, tmp_path_factory.mktemp("export"))
    lake.publish(DAY_1)
    lake.first = lake.export()
    lake.publish(DAY_2)
    lake.erase("C2")  # a hard delete, as GDPR erasure does
    lake.publish(DAY_3)
    lake.erase("C6")  # inserted and erased between two exports: nothing to send
    lake.second = lake.export()
    return lake


def test_first_export_sends_every_live_customer_as_an_insert(lake):
    crm = lake.first["crm"]
    assert (crm.mode, crm.from_version, crm.last_version, crm.rows, crm.files) == ("initial", None, 0,
                                                                                  {"insert": 4}, 1)
    assert crm.folder == f"{lake.out('crm')}/v00000000-v00000000"
    rows = _csv(crm.folder)
    assert list(rows[0]) == ["change", "Id", "CrmIds", "First Name", "email", "Birthdate", "Emails", "Updated"]
    assert rows[1] == {"change": "insert", "Id": "C2", "CrmIds": "crm-2|crm-9", "First Name": "Bob",
                       "email": "bob@example.com", "Birthdate": "17/05/1980", "Emails": "bob@example.com",
                       "Updated": "2026-01-02 03:04"}
    assert [(r["Id"], r["CrmIds"]) for r in rows] == [("C1", "crm-1"), ("C2", "crm-2|crm-9"), ("C3", ""), ("C4", "")]
    manifest = json.loads((Path(crm.folder) / "_export.json").read_text())
    assert (manifest["target"], manifest["mode"], manifest["rows"], manifest["files"]) == ("crm", "initial",
                                                                                          {"insert": 4}, 1)


def test_second_export_sends_only_the_net_changes_with_deletes_as_deletes(lake):
    crm = lake.second["crm"]
    assert (crm.mode, crm.from_version, crm.last_version) == ("changes", 1, 4)
    assert crm.rows == {"insert": 1, "update": 2, "delete": 2}
    assert crm.folder == f"{lake.out('crm')}/v00000001-v00000004"
    rows = {r["Id"]: r for r in _csv(crm.folder)}
    assert sorted(rows) == ["C1", "C2", "C3", "C4", "C5"]  # C6 came and went: nothing
    assert (rows["C1"]["change"], rows["C1"]["email"]) == ("update", "ann@newer.example")  # the latest value
    assert (rows["C4"]["change"], rows["C4"]["First Name"]) == ("update", DIANA)
    assert (rows["C5"]["change"], rows["C5"]["CrmIds"]) == ("insert", "crm-5")
    # Deletes, hard (erased) and soft (gone), carry the key and the CRM ids, nothing else.
    assert rows["C2"] == {"change": "delete", "Id": "C2", "CrmIds": "crm-2|crm-9", "First Name": "", "email": "",
                          "Birthdate": "", "Emails": "", "Updated": ""}
    assert (rows["C3"]["change"], rows["C3"]["CrmIds"], rows["C3"]["First Name"]) == ("delete", "", "")
    assert '"Diana ""Di"", Jr."' in (Path(crm.folder) / "part-00000.csv").read_text()  # RFC 4180 quoting


def test_a_target_gets_updates_of_its_own_columns_only_and_deletes_only_if_it_wants_them(lake):
    mkt = lake.second["mkt"]
    assert mkt.rows == {"insert": 1, "update": 1}  # Di's name is not a column mkt gets; no deletes
    assert _jsonl(mkt.folder) == [
        {"action": "update", "customer_id": "C1", "email": "ann@newer.example", "emails": ["ann@newer.example"]},
        {"action": "insert", "customer_id": "C5", "email": "eve@example.com", "emails": ["eve@example.com"]},
    ]
    bi = pd.read_parquet(Path(lake.second["bi"].folder) / "part-00000.parquet").sort_values("customer_id")
    assert list(bi.columns) == ["change", "customer_id", "given_name", "birth_date"]
    assert bi[["change", "customer_id", "given_name"]].values.tolist() == [
        ["delete", "C2", None], ["delete", "C3", None], ["update", "C4", DIANA], ["insert", "C5", "Eve"]]
    assert bi["birth_date"].tolist()[2] == date(1980, 5, 17)


def test_watermarks_record_each_export_and_nothing_is_sent_twice(spark, lake):
    assert read_watermark(spark, lake.lakehouse, "crm", TABLE) == 4
    again = lake.export()  # no new version: nothing to do, no folder, no watermark row
    assert {t: (r.rows, r.folder, r.last_version) for t, r in again.items()} == {
        t: ({}, None, 4) for t in ("crm", "mkt", "bi")}
    rows = delta_io.read(spark, watermarks_path(lake.lakehouse)).filter("target = 'crm'").orderBy("last_version")
    assert [(r["mode"], r["from_version"], r["last_version"], dict(r["rows"]), r["files"]) for r in rows.collect()] == [
        ("initial", None, 0, {"insert": 4}, 1), ("changes", 1, 4, {"insert": 1, "update": 2, "delete": 2}, 1)]
    assert sorted(p.name for p in lake.out("crm").iterdir()) == ["v00000000-v00000000", "v00000001-v00000004"]


def test_a_version_with_nothing_for_a_target_moves_its_watermark_without_a_file(spark, lake):
    lake.publish([_row("C1", "Annie", "ann@newer.example", ["crm-1"]), *DAY_3[1:3]])  # a name mkt does not get
    version = delta_io.current_version(spark, lake.path)
    done = lake.export("mkt", "crm")
    assert (done["mkt"].rows, done["mkt"].folder, done["mkt"].files) == ({}, None, 0)
    assert read_watermark(spark, lake.lakehouse, "mkt", TABLE) == version
    assert done["crm"].rows == {"update": 1}
    assert sorted(p.name for p in lake.out("mkt").iterdir()) == ["v00000000-v00000000", "v00000001-v00000004"]


def test_full_export_sends_every_live_customer_as_upsert_and_moves_the_watermark(spark, lake):
    version = delta_io.current_version(spark, lake.path)
    crm = lake.export("crm", full=True)["crm"]
    assert (crm.mode, crm.last_version, crm.rows) == ("full", version, {"upsert": 3})
    assert crm.folder == f"{lake.out('crm')}/v{version:08d}-v{version:08d}-full"
    assert [(r["change"], r["Id"]) for r in _csv(crm.folder)] == [("upsert", "C1"), ("upsert", "C4"),
                                                                  ("upsert", "C5")]
    assert read_watermark(spark, lake.lakehouse, "crm", TABLE) == version


def test_an_export_killed_before_its_watermark_is_sent_again_into_the_same_folder(spark, tmp_path, monkeypatch):
    lake = Lake(spark, tmp_path)
    lake.publish(DAY_1)
    lake.export("bi")
    lake.publish(DAY_2)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed after writing the files")

    with monkeypatch.context() as patch:
        patch.setattr(export_module, "_record", killed)
        with pytest.raises(KeyboardInterrupt):
            lake.export("bi")
    folder = lake.out("bi") / "v00000001-v00000001"
    first = pd.read_parquet(folder / "part-00000.parquet")
    assert read_watermark(spark, lake.lakehouse, "bi", TABLE) == 0  # not recorded: the range is sent again
    again = lake.export("bi")["bi"]
    assert again.folder == str(folder) and again.rows == {"insert": 1, "update": 1, "delete": 1}
    assert sorted(p.name for p in lake.out("bi").iterdir()) == ["v00000000-v00000000", "v00000001-v00000001"]
    assert pd.read_parquet(folder / "part-00000.parquet").sort_values("customer_id").values.tolist() == \
        first.sort_values("customer_id").values.tolist()
    assert read_watermark(spark, lake.lakehouse, "bi", TABLE) == 1


def test_a_watermark_older_than_the_change_data_kept_asks_for_a_full_export(spark, tmp_path):
    lake = Lake(spark, tmp_path)
    lake.publish(DAY_1)
    lake.export("bi")
    lake.publish(DAY_2)
    lake.publish(DAY_3)
    spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "false")
    try:
        delta_io.vacuum(spark, lake.path, retention_hours=0)
    finally:
        spark.conf.unset("spark.databricks.delta.retentionDurationCheck.enabled")
    with pytest.raises(StageError, match=r"target bi: it was last sent gold.customer_profile up to version 0, but "
                       r"the change data now starts at version 3 \(VACUUM removed .*--target bi --full"):
        lake.export("bi")
    assert lake.export("bi", full=True)["bi"].rows == {"upsert": 4}
    lake.publish(DAY_2)
    assert lake.export("bi")["bi"].rows == {"insert": 1, "delete": 1}  # C2 back, C6 gone; C1's email is not bi's


# --------------------------------------------------------------------------------------------
# Configuration: strict, with the file and the key in every message
# --------------------------------------------------------------------------------------------

CONF = Path(__file__).resolve().parents[2] / "conf"


def _load(tmp_path: Path, targets: str) -> ActivationConfig:
    path = tmp_path / "activation.yml"
    path.write_text(textwrap.dedent(targets))
    return load_activation(PipelineConfig(activation=str(path)))


def _target(fields: str, **extra: str) -> str:
    more = "".join(f"\n    {k}: {v}" for k, v in extra.items())
    return f"targets:\n  - name: crm\n    format: csv\n    path: out/crm{more}\n    fields: {fields}\n"


@pytest.mark.parametrize(("text", "key", "problem"), [
    (_target("[customer_id, {from: email, too: Email}]"), "targets[0].fields[1].too",
     "unknown key; expected one of: from, to, format, join"),
    (_target("[customer_id, {to: Email}]"), "targets[0].fields[1].from", "required key is missing"),
    (_target("[email]"), "targets[0]", "fields must include customer_id"),
    (_target("[customer_id, {from: birth_date, format: yyyy, join: ','}]"), "targets[0].fields[1]", "not both"),
    (_target("[customer_id, {from: email, to: Customer_ID}]"), "targets[0]", "'Customer_ID' is used twice"),
    (_target("[customer_id]", source_ids="crm", change_column="crm_ids"), "targets[0]", "'crm_ids' is used twice"),
    (_target("[customer_id]").replace("format: csv", "format: xml"), "targets[0].format",
     "expected one of 'csv', 'jsonl', 'parquet', found str 'xml'"),
    (_target("[customer_id]", source="orders"), "targets[0].source", "expected one of 'customer_profile'"),
    (_target("[customer_id]", files="0"), "targets[0]", "files must be at least 1"),
    (_target("[customer_id]").replace("name: crm", "name: CRM"), "targets[0]", "must be snake_case"),
    (_target("[customer_id]") + "  - {name: crm, format: jsonl, path: out/b, fields: [customer_id]}\n",
     "(top level)", "targets: two targets have name 'crm'"),
    ("targets: []\n", "(top level)", "at least one target"),
])
def test_activation_file_errors_name_the_file_and_the_key(tmp_path, text, key, problem):
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, text)
    assert (err.value.file, err.value.key) == (str(tmp_path / "activation.yml"), key)
    assert problem in err.value.problem


def test_fields_are_checked_against_the_source_table(tmp_path):
    from pyspark.sql.types import _parse_datatype_string

    schema = _parse_datatype_string(PROFILE)
    cases = [("[customer_id, emial]", "targets[0].fields[1].from", "column 'emial' is not in gold.customer_profile"),
             ("[customer_id, {from: email, format: yyyy}]", "targets[0].fields[1].format",
              "format applies to dates and timestamps; email is string"),
             ("[customer_id, {from: birth_date, join: ','}]", "targets[0].fields[1].join", "join applies to arrays")]
    for fields, key, problem in cases:
        activation = _load(tmp_path, _target(fields))
        with pytest.raises(ConfigError) as err:
            check_fields(schema, activation.targets[0], activation)
        assert (err.value.key, problem in err.value.problem) == (key, True)
    activation = _load(tmp_path, _target("[customer_id, {from: crm_ids, join: ','}, birth_date]", source_ids="crm"))
    check_fields(schema, activation.targets[0], activation)  # crm_ids comes from source_ids: fine


def test_the_activation_file_is_read_only_when_exports_run(tmp_path):
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    (conf / "activation.yml").unlink()
    load_config(conf / "pipeline.yml", stages=["golden"])  # no activate stage: the file is not needed
    with pytest.raises(ConfigError, match="activation.yml: file not found"):
        load_config(conf / "pipeline.yml", stages=["golden", "activate"])
    assert main(["export", "--config", str(conf / "pipeline.yml")]) == 2


def test_shipped_targets_load_and_an_unknown_target_stops_the_command(tmp_path):
    activation = load_activation(load_config(CONF / "pipeline.yml"))
    assert [t.name for t in activation.targets] == ["crm", "marketing", "support", "bi"]
    assert activation.targets[0].ids_column == "crm_ids"
    assert main(["export", "--config", str(CONF / "pipeline.yml"), "--target", "nope"]) == 2
