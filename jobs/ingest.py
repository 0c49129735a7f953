"""Run only the ingest stage: ``python jobs/ingest.py --config conf/pipeline.yml``.

Raw exports under ``raw_dir`` -> ``bronze.<source>``, ``quarantine.<source>`` and
``audit.ingest_manifest`` (see ``cdi_spark.ingest``); one log line per source with files,
rows read = bronze + quarantine, and seconds. A spark-submit entry point as well:

    spark-submit --jars ... jobs/ingest.py --config conf/pipeline.yml --profile cluster

Same flags as ``cdi-spark run`` (``--help`` lists them). Exits non-zero with the error's
message when a source could not be loaded or the counts do not add up.
"""

from _entry import run

if __name__ == "__main__":
    run("run", "--stages", "ingest")
