"""Write the demo source exports: ``python jobs/generate_data.py --out data/demo --people 3000``.

Also a spark-submit entry point (generation runs on Spark, so a cluster writes
``--people 10000000`` as easily as this machine writes a million):

    spark-submit --jars ... jobs/generate_data.py --out s3a://bucket/demo --people 10000000

Same flags as ``cdi-spark generate`` (``--help`` lists them).
"""

import sys
from pathlib import Path

try:
    import cdi_spark  # noqa: F401  (installed, or shipped with --py-files)
except ImportError:  # running from a source checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cdi_spark.cli import main

if __name__ == "__main__":
    sys.exit(main(["generate", *sys.argv[1:]]))
