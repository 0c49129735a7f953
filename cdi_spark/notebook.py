"""Helpers for the notebooks in ``notebooks/``: a session on a lakehouse, and labelling pairs.

The notebooks build their session here, with the project's own
:func:`cdi_spark.session.build_session`, so a notebook holds no set-up code of its own:

>>> spark, cfg = lakehouse_session("../conf/pipeline.yml", "../lakehouse")
>>> spark.table("gold.customer_profile").count()

Labelling in a notebook (:func:`label_in_notebook`) shows candidate pairs with the two
records' fields side by side and collects yes / no answers: with buttons when ``ipywidgets``
is installed, with plain ``input()`` otherwise (the same console labeller as ``cdi-spark
label``), or, for headless runs on demo data, from the generator's ground truth.

Reads: the lakehouse's tables (registered in the session's catalog as ``<layer>.<table>``).
Writes: nothing (saving labels is :func:`cdi_spark.resolve.labels.save_labels`).
"""

from __future__ import annotations

import html
import importlib.util
import logging
import os
import tempfile
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from cdi_spark import delta_io
from cdi_spark.config import PipelineConfig, load_config
from cdi_spark.logs import setup_logging
from cdi_spark.resolve.labels import label_interactively, truth_labels
from cdi_spark.session import build_session

log = logging.getLogger(__name__)

# The catalog of a notebook's session is in memory; its databases still get folders, which
# belong in a scratch folder rather than beside the notebook.
WAREHOUSE = os.path.join(tempfile.gettempdir(), "cdi-spark-notebook-warehouse")


def lakehouse_session(
    config: str,
    lakehouse: str | None = None,
    *,
    raw_dir: str | None = None,
    conf: dict[str, str] | None = None,
    app_name: str = "cdi-spark notebook",
    log_level: str = "INFO",
) -> tuple[SparkSession, PipelineConfig]:
    """Load the pipeline configuration, build the session and register the lakehouse's tables.

    Args:
        config: the pipeline YAML (``conf/pipeline.yml``).
        lakehouse: the lakehouse folder; default: the configuration's ``lakehouse``.
        raw_dir: the raw exports folder; default: the configuration's ``raw_dir``.
        conf: Spark properties that win over the profile's (``{"spark.driver.memory": "2g"}``);
            like the profile's, they apply only to a session this process starts.
        app_name: the Spark application name.
        log_level: level of cdi-spark's log lines in the notebook's output.

    Returns:
        ``(spark, cfg)``: the session, with every table of the lakehouse registered as
        ``<layer>.<table>``, and the configuration (local ``lakehouse`` and ``raw_dir`` made
        absolute).

    Raises:
        ConfigError: the configuration is invalid.
        SessionError: the Delta or Zingg jars are missing (a session was started before
            this call without them, or ``make setup`` has not run).
    """
    setup_logging(log_level)
    cfg = load_config(config, lakehouse=lakehouse, raw_dir=raw_dir)
    # Absolute, so that what the notebook prints does not depend on the folder it runs in.
    cfg = load_config(config, lakehouse=_absolute(cfg.lakehouse), raw_dir=_absolute(cfg.raw_dir))
    extra = {"spark.sql.warehouse.dir": WAREHOUSE, **(conf or {})}
    spark = build_session(cfg.spark, app_name=app_name, extra_conf=extra)
    names = delta_io.register_lakehouse(spark, cfg.lakehouse)
    log.info("notebook: %d tables of %s registered", len(names), cfg.lakehouse)
    return spark, cfg


def _absolute(path: str) -> str:
    """A local relative path made absolute; URIs (``s3a://...``) and absolute paths as they are."""
    return path if "://" in path else os.path.abspath(path)


