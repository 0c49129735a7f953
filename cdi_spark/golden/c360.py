"""Customer 360: activity per customer from the bronze activity exports -> ``gold.customer_360``.

Reads ``bronze.<source>`` of every source named in ``conf/customer_360.yml`` (orders and paid
invoices, support tickets, product events, marketing contacts) and the xref
(``record_key, customer_id``). Each activity row names a person record of a person-bearing
source (an order's ``Customer ID`` is a ``shop_customers`` record); its ``record_key`` is
built exactly as the standardize stage builds it: ``"<person source>:<record id>"``, the id
read with :func:`cdi_spark.standardize.mapping.source_field` (trimmed text).

For hundreds of millions of rows: each source is projected to the few columns it needs,
aggregated once per person record at the source (orders per record and currency, events
per user and device), then joined to the xref and aggregated per customer. Nothing is
broadcast on purpose but the rates, which are a literal map. The per-record aggregates are cached so
that the counts of rows no customer receives (orphans, unattributed events, orders left out
of revenue) and the result share one pass over bronze; call
:meth:`ActivityResult.unpersist` once the result is written.

Writes nothing; the golden stage publishes ``customer_360(profile, result.frame)``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import reduce
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import (
    BooleanType,
    DateType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from cdi_spark import delta_io, tables
from cdi_spark.config import PipelineConfig, load_file
from cdi_spark.errors import ConfigError, MissingColumnError, SchemaError
from cdi_spark.standardize.dates import timestamp_parser
from cdi_spark.standardize.mapping import source_field
from cdi_spark.standardize.money import (
    AMOUNT_TYPE,
    CurrencyRates,
    currency_code,
    load_currency_rates,
    minor_to_amount,
    to_reporting_currency,
)
from cdi_spark.standardize.stage import DAY_ORDER, FALSE_WORDS, TRUE_WORDS

log = logging.getLogger(__name__)

# One row per customer with any activity. Run-level facts (the window's end) are not columns:
# a value that changes every run would make every row look changed to publish's content hash.
ACTIVITY_SCHEMA = StructType(
    [
        StructField("customer_id", StringType()),
        StructField("orders_count", LongType()),  # counted orders and paid invoices; 0, never null
        StructField("revenue", AMOUNT_TYPE),  # their amounts in revenue_currency; 0, never null
        StructField("revenue_currency", StringType()),  # the reporting currency (ISO 4217)
        StructField("first_order_at", TimestampType()),
        StructField("last_order_at", TimestampType()),
        StructField("tickets_total", LongType()),
        StructField("tickets_open", LongType()),
        StructField("last_support_contact_at", TimestampType()),  # latest ticket created or updated
        StructField("events_total", LongType()),
        StructField("events_in_window", LongType()),  # events in the window_days up to as_of
        StructField("last_seen_at", TimestampType()),  # latest product event
        StructField("marketing_lifecycle_stage", StringType()),  # most advanced of the records
        StructField("marketing_email_opt_out", BooleanType()),  # most restrictive of the records
    ]
)
ACTIVITY_COLUMNS = tuple(f.name for f in ACTIVITY_SCHEMA.fields)
ZERO_COLUMNS = ("orders_count", "revenue", "tickets_total", "tickets_open", "events_total", "events_in_window")
PER_CUSTOMER_ONLY = ("customer_id", "revenue_currency", "marketing_lifecycle_stage")
# What each source's per-record aggregate may hold (a source fills its own, the rest are null).
PER_RECORD = {
    **{f.name: f.dataType for f in ACTIVITY_SCHEMA.fields if f.name not in PER_CUSTOMER_ONLY},
    "_stage_rank": IntegerType(),  # 1-based position in lifecycle_stages: ranked per record, named per customer
    "_problem": StringType(),  # why some of the row's orders are not in revenue
    "_problem_rows": LongType(),
}
UNREADABLE_AMOUNT = "(unreadable amount)"
NO_CURRENCY = "(no currency)"

# --------------------------------------------------------------------------------------------
# Configuration (conf/customer_360.yml)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PersonRef:
    """The person record an activity row belongs to.

    Attributes:
        source: the person-bearing source (it has a ``mapping:``) whose record is meant.
        column: the activity column (dotted for nested JSON) holding that record's id as the
            person source's ``mapping.record_id`` holds it.
    """

    source: str
    column: str


@dataclass(frozen=True)
class TimeColumn:
    """A time column: typed (Parquet timestamps) or text in ``format``.

    Attributes:
        column: the column (dotted for nested JSON).
        format: how text is written: iso, mdy, dmy (as the standardize stage reads them),
            epoch_s or epoch_ms. Ignored for timestamp and date columns.
        timezone: the IANA zone of text without an offset.
    """

    column: str
    format: Literal["iso", "mdy", "dmy", "epoch_s", "epoch_ms"] = "iso"
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"timezone {self.timezone!r} is not an IANA time zone (UTC, Europe/Berlin)") from None


@dataclass(frozen=True)
class Amount:
    """An amount column: ``major`` units (19.99) or integer ``minor`` units (1999 cents)."""

    column: str
    unit: Literal["major", "minor"] = "major"


@dataclass(frozen=True)
class OrderSource:
    """An export whose rows are orders or invoices: counted, and summed into revenue.

    Attributes:
        status: the status column; with ``counted_statuses``, rows whose status (any case)
            is not listed are not orders (refunded, voided, unpaid).
        deduplicate: keep one row per primary key, the latest ingested (a re-exported row).
    """

    source: str
    person: PersonRef
    amount: Amount
    currency: str
    time: TimeColumn
    status: str | None = None
    counted_statuses: tuple[str, ...] = ()
    deduplicate: bool = True

    def __post_init__(self) -> None:
        if (self.status is None) != (not self.counted_statuses):
            raise ValueError("status and counted_statuses go together: name the column and the statuses that count")


@dataclass(frozen=True)
class TicketSource:
    """A support-ticket export. The last contact is the latest of ``created`` and ``updated``."""

    source: str
    person: PersonRef
    status: str
    open_statuses: tuple[str, ...]
    created: TimeColumn
    updated: TimeColumn | None = None
    deduplicate: bool = True

    def __post_init__(self) -> None:
        if not self.open_statuses:
            raise ValueError("open_statuses must list at least one status (new, open, pending ...)")


@dataclass(frozen=True)
class EventSource:
    """A product-events export.

    Attributes:
        person: the user id column (null on anonymous events).
        anonymous_id: the device's anonymous id; an anonymous event goes to the one user that
            identify events tie its anonymous id to (none when they tie it to several).
        event_type, identify_types: which events tie an anonymous id to a user; without
            them, any event carrying both ids does.
    """

    source: str
    person: PersonRef
    time: TimeColumn
    anonymous_id: str | None = None
    event_type: str | None = None
    identify_types: tuple[str, ...] = ()
    deduplicate: bool = True

    def __post_init__(self) -> None:
        if (self.event_type is None) != (not self.identify_types):
            raise ValueError("event_type and identify_types go together: name the column and the identify types")
        if self.identify_types and self.anonymous_id is None:
            raise ValueError("identify_types needs anonymous_id: the column that identify events tie to a user")


@dataclass(frozen=True)
class MarketingSource:
    """A marketing-contacts export: lifecycle stage and email opt-out per contact."""

    source: str
    person: PersonRef
    lifecycle_stage: str | None = None
    email_opt_out: str | None = None
    deduplicate: bool = True

    def __post_init__(self) -> None:
        if self.lifecycle_stage is None and self.email_opt_out is None:
            raise ValueError("name lifecycle_stage, email_opt_out or both")


def _check_unique(sources: Sequence[object]) -> None:
    names = [s.source for s in sources]  # type: ignore[attr-defined]
    if len(set(names)) != len(names):
        raise ValueError(f"a source is listed twice (its rows would count twice): {names}")


@dataclass(frozen=True)
class OrdersConfig:
    """Sources of orders and invoices."""

    sources: tuple[OrderSource, ...] = ()

    def __post_init__(self) -> None:
        _check_unique(self.sources)


@dataclass(frozen=True)
class TicketsConfig:
    """Sources of support tickets."""

    sources: tuple[TicketSource, ...] = ()

    def __post_init__(self) -> None:
        _check_unique(self.sources)


@dataclass(frozen=True)
class EventsConfig:
    """Sources of product events; ``events_in_window`` counts the ``window_days`` up to as_of."""

    window_days: int = 30
    sources: tuple[EventSource, ...] = ()

    def __post_init__(self) -> None:
        _check_unique(self.sources)
        if self.window_days < 1:
            raise ValueError(f"window_days must be at least 1, found {self.window_days}")


@dataclass(frozen=True)
class MarketingConfig:
    """Marketing sources and the lifecycle stages, least advanced first."""

    lifecycle_stages: tuple[str, ...] = ()
    sources: tuple[MarketingSource, ...] = ()

    def __post_init__(self) -> None:
        _check_unique(self.sources)
        lowered = [s.lower() for s in self.lifecycle_stages]
        if len(set(lowered)) != len(lowered):
            raise ValueError(f"lifecycle_stages: a stage is listed twice: {list(self.lifecycle_stages)}")
        if not lowered and any(s.lifecycle_stage for s in self.sources):
            raise ValueError("lifecycle_stages must list the stages, least advanced first, to rank lifecycle_stage")


@dataclass(frozen=True)
class C360Config:
    """Customer 360 settings (``conf/customer_360.yml``).

    Attributes:
        rates: the currency rates file (:func:`~cdi_spark.standardize.money.load_currency_rates`),
            relative to this file.
        as_of: the end of the events window when the caller gives none: ``run`` (the run's
            time) or ``latest_event`` (the latest event of the event sources; for data
            whose dates are not today's, such as the demo's).
        orders, tickets, events, marketing: the activity sources of each kind.
        path: the file this configuration was read from.
    """

    rates: str = "currency_rates.yml"
    as_of: Literal["run", "latest_event"] = "run"
    orders: OrdersConfig = field(default_factory=OrdersConfig)
    tickets: TicketsConfig = field(default_factory=TicketsConfig)
    events: EventsConfig = field(default_factory=EventsConfig)
    marketing: MarketingConfig = field(default_factory=MarketingConfig)
    path: str = field(default="", init=False)

    def __post_init__(self) -> None:
        if not self.activity_sources:
            raise ValueError("no activity sources: list some under orders, tickets, events or marketing")

    def kinds(self) -> dict[str, tuple]:
        """``{kind: its sources}`` for orders, tickets, events and marketing."""
        return {k: getattr(self, k).sources for k in ("orders", "tickets", "events", "marketing")}

    @property
    def activity_sources(self) -> tuple[str, ...]:
        """Every source named, sorted."""
        return tuple(sorted({s.source for sources in self.kinds().values() for s in sources}))

    @property
    def rates_file(self) -> Path:
        """The rates file, relative to this configuration's folder."""
        return (Path(self.path).parent if self.path else Path.cwd()) / self.rates


