"""Ingest: raw source exports -> ``bronze.<source>`` (+ ``quarantine.<source>``), nothing lost.

Each source is one YAML file (``conf/sources/<name>.yml``, :class:`~cdi_spark.config.SourceConfig`):
format (``csv``, ``json`` = one array per file, ``jsonl``, ``parquet``), a path glob under the
pipeline's ``raw_dir``, CSV dialect and encoding, the primary key and the expected columns.

Tables written (under ``cfg.lakehouse``, registered in the catalog under the layer's name):

``bronze.<source>`` (``<lakehouse>/bronze/<source>``)
    The source's fields as they came: text formats keep every value as the exported text
    (strings; nested JSON objects and arrays as their JSON text), Parquet keeps its types.
    Lineage on every row: ``_source``, ``_source_file`` (file URI), ``_batch_id`` (the
    ingest run id), ``_ingested_at`` (UTC), ``_row_hash`` (sha-256 of the fields' JSON,
    sorted by name, nulls left out, so a column added later does not change old hashes)
    and ``_ingest_date``.
``quarantine.<source>`` (``<lakehouse>/quarantine/<source>``)
    Rejected records: the lineage columns, ``_line`` + ``_position`` (``line`` for CSV and
    JSON Lines, the first line of a multi-line CSV record; ``element`` for JSON arrays;
    ``row`` for Parquet; ``file`` when a whole file is unparsable), ``_reason``
    (undecodable, invalid_json, not_an_object, wrong_column_count, broken_quotes,
    empty_key, wrong_type, exact_duplicate, duplicate_key), ``_field``, ``_detail`` and ``_raw`` (the
    record's text as read; a Parquet row as JSON).
``audit.ingest_manifest`` (``<lakehouse>/audit/ingest_manifest``)
    One row per loaded file: source, file, size, modified_at, batch_id, ingested_at, rows
    read / bronze / quarantined, bronze version.

Layout for hundreds of millions of rows
---------------------------------------
Bronze and quarantine are partitioned by ``_ingest_date`` (the UTC day of the run): each
run appends into one partition, incremental readers (standardize) prune to the days they
need, retention is a partition delete, and a day of a busy source is a few hundred files
of Spark's default size. Nothing is partitioned by a business field (high or skewed
cardinality). Run ``OPTIMIZE ... ZORDER BY (<primary key>)`` per partition on a schedule if
point lookups by key matter. The manifest is small and unpartitioned.

Guarantees
----------
- Idempotent and incremental: a file in the manifest with the same size and modification
  time is skipped, so a rerun adds nothing and a new file adds only its rows. A file whose
  size or time changed after loading is reported (``IngestResult.changed_files``, a log
  warning) and not loaded again. A crash after the bronze commit and before the manifest
  commit would reload the run's files next time (bronze rows carry ``_batch_id`` to undo).
- Row conservation per file: records read = bronze rows + quarantine rows. The checks only
  add columns to the reader's records (no filter, join or union), so each record is one
  checked row; one aggregation over the cached checked rows counts read / bronze /
  quarantined per file, and each Delta commit's ``numOutputRows`` must equal its count, or
  :class:`~cdi_spark.errors.StageError` fails the run.
- Schema drift: a new column is added to bronze by Delta schema evolution and reported in
  ``IngestResult.new_columns``; a file without a required (or key) column fails its source
  with the file and column named; a value that no longer parses as its declared type is
  quarantined (``wrong_type``) row by row.
- A source with no matching files, a zero-byte or unreadable file, or a file without a
  required column gets ``IngestResult.error``; the other sources still load.
- Parallel and few passes: files are read by Spark in byte-range splits; the driver handles
  only file lists, per-split line counts and headers, per-file counts and key sets. Per
  source: one pass numbers the lines (text formats) and learns each file's header; one pass
  parses and checks the records into a cache while grouping their keys (duplicates); then
  one count over the cache, and quarantine and bronze written from it, one Delta commit
  each; one manifest commit ends the run.
  Two sources load at once (``PARALLEL_SOURCES``), so one's driver work and one-task stages
  overlap the other's Spark jobs; per-source seconds then overlap too. Line
  numbering and multi-line CSV records are explained in :mod:`cdi_spark.ingest.lines` and
  :mod:`cdi_spark.ingest.text`.

Example:
    >>> results = ingest(spark, cfg, run_id="20240501T120000Z-1a2b3c")
    >>> spark.sql("SELECT count(*) FROM bronze.crm_contacts").show()
"""

from cdi_spark.ingest.stage import IngestResult, ingest, ingest_source

__all__ = ["IngestResult", "ingest", "ingest_source"]
