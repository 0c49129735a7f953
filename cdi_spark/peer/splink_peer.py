"""The benchmark's peer: Splink 5 on DuckDB deduplicates our standardized person records.

What it does
    Reads Parquet with one row per standardized person record (``record_key``, ``given_name_key``,
    ``family_name_key``, ``email_key``, ``phone_e164``, ``birth_date``, ``street``, ``street_number``,
    ``postcode``, ``city``; ``country`` may be there and is not compared), trains an unsupervised Splink
    model on the records themselves (no labels, as in Splink's tutorials), scores the candidate pairs,
    clusters them at ``--threshold`` and writes ``<out>/clusters.parquet`` (``record_key``, ``cluster_id``:
    every input record once, singletons included) and ``<out>/peer.json`` (versions, settings, counts and
    the wall seconds of each phase: ``load``, ``blocking`` (the blocking analysis), ``train``, ``predict``,
    ``cluster``, ``write`` and ``total``). The JSON is also the last line on stdout; progress goes to stderr.

How it is run
    With the peer venv's python (``scripts/setup_peer.sh``): Splink 5 needs pyarrow>=18 and PySpark 3.5
    pins pyarrow<17, so the peer cannot live in the main venv::

        .venv-peer/bin/python cdi_spark/peer/splink_peer.py --records <file.parquet | folder> --out <folder> \\
            [--threshold 0.9] [--seed 42] [--threads 2] [--max-pairs-u 2000000]

    A folder means every ``*.parquet`` directly in it (Spark's part files). Exit 2 on bad input: no such
    path, no Parquet file, a missing column (the message names the file and the column), no records, or a
    null or repeated ``record_key``.

Settings, and the Splink documentation each follows
    * Comparisons from ``splink.comparison_library`` as in the tutorial "Specifying and estimating a
      linkage model" (04) and the DuckDB example "deduplicate_50k_synthetic": ``NameComparison`` on the
      given and on the family name (exact match with term-frequency adjustment, Jaro-Winkler 0.92/0.88/0.7),
      ``EmailComparison``, ``DateOfBirthComparison`` (``input_is_string=False``: a date column) and
      ``ExactMatch`` on the phone with term-frequency adjustment (a shared switchboard number is weaker
      evidence than a personal one).
    * The address is one ``CustomComparison`` of levels from ``splink.comparison_level_library`` (topic
      guide "Defining and customising how record comparisons are made"): same street, number and postcode;
      same street, number and city; same postcode; same city; else. The docs' home page ("What data does
      Splink work best with?") asks for columns that are not highly correlated, "a 'city' field is almost
      perfectly correlated with 'postcode'": Fellegi-Sunter multiplies separate comparisons as if they
      were independent, so separate postcode, city and street comparisons would count one shared address
      three times (on a 19k-record synthetic set with households: precision 0.83 against 0.99 with the
      one comparison, recall 0.98 either way). ``country`` is not compared for the same reason (postcode,
      city and phone prefix predict it) and is not required.
    * Blocking rules for prediction built with ``block_on``, several tight rules so that a true match is
      lost only when it fails all of them (tutorial "Choosing blocking rules", 03): same email, same phone,
      same given and family name with the same birth date or postcode, and the 50k example's one-name-part
      rules (family or given name with the birth date, family name with the postcode) for a typo in the
      other part. ``count_comparisons_from_blocking_rules`` logs each rule's marginal pairs first and warns
      above the 20 million comparisons that tutorial suggests for DuckDB on one machine.
    * Training as tutorial 04 shows: ``estimate_probability_two_random_records_match`` from deterministic
      rules with the tutorial's recall guess of 0.7; ``estimate_u_using_random_sampling(max_pairs=...,
      seed=...)`` (2e6 by default, the tutorial's value); then expectation maximisation over three
      blocking rules (given+family name, birth date, email) so that every comparison is estimated in at
      least one pass, ``estimate_without_term_frequencies=True`` as in the 50k example. A pass that fails
      is logged and skipped (its block has no pairs, say no birth dates; or Splink 5 raises ValueError
      when EM drives an m probability to 0.0, as happens on small or lopsided blocks); Splink warns about,
      and falls back to its defaults for, any level left without an estimate.
    * ``linker.inference.predict()`` keeps every scored pair (so that the JSON can count candidates), and
      ``linker.clustering.cluster_pairwise_predictions_at_threshold(df, threshold)`` links the pairs at or
      above the threshold into connected components.
    * Reproducible: the u sampling is seeded, the other steps read every row; DuckDB runs ``--threads``.

Imports
    Only the standard library, splink, duckdb and pyarrow. Never pyspark (the peer venv has none) nor any
    other cdi_spark module: this file runs as a script in an environment without cdi-spark installed.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator, block_on
from splink.blocking_analysis import count_comparisons_from_blocking_rules
from splink.internals.exceptions import SplinkException  # Splink 5 exports no public exceptions module

log = logging.getLogger("cdi_spark.peer.splink")

STRING_COLUMNS = ("given_name_key", "family_name_key", "email_key", "phone_e164", "street", "street_number",
                  "postcode", "city")
REQUIRED_COLUMNS = ("record_key", *STRING_COLUMNS, "birth_date")
RECORDS_TABLE = "peer_records"
# Tutorial 03: "no more than about 20 million comparisons" for DuckDB on one machine.
COMPARISONS_WARN = 20_000_000
# Tutorial 04's guess of the share of true matches its deterministic rules find.
DETERMINISTIC_RECALL = 0.7


class PeerInputError(ValueError):
    """The records cannot be read as the peer needs them (exit 2)."""


def _address_comparison() -> cl.CustomComparison:
    """Street, house number, postcode and city as one comparison: they are not independent given a match."""
    return cl.CustomComparison(
        comparison_levels=[
            cll.And(cll.NullLevel("postcode"), cll.NullLevel("city")),
            cll.And(cll.ExactMatchLevel("street"), cll.ExactMatchLevel("street_number"),
                    cll.ExactMatchLevel("postcode")).configure(label_for_charts="Same street, number and postcode"),
            cll.And(cll.ExactMatchLevel("street"), cll.ExactMatchLevel("street_number"),
                    cll.ExactMatchLevel("city")).configure(label_for_charts="Same street, number and city"),
            cll.ExactMatchLevel("postcode").configure(label_for_charts="Same postcode"),
            cll.ExactMatchLevel("city").configure(label_for_charts="Same city"),
            cll.ElseLevel(),
        ],
        output_column_name="address",
        comparison_description="Address: street and number within the postcode or city, else postcode, else city",
    )


def comparisons() -> list:
    """The model's comparisons, one per independent piece of evidence."""
    return [
        cl.NameComparison("given_name_key"),
        cl.NameComparison("family_name_key"),
        cl.EmailComparison("email_key"),
        cl.DateOfBirthComparison("birth_date", input_is_string=False),
        cl.ExactMatch("phone_e164").configure(term_frequency_adjustments=True),
        _address_comparison(),
    ]


