"""The demo data set and lakehouse that the end-to-end tests share: built once per test run."""

from __future__ import annotations

from pathlib import Path

import pytest

from cdi_spark.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def demo(spark, tmp_path_factory):
    """``cdi-spark demo`` on 200 people: (base folder, the CLI arguments that built it)."""
    base = tmp_path_factory.mktemp("demo")
    args = [
        "demo",
        "--config",
        str(ROOT / "conf" / "pipeline.yml"),
        "--people",
        "200",
        "--seed",
        "5",
        "--data-dir",
        str(base / "data"),
        "--lakehouse",
        str(base / "lakehouse"),
    ]
    assert main(args) == 0
    return base, args
