"""Typed configuration: YAML files in ``conf/`` loaded into frozen dataclasses.

``load_config(path)`` reads ``pipeline.yml`` and every ``sources/<name>.yml`` beside it and
validates them before any Spark session exists. Unknown keys, wrong types and missing
required values raise :class:`~cdi_spark.errors.ConfigError` naming the file, the dotted
key, what was found and what was expected.

Each stage owns one dataclass here; ``parse(cls, data, file=..., key=...)`` turns a plain
mapping into any of them, so a new stage adds a dataclass, not a new loader.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from cdi_spark.errors import ConfigError

T = typing.TypeVar("T")

# --------------------------------------------------------------------------------------------
# Generic strict parsing
# --------------------------------------------------------------------------------------------

_SCALARS: dict[type, str] = {str: "a string", int: "an integer", float: "a number", bool: "true/false"}


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if tp in _SCALARS:
        return _SCALARS[tp]
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (list, tuple):
        return f"a list of {_describe(typing.get_args(tp)[0])}"
    if origin is dict:
        return f"a mapping of {_describe(typing.get_args(tp)[1])}"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp) if a is not type(None))
    if dataclasses.is_dataclass(tp):
        return f"a mapping with keys {', '.join(f.name for f in dataclasses.fields(tp))}"
    return getattr(tp, "__name__", str(tp))


def _found(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:60]}{'...' if len(text) > 60 else ''}"


def _convert(tp: Any, value: Any, file: str, key: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _convert(arg, value, file, key)
            except ConfigError as exc:
                errors.append(exc)
        raise ConfigError(file, key, f"expected {_describe(tp)}, found {_found(value)}")
    if tp is Any:
        return value
    if origin is Literal:
        if value in typing.get_args(tp):
            return value
        raise ConfigError(file, key, f"expected {_describe(tp)}, found {_found(value)}")
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str) and value != "":
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
    elif origin in (list, tuple):
        if isinstance(value, list):
            (item,) = typing.get_args(tp)[:1]
            return tuple(_convert(item, v, file, f"{key}[{i}]") for i, v in enumerate(value))
    elif origin is dict:
        if isinstance(value, dict):
            _, item = typing.get_args(tp)
            return {str(k): _convert(item, v, file, f"{key}.{k}") for k, v in value.items()}
    elif dataclasses.is_dataclass(tp):
        if isinstance(value, dict):
            return parse(tp, value, file=file, key=key)
    else:  # pragma: no cover - a programming error in a dataclass annotation
        raise TypeError(f"config type {tp!r} at {key} is not supported")
    raise ConfigError(file, key, f"expected {_describe(tp)}, found {_found(value)}")


def parse(cls: type[T], data: Any, *, file: str | Path, key: str = "") -> T:
    """Build the frozen dataclass ``cls`` from a plain mapping, strictly.

    Args:
        cls: a dataclass type whose field annotations say what each key must hold.
        data: the mapping read from YAML.
        file: the file the mapping came from, for messages.
        key: the dotted path of ``data`` inside the file ("" for the top).

    Returns:
        An instance of ``cls``.

    Raises:
        ConfigError: an unknown key, a missing required key, a wrong type, or a failed
            cross-field check in ``cls.__post_init__`` (which may raise ``ValueError``).
    """
    file = str(file)
    if not isinstance(data, dict):
        raise ConfigError(file, key or "(top level)", f"expected {_describe(cls)}, found {_found(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(map(str, data)) - set(fields))
    if unknown:
        where = f"{key}.{unknown[0]}" if key else unknown[0]
        raise ConfigError(file, where, f"unknown key; expected one of: {', '.join(fields)}")
    kwargs = {}
    for name, f in fields.items():
        sub = f"{key}.{name}" if key else name
        if name in data:
            kwargs[name] = _convert(hints[name], data[name], file, sub)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(file, sub, f"required key is missing; expected {_describe(hints[name])}")
    try:
        return cls(**kwargs)
    except ValueError as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(file, key or "(top level)", str(exc)) from None


def read_yaml(path: str | Path) -> Any:
    """Read one YAML file, turning I/O and syntax problems into ConfigError."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(path, "", "file not found")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(path, where, f"not valid YAML: {getattr(exc, 'problem', exc)}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(path, "", f"not UTF-8 text: {exc}") from None


def load_file(cls: type[T], path: str | Path) -> T:
    """Read ``path`` and parse it into ``cls``."""
    return parse(cls, read_yaml(path) or {}, file=path)


# --------------------------------------------------------------------------------------------
# Pipeline configuration
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SparkProfile:
    """Spark settings for one kind of run.

    Attributes:
        master: the master URL for runs started with ``python`` (``local[2]``); ignored when
            ``spark-submit`` already chose one.
        conf: Spark properties; each is applied only when neither spark-submit nor the
            environment has set that key already.
        block_outbound_http: point the driver JVM's HTTP(S) proxy at a closed local port so
            that no library (Zingg's usage analytics included) can reach the internet. Meant
            for local runs; leave off on clusters that read object stores over HTTPS.
    """

    master: str | None = None
    conf: dict[str, str] = field(default_factory=dict)
    block_outbound_http: bool = False


