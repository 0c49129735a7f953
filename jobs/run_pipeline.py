"""Run the cdi-spark pipeline: ``python jobs/run_pipeline.py --config conf/pipeline.yml``.

Also a spark-submit entry point (see the README for the jars and --py-files):

    spark-submit --jars ... jobs/run_pipeline.py --config conf/pipeline.yml --profile cluster
"""

import sys
from pathlib import Path

try:
    import cdi_spark  # noqa: F401  (installed, or shipped with --py-files)
except ImportError:  # running from a source checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cdi_spark.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", *sys.argv[1:]]))
