"""Run only the resolve stage: ``python jobs/resolve.py --config conf/pipeline.yml``.

``silver.customer_records`` -> ``silver.match_edges``, ``silver.entity_clusters`` and
``audit.cut_edges``, with the newest match model (one is trained first when there is none);
a spark-submit entry point as well. Same flags as ``cdi-spark run``.
"""

from _entry import run

if __name__ == "__main__":
    run("run", "--stages", "resolve")