@dataclass(frozen=True)
class ColumnSpec:
    """One expected column of a source export.

    Attributes:
        name: the column (CSV header) or top-level key (JSON) as the export writes it.
        type: what its values must parse as. Bronze keeps text formats as text; a value
            that does not parse as ``type`` sends its row to quarantine (``wrong_type``).
            ``any`` checks nothing (nested Parquet columns, free text).
        required: the column must be present in every file; a file without it fails the
            source with a message naming the file and the column.
        format: a Spark datetime pattern for ``date`` / ``timestamp`` text that is not ISO
            8601 (``MM/dd/yyyy HH:mm``).
    """

    name: str
    type: Literal["string", "int", "long", "double", "boolean", "date", "timestamp", "any"] = "string"
    required: bool = False
    format: str | None = None

    def __post_init__(self) -> None:
        if self.format is not None and self.type not in ("date", "timestamp"):
            raise ValueError(f"column {self.name!r}: format applies to date and timestamp columns, not {self.type}")


@dataclass(frozen=True)
class SourceConfig:
    """One raw export of one source system (``conf/sources/<name>.yml``).

    Attributes:
        name: the bronze table name (``bronze.<name>``); snake_case.
        system: the source system it comes from (crm, marketing, support, ...).
        format: the file format.
        path: a path or glob of the export files, relative to the pipeline's ``raw_dir``.
        primary_key: the field(s) that identify a row within one export file.
        columns: the expected columns; ``required`` ones must be present in every file.
        options: reader options (``delimiter``, ``quote``, ``escape`` for CSV); unknown
            option names are errors.
        encoding: the files' character set; it must be ASCII-compatible (UTF-8, ISO-8859-1,
            windows-1252, ...). Bytes that do not decode send their row to quarantine.
        header: CSV files start with a header line (the only supported layout).
        multiline: JSON: each file holds one array of objects (``true``) or one object per
            line (``false``, JSON Lines). Defaults to ``true`` for ``json``, ``false`` for
            ``jsonl``; CSV quoted fields may always span lines.
        mapping: for a person-bearing source, how its fields map onto the canonical
            customer record (standardize stage); absent for activity exports.
    """

    name: str
    system: str
    format: Literal["csv", "json", "jsonl", "parquet"]
    path: str
    primary_key: tuple[str, ...]
    columns: tuple[ColumnSpec, ...] = ()
    options: dict[str, str] = field(default_factory=dict)
    encoding: str = "UTF-8"
    header: bool = True
    multiline: bool | None = None
    mapping: SourceMapping | None = None

    # Reader options a source may set (CSV dialect). Defaults: "," '"' and escape = quote (RFC 4180).
    OPTIONS: typing.ClassVar[tuple[str, ...]] = ("delimiter", "quote", "escape")

    def __post_init__(self) -> None:
        if not self.name.replace("_", "").isalnum() or self.name.lower() != self.name:
            raise ValueError(f"name {self.name!r} must be snake_case letters, digits and _")
        if not self.primary_key:
            raise ValueError("primary_key must name at least one field")
        unknown = sorted(set(self.options) - set(self.OPTIONS))
        if unknown:
            expected = ", ".join(self.OPTIONS)
            raise ValueError(f"options: unknown reader option {unknown[0]!r}; expected one of: {expected}")
        for key in ("delimiter", "quote", "escape"):
            if len(self.options.get(key, ",")) != 1:
                raise ValueError(f"options.{key} must be one character, found {self.options[key]!r}")
        if self.format == "csv" and not self.header:
            raise ValueError("header: CSV exports must start with a header line")
        if self.format in ("csv", "parquet") and self.multiline is not None:
            raise ValueError(f"multiline applies to json and jsonl sources, not {self.format}")
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise ValueError("columns: a column is listed twice")

    @property
    def json_array(self) -> bool:
        """Whether each file is one JSON array (read whole) rather than JSON Lines."""
        if self.multiline is not None:
            return self.multiline
        return self.format == "json"


STAGE_NAMES = ("ingest", "standardize", "resolve", "golden", "activate")


@dataclass(frozen=True)
class GoldConfig:
    """Upkeep of the gold tables (``gold:`` in ``pipeline.yml``).

    Attributes:
        optimize_every_runs: OPTIMIZE ... ZORDER BY customer_id every this many golden runs
            (compacts the small files each run's MERGE adds; clusters rows by customer).
        vacuum_retention_hours: after an OPTIMIZE, VACUUM files no version younger than this
            needs. It bounds time travel: versions older than the retention can no longer be
            read (``VERSION AS OF``, ``profile_as_of``, the Change Data Feed). At least 168
            (7 days, Delta's safety minimum); null never vacuums.
    """

    optimize_every_runs: int = 10
    vacuum_retention_hours: float | None = 168.0

    def __post_init__(self) -> None:
        if self.optimize_every_runs < 1:
            raise ValueError(f"gold.optimize_every_runs must be at least 1, found {self.optimize_every_runs}")
        if self.vacuum_retention_hours is not None and self.vacuum_retention_hours < 168:
            raise ValueError(
                f"gold.vacuum_retention_hours must be at least 168 (7 days), found {self.vacuum_retention_hours}"
            )