def spark_conf_from_env(variable: str = "CDI_SPARK_CONF") -> dict[str, str]:
    """Spark properties from an environment variable: ``key=value`` pairs separated by commas.

    ``CDI_SPARK_CONF="spark.driver.memory=2g,spark.sql.shuffle.partitions=2"`` keeps the Spark
    of a notebook executed by the tests small.

    Raises:
        ValueError: a pair without ``=``, naming the variable and the pair.
    """
    text = os.environ.get(variable, "").strip()
    pairs = [p.strip() for p in text.split(",") if p.strip()]
    bad = [p for p in pairs if "=" not in p]
    if bad:
        raise ValueError(f"{variable}: expected key=value pairs separated by commas, found {bad[0]!r}")
    return {k.strip(): v.strip() for k, v in (p.split("=", 1) for p in pairs)}


# --------------------------------------------------------------------------------------------
# Labelling
# --------------------------------------------------------------------------------------------


@dataclass
class Labelling:
    """Pairs being labelled and the answers given so far.

    Attributes:
        fields: the fields shown, in order.
        pairs: ``(left_key, right_key, left values, right values)`` in the order asked.
        answers: ``(left_key, right_key, is_match)`` for each pair answered yes or no.
        position: the index of the pair being asked (``len(pairs)`` when done).
        skipped: pairs answered "unsure".
    """

    fields: list[str]
    pairs: list[tuple[str, str, tuple, tuple]]
    answers: list[tuple[str, str, bool]] = field(default_factory=list)
    position: int = 0
    skipped: int = 0

    @property
    def done(self) -> bool:
        """Every pair has been answered (or the labeller stopped)."""
        return self.position >= len(self.pairs)

    def answer(self, is_match: bool | None) -> None:
        """Record the answer to the current pair (None: unsure, skipped) and move on."""
        if self.done:
            return
        left_key, right_key, _, _ = self.pairs[self.position]
        if is_match is None:
            self.skipped += 1
        else:
            self.answers.append((left_key, right_key, bool(is_match)))
        self.position += 1

    def stop(self) -> None:
        """Ask no more pairs; the answers given stay."""
        self.position = len(self.pairs)

    def status(self) -> str:
        """``pair 3 of 40 · 1 match, 1 non-match, 0 unsure`` (``done · ...`` at the end)."""
        matches = sum(1 for a in self.answers if a[2])
        non_matches = len(self.answers) - matches
        where = "done" if self.done else f"pair {self.position + 1} of {len(self.pairs)}"
        return (f"{where} · {matches} match{'' if matches == 1 else 'es'}, "
                f"{non_matches} non-match{'' if non_matches == 1 else 'es'}, {self.skipped} unsure")

    def html(self, index: int | None = None) -> str:
        """The pair at ``index`` (default: the current one) as an HTML table, fields side by
        side; a row whose two values are equal is marked ``=``."""
        index = self.position if index is None else index
        if index >= len(self.pairs):
            return f"<p>{html.escape(self.status())}</p>"
        left_key, right_key, left, right = self.pairs[index]

        def cell(value: object, tag: str = "td") -> str:
            return f"<{tag}>{html.escape('' if value is None else str(value))}</{tag}>"

        rows = [
            f"<tr>{cell('=' if a not in (None, '') and a == b else '')}{cell(name, 'th')}{cell(a)}{cell(b)}</tr>"
            for name, a, b in zip(self.fields, left, right, strict=True)
        ]
        head = f"<tr>{cell('')}{cell('record', 'th')}{cell(left_key, 'th')}{cell(right_key, 'th')}</tr>"
        return f"<table>{head}{''.join(rows)}</table>"


def collect_pairs(pairs: DataFrame, records: DataFrame, fields: list[str], limit: int) -> Labelling:
    """The first ``limit`` pairs with both records' ``fields`` as text, for a person to see
    (collected to the driver: keep ``limit`` small). Pairs naming a record that is not in
    ``records`` are left out."""
    keys = pairs.select(F.col("left_key").cast("string"), F.col("right_key").cast("string")).limit(limit).collect()
    wanted = sorted({k for row in keys for k in row})
    found = (
        records.filter(F.col("record_key").isin(wanted))
        .select("record_key", *(F.col(f).cast("string") for f in fields))
        .collect()
    )
    values = {r[0]: tuple(r[1:]) for r in found}
    shown = [(a, b, values[a], values[b]) for a, b in keys if a in values and b in values]
    return Labelling(list(fields), shown)