def load_c360(path: str | Path) -> C360Config:
    """Read and validate ``conf/customer_360.yml`` and the rates file it names.

    Raises:
        ConfigError: an unknown or missing key, a wrong value, or a bad rates file.
    """
    cfg = load_file(C360Config, path)
    object.__setattr__(cfg, "path", str(path))
    if not cfg.rates_file.is_file():
        raise ConfigError(path, "rates", f"file {cfg.rates_file} not found (paths are relative to this file)")
    load_currency_rates(cfg.rates_file)
    return cfg


def check_sources(cfg: C360Config, pipeline_cfg: PipelineConfig) -> None:
    """Every source named is a pipeline source, and every person source has a ``mapping:``.

    Raises:
        ConfigError: naming the customer_360 file and key.
    """
    known = {s.name: s for s in pipeline_cfg.sources}
    file = cfg.path or "customer_360 configuration"
    for kind, sources in cfg.kinds().items():
        for i, spec in enumerate(sources):
            key = f"{kind}.sources[{i}]"
            if spec.source not in known:
                raise ConfigError(file, f"{key}.source", f"{spec.source!r} is not a source; known: {', '.join(known)}")
            person = known.get(spec.person.source)
            if person is None or person.mapping is None:
                people = ", ".join(n for n, s in known.items() if s.mapping is not None)
                raise ConfigError(
                    file, f"{key}.person.source", f"{spec.person.source!r} is not a person source; known: {people}"
                )