@dataclass(frozen=True)
class PipelineConfig:
    """The whole run (``conf/pipeline.yml``).

    Attributes:
        lakehouse: root folder of the Delta tables (``<lakehouse>/<layer>/<table>``).
        raw_dir: root folder of the raw exports that source paths are relative to.
        profile: which entry of ``profiles`` to use when started with ``python``.
        profiles: Spark settings per profile (``local``, ``cluster``).
        stages: the stages to run, in order.
        sources_dir: folder of ``<source>.yml`` files, relative to this file.
        matching: matching configuration file, relative to this file.
        survivorship: survivorship configuration file, relative to this file.
        customer_360: Customer 360 activity configuration file, relative to this file.
        quality: data-quality thresholds file, relative to this file.
        activation: downstream export targets file, relative to this file (read when the
            ``activate`` stage or ``cdi-spark export`` runs).
        gold: upkeep of the gold tables (OPTIMIZE schedule, VACUUM retention).
        checkpoint_dir: folder for the run's Spark checkpoints (clustering rounds, id
            assignment), on storage every executor reaches; ``None`` means
            ``<lakehouse>/_checkpoints``. Used only when the session has no checkpoint
            folder of its own; the run's checkpoints are deleted when it ends.
        sources: filled by :func:`load_config` from ``sources_dir``.
        path: the file this configuration was read from.
    """

    lakehouse: str = "lakehouse"
    raw_dir: str = "data/raw"
    profile: str = "local"
    profiles: dict[str, SparkProfile] = field(default_factory=lambda: {"local": SparkProfile()})
    stages: tuple[str, ...] = ("ingest",)
    sources_dir: str = "sources"
    matching: str = "matching.yml"
    survivorship: str = "survivorship.yml"
    customer_360: str = "customer_360.yml"
    quality: str = "quality.yml"
    activation: str = "activation.yml"
    gold: GoldConfig = field(default_factory=GoldConfig)
    checkpoint_dir: str | None = None
    sources: tuple[SourceConfig, ...] = field(default=(), init=False)
    path: str = field(default="", init=False)

    def __post_init__(self) -> None:
        if self.profile not in self.profiles:
            raise ValueError(
                f"profile {self.profile!r} is not defined; defined: {', '.join(self.profiles)}"
            )
        for stage in self.stages:
            if stage not in STAGE_NAMES:
                raise ValueError(f"stages: unknown stage {stage!r}; known: {', '.join(STAGE_NAMES)}")
        order = [STAGE_NAMES.index(s) for s in self.stages]
        if order != sorted(order) or len(set(order)) != len(order):
            raise ValueError(f"stages must be in pipeline order {', '.join(STAGE_NAMES)}")

    def with_stages(self, stages: tuple[str, ...] | list[str]) -> PipelineConfig:
        """A copy that runs other stages (the loaded sources and the file path are kept)."""
        copy = dataclasses.replace(self, stages=tuple(stages))
        object.__setattr__(copy, "sources", self.sources)
        object.__setattr__(copy, "path", self.path)
        return copy

    @property
    def spark(self) -> SparkProfile:
        """The Spark profile this run uses."""
        return self.profiles[self.profile]

    @property
    def base_dir(self) -> Path:
        """The folder of the configuration file; relative paths in it start here."""
        return Path(self.path).parent if self.path else Path.cwd()

    def config_hash(self) -> str:
        """A short stable hash of the effective configuration (recorded with each run)."""
        text = repr(dataclasses.asdict(self)).encode()
        return hashlib.sha256(text).hexdigest()[:16]


def load_config(path: str | Path, **overrides: Any) -> PipelineConfig:
    """Load ``pipeline.yml`` and its ``sources/*.yml``; validate everything.

    Relative ``lakehouse`` and ``raw_dir`` paths stay relative to the working directory,
    the way a user typing ``--config conf/pipeline.yml`` from the project root expects;
    ``sources_dir``, ``matching``, ``survivorship``, ``customer_360`` and ``quality`` are relative to
    the config file.

    Args:
        path: the pipeline YAML file.
        **overrides: top-level keys to replace after reading (from command-line flags).

    Returns:
        The validated configuration.

    Raises:
        ConfigError: anything wrong in any of the files.
    """
    path = Path(path)
    data = read_yaml(path) or {}
    if not isinstance(data, dict):
        raise ConfigError(path, "(top level)", f"expected a mapping, found {_found(data)}")
    data.update({k: v for k, v in overrides.items() if v is not None})
    cfg = parse(PipelineConfig, data, file=path)
    object.__setattr__(cfg, "path", str(path))
    object.__setattr__(cfg, "sources", load_sources(cfg.base_dir / cfg.sources_dir))
    # Validate the stage settings now, so a typo stops the run before Spark starts.
    load_matching(cfg)
    load_survivorship(cfg)
    load_quality(cfg)
    if "golden" in cfg.stages:
        from cdi_spark.golden.c360 import load_c360  # Spark-free to load; avoids an import cycle

        load_c360(cfg.base_dir / cfg.customer_360)
    if "activate" in cfg.stages:
        load_activation(cfg)
    return cfg


