"""Personal data (PII): where it lives, the salt that keys its hashes, and the analysts' table.

``conf/pii.yml`` (:class:`PiiConfig`) lists the columns that hold personal data per table and
kind (email, phone, name, birth date, address, online ids, free text). The erasure
(:mod:`cdi_spark.activate.erase`) reads it to find bronze rows by their email columns; this
module reads it to build ``gold.customer_profile_analyst``: the golden profiles with emails
and phones hashed or masked and the other personal columns dropped or generalised, as the
file's ``analyst.treatments`` say.

The salt comes from an environment variable (``CDI_SPARK_PII_SALT`` unless ``salt_env`` says
otherwise), never from a file in the repository. Hashes are the hex SHA-256 of salt + value,
so whoever holds the salt can look a known address up (``sha2(concat(salt, email), 256)`` in
any SQL engine) and nobody else can read a value back or test guesses. The hashing runs in
a vectorised pandas UDF that holds the salt in its closure: a Spark literal would print the
salt in every query plan (``EXPLAIN``, the Spark UI, event logs).

Reads ``<analyst.source>`` (``gold.customer_profile``); writes ``<analyst.table>``
(``gold.customer_profile_analyst``), replaced as a whole each time (one version). It is a
materialised Delta table rather than a per-session view so that analysts can read it from
outside Spark (delta-rs, polars, a warehouse) without ever holding the salt; see
``docs/privacy.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from cdi_spark import tables
from cdi_spark.config import PipelineConfig, load_config, load_file
from cdi_spark.errors import ConfigError, MissingColumnError, SchemaError

if TYPE_CHECKING:  # Spark loads when a Column function is called: the command line imports this module
    from pyspark.sql import Column, DataFrame, SparkSession
    from pyspark.sql.types import DataType

log = logging.getLogger(__name__)

PII_FILE = "pii.yml"  # beside pipeline.yml
SALT_ENV = "CDI_SPARK_PII_SALT"
MIN_SALT_LENGTH = 16
Treatment = Literal["hash", "mask_email", "mask_phone", "year", "drop", "keep"]


@dataclass(frozen=True)
class PiiColumns:
    """The columns of one table that hold personal data, by kind.

    A dotted name is a field inside a column (``properties.email`` in JSON text,
    ``traits.email`` in a map), read as :func:`cdi_spark.standardize.mapping.source_field` reads it.
    """

    email: tuple[str, ...] = ()
    phone: tuple[str, ...] = ()
    name: tuple[str, ...] = ()
    birth_date: tuple[str, ...] = ()
    address: tuple[str, ...] = ()
    online_id: tuple[str, ...] = ()  # device ids, anonymous (cookie) ids
    text: tuple[str, ...] = ()  # free text or whole raw records

    def all(self) -> tuple[str, ...]:
        """Every column named, each once, in kind order."""
        return tuple(dict.fromkeys(c for f in fields(self) for c in getattr(self, f.name)))

    def columns(self) -> tuple[str, ...]:
        """The top-level columns holding personal data (``properties`` for ``properties.email``)."""
        return tuple(dict.fromkeys(c.split(".", 1)[0] for c in self.all()))

    def merged(self, other: PiiColumns) -> PiiColumns:
        """Both lists of each kind, each column once."""
        return PiiColumns(**{
            f.name: tuple(dict.fromkeys((*getattr(self, f.name), *getattr(other, f.name)))) for f in fields(self)
        })


@dataclass(frozen=True)
class AnalystConfig:
    """The analysts' table: ``source`` with its PII columns treated, written to ``table``.

    Attributes:
        source: the gold table to copy (``gold.customer_profile``).
        table: the table written (``gold.customer_profile_analyst``).
        treatments: column -> ``hash``, ``mask_email``, ``mask_phone``, ``year``, ``drop`` or
            ``keep``; columns not named are copied as they are.
    """

    source: str = tables.qualified_name(tables.GOLD, tables.CUSTOMER_PROFILE)
    table: str = tables.qualified_name(tables.GOLD, tables.CUSTOMER_PROFILE_ANALYST)
    treatments: dict[str, Treatment] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key in ("source", "table"):
            _split_name(getattr(self, key), f"analyst.{key}")
        if self.source == self.table:
            raise ValueError(f"analyst.table must differ from analyst.source ({self.source}): it would overwrite it")


@dataclass(frozen=True)
class PiiConfig:
    """``conf/pii.yml``: PII columns per table, the salt's variable, the analysts' table.

    Attributes:
        salt_env: the environment variable holding the salt.
        tables: ``<layer>.<table>`` (or ``<layer>.*``) -> its PII columns.
        analyst: the analysts' table; every PII column of its source needs a treatment.
        path: the file this configuration was read from.
    """

    salt_env: str = SALT_ENV
    tables: dict[str, PiiColumns] = field(default_factory=dict)
    analyst: AnalystConfig = field(default_factory=AnalystConfig)
    path: str = field(default="", init=False)

    def __post_init__(self) -> None:
        for key in self.tables:
            _split_name(key, f"tables.{key}", wildcard=True)
        listed = self.columns_of(*_split_name(self.analyst.source, "analyst.source")).columns()
        if self.analyst.source not in self.tables:
            raise ValueError(f"analyst.source {self.analyst.source} has no entry under tables: list its PII columns "
                             "there, so that none reaches the analysts' table untreated")
        untreated = [c for c in listed if c not in self.analyst.treatments]
        if untreated:
            raise ValueError(f"analyst.treatments: PII column(s) {', '.join(untreated)} of {self.analyst.source} have "
                             "no treatment; give each one of hash, mask_email, mask_phone, year, drop, keep")

    def columns_of(self, layer: str, name: str) -> PiiColumns:
        """The PII columns of ``<layer>.<name>``: its own entry and its layer's ``<layer>.*`` one."""
        out = PiiColumns()
        for key in (f"{layer}.*", f"{layer}.{name}"):
            if key in self.tables:
                out = out.merged(self.tables[key])
        return out


