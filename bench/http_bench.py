"""bridge against its peers over real HTTP on 127.0.0.1, same process count: req/s and ratios.

    .venv/bin/python -m bench.http_bench            # full run, about three minutes
    .venv/bin/python -m bench.http_bench --quick    # smoke run, about a minute
    .venv/bin/python -m bench.http_bench --json bench/results/http.json

Each cell is one real server process (uvicorn, or gunicorn gthread with one worker) serving one
app from ``bench.http_apps``. All servers of a scenario start together and idle while another
is measured; rounds are interleaved (every cell once per round) and each cell's best round is
kept. The load generator is this process: ``CONNECTIONS`` keep-alive connections on one asyncio
loop, raw sockets and a minimal HTTP/1.1 response parser (Content-Length and chunked), every
response checked for status 200 and its body size. Each cell is bounded in requests and time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.servers import Server

ROOT = Path(__file__).resolve().parent.parent

CONNECTIONS = 16
MAX_REQUESTS = 50_000  # per measured window: a runaway fast cell still ends
HELLO = len(b"Hello, world!")
FASTAPI_HELLO = len(b'{"message":"Hello, world!"}')
STREAM = 100 * 1024


def uvicorn(app: str) -> list[str]:
    return [
        "uvicorn",
        "--host=127.0.0.1",
        "--port={port}",
        "--interface=asgi3",
        "--lifespan=off",  # the same for every adapter; uvicorn's old middleware has none
        "--no-access-log",
        "--log-level=warning",
        f"bench.http_apps:{app}",
    ]


def gthread(app: str) -> list[str]:
    return [
        "gunicorn",
        "--bind=127.0.0.1:{port}",
        "--workers=1",
        "--worker-class=gthread",
        "--threads=8",
        "--log-level=warning",
        f"bench.http_apps:{app}",
    ]


@dataclass
class Cell:
    name: str
    argv: list[str]
    path: str
    expect: int  # body bytes of every response
    server: Server | None = None
    rates: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)  # of the best round, seconds


@dataclass
class Scenario:
    key: str
    title: str
    unit: str
    cells: list[Cell]
    baseline: str
    subject: str
    target: float | None
    note: str
    # When given, the baseline is whichever of these was fastest in this run.
    peers: tuple[str, ...] = ()


def scenarios() -> list[Scenario]:
    return [
        Scenario(
            "http-flask-hello",
            "Flask hello on uvicorn (1 process)",
            "req/s",
            [
                Cell("bridge", uvicorn("flask_bridge"), "/", HELLO),
                Cell("a2wsgi", uvicorn("flask_a2wsgi"), "/", HELLO),
                Cell("uvicorn (old WSGIMiddleware)", uvicorn("flask_uvicorn_old"), "/", HELLO),
                Cell("Flask native on gunicorn gthread", gthread("flask_app"), "/", HELLO),
                Cell("bare ASGI hello on uvicorn (ceiling)", uvicorn("asgi_hello"), "/", HELLO),
            ],
            "uvicorn (old WSGIMiddleware)",
            "bridge",
            1.0,
            "at least as fast as the fastest peer adapter",
            ("a2wsgi", "uvicorn (old WSGIMiddleware)"),
        ),
        Scenario(
            "http-flask-stream",
            "Flask 100 x 1 KiB stream on uvicorn (1 process)",
            "streams/s",
            [
                Cell("bridge", uvicorn("flask_bridge"), "/stream", STREAM),
                Cell("a2wsgi", uvicorn("flask_a2wsgi"), "/stream", STREAM),
                Cell(
                    "uvicorn (old WSGIMiddleware)",
                    uvicorn("flask_uvicorn_old"),
                    "/stream",
                    STREAM,
                ),
                Cell("Flask native on gunicorn gthread", gthread("flask_app"), "/stream", STREAM),
            ],
            "Flask native on gunicorn gthread",
            "bridge",
            1.0,
            "as fast as Flask natively on gunicorn gthread",
        ),
        Scenario(
            "http-fastapi-hello",
            "FastAPI hello on gunicorn gthread (1 worker, 8 threads)",
            "req/s",
            [
                Cell("bridge (per-thread)", gthread("fastapi_bridge"), "/", FASTAPI_HELLO),
                Cell("a2wsgi", gthread("fastapi_a2wsgi"), "/", FASTAPI_HELLO),
                Cell("FastAPI native on uvicorn", uvicorn("fastapi_app"), "/", FASTAPI_HELLO),
                Cell("bare WSGI hello on gthread (ceiling)", gthread("wsgi_hello"), "/", HELLO),
            ],
            "a2wsgi",
            "bridge (per-thread)",
            3.0,
            "at least 3x a2wsgi on gunicorn gthread",
        ),
        Scenario(
            "http-fastapi-stream",
            "FastAPI 100 x 1 KiB stream on gunicorn gthread (1 worker, 8 threads)",
            "streams/s",
            [
                Cell("bridge (per-thread)", gthread("fastapi_bridge"), "/stream", STREAM),
                Cell("a2wsgi", gthread("fastapi_a2wsgi"), "/stream", STREAM),
                Cell("FastAPI native on uvicorn", uvicorn("fastapi_app"), "/stream", STREAM),
            ],
            "a2wsgi",
            "bridge (per-thread)",
            None,
            "",
        ),
    ]


# -- the load generator ---------------------------------------------------------------------------


class BadResponse(Exception):
    pass


async def read_response(reader: asyncio.StreamReader) -> tuple[int, int, bool]:
    """One HTTP/1.1 response: (status, body bytes, whether the server keeps the connection)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip().lower()
    keep = headers.get("connection") != "close"
    if "content-length" in headers:
        size = int(headers["content-length"])
        await reader.readexactly(size)
        return status, size, keep
    if headers.get("transfer-encoding") != "chunked":
        raise BadResponse(f"neither Content-Length nor chunked: {headers}")
    size = 0
    while True:
        length = int((await reader.readline()).split(b";", 1)[0], 16)
        if length == 0:
            while (await reader.readline()) not in (b"\r\n", b""):
                pass  # trailers
            return status, size, keep
        await reader.readexactly(length + 2)
        size += length