# --------------------------------------------------------------------------------------------
# Columns read from bronze
# --------------------------------------------------------------------------------------------


def person_key(df: DataFrame, person: PersonRef, *, where: str) -> Column:
    """The person's ``record_key`` as standardize's ``map_source`` builds it; null without an id."""
    return F.concat(F.lit(f"{person.source}:"), source_field(df, person.column, where=where))


def event_time(df: DataFrame, spec: TimeColumn, *, where: str) -> Column:
    """A UTC timestamp from a typed column as it is, or from text in ``spec.format``."""
    dtype = {f.name: f.dataType for f in df.schema.fields}.get(spec.column)
    if isinstance(dtype, TimestampType | DateType):
        return F.col(f"`{spec.column}`").cast("timestamp")
    text = source_field(df, spec.column, where=where)
    if spec.format == "epoch_s":
        return F.timestamp_seconds(text.cast("decimal(18,6)"))
    if spec.format == "epoch_ms":
        return F.timestamp_millis(text.cast("long"))
    return timestamp_parser(DAY_ORDER[spec.format], spec.timezone)(text)


def _flag(text: Column) -> Column:
    lowered = F.lower(text)
    return F.when(lowered.isin(*TRUE_WORDS), True).when(lowered.isin(*FALSE_WORDS), False)


