"""The benchmark's written results: growth exponents, a Markdown table and a log-log plot.

:mod:`cdi_spark.bench` measures; this module turns its result records (one per size, as
appended to ``bench/results.jsonl``) into what a reader compares:

``growth exponent``
    per stage, the slope of log seconds against log records between the two largest sizes
    of one bench run: 1.0 means the stage's time grows like its input; above
    :data:`EXPONENT_FLAG` the table flags it. "Records" are the stage's rows in (people
    when a stage has no row count).
``ratio to the I/O floor``
    a stage's (and the whole run's) median seconds over the floor's: the same machine
    reading the raw exports and writing them once as Delta, with no transformation.

Pure Python and matplotlib: no Spark here, so every figure can be recomputed from the JSON.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

EXPONENT_FLAG = 1.15
TOTAL = "total"


def _records(stage: dict, people: int) -> int:
    return stage.get("rows_in") or people


def growth_exponents(results: Sequence[dict]) -> dict[str, float]:
    """Stage -> slope of log seconds against log records between the two largest sizes.

    Also :data:`TOTAL` (the whole run against people). Stages missing at either size, or
    without a positive time, get no exponent; fewer than two sizes give ``{}``.
    """
    sized = sorted(results, key=lambda r: r["people"])
    if len(sized) < 2:
        return {}
    small, large = sized[-2], sized[-1]
    out = {}
    for name, stage in large["stages"].items():
        before = small["stages"].get(name)
        if not before or not before.get("seconds") or not stage.get("seconds"):
            continue
        n1, n2 = _records(before, small["people"]), _records(stage, large["people"])
        if n2 > n1 > 0:
            out[name] = math.log(stage["seconds"] / before["seconds"]) / math.log(n2 / n1)
    t1, t2 = total_seconds(small), total_seconds(large)
    if t1 and t2 and large["people"] > small["people"]:
        out[TOTAL] = math.log(t2 / t1) / math.log(large["people"] / small["people"])
    return out


def total_seconds(result: dict) -> float:
    """The run's median seconds: the sum of its stages' medians."""
    return sum(s.get("seconds") or 0.0 for s in result["stages"].values())


def _fmt(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def _exponent_cell(value: float | None) -> str:
    if value is None:
        return "–"
    return f"**{value:.2f}** (above {EXPONENT_FLAG})" if value > EXPONENT_FLAG else f"{value:.2f}"


def markdown(results: Sequence[dict]) -> str:
    """A Markdown report of one bench run over one or more sizes: machine, then per size and
    stage seconds, rows, rows/s, peak memory and the ratio to the I/O floor, the growth
    exponents, and the day-2 run when there was one."""
    sized = sorted(results, key=lambda r: r["people"])
    first = sized[0]
    m = first["machine"]
    exponents = growth_exponents(sized)
    lines = [
        f"# cdi-spark bench {first['date'][:10]}",
        "",
        f"Machine: {m['cores']} cores, {m['memory_gb']} GB, Spark {m['spark']}, Python {m['python']}; "
        f"load average before the first size {_fmt(m.get('load_avg_before', [None])[0], '.1f')}. "
        f"Commit {(first.get('commit') or '?')[:10]}{' (dirty tree)' if first.get('dirty') else ''}. "
        f"Medians of {first['repeats']} run(s) per size; the machine's other load inflates every figure.",
        "",
        "| people | stage | seconds | rows in | rows out | rows/s | × I/O floor | heap MB | RSS MB | growth exponent |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in sized:
        floor = (result.get("io_floor") or {}).get("seconds")
        largest = result is sized[-1]
        for name, s in result["stages"].items():
            ratio = s["seconds"] / floor if floor and s.get("seconds") else None
            lines.append(
                f"| {result['people']:,} | {name} | {_fmt(s.get('seconds'), '.1f')} | {_fmt(s.get('rows_in'), ',')} "
                f"| {_fmt(s.get('rows_out'), ',')} | {_fmt(s.get('rows_per_s'), ',')} | {_fmt(ratio, '.1f')} "
                f"| {_fmt(s.get('heap_peak_mb'), ',.0f')} | {_fmt(s.get('rss_peak_mb'), ',.0f')} "
                f"| {_exponent_cell(exponents.get(name)) if largest else ''} |"
            )
        total, people = total_seconds(result), f"{result['people']:,}"
        total_ratio = _fmt(total / floor if floor else None, ".1f")
        lines.append(f"| {people} | **whole run** | {total:.1f} | | | | {total_ratio} "
                     f"| | | {_exponent_cell(exponents.get(TOTAL)) if largest else ''} |")  # fmt: skip
        if floor:
            floor_rows = _fmt(result["io_floor"].get("rows"), ",")
            lines.append(f"| {people} | *I/O floor* | {floor:.1f} | {floor_rows} | | | 1.0 | | | |")
    lines += ["", f"Growth exponent: slope of log seconds against log records between the two largest sizes "
                  f"(1.0 = linear); above {EXPONENT_FLAG} is flagged."]  # fmt: skip
    rated = [r for r in sized if r.get("quality")]
    if rated:
        lines += ["", "## Match quality (the resolve stage's clusters against the generator's truth)", "",
                  "| people | pairwise P | pairwise R | pairwise F1 | B-cubed F1 | ARI | records | clusters "
                  "| largest |",
                  "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
        for r in rated:
            q = r["quality"]
            lines.append(f"| {r['people']:,} | {q['precision']:.4f} | {q['recall']:.4f} | {q['f1']:.4f} "
                         f"| {q['bcubed_f1']:.4f} | {q['adjusted_rand']:.4f} | {q['records']:,} | {q['clusters']:,} "
                         f"| {q['largest_cluster']} |")  # fmt: skip
    peers = [r for r in sized if r.get("peer")]
    if peers:
        lines += ["", "## Peer: Splink on DuckDB, the same standardized records", "",
                  "Seconds: our resolve stage (Zingg training included) against the peer's process (training "
                  "included); the ratios are ours over the peer's: below 1.0 we are faster, above 1.0 more accurate.",
                  "",
                  "| people | our resolve s | Splink s | time ratio | our pairwise F1 | Splink pairwise F1 | F1 ratio "
                  "| our B-cubed F1 | Splink B-cubed F1 |",
                  "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
        for r in peers:
            peer, ours = r["peer"], r.get("quality") or {}
            pq, t = peer["quality"], r["stages"].get("resolve", {}).get("seconds")
            time_ratio = t / peer["seconds"] if t and peer["seconds"] else None
            f1_ratio = ours["f1"] / pq["f1"] if ours.get("f1") is not None and pq["f1"] else None
            lines.append(f"| {r['people']:,} | {_fmt(t, '.1f')} | {peer['seconds']:.1f} | {_fmt(time_ratio, '.2f')} "
                         f"| {_fmt(ours.get('f1'), '.4f')} | {pq['f1']:.4f} | {_fmt(f1_ratio, '.3f')} "
                         f"| {_fmt(ours.get('bcubed_f1'), '.4f')} | {pq['bcubed_f1']:.4f} |")  # fmt: skip
    for result in sized:
        day2 = result.get("day2")
        if not day2:
            continue
        share = f" ({day2['share']:.1%} of the people new or changed)" if day2.get("share") else ""
        earlier = f" (the full run of {result['full_run_date']})" if result.get("on_last_run") else ""
        lines += ["", f"## Day 2 on top of {result['people']:,} people", "",
                  f"Incremental run{share}: {day2['seconds']:.1f} s, **{day2['ratio_to_full']}** of the full run's "
                  f"{day2['full_seconds']:.1f} s{earlier}.", "",
                  "| stage | seconds | rows in | rows out |", "|---|---:|---:|---:|"]  # fmt: skip
        for name, s in day2["stages"].items():
            lines.append(f"| {name} | {_fmt(s.get('seconds'), '.1f')} | {_fmt(s.get('rows_in'), ',')} "
                         f"| {_fmt(s.get('rows_out'), ',')} |")  # fmt: skip
        stable = day2.get("id_stability")
        if stable:
            rate = "–" if stable["rate"] is None else f"{stable['rate']:.4%}"
            lines += ["", f"Id stability: {stable['kept']:,} of the {stable['untouched']:,} customers day 2 did not "
                          f"touch kept their id ({rate}); day 2 touched {stable['touched']:,} of "
                          f"{stable['customers']:,}."]  # fmt: skip
    return "\n".join(lines) + "\n"


def plot(results: Sequence[dict], path: Path) -> Path:
    """A log-log chart of seconds per stage (and the I/O floor) against records, one line per
    stage over the sizes; written as PNG to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sized = sorted(results, key=lambda r: r["people"])
    fig, ax = plt.subplots(figsize=(8, 5))
    names = list(dict.fromkeys(name for r in sized for name in r["stages"]))
    for name in names:
        points = [(_records(r["stages"][name], r["people"]), r["stages"][name]["seconds"])
                  for r in sized if name in r["stages"] and r["stages"][name].get("seconds")]  # fmt: skip
        if points:
            ax.plot(*zip(*points, strict=True), marker="o", label=name)
    floor = [(r["io_floor"]["rows"], r["io_floor"]["seconds"]) for r in sized if r.get("io_floor")]
    if floor:
        ax.plot(*zip(*floor, strict=True), marker="s", linestyle="--", color="grey", label="I/O floor")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("records in (log)")
    ax.set_ylabel("seconds, median (log)")
    m = sized[0]["machine"]
    ax.set_title(
        f"cdi-spark bench {sized[0]['date'][:10]}: seconds per stage ({m['cores']} cores, {m['memory_gb']} GB)"
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_reports(results: Sequence[dict], out_dir: Path) -> list[Path]:
    """``<date>-<people>.json`` per size, and ``<date>-<sizes>.md`` and ``.png`` for the run,
    under ``out_dir``; returns the paths written."""
    import json

    out_dir.mkdir(parents=True, exist_ok=True)
    sized = sorted(results, key=lambda r: r["people"])
    stamp = sized[0]["date"][:19].replace(":", "")
    written = []
    for result in sized:
        path = out_dir / f"{stamp}-{result['people']}.json"
        path.write_text(json.dumps(result, indent=1, default=str) + "\n")
        written.append(path)
    name = f"{stamp}-{'-'.join(str(r['people']) for r in sized)}"
    md = out_dir / f"{name}.md"
    md.write_text(markdown(sized) + f"\n![seconds per stage]({name}.png)\n")
    written += [md, plot(sized, out_dir / f"{name}.png")]
    return written