def load_sources(folder: Path) -> tuple[SourceConfig, ...]:
    """Every ``*.yml`` in ``folder`` as a :class:`SourceConfig`, sorted by name.

    Raises:
        ConfigError: the folder is missing, a file is invalid, or two files name the same
            source (or a file's ``name`` differs from its file name).
    """
    if not folder.is_dir():
        raise ConfigError(folder, "", "sources folder not found (pipeline.yml key sources_dir)")
    sources = []
    for file in sorted(folder.glob("*.yml")):
        source = load_file(SourceConfig, file)
        if source.name != file.stem:
            raise ConfigError(file, "name", f"is {source.name!r} but the file is {file.name}; they must agree")
        sources.append(source)
    return tuple(sources)


# --------------------------------------------------------------------------------------------
# Stage settings files
# --------------------------------------------------------------------------------------------


MATCH_RULES = ("email", "phone", "reference")
BLOCKING_FUNCTIONS = ("soundex", "prefix", "suffix", "year", "digits", "local_part", "sorted")
_PART = re.compile(r"^\s*(?:(?P<fn>[a-z_]+)\(\s*(?P<args>[^()]*)\)|(?P<col>[A-Za-z_][A-Za-z0-9_]*))\s*$")


@dataclass(frozen=True)
class MatchField:
    """A field the match model compares: a column of the match frame and Zingg match type(s).

    Attributes:
        name: a column of the records being matched (``silver.customer_records`` or the
            columns ``resolve-file`` derives).
        match_type: Zingg match type(s), joined by commas (``FUZZY``, ``EXACT``, ``EMAIL``,
            ``PINCODE``, ``NUMERIC``, ``ONLY_ALPHABETS_FUZZY``, ``NULL_OR_BLANK`` ...).
        term_frequency: when two records hold the same value, weigh that by how common
            the value is: the model's odds are multiplied by (average chance that two
            records agree on this field) / (share of records holding this value), so
            "john smith" counts for less than a rare name (capped, see
            :data:`cdi_spark.resolve.matcher.TF_LIMITS`).
    """

    name: str
    match_type: str
    term_frequency: bool = False