def _split_name(name: str, key: str, *, wildcard: bool = False) -> tuple[str, str]:
    layer, _, table = name.partition(".")
    if layer not in tables.LAYERS or not table or ("*" in table and not (wildcard and table == "*")):
        what = "<layer>.<table> or <layer>.*" if wildcard else "<layer>.<table>"
        raise ValueError(f"{key}: expected {what} with a layer among {', '.join(tables.LAYERS)}, found {name!r}")
    return layer, table


def pii_path(cfg: PipelineConfig) -> Path:
    """``pii.yml`` beside the pipeline configuration."""
    return cfg.base_dir / PII_FILE


def load_pii(path: str | Path) -> PiiConfig:
    """Read and validate ``conf/pii.yml``.

    Raises:
        ConfigError: the file is missing, or holds an unknown key, a wrong value, a PII column
            of the analysts' source without a treatment.
    """
    cfg = load_file(PiiConfig, path)
    object.__setattr__(cfg, "path", str(path))
    return cfg


def salt_from_env(pii: PiiConfig, environ: Mapping[str, str] | None = None) -> str:
    """The salt, from the environment variable ``pii.salt_env``.

    Raises:
        ConfigError: the variable is unset, or shorter than :data:`MIN_SALT_LENGTH` characters.
    """
    environ = os.environ if environ is None else environ
    salt = environ.get(pii.salt_env, "")
    if len(salt) < MIN_SALT_LENGTH:
        found = "not set" if not salt else f"only {len(salt)} characters long"
        raise ConfigError(
            "environment", pii.salt_env,
            f"{found}; set it to a secret of at least {MIN_SALT_LENGTH} characters, the same for every run and "
            f"kept out of the repository (e.g. `export {pii.salt_env}=$(openssl rand -hex 32)`, stored in your "
            "secret manager): personal data is hashed with it",
        )  # fmt: skip
    return salt


# --------------------------------------------------------------------------------------------
# Column functions
# --------------------------------------------------------------------------------------------


def hash_text(salt: str, text: str) -> str:
    """Hex SHA-256 of ``salt + text`` (UTF-8): what :func:`salted_hash` computes in Spark."""
    return hashlib.sha256((salt + text).encode("utf-8")).hexdigest()


