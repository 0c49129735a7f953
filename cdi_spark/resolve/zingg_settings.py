"""What a Zingg model is made of: match fields, training settings, and a reference to a stored model.

Plain frozen dataclasses, checked on construction, with no Spark or JVM in sight; the
functions that use them are in :mod:`cdi_spark.resolve.zingg`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

KEY = "record_key"
LABEL_COLUMNS = ("left_key", "right_key", "is_match")
RESERVED_PREFIX = "z_"  # Zingg's prefix for its own columns and the right-hand record of a pair

# Zingg 0.7.0's match types (zingg.common.client.MatchTypes).
MATCH_TYPES = frozenset(
    {
        "FUZZY",
        "EXACT",
        "PINCODE",
        "EMAIL",
        "TEXT",
        "NUMERIC",
        "NUMERIC_WITH_UNITS",
        "NULL_OR_BLANK",
        "ONLY_ALPHABETS_EXACT",
        "ONLY_ALPHABETS_FUZZY",
        "DONT_USE",
    }
)


@dataclass(frozen=True)
class ZinggField:
    """A match field and its Zingg match type(s).

    Attributes:
        name: a string column of the records.
        match_type: one of :data:`MATCH_TYPES`, or several joined by commas
            (``"FUZZY,NULL_OR_BLANK"``).
    """

    name: str
    match_type: str

    def __post_init__(self) -> None:
        if not self.name or self.name == KEY or self.name.startswith(RESERVED_PREFIX) or self.name in LABEL_COLUMNS:
            raise ValueError(
                f"ZinggField name {self.name!r} is not usable: it must be non-empty and not be "
                f"{KEY!r}, {', '.join(LABEL_COLUMNS)} or start with {RESERVED_PREFIX!r} (Zingg's own columns)"
            )
        unknown = [t for t in self.match_types if t not in MATCH_TYPES]
        if unknown or not self.match_types:
            raise ValueError(
                f"ZinggField {self.name!r}: unknown match type(s) {unknown or [self.match_type]}; "
                f"expected one or more of {', '.join(sorted(MATCH_TYPES))}, joined by commas"
            )

    @property
    def match_types(self) -> tuple[str, ...]:
        """The match types, upper-cased, in the order given."""
        return tuple(t.strip().upper() for t in self.match_type.split(",") if t.strip())


@dataclass(frozen=True)
class ZinggSettings:
    """How to train a Zingg model (the lead moves these into ``conf/matching.yml``).

    Attributes:
        fields: the match fields, in a fixed order (features are built in this order).
        model_id: Zingg's model id: the folder under the model directory.
        label_sample_size: fraction of records Zingg's findTrainingData would sample for
            labelling (Zingg's ``labelDataSampleSize``); kept with the model for labelling.
        block_sample_fraction: fraction of the records the blocking tree learns from
            (Zingg uses 0.25, unseeded).
        block_sample_max_records: cap on that sample: Zingg collects it to the driver.
        block_size: Zingg's cap on the size of a learnt block (``blockSize``).
        seed: seed of the blocking sample.
    """

    fields: tuple[ZinggField, ...]
    model_id: str = "cdi"
    label_sample_size: float = 0.01
    block_sample_fraction: float = 0.25
    block_sample_max_records: int = 50_000
    block_size: int = 100
    seed: int = 42

    def __post_init__(self) -> None:
        names = [f.name for f in self.fields]
        if not [f for f in self.fields if "DONT_USE" not in f.match_types]:
            raise ValueError("ZinggSettings.fields needs at least one field that is not DONT_USE")
        if len(set(names)) != len(names):
            raise ValueError(f"ZinggSettings.fields names must be unique, found {names}")
        if not self.model_id or "/" in self.model_id:
            raise ValueError(f"ZinggSettings.model_id must be a plain folder name, found {self.model_id!r}")
        if not 0 < self.block_sample_fraction <= 1 or not 0 < self.label_sample_size <= 1:
            raise ValueError("ZinggSettings block_sample_fraction and label_sample_size must be in (0, 1]")
        if self.block_sample_max_records < 100 or self.block_size < 8:
            raise ValueError("ZinggSettings block_sample_max_records must be >= 100 and block_size >= 8")


@dataclass(frozen=True)
class ModelRef:
    """A stored model: ``<model_dir>/<model_id>/`` and the fields it was trained on."""

    model_dir: str
    model_id: str
    fields: tuple[ZinggField, ...] = field(default=())

    @property
    def path(self) -> str:
        """The model's folder."""
        return f"{self.model_dir.rstrip('/')}/{self.model_id}"
