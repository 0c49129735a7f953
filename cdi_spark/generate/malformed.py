"""Planted bad rows: one extra file per source folder, recorded in ``truth/malformed.csv``.

The file holds a few *good* rows taken out of the main export (so counts still add up) and
bad rows of the kinds the format allows. The good rows are a handful picked by the smallest
key hash and brought to the driver: a bounded sample (``SAMPLE_ROWS``), never the data.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from cdi_spark.generate.writer import move_single_file, visible, write_bytes

SAMPLE_ROWS = 3
MALFORMED_STEM = "part-99999-malformed"


@dataclass(frozen=True)
class Planted:
    """One planted bad row: where it is and what is wrong with it."""

    source: str
    file: str
    line_or_row: int
    kind: str


def split_sample(df: DataFrame, seed: int) -> tuple[DataFrame, DataFrame]:
    """(main rows, the few good rows that go to the malformed file)."""
    pick = df.withColumn("_pick", F.xxhash64(F.lit(seed), F.lit("malformed"), F.col("_key")))
    sample_keys = [r["_key"] for r in pick.orderBy("_pick", "_key").limit(SAMPLE_ROWS)
                   .select("_key").collect()]  # bounded sample, not data
    return df.filter(~F.col("_key").isin(sample_keys)), df.filter(F.col("_key").isin(sample_keys))


def fresh_key(template: str, i: int) -> str:
    """A key no generated record has: numeric keys get a 9e18 range, strings a ``zz`` tag."""
    if template.isdigit():
        return str(9_000_000_000_000_000_000 // 1000 * 1000 + i)[:19]
    head = template.split("_", 1)[0] + "_" if "_" in template else template[:3]
    return f"{head}zz{i:0{max(2, len(template) - len(head) - 2)}d}"


def _csv_line(values: list[object]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(["" if v is None else v for v in values])
    return buf.getvalue()


def plant_csv(spark: SparkSession, source: str, folder: str, sample: DataFrame, key_col: str,
              numeric_col: str, key_base: int = 0) -> list[Planted]:
    """Write ``part-99999-malformed.csv``: good sample rows plus one row of each bad kind.

    Every bad row that has a key gets its own made-up key (``key_base`` + a counter), except
    the two duplicates, which repeat a good row's key: ``exact_duplicate`` is a byte-for-byte
    copy of that row, ``duplicate_key`` another record under the same key.
    """
    cols = visible(sample)
    rows = [[None if r[c] is None else str(r[c]) for c in cols]
            for r in sample.orderBy("_key").collect()]
    ki, ni = cols.index(key_col), cols.index(numeric_col)
    name = f"{MALFORMED_STEM}.csv"
    lines: list[bytes] = [_csv_line(cols).encode()]
    planted: list[Planted] = []
    made_up = iter(range(key_base, key_base + 100))

    def bad(values: list[object] | bytes, kind: str) -> None:
        lines.append(values if isinstance(values, bytes) else _csv_line(values).encode())
        planted.append(Planted(source, name, len(lines), kind))

    def fresh(good: list[object]) -> list[object]:
        return good[:ki] + [fresh_key(good[ki], next(made_up))] + good[ki + 1:]

    for i, good in enumerate(rows):
        lines.append(_csv_line(good).encode())
        if i == 0:
            bad(fresh(good)[:-3], "wrong_column_count")
            bad([*fresh(good), "extra", "fields"], "wrong_column_count")
            bad(good[:ki] + [""] + good[ki + 1:], "empty_key")
        if i == 1:
            wrong = fresh(good)
            wrong[ni] = "not-a-number"
            bad(wrong, "wrong_type")
            bad(_csv_line(fresh(good)).encode().replace(b"a", "\u00e4".encode("latin-1"), 2),
                "invalid_utf8")
            bad(list(good), "exact_duplicate")
            bad(rows[0][:ki] + [good[ki]] + rows[0][ki + 1:], "duplicate_key")
    broken = _csv_line(fresh(rows[-1]))
    bad(broken.replace(",", ',"', 1).encode(), "broken_quotes")  # last: swallows nothing good
    write_bytes(spark, f"{folder}/{name}", b"".join(lines))
    return planted


def _json_rows(sample: DataFrame) -> list[tuple[str, dict]]:
    rows = sample.select("_key", F.to_json(F.struct(*visible(sample))).alias("j")) \
        .orderBy("_key").collect()
    return [(r["_key"], json.loads(r["j"])) for r in rows]


def plant_jsonl(spark: SparkSession, source: str, folder: str, sample: DataFrame, key_col: str,
                numeric_col: str, key_base: int = 0) -> list[Planted]:
    """Write ``part-99999-malformed.json`` (JSON Lines) with good and bad lines."""
    name = f"{MALFORMED_STEM}.json"
    lines: list[bytes] = []
    planted: list[Planted] = []

    def add(data: bytes, kind: str | None) -> None:
        lines.append(data)
        if kind:
            planted.append(Planted(source, name, len(lines), kind))

    for i, (key, row) in enumerate(_json_rows(sample)):
        add(json.dumps(row, ensure_ascii=False).encode(), None)
        fresh = dict(row, **{key_col: _typed_key(row[key_col], fresh_key(str(key), key_base + i))})
        if i == 0:
            add(json.dumps(fresh)[:-9].encode(), "invalid_json")
            add(json.dumps(dict(fresh, **{numeric_col: "yesterday"})).encode(), "wrong_type")
            add(json.dumps(dict(fresh, **{key_col: None})).encode(), "empty_key")
        if i == 1:
            add(json.dumps(dict(row, **{numeric_col: row.get(numeric_col)})).encode(),
                "exact_duplicate")
            data = json.dumps(fresh).encode()
            at = data.find(b'": "') + 4  # inside the first string value: Latin-1 bytes
            add(data[:at] + b"M\xfcller " + data[at:], "invalid_utf8")
    last = json.dumps(dict(row, **{key_col: _typed_key(row[key_col], fresh_key(str(key), key_base + 9))}))
    add(last[: len(last) // 2].encode(), "truncated_line")
    write_bytes(spark, f"{folder}/{name}", b"\n".join(lines))  # no newline after the cut line
    return planted


def _typed_key(original: object, fresh: str) -> object:
    return int(fresh) if isinstance(original, int) else fresh


def plant_json_array(spark: SparkSession, source: str, folder: str, sample: DataFrame,
                     key_col: str, numeric_col: str, key_base: int = 0) -> list[Planted]:
    """Write a JSON array file with bad elements, and a truncated array file."""
    name = f"{MALFORMED_STEM}.json"
    elems: list[dict] = []
    planted: list[Planted] = []
    for i, (key, row) in enumerate(_json_rows(sample)):
        elems.append(row)
        fresh = dict(row, **{key_col: _typed_key(row[key_col], fresh_key(str(key), key_base + i))})
        if i == 0:
            for bad, kind in ((dict(fresh, **{numeric_col: "yesterday"}), "wrong_type"),
                              (dict(fresh, **{key_col: None}), "empty_key"),
                              (dict(row), "exact_duplicate")):
                elems.append(bad)
                planted.append(Planted(source, name, len(elems), kind))
    text = "[\n" + ",\n".join(json.dumps(e, ensure_ascii=False) for e in elems) + "\n]"
    write_bytes(spark, f"{folder}/{name}", text.encode())
    cut = json.dumps(dict(row, **{key_col: _typed_key(row[key_col], fresh_key(str(key), key_base + 9))}))
    trunc = "part-99998-malformed.json"
    write_bytes(spark, f"{folder}/{trunc}", ("[\n" + cut[: len(cut) // 2]).encode())
    planted.append(Planted(source, trunc, 1, "truncated_file"))
    return planted


def plant_parquet(spark: SparkSession, source: str, folder: str, sample: DataFrame,
                  key_col: str, numeric_col: str, key_base: int = 0) -> list[Planted]:
    """Null/empty/duplicate keys among good rows; a second file with a mistyped column."""
    cols = visible(sample)
    good = sample.select(*cols).orderBy(key_col).limit(SAMPLE_ROWS)
    first = good.limit(1)
    bad = [first.withColumn(key_col, F.lit(None).cast("string")),
           first.withColumn(key_col, F.lit("")), first]
    kinds = ["null_key", "empty_key", "exact_duplicate"]
    n_good = SAMPLE_ROWS
    rows = good.withColumn("_ord", F.monotonically_increasing_id())
    for i, df in enumerate(bad):
        rows = rows.unionByName(df.withColumn("_ord", F.lit(10**12 + i)))
    name = f"{MALFORMED_STEM}.parquet"
    tmp = f"{folder}/_tmp_malformed"
    rows.coalesce(1).sortWithinPartitions("_ord").drop("_ord").write.mode("overwrite") \
        .parquet(tmp)
    move_single_file(spark, tmp, f"{folder}/{name}")
    planted = [Planted(source, name, n_good + i + 1, k) for i, k in enumerate(kinds)]
    typed = first.withColumn(key_col, F.lit(fresh_key("00000000-0000", key_base + 1))) \
        .withColumn(numeric_col, F.col(numeric_col).cast(T.StringType()))
    wrong = "part-99998-malformed.parquet"
    typed.coalesce(1).write.mode("overwrite").parquet(tmp)
    move_single_file(spark, tmp, f"{folder}/{wrong}")
    planted.append(Planted(source, wrong, 1, "wrong_type_column"))
    return planted


PLANTERS = {"csv": plant_csv, "jsonl": plant_jsonl, "json_array": plant_json_array,
            "parquet": plant_parquet}
