"""GDPR erasure: remove a person from every layer; leave a tombstone and an audit row without personal data.

:func:`erase` finds the person (:func:`cdi_spark.activate.erase_find.find_person`: by email,
customer id or source id; the whole customer, every record of it) and removes them, one
commit per table (:mod:`cdi_spark.activate.erase_tables`):

* ``audit.erasure_tombstones`` (appended first): the customer ids and the source ids per
  system, for the activation exports to send deletes, even after VACUUM;
* ``bronze.<source>``: the person's records (``mapping.record_id``), the activity rows that
  name them (``conf/customer_360.yml`` ``person:``; anonymous events whose device identify
  events tie to them alone) and rows whose email columns (``conf/pii.yml``) hold their address;
* ``quarantine.<source>``: rows whose raw text holds one of their addresses, or one of their
  source ids as a whole word (see ``docs/privacy.md`` for this heuristic);
* ``silver.match_labels``, ``silver.match_edges``, ``audit.cut_edges``: pairs with either side
  theirs; the labelled pairs in the Zingg models' training data (``trainingData/marked``)
  are rewritten without them;
* ``audit.id_events``: the events of their customer ids are deleted, their record keys are
  removed from other customers' events;
* ``gold.customer_360``, ``gold.customer_profile_analyst``, ``gold.customer_profile``: hard
  deletes (the Change Data Feed shows a ``delete``, which the exports send);
* ``gold.customer_ids``: their ids stay, retired with no survivor, so that no id is ever
  issued twice (see :func:`cdi_spark.golden.ids.new_id`);
* ``silver.entity_clusters``, ``gold.customer_xref``, ``silver.customer_records``: last, as
  the person is found through them;
* ``audit.golden_runs``: the last golden run's versions move to the tables' new versions, so
  the next golden run starts from the erased state (it never reads an older version again).

Each delete is a Delta MERGE whose source is one row of arrays (the ids, keys and addresses
to match): the commit's recorded predicate then names columns, never a value. Tables with
deletion vectors are purged (``REORG TABLE ... APPLY (PURGE)``) right after, so no current
file holds the person. Older versions still do until VACUUM: ``audit.erasures`` records the
exact ``VACUUM ... RETAIN 0 HOURS`` commands, which ``--vacuum`` runs.

Logs and ``audit.erasures`` hold counts, customer ids and a salted hash of the request, never
an address or a number. This module imports no Spark until an erasure runs (the command line
loads it for ``--help``).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from cdi_spark.activate import pii as pii_mod
from cdi_spark.config import PipelineConfig, load_config
from cdi_spark.errors import CdiError, ConfigError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

Kind = Literal["email", "customer_id", "source_id"]
KINDS: tuple[str, ...] = ("email", "customer_id", "source_id")
# Tables that never held the person's data or ids: their old versions need no VACUUM.
NO_VACUUM = ("append", "rebase")


class ErasureError(CdiError):
    """The erasure cannot run as asked (an ambiguous request, an unfinished golden run)."""


@dataclass(frozen=True)
class ErasureRequest:
    """Who to erase: ``kind`` is email, customer_id or source_id (``<source>:<id>`` or ``<system>:<id>``).

    The value is kept out of ``repr`` so that it cannot reach a log line by accident.
    """

    kind: Kind
    value: str = field(repr=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"erasure request: kind must be one of {', '.join(KINDS)}, found {self.kind!r}")
        if not self.value.strip():
            raise ValueError(f"erasure request: an empty {self.kind}")


@dataclass(frozen=True)
class Person:
    """What the lakehouse knows of the person to erase (ids only, but for ``emails``).

    Attributes:
        record_keys: every record of theirs (``<source>:<source_record_id>``).
        customer_ids: every customer id of theirs, active and retired.
        active_ids: those that were active.
        customer_of: record key -> its customer id (from the xref).
        emails: their addresses (role mailboxes aside), to match bronze and quarantine text;
            never logged or stored.
        email_keys: the matching keys of those addresses (plus-tags and Gmail dots dropped).
    """

    record_keys: tuple[str, ...]
    customer_ids: tuple[str, ...]
    active_ids: tuple[str, ...]
    customer_of: dict[str, str]
    emails: tuple[str, ...] = field(default=(), repr=False)
    email_keys: tuple[str, ...] = field(default=(), repr=False)

    def source_ids(self, source: str) -> list[str]:
        """The person's record ids in ``source``."""
        return sorted(k.split(":", 1)[1] for k in self.record_keys if k.split(":", 1)[0] == source)

    @property
    def empty(self) -> bool:
        """Nothing of the person is known (no record, no id, no address)."""
        return not (self.record_keys or self.customer_ids or self.emails)