def _in(text: Column, values: Sequence[str]) -> Column:
    return F.coalesce(F.lower(text).isin(*[v.lower() for v in values]), F.lit(False))


def _rows(df: DataFrame, spec, columns: dict[str, Column], keys: Sequence[str] | None) -> DataFrame:
    """The narrow rows of one source, one per primary key when it is deduplicated."""
    if not (spec.deduplicate and keys):
        return df.select(*[c.alias(n) for n, c in columns.items()])
    missing = [c for c in (tables.INGESTED_AT, tables.BATCH_ID) if c not in df.columns]
    if missing:
        raise MissingColumnError(f"customer_360: deduplicating {spec.source}", missing, df.columns)
    where = f"{spec.source} (customer_360 primary key)"
    narrow = df.select(
        F.struct(*[source_field(df, k, where=where).alias(f"k{i}") for i, k in enumerate(keys)]).alias("_pk"),
        F.struct(tables.INGESTED_AT, tables.BATCH_ID).alias("_version"),
        F.struct(*[c.alias(n) for n, c in columns.items()]).alias("_row"),
    )
    latest = narrow.groupBy("_pk").agg(F.max_by("_row", "_version").alias("_row"))
    return latest.select("_row.*")


# --------------------------------------------------------------------------------------------
# Per person record, at the source
# --------------------------------------------------------------------------------------------


def _orders(df: DataFrame, spec: OrderSource, rates: CurrencyRates, keys) -> DataFrame:
    where = f"{spec.source} (customer_360 orders)"
    written = source_field(df, spec.currency, where=where)
    code = currency_code(written)
    amount = source_field(df, spec.amount.column, where=where)
    columns = {
        "record_key": person_key(df, spec.person, where=where),
        "_currency": F.coalesce(code, F.upper(written)),
        "_amount": minor_to_amount(amount, code) if spec.amount.unit == "minor" else amount.cast(AMOUNT_TYPE),
        "_at": event_time(df, spec.time, where=where),
    }
    if spec.status:
        columns["_counted"] = _in(source_field(df, spec.status, where=where), spec.counted_statuses)
    rows = _rows(df, spec, columns, keys)
    if spec.status:
        rows = rows.filter("_counted")
    # Summed per currency first: one conversion per person and currency, not per order.
    by_currency = rows.groupBy("record_key", "_currency").agg(
        F.count(F.lit(1)).alias("_rows"),
        F.count("_amount").alias("_amounts"),
        F.sum("_amount").alias("_sum"),
        F.min("_at").alias("first_order_at"),
        F.max("_at").alias("last_order_at"),
    )
    priced = F.coalesce(F.col("_currency").isin(*rates.rates), F.lit(False))
    unreadable = F.col("_rows") - F.col("_amounts")
    return by_currency.select(
        "record_key",
        F.lit(spec.source).alias("_source"),
        "_rows",
        F.col("_rows").alias("orders_count"),
        F.when(priced, to_reporting_currency(F.col("_sum"), F.col("_currency"), rates.rates)).alias("revenue"),
        "first_order_at",
        "last_order_at",
        F.when(~priced, F.coalesce("_currency", F.lit(NO_CURRENCY)))
        .when(unreadable > 0, F.lit(UNREADABLE_AMOUNT))
        .alias("_problem"),
        F.when(~priced, F.col("_rows")).when(unreadable > 0, unreadable).alias("_problem_rows"),
    )


