"""How each table of the lakehouse is erased: the rows of a person matched and removed, one commit per table.

The steps of :func:`cdi_spark.activate.erase.erase`, in :func:`erase_tables`' order, plus the
pointers of the golden stage (:func:`golden_state`, :func:`rebase_golden`), the VACUUM
(:func:`vacuum_sql`, :func:`vacuum_now`) and the ``audit.erasures`` row. Every write goes
through :mod:`cdi_spark.delta_io` but the purge of deletion vectors (``REORG``), which it has
no wrapper for yet.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import reduce

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from cdi_spark import delta_io, tables
from cdi_spark.activate import pii as pii_mod
from cdi_spark.activate.erase import ErasureError, ErasureResult, Person, TableErasure
from cdi_spark.activate.erase_find import is_in, table_or_none, values_of
from cdi_spark.config import PipelineConfig, SourceConfig, load_matching
from cdi_spark.golden import c360, publish
from cdi_spark.golden.ids import REGISTRY_SCHEMA
from cdi_spark.standardize.emails import clean_email, email_key
from cdi_spark.standardize.mapping import source_field

log = logging.getLogger(__name__)

RETENTION_CHECK = "spark.databricks.delta.retentionDurationCheck.enabled"
_ZINGG_PAIR = "z_cluster"  # the column both rows of a labelled pair share in Zingg's marked data (resolve.zingg)

ERASURES_SCHEMA = T.StructType([
    T.StructField("erasure_id", T.StringType(), False),
    T.StructField("request_kind", T.StringType(), False),  # email | customer_id | source_id
    T.StructField("request_hash", T.StringType(), False),  # sha-256 of salt + "<kind>:<normalised value>"
    T.StructField("started_at", T.TimestampType(), False),
    T.StructField("finished_at", T.TimestampType(), False),
    T.StructField("customers", T.LongType(), False),  # customer ids erased (active and retired)
    T.StructField("records", T.LongType(), False),  # source records erased
    T.StructField("rows", T.MapType(T.StringType(), T.LongType()), False),  # <layer>.<table> -> rows touched
    T.StructField("versions", T.MapType(T.StringType(), T.LongType()), False),  # <layer>.<table> -> version written
    T.StructField("training_rows", T.LongType(), False),  # rows removed from Zingg's training data
    T.StructField("vacuum", T.StringType(), False),  # the SQL that removes the old versions
    T.StructField("vacuumed", T.BooleanType(), False),  # --vacuum ran it
])  # fmt: skip
TOMBSTONES_SCHEMA = T.StructType([
    T.StructField("erasure_id", T.StringType(), False),
    T.StructField("erased_at", T.TimestampType(), False),
    T.StructField("customer_id", T.StringType(), True),  # null: records that had no customer id yet
    T.StructField("status", T.StringType(), True),  # the id's status before: active | retired
    T.StructField("source_ids", T.MapType(T.StringType(), T.ArrayType(T.StringType())), False),  # system -> ids
])  # fmt: skip


# A table's match: target DataFrame -> Column over its columns and the one source row's arrays,
# or None when the table has nothing the person could be found by.
Match = Callable[[DataFrame], Column | None]


def _arrays(spark: SparkSession, values: dict[str, Sequence[str]]) -> DataFrame:
    """One row with one ``array<string>`` column per entry: the MERGE's source."""
    schema = T.StructType([T.StructField(k, T.ArrayType(T.StringType()), False) for k in values])
    return spark.createDataFrame([tuple(sorted(set(v)) for v in values.values())], schema)


def _has(name: str) -> Callable[[Column], Column]:
    """``value IN s.<name>``: membership in one of the source row's arrays."""
    return lambda value: F.coalesce(F.array_contains(F.col(f"s.{name}"), value), F.lit(False))


@contextmanager
def _conf(spark: SparkSession, key: str, value: str) -> Iterator[None]:
    """Set a session conf for the block and put the previous value back."""
    before = spark.conf.get(key, None)
    spark.conf.set(key, value)
    try:
        yield
    finally:
        if before is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, before)


def _purge(spark: SparkSession, path: str, erasure_id: str) -> None:
    """Rewrite the files whose rows a deletion vector hides, so no current file holds the person.

    (``REORG ... APPLY (PURGE)``; delta_io has no wrapper for it yet, this is the only caller.)
    """
    location = delta_io.qualify(spark, path).replace("`", "``")
    with _conf(spark, delta_io.USER_METADATA_CONF, erasure_id):
        delta_io.with_retry(lambda: spark.sql(f"REORG TABLE delta.`{location}` APPLY (PURGE)"), what=f"purge {path}")


