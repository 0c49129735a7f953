"""Run only the golden stage: ``python jobs/build_golden.py --config conf/pipeline.yml``.

``silver.entity_clusters`` + ``silver.customer_records`` + bronze activity ->
``gold.customer_xref``, ``gold.customer_ids``, ``gold.customer_profile``,
``gold.customer_360`` (one MERGE each) and ``audit.id_events`` / ``audit.golden_runs``;
incremental when an earlier golden run exists (``--full`` rebuilds every profile). A
spark-submit entry point as well; same flags as ``cdi-spark run``.
"""

from _entry import run

if __name__ == "__main__":
    run("run", "--stages", "golden")
