"""Benchmark the pipeline: ``python jobs/benchmark.py --people 100000 --repeat 3``.

Generates demo data of each size once (``bench/data/people-<N>-seed-<S>``), runs the
configured stages on a fresh lakehouse, prints seconds, rows in / out, rows/s, Spark jobs
and peak memory per stage (medians of ``--repeat`` runs) and appends one JSON line per size
to ``bench/results.jsonl``. What each figure measures is in ``cdi_spark.bench``; ``--help``
lists the flags.
"""

import sys
from pathlib import Path

if __name__ == "__main__":
    try:
        import cdi_spark  # noqa: F401  (installed, or shipped with --py-files)
    except ImportError:  # running from a source checkout
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from cdi_spark.bench import main

    sys.exit(main())
