"""The identity-resolution subcommands of ``cdi-spark``.

* ``resolve-file``: deduplicate and link CSV files of people (no lakehouse needed);
* ``init-matching``: print the matching.yml inferred for a CSV of people, for editing;
* ``import-labels``: load a steward's ``left_id,right_id,is_match`` CSV into ``silver.match_labels``;
* ``label``: label candidate pairs on the console, a pair at a time;
* ``explain``: why two records are (or are not) in one cluster, or how a cluster holds together;
* ``benchmark-data``: fetch and prepare a public benchmark (FEBRL) for ``resolve-file`` and ``evaluate``.

Each ``cmd_*`` takes the parsed arguments and returns the exit code; :func:`add_commands`
registers them on the main parser (see :mod:`cdi_spark.cli`).
"""

from __future__ import annotations

import argparse
import getpass
import logging
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)


def _pipeline(args: argparse.Namespace, app_name: str):
    from cdi_spark.cli import _load, _session

    cfg = _load(args)
    return cfg, _session(cfg.spark, app_name)


def _file_session(args: argparse.Namespace, app_name: str):
    from cdi_spark.cli import _generator_profile, _session

    return _session(_generator_profile(args), app_name)


def cmd_resolve_file(args: argparse.Namespace) -> int:
    """Read CSV files of people, infer what each column holds, standardize, train a match
    model (on --labels, or bootstrapped from sure pairs), match, cluster, and write
    record_id,cluster_id,input as one CSV."""
    from cdi_spark.resolve.resolve_file import resolve_file

    spark = _file_session(args, "cdi-spark resolve-file")
    resolve_file(
        spark,
        args.input,
        id_column=args.id_column,
        output=args.output,
        labels_csv=args.labels,
        matching_path=args.matching,
        work_dir=args.work_dir,
        keep_work=args.keep_work,
    )
    return 0


def cmd_init_matching(args: argparse.Namespace) -> int:
    """Print the matching.yml inferred from the columns of CSV files of people."""
    from cdi_spark.resolve import roles

    spark = _file_session(args, "cdi-spark init-matching")
    people = roles.read_people_csv(spark, args.input, args.id_column)
    print(roles.render_matching_yaml(roles.infer_roles(people, args.id_column)), end="")
    return 0


def cmd_import_labels(args: argparse.Namespace) -> int:
    """Check a CSV of labelled pairs (left_id,right_id,is_match) against the silver records
    and merge it into silver.match_labels; nothing is written when any row is wrong."""
    from cdi_spark.config import load_matching
    from cdi_spark.pipeline import new_run_id
    from cdi_spark.resolve.labels import import_labels_csv
    from cdi_spark.resolve.stage import labels_path, silver_records

    cfg, spark = _pipeline(args, "cdi-spark import-labels")
    known = silver_records(spark, cfg, load_matching(cfg)).select("record_key")
    written = import_labels_csv(spark, args.file, labels_path(cfg), run_id=new_run_id(), known_keys=known)
    print(f"{written:,} labelled pairs from {args.file} merged into silver.match_labels")
    return 0


def cmd_label(args: argparse.Namespace) -> int:
    """Show candidate pairs one at a time, fields side by side, and record the answers in
    silver.match_labels (y = same person, n = different, u = unsure, q = stop)."""
    from cdi_spark.config import load_matching
    from cdi_spark.pipeline import new_run_id
    from cdi_spark.resolve.labels import label_interactively, labels_from_answers, save_labels
    from cdi_spark.resolve.stage import labels_path, pairs_for_labelling

    cfg, spark = _pipeline(args, "cdi-spark label")
    fields = [f.name for f in load_matching(cfg).fields]
    pairs, records = pairs_for_labelling(spark, cfg, args.pairs)
    answers = label_interactively(pairs, records, fields)
    if not answers:
        print("no answers recorded")
        return 0
    written = save_labels(
        spark,
        labels_path(cfg),
        labels_from_answers(spark, answers),
        origin="console",
        labelled_by=getpass.getuser(),
        run_id=new_run_id(),
    )
    print(f"{written} labelled pairs saved to silver.match_labels")
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    """Explain a pair of records (--pair LEFT RIGHT) or a cluster (--cluster ID): the rules
    and model scores that joined them, with the fields side by side."""
    from cdi_spark.resolve.explain import explain_cluster, explain_pair

    cfg, spark = _pipeline(args, "cdi-spark explain")
    if args.pair:
        print(explain_pair(spark, cfg, *args.pair))
    else:
        print(explain_cluster(spark, cfg, args.cluster))
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register the identity-resolution subcommands."""
    from cdi_spark.benchmarks import add_arguments as febrl_arguments
    from cdi_spark.benchmarks import cmd_febrl
    from cdi_spark.cli import DEFAULT_CONFIG, _config_args

    rf = sub.add_parser(
        "resolve-file", help="deduplicate and link CSV files of people", description=cmd_resolve_file.__doc__
    )
    rf.add_argument("--input", action="append", required=True, help="a CSV of people with a header; repeat to link")
    rf.add_argument("--id-column", required=True, help="the column holding record ids (unique across inputs)")
    rf.add_argument("--output", required=True, help="CSV to write: record_id,cluster_id,input")
    rf.add_argument("--labels", help="CSV of labelled pairs: left_id,right_id,is_match")
    rf.add_argument("--matching", help="matching.yml to use instead of the inferred one (see init-matching)")
    rf.add_argument(
        "--work-dir", help=f"folder for the model and checkpoints (default: a new one in {tempfile.gettempdir()})"
    )
    rf.add_argument("--keep-work", action="store_true", help="keep the work folder (the trained model)")
    rf.add_argument("--config", default=DEFAULT_CONFIG, help="pipeline YAML for Spark settings")
    rf.set_defaults(func=cmd_resolve_file)

    im = sub.add_parser(
        "init-matching",
        help="print the matching.yml inferred for CSV files of people",
        description=cmd_init_matching.__doc__,
    )
    im.add_argument("input", nargs="+", help="CSV file(s) of people with a header")
    im.add_argument("--id-column", default="record_id", help="the column holding record ids (default: %(default)s)")
    im.add_argument("--config", default=DEFAULT_CONFIG, help="pipeline YAML for Spark settings")
    im.set_defaults(func=cmd_init_matching)

    il = sub.add_parser(
        "import-labels", help="import a CSV of labelled record pairs", description=cmd_import_labels.__doc__
    )
    il.add_argument("file", type=Path, help="CSV with header left_id,right_id,is_match")
    _config_args(il)
    il.set_defaults(func=cmd_import_labels)

    lb = sub.add_parser("label", help="label candidate pairs on the console", description=cmd_label.__doc__)
    lb.add_argument("--pairs", type=int, default=40, help="pairs to show at most (default: %(default)s)")
    _config_args(lb)
    lb.set_defaults(func=cmd_label)

    ex = sub.add_parser("explain", help="why records were or were not matched", description=cmd_explain.__doc__)
    what = ex.add_mutually_exclusive_group(required=True)
    what.add_argument("--pair", nargs=2, metavar=("LEFT", "RIGHT"), help="two record keys")
    what.add_argument("--cluster", help="a cluster id (silver.entity_clusters.cluster_id)")
    _config_args(ex)
    ex.set_defaults(func=cmd_explain)

    bd = sub.add_parser("benchmark-data", help="prepare a public benchmark (FEBRL) for resolve-file")
    bsub = bd.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    febrl = bsub.add_parser("febrl", help="FEBRL datasets 1-4", description=cmd_febrl.__doc__)
    febrl_arguments(febrl)
    febrl.set_defaults(func=cmd_febrl)
