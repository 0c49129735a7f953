"""Run the cdi-spark pipeline: ``python jobs/run_pipeline.py --config conf/pipeline.yml``.

Also a spark-submit entry point (see the README for the jars and --py-files):

    spark-submit --jars ... jobs/run_pipeline.py --config conf/pipeline.yml --profile cluster

Same flags as ``cdi-spark run`` (``--help`` lists them).
"""

from _entry import run

if __name__ == "__main__":
    run("run")
