"""Writing the exports: one folder per source, deterministic file count, names and order.

Rows are hash-partitioned on the primary key into a file count derived from the people
count, sorted by key inside each file, and the files are renamed ``part-00000.<ext>``, so a
seed gives the same files on any cluster. File operations go through Hadoop's FileSystem,
so the same code writes to a local disk, HDFS or an object store.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

ROWS_PER_FILE = 250_000
HIDDEN = ("_person_id", "_key")
_PART = re.compile(r"^part-(\d{5})-.*$")


def file_count(expected_rows: float) -> int:
    """Files for a source expected to hold ``expected_rows`` rows (at least one)."""
    return max(1, math.ceil(expected_rows / ROWS_PER_FILE))


def visible(df: DataFrame) -> list[str]:
    """The export's own columns (hidden helper columns start with ``_``)."""
    return [c for c in df.columns if not c.startswith("_")]


def _fs(spark: SparkSession, path: str):
    jvm = spark.sparkContext._jvm
    jpath = jvm.org.apache.hadoop.fs.Path(path)
    return jpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), jpath


def write_bytes(spark: SparkSession, path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` exactly as given (planted bad bytes included)."""
    fs, jpath = _fs(spark, path)
    out = fs.create(jpath, True)
    try:
        out.write(bytearray(data))
    finally:
        out.close()


def _rename_parts(spark: SparkSession, folder: str, ext: str) -> None:
    fs, jfolder = _fs(spark, folder)
    jvm = spark.sparkContext._jvm
    for status in fs.listStatus(jfolder):
        name = status.getPath().getName()
        match = _PART.match(name)
        if match:
            target = jvm.org.apache.hadoop.fs.Path(jfolder, f"part-{match.group(1)}.{ext}")
            fs.rename(status.getPath(), target)
        elif name.startswith("_SUCCESS"):
            fs.delete(status.getPath(), False)


def _json_array(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    rows: list[str] = []
    for batch in batches:
        rows.extend(batch["json"].tolist())
    if rows:
        yield pd.DataFrame({"value": ["[\n" + ",\n".join(rows) + "\n]"]})


def write_source(df: DataFrame, folder: str, fmt: str, files: int) -> None:
    """Write one export (without its hidden columns) into ``folder``, replacing it.

    Args:
        df: the export with hidden ``_key`` and ``_person_id`` columns.
        folder: target folder (``<raw>/<batch>/<source>``).
        fmt: ``csv``, ``jsonl``, ``json_array`` or ``parquet``.
        files: number of files to write.
    """
    spark = df.sparkSession
    laid = df.repartition(files, "_key").sortWithinPartitions("_key")
    out = laid.select(*visible(df))
    if fmt == "csv":
        out.write.mode("overwrite").option("header", True).csv(folder)
        ext = "csv"
    elif fmt == "jsonl":
        out.write.mode("overwrite").json(folder)
        ext = "json"
    elif fmt == "json_array":
        rows = laid.select(F.to_json(F.struct(*visible(df))).alias("json"))
        rows.mapInPandas(_json_array, "value string").write.mode("overwrite").text(folder)
        ext = "json"
    else:
        out.write.mode("overwrite").parquet(folder)
        ext = "parquet"
    _rename_parts(spark, folder, ext)


def move_single_file(spark: SparkSession, tmp_folder: str, target: str) -> None:
    """Move the one part file Spark wrote into ``tmp_folder`` to ``target``; drop the folder."""
    fs, jfolder = _fs(spark, tmp_folder)
    jtarget = spark.sparkContext._jvm.org.apache.hadoop.fs.Path(target)
    fs.mkdirs(jtarget.getParent())
    fs.delete(jtarget, False)   # a rerun replaces the file (rename never overwrites)
    for status in fs.listStatus(jfolder):
        if status.getPath().getName().startswith("part-"):
            fs.rename(status.getPath(), jtarget)
    fs.delete(jfolder, True)
