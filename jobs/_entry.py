"""Shared door of the spark-submit entry points: make ``cdi_spark`` importable, call the CLI."""

import sys
from pathlib import Path


def run(*command: str) -> None:
    """Run ``cdi-spark <command> <this process's arguments>`` and exit with its code."""
    try:
        import cdi_spark  # noqa: F401  (installed, or shipped with --py-files)
    except ImportError:  # running from a source checkout
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from cdi_spark.cli import main

    sys.exit(main([*command, *sys.argv[1:]]))
