"""Finding a source's raw files and deciding which of them to load (the manifest).

Files are listed through Hadoop's FileSystem, so a glob works the same on a local disk,
HDFS or an object store. Names starting with ``.`` or ``_`` (checksums, ``_SUCCESS``) are
not exports and are ignored, as Spark's own readers do.

``audit.ingest_manifest`` holds one row per file loaded: its path, size and modification
time, the run that loaded it and its row counts. A listed file is *new* (not in the
manifest: load it), *unchanged* (same size and modification time: skip it) or *changed*
(same path, different size or time: report it and do not load it again; the operator
decides whether it is a correction to reload or an accident).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from cdi_spark import delta_io

MANIFEST_SCHEMA = T.StructType(
    [
        T.StructField("source", T.StringType(), False),
        T.StructField("file", T.StringType(), False),
        T.StructField("size", T.LongType(), False),
        T.StructField("modified_at", T.TimestampType(), False),
        T.StructField("batch_id", T.StringType(), False),
        T.StructField("ingested_at", T.TimestampType(), False),
        T.StructField("rows_read", T.LongType(), False),
        T.StructField("rows_bronze", T.LongType(), False),
        T.StructField("rows_quarantined", T.LongType(), False),
        T.StructField("bronze_version", T.LongType(), True),
    ]
)


@dataclass(frozen=True)
class RawFile:
    """One listed export file (metadata only)."""

    path: str  # fully qualified URI, as Spark's ``_metadata.file_path`` spells it
    size: int
    modified_ms: int

    @property
    def modified_at(self) -> datetime:
        return datetime.fromtimestamp(self.modified_ms / 1000, tz=UTC)

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class FilePlan:
    """Which listed files to load, skip, or report as changed since they were loaded."""

    new: tuple[RawFile, ...]
    unchanged: tuple[RawFile, ...]
    changed: tuple[RawFile, ...]


def _fs(spark: SparkSession, path: str):
    jvm = spark.sparkContext._jvm
    jpath = jvm.org.apache.hadoop.fs.Path(path)
    return jpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), jpath


def list_files(spark: SparkSession, raw_dir: str, pattern: str) -> list[RawFile]:
    """Files matching ``<raw_dir>/<pattern>``, sorted by path (hidden files left out).

    A folder that matches stands for the files directly inside it.
    """
    fs, jpath = _fs(spark, f"{str(raw_dir).rstrip('/')}/{pattern.lstrip('/')}")
    statuses = fs.globStatus(jpath) or []
    found = []
    for status in statuses:
        children = fs.listStatus(status.getPath()) if status.isDirectory() else [status]
        for child in children:
            name = child.getPath().getName()
            if child.isFile() and not name.startswith((".", "_")):
                uri = fs.makeQualified(child.getPath()).toUri().toString()
                found.append(RawFile(uri, int(child.getLen()), int(child.getModificationTime())))
    return sorted(set(found), key=lambda f: f.path)


def probe(spark: SparkSession, file: RawFile) -> str | None:
    """Why ``file`` cannot be loaded (zero bytes, unreadable), or None when it can be opened.

    Opens the file and reads its first bytes: a metadata check on the driver, not a read
    of the data.
    """
    if file.size == 0:
        return f"file {file.path} is empty (0 bytes); nothing to load"
    fs, jpath = _fs(spark, file.path)
    try:
        stream = fs.open(jpath)
        try:
            stream.read()
        finally:
            stream.close()
    except Exception as exc:  # py4j wraps the Java IOException (permission denied, ...)
        text = str(exc).strip().splitlines()
        reason = next((line for line in text if "Exception" in line), text[0] if text else "unknown error")
        return f"file {file.path} cannot be read: {reason.strip()[:300]}"
    return None


def loaded_files(spark: SparkSession, manifest_path: str) -> dict[str, dict[str, tuple[int, int]]]:
    """``source -> path -> (size, modified ms)`` of every file in the manifest (small)."""
    if not delta_io.exists(spark, manifest_path):
        return {}
    rows = (
        delta_io.read(spark, manifest_path)
        .select("source", "file", "size", (F.unix_millis("modified_at")).alias("ms"))
        .collect()  # the manifest: metadata, one row per loaded file
    )
    out: dict[str, dict[str, tuple[int, int]]] = {}
    for r in rows:
        out.setdefault(r["source"], {})[r["file"]] = (int(r["size"]), int(r["ms"]))
    return out


def plan(files: list[RawFile], loaded: dict[str, tuple[int, int]]) -> FilePlan:
    """Split listed files into new, unchanged and changed ones against the manifest."""
    new, unchanged, changed = [], [], []
    for file in files:
        seen = loaded.get(file.path)
        if seen is None:
            new.append(file)
        elif seen == (file.size, file.modified_ms):
            unchanged.append(file)
        else:
            changed.append(file)
    return FilePlan(tuple(new), tuple(unchanged), tuple(changed))


@dataclass(frozen=True)
class Loaded:
    """The files of one source a run loaded, their counts and the bronze version (metadata)."""

    source: str
    files: tuple[RawFile, ...]
    counts: dict[str, tuple[int, int, int]]  # path -> (read, bronze, quarantined)
    bronze_version: int | None


def manifest_rows(spark: SparkSession, loaded: list[Loaded], *, run_id: str, ingested_at: datetime) -> DataFrame:
    """Manifest rows for the files just loaded, one per file."""
    rows = [
        (s.source, f.path, f.size, f.modified_at, run_id, ingested_at, *s.counts.get(f.path, (0, 0, 0)),
         s.bronze_version)
        for s in loaded
        for f in s.files
    ]  # fmt: skip
    return spark.createDataFrame(rows, MANIFEST_SCHEMA)