@dataclass(frozen=True)
class BlockingKey:
    """One blocking key: records sharing all its parts' values become candidate pairs.

    Attributes:
        name: shown in logs and in ``silver.match_edges.blocking_keys``.
        parts: each a column, or ``fn(column)`` / ``fn(column, n)`` with fn one of
            soundex, prefix (n letters), suffix (n letters), year, digits, local_part
            (of an email), or ``sorted(column, column)`` (order-free, for swapped names).
            A record with any part null or empty gets no value for the key.
    """

    name: str
    parts: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.parts:
            raise ValueError(f"blocking key {self.name!r} needs at least one part")
        for part in self.parts:
            parsed = parse_blocking_part(part)
            if parsed is None:
                raise ValueError(
                    f"blocking key {self.name!r}: part {part!r} is not a column or fn(column[, n]) "
                    f"with fn one of {', '.join(BLOCKING_FUNCTIONS)}"
                )

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns the key reads."""
        cols: list[str] = []
        for part in self.parts:
            _, args = parse_blocking_part(part)  # type: ignore[misc]
            cols.extend(a for a in args if not a.isdigit())
        return tuple(dict.fromkeys(cols))


def parse_blocking_part(part: str) -> tuple[str | None, tuple[str, ...]] | None:
    """``"prefix(family_name_key, 3)"`` -> ``("prefix", ("family_name_key", "3"))``; a bare
    column -> ``(None, (column,))``; anything else -> None."""
    m = _PART.match(part)
    if not m:
        return None
    if m.group("col"):
        return None, (m.group("col"),)
    fn, args = m.group("fn"), tuple(a.strip() for a in m.group("args").split(","))
    if fn not in BLOCKING_FUNCTIONS or not all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*|\d+", a) for a in args):
        return None
    wants = {"prefix": ("col", "n"), "suffix": ("col", "n"), "sorted": ("col", "col")}.get(fn, ("col",))
    if len(args) != len(wants) or any((w == "n") != a.isdigit() for w, a in zip(wants, args, strict=True)):
        return None
    return fn, args


@dataclass(frozen=True)
class BlockingConfig:
    """How candidate pairs are generated.

    Attributes:
        keys: blocking keys; a pair is a candidate when any key puts both records together.
        max_block_size: a key value shared by more records than this is reported and not
            used (a block of n records makes n(n-1)/2 pairs).
        zingg: also pair records that share the trained model's learnt block hash.
    """

    keys: tuple[BlockingKey, ...]
    max_block_size: int = 100
    zingg: bool = False

    def __post_init__(self) -> None:
        if not self.keys:
            raise ValueError("blocking.keys needs at least one key")
        names = [k.name for k in self.keys]
        if len(set(names)) != len(names):
            raise ValueError(f"blocking key names must be unique, found {names}")
        if self.max_block_size < 2:
            raise ValueError(f"blocking.max_block_size must be at least 2, found {self.max_block_size}")


@dataclass(frozen=True)
class TrainingConfig:
    """How the match model is trained.

    Attributes:
        max_labels: labelled pairs the model is trained on, at most (matches and
            non-matches, as balanced as the labels allow).
        bootstrap: with fewer than ``min_labels`` labels of each kind, train on sure
            matches and sure non-matches found in the candidates (and say so).
        min_labels: matching and non-matching labels needed before labels are used alone.
        seed: seed of every sample drawn while training.
    """

    max_labels: int = 400
    bootstrap: bool = True
    min_labels: int = 20
    seed: int = 42

    def __post_init__(self) -> None:
        if self.max_labels < 20 or self.min_labels < 5:
            raise ValueError("training.max_labels must be at least 20 and training.min_labels at least 5")


@dataclass(frozen=True)
class ClusteringConfig:
    """How edges become entities.

    Attributes:
        model_threshold: lowest model score that makes an edge.
        min_agreeing_fields: a model edge also needs this many fields present on both
            records and equal or nearly equal (the model sees missing values as alike, so
            two sparse records could otherwise score high on no evidence).
        max_cluster_size: a cluster larger than this has its weakest model links cut.
        cut_levels: rising score thresholds the size guard tries on an oversized cluster.
    """

    model_threshold: float = 0.5
    min_agreeing_fields: int = 2
    max_cluster_size: int = 50
    cut_levels: tuple[float, ...] = (0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99)

    def __post_init__(self) -> None:
        if not 0 < self.model_threshold < 1:
            raise ValueError(f"clustering.model_threshold must be in (0, 1), found {self.model_threshold}")
        if self.min_agreeing_fields < 0:
            raise ValueError(f"clustering.min_agreeing_fields must be >= 0, found {self.min_agreeing_fields}")
        if self.max_cluster_size < 2:
            raise ValueError(f"clustering.max_cluster_size must be at least 2, found {self.max_cluster_size}")
        if list(self.cut_levels) != sorted(self.cut_levels) or any(not 0 < c <= 1 for c in self.cut_levels):
            raise ValueError("clustering.cut_levels must rise, each in (0, 1]")


@dataclass(frozen=True)
class MatchingConfig:
    """Identity resolution settings (``conf/matching.yml``; ``cdi-spark init-matching`` writes one).

    Attributes:
        fields: what the match model compares, in order.
        blocking: candidate generation.
        rules: deterministic rules that link records without the model.
        max_key_frequency: a rule key (email, phone) shared by more records than this is
            reported and not used to link records.
        model_dir: folder of trained match models (one sub-folder per version), relative
            to the lakehouse.
        training: labels and bootstrap.
        clustering: thresholds and the size guard.
    """

    fields: tuple[MatchField, ...]
    blocking: BlockingConfig
    rules: tuple[Literal["email", "phone", "reference"], ...] = MATCH_RULES
    max_key_frequency: int = 50
    model_dir: str = "models/zingg"
    training: TrainingConfig = field(default_factory=TrainingConfig)
    clustering: ClusteringConfig = field(default_factory=ClusteringConfig)

    def __post_init__(self) -> None:
        if self.max_key_frequency < 2:
            raise ValueError(f"max_key_frequency must be at least 2, found {self.max_key_frequency}")
        names = [f.name for f in self.fields]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"fields must be non-empty with unique names, found {names}")

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column the model fields and blocking keys read."""
        cols = [f.name for f in self.fields] + [c for k in self.blocking.keys for c in k.columns]
        return tuple(dict.fromkeys(cols))


# The fields survivorship decides: the contact fields of gold.customer_profile. Each is a
# column of silver.customer_records except ``phone``, which the profile takes from phone_e164.
SURVIVABLE_FIELDS = (
    "given_name", "family_name", "full_name", "email", "phone", "birth_date",
    "street", "street_number", "city", "region", "postcode", "country", "company", "email_opt_out",
)
FLAG_FIELDS = ("email_opt_out",)  # true/false fields: the ones rule most_restrictive applies to
# Fields kept together from one record when survivorship.yml has no ``groups:`` key.
DEFAULT_GROUPS = {
    "name": ("given_name", "family_name", "full_name"),
    "address": ("street", "street_number", "city", "region", "postcode", "country"),
}
SurvivorshipRuleName = Literal[
    "source_priority", "most_recent", "most_frequent", "most_complete", "custom", "most_restrictive"
]
SURVIVORSHIP_RULES: tuple[str, ...] = typing.get_args(SurvivorshipRuleName)


