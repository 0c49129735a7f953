"""The run report as one self-contained HTML page: inline CSS, charts as PNG data URIs.

:func:`render_html` turns :func:`cdi_spark.report.figures.gather`'s dict into the page: the
run's facts from ``audit.runs``, then one section per figure with its chart and the same
numbers as a table. A section that is ``not run`` or ``no data`` says so instead. Every
value is HTML-escaped; the page holds counts, rates, names of sources, fields, rules and
reasons, never a record's content.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any

from cdi_spark.report import charts
from cdi_spark.report.figures import OK

CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; margin: 2rem auto;
       max-width: 1200px; padding: 0 1rem; color: #202124; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.2rem; margin-top: 2.5rem; border-bottom: 1px solid #dadce0; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.5rem 0; }
th, td { border: 1px solid #dadce0; padding: 0.2rem 0.6rem; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f1f3f4; }
img { max-width: 100%; display: block; margin: 0.5rem 0; }
.status { font-size: 0.75rem; padding: 0.1rem 0.5rem; border-radius: 0.6rem; margin-left: 0.5rem;
          vertical-align: middle; }
.ok { background: #e6f4ea; color: #137333; } .not-run, .no-data { background: #f1f3f4; color: #5f6368; }
.succeeded { color: #137333; } .failed { color: #c5221f; } .running { color: #b06000; }
code { font-size: 0.85rem; } nav a { margin-right: 1rem; } .note { color: #5f6368; font-size: 0.85rem; }
"""

TITLES = {
    "flow": "Rows per stage and source",
    "data_quality": "Data quality: fill and invalid rates per field and source",
    "quarantine": "Quarantined rows by source and reason",
    "matching": "Matching: edges, model scores, cluster sizes",
    "id_events": "Customer id events",
    "timings": "Stage timings",
}
EMPTY_NOTES = {
    "not run": "The run was not asked to run this stage.",
    "no data": "The stage ran, but the tables hold no rows of this run.",
}


def _n(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.3f}"
    return f"{value:,}" if isinstance(value, int) else escape(str(value))


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f'<td class="n">{_n(v)}</td>' if isinstance(v, int | float) else f"<td>{_n(v)}</td>"
                         for v in row) + "</tr>"
        for row in rows
    )  # fmt: skip
    return f"<table><tr>{head}</tr>{body}</table>"


def _img(data: bytes, alt: str) -> str:
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{base64.b64encode(data).decode("ascii")}">'


def _run_facts(run: dict[str, Any], lakehouse: str) -> str:
    if not run["recorded"]:
        return (f'<p class="note">Run {escape(run["run_id"])} is not in audit.runs: no status, times or stage '
                "timings.</p>")
    status = escape(run["status"])
    rows = [
        ("status", f'<b class="{status}">{status}</b>'),
        ("started (UTC)", escape(run["started_at"] or "–")),
        ("ended (UTC)", escape(run["ended_at"] or "–")),
        ("wall time", "–" if run["wall_seconds"] is None else f'{run["wall_seconds"]:,.1f} s'),
        ("stages", escape(", ".join(run["stages"]))),
        ("config hash", f'<code>{escape(run["config_hash"] or "–")}</code>'),
        ("lakehouse", f"<code>{escape(lakehouse)}</code>"),
    ]
    if run["error"]:
        rows.append(("error", f"<code>{escape(run['error'])}</code>"))
    return "<table>" + "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows) + "</table>"


# --------------------------------------------------------------------------------------------
# Sections: chart + table of the same numbers
# --------------------------------------------------------------------------------------------


def _flow(section: dict[str, Any]) -> str:
    this, after = section["this_run"], section["after_run"]
    sources = sorted(set().union(*(v or {} for v in this.values())))
    rows = [(s, *((this[k] or {}).get(s) if this[k] is not None else None for k in this)) for s in sources]
    rows.append(("total", *(section["totals"].get(k) for k in this)))
    after_rows = [(k, v) for k, v in after.items()]
    return (
        _img(charts.flow_chart(section), "rows per stage and source")
        + _table(["source", "read", "bronze", "quarantined", "silver"], rows)
        + "<p>The lakehouse after the run:</p>"
        + _table(["", "count"], after_rows)
    )


