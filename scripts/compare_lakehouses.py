"""Compare two lakehouses built from the same raw files: do they hold the same customers?

``python scripts/compare_lakehouses.py EXPECTED ACTUAL`` (``scripts/local_cluster.sh check``
runs it with a local-mode run's lakehouse and a cluster run's). It reads the Delta tables
with ``deltalake`` (no JVM) and compares what two runs of the same data with the same match
model must agree on:

* ``bronze.<source>`` and ``quarantine.<source>``: rows per source;
* ``silver.customer_records``: the record keys, and each record's columns;
* ``silver.match_edges``: the edges (pair and rule) and their scores (to 1e-6);
* ``silver.entity_clusters``: the clusters as a partition of the record keys, and their ids;
* ``gold.customer_xref``: the customers as a partition of the record keys, and their ids;
* ``gold.customer_profile`` and ``gold.customer_360``: every field of every live customer,
  matched by the customer's set of record keys.

Left out everywhere: what names a run or a moment rather than the data (:data:`RUN_COLUMNS`).
Prints one line per comparison, and for a difference up to five record keys or customer
ids and the columns that differ (never the values: they are personal data). Exit code 0
when everything is equal, 1 when something differs, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import pyarrow as pa
from deltalake import DeltaTable

# Columns that say which run, batch or moment wrote a row, not what the data is: two runs of
# the same data differ there by construction. ``bronze_version`` is the Delta version of
# bronze the record was read from (how many commits ingest made, not the record's content);
# ``_content_hash`` is left out because the columns it hashes are compared one by one.
RUN_COLUMNS = frozenset({
    "run_id", "deleted_run_id", "created_run_id", "retired_run_id", "batch_id", "_batch_id",
    "bronze_version", "_ingested_at", "_ingest_date", "_content_hash",
    "created_at_run", "resolved_at", "published_at", "computed_at",
})
SCORE_TOLERANCE = 1e-6
SHOWN = 5


def read(lakehouse: Path, layer: str, name: str) -> list[dict]:
    """Every row of ``<lakehouse>/<layer>/<name>`` as dicts (deletion vectors honoured)."""
    return _table(lakehouse / layer / name).to_pylist()


def _table(path: Path) -> pa.Table:
    # scan() (DataFusion) honours deletion vectors, which gold tables have; to_pyarrow_* refuse them.
    return pa.table(DeltaTable(str(path)).scan())


def count(lakehouse: Path, layer: str, name: str) -> int:
    return _table(lakehouse / layer / name).num_rows


def normal(value):
    """A value in a form that compares by content: maps and arrays as sorted JSON text."""
    if isinstance(value, float):
        return round(value, 9) if math.isfinite(value) else str(value)
    if isinstance(value, list):
        if value and all(isinstance(v, tuple) and len(v) == 2 for v in value):  # a map
            return json.dumps(sorted([str(k), normal(v)] for k, v in value), default=str)
        return json.dumps([normal(v) for v in value], default=str)
    if isinstance(value, dict):
        return json.dumps({k: normal(v) for k, v in sorted(value.items())}, default=str)
    return value


def content(row: dict, drop: Iterable[str] = ()) -> dict:
    """The row's columns but the run's bookkeeping and ``drop``, normalised."""
    left_out = RUN_COLUMNS | set(drop)
    return {k: normal(v) for k, v in row.items() if k not in left_out}


def digest(values: dict) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()


class Comparison:
    """Collects one line per check and whether everything was equal."""

    def __init__(self) -> None:
        self.failed = 0

    def report(self, what: str, differences: list[str], summary: str) -> None:
        if differences:
            self.failed += 1
            print(f"DIFFERENT  {what}: {len(differences)} difference(s); {summary}")
            for line in differences[:SHOWN]:
                print(f"           - {line}")
        else:
            print(f"equal      {what}: {summary}")


def keyed_diff(expected: dict, actual: dict, label: str) -> list[str]:
    """Differences between two ``key -> {column: value}`` maps: keys and column names only."""
    lines = [f"{label} {k} only in the expected lakehouse" for k in sorted(expected.keys() - actual.keys(), key=str)]
    lines += [f"{label} {k} only in the actual lakehouse" for k in sorted(actual.keys() - expected.keys(), key=str)]
    for key in sorted(expected.keys() & actual.keys(), key=str):
        a, b = expected[key], actual[key]
        if a != b:
            columns = sorted(c for c in a.keys() | b.keys() if a.get(c) != b.get(c))
            lines.append(f"{label} {key}: {', '.join(columns)} differ")
    return lines


def compare_counts(cmp: Comparison, expected: Path, actual: Path, layer: str) -> None:
    names = sorted({p.name for root in (expected, actual) for p in (root / layer).glob("*") if p.is_dir()})
    counts = {n: tuple(count(root, layer, n) if (root / layer / n).is_dir() else None for root in (expected, actual))
              for n in names}
    differ = [f"{layer}.{n}: {a} rows expected, {b} actual" for n, (a, b) in counts.items() if a != b]
    total = sum(a or 0 for a, _ in counts.values())
    cmp.report(f"{layer} rows per source", differ, f"{len(names)} tables, {total} rows")


def compare_records(cmp: Comparison, expected: Path, actual: Path) -> None:
    def by_key(root: Path) -> dict:
        return {r["record_key"]: content(r) for r in read(root, "silver", "customer_records")}

    a, b = by_key(expected), by_key(actual)
    # Compare whole rows through a digest first: a few hundred thousand rows stay cheap.
    if {k: digest(v) for k, v in a.items()} == {k: digest(v) for k, v in b.items()}:
        cmp.report("silver.customer_records", [], f"{len(a)} records, {len(next(iter(a.values()), {}))} columns each")
    else:
        cmp.report("silver.customer_records", keyed_diff(a, b, "record"), f"{len(a)} expected, {len(b)} actual")


def compare_edges(cmp: Comparison, expected: Path, actual: Path) -> None:
    def edges(root: Path) -> dict:
        return {(r["left_key"], r["right_key"], r["rule"]): r["score"] for r in read(root, "silver", "match_edges")}

    a, b = edges(expected), edges(actual)
    differ = [f"edge {k} only in the expected lakehouse" for k in sorted(a.keys() - b.keys())]
    differ += [f"edge {k} only in the actual lakehouse" for k in sorted(b.keys() - a.keys())]
    differ += [f"edge {k}: score {a[k]} expected, {b[k]} actual" for k in sorted(a.keys() & b.keys())
               if not _close(a[k], b[k])]
    cmp.report("silver.match_edges", differ, f"{len(a)} edges (pair, rule, score)")


def _close(x, y) -> bool:
    if x is None or y is None:
        return x is y
    return abs(x - y) <= SCORE_TOLERANCE


def partition(rows: Iterable[dict], group: str) -> dict[str, frozenset]:
    """``group value -> frozenset of record keys``."""
    out: dict[str, set] = {}
    for r in rows:
        out.setdefault(r[group], set()).add(r["record_key"])
    return {k: frozenset(v) for k, v in out.items()}


def compare_partition(cmp: Comparison, what: str, a: dict[str, frozenset], b: dict[str, frozenset]) -> None:
    """The same groups of record keys, and then the same group ids."""
    sets_a, sets_b = set(a.values()), set(b.values())
    differ = [f"group of {len(s)} records with {min(s)} only in the expected lakehouse" for s in sets_a - sets_b]
    differ += [f"group of {len(s)} records with {min(s)} only in the actual lakehouse" for s in sets_b - sets_a]
    multi = sum(1 for s in sets_a if len(s) > 1)
    if not differ:
        ids_a = {v: k for k, v in a.items()}
        differ = [f"the group with {min(s)} is {ids_a[s]} expected, {k} actual" for k, s in b.items() if ids_a[s] != k]
    cmp.report(what, differ, f"{len(a)} groups ({multi} of several records), same record keys and same ids")


def live(rows: Iterable[dict]) -> list[dict]:
    return [r for r in rows if not r.get("is_deleted")]


def compare_customers(cmp: Comparison, expected: Path, actual: Path) -> None:
    xrefs = [live(read(root, "gold", "customer_xref")) for root in (expected, actual)]
    groups = [partition(x, "customer_id") for x in xrefs]
    compare_partition(cmp, "gold.customer_xref", *groups)
    record_cols = [{r["record_key"]: content(r, drop=("customer_id",)) for r in x} for x in xrefs]
    cmp.report("gold.customer_xref columns", keyed_diff(*record_cols, "record"), "source, system, ids, cluster")

    for table in ("customer_profile", "customer_360"):
        # Keyed by the customer's record keys, so that a customer id difference (reported
        # above) does not hide whether the fields agree.
        maps = [_by_records(live(read(root, "gold", table)), group)
                for root, group in zip((expected, actual), groups, strict=True)]
        fields = len(next(iter(maps[0].values()), {}))
        cmp.report(f"gold.{table}", keyed_diff(*maps, "customer with record"),
                   f"{len(maps[0])} live customers, {fields} fields each")


def _by_records(rows: list[dict], groups: dict[str, frozenset]) -> dict:
    return {min(groups.get(r["customer_id"], frozenset({f"<no xref: {r['customer_id']}>"}))):
            content(r, drop=("customer_id",)) for r in rows}


def compare(expected: Path, actual: Path) -> int:
    """Run every comparison, print them, return the exit code (0 equal, 1 different)."""
    print(f"comparing {actual} with {expected}")
    cmp = Comparison()
    checks: list[Callable[[], None]] = [
        lambda: compare_counts(cmp, expected, actual, "bronze"),
        lambda: compare_counts(cmp, expected, actual, "quarantine"),
        lambda: compare_records(cmp, expected, actual),
        lambda: compare_edges(cmp, expected, actual),
        lambda: compare_partition(cmp, "silver.entity_clusters",
                                  *(partition(read(r, "silver", "entity_clusters"), "cluster_id")
                                    for r in (expected, actual))),
        lambda: compare_customers(cmp, expected, actual),
    ]
    for check in checks:
        check()
    print("the lakehouses are equal" if not cmp.failed else f"the lakehouses differ in {cmp.failed} comparison(s)")
    return 1 if cmp.failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("expected", type=Path, help="the reference lakehouse (a local-mode run's)")
    parser.add_argument("actual", type=Path, help="the lakehouse to check (a cluster run's)")
    args = parser.parse_args(argv)
    for root in (args.expected, args.actual):
        if not (root / "gold" / "customer_xref").is_dir():
            parser.error(f"{root} has no gold/customer_xref: not a lakehouse of a finished golden run")
    return compare(args.expected, args.actual)


if __name__ == "__main__":
    sys.exit(main())