async def hammer(port: int, path: str, expect: int, seconds: float, limit: int) -> list[float]:
    """``CONNECTIONS`` keep-alive clients until ``seconds`` pass or ``limit`` responses came;
    returns each response's latency."""
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    deadline = time.perf_counter() + seconds
    latencies: list[float] = []

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while len(latencies) < limit and time.perf_counter() < deadline:
                sent = time.perf_counter()
                writer.write(request)
                status, size, keep = await read_response(reader)
                latencies.append(time.perf_counter() - sent)
                if status != 200 or size != expect:
                    raise BadResponse(f"GET {path}: {status}, {size} bytes (want 200, {expect})")
                if not keep:
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
        finally:
            writer.close()

    await asyncio.gather(*(client() for _ in range(CONNECTIONS)))
    return latencies


def measure(cell: Cell, budget: float, warmup: float) -> tuple[float, list[float]]:
    if cell.server is None:
        raise RuntimeError(f"{cell.name}: server not started")
    port = cell.server.port
    asyncio.run(hammer(port, cell.path, cell.expect, warmup, MAX_REQUESTS))
    started = time.perf_counter()
    latencies = asyncio.run(hammer(port, cell.path, cell.expect, budget, MAX_REQUESTS))
    return len(latencies) / (time.perf_counter() - started), latencies


# -- running and reporting -----------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