@dataclass(frozen=True)
class TableErasure:
    """One table's commit: rows deleted (or updated: ``retire``, ``strip``) and the version written."""

    table: str
    path: str
    operation: str  # delete | retire | strip | rebase
    rows: int
    version: int


@dataclass(frozen=True)
class ErasureResult:
    """What one erasure did; ``vacuum`` is the SQL that removes the old versions."""

    erasure_id: str
    request_kind: str
    customers: int
    records: int
    changes: tuple[TableErasure, ...]
    training_rows: int
    vacuum: str
    vacuumed: bool
    vacuum_blocked: str | None = None  # why VACUUM must wait (the next golden run reads an old version)


def request_hash(request: ErasureRequest, salt: str, normalised: str) -> str:
    """``sha-256(salt + "<kind>:<normalised value>")``: what ``audit.erasures`` keeps of a request."""
    return pii_mod.hash_text(salt, f"{request.kind}:{normalised}")


def erase(
    spark: SparkSession,
    cfg: PipelineConfig,
    request: ErasureRequest,
    *,
    salt: str | None = None,
    pii: pii_mod.PiiConfig | None = None,
    allow_many: bool = False,
    vacuum: bool = False,
) -> ErasureResult:
    """Erase the person ``request`` names from every layer; see the module docstring.

    Run it while no pipeline run is writing (an erasure is a few small commits per table).

    Args:
        spark: the session.
        cfg: the pipeline configuration (sources, Customer 360 and matching files).
        request: who (email, customer id or source id).
        salt: the PII salt, which keys the request's hash; by default read from the variable
            ``pii.salt_env`` names (``CDI_SPARK_PII_SALT``).
        pii: ``conf/pii.yml``; read beside the pipeline configuration when not given.
        allow_many: erase every customer a shared address or id reaches, not only one.
        vacuum: also run the VACUUM that ends time travel to the older versions of every table
            touched (for everyone); refused while the next golden run still needs one of them.

    Returns:
        What was done, with the VACUUM SQL. A person found nowhere gives an empty result
        (and an ``audit.erasures`` row that says so).

    Raises:
        ConfigError: no salt (or one too short), before anything is read or written.
        ErasureError: a request that reaches several customers (without ``allow_many``), an
            unfinished golden run, or ``vacuum`` while silver is ahead of the golden stage.
    """
    from cdi_spark.activate import erase_tables as steps
    from cdi_spark.activate.erase_find import find_person, normalised_email
    from cdi_spark.pipeline import new_run_id

    pii = pii or pii_mod.load_pii(pii_mod.pii_path(cfg))
    salt = pii_mod.salt_from_env(pii, None if salt is None else {pii.salt_env: salt})  # checked either way
    started = datetime.now(UTC)
    erasure_id = f"erasure-{new_run_id()}"
    state = steps.golden_state(spark, cfg)
    blocked = None
    if state is not None and not (state.silver_at_rest and state.clusters_at_rest):
        blocked = ("silver changed after the last golden run, which the next golden run compares with: "
                   "run the golden stage (`cdi-spark run`) first, then VACUUM")
        if vacuum:
            raise ErasureError(f"--vacuum now would break the next golden run: {blocked}. Nothing was erased.")
    person = find_person(spark, cfg, request, allow_many=allow_many)
    log.info("erase %s: %s request: %d customer id(s) %s, %d record(s)", erasure_id, request.kind,
             len(person.customer_ids), ", ".join(person.customer_ids) or "-", len(person.record_keys))
    changes, training_rows = steps.erase_tables(spark, cfg, person, pii, erasure_id, started)
    if state is not None:
        rebased = steps.rebase_golden(spark, cfg, state, erasure_id)
        changes += [rebased] if rebased else []
    paths = [c.path for c in changes if c.operation not in NO_VACUUM]
    result = ErasureResult(erasure_id, request.kind, len(person.customer_ids), len(person.record_keys), tuple(changes),
                           training_rows, steps.vacuum_sql(spark, paths) if paths else "", vacuumed=False,
                           vacuum_blocked=blocked if paths else None)
    if vacuum and paths:
        steps.vacuum_now(spark, paths, erasure_id=erasure_id)
        result = dataclasses.replace(result, vacuumed=True)
    normal = normalised_email(spark, request.value)[0] if request.kind == "email" else request.value.strip()
    steps.record_erasure(spark, cfg, result, request_hash(request, salt, normal or ""), started)
    log.info("erase %s: %d table(s) changed, %d training row(s) removed%s", erasure_id, len(changes), training_rows,
             ", vacuumed" if result.vacuumed else "")
    return result


