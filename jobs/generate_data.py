"""Write the demo source exports: ``python jobs/generate_data.py --out data/demo --people 3000``.

Also a spark-submit entry point (generation runs on Spark, so a cluster writes
``--people 10000000`` as easily as this machine writes a million):

    spark-submit --jars ... jobs/generate_data.py --out s3a://bucket/demo --people 10000000

Same flags as ``cdi-spark generate`` (``--help`` lists them).
"""

from _entry import run

if __name__ == "__main__":
    run("generate")