def _commit(
    spark: SparkSession,
    path: str,
    name: str,
    source: DataFrame,
    condition: Column,
    clauses: Callable,
    *,
    operation: str,
    erasure_id: str,
) -> TableErasure | None:
    """One MERGE into ``path``, then the purge; None when no row matched (nothing committed)."""
    before = delta_io.current_version(spark, path)
    delta_io.merge(spark, source, path, condition=condition, clauses=clauses, user_metadata=erasure_id,
                   schema_evolution=False)
    commit = delta_io.last_commit(spark, path)
    if commit["version"] == before:
        return None
    metrics = {k: int(v) for k, v in commit["metrics"].items() if str(v).isdigit()}
    rows = metrics.get("numTargetRowsDeleted", 0) + metrics.get("numTargetRowsUpdated", 0)
    # Deletion vectors (tables that have them on) hide rows whose file stays: rewrite those files.
    if metrics.get("numTargetDeletionVectorsAdded", 0) + metrics.get("numTargetDeletionVectorsUpdated", 0):
        _purge(spark, path, erasure_id)
    log.info("erase %s: %s %d row(s) at version %d", name, operation, rows, commit["version"])
    return TableErasure(name, path, operation, rows, commit["version"])


def delete_rows(
    spark: SparkSession, path: str, name: str, arrays: dict[str, Sequence[str]], match: Match, *, erasure_id: str
) -> TableErasure | None:
    """Delete the rows of the table at ``path`` that ``match`` picks, in one MERGE.

    Args:
        spark: the session.
        path: the table folder.
        name: ``<layer>.<table>``, for the log and the result.
        arrays: the values to match, one array column each (``_erase_keys`` ...): the
            MERGE's single source row, so no value appears in the recorded predicate.
        match: builds the condition from the target DataFrame (for its schema).
        erasure_id: the commit's user metadata.

    Returns:
        The commit, or None when the table is absent, has no column to match, nothing is to
        match, or no row matched.
    """
    if not delta_io.exists(spark, path) or not any(arrays.values()):
        return None
    condition = match(delta_io.read(spark, path))
    if condition is None:
        return None
    return _commit(spark, path, name, _arrays(spark, arrays), condition, lambda m: m.whenMatchedDelete(),
                   operation="delete", erasure_id=erasure_id)


def _any(conditions: list[Column]) -> Column | None:
    return reduce(lambda a, b: a | b, conditions) if conditions else None


def _either(*columns: str) -> Match:
    """Rows with any of ``columns`` among the person's record keys (those columns it has)."""
    def match(df: DataFrame) -> Column | None:
        return _any([_has("_erase_keys")(F.col(f"t.`{c}`")) for c in columns if c in df.columns])

    return match


def _by(column: str, array: str) -> Match:
    return lambda df: _has(array)(F.col(f"t.`{column}`"))


def _anonymous_ids(spark: SparkSession, cfg: PipelineConfig, spec: c360.EventSource, person: Person) -> list[str]:
    """Anonymous ids of ``spec``'s events that identify events tie to the person and nobody else."""
    events = table_or_none(spark, cfg, tables.BRONZE, spec.source)
    if events is None or not spec.anonymous_id or not person.record_keys:
        return []
    where = f"{spec.source} (erasure)"
    user = c360.person_key(events, spec.person, where=where)
    kinds = [t.lower() for t in spec.identify_types]
    links = F.lower(source_field(events, spec.event_type, where=where)).isin(kinds) if spec.event_type else F.lit(True)
    ties = events.filter(links).select(user.alias("user"), source_field(events, spec.anonymous_id, where=where)
                                       .alias("anon")).filter(F.col("user").isNotNull() & F.col("anon").isNotNull())
    owners = ties.groupBy("anon").agg(F.collect_set("user").alias("users"))
    mine = F.forall("users", lambda u: u.isin(list(person.record_keys)))
    return sorted(values_of(owners.filter(mine), "anon"))


def _activity(cfg: PipelineConfig) -> list:
    """The activity sources of ``conf/customer_360.yml`` (none without the file)."""
    path = cfg.base_dir / cfg.customer_360
    return [s for sources in c360.load_c360(path).kinds().values() for s in sources] if path.is_file() else []


