"""The benchmark's Splink peer, run as the bench runs it: a subprocess in the peer venv on a small Parquet file.

The fixture is 46 standardized records: ten people with two to four records each (typos in a name, a
missing email, another phone, a missing birth date), hard non-matches (the same name in another city, one
household, similar names in one city) and singletons. Splink trains on it unsupervised, as in its tutorials.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

ROOT = Path(__file__).resolve().parents[1]
PEER_PYTHON = ROOT / os.environ.get("PEER_VENV", ".venv-peer") / "bin" / "python"
SCRIPT = ROOT / "cdi_spark" / "peer" / "splink_peer.py"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not PEER_PYTHON.exists(), reason=f"no {PEER_PYTHON}: run scripts/setup_peer.sh"),
]

COLUMNS = ("record_key", "given_name_key", "family_name_key", "email_key", "phone_e164", "birth_date",
           "street", "street_number", "postcode", "city", "country")

# One record a line: record_key|given|family|email|phone|birth date|street|number|postcode|city|country;
# an empty field is a null.
TABLE = """
# anna schmidt: a copy, a family-name typo without email, another phone
crm:1|anna|schmidt|anna.schmidt@web.de|+4930123401|1985-03-12|hauptstrasse|12|10115|berlin|DE
shop:1|anna|schmidt|anna.schmidt@web.de|+4930123401|1985-03-12|hauptstrasse|12|10115|berlin|DE
bill:1|anna|schmit||+4930123401|1985-03-12|hauptstrasse|12|10115|berlin|DE
mkt:1|anna|schmidt|anna.schmidt@web.de|+4917055501||||10115|berlin|DE
# john smith (seattle)
crm:2|john|smith|jsmith77@gmail.com|+12065550101|1977-06-01|pine street|410|98101|seattle|US
shop:2|john|smith|jsmith77@gmail.com||1977-06-01|pine street|410|98101|seattle|US
bill:2|jon|smith|jsmith77@gmail.com|+12065550101|1977-06-01|pine st|410|98101|seattle|US
# john smith (austin): another person with the same name, the hard non-match
crm:3|john|smith|john.smith@outlook.com|+15125550199|1990-11-23|congress avenue|5|78701|austin|US
shop:3|john|smith|john.smith@outlook.com|+15125550199|1990-11-23|congress avenue|5|78701|austin|US
# marie dubois
crm:4|marie|dubois|marie.dubois@orange.fr|+33142000001|1968-01-30|rue de rivoli|8|75001|paris|FR
mkt:4|marie|dubois|marie.dubois@orange.fr|||||75001|paris|FR
bill:4|marie|duboise|marie.dubois@orange.fr|+33142000001|1968-01-30|rue de rivoli|8|75001|paris|FR
# james brown
crm:5|james|brown|jbrown@btinternet.com|+442079460001|1959-09-09|baker street|221|NW1 6XE|london|GB
shop:5|james|brown|jbrown@btinternet.com|+442079460001|1959-09-09|baker street|221|NW1 6XE|london|GB
bill:5|james|browne||+442079460001|1959-09-09|baker street|221|NW1 6XE|london|GB
# emma brown: james's wife, same household, another person
crm:6|emma|brown|emma.brown@gmail.com|+447700900006|1961-04-17|baker street|221|NW1 6XE|london|GB
# olivia tremblay
crm:7|olivia|tremblay|olivia.t@videotron.ca|+15145550107|1992-02-14|rue sherbrooke|300|H2X 1X8|montreal|CA
shop:7|olivia|tremblay|olivia.t@videotron.ca|+15145550107|1992-02-14|rue sherbrooke|300|H2X 1X8|montreal|CA
mkt:7|olivia|tremblay|olivia.t@videotron.ca|||||||CA
# liam wilson
crm:8|liam|wilson|liam.wilson@bigpond.com|+61298765008|1988-12-05|george street|77|2000|sydney|AU
bill:8|liam|wilson|liam.wilson@bigpond.com|+61298765008|1988-12-05|george street|77|2000|sydney|AU
shop:8|liam|willson|liam.wilson@bigpond.com|+61298765008||george street|77|2000|sydney|AU
# sophie muller
crm:9|sophie|muller|s.muller@gmx.de|+4989555009|1975-07-21|leopoldstrasse|40|80802|munchen|DE
shop:9|sophie|muller|s.muller@gmx.de|+4989555009|1975-07-21|leopoldstrasse|40|80802|munchen|DE
bill:9|sophie|mueller||+4989555009|1975-07-21|leopoldstrasse|40|80802|munchen|DE
# david jones
crm:10|david|jones|dave.jones@yahoo.com|+13125550110|1983-05-19|lake shore drive|1500|60610|chicago|US
shop:10|david|jones|dave.jones@yahoo.com|+13125550110|1983-05-19|lake shore drive|1500|60610|chicago|US
# pierre martin
crm:11|pierre|martin|pierre.martin@free.fr|+33491000011|1971-10-02|la canebiere|15|13001|marseille|FR
bill:11|pierre|martin|pierre.martin@free.fr|+33491000011|1971-10-02|la canebiere|15|13001|marseille|FR
mkt:11|pierre|martin|pierre.martin@free.fr|||||13001|marseille|FR
# singletons
crm:20|lucas|meyer|lucas.meyer@t-online.de|+4940555020|1999-08-08|jungfernstieg|3|20354|hamburg|DE
crm:21|chloe|lefebvre|chloe.lef@sfr.fr|+33472000021|1994-03-03|rue de la republique|44|69002|lyon|FR
crm:22|oliver|taylor|oliver.taylor@hotmail.co.uk|+441615550022|1986-06-16|deansgate|100|M3 2BW|manchester|GB
crm:23|mia|anderson|mia.anderson@gmail.com|+13055550123|2001-01-01|ocean drive|900|33139|miami|US
crm:24|noah|roy|noah.roy@gmail.com|+16135550124|1979-09-29|wellington street|111|K1A 0A9|ottawa|CA
crm:25|ava|nguyen|ava.nguyen@outlook.com|+61395550125|1996-11-11|collins street|20|3000|melbourne|AU
crm:26|felix|wagner||+4969555026|1964-02-27|zeil|9|60313|frankfurt|DE
crm:27|lea|moreau|lea.moreau@laposte.net||1982-12-24|cours mirabeau|2|13100|aix en provence|FR
crm:28|harry|evans|harry.evans@gmail.com|+442920550028|1993-07-07|queen street|50|CF10 2BU|cardiff|GB
crm:29|ethan|clark|ethan.clark@icloud.com|+14155550129|1987-04-04|market street|1|94103|san francisco|US
crm:30|grace|white|grace.white@gmail.com|+16045550130|1990-10-10|robson street|800|V6Z 2H7|vancouver|CA
crm:31|jack|thompson|jack.t@bigpond.com|+61733550131|1970-05-05|queen street|12|4000|brisbane|AU
crm:32|marie|dupont|marie.dupont@gmail.com|+33142000032|1969-06-15|boulevard haussmann|60|75009|paris|FR
crm:33|david|johnson|d.johnson@aol.com|+13125550133|1955-08-30|michigan avenue|233|60601|chicago|US
crm:34|anna|schneider|anna.schneider@web.de|+4930123434|1991-01-20|friedrichstrasse|70|10117|berlin|DE
crm:35|sophie|williams|sophie.w@gmail.com|+442079460035|1984-03-28|oxford street|10|W1D 1BS|london|GB
"""




def _records() -> list[dict]:
    rows = []
    for line in TABLE.strip().splitlines():
        if not line.startswith("#"):
            row = {c: v or None for c, v in zip(COLUMNS, line.split("|"), strict=True)}
            row["birth_date"] = row["birth_date"] and dt.date.fromisoformat(row["birth_date"])
            rows.append(row)
    return rows


RECORDS = _records()


def _write_records(path: Path, drop: str | None = None) -> Path:
    table = pa.Table.from_pylist(RECORDS)
    if drop:
        table = table.drop_columns([drop])
    pq.write_table(table, path)
    return path


def _run_peer(records: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(PEER_PYTHON), str(SCRIPT), "--records", str(records), "--out", str(out), "--threads", "2",
         "--seed", "42", "--max-pairs-u", "100000"],
        capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def peer_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("peer")
    records = _write_records(base / "records.parquet")
    done = _run_peer(records, base / "out")
    assert done.returncode == 0, done.stderr
    clusters = pq.read_table(base / "out" / "clusters.parquet").to_pylist()
    return done, {row["record_key"]: row["cluster_id"] for row in clusters}, clusters, base


def test_every_record_is_in_exactly_one_cluster(peer_run):
    _, by_key, rows, _ = peer_run
    assert sorted(r["record_key"] for r in rows) == sorted(r["record_key"] for r in RECORDS)
    assert len(by_key) == len(rows)


@pytest.mark.parametrize("keys", [
    ["crm:1", "shop:1"], ["crm:2", "shop:2", "bill:2"], ["crm:3", "shop:3"], ["crm:4", "mkt:4", "bill:4"],
    ["crm:5", "shop:5"], ["crm:7", "shop:7"], ["crm:8", "bill:8", "shop:8"], ["crm:9", "shop:9"],
    ["crm:10", "shop:10"], ["crm:11", "bill:11", "mkt:11"],
])
def test_records_sharing_email_and_name_share_a_cluster(peer_run, keys):
    _, by_key, _, _ = peer_run
    assert len({by_key[k] for k in keys}) == 1


@pytest.mark.parametrize("one, other", [
    ("crm:2", "crm:3"),    # two john smiths, other city, email, phone and birth date
    ("crm:5", "crm:6"),    # james and emma brown, one household
    ("crm:1", "crm:34"),   # anna schmidt and anna schneider, both in berlin
    ("crm:4", "crm:32"),   # marie dubois and marie dupont, both in paris
    ("crm:20", "crm:29"),  # nothing in common
])
def test_different_people_stay_apart(peer_run, one, other):
    _, by_key, _, _ = peer_run
    assert by_key[one] != by_key[other]


def test_peer_json_has_counts_and_phase_seconds(peer_run):
    done, by_key, _, base = peer_run
    report = json.loads((base / "out" / "peer.json").read_text())
    assert json.loads(done.stdout.strip().splitlines()[-1]) == report
    assert report["splink"] == "5.0.0" and report["duckdb"]
    assert (report["threshold"], report["seed"], report["threads"]) == (0.9, 42, 2)
    assert report["records"] == len(RECORDS)
    assert report["candidate_pairs"] >= report["pairs_above_threshold"] > 0
    assert report["clusters"] == len(set(by_key.values()))
    assert 3 <= report["largest_cluster"] <= 4
    assert set(report["seconds"]) >= {"load", "train", "predict", "cluster", "write", "total"}
    assert all(s >= 0 for s in report["seconds"].values())


def test_a_second_run_gives_the_same_clusters(peer_run):
    _, by_key, _, base = peer_run
    again = _run_peer(base / "records.parquet", base / "again")
    assert again.returncode == 0, again.stderr
    rows = pq.read_table(base / "again" / "clusters.parquet").to_pylist()
    assert {r["record_key"]: r["cluster_id"] for r in rows} == by_key


def test_a_missing_column_exits_2_naming_the_file_and_column(tmp_path):
    records = _write_records(tmp_path / "no_email.parquet", drop="email_key")
    done = _run_peer(records, tmp_path / "out")
    assert done.returncode == 2
    assert "email_key" in done.stderr and "no_email.parquet" in done.stderr


def test_a_missing_records_path_exits_2(tmp_path):
    done = _run_peer(tmp_path / "nowhere", tmp_path / "out")
    assert done.returncode == 2
    assert "nowhere" in done.stderr


def test_a_folder_of_spark_part_files_is_read_whole(tmp_path):
    folder = tmp_path / "records"
    folder.mkdir()
    table = pa.Table.from_pylist(RECORDS)
    half = table.num_rows // 2
    pq.write_table(table.slice(0, half), folder / "part-00000-a.snappy.parquet")
    pq.write_table(table.slice(half), folder / "part-00001-a.snappy.parquet")
    (folder / "_SUCCESS").write_text("")
    done = _run_peer(folder, tmp_path / "out")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["records"] == len(RECORDS)


def test_a_repeated_record_key_exits_2(tmp_path):
    records = tmp_path / "twice.parquet"
    pq.write_table(pa.Table.from_pylist(RECORDS + RECORDS[:1]), records)
    done = _run_peer(records, tmp_path / "out")
    assert done.returncode == 2
    assert "record_key is not unique" in done.stderr
