"""Run only the standardize stage: ``python jobs/standardize.py --config conf/pipeline.yml``.

Bronze tables -> ``silver.customer_records`` and ``audit.data_quality``; a spark-submit entry
point as well. Same flags as ``cdi-spark run``.
"""

from _entry import run

if __name__ == "__main__":
    run("run", "--stages", "standardize")
