"""Activation: the golden customers sent to downstream systems, and erasure of a person (GDPR).

* :mod:`cdi_spark.activate.export`: change-only (and full) exports per target of
  ``conf/activation.yml``, with a watermark per target in ``audit.export_watermarks``;
* :mod:`cdi_spark.activate.changes`: the net change per customer from a gold table's
  Change Data Feed;
* :mod:`cdi_spark.activate.commands`: ``cdi-spark export``;
* :mod:`cdi_spark.activate.erase` (with ``erase_find`` and ``erase_tables``): ``cdi-spark
  erase``, a person removed from every layer;
* :mod:`cdi_spark.activate.pii`: ``cdi-spark analyst-table``, the profiles with PII hashed
  or masked.
"""
