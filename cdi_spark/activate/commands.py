"""``cdi-spark export``: send downstream systems the customers that changed since their last export.

Kept apart from :mod:`cdi_spark.activate.export` so that building the command line does not
load pyspark; the configuration (``pipeline.yml`` and the activation file it names) is
validated before a SparkSession exists.
"""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)

DEFAULT_CONFIG = "conf/pipeline.yml"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of the ``export`` command (shared with the ``cdi-spark`` CLI)."""
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="pipeline YAML (default: %(default)s); its "
                        "`activation:` key names the targets file")
    parser.add_argument("--lakehouse", help="override the config's lakehouse folder")
    parser.add_argument("--profile", help="override the config's Spark profile (local, cluster)")
    parser.add_argument("--target", action="append", metavar="NAME",
                        help="export this target only; repeat for several (default: every target)")
    parser.add_argument("--full", action="store_true",
                        help="send every live customer (change 'upsert', no deletes) instead of the changes since "
                        "the last export, and restart the watermark from the current version: for a new or "
                        "rebuilt downstream system, or when the change data no longer reaches back")
    parser.add_argument("--run-id", help="id recorded with the watermarks (default: a new one)")


def cmd_export(args: argparse.Namespace) -> int:
    """Write, for each target of the activation file, the customers that changed since its last
    export (inserts, updates, deletes) as CSV, JSON Lines or Parquet, and move its watermark."""
    from cdi_spark.config import load_activation, load_config
    from cdi_spark.pipeline import new_run_id
    from cdi_spark.session import build_session

    cfg = load_config(args.config, lakehouse=args.lakehouse, profile=args.profile)
    activation = load_activation(cfg)
    activation.select(args.target)  # an unknown name stops here, before Spark starts
    spark = build_session(cfg.spark, app_name="cdi-spark export")

    from cdi_spark.activate.export import export

    results = export(spark, cfg, activation, run_id=args.run_id or new_run_id(), targets=args.target,
                     full=args.full)
    for r in results:
        rows = ", ".join(f"{k}={v:,}" for k, v in sorted(r.rows.items())) or "nothing to send"
        print(f"{r.target:<12} {r.table} up to version {r.last_version} ({r.mode}): {rows}"
              + (f" -> {r.folder}" if r.folder else ""))
    return 0
