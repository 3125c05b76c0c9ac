"""bench.inprocess / bench.http_bench results as a hand-written SVG bar chart and a Markdown table.

    .venv/bin/python -m bench.chart [bench/results/inprocess.json]
    .venv/bin/python -m bench.chart bench/results/http.json

Writes ``chart.svg`` and ``inprocess.md`` next to ``inprocess.json`` (``http_chart.svg`` and
``http.md`` next to ``http.json``). One group per scenario, one bar per
adapter, each bar the adapter's rate divided by the scenario's baseline (a2wsgi, or the ASGI
app awaited directly), on a log axis, with its value written beside it; the SPEC target is a
dashed line in the groups that have one.
"""

from __future__ import annotations

import json
import math
import sys
import textwrap
from html import escape
from pathlib import Path
from typing import Any

from bench.inprocess import RESULTS, markdown
from bench.peers import UVICORN_OWN

LABEL_W = 250  # left column: adapter names
PLOT_W = 560
RIGHT_W = 150  # value labels beyond the bar
ROW_H = 19
BAR_H = 13
TITLE_H = 24
GAP = 12
TOP = 64
LOG_MIN, LOG_MAX = -1, 3  # 0.1x .. 1000x
COLOURS = {
    "bridge": "#1b7f5c",
    "bridge (per-thread)": "#1b7f5c",
    "bridge (shared)": "#6cc2a0",
    "a2wsgi": "#8c8c8c",
    "asgiref": "#e09a3e",
    UVICORN_OWN: "#8b6fc4",
    "direct (awaited on a loop)": "#3c78c8",
    "Flask native on gunicorn gthread": "#3c78c8",
    "FastAPI native on uvicorn": "#3c78c8",
    "bare ASGI hello on uvicorn (ceiling)": "#b9cde8",
    "bare WSGI hello on gthread (ceiling)": "#b9cde8",
}


def x_of(ratio: float) -> float:
    position = (math.log10(max(ratio, 10.0**LOG_MIN)) - LOG_MIN) / (LOG_MAX - LOG_MIN)
    return LABEL_W + PLOT_W * min(position, 1.0)


def ratio_label(ratio: float) -> str:
    return f"{ratio:.2f}×" if ratio < 10 else f"{ratio:,.0f}×"


def svg(report: dict[str, Any]) -> str:
    results = report["results"]
    notes = subtitles(report)
    top = TOP + 15 * (len(notes) - 1)
    height = top + sum(TITLE_H + ROW_H * len(r["adapters"]) + GAP for r in results) + 40
    width = LABEL_W + PLOT_W + RIGHT_W
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" '
        'font-size="12">',
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="12" y="22" font-size="16" font-weight="bold">bridge vs peers, {where(report)}: '
        "rate ÷ baseline (log scale)</text>",
    ]
    for i, note in enumerate(notes):
        out.append(f'<text x="12" y="{40 + 15 * i}" fill="#555">{escape(note)}</text>')
    bottom = height - 34
    for exponent in range(LOG_MIN, LOG_MAX + 1):
        x = x_of(10.0**exponent)
        stroke = "#444" if exponent == 0 else "#dddddd"
        out.append(
            f'<line x1="{x:.1f}" y1="{top - 8}" x2="{x:.1f}" y2="{bottom}" stroke="{stroke}"/>'
        )
        out.append(
            f'<text x="{x:.1f}" y="{bottom + 16}" text-anchor="middle" fill="#444">'
            f"{10.0**exponent:g}×</text>"
        )
    out.append(
        f'<text x="{LABEL_W + PLOT_W / 2:.0f}" y="{bottom + 30}" text-anchor="middle" '
        'fill="#444">ops/s ÷ the baseline of its scenario (baseline = 1×)</text>'
    )
    y = top
    for result in results:
        out.extend(group(result, y))
        y += TITLE_H + ROW_H * len(result["adapters"]) + GAP
    out.append("</svg>")
    return "\n".join(out) + "\n"


def over_http(report: dict[str, Any]) -> bool:
    return "connections" in report  # bench.http_bench's report


def where(report: dict[str, Any]) -> str:
    if over_http(report):
        client = "wrk" if report.get("client", "wrk") == "wrk" else "a Python client"
        return f"over HTTP on 127.0.0.1 ({client}, {report['connections']} connections)"
    return "in process"


def subtitles(report: dict[str, Any]) -> list[str]:
    first = (
        f"{report['machine']}; best of {report['repeats']} × {report['budget_s']:g} s per cell; "
        "dashed line = SPEC target for bridge"
    )
    if "stamp" not in report:
        return [first]
    from bench.stamp import lines

    first = f"{report['pinning']}; best of {report['repeats']} × {report['budget_s']:g} s per cell"
    stamp = (textwrap.wrap(line.replace("`", ""), 135) for line in lines(report["stamp"]))
    return [first, *(part for wrapped in stamp for part in wrapped)]


def group(result: dict[str, Any], top: float) -> list[str]:
    title = f"{result['title']}  ({result['unit']}; baseline: {result['baseline']})"
    if result["target"] is not None:
        state = "met" if result["met"] else "MISSED"
        title += f"  —  target ≥ {result['target']:g}×: {state}"
    colour = "#b00020" if result["met"] is False else "#111"
    out = [f'<text x="12" y="{top + 16}" font-weight="bold" fill="{colour}">{escape(title)}</text>']
    rows_top = top + TITLE_H
    for i, adapter in enumerate(result["adapters"]):
        y = rows_top + i * ROW_H
        end = x_of(adapter["ratio"])
        start = x_of(1.0)
        left, right = min(start, end), max(start, end)
        fill = COLOURS.get(adapter["name"], "#555")
        weight = ' font-weight="bold"' if adapter["name"] == result["subject"] else ""
        out.append(
            f'<text x="{LABEL_W - 8}" y="{y + BAR_H - 2}" text-anchor="end"{weight}>'
            f"{escape(adapter['name'])}</text>"
        )
        out.append(
            f'<rect x="{left:.1f}" y="{y}" width="{max(right - left, 2):.1f}" height="{BAR_H}" '
            f'fill="{fill}"/>'
        )
        label = f"{ratio_label(adapter['ratio'])}  ({adapter['best']:,.0f} {result['unit']})"
        out.append(
            f'<text x="{max(right, start) + 6:.1f}" y="{y + BAR_H - 2}" fill="#222"{weight}>'
            f"{escape(label)}</text>"
        )
    if result["target"] is not None:
        x = x_of(result["target"])
        bottom = rows_top + ROW_H * len(result["adapters"]) - 4
        out.append(
            f'<line x1="{x:.1f}" y1="{rows_top - 4}" x2="{x:.1f}" y2="{bottom}" '
            'stroke="#b00020" stroke-width="2" stroke-dasharray="4,3"/>'
        )
    return out


def write(json_path: Path) -> tuple[Path, Path]:
    report = json.loads(json_path.read_text())
    if over_http(report):
        from bench.http_bench import markdown as http_markdown

        chart = json_path.parent / f"{json_path.stem}_chart.svg"
        table = json_path.with_suffix(".md")
        table.write_text(http_markdown(report))
    else:
        chart = json_path.parent / "chart.svg"
        table = json_path.parent / "inprocess.md"
        table.write_text(markdown(report))
    chart.write_text(svg(report))
    return chart, table


def main() -> None:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else RESULTS / "inprocess.json"
    for path in write(source):
        print(f"written: {path}")


if __name__ == "__main__":
    main()
