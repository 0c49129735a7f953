"""Generate the demo source exports and their ground truth.

    python jobs/generate_data.py --out data/demo --people 3000 --seed 42 --batch day1
    spark-submit jobs/generate_data.py --out data/demo --people 1000000

Writes <out>/raw/<batch>/<source>/part-*.<ext> (the ten exports of docs/sources.md, each
with one planted-bad-rows file) and <out>/truth/ (person_records, malformed.csv).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

try:
    import cdi_spark  # noqa: F401
except ImportError:  # run from a checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cdi_spark.config import SparkProfile
from cdi_spark.errors import CdiError

log = logging.getLogger("generate_data")

LOCAL_PROFILE = SparkProfile(
    master="local[2]",
    conf={
        "spark.driver.memory": "4g",
        "spark.sql.shuffle.partitions": "8",
        "spark.ui.showConsoleProgress": "false",
    },
    block_outbound_http=True,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Write realistic raw exports of six systems (CRM, marketing, support, "
        "billing, shop, product analytics) for the same latent people, with noise, "
        "duplicates, hard negatives and planted bad rows, plus the ground truth.")
    parser.add_argument("--out", default="data/demo",
                        help="output root; raw/<batch> and truth/ are replaced "
                        "(default: %(default)s)")
    parser.add_argument("--people", type=int, default=3000,
                        help="number of latent people (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=42,
                        help="seed; the same seed and people give the same rows "
                        "(default: %(default)s)")
    parser.add_argument("--batch", default="day1", help="batch to write (default: %(default)s)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # pandas UDF workers must run the same interpreter (it has pandas and phonenumbers)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from cdi_spark.generate import generate
    from cdi_spark.session import build_session

    try:
        spark = build_session(LOCAL_PROFILE, app_name="cdi-spark-generate")
        started = time.monotonic()
        summary = generate(spark, args.out, people=args.people, seed=args.seed, batch=args.batch)
    except CdiError as exc:
        log.error("%s", exc)
        return getattr(exc, "exit_code", 1)
    seconds = time.monotonic() - started
    for source, rows in summary.records.items():
        log.info("%-20s %10d rows (%d planted bad)", source, rows, summary.malformed[source])
    log.info("%d people, seed %d, batch %s: %d rows in %.1f s -> %s (truth: %s)",
             summary.people, summary.seed, summary.batch, sum(summary.records.values()),
             seconds, summary.raw_dir, summary.truth_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
