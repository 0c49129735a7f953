"""One small demo data set (day 1 and day 2) shared by every generator test."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from generate_demo import PEOPLE, SEED

from cdi_spark.generate import GenerateSummary, generate


@dataclass(frozen=True)
class Demo:
    """Both batches of one output folder."""

    day1: GenerateSummary
    day2: GenerateSummary


@pytest.fixture(scope="session")
def demo_batches(spark, tmp_path_factory) -> Demo:
    out = tmp_path_factory.mktemp("demo")
    day1 = generate(spark, out, people=PEOPLE, seed=SEED)
    day2 = generate(spark, out, people=PEOPLE, seed=SEED, batch="day2")
    return Demo(day1, day2)


@pytest.fixture(scope="session")
def demo(demo_batches) -> GenerateSummary:
    """Day 1's summary (the batch most tests look at)."""
    return demo_batches.day1