def run(scenario: Scenario, budget: float, warmup: float, repeats: int) -> dict[str, Any]:
    from tests.servers import serve  # here: a run as a file puts the project root on sys.path

    with ExitStack() as stack:
        for cell in scenario.cells:
            cell.server = stack.enter_context(serve(cell.argv, timeout=30))
        for _ in range(repeats):
            for cell in scenario.cells:
                rate, latencies = measure(cell, budget, warmup)
                if not cell.rates or rate > max(cell.rates):
                    cell.latencies = latencies
                cell.rates.append(rate)
    best = {cell.name: max(cell.rates) for cell in scenario.cells}
    if scenario.peers:
        scenario.baseline = max(scenario.peers, key=best.__getitem__)
    base = best[scenario.baseline]
    ratio = best[scenario.subject] / base
    return {
        "key": scenario.key,
        "title": scenario.title,
        "unit": scenario.unit,
        "baseline": scenario.baseline,
        "subject": scenario.subject,
        "target": scenario.target,
        "target_note": scenario.note,
        "ratio": ratio,
        "met": None if scenario.target is None else ratio >= scenario.target,
        "adapters": [
            {
                "name": cell.name,
                "command": " ".join(cell.argv).replace("={port}", "=PORT"),
                "best": best[cell.name],
                "runs": cell.rates,
                "ratio": best[cell.name] / base,
                "p50_ms": percentile(cell.latencies, 0.5) * 1e3,
                "p99_ms": percentile(cell.latencies, 0.99) * 1e3,
            }
            for cell in scenario.cells
        ],
    }


def text_table(result: dict[str, Any]) -> str:
    rows = [
        f"{result['title']}  [{result['unit']}, ratio vs {result['baseline']}]",
        f"  {'server + adapter':<36}{'ops/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'ratio':>9}",
    ]
    for a in result["adapters"]:
        rows.append(
            f"  {a['name']:<36}{a['best']:>10,.0f}{a['p50_ms']:>9.2f}{a['p99_ms']:>9.2f}"
            f"{a['ratio']:>8.2f}x"
        )
    verdict = "(no SPEC target)"
    if result["target"] is not None:
        word = "met" if result["met"] else "MISSED"
        verdict = f"SPEC >= {result['target']:g}x ({result['target_note']}): {word}"
    rows.append(f"  -> {result['subject']}: {result['ratio']:.2f}x  {verdict}")
    return "\n".join(rows)


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"Over HTTP on 127.0.0.1, one server process each (gunicorn: 1 worker, 8 threads); "
        f"{report['connections']} keep-alive connections from a Python client in the same "
        f"machine; {report['machine']}; best of {report['repeats']} x {report['budget_s']:g} s "
        "per cell; ratios within this one run.",
        "",
        "| scenario | server + adapter | ops/s | p50 ms | p99 ms | ratio | SPEC target |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- |",
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
                f"| {title} | {a['name']} | {a['best']:,.0f} | {a['p50_ms']:.2f} | "
                f"{a['p99_ms']:.2f} | {ratio} | {target} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="0.6 s cells (default 2 s)")
    parser.add_argument(
        "--json", type=Path, default=None, help="write results (and a chart and .md)"
    )
    parser.add_argument("--only", default="", help="comma-separated scenario keys")
    parser.add_argument("--repeats", type=int, default=None, help="rounds (default 3; quick 2)")
    args = parser.parse_args()
    budget, warmup = (0.6, 0.2) if args.quick else (2.0, 0.4)
    repeats = args.repeats or (2 if args.quick else 3)
    wanted = {key for key in args.only.split(",") if key}
    chosen = [s for s in scenarios() if not wanted or s.key in wanted]
    machine = (
        f"{platform.python_implementation()} {platform.python_version()} on "
        f"{platform.machine()}, {os.cpu_count()} CPUs"
    )
    print(f"bench.http_bench: {machine}; {budget:g} s x best of {repeats}\n", flush=True)
    began = time.perf_counter()
    results = []
    for scenario in chosen:
        results.append(run(scenario, budget, warmup, repeats))
        print(text_table(results[-1]) + "\n", flush=True)
    report = {
        "machine": machine,
        "connections": CONNECTIONS,
        "budget_s": budget,
        "warmup_s": warmup,
        "repeats": repeats,
        "elapsed_s": round(time.perf_counter() - began, 1),
        "results": results,
    }
    print(f"total {report['elapsed_s']} s")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        from bench.chart import write

        print("written:", args.json, *write(args.json))


if __name__ == "__main__":
    if str(ROOT) not in sys.path:  # run as a file, not with -m
        sys.path.insert(0, str(ROOT))
    main()