def salted_hash(salt: str, *, array: bool = False) -> Callable[[Column], Column]:
    """A Column function: hex SHA-256 of salt + value; null stays null.

    Args:
        salt: the secret (:func:`salt_from_env`). It stays in the UDF's closure, out of the plan.
        array: the column is ``array<string>``: hash each element.

    Example:
        >>> df.withColumn("email", salted_hash(salt)(F.col("email")))  # doctest: +SKIP
    """
    from pyspark.sql.types import ArrayType, StringType

    key = salt.encode("utf-8")

    def one(value: str) -> str:
        return hashlib.sha256(key + value.encode("utf-8")).hexdigest()

    def hash_each(batches):
        for values in batches:
            yield values.map(lambda items: [None if v is None else one(v) for v in items], na_action="ignore")

    def hash_one(batches):
        for values in batches:
            yield values.map(one, na_action="ignore")

    if array:
        return _iterator_udf(hash_each, ArrayType(StringType()))
    return _iterator_udf(hash_one, StringType())


def _iterator_udf(fn: Callable, return_type: DataType) -> Callable[[Column], Column]:
    """A pandas UDF of the ``Iterator[pd.Series] -> Iterator[pd.Series]`` form.

    The type hints that tell Spark the form are set here, not written on ``fn``, so that
    pandas loads when a UDF is made rather than when this module is imported.
    """
    import pandas as pd
    from pyspark.sql.functions import pandas_udf

    fn.__annotations__ = {"batches": Iterator[pd.Series], "return": Iterator[pd.Series]}
    return pandas_udf(fn, return_type)


def mask_email(col: Column) -> Column:
    """First letter and domain of an address: ``jane.doe@example.com`` -> ``j***@example.com``.

    Text without ``@`` becomes ``***``; null stays null.
    """
    from pyspark.sql import functions as F

    local, domain = F.substring_index(col, "@", 1), F.substring_index(col, "@", -1)
    masked = F.concat(F.substring(local, 1, 1), F.lit("***@"), domain)
    return F.when(col.contains("@"), masked).when(col.isNotNull(), F.lit("***"))


def mask_phone(col: Column) -> Column:
    """A leading ``+``, the first two and last two digits, a star for each other digit:
    ``+447911123467`` -> ``+44********67``. Four digits or fewer are all starred."""
    from pyspark.sql import functions as F

    digits = F.regexp_replace(col, r"[^0-9]", "")
    n = F.length(digits)
    plus = F.when(F.trim(col).startswith("+"), F.lit("+")).otherwise(F.lit(""))

    def stars(count):
        return F.array_join(F.array_repeat(F.lit("*"), count), "")

    shown = F.concat(plus, F.substring(digits, 1, 2), stars(n - 4), F.substring(digits, -2, 2))
    return F.when(n > 4, shown).when(col.isNotNull(), F.concat(plus, stars(n)))


def _each(fn: Callable[[Column], Column], dtype: DataType) -> Callable[[Column], Column]:
    from pyspark.sql import functions as F
    from pyspark.sql.types import ArrayType

    return (lambda c: F.transform(c, fn)) if isinstance(dtype, ArrayType) else fn


def _is_text(dtype: DataType) -> bool:
    from pyspark.sql.types import ArrayType, StringType

    return isinstance(dtype, StringType) or (isinstance(dtype, ArrayType) and isinstance(dtype.elementType, StringType))


def protect(df: DataFrame, treatments: Mapping[str, Treatment], salt: str) -> DataFrame:
    """``df`` with each named column hashed, masked, generalised, dropped or kept.

    Args:
        df: any DataFrame.
        treatments: column -> treatment (see :class:`AnalystConfig`); other columns are kept.
        salt: the key of ``hash``.

    Raises:
        MissingColumnError: a named column is not in ``df``.
        SchemaError: a treatment that does not fit the column's type (``mask_email`` of a
            number, ``year`` of text).
    """
    from pyspark.sql import functions as F
    from pyspark.sql.types import ArrayType, DateType, TimestampType

    types = {f.name: f.dataType for f in df.schema.fields}
    missing = [c for c in treatments if c not in types]
    if missing:
        raise MissingColumnError("analyst table: treatments", missing, df.columns)
    out = []
    for name, dtype in types.items():
        how, col = treatments.get(name, "keep"), F.col(f"`{name}`")
        if how in ("hash", "mask_email", "mask_phone") and not _is_text(dtype):
            raise SchemaError(f"analyst table: {how} needs a string or array<string> column; {name} is "
                              f"{dtype.simpleString()}")
        if how == "year" and not isinstance(dtype, DateType | TimestampType):
            raise SchemaError(f"analyst table: year needs a date or timestamp column; {name} is {dtype.simpleString()}")
        if how == "keep":
            out.append(col)
        elif how == "hash":
            out.append(salted_hash(salt, array=isinstance(dtype, ArrayType))(col).alias(name))
        elif how == "mask_email":
            out.append(_each(mask_email, dtype)(col).alias(name))
        elif how == "mask_phone":
            out.append(_each(mask_phone, dtype)(col).alias(name))
        elif how == "year":
            stem = name.removesuffix("_date")
            out.append(F.year(col).alias(f"{stem}_year"))
    return df.select(*out)


