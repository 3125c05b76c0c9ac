"""A bar chart of bridge's speed-up per scenario, as plain SVG (no plotting dependency)."""

from __future__ import annotations

import math
from html import escape
from pathlib import Path
from typing import Any

ROW, LEFT, WIDTH, TOP = 34, 300, 420, 40
MAX_RATIO = 1000.0  # the log axis runs from 0.1x to this


def _x(ratio: float) -> float:
    """Position on a log axis from 0.1x to MAX_RATIO."""
    span = math.log10(MAX_RATIO) + 1
    clamped = min(max(ratio, 0.1), MAX_RATIO)
    return LEFT + WIDTH * (math.log10(clamped) + 1) / span


def write_chart(results: list[dict[str, Any]], path: Path) -> None:
    height = TOP + ROW * len(results) + 40
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{LEFT + WIDTH + 120}" height="{height}" '
        'font-family="sans-serif" font-size="12">',
        '<rect width="100%" height="100%" fill="white"/>',
        '<text x="10" y="20" font-size="14" font-weight="bold">bridge ÷ baseline, same run '
        "(log scale; the tick is the SPEC target)</text>",
    ]
    for tick in (0.1, 1, 10, 100, 1000):
        x = _x(tick)
        out.append(
            f'<line x1="{x:.1f}" y1="{TOP - 6}" x2="{x:.1f}" y2="{height - 30}" stroke="#ddd"/>'
        )
        out.append(f'<text x="{x:.1f}" y="{height - 14}" text-anchor="middle">{tick:g}×</text>')
    for i, r in enumerate(results):
        y = TOP + i * ROW
        label = (
            r["scenario"] if " vs " in r["scenario"] else f"{r['scenario']} (vs {r['baseline']})"
        )
        met = r["met"]
        colour = "#2a7" if met in (True, None) else "#d43"
        out.append(f'<text x="{LEFT - 8}" y="{y + 16}" text-anchor="end">{escape(label)}</text>')
        out.append(
            f'<rect x="{LEFT}" y="{y + 4}" width="{_x(r["ratio"]) - LEFT:.1f}" height="18" '
            f'fill="{colour}"/>'
        )
        out.append(f'<text x="{_x(r["ratio"]) + 6:.1f}" y="{y + 17}">{r["ratio"]:.1f}×</text>')
        if r["target"] is not None:
            tx = _x(r["target"])
            out.append(
                f'<line x1="{tx:.1f}" y1="{y + 1}" x2="{tx:.1f}" y2="{y + 25}" stroke="black" stroke-width="2"/>'
            )
    out.append("</svg>")
    path.write_text("\n".join(out) + "\n")