def _tickets(df: DataFrame, spec: TicketSource, keys) -> DataFrame:
    where = f"{spec.source} (customer_360 tickets)"
    times = [event_time(df, t, where=where) for t in (spec.created, spec.updated) if t is not None]
    rows = _rows(
        df,
        spec,
        {
            "record_key": person_key(df, spec.person, where=where),
            "_open": _in(source_field(df, spec.status, where=where), spec.open_statuses),
            "_contact": F.greatest(*times) if len(times) > 1 else times[0],  # greatest skips nulls
        },
        keys,
    )
    return rows.groupBy("record_key").agg(
        F.lit(spec.source).alias("_source"),
        F.count(F.lit(1)).alias("_rows"),
        F.count(F.lit(1)).alias("tickets_total"),
        F.count_if("_open").alias("tickets_open"),
        F.max("_contact").alias("last_support_contact_at"),
    )


def _event_rows(df: DataFrame, spec: EventSource, keys) -> DataFrame:
    where = f"{spec.source} (customer_360 events)"
    user = person_key(df, spec.person, where=where)
    anon = source_field(df, spec.anonymous_id, where=where) if spec.anonymous_id else F.lit(None).cast("string")
    links = _in(source_field(df, spec.event_type, where=where), spec.identify_types) if spec.event_type else F.lit(True)
    columns = {"record_key": user, "_anon": anon, "_at": event_time(df, spec.time, where=where), "_links": links}
    return _rows(df, spec, columns, keys)


def _events(rows: DataFrame, source: str, as_of: dt.datetime, window_days: int) -> DataFrame:
    """Per user and device first (one pass over the events), then anonymous devices to users."""
    start = as_of - dt.timedelta(days=window_days)
    in_window = (F.col("_at") > F.lit(start)) & (F.col("_at") <= F.lit(as_of))
    ties = F.col("_links") & F.col("record_key").isNotNull() & F.col("_anon").isNotNull()
    devices = rows.groupBy("record_key", "_anon").agg(
        F.count(F.lit(1)).alias("_rows"),
        F.count_if(in_window).alias("events_in_window"),
        F.max("_at").alias("last_seen_at"),
        F.bool_or(ties).alias("_ties"),
    )
    # An anonymous id tied to exactly one user is that user's; tied to several, nobody's. A
    # window over each device's rows rather than a join of the aggregate with itself, which
    # would read the events once per branch. Rows without an anonymous id are grouped per
    # user, so they do not all land in one window partition.
    device = Window.partitionBy("_anon", F.when(F.col("_anon").isNull(), F.col("record_key")))
    tied = devices.withColumn("_users", F.collect_set(F.when(F.col("_ties"), F.col("record_key"))).over(device))
    users = F.col("_users")
    return tied.select(
        F.coalesce("record_key", F.when(F.size(users) == 1, users.getItem(0))).alias("record_key"),
        F.lit(source).alias("_source"),
        "_rows",
        F.col("_rows").alias("events_total"),
        "events_in_window",
        "last_seen_at",
    )