# --------------------------------------------------------------------------------------------
# The analysts' table
# --------------------------------------------------------------------------------------------


def _path(cfg: PipelineConfig, qualified: str) -> str:
    layer, name = qualified.split(".", 1)
    return tables.table_path(cfg.lakehouse, layer, name)


def publish_analyst_table(
    spark: SparkSession, cfg: PipelineConfig, pii: PiiConfig, *, salt: str, run_id: str | None = None
) -> int:
    """Write ``pii.analyst.table`` from ``pii.analyst.source``, PII treated; one version.

    The table is replaced as a whole (same rows as the source, soft-deleted ones included),
    so it never holds a customer the source no longer has. Analysts read it like any gold
    table; the salt is not stored anywhere in it.

    Returns:
        The version written.

    Raises:
        SchemaError: the source table does not exist yet, or a treatment does not fit.
    """
    from cdi_spark import delta_io

    source, target = _path(cfg, pii.analyst.source), _path(cfg, pii.analyst.table)
    if not delta_io.exists(spark, source):
        raise SchemaError(f"analyst table: no {pii.analyst.source} at {source} yet; run the golden stage first")
    rows = protect(delta_io.read(spark, source), pii.analyst.treatments, salt)
    version = delta_io.overwrite_partition(spark, rows, target, where="true", user_metadata=run_id)
    layer, name = pii.analyst.table.split(".", 1)
    delta_io.register_table(spark, layer, name, target)
    n = int(delta_io.last_commit(spark, target)["metrics"].get("numOutputRows", 0))
    log.info("analyst table %s: %d rows at version %d (%d columns treated)", pii.analyst.table, n, version,
             len(pii.analyst.treatments))
    return version


def refresh_analyst_table(spark: SparkSession, cfg: PipelineConfig, *, run_id: str | None = None) -> int | None:
    """The pipeline's hook after the golden stage: rebuild the analysts' table when it can.

    Skips (with a warning, returning None) when ``pii.yml`` is absent or the salt variable is
    unset, so that a run without the secret still succeeds; ``cdi-spark analyst-table``
    refuses instead.
    """
    path = pii_path(cfg)
    if not path.is_file():
        log.warning("analyst table: no %s; not built", path)
        return None
    pii = load_pii(path)
    try:
        salt = salt_from_env(pii)
    except ConfigError as exc:
        log.warning("analyst table: not rebuilt: %s", exc)
        return None
    return publish_analyst_table(spark, cfg, pii, salt=salt, run_id=run_id)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``cdi-spark analyst-table``."""
    parser.add_argument("--config", default="conf/pipeline.yml", help="pipeline YAML (default: %(default)s)")
    parser.add_argument("--lakehouse", help="override the config's lakehouse folder")
    parser.add_argument("--profile", help="override the config's Spark profile (local, cluster)")
    parser.add_argument("--pii", help=f"PII configuration (default: {PII_FILE} beside the pipeline YAML)")


def cmd_analyst_table(args: argparse.Namespace) -> int:
    """Write gold.customer_profile_analyst: the golden profiles with emails and phones hashed or
    masked and the other personal columns dropped or generalised, as conf/pii.yml says. The
    salt is read from the environment variable the file names (CDI_SPARK_PII_SALT)."""
    from cdi_spark.session import build_session

    cfg = load_config(args.config, lakehouse=args.lakehouse, profile=args.profile)
    pii = load_pii(args.pii or pii_path(cfg))
    salt = salt_from_env(pii)  # before Spark starts
    spark = build_session(cfg.spark, app_name="cdi-spark analyst-table")
    version = publish_analyst_table(spark, cfg, pii, salt=salt)
    print(f"{pii.analyst.table} written (version {version}) at {_path(cfg, pii.analyst.table)}")
    return 0