@dataclass(frozen=True)
class SurvivorshipRule:
    """How one field or field group picks its surviving value (a ``rules:`` entry).

    Attributes:
        rule: ``source_priority`` (the first system in the order that has a value),
            ``most_recent`` (the record changed last: updated_at, else created_at),
            ``most_frequent`` (the value held by the most records), ``most_complete`` (a group:
            the record filling most of its fields; a field: the longest value), ``custom``
            (the first of ``values``), ``most_restrictive`` (true wins: consent, opt-outs).
        order: source_priority only: systems in the order they win this field; systems it
            does not list follow in the default ``source_priority`` order.
        values: custom only: values in the order they win, compared as text ("GB",
            "1985-03-12", "true"); a value not listed loses to every listed one.
    """

    rule: SurvivorshipRuleName
    order: tuple[str, ...] = ()
    values: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.order and self.rule != "source_priority":
            raise ValueError(f"order applies to rule source_priority only, not {self.rule}")
        if self.values and self.rule != "custom":
            raise ValueError(f"values applies to rule custom only, not {self.rule}")
        if self.rule == "custom" and not self.values:
            raise ValueError("rule custom needs values: the values in the order they win, e.g. values: [GB, IE]")
        for name in ("order", "values"):
            items = getattr(self, name)
            if len(set(items)) != len(items):
                raise ValueError(f"{name} lists an entry twice: {list(items)}")