def _marketing(df: DataFrame, spec: MarketingSource, stages: Sequence[str], keys) -> DataFrame:
    where = f"{spec.source} (customer_360 marketing)"
    none = F.lit(None)
    ranks = F.create_map(*[F.lit(x) for i, s in enumerate(stages, 1) for x in (s.lower(), i)]) if stages else None
    stage = source_field(df, spec.lifecycle_stage, where=where) if spec.lifecycle_stage else None
    opt_out = _flag(source_field(df, spec.email_opt_out, where=where)) if spec.email_opt_out else none
    columns = {
        "record_key": person_key(df, spec.person, where=where),
        "_stage_rank": (F.try_element_at(ranks, F.lower(stage)) if stage is not None else none).cast("int"),
        "_opt_out": opt_out.cast("boolean"),
    }
    return (
        _rows(df, spec, columns, keys)
        .groupBy("record_key")
        .agg(
            F.lit(spec.source).alias("_source"),
            F.count(F.lit(1)).alias("_rows"),
            F.max("_stage_rank").alias("_stage_rank"),
            F.bool_or("_opt_out").alias("marketing_email_opt_out"),  # one opt-out is enough
        )
    )


# --------------------------------------------------------------------------------------------
# Per customer
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ActivityResult:
    """Activity per customer, and the activity rows no customer received.

    Attributes:
        frame: one row per customer with any activity, columns :data:`ACTIVITY_COLUMNS`.
        as_of: the end of the events window (UTC).
        reporting_currency: the currency of ``revenue``.
        orphans: source -> activity rows whose person record is not in the xref.
        unattributed: source -> rows that name no person (no id, or an anonymous event no
            identify event ties to exactly one user).
        unpriced: source -> currency as written (or ``(unreadable amount)``, ``(no currency)``)
            -> orders of customers counted in ``orders_count`` but left out of ``revenue``.
    """

    frame: DataFrame
    as_of: dt.datetime
    reporting_currency: str
    orphans: Mapping[str, int]
    unattributed: Mapping[str, int]
    unpriced: Mapping[str, Mapping[str, int]]
    cached: DataFrame | None = dataclasses.field(default=None, repr=False)

    def unpersist(self) -> None:
        """Release the cached per-record aggregates (once ``frame`` is written)."""
        if self.cached is not None:
            self.cached.unpersist()


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _window_end(frames: Mapping[str, DataFrame], cfg: C360Config, as_of, run_at) -> dt.datetime:
    if as_of is not None:
        return _utc(as_of)
    run_at = _utc(run_at or dt.datetime.now(dt.UTC))
    events = [s for s in cfg.events.sources if s.source in frames]
    if cfg.as_of == "run" or not events:
        return run_at
    times = reduce(
        DataFrame.unionByName,
        [
            frames[s.source].select(event_time(frames[s.source], s.time, where=f"{s.source} (customer_360 events)"))
            for s in events
        ],
    )  # duplicates do not move the latest time: read without deduplicating
    latest = times.agg(F.unix_micros(F.max(times.columns[0]))).first()[0]  # one value: metadata
    if latest is None:
        log.warning("customer_360: no event has a time; the events window ends at the run's time")
        return run_at
    return dt.datetime.fromtimestamp(0, dt.UTC) + dt.timedelta(microseconds=latest)


def _per_customer(known: DataFrame, cfg: C360Config, currency: str) -> DataFrame:
    stages = cfg.marketing.lifecycle_stages
    stage_names = F.array(*[F.lit(s) for s in stages])
    stage = F.element_at(stage_names, F.max("_stage_rank")) if stages else F.lit(None).cast("string")
    zero = {c: F.coalesce(F.sum(c), F.lit(0)) for c in ZERO_COLUMNS}
    out = known.groupBy("customer_id").agg(
        zero["orders_count"].alias("orders_count"),
        zero["revenue"].alias("revenue"),
        F.lit(currency).alias("revenue_currency"),
        F.min("first_order_at").alias("first_order_at"),
        F.max("last_order_at").alias("last_order_at"),
        zero["tickets_total"].alias("tickets_total"),
        zero["tickets_open"].alias("tickets_open"),
        F.max("last_support_contact_at").alias("last_support_contact_at"),
        zero["events_total"].alias("events_total"),
        zero["events_in_window"].alias("events_in_window"),
        F.max("last_seen_at").alias("last_seen_at"),
        stage.alias("marketing_lifecycle_stage"),
        F.bool_or("marketing_email_opt_out").alias("marketing_email_opt_out"),
    )
    return out.select(*[F.col(f.name).cast(f.dataType) for f in ACTIVITY_SCHEMA.fields])