def _bronze_match(
    spark: SparkSession, cfg: PipelineConfig, source: SourceConfig, person: Person, pii: pii_mod.PiiConfig,
    activity: list,
) -> tuple[dict[str, list[str]], Match]:
    """The arrays and match of one bronze table: records, activity naming the person, their addresses."""
    where = f"{source.name} (erasure)"
    specs = [s for s in activity if s.source == source.name]
    arrays: dict[str, list[str]] = {"_erase_ids": person.source_ids(source.name), "_erase_keys": [],
                                     "_erase_anon": [], "_erase_emails": list(person.emails),
                                     "_erase_email_keys": list(person.email_keys)}
    if specs:
        arrays["_erase_keys"] = list(person.record_keys)
    for spec in specs:
        if isinstance(spec, c360.EventSource):
            arrays["_erase_anon"] += _anonymous_ids(spark, cfg, spec, person)
    email_columns = pii.columns_of(tables.BRONZE, source.name).email

    def match(df: DataFrame) -> Column | None:
        hits = []
        if source.mapping is not None:
            hits.append(_has("_erase_ids")(source_field(df, source.mapping.record_id, where=where)))
        for spec in specs:
            user = c360.person_key(df, spec.person, where=where)
            hits.append(_has("_erase_keys")(user))
            if isinstance(spec, c360.EventSource) and spec.anonymous_id:
                anon = source_field(df, spec.anonymous_id, where=where)
                hits.append(user.isNull() & _has("_erase_anon")(anon))
        for column in (c for c in email_columns if c.split(".", 1)[0] in df.columns):
            email = clean_email(source_field(df, column, where=where))
            hits += [_has("_erase_emails")(email), _has("_erase_email_keys")(email_key(email))]
        return _any(hits)

    return arrays, match


def _quarantine_match(source: SourceConfig, person: Person, activity: list) -> tuple[dict[str, list[str]], Match]:
    """Quarantined rows whose raw text holds an address of the person, or one of their ids in
    this source (or in the person source its activity rows name) as a whole word."""
    named = {source.name} if source.mapping is not None else set()
    named |= {s.person.source for s in activity if s.source == source.name}
    ids = sorted({i for n in named for i in person.source_ids(n)})
    # A Java regex per id: the id, not inside a longer run of letters and digits.
    patterns = [rf"(?<![A-Za-z0-9]){re.escape(i)}(?![A-Za-z0-9])" for i in ids]
    arrays = {"_erase_emails": [e.lower() for e in person.emails], "_erase_patterns": patterns}

    def match(df: DataFrame) -> Column | None:
        if tables.Q_RAW not in df.columns:
            return None
        raw = F.col(f"t.`{tables.Q_RAW}`")
        by_email = F.exists(F.col("s._erase_emails"), lambda e: F.contains(F.lower(raw), e))
        by_id = F.exists(F.col("s._erase_patterns"), lambda p: F.regexp_like(raw, p))
        return F.coalesce(by_email | by_id, F.lit(False))

    return arrays, match


def _strip_events(spark: SparkSession, path: str, person: Person, erasure_id: str) -> TableErasure | None:
    """``audit.id_events``: delete the events of the person's ids; drop their keys from others'."""
    if not delta_io.exists(spark, path) or not (person.customer_ids or person.record_keys):
        return None
    source = _arrays(spark, {"_erase_ids": person.customer_ids, "_erase_keys": person.record_keys})
    theirs = _has("_erase_ids")(F.col("t.customer_id"))
    overlap = F.coalesce(F.arrays_overlap(F.col("t.record_keys"), F.col("s._erase_keys")), F.lit(False))

    def clauses(merge):
        return merge.whenMatchedDelete(condition=theirs).whenMatchedUpdate(
            set={"record_keys": F.array_except(F.col("t.record_keys"), F.col("s._erase_keys"))})

    return _commit(spark, path, tables.qualified_name(tables.AUDIT, tables.ID_EVENTS), source, theirs | overlap,
                   clauses, operation="delete+strip", erasure_id=erasure_id)


