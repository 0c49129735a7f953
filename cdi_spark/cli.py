"""The ``cdi-spark`` console command.

Subcommands:

* ``cdi-spark run --config conf/pipeline.yml``: run the pipeline's stages;
* ``cdi-spark generate --out data/demo --people 3000``: write the demo source exports;
* ``cdi-spark demo``: generate demo data, run the pipeline, print the tables;
* ``cdi-spark evaluate``: score clusters against a ground truth;
* identity resolution: ``resolve-file``, ``init-matching``, ``import-labels``, ``label``,
  ``explain``, ``benchmark-data`` (see :mod:`cdi_spark.resolve.commands`).

Configuration is loaded and validated before a SparkSession exists; a
:class:`~cdi_spark.errors.CdiError` ends the command with its message and exit code, no
traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from cdi_spark import __version__
from cdi_spark.config import PipelineConfig, SparkProfile, load_config
from cdi_spark.errors import CdiError
from cdi_spark.logs import setup_logging, timed

log = logging.getLogger("cdi_spark")

DEFAULT_CONFIG = "conf/pipeline.yml"


def _config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="pipeline YAML (default: %(default)s)")
    parser.add_argument("--lakehouse", help="override the config's lakehouse folder")
    parser.add_argument("--raw-dir", help="override the config's raw exports folder")
    parser.add_argument("--profile", help="override the config's Spark profile (local, cluster)")
    parser.add_argument("--stages", help="comma-separated stages to run instead of the config's")


def _load(args: argparse.Namespace) -> PipelineConfig:
    from cdi_spark.pipeline import check_stages

    stages = args.stages.split(",") if getattr(args, "stages", None) else None
    cfg = load_config(
        args.config, lakehouse=args.lakehouse, raw_dir=args.raw_dir, profile=args.profile, stages=stages
    )
    check_stages(cfg)
    return cfg


def _session(profile: SparkProfile, app_name: str):
    from cdi_spark.session import build_session  # pyspark loads only once arguments are good

    return build_session(profile, app_name=app_name)


def cmd_run(args: argparse.Namespace) -> int:
    """Run the configured stages; non-zero exit when a stage failed or left problems."""
    from cdi_spark.pipeline import raise_for_problems, run_pipeline

    cfg = _load(args)
    spark = _session(cfg.spark, "cdi-spark run")
    with timed() as clock:
        reports = run_pipeline(spark, cfg, full=args.full)
    log.info("run finished in %.1f s", clock["seconds"])
    raise_for_problems(reports)
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    """Write demo exports and their ground truth."""
    from cdi_spark.generate import generate

    spark = _session(_generator_profile(args), "cdi-spark generate")
    with timed() as clock:
        summary = generate(spark, args.out, people=args.people, seed=args.seed, batch=args.batch,
                           day2_share=args.day2_share)
    for source, rows in sorted(summary.records.items()):
        log.info("generated %s: %s rows (%s malformed)", source, f"{rows:,}", summary.malformed.get(source, 0))
    log.info("generated %s people in %.1f s into %s", f"{args.people:,}", clock["seconds"], args.out)
    return 0


def _generator_profile(args: argparse.Namespace) -> SparkProfile:
    cfg = load_config(args.config) if Path(args.config).is_file() else PipelineConfig()
    return cfg.spark


def cmd_demo(args: argparse.Namespace) -> int:
    """Generate demo data (unless already there for this size and seed), run the pipeline,
    and print where the tables are."""
    from cdi_spark.generate import generate
    from cdi_spark.lakehouse import format_summary, summarize
    from cdi_spark.pipeline import raise_for_problems

    data_dir = Path(args.data_dir)
    args.raw_dir = args.raw_dir or str(data_dir / "raw")
    cfg = _load(args)
    spark = _session(cfg.spark, "cdi-spark demo")
    wanted = {"people": args.people, "seed": args.seed, "batch": "day1"}
    marker = data_dir / "_demo.json"
    if not marker.is_file() or json.loads(marker.read_text()) != wanted:
        for folder in (data_dir, Path(cfg.lakehouse)):
            if folder.exists():
                log.info("demo: removing %s (made for another size or seed)", folder)
                shutil.rmtree(folder)
        with timed() as clock:
            generate(spark, data_dir, people=args.people, seed=args.seed, batch="day1")
        marker.write_text(json.dumps(wanted))
        log.info("demo: generated %s people in %.1f s", f"{args.people:,}", clock["seconds"])
    else:
        log.info("demo: reusing the data in %s (%s people, seed %s)", data_dir, args.people, args.seed)
    from cdi_spark.pipeline import new_run_id
    from cdi_spark.report import report_paths

    run_id = new_run_id()
    with timed() as clock:
        reports = _run_demo_pipeline(spark, cfg, data_dir, run_id)
    print(f"\ncdi-spark demo: {args.people:,} people, pipeline ran in {clock['seconds']:.1f} s")
    for report in reports:
        counts = ", ".join(f"{k}={v:,}" for k, v in report.counts.items())
        print(f"  {report.stage:<12} {report.seconds:7.1f} s  {counts}")
    print(f"\nDelta tables under {Path(cfg.lakehouse).resolve()}:\n")
    print(format_summary(summarize(spark, cfg.lakehouse)))
    print(f"\nRun report: {report_paths(cfg.lakehouse, run_id).html}")
    raise_for_problems(reports)
    return 0


def _run_demo_pipeline(spark, cfg: PipelineConfig, data_dir: Path, run_id: str) -> list:
    """Run the stages; before the first matching stage, if nobody has labelled pairs yet,
    label some from the generator's ground truth (as a data steward would) so that a real
    model is trained without a person."""
    from cdi_spark import delta_io
    from cdi_spark.pipeline import run_pipeline
    from cdi_spark.resolve.labels import read_generated_truth
    from cdi_spark.resolve.stage import label_from_truth, labels_path

    first = next((i for i, s in enumerate(cfg.stages) if s in ("train_matcher", "resolve")), None)
    if first is None or delta_io.exists(spark, labels_path(cfg)):
        return run_pipeline(spark, cfg, run_id=run_id)
    reports = run_pipeline(spark, cfg.with_stages(cfg.stages[:first]), run_id=run_id, report=False)
    with timed() as clock:
        written = label_from_truth(spark, cfg, read_generated_truth(spark, str(data_dir / "truth")), run_id=run_id)
    log.info("demo: %d candidate pairs labelled from the ground truth in %.1f s", written, clock["seconds"])
    return reports + run_pipeline(spark, cfg.with_stages(cfg.stages[first:]), run_id=run_id)


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Compare clusters with ground truth: pairwise precision, recall and F1, B-cubed,
    adjusted Rand, and the worst false merges and splits."""
    from cdi_spark.evaluate import evaluate_files, format_evaluation

    profile = load_config(args.config).spark if Path(args.config).is_file() else SparkProfile()
    spark = _session(profile, "cdi-spark evaluate")
    result = evaluate_files(spark, args.truth, args.clusters, worst=args.worst, allow_missing=args.allow_missing)
    print(format_evaluation(result))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``cdi-spark`` and its subcommands."""
    parser = argparse.ArgumentParser(
        prog="cdi-spark",
        description="Customer Data Integration on Spark: ingest source exports, standardize, "
        "resolve identities and publish golden Customer 360 profiles as Delta tables.",
    )
    parser.add_argument("--version", action="version", version=f"cdi-spark {__version__}")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (default: %(default)s)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = sub.add_parser("run", help="run the pipeline's stages", description=cmd_run.__doc__)
    _config_args(run)
    run.add_argument("--full", action="store_true",
                     help="match every record and rebuild every profile instead of only what changed")
    run.set_defaults(func=cmd_run)

    gen = sub.add_parser("generate", help="write demo source exports", description=cmd_generate.__doc__)
    gen.add_argument("--out", default="data/demo", help="output folder (default: %(default)s)")
    gen.add_argument("--people", type=int, default=3000, help="people to generate (default: %(default)s)")
    gen.add_argument("--seed", type=int, default=42, help="random seed (default: %(default)s)")
    gen.add_argument("--batch", default="day1", help="batch to write: day1, day2 (default: %(default)s)")
    gen.add_argument("--day2-share", type=float,
                     help="day2: share of the people new or changed on day 2 (default 0.15; 0.01 is a quiet day)")
    gen.add_argument("--config", default=DEFAULT_CONFIG, help="pipeline YAML for Spark settings")
    gen.set_defaults(func=cmd_generate)

    demo = sub.add_parser("demo", help="generate demo data and run the whole pipeline", description=cmd_demo.__doc__)
    _config_args(demo)
    demo.add_argument("--people", type=int, default=3000, help="people to generate (default: %(default)s)")
    demo.add_argument("--seed", type=int, default=42, help="random seed (default: %(default)s)")
    demo.add_argument("--data-dir", default="data/demo", help="demo data folder (default: %(default)s)")
    demo.set_defaults(func=cmd_demo)

    ev = sub.add_parser("evaluate", help="score clusters against ground truth", description=cmd_evaluate.__doc__)
    ev.add_argument("--truth", required=True, help="CSV with header record_id,entity_id")
    ev.add_argument("--clusters", required=True, help="CSV with header record_id,cluster_id (extra columns allowed)")
    ev.add_argument("--worst", type=int, default=5, help="worst merges and splits to list (default: %(default)s)")
    ev.add_argument("--allow-missing", action="store_true",
                    help="evaluate the records present in both files instead of failing on a mismatch")
    ev.add_argument("--config", default=DEFAULT_CONFIG, help="pipeline YAML for Spark settings")
    ev.set_defaults(func=cmd_evaluate)

    from cdi_spark.bench import add_arguments as bench_arguments
    from cdi_spark.bench import cmd_bench

    bench = sub.add_parser("bench", help="benchmark the pipeline's stages on generated data",
                           description=cmd_bench.__doc__)
    bench_arguments(bench)
    bench.set_defaults(func=cmd_bench)

    from cdi_spark.activate.commands import add_arguments as export_arguments
    from cdi_spark.activate.commands import cmd_export

    export = sub.add_parser("export", help="export changed customers to downstream systems",
                            description=cmd_export.__doc__)
    export_arguments(export)
    export.set_defaults(func=cmd_export)

    from cdi_spark.activate import erase, pii

    eraser = sub.add_parser("erase", help="erase a person (GDPR) from every layer", description=erase.cmd_erase.__doc__)
    erase.add_arguments(eraser)
    eraser.set_defaults(func=erase.cmd_erase)
    analyst = sub.add_parser("analyst-table", help="write the profiles with PII hashed or masked, for analysts",
                             description=pii.cmd_analyst_table.__doc__)
    pii.add_arguments(analyst)
    analyst.set_defaults(func=pii.cmd_analyst_table)

    from cdi_spark.resolve.commands import add_commands

    add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cdi-spark`` command; returns the process exit code."""
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level)
    try:
        return args.func(args)
    except CdiError as exc:
        print(f"cdi-spark: error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
