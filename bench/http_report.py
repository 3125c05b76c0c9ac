"""bench.http_bench's results: one scenario summarised, then as text and as Markdown."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any


def summarise(scenario: Any, bin_dir: Path) -> dict[str, Any]:
    """A measured ``bench.http_bench.Scenario`` as plain data: the best round of each cell,
    the ratios against the scenario's baseline (or its fastest peer) in this run."""
    best = {c.name: max(w.rate for w in c.windows) for c in scenario.cells}
    if scenario.peers:
        scenario.baseline = max(scenario.peers, key=best.__getitem__)
    base = best[scenario.baseline]
    ratio = best[scenario.subject] / base
    adapters = []
    for cell in scenario.cells:
        top = max(range(len(cell.windows)), key=lambda i: cell.windows[i].rate)
        window = cell.windows[top]
        command = " ".join(cell.argv).replace("{port}", "PORT").replace(f"{bin_dir}/", "")
        adapters.append(
            {
                "name": cell.name,
                "command": command.replace("/usr/bin/env ", ""),
                "best": window.rate,
                "median": statistics.median(w.rate for w in cell.windows),
                "runs": [w.rate for w in cell.windows],
                "ratio": window.rate / base,
                "p50_ms": window.p50_ms,
                "p99_ms": window.p99_ms,
                "responses": window.responses,
                "server_cpu_us": cell.cpu_us[top],
                "client_cpu": max(w.client_cpu for w in cell.windows),
                "socket_errors": sum(w.socket_errors for w in cell.windows),
            }
        )
    named = ("key", "title", "unit", "baseline", "subject", "target")
    met = None if scenario.target is None else ratio >= scenario.target
    return {
        **{name: getattr(scenario, name) for name in named},
        "target_note": scenario.note,
        "ratio": ratio,
        "met": met,
        "adapters": adapters,
    }


def busy(adapter: dict[str, Any]) -> float:
    """How busy the server kept its core in the best round: rate x CPU per response. Under
    ``BUSY`` the cell was limited by something else (the client, the machine, the server
    waiting on itself), and its rate says less about the server's cost."""
    return float(adapter["best"] * adapter["server_cpu_us"] / 1e6)


BUSY = 0.9


def idle_note(results: list[dict[str, Any]]) -> str:
    idle = [
        f"{r['title']}: {a['name']} ({busy(a):.0%})"
        for r in results
        for a in r["adapters"]
        if busy(a) < BUSY
    ]
    if not idle:
        return (
            f"Every cell kept its server's core at least {BUSY:.0%} busy in its best round "
            "(rate × server CPU per response): each row measures the server, not the client."
        )
    return f"Server core under {BUSY:.0%} busy (a limit other than the server): " + "; ".join(idle)


def text_table(result: dict[str, Any]) -> str:
    rows = [
        f"{result['title']}  [{result['unit']}, ratio vs {result['baseline']}]",
        f"  {'server + adapter':<38}{'best/s':>9}{'median/s':>10}{'p50 ms':>8}{'p99 ms':>8}"
        f"{'CPU us':>8}{'ratio':>8}",
    ]
    for a in result["adapters"]:
        rows.append(
            f"  {a['name']:<38}{a['best']:>9,.0f}{a['median']:>10,.0f}{a['p50_ms']:>8.2f}"
            f"{a['p99_ms']:>8.2f}{a['server_cpu_us']:>8,.0f}{a['ratio']:>7.2f}x"
            + ("" if busy(a) >= BUSY else f"  (server core {busy(a):.0%} busy)")
        )
    verdict = "(no SPEC target)"
    if result["target"] is not None:
        word = "met" if result["met"] else "MISSED"
        verdict = f"SPEC >= {result['target']:g}x ({result['target_note']}): {word}"
    rows.append(f"  -> {result['subject']}: {result['ratio']:.2f}x  {verdict}")
    return "\n".join(rows)


def method(report: dict[str, Any]) -> str:
    warm = f"{report['warmup_s']:g} s warm-up, then " if report["warmup_s"] else ""
    return (
        "Over HTTP on 127.0.0.1, one server process per cell (uvicorn; gunicorn gthread: "
        f"1 worker, 8 threads), {report['pinning']}; {report['connections']} keep-alive "
        f"connections; per cell {warm}the best of {report['repeats']} interleaved rounds of "
        f"{report['budget_s']:g} s (median alongside); ratios within this one run; p50/p99 and "
        "the server's CPU time per response (all its processes, user + system) are those of the "
        "best round."
    )


def markdown(report: dict[str, Any]) -> str:
    from bench.stamp import lines as stamp_lines

    lines = [method(report), ""]
    lines += [f"- {line}" for line in stamp_lines(report["stamp"])]
    lines += [
        "",
        "| scenario | server + adapter | ops/s (best) | median | p50 ms | p99 ms "
        "| server CPU µs/op | ratio | SPEC target |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for result in report["results"]:
        for i, a in enumerate(result["adapters"]):
            title = f"{result['title']} ({result['unit']})" if i == 0 else ""
            ratio = f"{a['ratio']:.2f}×"
            target = ""
            if a["name"] == result["baseline"]:
                ratio = "1× (baseline)"
            elif a["name"] == result["subject"]:
                ratio = f"**{ratio}**"
                if result["target"] is not None:
                    word = "met" if result["met"] else "**MISSED**"
                    target = f"≥ {result['target']:g}× {word}"
            lines.append(
                f"| {title} | {a['name']} | {a['best']:,.0f} | {a['median']:,.0f} | "
                f"{a['p50_ms']:.2f} | {a['p99_ms']:.2f} | {a['server_cpu_us']:,.0f} | {ratio} | "
                f"{target} |"
            )
    lines += ["", idle_note(report["results"])]
    return "\n".join(lines) + "\n"