def format_result(result: ErasureResult) -> str:
    """What the operator reads: the tables, rows and versions, then what to run next."""
    lines = [f"{result.erasure_id}: {result.request_kind} request, {result.customers} customer id(s), "
             f"{result.records} record(s)"]
    if not result.changes:
        lines.append("  nothing of this person was found; the request is recorded in audit.erasures")
    else:
        width = max(len(c.table) for c in result.changes)
        lines += [f"  {'table':<{width}}  {'operation':<12} {'rows':>6}  version"]
        lines += [f"  {c.table:<{width}}  {c.operation:<12} {c.rows:>6}  {c.version}" for c in result.changes]
    if result.training_rows:
        lines.append(f"  Zingg training data: {result.training_rows} labelled-pair row(s) removed")
    if result.vacuumed:
        lines.append("\nVACUUM ran: no older version of these tables can be read any more.")
    elif result.vacuum:
        lines.append("\nOlder versions of these tables still hold the person (time travel, change data feed).")
        if result.vacuum_blocked:
            lines.append(f"Not yet: {result.vacuum_blocked}.")
        lines.append("First run `cdi-spark export` so that the downstream targets receive the deletes from the "
                     "change feed. Then remove the old versions, in a session with the Delta extension (or "
                     "`cdi-spark erase ... --vacuum`):\n")
        lines += [f"  {line}" for line in result.vacuum.splitlines()]
        lines.append("\nThis ends time travel to every older version of these tables, for everyone; readers "
                     "of an older snapshot fail.")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``cdi-spark erase`` (shared with ``jobs/erase.py``)."""
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--email", help="the person's address (`-`: read it from standard input, out of the shell "
                                     "history)")
    who.add_argument("--customer-id", help="a customer id, active or retired")
    who.add_argument("--source-id",
                     help="a source record: <source>:<id> (crm_contacts:0031) or <system>:<id> (crm:0031)")
    parser.add_argument("--config", default="conf/pipeline.yml", help="pipeline YAML (default: %(default)s)")
    parser.add_argument("--lakehouse", help="override the config's lakehouse folder")
    parser.add_argument("--profile", help="override the config's Spark profile (local, cluster)")
    parser.add_argument("--pii", help=f"PII configuration (default: {pii_mod.PII_FILE} beside the pipeline YAML)")
    parser.add_argument("--allow-many", action="store_true",
                        help="erase every customer the address or id reaches (a shared address), not only one")
    parser.add_argument("--vacuum", action="store_true",
                        help="then VACUUM ... RETAIN 0 HOURS every table touched: time travel to older versions "
                             "ends for everyone")


def cmd_erase(args: argparse.Namespace) -> int:
    """Erase a person (GDPR): remove them from bronze, quarantine, silver, gold, the labels and the
    match model's training data, write a tombstone for the exports and an audit.erasures row
    without personal data, and print the VACUUM that removes the old versions. Needs the PII
    salt in the environment (CDI_SPARK_PII_SALT)."""
    from cdi_spark.session import build_session

    kind, value = next((k, getattr(args, k)) for k in KINDS if getattr(args, k) is not None)
    if value == "-":
        value = sys.stdin.readline().strip()
    cfg = load_config(args.config, lakehouse=args.lakehouse, profile=args.profile)
    pii = pii_mod.load_pii(args.pii or pii_mod.pii_path(cfg))
    salt = pii_mod.salt_from_env(pii)  # refuse before Spark starts
    try:
        request = ErasureRequest(kind, value)
    except ValueError as exc:
        raise ConfigError("(command line)", f"--{kind.replace('_', '-')}", str(exc)) from None
    spark = build_session(cfg.spark, app_name="cdi-spark erase")
    result = erase(spark, cfg, request, salt=salt, pii=pii, allow_many=args.allow_many, vacuum=args.vacuum)
    print(format_result(result))
    return 0
