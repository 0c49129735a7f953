"""The run report's charts, drawn with matplotlib from the figures of :mod:`cdi_spark.report.figures`.

Each function takes one section of :func:`cdi_spark.report.figures.gather`'s dict and
returns PNG bytes; it draws only numbers found in that section. Figures are made with
``matplotlib.figure.Figure`` and rendered by the Agg backend, never through ``pyplot``: no
display is needed and no global plotting state (a notebook's backend) is touched.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator, PercentFormatter

DPI = 100
GREY = "#9aa0a6"
QUARANTINE_RED = "#d93025"
LABEL_ROOM = 0.024  # the flow chart's least vertical step between blocks, so their labels do not overlap


def png(fig: Figure) -> bytes:
    """The figure as PNG bytes (Agg)."""
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    return buffer.getvalue()


def _colors(names: Sequence[str]) -> dict[str, Any]:
    cmap = matplotlib.colormaps["tab20" if len(names) > 10 else "tab10"]
    return {name: cmap(i % cmap.N) for i, name in enumerate(names)}


def _bar_labels(ax, bars, values: Sequence[float], fmt: str = "{:,}") -> None:
    ax.bar_label(bars, labels=[fmt.format(v) for v in values], padding=3, fontsize=8)


# --------------------------------------------------------------------------------------------
# Flow: a Sankey-like picture of rows per stage and source
# --------------------------------------------------------------------------------------------


def _band(ax, x0: float, x1: float, left: tuple[float, float], right: tuple[float, float], color) -> None:
    """A band from the span ``left`` at ``x0`` to the span ``right`` at ``x1`` (smooth S-curve)."""
    xs = np.linspace(x0, x1, 50)
    t = (xs - x0) / (x1 - x0)
    s = t * t * (3 - 2 * t)  # smoothstep
    ax.fill_between(xs, left[0] + (right[0] - left[0]) * s, left[1] + (right[1] - left[1]) * s,
                    color=color, alpha=0.35, linewidth=0)  # fmt: skip


class _Column:
    """Blocks stacked from the top of one column; heights proportional to rows (a minimum
    height keeps a tiny block visible). Labels go right of the blocks, or left (``left``)."""

    WIDTH = 0.14

    def __init__(self, x: float, title: str, scale: float, gap: float, *, left: bool = False):
        self.x, self.title, self.scale, self.gap, self.left = x, title, scale, gap, left
        self.top = 1.0
        self.spans: dict[str, tuple[float, float]] = {}

    def height(self, value: int) -> float:
        return max(value * self.scale, 0.004)

    def add(self, ax, key: str, value: int, color, label: str = "") -> None:
        bottom = self.top - self.height(value)
        ax.add_patch(Rectangle((self.x, bottom), self.WIDTH, self.top - bottom, color=color, linewidth=0))
        text = f"{label}  {value:,}" if label else f"{value:,}"
        x, ha = (self.x - 0.03, "right") if self.left else (self.x + self.WIDTH + 0.03, "left")
        ax.text(x, (bottom + self.top) / 2, text, va="center", ha=ha, fontsize=7)
        self.spans[key] = (bottom, self.top)
        self.top = min(bottom - self.gap, self.top - LABEL_ROOM)

    def link(self, ax, key: str, target: _Column, target_key: str, height: float, color, offset: float = 0.0) -> None:
        """A band from ``offset`` below the top of this block to the whole of the target block."""
        if key in self.spans and target_key in target.spans:
            top = self.spans[key][1] - offset
            _band(ax, self.x + self.WIDTH, target.x, (top - height, top), target.spans[target_key], color)


def flow_chart(flow: dict[str, Any]) -> bytes:
    """Rows of the run per source: read -> bronze + quarantined -> silver; then the lakehouse
    after the run: records in clusters -> clusters -> customers."""
    this, after = flow["this_run"], flow["after_run"]
    read, bronze, quarantined, silver = (this[k] or {} for k in ("read", "bronze", "quarantined", "silver"))
    sources = sorted({*read, *silver})
    colors = _colors(sources)
    blocks = max(1, len(read) + sum(1 for v in quarantined.values() if v), len(silver))
    gap = 0.2 / blocks
    biggest = max([sum(read.values()), sum(bronze.values()) + sum(quarantined.values()), sum(silver.values()),
                   *(v or 0 for v in after.values()), 1])  # fmt: skip
    fig = Figure(figsize=(12, max(4.5, 0.3 * blocks + 2.5)))
    ax = fig.add_subplot()
    c_read, c_bronze, c_silver, c_records, c_clusters, c_customers = columns = [
        _Column(x, title, 0.75 / biggest, gap, left=(x == 1.3)) for x, title in (
            (1.3, "read"), (2.4, "bronze\n+ quarantined"), (3.5, "silver\nrecords"),
            (4.9, "records in\nclusters"), (5.9, "clusters"), (6.9, "customers"))]  # fmt: skip
    for source in sources:
        if read.get(source):
            c_read.add(ax, source, read[source], colors[source], source)
        if bronze.get(source):
            c_bronze.add(ax, source, bronze[source], colors[source])
        if silver.get(source):
            c_silver.add(ax, source, silver[source], colors[source], source)
    c_bronze.top -= 2 * gap  # quarantined rows below bronze, apart
    for source in sources:
        if quarantined.get(source):
            c_bronze.add(ax, f"q:{source}", quarantined[source], QUARANTINE_RED, f"{source} (quarantined)")
    for source in sources:
        kept = c_read.height(bronze[source]) if bronze.get(source) else 0.0
        c_read.link(ax, source, c_bronze, source, kept, colors[source])
        if quarantined.get(source):
            c_read.link(ax, source, c_bronze, f"q:{source}", c_read.height(quarantined[source]), QUARANTINE_RED,
                        offset=kept)  # fmt: skip
        if silver.get(source):
            c_bronze.link(ax, source, c_silver, source, c_bronze.height(silver[source]), colors[source])
    chain = [(c_records, "records"), (c_clusters, "clusters"), (c_customers, "customers")]
    for column, key in chain:
        if after[key] is not None:
            column.add(ax, key, after[key], GREY)
    for (a, key_a), (b, key_b) in zip(chain, chain[1:], strict=False):
        if key_a in a.spans:
            a.link(ax, key_a, b, key_b, a.spans[key_a][1] - a.spans[key_a][0], GREY)
    bottom = min(0.0, *(c.top for c in columns)) - 0.06
    ax.axvline(4.55, color=GREY, linestyle="--", linewidth=0.8)
    for column in columns:
        ax.text(column.x + _Column.WIDTH / 2, 1.03, column.title, fontsize=9, fontweight="bold", ha="center",
                va="bottom")  # fmt: skip
    ax.text(1.3, 1.16, "this run's rows", fontsize=9, color="#555")
    ax.text(4.9, 1.16, "the lakehouse after the run", fontsize=9, color="#555")
    if flow["not_run"]:
        ax.text(1.3, bottom + 0.02, "not run: " + ", ".join(flow["not_run"]), fontsize=8, color="#555")
    ax.set_xlim(0.0, 7.5)
    ax.set_ylim(bottom, 1.2)
    ax.axis("off")
    return png(fig)


# --------------------------------------------------------------------------------------------
# Data quality, quarantine, matching, id events, timings
# --------------------------------------------------------------------------------------------


def _rate(field: dict[str, Any] | None, rate: str) -> float:
    """The rate, or NaN (a blank cell): field not measured, or no filled value to be invalid."""
    if field is None or (rate == "invalid_rate" and not field["filled"]):
        return math.nan
    return field[rate]


def quality_chart(section: dict[str, Any]) -> bytes:
    """Heatmaps of fill rate and invalid rate per source (rows) and field (columns)."""
    sources = sorted(section["sources"])
    fields = sorted({f for s in sources for f in section["sources"][s]})
    fig = Figure(figsize=(max(8, 1.1 * len(fields) + 3), 1.2 + 0.8 * len(sources)))
    panels = (("fill_rate", "fill rate", "RdYlGn"),
              ("invalid_rate", "invalid rate (of filled values; blank: none filled)", "RdYlGn_r"))  # fmt: skip
    for i, (rate, title, cmap) in enumerate(panels):
        ax = fig.add_subplot(2, 1, i + 1)
        grid = np.array([[_rate(section["sources"][s].get(f), rate) for f in fields] for s in sources], dtype=float)
        image = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto")
        for (r, c), value in np.ndenumerate(grid):
            if not math.isnan(value):
                ax.text(c, r, f"{value:.0%}", ha="center", va="center", fontsize=7)
        ax.set_xticks(range(len(fields)), fields, rotation=30, ha="right", fontsize=8)
        ax.set_yticks(range(len(sources)), sources, fontsize=8)
        ax.set_title(title, fontsize=10)
        fig.colorbar(image, ax=ax, fraction=0.025, format=PercentFormatter(1.0))
    fig.tight_layout()
    return png(fig)


def quarantine_chart(section: dict[str, Any]) -> bytes:
    """Quarantined rows per source, stacked by reason."""
    rows = section["rows"]
    sources = sorted(rows)
    reasons = sorted({r for s in sources for r in rows[s]})
    colors = _colors(reasons)
    fig = Figure(figsize=(9, 1.2 + 0.45 * max(1, len(sources))))
    ax = fig.add_subplot()
    left = np.zeros(len(sources))
    for reason in reasons:
        values = np.array([rows[s].get(reason, 0) for s in sources])
        ax.barh(sources, values, left=left, label=reason, color=colors[reason])
        left += values
    for y, total in enumerate(left):
        ax.text(total, y, f"  {int(total):,}", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("quarantined rows")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize=8, title="reason", title_fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return png(fig)


def matching_chart(section: dict[str, Any]) -> bytes:
    """Edges per rule, model score histogram, cluster size distribution (log scale)."""
    fig = Figure(figsize=(13, 4))
    ax_rules, ax_scores, ax_sizes = fig.subplots(1, 3)
    rules = sorted(section["edges_per_rule"])
    totals = [section["edges_per_rule"][r]["total"] for r in rules]
    mine = [section["edges_per_rule"][r]["this_run"] for r in rules]
    bars = ax_rules.barh(rules, totals, color="#8ab4f8", label="in silver.match_edges")
    ax_rules.barh(rules, mine, color="#1a73e8", label="written by this run")
    _bar_labels(ax_rules, bars, totals)
    ax_rules.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_rules.invert_yaxis()
    ax_rules.set_title("edges per rule", fontsize=10)
    ax_rules.legend(fontsize=7, loc="lower right")
    histogram = section["score_histogram"]
    if histogram:
        edges = histogram["bins"]
        ax_scores.bar(edges[:-1], histogram["counts"], width=np.diff(edges), align="edge", color="#1a73e8",
                      edgecolor="white")  # fmt: skip
        ax_scores.set_xlim(0, 1)
    ax_scores.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax_scores.set_title("model edge scores", fontsize=10)
    ax_scores.set_xlabel("score")
    ax_scores.set_ylabel("edges")
    sizes = [p["size"] for p in section["cluster_sizes"]]
    counts = [p["clusters"] for p in section["cluster_sizes"]]
    positions = range(len(sizes))
    bars = ax_sizes.bar(positions, counts, color="#34a853")
    if counts:
        ax_sizes.set_yscale("log")
        ax_sizes.set_ylim(0.8, max(counts) * 3)
        _bar_labels(ax_sizes, bars, counts)
    step = max(1, math.ceil(len(sizes) / 25))  # at most 25 tick labels
    ax_sizes.set_xticks(list(positions)[::step], [str(s) for s in sizes][::step], fontsize=8)
    ax_sizes.set_title("cluster sizes (log scale)", fontsize=10)
    ax_sizes.set_xlabel("records per cluster")
    ax_sizes.set_ylabel("clusters")
    fig.tight_layout()
    return png(fig)


def _simple_bars(values: dict[str, float], xlabel: str, fmt: str, color: str) -> bytes:
    names = list(values)
    fig = Figure(figsize=(8, 1.2 + 0.4 * max(1, len(names))))
    ax = fig.add_subplot()
    bars = ax.barh(names, [values[n] for n in names], color=color)
    _bar_labels(ax, bars, [values[n] for n in names], fmt)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    if fmt == "{:,}":
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.margins(x=0.15)
    fig.tight_layout()
    return png(fig)


def id_events_chart(section: dict[str, Any]) -> bytes:
    """Id events of the run by kind."""
    return _simple_bars(section["counts"], "events", "{:,}", "#a142f4")


def timings_chart(section: dict[str, Any]) -> bytes:
    """Seconds per stage, in run order."""
    return _simple_bars(section["seconds"], "seconds", "{:,.1f} s", "#f29900")