def _quality(section: dict[str, Any]) -> str:
    rows = [
        (source, name, q["records"], q["filled"], q["invalid"], f"{q['fill_rate']:.1%}", f"{q['invalid_rate']:.1%}")
        for source, fields in sorted(section["sources"].items())
        for name, q in sorted(fields.items())
    ]
    headers = ["source", "field", "records", "filled", "invalid", "fill rate", "invalid rate (of filled)"]
    return (
        _img(charts.quality_chart(section), "fill and invalid rates per field and source")
        + f"<details><summary>the numbers</summary>{_table(headers, rows)}</details>"
    )


def _quarantine(section: dict[str, Any]) -> str:
    if not section["total"]:
        return "<p>No rows of this run were quarantined.</p>"
    rows = [(s, reason, n) for s, reasons in sorted(section["rows"].items()) for reason, n in sorted(reasons.items())]
    rows.append(("total", "", section["total"]))
    return _img(charts.quarantine_chart(section), "quarantined rows by source and reason") + _table(
        ["source", "reason", "rows"], rows
    )


def _matching(section: dict[str, Any]) -> str:
    rules = [(r, v["total"], v["this_run"]) for r, v in sorted(section["edges_per_rule"].items())]
    sizes = [(p["size"], p["clusters"]) for p in section["cluster_sizes"]]
    return (
        _img(charts.matching_chart(section), "edges per rule, model scores and cluster sizes")
        + _table(["rule", "edges", "written by this run"], rules)
        + _table(["", ""], list(section["totals"].items()))
        + f"<details><summary>clusters per size</summary>{_table(['size', 'clusters'], sizes)}</details>"
    )


def _id_events(section: dict[str, Any]) -> str:
    if not section["counts"]:
        return "<p>The run created, merged, split or retired no customer id.</p>"
    rows = [*sorted(section["counts"].items()), ("total", section["total"])]
    return _img(charts.id_events_chart(section), "id events by kind") + _table(["event", "count"], rows)


def _timings(section: dict[str, Any]) -> str:
    rows = [*section["seconds"].items(), ("total", section["total"])]
    return _img(charts.timings_chart(section), "seconds per stage") + _table(["stage", "seconds"], rows)


SECTIONS: dict[str, Callable[[dict[str, Any]], str]] = {
    "flow": _flow,
    "data_quality": _quality,
    "quarantine": _quarantine,
    "matching": _matching,
    "id_events": _id_events,
    "timings": _timings,
}


def _section(name: str, section: dict[str, Any]) -> str:
    status = section["status"]
    badge = f'<span class="status {status.replace(" ", "-")}">{escape(status)}</span>'
    if status == OK:
        body = SECTIONS[name](section)
    else:
        not_run = f" Not run: {escape(', '.join(section['not_run']))}." if section.get("not_run") else ""
        body = f'<p class="note">{EMPTY_NOTES[status]}{not_run}</p>'
    return f'<section id="{name}"><h2>{escape(TITLES[name])}{badge}</h2>{body}</section>'


def render_html(figures: dict[str, Any], *, generated_at: datetime | None = None) -> str:
    """The report page for :func:`cdi_spark.report.figures.gather`'s dict."""
    run, sections = figures["run"], figures["sections"]
    when = (generated_at or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M:%S UTC")
    nav = "".join(f'<a href="#{name}">{escape(TITLES[name].split(":")[0])}</a>' for name in SECTIONS)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>cdi-spark run {escape(run['run_id'])}</title><style>{CSS}</style></head><body>"
        f"<h1>cdi-spark run report: <code>{escape(run['run_id'])}</code></h1>"
        + _run_facts(run, figures["lakehouse"])
        + f"<nav>{nav}</nav>"
        + "".join(_section(name, sections[name]) for name in SECTIONS)
        + f'<p class="note">Generated {when}. The same figures are in report.json beside this file.</p>'
        "</body></html>\n"
    )
