"""Consumers of the gold tables: a Delta reader that is not Spark, and the README's SQL.

Both read a copy of the demo lakehouse after a day-2 run (:func:`lakehouse_copies.day2_copy`),
so the gold tables have two versions, and their current version holds deletion vectors (a
MERGE that updates rows marks the old ones deleted instead of rewriting their files): a reader
that ignored them would return each updated customer twice.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from lakehouse_copies import ROOT, day2_copy
from pyspark.sql import functions as F

from cdi_spark import delta_io
from cdi_spark.golden.publish import CONTENT_HASH, IS_DELETED

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
GOLD_KEYS = {"customer_profile": "customer_id", "customer_360": "customer_id", "customer_ids": "customer_id",
             "customer_xref": "record_key"}
SQL_MARKER = "<!-- tested: tests/e2e/test_consumers.py runs every statement below -->"
PYTHON_MARKER = "<!-- tested: tests/e2e/test_consumers.py runs this example -->"


@pytest.fixture(scope="module")
def day2(spark, demo, tmp_path_factory):
    base, _ = demo
    return day2_copy(spark, base, tmp_path_factory)


def _marked_blocks(marker: str, language: str) -> list[str]:
    """The fenced ``language`` blocks of README.md that follow ``marker`` on the line before."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    pattern = re.escape(marker) + r"\n```" + language + r"\n(.*?)```"
    return re.findall(pattern, text, flags=re.DOTALL)


def _statements(block: str) -> list[str]:
    """SQL statements of a block: split at a ``;`` that ends a line; comment-only parts dropped."""
    parts = re.split(r";\s*$", block, flags=re.MULTILINE)
    code = [p.strip() for p in parts]
    return [p for p in code if any(line.strip() and not line.strip().startswith("--") for line in p.splitlines())]


def _deletion_vectors(table: Path) -> int:
    """How many data files of the table's log carry a deletion vector (added, any version)."""
    count = 0
    for entry in sorted((table / "_delta_log").glob("*.json")):
        for line in entry.read_text().splitlines():
            add = json.loads(line).get("add")
            if add and add.get("deletionVector"):
                count += 1
    return count


def _versions(spark, path: str) -> tuple[int, int]:
    """The first and the current version of a table."""
    versions = [r["version"] for r in delta_io.history(spark, path).select("version").collect()]
    return min(versions), max(versions)


def test_gold_tables_read_with_deltalake_match_spark_now_and_at_an_older_version(spark, day2):
    import pyarrow as pa
    from deltalake import DeltaTable

    lakehouse, _ = day2
    with_dvs = 0
    for name, key in GOLD_KEYS.items():
        path = lakehouse / "gold" / name
        with_dvs += _deletion_vectors(path)
        first, current = _versions(spark, str(path))
        assert current > first, f"{name}: the day-2 run wrote no new version"
        for version in (first, current):
            spark_rows = delta_io.read(spark, str(path), version=version).select(key, CONTENT_HASH, IS_DELETED)
            expected = {tuple(r) for r in spark_rows.collect()}
            scanned = pa.table(DeltaTable(str(path), version=version).scan(columns=[key, CONTENT_HASH, IS_DELETED]))
            rows = [(r[key], r[CONTENT_HASH], r[IS_DELETED]) for r in scanned.to_pylist()]
            assert len(rows) == len(expected), f"{name} version {version}: {len(rows)} rows, Spark {len(expected)}"
            assert set(rows) == expected, f"{name} version {version}"
        assert DeltaTable(str(path)).version() == current
    assert with_dvs > 0, "no deletion vector in the gold tables: the test would not prove they are honoured"


def test_deltalake_pyarrow_readers_refuse_deletion_vectors_as_the_readme_says(day2):
    from deltalake import DeltaTable
    from deltalake.exceptions import DeltaProtocolError

    lakehouse, _ = day2
    table = DeltaTable(str(lakehouse / "gold" / "customer_profile"), version=0)
    # When a deltalake release reads them, this fails: drop the README's warning then.
    with pytest.raises(DeltaProtocolError, match="deletionVectors"):
        table.to_pandas()


def test_readme_deltalake_example_runs_as_written(spark, day2, monkeypatch):
    import pyarrow as pa

    lakehouse, _ = day2
    (example,) = _marked_blocks(PYTHON_MARKER, "python")
    monkeypatch.chdir(lakehouse.parent)  # the README's paths are relative to the project folder
    scope: dict = {}
    exec(compile(example, "README.md", "exec"), scope)  # the README's own example
    profile = str(lakehouse / "gold" / "customer_profile")
    live = delta_io.read(spark, profile).filter(~F.col(IS_DELETED))
    assert pa.table(scope["profiles"]).num_rows == live.count()
    assert pa.table(scope["day_one"]).num_rows == delta_io.read(spark, profile, version=0).count()


def test_readme_sql_runs_as_written_and_answers_each_question(spark, day2):
    lakehouse, _ = day2
    delta_io.register_lakehouse(spark, str(lakehouse))
    # a customer the day-2 run merged another id into: every question has an answer for them
    merge = spark.table("audit.id_events").filter(F.col("event") == "merge").orderBy("customer_id").first()
    assert merge is not None, "the day-2 run merged no customers"
    first, _ = _versions(spark, str(lakehouse / "gold" / "customer_profile"))
    placeholders = {"'<customer id>'": f"'{merge['related_id']}'", "<version>": str(first)}
    statements = [s for block in _marked_blocks(SQL_MARKER, "sql") for s in _statements(block)]
    assert len(statements) >= 6
    for statement in statements:
        for placeholder, value in placeholders.items():
            statement = statement.replace(placeholder, value)
        rows = spark.sql(statement).collect()
        assert rows, f"no rows from the README's\n{statement}"