def _retire_ids(spark: SparkSession, path: str, person: Person, erasure_id: str, at: datetime) -> TableErasure | None:
    """``gold.customer_ids``: the person's ids become retired ids with no survivor.

    The rows stay: the id keeper mints new ids from the registry's size and checks them
    against it, so a removed row could let a later run issue the same id to someone else.
    """
    if not delta_io.exists(spark, path) or not person.customer_ids:
        return None
    registry = delta_io.read(spark, path).filter(is_in("customer_id", person.customer_ids))
    retired = registry.select(
        "customer_id",
        F.lit("retired").alias("status"),
        F.lit(None).cast("string").alias("merged_into"),
        F.lit(None).cast("string").alias("current_id"),
        "created_run_id",
        "created_at",
        F.coalesce("retired_run_id", F.lit(erasure_id)).alias("retired_run_id"),
        F.coalesce("retired_at", F.lit(at)).alias("retired_at"),
    )
    content = [c for c in REGISTRY_SCHEMA.names if c != "customer_id"]
    source = retired.withColumns({publish.RUN_ID: F.lit(erasure_id),
                                  publish.CONTENT_HASH: publish.content_hash(retired, content)})
    columns = [*REGISTRY_SCHEMA.names, publish.RUN_ID, publish.CONTENT_HASH]
    return _commit(spark, path, tables.qualified_name(tables.GOLD, tables.CUSTOMER_IDS), source,
                   F.col("t.customer_id") == F.col("s.customer_id"),
                   lambda m: m.whenMatchedUpdate(set={c: F.col(f"s.`{c}`") for c in columns}),
                   operation="retire", erasure_id=erasure_id)


def _system_of(cfg: PipelineConfig) -> dict[str, str]:
    return {s.name: s.system for s in cfg.sources}


def _write_tombstones(
    spark: SparkSession, cfg: PipelineConfig, person: Person, erasure_id: str, at: datetime
) -> TableErasure | None:
    """``audit.erasure_tombstones``: one row per erased customer id (and one, without id, for
    records no customer had yet): the source ids per system, no other data."""
    if not (person.customer_ids or person.record_keys):
        return None
    systems = _system_of(cfg)
    by_customer: dict[str | None, dict[str, list[str]]] = {cid: {} for cid in person.customer_ids}
    for key in person.record_keys:
        source, rid = key.split(":", 1)
        ids = by_customer.setdefault(person.customer_of.get(key), {})
        ids.setdefault(systems.get(source, source), []).append(rid)
    rows = [
        (erasure_id, at, cid, None if cid is None else ("active" if cid in person.active_ids else "retired"),
         {system: sorted(ids) for system, ids in found.items()})
        for cid, found in sorted(by_customer.items(), key=lambda kv: kv[0] or "")
    ]
    path = tables.table_path(cfg.lakehouse, tables.AUDIT, tables.ERASURE_TOMBSTONES)
    version = delta_io.append(spark, spark.createDataFrame(rows, TOMBSTONES_SCHEMA), path, user_metadata=erasure_id)
    log.info("erase audit.erasure_tombstones: %d row(s) at version %d", len(rows), version)
    return TableErasure(tables.qualified_name(tables.AUDIT, tables.ERASURE_TOMBSTONES), path, "append", len(rows),
                        version)


def _scrub_training_data(spark: SparkSession, cfg: PipelineConfig, person: Person) -> int:
    """Rewrite the Zingg models' labelled pairs (``<model>/*/trainingData/marked``, Parquet
    holding both records' fields) without the pairs that hold a record of the person.

    Returns:
        Rows removed (two per pair).
    """
    from cdi_spark.resolve.stage import model_dir
    from cdi_spark.resolve.zingg_settings import KEY

    if not person.record_keys or not (cfg.base_dir / cfg.matching).is_file():
        return 0
    jvm = spark.sparkContext._jvm
    pattern = jvm.org.apache.hadoop.fs.Path(f"{model_dir(cfg, load_matching(cfg)).rstrip('/')}/*/*/trainingData/marked")
    fs = pattern.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    removed = 0
    for status in fs.globStatus(pattern) or []:
        folder = status.getPath()
        marked = spark.read.parquet(folder.toString())
        if KEY not in marked.columns or _ZINGG_PAIR not in marked.columns:
            continue
        pairs = marked.filter(is_in(KEY, person.record_keys)).select(_ZINGG_PAIR).distinct()
        n = marked.join(pairs, _ZINGG_PAIR, "left_semi").count()
        if not n:
            continue
        scratch = jvm.org.apache.hadoop.fs.Path(f"{folder.toString()}.erasing")
        marked.join(pairs, _ZINGG_PAIR, "left_anti").write.mode("overwrite").parquet(scratch.toString())
        fs.delete(folder, True)
        fs.rename(scratch, folder)
        removed += n
        log.info("erase Zingg training data %s: %d row(s) removed", folder.toString(), n)
    return removed


