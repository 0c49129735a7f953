"""Logging set-up for jobs and the console command: one line per event, no personal data."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

FORMAT = "%(asctime)s %(levelname)-5s %(name)s: %(message)s"


def setup_logging(level: str | int = "INFO") -> None:
    """Send cdi_spark's log lines to stderr; keep py4j and Spark's Python side quiet."""
    logging.basicConfig(level=level, format=FORMAT, datefmt="%H:%M:%S", stream=sys.stderr, force=True)
    for noisy in ("py4j", "pyspark"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@contextmanager
def timed() -> Iterator[dict[str, float]]:
    """Measure the wall time of a block: ``with timed() as t: ...; t["seconds"]``."""
    result = {"seconds": 0.0}
    start = time.perf_counter()
    try:
        yield result
    finally:
        result["seconds"] = round(time.perf_counter() - start, 3)