def widgets_available() -> bool:
    """Whether ``ipywidgets`` is installed (buttons for labelling)."""
    return importlib.util.find_spec("ipywidgets") is not None


def label_in_notebook(
    pairs: DataFrame,
    records: DataFrame,
    fields: list[str],
    *,
    limit: int = 40,
    truth: DataFrame | None = None,
    mode: str = "auto",
) -> Labelling:
    """Label candidate pairs in a notebook, the two records' fields side by side.

    Args:
        pairs: ``left_key, right_key`` in the order to ask
            (:func:`cdi_spark.resolve.stage.pairs_for_labelling`).
        records: ``record_key`` and ``fields`` (the silver records).
        fields: the fields to show.
        limit: ask about at most this many pairs.
        truth: ``record_key, entity_id``: answer from it instead of asking (mode ``truth``).
        mode: ``widgets`` (buttons; answers arrive while the cell after it waits: run it once
            you have answered enough), ``input`` (one ``input()`` prompt per pair, blocking),
            ``truth`` (no person: headless runs on demo data), or ``auto``: ``truth`` when
            ``truth`` is given, else ``widgets`` when ``ipywidgets`` is installed, else ``input``.

    Returns:
        The :class:`Labelling`; its ``answers`` are what to save.

    Raises:
        ValueError: an unknown mode, or mode ``truth`` without ``truth``.
    """
    if mode == "auto":
        mode = "truth" if truth is not None else "widgets" if widgets_available() else "input"
    if mode not in ("widgets", "input", "truth"):
        raise ValueError(f"label_in_notebook: mode must be auto, widgets, input or truth, found {mode!r}")
    if mode == "truth" and truth is None:
        raise ValueError("label_in_notebook: mode 'truth' needs truth (record_key, entity_id)")
    if mode == "input":  # the console labeller, prompting with input() in the notebook
        labelling = Labelling(list(fields), [])
        labelling.answers = label_interactively(pairs, records, fields, limit=limit)
        log.info("labelling (input): %d pairs answered yes or no", len(labelling.answers))
        return labelling
    labelling = collect_pairs(pairs, records, fields, limit)
    if mode == "truth":
        shown = [p[:2] for p in labelling.pairs]
        asked = pairs.sparkSession.createDataFrame(shown, "left_key string, right_key string")
        known = {(r[0], r[1]): r[2] for r in truth_labels(asked, truth).collect()}  # the pairs shown: small
        for left_key, right_key, _, _ in labelling.pairs:
            labelling.answer(known.get((left_key, right_key)))
    else:
        show_widgets(labelling)
    log.info("labelling (%s): %s", mode, labelling.status())
    return labelling


def show_widgets(labelling: Labelling):
    """Show ``labelling``'s current pair with buttons (same person, different, unsure, stop)
    that answer it and move on; returns the widget. Needs ``ipywidgets``."""
    import ipywidgets as widgets
    from IPython.display import display

    table, status = widgets.HTML(labelling.html()), widgets.Label(labelling.status())
    buttons = {text: widgets.Button(description=text) for text in ("same person", "different", "unsure", "stop")}
    answers = {"same person": True, "different": False, "unsure": None}

    def click(button) -> None:
        if button.description == "stop":
            labelling.stop()
        else:
            labelling.answer(answers[button.description])
        table.value, status.value = labelling.html(), labelling.status()
        for b in buttons.values():
            b.disabled = labelling.done

    for b in buttons.values():
        b.on_click(click)
    box = widgets.VBox([status, table, widgets.HBox(list(buttons.values()))])
    display(box)
    return box
