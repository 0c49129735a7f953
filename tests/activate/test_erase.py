"""GDPR erasure over a small lakehouse built by the real stages: bronze, quarantine, silver, two
golden runs (the second merges Carl's two customers, retiring one id), labels, edges, a Zingg
training file and the analysts' table.

Four people: Ann (erased by email), Bob (by system + source id), Carl (by his retired customer
id, with --vacuum) and Dan, who stays, with Eve sharing his mailbox. After the three erasures
the documented VACUUM of Ann's erasure runs, then a third golden run, which must start from
the erased state. Building and erasing takes minutes (two golden runs, three erasures of about
twenty commits each): the tests that share it are marked slow.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from cdi_spark import delta_io, tables
from cdi_spark.activate import erase_tables
from cdi_spark.activate.erase import ErasureError, ErasureRequest, ErasureResult, erase, format_result
from cdi_spark.activate.erase_find import find_person
from cdi_spark.activate.pii import hash_text, load_pii, pii_path, publish_analyst_table
from cdi_spark.config import load_config
from cdi_spark.errors import ConfigError
from cdi_spark.golden import publish
from cdi_spark.golden import stage as golden
from cdi_spark.golden.ids import REGISTRY_SCHEMA
from cdi_spark.lakehouse import table_paths
from cdi_spark.standardize.canonical import COLUMNS, SCHEMA

CONF = Path(__file__).resolve().parents[2] / "conf"
SALT = "test-salt-0123456789abcdef"
SYSTEMS = {"crm_contacts": "crm", "shop_customers": "ecommerce", "support_users": "support"}
MAPPING = {"delta.columnMapping.mode": "name"}  # bronze column names have spaces, as ingest writes them
T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)

ANN_TEXT = ("ann.lee", "07700 900111", "+447700900111", "crm_contacts:001", "shop_customers:s1")
BOB_TEXT = ("bob.stone", "+14155550123", "support_users:77", "crm_contacts:002")
CARL_TEXT = ("carl", "crm_contacts:003", "shop_customers:s3")
DAN_TEXT = ("dan@example.com", "crm_contacts:004")


# --------------------------------------------------------------------------------------------
# The lakehouse
# --------------------------------------------------------------------------------------------


def _path(cfg, layer: str, name: str) -> str:
    return tables.table_path(cfg.lakehouse, layer, name)


def _records(spark, run_id: str, rows: list[dict]):
    def full(row: dict) -> tuple:
        source, record_id = row["record_key"].split(":")
        email = row.get("email")
        lineage = {"source": source, "system": SYSTEMS[source], "source_record_id": record_id, "batch_id": run_id,
                   "bronze_version": 0, "run_id": run_id, "email_valid": email is not None, "email_is_role": False,
                   "email_key": email.replace("+shop", "") if email else None, "updated_at": datetime(2024, 1, 1)}
        return tuple({**lineage, **row}.get(c) for c in COLUMNS)

    return spark.createDataFrame([full(r) for r in rows], SCHEMA)


PEOPLE = [
    {"record_key": "crm_contacts:001", "given_name": "Ann", "family_name": "Lee", "email": "ann.lee@example.com",
     "phone_raw": "07700 900111", "phone_e164": "+447700900111", "birth_date": date(1980, 5, 17), "country": "GB"},
    {"record_key": "shop_customers:S1", "given_name": "Ann", "family_name": "Lee",
     "email": "ann.lee+shop@example.com", "country": "GB"},
    {"record_key": "support_users:77", "full_name": "Bob Stone", "email": "bob.stone@example.org",
     "phone_raw": "+14155550123", "phone_e164": "+14155550123"},
    {"record_key": "crm_contacts:002", "given_name": "Bob", "family_name": "Stone", "email": "bob.stone@example.org"},
    {"record_key": "crm_contacts:003", "given_name": "Carl", "family_name": "Kent", "email": "carl@example.net"},
    {"record_key": "shop_customers:S3", "given_name": "Carl", "family_name": "Kent", "email": "carl.k@example.net"},
    {"record_key": "crm_contacts:004", "given_name": "Dan", "family_name": "Ng", "email": "dan@example.com",
     "phone_e164": "+447700900444"},
    {"record_key": "shop_customers:S4", "given_name": "Dan", "family_name": "Ng", "email": "dan@example.com"},
    {"record_key": "shop_customers:S5", "given_name": "Eve", "family_name": "Ng", "email": "dan@example.com"},
]
DAY1 = {"crm_contacts:001": "crm_contacts:001", "shop_customers:S1": "crm_contacts:001",
        "support_users:77": "crm_contacts:002", "crm_contacts:002": "crm_contacts:002",
        "crm_contacts:003": "crm_contacts:003", "shop_customers:S3": "shop_customers:S3",
        "crm_contacts:004": "crm_contacts:004", "shop_customers:S4": "crm_contacts:004",
        "shop_customers:S5": "shop_customers:S5"}
DAY2 = {**DAY1, "shop_customers:S3": "crm_contacts:003"}  # Carl's two customers merge: one id is retired


def _bronze(spark, cfg, name: str, schema: str, rows: list[tuple]) -> None:
    lineage = [(*r, "b1", T0) for r in rows]
    df = spark.createDataFrame(lineage, f"{schema}, _batch_id string, _ingested_at timestamp")
    delta_io.append(spark, df, _path(cfg, tables.BRONZE, name), table_properties=MAPPING)


def _build_bronze(spark, cfg) -> None:
    _bronze(spark, cfg, "crm_contacts", "Id string, FirstName string, LastName string, Email string, Phone string", [
        ("001", "Ann", "Lee", "Ann.Lee@Example.com", "07700 900111"),
        ("002", "Bob", "Stone", "bob.stone@example.org", None),
        ("003", "Carl", "Kent", "carl@example.net", None),
        ("004", "Dan", "Ng", "dan@example.com", "+44 7700 900444"),
    ])
    _bronze(spark, cfg, "shop_customers", "`Customer ID` string, `First Name` string, Email string", [
        ("S1", "Ann", "ann.lee+shop@example.com"), ("S3", "Carl", "carl.k@example.net"),
        ("S4", "Dan", "dan@example.com"), ("S5", "Eve", "dan@example.com"),
    ])
    _bronze(spark, cfg, "shop_orders", "`Order ID` string, `Customer ID` string, Email string, `Created At` string, "
                                       "Currency string, Total string, `Financial Status` string", [
        ("O1", "S1", "ann.lee+shop@example.com", "01/15/2024 10:00", "GBP", "20.00", "paid"),
        ("O2", None, "ANN.LEE@example.com", "01/16/2024 10:00", "GBP", "5.00", "paid"),  # a guest order by address
        ("O3", "S4", "dan@example.com", "01/17/2024 10:00", "GBP", "7.50", "paid"),
        ("O4", "S3", "carl.k@example.net", "01/18/2024 10:00", "GBP", "9.00", "paid"),
    ])
    _bronze(spark, cfg, "product_events", "event_id string, event_type string, user_id string, anonymous_id string, "
                                          "timestamp timestamp, traits map<string, string>", [
        ("e1", "identify", "S1", "A1", T0, {"email": "ann.lee+shop@example.com"}),
        ("e2", "track", None, "A1", T0, None),  # Ann's device before she logged in
        ("e3", "identify", "S1", "A2", T0, None),  # a shared device: Ann and Dan
        ("e4", "identify", "S4", "A2", T0, None),
        ("e5", "track", None, "A2", T0, None),  # nobody's alone: stays
        ("e6", "track", "S4", "A4", T0, None),
    ])
    _bronze(spark, cfg, "support_users", "id long, name string, email string, phone string",
            [(77, "Bob Stone", "bob.stone@example.org", "+1 415 555 0123")])
    _bronze(spark, cfg, "support_tickets", "id long, requester_id long, subject string, status string, "
                                           "created_at string, updated_at string", [
        (1, 77, "My invoice", "open", "2024-01-10T10:00:00Z", None),
        (2, 78, "Other", "solved", "2024-01-11T10:00:00Z", None),
    ])


def _quarantine(spark, cfg, name: str, raws: list[str]) -> None:
    rows = [(name, f"file:/raw/{name}.csv", "b1", T0, i + 2, "line", "wrong_type", "x", "bad", raw)
            for i, raw in enumerate(raws)]
    schema = ("_source string, _source_file string, _batch_id string, _ingested_at timestamp, _line long, "
              "_position string, _reason string, _field string, _detail string, _raw string")
    delta_io.append(spark, spark.createDataFrame(rows, schema), _path(cfg, tables.QUARANTINE, name))


def _build_quarantine(spark, cfg) -> None:
    _quarantine(spark, cfg, "crm_contacts", [
        '001,Ann,Lee,ANN.LEE@EXAMPLE.COM,not-a-date',  # her address, any case
        '001,A.,L.,,1980-13-45',  # her id as a whole field
        '0011,Zed,Moe,zed@example.com,not-a-date',  # a longer id that merely starts like hers: stays
        '004,Dan,Ng,dan@example.com,not-a-date',
    ])
    _quarantine(spark, cfg, "support_users", ['{"id": 77, "created_at": "yesterday"}', '{"id": 770, "x": 1}'])


def _build_resolve_tables(spark, cfg) -> None:
    pairs = "left_key string, right_key string"
    delta_io.append(spark, spark.createDataFrame([
        ("crm_contacts:001", "shop_customers:S1", True), ("crm_contacts:002", "crm_contacts:004", False),
    ], f"{pairs}, is_match boolean"), _path(cfg, tables.SILVER, tables.MATCH_LABELS))
    delta_io.append(spark, spark.createDataFrame([
        ("crm_contacts:001", "shop_customers:S1", "email", 1.0),
        ("crm_contacts:004", "shop_customers:S4", "email", 1.0),
        ("crm_contacts:003", "shop_customers:S3", "model", 0.9),
    ], f"{pairs}, rule string, score double"), _path(cfg, tables.SILVER, tables.MATCH_EDGES))
    delta_io.append(spark, spark.createDataFrame([("shop_customers:S1", "shop_customers:S4", "size guard")],
                                                 f"{pairs}, reason string"), _path(cfg, tables.AUDIT, tables.CUT_EDGES))
    marked = spark.createDataFrame([
        ("crm_contacts:001|shop_customers:S1", "crm_contacts:001", "ann.lee@example.com", 1),
        ("crm_contacts:001|shop_customers:S1", "shop_customers:S1", "ann.lee+shop@example.com", 1),
        ("crm_contacts:002|crm_contacts:004", "crm_contacts:002", "bob.stone@example.org", 0),
        ("crm_contacts:002|crm_contacts:004", "crm_contacts:004", "dan@example.com", 0),
        ("crm_contacts:003|crm_contacts:004", "crm_contacts:003", "carl@example.net", 0),
        ("crm_contacts:003|crm_contacts:004", "crm_contacts:004", "dan@example.com", 0),
    ], "z_cluster string, record_key string, email string, z_isMatch int")
    marked.write.parquet(f"{cfg.lakehouse}/models/zingg/v1/cdi/trainingData/marked")


def _silver(spark, cfg, run_id: str, clusters: dict[str, str]) -> None:
    delta_io.merge_upsert(spark, _records(spark, run_id, PEOPLE), _path(cfg, tables.SILVER, tables.CUSTOMER_RECORDS),
                          keys=["record_key"])
    rows = spark.createDataFrame(list(clusters.items()), "record_key string, cluster_id string")
    delta_io.merge_upsert(spark, rows, _path(cfg, tables.SILVER, tables.ENTITY_CLUSTERS), keys=["record_key"],
                          delete_missing=True)


@dataclass
class Lake:
    """The lakehouse after the erasures, and what was seen on the way."""

    cfg: object
    ids: dict[str, str]  # record key -> customer id after the second golden run
    registry: dict[str, tuple]  # customer id -> (status, current_id) after the second golden run
    results: dict[str, ErasureResult] = field(default_factory=dict)
    before: dict[str, int] = field(default_factory=dict)  # table path -> version before Ann's erasure
    ann_in_old_versions: dict[str, int] = field(default_factory=dict)  # before the VACUUM
    log_text: str = ""
    third_run: golden.GoldenResult | None = None


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _hits(df, needles) -> int:
    text = F.lower(F.to_json(F.struct(*[F.col(f"`{c}`") for c in df.columns])))
    return df.filter(F.exists(F.array(*[F.lit(n.lower()) for n in needles]), lambda n: F.contains(text, n))).count()


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory) -> Lake:
    base = tmp_path_factory.mktemp("erase")
    cfg = load_config(CONF / "pipeline.yml", lakehouse=str(base / "lakehouse"))
    _build_bronze(spark, cfg)
    _build_quarantine(spark, cfg)
    _build_resolve_tables(spark, cfg)
    _silver(spark, cfg, "r1", DAY1)
    golden.build_golden(spark, cfg, run_id="r1")
    _silver(spark, cfg, "r2", DAY2)
    golden.build_golden(spark, cfg, run_id="r2")
    pii = load_pii(pii_path(cfg))
    publish_analyst_table(spark, cfg, pii, salt=SALT, run_id="r2")
    xref = delta_io.read(spark, _path(cfg, tables.GOLD, tables.CUSTOMER_XREF)).collect()
    registry = delta_io.read(spark, _path(cfg, tables.GOLD, tables.CUSTOMER_IDS)).collect()
    lake = Lake(cfg, {r["record_key"]: r["customer_id"] for r in xref},
                {r["customer_id"]: (r["status"], r["current_id"]) for r in registry})
    lake.before = {str(p): delta_io.current_version(spark, str(p)) for p in table_paths(cfg.lakehouse)}

    capture = _Capture()
    logging.getLogger("cdi_spark").addHandler(capture)
    try:
        lake.results["ann"] = erase(spark, cfg, ErasureRequest("email", "  ANN.LEE@example.com "), salt=SALT, pii=pii)
    finally:
        logging.getLogger("cdi_spark").removeHandler(capture)
    lake.log_text = "\n".join(capture.lines) + "\n" + format_result(lake.results["ann"])
    for change in lake.results["ann"].changes:
        if change.path in lake.before and change.operation.startswith("delete"):  # retire, rebase: ids only
            old = delta_io.read(spark, change.path, version=lake.before[change.path])
            lake.ann_in_old_versions[change.table] = _hits(old, ANN_TEXT)

    lake.results["bob"] = erase(spark, cfg, ErasureRequest("source_id", "support:77"), salt=SALT, pii=pii)
    carl_retired = next(cid for cid, (status, _) in lake.registry.items() if status == "retired")  # the only one
    lake.results["carl"] = erase(spark, cfg, ErasureRequest("customer_id", carl_retired), salt=SALT, pii=pii,
                                 vacuum=True)
    for statement in lake.results["ann"].vacuum.splitlines():  # the documented VACUUM, as an operator runs it
        spark.sql(statement.rstrip(";"))
    spark.conf.unset(erase_tables.RETENTION_CHECK)
    lake.third_run = golden.build_golden(spark, cfg, run_id="r3")
    return lake


# --------------------------------------------------------------------------------------------
# The person is gone
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_no_current_table_holds_the_erased_people(spark, lake):
    found = {}
    for path in table_paths(lake.cfg.lakehouse):
        df = delta_io.read(spark, str(path))
        for who, needles in (("ann", ANN_TEXT), ("bob", BOB_TEXT), ("carl", CARL_TEXT)):
            if n := _hits(df, needles):
                found[f"{path.parent.name}.{path.name} ({who})"] = n
    assert found == {}


@pytest.mark.slow
def test_the_person_who_was_not_erased_is_still_everywhere(spark, lake):
    for layer, name in (("bronze", "crm_contacts"), ("bronze", "shop_orders"), ("silver", "customer_records"),
                        ("gold", "customer_profile"), ("gold", "customer_360"), ("quarantine", "crm_contacts")):
        assert _hits(delta_io.read(spark, _path(lake.cfg, layer, name)), DAN_TEXT) > 0, f"{layer}.{name}"


@pytest.mark.slow
def test_old_versions_held_the_person_before_the_vacuum(lake):
    assert lake.ann_in_old_versions["silver.customer_records"] == 2
    assert lake.ann_in_old_versions["gold.customer_profile"] == 1
    assert lake.ann_in_old_versions["bronze.shop_orders"] == 2
    assert all(n > 0 for n in lake.ann_in_old_versions.values()), lake.ann_in_old_versions


@pytest.mark.slow
def test_after_the_documented_vacuum_time_travel_cannot_return_the_person(spark, lake):
    unreadable, empty = 0, 0
    for change in lake.results["ann"].changes:
        if change.operation in ("append", "rebase"):
            continue
        for version in range(delta_io.current_version(spark, change.path) + 1):
            try:
                hits = _hits(delta_io.read(spark, change.path, version=version), ANN_TEXT)
            except Exception as exc:  # noqa: BLE001 - Spark wraps the missing file in a Py4J error
                assert "does not exist" in str(exc) or "FileNotFound" in str(exc), str(exc)[:300]
                unreadable += 1
                continue
            assert hits == 0, f"{change.table} version {version}"
            empty += 1
    assert unreadable > 0 and empty > 0
    for name in ("customer_profile", "customer_360"):  # the change feed (gold tables have one) is gone too
        with pytest.raises(Exception, match="does not exist|FileNotFound"):  # noqa: B017
            delta_io.changes(spark, _path(lake.cfg, "gold", name), starting_version=0).count()


@pytest.mark.slow
def test_no_data_file_holds_the_address_after_the_vacuum(lake):
    leftovers = []
    for table in table_paths(lake.cfg.lakehouse):
        for file in table.rglob("*"):
            if file.is_file() and "_delta_log" not in file.parts and b"ann.lee" in file.read_bytes().lower():
                leftovers.append(str(file))
    assert leftovers == []


# --------------------------------------------------------------------------------------------
# Table by table
# --------------------------------------------------------------------------------------------


def _column(spark, cfg, layer, name, column) -> set:
    return {r[0] for r in delta_io.read(spark, _path(cfg, layer, name)).select(F.col(f"`{column}`")).collect()}


@pytest.mark.slow
def test_activity_naming_the_person_is_deleted_and_other_activity_kept(spark, lake):
    assert _column(spark, lake.cfg, "bronze", "shop_orders", "Order ID") == {"O3"}  # Ann's, her guest order, Carl's
    assert _column(spark, lake.cfg, "bronze", "product_events", "event_id") == {"e4", "e5", "e6"}
    assert _column(spark, lake.cfg, "bronze", "support_tickets", "id") == {2}


@pytest.mark.slow
def test_quarantine_rows_with_the_address_or_the_id_as_a_whole_field_are_deleted(spark, lake):
    raws = _column(spark, lake.cfg, "quarantine", "crm_contacts", "_raw")
    assert raws == {"0011,Zed,Moe,zed@example.com,not-a-date", "004,Dan,Ng,dan@example.com,not-a-date"}
    assert _column(spark, lake.cfg, "quarantine", "support_users", "_raw") == {'{"id": 770, "x": 1}'}


@pytest.mark.slow
def test_the_person_s_ids_are_retired_with_no_survivor_and_never_removed(spark, lake):
    ann = {lake.ids["crm_contacts:001"]}
    registry = delta_io.read(spark, _path(lake.cfg, "gold", "customer_ids"))
    assert registry.count() == len(lake.registry)  # the id keeper mints from the registry's size
    row = registry.filter(F.col("customer_id").isin(*ann)).first()
    assert (row["status"], row["merged_into"], row["current_id"]) == ("retired", None, None)
    assert row["retired_run_id"] == lake.results["ann"].erasure_id
    content = [c for c in REGISTRY_SCHEMA.names if c != "customer_id"]
    expected = registry.filter(F.col("customer_id").isin(*ann)).select(publish.content_hash(registry, content)).first()
    assert row[publish.CONTENT_HASH] == expected[0]


@pytest.mark.slow
def test_a_retired_customer_id_erases_the_customer_it_resolves_to(lake):
    carl = lake.results["carl"]
    assert (carl.customers, carl.records) == (2, 2)
    assert carl.vacuumed


@pytest.mark.slow
def test_id_events_of_the_person_are_deleted(spark, lake):
    events = delta_io.read(spark, _path(lake.cfg, "audit", "id_events"))
    erased = {lake.ids[k] for k in ("crm_contacts:001", "support_users:77", "crm_contacts:003")}
    assert events.filter(F.col("customer_id").isin(*erased)).count() == 0
    assert events.filter(F.col("customer_id") == lake.ids["crm_contacts:004"]).count() > 0


@pytest.mark.slow
def test_zingg_training_pairs_holding_the_person_are_removed(spark, lake):
    marked = spark.read.parquet(f"{lake.cfg.lakehouse}/models/zingg/v1/cdi/trainingData/marked")
    assert marked.count() == 0  # Ann's pair, Bob's and Carl's pairs with Dan
    assert lake.results["ann"].training_rows == 2


@pytest.mark.slow
def test_golden_runs_point_at_the_erased_versions_and_the_next_run_succeeds(spark, lake):
    assert lake.third_run is not None
    profiles = delta_io.read(spark, _path(lake.cfg, "gold", "customer_profile"))
    assert {r["customer_id"] for r in profiles.filter(~F.col("is_deleted")).collect()} == {
        lake.ids["crm_contacts:004"], lake.ids["shop_customers:S5"]}


# --------------------------------------------------------------------------------------------
# Tombstones, audit, logs
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_tombstone_names_the_customer_and_its_source_ids_per_system(spark, lake):
    rows = delta_io.read(spark, _path(lake.cfg, "audit", tables.ERASURE_TOMBSTONES)).filter(
        F.col("erasure_id") == lake.results["ann"].erasure_id).collect()
    assert [(r["customer_id"], r["status"], dict(r["source_ids"])) for r in rows] == [
        (lake.ids["crm_contacts:001"], "active", {"crm": ["001"], "ecommerce": ["S1"]})]


@pytest.mark.slow
def test_audit_rows_hold_a_salted_hash_and_counts_and_no_personal_data(spark, lake):
    audit = delta_io.read(spark, _path(lake.cfg, "audit", tables.ERASURES))
    assert _hits(audit, ("ann.lee", "bob.stone", "carl@", "carl.k", "+447700900111", "+14155550123")) == 0
    ann = audit.filter(F.col("erasure_id") == lake.results["ann"].erasure_id).first()
    assert ann["request_hash"] == hash_text(SALT, "email:ann.lee@example.com")
    assert ann["rows"]["silver.customer_records"] == 2 and ann["rows"]["bronze.shop_orders"] == 2
    assert ann["versions"]["gold.customer_profile"] > lake.before[_path(lake.cfg, "gold", "customer_profile")]
    assert "RETAIN 0 HOURS" in ann["vacuum"] and not ann["vacuumed"]


@pytest.mark.slow
def test_commits_record_no_address_in_their_predicates(spark, lake):
    for change in lake.results["ann"].changes:
        params = delta_io.history(spark, change.path).filter(F.col("version") == change.version).select(
            F.to_json("operationParameters")).first()[0]
        assert "ann.lee" not in params.lower(), change.table


@pytest.mark.slow
def test_logs_and_the_operator_summary_hold_no_address_or_phone(lake):
    text = lake.log_text.lower()
    assert "ann.lee" not in text and "example.com" not in text
    assert "07700 900111" not in text and "+447700900111" not in text
    assert "silver.customer_records" in text and "vacuum delta.`" in text


# --------------------------------------------------------------------------------------------
# Refusals
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_shared_address_is_refused_with_the_customer_ids(spark, lake):
    with pytest.raises(ErasureError, match="belongs to 2 customers.*--allow-many"):
        find_person(spark, lake.cfg, ErasureRequest("email", "dan@example.com"))


@pytest.mark.slow
def test_erasing_without_the_salt_is_refused_before_anything_is_written(spark, lake, monkeypatch):
    monkeypatch.delenv("CDI_SPARK_PII_SALT", raising=False)
    before = delta_io.current_version(spark, _path(lake.cfg, "audit", tables.ERASURES))
    with pytest.raises(ConfigError, match="CDI_SPARK_PII_SALT: not set; set it to a secret"):
        erase(spark, lake.cfg, ErasureRequest("email", "dan@example.com"))
    with pytest.raises(ConfigError, match="only 5 characters long"):
        erase(spark, lake.cfg, ErasureRequest("email", "dan@example.com"), salt="short")
    assert delta_io.current_version(spark, _path(lake.cfg, "audit", tables.ERASURES)) == before


def test_an_unfinished_golden_run_is_refused(spark, tmp_path):
    cfg = load_config(CONF / "pipeline.yml", lakehouse=str(tmp_path / "lakehouse"))
    profile = _path(cfg, "gold", "customer_profile")
    for customer in ("C1", "C2"):  # version 0, which the last golden run recorded; then a write
        delta_io.append(spark, spark.createDataFrame([(customer,)], "customer_id string"), profile)
    run = spark.createDataFrame([(1, "r1", "full", T0, T0, 0, 0, {"customer_profile": 0}, {})],
                                golden.GOLDEN_RUNS_SCHEMA)
    delta_io.append(spark, run, _path(cfg, "audit", tables.GOLDEN_RUNS))
    with pytest.raises(ErasureError, match="gold.customer_profile changed at version 1.*a golden run is running"):
        erase(spark, cfg, ErasureRequest("customer_id", "C1"), salt=SALT)


def test_a_request_needs_a_known_kind_and_a_value():
    with pytest.raises(ValueError, match="kind must be one of"):
        ErasureRequest("phone", "+44")
    with pytest.raises(ValueError, match="an empty email"):
        ErasureRequest("email", "  ")
    assert "ann" not in repr(ErasureRequest("email", "ann@example.com"))