def _counts(joined: DataFrame) -> tuple[dict[str, int], dict[str, int], dict[str, dict[str, int]]]:
    """The rows no customer received and the orders left out of revenue (small: collected)."""
    kind = F.when(F.col("record_key").isNull(), "unattributed").when(F.col("customer_id").isNull(), "orphans")
    label = F.when(kind.isNotNull(), kind).otherwise(F.concat(F.lit("unpriced:"), F.col("_problem")))
    rows = F.when(kind.isNotNull(), F.col("_rows")).otherwise(F.col("_problem_rows"))
    lost = joined.filter(kind.isNotNull() | F.col("_problem").isNotNull())
    found: dict[str, dict[str, int]] = {"orphans": {}, "unattributed": {}}
    unpriced: dict[str, dict[str, int]] = {}
    for source, what, n in lost.groupBy("_source", label.alias("what")).agg(F.sum(rows)).collect():
        if what.startswith("unpriced:"):
            unpriced.setdefault(source, {})[what.removeprefix("unpriced:")] = int(n)
        else:
            found[what][source] = int(n)
    return found["orphans"], found["unattributed"], unpriced


def aggregate(
    frames: Mapping[str, DataFrame],
    cfg: C360Config,
    xref: DataFrame,
    rates: CurrencyRates,
    as_of: dt.datetime | None = None,
    *,
    run_at: dt.datetime | None = None,
    keys: Mapping[str, Sequence[str]] | None = None,
) -> ActivityResult:
    """Activity per customer from already-read activity rows (pure: no table reads).

    Args:
        frames: source name -> its rows (bronze columns); a configured source missing here
            is skipped with a warning.
        cfg: the Customer 360 configuration.
        xref: ``record_key, customer_id``, one row per person record.
        rates: the reporting currency and its rates.
        as_of: end of the events window; None: by ``cfg.as_of`` (naive times are UTC).
        run_at: the run's time, for ``as_of: run`` (default: now).
        keys: source -> primary key: rows of a source with ``deduplicate`` are reduced to
            the latest ingested per key (needs the lineage columns). None: no deduplication.

    Returns:
        An :class:`ActivityResult`; its ``frame`` reads cached aggregates (see ``unpersist``).

    Raises:
        MissingColumnError: a configured column is not in its source, or xref lacks a column.
        SchemaError: none of the configured sources is in ``frames``.
    """
    missing = [c for c in ("record_key", "customer_id") if c not in xref.columns]
    if missing:
        raise MissingColumnError("customer_360: xref", missing, xref.columns)
    present = {k: [s for s in sources if s.source in frames] for k, sources in cfg.kinds().items()}
    for name in sorted(set(cfg.activity_sources) - set(frames)):
        log.warning("customer_360: no rows of %s were given; its activity is left out", name)
    keys = keys or {}
    window_end = _window_end(frames, cfg, as_of, run_at)
    event_rows = [(s.source, _event_rows(frames[s.source], s, keys.get(s.source))) for s in present["events"]]
    parts = [
        *[_orders(frames[s.source], s, rates, keys.get(s.source)) for s in present["orders"]],
        *[_tickets(frames[s.source], s, keys.get(s.source)) for s in present["tickets"]],
        *[_events(rows, name, window_end, cfg.events.window_days) for name, rows in event_rows],
        *[
            _marketing(frames[s.source], s, cfg.marketing.lifecycle_stages, keys.get(s.source))
            for s in present["marketing"]
        ],
    ]
    if not parts:
        raise SchemaError("customer_360: none of the configured activity sources was given")
    per_record = reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), parts)
    per_record = per_record.select(
        "record_key", "_source", "_rows",
        *[(F.col(n) if n in per_record.columns else F.lit(None)).cast(t).alias(n) for n, t in PER_RECORD.items()],
    )  # fmt: skip
    joined = per_record.join(xref.select("record_key", "customer_id"), "record_key", "left")
    joined = joined.persist(StorageLevel.MEMORY_AND_DISK)
    orphans, unattributed, unpriced = _counts(joined)
    _log_counts(orphans, unattributed, unpriced)
    frame = _per_customer(joined.filter(F.col("customer_id").isNotNull()), cfg, rates.reporting_currency)
    return ActivityResult(frame, window_end, rates.reporting_currency, orphans, unattributed, unpriced, joined)


