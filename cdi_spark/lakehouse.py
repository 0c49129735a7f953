"""What is in a lakehouse folder: its Delta tables, their row counts and versions.

Used by the demo's closing summary and by anyone who wants a quick inventory. A table is
any folder ``<lakehouse>/<layer>/<table>`` holding a ``_delta_log``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import SparkSession

from cdi_spark import delta_io


@dataclass(frozen=True)
class TableInfo:
    """One Delta table of the lakehouse."""

    layer: str
    name: str
    path: str
    rows: int
    version: int


def table_paths(lakehouse: str | Path) -> list[Path]:
    """Folders ``<lakehouse>/<layer>/<table>`` that are Delta tables, sorted."""
    root = Path(lakehouse)
    return sorted(p.parent for p in root.glob("*/*/_delta_log") if p.is_dir())


def summarize(spark: SparkSession, lakehouse: str | Path) -> list[TableInfo]:
    """Row count and current version of every Delta table under ``lakehouse``.

    Counts come from each table's current snapshot (one small Spark job per table); the
    version from its history. Meant for summaries, not for hot paths.
    """
    infos = []
    for path in table_paths(lakehouse):
        where = str(path)
        rows, version = delta_io.read(spark, where).count(), delta_io.current_version(spark, where)
        infos.append(TableInfo(path.parent.name, path.name, where, rows, version))
    return infos


def format_summary(infos: list[TableInfo]) -> str:
    """A fixed-width table of :func:`summarize`'s result for the console."""
    if not infos:
        return "(no Delta tables)"
    width = max(len(f"{i.layer}.{i.name}") for i in infos)
    lines = [f"{'table':<{width}}  {'rows':>12}  {'version':>7}  path"]
    lines += [f"{i.layer + '.' + i.name:<{width}}  {i.rows:>12,}  {i.version:>7}  {i.path}" for i in infos]
    return "\n".join(lines)
