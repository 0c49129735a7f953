"""Demo data generator: realistic raw exports of six systems plus their ground truth.

See :func:`generate` and ``docs/sources.md`` (the contract of the exports).
"""

from cdi_spark.generate.api import SOURCES, GenerateError, GenerateSummary, generate

__all__ = ["SOURCES", "GenerateError", "GenerateSummary", "generate"]