def prediction_rules() -> list:
    """Blocking rules for prediction: a pair is scored when it meets any of them."""
    return [
        block_on("email_key"),
        block_on("phone_e164"),
        block_on("given_name_key", "family_name_key", "birth_date"),
        block_on("given_name_key", "family_name_key", "postcode"),
        block_on("family_name_key", "birth_date"),
        block_on("given_name_key", "birth_date"),
        block_on("family_name_key", "postcode"),
    ]


def settings() -> SettingsCreator:
    """The model: dedupe one table of records keyed by ``record_key``."""
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="record_key",
        comparisons=comparisons(),
        blocking_rules_to_generate_predictions=prediction_rules(),
        # Nothing reads the compared values or the partial weights back: a slimmer predictions table.
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=False,
    )


class Phases:
    """Wall seconds of each named phase, in order."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._start = time.perf_counter()

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(time.perf_counter() - start, 3)
            log.info("%s: %.2f s", name, self.seconds[name])

    def total(self) -> dict[str, float]:
        return {**self.seconds, "total": round(time.perf_counter() - self._start, 3)}


def parquet_files(path: Path) -> list[Path]:
    """The Parquet file, or every ``*.parquet`` directly in the folder; each must have every column."""
    if not path.exists():
        raise PeerInputError(f"--records {path}: no such file or folder")
    files = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
    if not files:
        raise PeerInputError(f"--records {path}: the folder has no *.parquet file")
    for file in files:
        try:
            present = set(pq.read_schema(file).names)
        except OSError as exc:  # pyarrow's ArrowInvalid is an OSError subclass too
            raise PeerInputError(f"{file}: not a readable Parquet file ({exc})") from exc
        missing = [c for c in REQUIRED_COLUMNS if c not in present]
        if missing:
            raise PeerInputError(f"{file}: missing column(s) {', '.join(missing)}; the peer needs "
                                 f"{', '.join(REQUIRED_COLUMNS)}")
    return files


def load_records(con: duckdb.DuckDBPyConnection, files: list[Path]) -> int:
    """Copy the records into a DuckDB table (strings trimmed, blanks as nulls); the record count."""
    cleaned = ", ".join(f"nullif(trim(cast({c} as varchar)), '') as {c}" for c in STRING_COLUMNS)
    file_list = ", ".join(_sql_string(str(f)) for f in files)
    con.sql(f"""
        create or replace table {RECORDS_TABLE} as
        select cast(record_key as varchar) as record_key, {cleaned},
               try_cast(birth_date as date) as birth_date
        from read_parquet([{file_list}], union_by_name = true)""")
    rows, keys, nulls = _one(
        con, f"select count(*), count(distinct record_key), count(*) - count(record_key) from {RECORDS_TABLE}")
    if rows < 2:
        raise PeerInputError(f"--records: {rows} record(s); deduplication needs at least 2")
    if nulls:
        raise PeerInputError(f"--records: {nulls} record(s) with a null record_key")
    if keys != rows:
        raise PeerInputError(f"--records: record_key is not unique ({rows - keys} repeated)")
    return rows


def analyse_blocking(records) -> int:
    """Log the pairs each prediction rule adds (Splink's blocking analysis); the total."""
    counts = count_comparisons_from_blocking_rules(
        records, blocking_rules=prediction_rules(), link_type="dedupe_only",
        unique_id_column_name="record_key", record_sample_proportion=1.0)
    for row in counts:
        log.info("blocking rule %s: +%s pairs", row["blocking_rule"], f"{row['marginal_comparison_count']:,}")
    total = int(counts[-1]["cumulative_comparison_count"])
    if total > COMPARISONS_WARN:
        log.warning("the prediction rules make %s pairs, above the %s Splink suggests for DuckDB",
                    f"{total:,}", f"{COMPARISONS_WARN:,}")
    return total


def train(linker: Linker, max_pairs_u: int, seed: int) -> list[str]:
    """Estimate lambda, u and m without labels (tutorial 04); the EM passes that ran."""
    try:
        linker.training.estimate_probability_two_random_records_match(
            [block_on("given_name_key", "family_name_key", "birth_date"),
             block_on("email_key", "given_name_key"),
             block_on("phone_e164", "given_name_key")],
            recall=DETERMINISTIC_RECALL)
    except ValueError as exc:  # more deterministic matches than the recall allows: tiny, dense data
        log.warning("kept Splink's prior probability two random records match: %s", exc)
    linker.training.estimate_u_using_random_sampling(max_pairs=max_pairs_u, seed=seed)
    passes = []
    for columns in (("given_name_key", "family_name_key"), ("birth_date",), ("email_key",)):
        try:
            linker.training.estimate_parameters_using_expectation_maximisation(
                block_on(*columns), estimate_without_term_frequencies=True)
            passes.append("+".join(columns))
        except (SplinkException, ValueError, duckdb.Error) as exc:  # no pairs; an m driven to 0.0
            log.warning("EM blocked on %s skipped: %s", "+".join(columns), exc)
    return passes


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _one(con: duckdb.DuckDBPyConnection, sql: str) -> tuple:
    """The single row of a query (``con.sql`` and ``fetchall``: DuckDB 2 keeps an unfetched result busy)."""
    return con.sql(sql).fetchall()[0]


def run(args: argparse.Namespace) -> dict:
    """Load, train, predict, cluster and write; the figures for peer.json."""
    phases = Phases()
    with phases.phase("load"):
        files = parquet_files(Path(args.records))
        con = duckdb.connect(config={"threads": args.threads})
        records = load_records(con, files)
        db_api = DuckDBAPI(connection=con)
        records_sdf = db_api.register(RECORDS_TABLE)
        linker = Linker(records_sdf, settings(), log_level=None)
        log.info("load: %s records from %d file(s)", f"{records:,}", len(files))
    with phases.phase("blocking"):
        analyse_blocking(records_sdf)
    with phases.phase("train"):
        em_passes = train(linker, int(args.max_pairs_u), args.seed)
    with phases.phase("predict"):
        predictions = linker.inference.predict()
        scored, above = _one(con, f"select count(*), count(*) filter (match_probability >= {args.threshold}) "
                                  f"from {predictions.physical_name}")
        log.info("predict: %s candidate pairs, %s at or above %s", f"{scored:,}", f"{above:,}", args.threshold)
    with phases.phase("cluster"):
        clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
            predictions, threshold_match_probability=args.threshold)
        n_clusters, largest = _one(
            con, f"select count(*), coalesce(max(n), 0) from (select count(*) as n from {clusters.physical_name} "
                 "group by cluster_id)")
    with phases.phase("write"):
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        con.sql(f"copy (select record_key, cluster_id from {clusters.physical_name} order by record_key) "
                f"to {_sql_string(str(out / 'clusters.parquet'))} (format parquet)")
    return {
        "peer": "splink", "splink": version("splink"), "duckdb": duckdb.__version__,
        "threshold": args.threshold, "seed": args.seed, "threads": args.threads,
        "max_pairs_u": int(args.max_pairs_u), "em_passes": em_passes,
        "records": records, "candidate_pairs": scored, "pairs_above_threshold": above,
        "clusters": int(n_clusters), "largest_cluster": int(largest), "seconds": phases.total(),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="splink_peer.py",
        description="Deduplicate standardized person records with Splink 5 on DuckDB (the benchmark's peer). "
                    "Writes <out>/clusters.parquet and <out>/peer.json; prints the JSON as the last line.")
    parser.add_argument("--records", required=True, help="a Parquet file, or a folder of *.parquet part files")
    parser.add_argument("--out", required=True, help="output folder (created if needed)")
    parser.add_argument("--threshold", type=float, default=0.9,
                        help="match probability at or above which two records link (default 0.9)")
    parser.add_argument("--seed", type=int, default=42, help="seed of the u sampling (default 42)")
    parser.add_argument("--threads", type=int, default=2, help="DuckDB threads (default 2)")
    parser.add_argument("--max-pairs-u", type=float, default=2_000_000,
                        help="random pairs sampled to estimate u (default 2e6)")
    parser.add_argument("--verbose", action="store_true", help="also log Splink's own INFO messages")
    args = parser.parse_args(argv)
    if not 0.0 < args.threshold < 1.0:
        parser.error(f"--threshold must be between 0 and 1, got {args.threshold}")
    if args.threads < 1 or args.max_pairs_u < 1:
        parser.error("--threads and --max-pairs-u must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-5s %(name)s: %(message)s",
                        datefmt="%H:%M:%S", stream=sys.stderr, force=True)
    logging.getLogger("splink").setLevel(logging.INFO if args.verbose else logging.WARNING)
    try:
        result = run(args)
    except PeerInputError as exc:
        log.error("%s", exc)
        return 2
    text = json.dumps(result)
    (Path(args.out) / "peer.json").write_text(json.dumps(result, indent=2) + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