def _log_counts(orphans, unattributed, unpriced) -> None:
    for source, n in sorted(orphans.items()):
        log.warning("customer_360: %s: %s activity rows name a person record that no customer holds", source, f"{n:,}")
    for source, n in sorted(unattributed.items()):
        log.info("customer_360: %s: %s activity rows name no person (anonymous, no id)", source, f"{n:,}")
    for source, by_currency in sorted(unpriced.items()):
        detail = ", ".join(f"{c}: {n:,}" for c, n in sorted(by_currency.items()))
        log.warning("customer_360: %s: orders counted but left out of revenue (no rate or amount): %s", source, detail)


def activity(
    spark: SparkSession,
    pipeline_cfg: PipelineConfig,
    c360_cfg: C360Config,
    xref: DataFrame,
    *,
    as_of: dt.datetime | None = None,
    run_at: dt.datetime | None = None,
) -> ActivityResult:
    """Read ``bronze.<source>`` of every configured activity source and :func:`aggregate` it.

    A source without a bronze table yet is skipped with a warning; re-exported rows are
    reduced to the latest per the source's primary key (unless ``deduplicate: false``).

    Raises:
        ConfigError: a configured source or person source is not a pipeline source.
    """
    check_sources(c360_cfg, pipeline_cfg)
    rates = load_currency_rates(c360_cfg.rates_file)
    sources = {s.name: s for s in pipeline_cfg.sources}
    frames = {}
    for name in c360_cfg.activity_sources:
        path = tables.table_path(pipeline_cfg.lakehouse, tables.BRONZE, name)
        if delta_io.exists(spark, path):
            frames[name] = delta_io.read(spark, path)
    keys = {name: sources[name].primary_key for name in frames}
    return aggregate(frames, c360_cfg, xref, rates, as_of, run_at=run_at, keys=keys)


def customer_360(profile: DataFrame, activity: DataFrame, *, reporting_currency: str | None = None) -> DataFrame:
    """``gold.customer_360``: every profile with its activity; zero counts where it has none.

    Args:
        profile: ``gold.customer_profile`` rows (``customer_id`` and the profile fields).
        activity: :attr:`ActivityResult.frame`.
        reporting_currency: fills ``revenue_currency`` of customers without activity.

    Raises:
        MissingColumnError: ``customer_id`` or an activity column is missing.
        SchemaError: the profile already has a column of the activity schema.
    """
    if "customer_id" not in profile.columns:
        raise MissingColumnError("customer_360: profile", ["customer_id"], profile.columns)
    missing = [c for c in ACTIVITY_COLUMNS if c not in activity.columns]
    if missing:
        raise MissingColumnError("customer_360: activity", missing, activity.columns)
    clash = sorted(set(profile.columns) & set(ACTIVITY_COLUMNS) - {"customer_id"})
    if clash:
        raise SchemaError(f"customer_360: the profile already has activity column(s) {', '.join(clash)}")
    fills = {c: F.coalesce(F.col(c), F.lit(0).cast(ACTIVITY_SCHEMA[c].dataType)) for c in ZERO_COLUMNS}
    if reporting_currency:
        fills["revenue_currency"] = F.coalesce(F.col("revenue_currency"), F.lit(reporting_currency))
    return profile.join(activity.select(*ACTIVITY_COLUMNS), "customer_id", "left").withColumns(fills)