# --------------------------------------------------------------------------------------------
# The golden stage's pointers, VACUUM, the audit row
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _GoldenState:
    generation: int
    versions: dict[str, int]
    silver_at_rest: bool  # silver.customer_records has not changed since the last golden run
    clusters_at_rest: bool


# Commits that move files, not rows: a table that only had these since a version still holds
# that version's rows.
_MAINTENANCE = frozenset({"OPTIMIZE", "VACUUM START", "VACUUM END", "REORG"})


def _written_since(spark: SparkSession, path: str, version: int) -> int | None:
    """The first commit after ``version`` that changed rows (maintenance aside), or None."""
    later = (delta_io.history(spark, path).filter(F.col("version") > version)
             .filter(~F.col("operation").isin(*_MAINTENANCE)).agg(F.min("version")).first()[0])
    return None if later is None else int(later)


def golden_state(spark: SparkSession, cfg: PipelineConfig) -> _GoldenState | None:
    """The last completed golden run, checked: every gold table holds what it left.

    Raises:
        ErasureError: a gold table changed since (a golden run is running or died): erasing now
            would let the next golden run read the person back from an older version.
    """
    path = tables.table_path(cfg.lakehouse, tables.AUDIT, tables.GOLDEN_RUNS)
    row = delta_io.read(spark, path).orderBy(F.col("generation").desc()).first() \
        if delta_io.exists(spark, path) else None
    if row is None:
        return None
    versions = dict(row["versions"])
    for name, version in sorted(versions.items()):
        moved = _written_since(spark, tables.table_path(cfg.lakehouse, tables.GOLD, name), version)
        if moved is not None:
            raise ErasureError(
                f"gold.{name} changed at version {moved}, after the last completed golden run (generation "
                f"{row['generation']}) left it at version {version}: a golden run is running or did not finish. "
                "Let it finish (or run `cdi-spark run --stages golden`), then erase.")

    def at_rest(name: str, version: int) -> bool:
        return _written_since(spark, tables.table_path(cfg.lakehouse, tables.SILVER, name), version) is None

    return _GoldenState(int(row["generation"]), versions, at_rest(tables.CUSTOMER_RECORDS, row["silver_version"]),
                        at_rest(tables.ENTITY_CLUSTERS, row["clusters_version"]))


def rebase_golden(
    spark: SparkSession, cfg: PipelineConfig, state: _GoldenState, erasure_id: str
) -> TableErasure | None:
    """Point the last golden run's row at the erased versions of the tables it reads next time.

    Silver and clusters move only when they had not changed since that run: otherwise the
    next golden run must still compare with the version it wrote from (and VACUUM must wait).
    """
    def now(layer: str, name: str) -> int:
        return delta_io.current_version(spark, tables.table_path(cfg.lakehouse, layer, name))

    path = tables.table_path(cfg.lakehouse, tables.AUDIT, tables.GOLDEN_RUNS)
    row = delta_io.read(spark, path).filter(F.col("generation") == state.generation).first()
    versions = {name: now(tables.GOLD, name) for name in state.versions}
    silver = now(tables.SILVER, tables.CUSTOMER_RECORDS) if state.silver_at_rest else row["silver_version"]
    clusters = now(tables.SILVER, tables.ENTITY_CLUSTERS) if state.clusters_at_rest else row["clusters_version"]
    if versions == dict(row["versions"]) and (silver, clusters) == (row["silver_version"], row["clusters_version"]):
        return None
    schema = "generation long, versions map<string, bigint>, silver_version long, clusters_version long"
    source = spark.createDataFrame([(state.generation, versions, silver, clusters)], schema)
    return _commit(spark, path, tables.qualified_name(tables.AUDIT, tables.GOLDEN_RUNS), source,
                   F.col("t.generation") == F.col("s.generation"),
                   lambda m: m.whenMatchedUpdate(set={c: F.col(f"s.{c}") for c in source.columns[1:]}),
                   operation="rebase", erasure_id=erasure_id)


