"""Names of the lakehouse's layers, tables and shared columns, and where tables live.

Every Delta table is a folder ``<lakehouse>/<layer>/<table>`` and is registered in the Spark
catalog as ``<layer>.<table>`` (see :func:`cdi_spark.delta_io.register_table`). Stages refer
to tables and lineage columns through these constants, never through string literals.
"""

from __future__ import annotations

# --------------------------------------------------------------------------------------------
# Layers (each is a folder under the lakehouse and a database in the catalog)
# --------------------------------------------------------------------------------------------

BRONZE = "bronze"
QUARANTINE = "quarantine"
SILVER = "silver"
GOLD = "gold"
AUDIT = "audit"
LAYERS = (BRONZE, QUARANTINE, SILVER, GOLD, AUDIT)

# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------

INGEST_MANIFEST = "ingest_manifest"  # audit: one row per raw file loaded
RUNS = "runs"  # audit: one row per pipeline run
DATA_QUALITY = "data_quality"  # audit: field quality per source and run
ID_EVENTS = "id_events"  # audit: create / merge / split / retire of customer ids
GOLDEN_RUNS = "golden_runs"  # audit: one row per completed golden run: versions read and written
EXPORT_WATERMARKS = "export_watermarks"  # audit: one row per export to a downstream target: the versions sent
CUSTOMER_RECORDS = "customer_records"  # silver
MATCH_EDGES = "match_edges"  # silver
MATCH_LABELS = "match_labels"  # silver: labelled record pairs (is_match) for training
MATCH_MODELS = "match_models"  # audit: one row per trained match model version
CUT_EDGES = "cut_edges"  # audit: match edges the cluster size guard cut
ENTITY_CLUSTERS = "entity_clusters"  # silver
CUSTOMER_XREF = "customer_xref"  # gold
CUSTOMER_IDS = "customer_ids"  # gold: every customer id ever issued, status and survivor
CUSTOMER_PROFILE = "customer_profile"  # gold
CUSTOMER_360 = "customer_360"  # gold
CUSTOMER_PROFILE_ANALYST = "customer_profile_analyst"  # gold: the profiles with PII hashed or masked (analysts)
ERASURES = "erasures"  # audit: one row per GDPR erasure: salted request hash, tables and rows touched; no PII
ERASURE_TOMBSTONES = "erasure_tombstones"  # audit: erased customer ids and source ids, for the exports; no PII

# --------------------------------------------------------------------------------------------
# Bronze lineage columns (every bronze and quarantine row carries them)
# --------------------------------------------------------------------------------------------

SOURCE = "_source"  # the source (bronze table) name
SOURCE_FILE = "_source_file"  # full URI of the raw file the row came from
BATCH_ID = "_batch_id"  # the ingest run that loaded the row
INGESTED_AT = "_ingested_at"  # UTC timestamp of that run
ROW_HASH = "_row_hash"  # sha-256 of the row's source fields (see cdi_spark.ingest)
INGEST_DATE = "_ingest_date"  # date of _ingested_at; the partition column
LINEAGE = (SOURCE, SOURCE_FILE, BATCH_ID, INGESTED_AT, ROW_HASH, INGEST_DATE)

# --------------------------------------------------------------------------------------------
# Quarantine columns (besides the lineage columns, minus the row hash)
# --------------------------------------------------------------------------------------------

Q_LINE = "_line"  # 1-based line (CSV, JSON Lines), element (JSON array) or row (Parquet)
Q_POSITION = "_position"  # what _line counts: "line", "element" or "row"
Q_REASON = "_reason"  # machine-readable kind: invalid_json, wrong_type, duplicate_key, ...
Q_FIELD = "_field"  # the field at fault, when one is
Q_DETAIL = "_detail"  # one sentence for a person: what is wrong and where
Q_RAW = "_raw"  # the record as it came (text), or its JSON for Parquet rows
QUARANTINE_COLUMNS = (Q_LINE, Q_POSITION, Q_REASON, Q_FIELD, Q_DETAIL, Q_RAW)

# Prefix of temporary views made by the library, so they never collide with a user's.
TEMP_VIEW_PREFIX = "cdi_tmp_"


def table_path(lakehouse: str, layer: str, name: str) -> str:
    """The folder of table ``name`` in ``layer``: ``<lakehouse>/<layer>/<name>``.

    Example:
        >>> table_path("lakehouse", BRONZE, "crm_contacts")
        'lakehouse/bronze/crm_contacts'
    """
    return f"{str(lakehouse).rstrip('/')}/{layer}/{name}"


def qualified_name(layer: str, name: str) -> str:
    """The catalog name of a table: ``<layer>.<name>``."""
    return f"{layer}.{name}"