@dataclass(frozen=True)
class SurvivorshipConfig:
    """Golden-profile survivorship settings (``conf/survivorship.yml``).

    Every field of :data:`SURVIVABLE_FIELDS` is decided by one rule, alone or with its group.
    Ties under any rule go to the system placed first in ``source_priority``, then to the
    record changed last, then to the smallest record_key: never to chance.

    Attributes:
        source_priority: systems in the order they win under rule source_priority, and the
            first tie-breaker of every rule; systems not listed come after them, tied.
        groups: group name -> fields that survive together, all from one record (a name, an
            address). Given, it replaces :data:`DEFAULT_GROUPS` (``groups: {}`` for none).
        rules: field or group name -> its rule. A field without one uses source_priority,
            a true/false flag (email_opt_out) most_restrictive; a grouped field follows its
            group's rule.

    Example:
        >>> SurvivorshipConfig(source_priority=("crm", "billing"),
        ...                    rules={"email": SurvivorshipRule("most_recent")}).rule_for("email").rule
        'most_recent'
    """

    source_priority: tuple[str, ...] = ()
    groups: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_GROUPS))
    rules: dict[str, SurvivorshipRule] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(set(self.source_priority)) != len(self.source_priority):
            raise ValueError(f"source_priority lists a system twice: {list(self.source_priority)}")
        grouped = self._check_groups()
        fields = ", ".join(SURVIVABLE_FIELDS)
        for name, rule in self.rules.items():
            if name in grouped:
                raise ValueError(f"rules.{name}: field {name!r} is in group {grouped[name]!r}, whose rule decides "
                                 f"it; set the rule on rules.{grouped[name]}")
            if name not in SURVIVABLE_FIELDS and name not in self.groups:
                groups = ", ".join(self.groups) or "none defined"
                raise ValueError(f"rules.{name}: unknown field or group; expected a field ({fields}) "
                                 f"or a group ({groups})")
            if name in self.groups and rule.rule in ("custom", "most_restrictive"):
                raise ValueError(f"rules.{name}: rule {rule.rule} applies to single fields, not to group {name!r}")
            if rule.rule == "most_restrictive" and name not in FLAG_FIELDS:
                raise ValueError(f"rules.{name}: rule most_restrictive applies to true/false fields "
                                 f"({', '.join(FLAG_FIELDS)}), not {name!r}")

    def _check_groups(self) -> dict[str, str]:
        """Field -> its group, after checking that each field is known and in one group."""
        grouped: dict[str, str] = {}
        for group, members in self.groups.items():
            if group in SURVIVABLE_FIELDS:
                raise ValueError(f"groups.{group}: a group cannot share a field's name; rename it")
            if not members:
                raise ValueError(f"groups.{group}: a group needs at least one field")
            for member in members:
                if member not in SURVIVABLE_FIELDS:
                    raise ValueError(f"groups.{group}: unknown field {member!r}; expected one of: "
                                     f"{', '.join(SURVIVABLE_FIELDS)}")
                if member in grouped:
                    where = "twice" if grouped[member] == group else f"also in group {grouped[member]!r}"
                    raise ValueError(f"groups.{group}: field {member!r} is listed {where}; "
                                     "a field can be in one group only")
                grouped[member] = group
        return grouped

    @property
    def units(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """Everything a rule decides, as (name, fields): each group once, each ungrouped field
        as ``(field, (field,))``; in the order of their first field in SURVIVABLE_FIELDS."""
        units: dict[str, tuple[str, ...]] = {}
        for name in SURVIVABLE_FIELDS:
            group = next((g for g, members in self.groups.items() if name in members), None)
            if group is None:
                units[name] = (name,)
            elif group not in units:
                units[group] = self.groups[group]
        return tuple(units.items())

    def rule_for(self, name: str) -> SurvivorshipRule:
        """The rule of a field or group: its own, else the default (see the class doc)."""
        if name in self.rules:
            return self.rules[name]
        return SurvivorshipRule("most_restrictive" if name in FLAG_FIELDS else "source_priority")


def load_matching(cfg: PipelineConfig) -> MatchingConfig:
    """The matching configuration named by ``cfg.matching``."""
    return load_file(MatchingConfig, cfg.base_dir / cfg.matching)


def load_survivorship(cfg: PipelineConfig) -> SurvivorshipConfig:
    """The survivorship configuration named by ``cfg.survivorship``."""
    return load_file(SurvivorshipConfig, cfg.base_dir / cfg.survivorship)


# --------------------------------------------------------------------------------------------
# Standardization: how one source's fields map onto the canonical customer record
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SourceMapping:
    """The ``mapping:`` block of a person-bearing source (``conf/sources/<name>.yml``).

    Attributes:
        record_id: the field holding the source's record id (dotted for nested JSON).
        fields: canonical field -> a source field (dotted path), or a list of fields whose
            non-empty values are joined with a space (address lines, name parts).
        constants: canonical field -> a fixed value for every row (a source's country).
        formats: time field -> how its text is written (iso, mdy, dmy, epoch_s, epoch_ms).
        references: another source's name -> the field here that holds that source's
            record id (billing's ``metadata.crm_id`` -> ``crm_contacts``).
    """

    record_id: str
    fields: dict[str, str | list[str]] = field(default_factory=dict)
    constants: dict[str, str] = field(default_factory=dict)
    formats: dict[str, Literal["iso", "mdy", "dmy", "epoch_s", "epoch_ms"]] = field(default_factory=dict)
    references: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from cdi_spark.standardize.canonical import MAPPABLE_FIELDS, TIME_FIELDS

        for name in [*self.fields, *self.constants]:
            if name not in MAPPABLE_FIELDS:
                raise ValueError(f"unknown canonical field {name!r}; expected one of: {', '.join(MAPPABLE_FIELDS)}")
        for name in self.formats:
            if name not in TIME_FIELDS:
                raise ValueError(f"formats: {name!r} is not a time field; time fields: {', '.join(TIME_FIELDS)}")


@dataclass(frozen=True)
class FieldThreshold:
    """Limits for one field of one source; ``None`` means no limit."""

    min_fill: float | None = None
    max_invalid: float | None = None

    def __post_init__(self) -> None:
        for name in ("min_fill", "max_invalid"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a fraction between 0 and 1, found {value}")


@dataclass(frozen=True)
class QualityConfig:
    """Data-quality thresholds (``conf/quality.yml``): source -> field -> limits.

    A standardize run whose measured fill or invalid rate crosses a limit fails with a
    message naming the source and the field.
    """

    sources: dict[str, dict[str, FieldThreshold]] = field(default_factory=dict)


def load_quality(cfg: PipelineConfig) -> QualityConfig:
    """The data-quality thresholds named by ``cfg.quality``."""
    return load_file(QualityConfig, cfg.base_dir / cfg.quality)


# --------------------------------------------------------------------------------------------
# Activation: exports of changed customers to downstream systems (conf/activation.yml)
# --------------------------------------------------------------------------------------------

ExportSource = Literal["customer_profile", "customer_360"]  # the gold tables a target can read
EXPORT_SOURCES: tuple[str, ...] = typing.get_args(ExportSource)
_EXPORT_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class ExportField:
    """One column of an export: an entry of a target's ``fields:``.

    In YAML a bare column name (``- email``) or a mapping
    ``{from: birth_date, to: BirthDate, format: yyyy-MM-dd}``.

    Attributes:
        from_: a column of the target's source table, or its source-ids column
            ``<system>_ids`` (YAML key ``from``).
        to: the column's name in the export; default: the same as ``from``.
        format: for a date or timestamp: a Spark datetime pattern (``yyyy-MM-dd``,
            ``yyyy-MM-dd'T'HH:mm:ss'Z'``); timestamps are formatted in UTC.
        join: for an array: its elements joined into one text with this separator.
    """

    from_: str
    to: str | None = None
    format: str | None = None
    join: str | None = None

    def __post_init__(self) -> None:
        if self.format is not None and self.join is not None:
            raise ValueError("give format (for a date or timestamp) or join (for an array), not both")

    @property
    def name(self) -> str:
        """The column's name in the export."""
        return self.to or self.from_


@dataclass(frozen=True)
class ExportTarget:
    """One downstream system that receives changed customers (an entry of ``targets:``).

    Attributes:
        name: the target (snake_case); its watermark and ``--target`` use it.
        format: the files written: ``csv`` (header, RFC 4180 quoting), ``jsonl``, ``parquet``.
        path: the folder that receives one sub-folder per export; relative to the
            lakehouse, or absolute (``/data/out``, ``s3a://bucket/crm``).
        fields: the columns sent, in order; ``customer_id`` must be one of them (under
            any name): deletes are sent by it.
        source: the gold table read: ``customer_profile`` or ``customer_360`` (the
            profile plus orders, revenue, tickets and product activity).
        source_ids: a system (``crm``) whose record ids each row carries, in column
            ``<system>_ids`` (an array: one customer may hold several records of that
            system), so that the system can update its own records in place. Deletes carry
            it too. Appended after ``fields`` unless they list it.
        include_deleted: send deletes (customers merged into another, gone, or erased).
        change_column: name of the column saying ``insert``, ``update``, ``delete`` or
            ``upsert`` (full exports).
        files: files per export (rows are spread evenly over them).
    """

    name: str
    format: Literal["csv", "jsonl", "parquet"]
    path: str
    fields: tuple[ExportField, ...]
    source: ExportSource = "customer_profile"
    source_ids: str | None = None
    include_deleted: bool = True
    change_column: str = "change"
    files: int = 1

    def __post_init__(self) -> None:
        if not _EXPORT_NAME.match(self.name):
            raise ValueError(f"name {self.name!r} must be snake_case: lower-case letters, digits and _")
        if not self.fields:
            raise ValueError("fields must list at least one column")
        if not any(f.from_ == "customer_id" for f in self.fields):
            raise ValueError("fields must include customer_id, the key deletes are sent by: add `- customer_id` "
                             "or `{from: customer_id, to: <your name>}`")
        if self.source_ids is not None and not _EXPORT_NAME.match(self.source_ids):
            raise ValueError(f"source_ids must name a system (crm, billing, ...), found {self.source_ids!r}")
        if self.files < 1:
            raise ValueError(f"files must be at least 1, found {self.files}")
        seen: dict[str, str] = {}
        for name in [self.change_column, *(f.name for f in self.columns)]:
            if name.lower() in seen:
                raise ValueError(f"column name {name!r} is used twice (as {seen[name.lower()]!r} too; names are "
                                 "compared ignoring case); rename one with `to:` or change_column")
            seen[name.lower()] = name

    @property
    def ids_column(self) -> str | None:
        """The source-ids column, ``<source_ids>_ids``, when the target has one."""
        return f"{self.source_ids}_ids" if self.source_ids else None

    @property
    def columns(self) -> tuple[ExportField, ...]:
        """The columns sent: ``fields``, plus the source-ids column when they do not list it."""
        ids = self.ids_column
        if ids is None or any(f.from_ == ids for f in self.fields):
            return self.fields
        return (*self.fields, ExportField(ids))


@dataclass(frozen=True)
class ActivationConfig:
    """Downstream exports (``conf/activation.yml``): one entry per target system.

    Attributes:
        targets: the targets, exported in this order.
        path: the file this configuration was read from.
    """

    targets: tuple[ExportTarget, ...]
    path: str = field(default="", init=False)

    def __post_init__(self) -> None:
        if not self.targets:
            raise ValueError("targets must list at least one target")
        for attribute in ("name", "path"):
            values = [getattr(t, attribute) for t in self.targets]
            twice = next((v for v in values if values.count(v) > 1), None)
            if twice is not None:
                raise ValueError(f"targets: two targets have {attribute} {twice!r}; each needs its own")

    def select(self, names: typing.Sequence[str] | None) -> tuple[ExportTarget, ...]:
        """The targets called ``names`` (all when None), in the file's order.

        Raises:
            ConfigError: a name is not a target.
        """
        if not names:
            return self.targets
        known = [t.name for t in self.targets]
        for name in names:
            if name not in known:
                raise ConfigError(self.path, "targets", f"no target named {name!r}; targets: {', '.join(known)}")
        return tuple(t for t in self.targets if t.name in names)

    def key_of(self, target: ExportTarget) -> str:
        """The dotted key of ``target`` in the file (``targets[2]``), for messages."""
        return f"targets[{self.targets.index(target)}]"


def load_activation(cfg: PipelineConfig) -> ActivationConfig:
    """The export targets named by ``cfg.activation`` (relative to the pipeline file).

    Raises:
        ConfigError: the file is missing or holds an unknown key, a wrong type or value.
    """
    path = cfg.base_dir / cfg.activation
    data = read_yaml(path) or {}
    if isinstance(data, dict) and isinstance(data.get("targets"), list):
        for target in data["targets"]:
            if isinstance(target, dict) and isinstance(target.get("fields"), list):
                target["fields"] = [_field_entry(entry) for entry in target["fields"]]
    try:
        activation = parse(ActivationConfig, data, file=path)
    except ConfigError as exc:  # speak of `from`, the YAML key, not of the attribute from_
        key = re.sub(r"\.from_$", ".from", exc.key)
        problem = exc.problem.replace("keys from_,", "keys from,").replace("one of: from_,", "one of: from,")
        raise ConfigError(exc.file, key, problem) from None
    object.__setattr__(activation, "path", str(path))
    return activation


def _field_entry(entry: Any) -> Any:
    """A ``fields:`` entry as :class:`ExportField` keys: a bare name is ``{from: name}``."""
    if isinstance(entry, str):
        return {"from_": entry}
    if isinstance(entry, dict):
        return {("from_" if key == "from" else key): value for key, value in entry.items()}
    return entry
