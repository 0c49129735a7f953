"""``cdi-spark resolve-file`` and ``init-matching`` end to end on a small generated people file
with unhelpful headers: roles inferred, model trained (bootstrapped, then from labels),
clusters written and scored against the truth."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

import pytest
import yaml
from synthetic_people import FIELDS, build_people

from cdi_spark.cli import main
from cdi_spark.config import MatchingConfig, parse
from cdi_spark.evaluate import evaluate_files

pytestmark = [pytest.mark.zingg, pytest.mark.slow, pytest.mark.e2e]

HEADERS = {
    "given_name": "First Name ",
    "family_name": "SURNAME",
    "birth_date": "D.O.B.",
    "street": "addr_line_1",
    "city": "Town",
    "postcode": "Zip",
    "email": "col7",
}


@pytest.fixture(scope="module")
def people_files(tmp_path_factory) -> tuple[Path, Path, Path, Path]:
    """Two CSV inputs (the records split), the truth, and a steward's labels from the truth."""
    folder = tmp_path_factory.mktemp("resolve_file")
    rows = build_people()
    header = ["Rec ID", *(HEADERS[f] for f in FIELDS)]
    half = len(rows) // 2
    inputs = (folder / "crm.csv", folder / "shop.csv")
    for path, part in zip(inputs, (rows[:half], rows[half:]), strict=True):
        with path.open("w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(header)
            writer.writerows([r[0], *r[2:]] for r in part)
    truth = folder / "truth.csv"
    with truth.open("w", newline="") as out:
        csv.writer(out).writerows([("record_id", "entity_id"), *((r[0], r[1]) for r in rows)])
    # 60 matching pairs and 60 pairs of different people, as a steward who knows the hard cases
    # would label them: relatives at one address first, then strangers sharing a surname.
    by_entity: dict[str, list[tuple]] = {}
    for r in rows:
        by_entity.setdefault(r[1], []).append(r)
    matches = [(a[0], b[0], "yes") for g in by_entity.values() for a, b in itertools.combinations(g, 2)][:60]
    by_family: dict[str, list[tuple]] = {}
    for r in sorted(rows):
        by_family.setdefault(r[3].lower(), []).append(r)
    different = [(a, b) for g in by_family.values() for a, b in itertools.combinations(g, 2) if a[1] != b[1]]
    relatives = [(a[0], b[0], "no") for a, b in different if a[5] and a[5] == b[5]][:40]
    strangers = [(a[0], b[0], "no") for a, b in different if a[5] != b[5]][: 60 - len(relatives)]
    strangers = relatives + strangers
    labels = folder / "labels.csv"
    with labels.open("w", newline="") as out:
        csv.writer(out).writerows([("left_id", "right_id", "is_match"), *matches, *strangers])
    return *inputs, truth, labels


def _resolve(spark, people_files, output: Path, *extra: str):
    crm, shop, truth, _ = people_files
    args = [
        "resolve-file",
        "--input",
        str(crm),
        "--input",
        str(shop),
        "--id-column",
        "Rec ID",
        "--output",
        str(output),
        *extra,
    ]
    assert main(args) == 0
    return evaluate_files(spark, str(truth), str(output))


def test_without_labels_it_bootstraps_and_finds_the_people(spark, people_files, tmp_path, capsys):
    output = tmp_path / "clusters.csv"
    result = _resolve(spark, people_files, output)
    shown = capsys.readouterr().out
    assert "birth_date" in shown and "bootstrapped" in shown
    with output.open() as f:
        lines = list(csv.reader(f))
    assert lines[0][:2] == ["record_id", "cluster_id"]
    assert len(lines) - 1 == len(build_people())
    assert result.precision >= 0.97 and result.recall >= 0.9, result


def test_with_a_stewards_labels(spark, people_files, tmp_path, capsys):
    result = _resolve(spark, people_files, tmp_path / "clusters.csv", "--labels", str(people_files[3]))
    assert "labelled pairs" in capsys.readouterr().out
    assert result.precision >= 0.97 and result.recall >= 0.9, result


def test_init_matching_prints_a_config_that_parses(spark, people_files, capsys):
    assert main(["init-matching", str(people_files[0]), "--id-column", "Rec ID"]) == 0
    text = capsys.readouterr().out
    config = parse(MatchingConfig, yaml.safe_load(text), file="printed")
    assert {f.name for f in config.fields} >= {"given_name_key", "family_name_key", "birth_date", "email_key"}


def test_ids_repeated_across_inputs_are_a_clear_error(people_files, tmp_path, capsys):
    crm = people_files[0]
    code = main(
        [
            "resolve-file",
            "--input",
            str(crm),
            "--input",
            str(crm),
            "--id-column",
            "Rec ID",
            "--output",
            str(tmp_path / "out.csv"),
        ]
    )
    assert code != 0
    err = capsys.readouterr().err
    assert "id column 'Rec ID'" in err and "used by more than one row" in err and "crm.csv" in err
    assert not (tmp_path / "out.csv").exists()


def test_a_malformed_labels_file_stops_before_training(people_files, tmp_path, capsys):
    bad = tmp_path / "labels.csv"
    bad.write_text("left_id,right_id,is_match\nr0001,r0002,perhaps\n")
    crm, shop, _, _ = people_files
    code = main(
        [
            "resolve-file",
            "--input",
            str(crm),
            "--input",
            str(shop),
            "--id-column",
            "Rec ID",
            "--labels",
            str(bad),
            "--output",
            str(tmp_path / "out.csv"),
        ]
    )
    assert code != 0
    err = capsys.readouterr().err
    assert "labels.csv" in err and "line 2" in err and "is_match" in err
    assert not (tmp_path / "out.csv").exists()