def vacuum_sql(spark: SparkSession, paths: Sequence[str]) -> str:
    """The SQL that removes every version older than the current one of each table."""
    lines = [f"SET {RETENTION_CHECK} = false;"]
    lines += [f"VACUUM delta.`{delta_io.qualify(spark, p)}` RETAIN 0 HOURS;" for p in paths]
    return "\n".join(lines)


def vacuum_now(spark: SparkSession, paths: Sequence[str], *, erasure_id: str) -> None:
    """``VACUUM ... RETAIN 0 HOURS`` on each table: time travel to any older version ends, for everyone."""
    with _conf(spark, RETENTION_CHECK, "false"):
        for path in paths:
            delta_io.vacuum(spark, path, retention_hours=0, user_metadata=erasure_id)
            log.info("erase: vacuumed %s", path)


def record_erasure(spark: SparkSession, cfg: PipelineConfig, result: ErasureResult, request_hash: str,
            started: datetime) -> None:
    row = (result.erasure_id, result.request_kind, request_hash, started, datetime.now(UTC), result.customers,
           result.records, {c.table: c.rows for c in result.changes}, {c.table: c.version for c in result.changes},
           result.training_rows, result.vacuum, result.vacuumed)
    delta_io.append(spark, spark.createDataFrame([row], ERASURES_SCHEMA),
                    tables.table_path(cfg.lakehouse, tables.AUDIT, tables.ERASURES), user_metadata=result.erasure_id)




def erase_tables(
    spark: SparkSession, cfg: PipelineConfig, person: Person, pii: pii_mod.PiiConfig, erasure_id: str, at: datetime
) -> tuple[list[TableErasure], int]:
    """Every table, leaves first and the tables the person is found through last."""
    path = lambda layer, name: tables.table_path(cfg.lakehouse, layer, name)  # noqa: E731
    keys, ids = {"_erase_keys": person.record_keys}, {"_erase_ids": person.customer_ids}
    done: list[TableErasure | None] = [_write_tombstones(spark, cfg, person, erasure_id, at)]
    activity = _activity(cfg)
    for source in cfg.sources:
        arrays, match = _bronze_match(spark, cfg, source, person, pii, activity)
        done.append(delete_rows(spark, path(tables.BRONZE, source.name), f"bronze.{source.name}", arrays, match,
                                erasure_id=erasure_id))
    for source in cfg.sources:
        arrays, match = _quarantine_match(source, person, activity)
        done.append(delete_rows(spark, path(tables.QUARANTINE, source.name), f"quarantine.{source.name}", arrays,
                                match, erasure_id=erasure_id))
    for layer, name in ((tables.SILVER, tables.MATCH_LABELS), (tables.SILVER, tables.MATCH_EDGES),
                        (tables.AUDIT, tables.CUT_EDGES)):
        done.append(delete_rows(spark, path(layer, name), f"{layer}.{name}", keys, _either("left_key", "right_key"),
                                erasure_id=erasure_id))
    training_rows = _scrub_training_data(spark, cfg, person)
    done.append(_strip_events(spark, path(tables.AUDIT, tables.ID_EVENTS), person, erasure_id))
    analyst_layer, analyst_name = pii.analyst.table.split(".", 1)
    for layer, name in ((tables.GOLD, tables.CUSTOMER_360), (analyst_layer, analyst_name),
                        (tables.GOLD, tables.CUSTOMER_PROFILE)):
        done.append(delete_rows(spark, path(layer, name), f"{layer}.{name}", ids, _by("customer_id", "_erase_ids"),
                                erasure_id=erasure_id))
    done.append(_retire_ids(spark, path(tables.GOLD, tables.CUSTOMER_IDS), person, erasure_id, at))
    done.append(delete_rows(spark, path(tables.SILVER, tables.ENTITY_CLUSTERS), "silver.entity_clusters", keys,
                            _either("record_key"), erasure_id=erasure_id))
    xref_match: Match = lambda df: _any([_has("_erase_keys")(F.col("t.record_key")),  # noqa: E731
                                         _has("_erase_ids")(F.col("t.customer_id"))])
    done.append(delete_rows(spark, path(tables.GOLD, tables.CUSTOMER_XREF), "gold.customer_xref", {**keys, **ids},
                            xref_match, erasure_id=erasure_id))
    done.append(delete_rows(spark, path(tables.SILVER, tables.CUSTOMER_RECORDS), "silver.customer_records", keys,
                            _either("record_key"), erasure_id=erasure_id))
    return [c for c in done if c is not None], training_rows
