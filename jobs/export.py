"""Export changed customers to downstream systems: ``python jobs/export.py --config conf/pipeline.yml``.

For each target of ``conf/activation.yml`` (CRM, marketing, support, BI): the customers of
``gold.customer_profile`` (or ``gold.customer_360``) that changed since the target's last
export, from the Change Data Feed, as CSV, JSON Lines or Parquet files; watermarks in
``audit.export_watermarks``. ``--target NAME`` (repeatable) exports some targets only;
``--full`` sends every live customer. A spark-submit entry point as well; same flags as
``cdi-spark export``.
"""

from _entry import run

if __name__ == "__main__":
    run("export")
