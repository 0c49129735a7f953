"""Activation: the golden customers sent to downstream systems.

* :mod:`cdi_spark.activate.export`: change-only (and full) exports per target of
  ``conf/activation.yml``, with a watermark per target in ``audit.export_watermarks``;
* :mod:`cdi_spark.activate.changes`: the net change per customer from a gold table's
  Change Data Feed;
* :mod:`cdi_spark.activate.commands`: ``cdi-spark export``.
"""
