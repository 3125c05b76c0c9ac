"""bridge against its peers over real HTTP on 127.0.0.1, driven by wrk: req/s, latency, ratios.

    .venv/bin/python -m bench.http_bench --json bench/results/http.json   # full run, ~3 min
    .venv/bin/python -m bench.http_bench --quick                          # smoke run, ~30 s
    .venv/bin/python -m bench.http_bench --client python                  # without wrk

Each cell is one real server process (uvicorn, or gunicorn gthread with one worker) serving one
app from ``bench.http_apps``, pinned to one CPU; the load generator (``bench.loadgen``: wrk with
one thread and ``LOAD_CONNECTIONS`` keep-alive connections) is pinned to another. All servers of a
scenario start together and idle while another is measured. Each cell is checked once (status
200, exact body size), warmed up, then measured in rounds: every cell once per round, the order
rotated each round, and each cell's best round kept. wrk checks every response too.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import partial
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.http_report import markdown, method, summarise, text_table
from bench.loadgen import hammer, percentile
from bench.peers import UVICORN_OWN

if TYPE_CHECKING:
    from bench.loadgen import PythonClient, Window, Wrk
    from tests.servers import Server

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

# 64 keep-alive connections: enough that gunicorn gthread keeps its core busy (with 16, its bare
# hello left it idle half the time, between its poller and its 8 threads), the same for every cell.
LOAD_CONNECTIONS = 64
CONNECTIONS = 16  # bench.def_endpoints's Python client
HELLO = len(b"Hello, world!")
FASTAPI_HELLO = len(b'{"message":"Hello, world!"}')
STREAM = 100 * 1024
# uvicorn picks httptools and uvloop when they are installed; naming them makes the choice visible
# in every cell's command (and the same for every adapter).
UVICORN_FAST = find_spec("httptools") is not None and find_spec("uvloop") is not None

# bench.chart writes http.md with markdown; bench.def_endpoints and bench.slow_clients use the
# Python client (hammer) and uvicorn's command line from here.
__all__ = ["CONNECTIONS", "hammer", "markdown", "percentile", "uvicorn"]


def uvicorn_argv(pin: list[str], app: str) -> list[str]:
    return [
        *pin,
        str(BIN / "uvicorn"),
        "--host=127.0.0.1",
        "--port={port}",
        "--interface=asgi3",
        *(["--http=httptools", "--loop=uvloop"] if UVICORN_FAST else ["--http=h11"]),
        "--lifespan=off",  # the same for every adapter; uvicorn's own middleware has none
        "--no-access-log",
        "--log-level=warning",
        f"bench.http_apps:{app}",
    ]


def uvicorn(app: str) -> list[str]:
    """uvicorn's command line for ``app``, not pinned (for bench.slow_clients)."""
    return uvicorn_argv([], app)


def gthread_argv(pin: list[str], app: str) -> list[str]:
    return [
        *pin,
        str(BIN / "gunicorn"),
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
    windows: list[Window] = field(default_factory=list)
    cpu_us: list[float] = field(default_factory=list)  # server CPU per response, per window


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


def scenarios(pin: list[str]) -> list[Scenario]:
    on_uvicorn, on_gthread = partial(uvicorn_argv, pin), partial(gthread_argv, pin)
    return [
        Scenario(
            "http-flask-hello",
            "Flask hello on uvicorn (1 process)",
            "req/s",
            [
                Cell("bridge", on_uvicorn("flask_bridge"), "/", HELLO),
                Cell("a2wsgi", on_uvicorn("flask_a2wsgi"), "/", HELLO),
                Cell(UVICORN_OWN, on_uvicorn("flask_uvicorn_own"), "/", HELLO),
                Cell("Flask native on gunicorn gthread", on_gthread("flask_app"), "/", HELLO),
                Cell("bare ASGI hello on uvicorn (ceiling)", on_uvicorn("asgi_hello"), "/", HELLO),
            ],
            UVICORN_OWN,
            "bridge",
            1.0,
            "at least as fast as the fastest peer adapter",
            ("a2wsgi", UVICORN_OWN),
        ),
        Scenario(
            "http-flask-stream",
            "Flask 100 x 1 KiB stream on uvicorn (1 process)",
            "streams/s",
            [
                Cell("bridge", on_uvicorn("flask_bridge"), "/stream", STREAM),
                Cell("a2wsgi", on_uvicorn("flask_a2wsgi"), "/stream", STREAM),
                Cell(
                    UVICORN_OWN,
                    on_uvicorn("flask_uvicorn_own"),
                    "/stream",
                    STREAM,
                ),
                Cell(
                    "Flask native on gunicorn gthread", on_gthread("flask_app"), "/stream", STREAM
                ),
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
                Cell("bridge (per-thread)", on_gthread("fastapi_bridge"), "/", FASTAPI_HELLO),
                Cell("a2wsgi", on_gthread("fastapi_a2wsgi"), "/", FASTAPI_HELLO),
                Cell("FastAPI native on uvicorn", on_uvicorn("fastapi_app"), "/", FASTAPI_HELLO),
                Cell("bare WSGI hello on gthread (ceiling)", on_gthread("wsgi_hello"), "/", HELLO),
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
                Cell("bridge (per-thread)", on_gthread("fastapi_bridge"), "/stream", STREAM),
                Cell("a2wsgi", on_gthread("fastapi_a2wsgi"), "/stream", STREAM),
                Cell("FastAPI native on uvicorn", on_uvicorn("fastapi_app"), "/stream", STREAM),
            ],
            "a2wsgi",
            "bridge (per-thread)",
            None,
            "",
        ),
    ]


# -- running -------------------------------------------------------------------------------------


def check_once(cell: Cell, port: int) -> None:
    """One response by hand before anything is timed: status 200 and the exact body size."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", cell.path)
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    if response.status != 200 or len(body) != cell.expect:
        raise RuntimeError(
            f"{cell.name} GET {cell.path}: {response.status}, {len(body)} bytes "
            f"(want 200, {cell.expect})"
        )


def measure(cell: Cell, client: Wrk | PythonClient, seconds: float) -> None:
    from bench.stamp import tree_cpu_seconds

    assert cell.server is not None
    cpu = tree_cpu_seconds(cell.server.proc.pid)
    window = client.measure(cell.server.port, cell.path, cell.expect, seconds)
    cpu = tree_cpu_seconds(cell.server.proc.pid) - cpu
    cell.windows.append(window)
    cell.cpu_us.append(cpu / max(window.responses, 1) * 1e6)


def run(
    scenario: Scenario, client: Wrk | PythonClient, seconds: float, warmup: float, repeats: int
) -> dict[str, Any]:
    from tests.servers import serve  # here: a run as a file puts the project root on sys.path

    cells = scenario.cells
    with ExitStack() as stack:
        for cell in cells:
            cell.server = stack.enter_context(serve(cell.argv, timeout=60))
        for cell in cells:
            assert cell.server is not None
            check_once(cell, cell.server.port)
            if warmup:
                client.measure(cell.server.port, cell.path, cell.expect, warmup)
        for round_ in range(repeats):
            shift = round_ % len(cells)  # each round starts one cell later
            for cell in cells[shift:] + cells[:shift]:
                measure(cell, client, seconds)
    return summarise(scenario, BIN)


# -- the command ----------------------------------------------------------------------------------


def cpus(pin: bool) -> tuple[set[int] | None, set[int] | None]:
    """(the load generator's CPUs, the servers' CPUs): one each, apart, when there are two."""
    mine = sorted(os.sched_getaffinity(0))
    if not pin or len(mine) < 2:
        return None, None
    return {mine[0]}, {mine[1]}


def pinning_note(client_cpus: set[int] | None, server_cpus: set[int] | None) -> str:
    if not client_cpus or not server_cpus:
        return "not pinned: the load generator and the server share every CPU"
    return (
        f"the server pinned to CPU {min(server_cpus)} (taskset: all its processes and threads), "
        f"the load generator to CPU {min(client_cpus)}"
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 round of 1 s, no warm-up")
    parser.add_argument("--json", type=Path, help="write results (and a chart and .md)")
    parser.add_argument("--only", default="", help="comma-separated scenario keys")
    parser.add_argument("--seconds", type=int, help="per measured window (default 3; quick 1)")
    parser.add_argument("--repeats", type=int, help="rounds (default 3; quick 1)")
    parser.add_argument("--client", choices=("wrk", "python"), default="wrk")
    parser.add_argument("--connections", type=int, default=LOAD_CONNECTIONS, help="default 64")
    parser.add_argument("--no-pin", action="store_true", help="let every process use every CPU")
    return parser.parse_args()


def main() -> None:
    from bench import loadgen, stamp

    args = parse_args()
    seconds = args.seconds or (1 if args.quick else 3)
    warmup = 0 if args.quick else 1
    repeats = args.repeats or (1 if args.quick else 3)
    wanted = {key for key in args.only.split(",") if key}
    client_cpus, server_cpus = cpus(not args.no_pin)
    pin = ["/usr/bin/env", "taskset", "-c", str(min(server_cpus))] if server_cpus else []
    chosen = [s for s in scenarios(pin) if not wanted or s.key in wanted]
    if not chosen:
        sys.exit(f"no scenario among {sorted(s.key for s in scenarios(pin))}")
    client: loadgen.Wrk | loadgen.PythonClient
    if args.client == "wrk":
        wrk = loadgen.find_wrk()
        client = loadgen.Wrk(wrk, args.connections, client_cpus)
        generator = f"{loadgen.wrk_version(wrk)}, {client.settings()}"
    else:
        client = loadgen.PythonClient(args.connections, client_cpus)
        generator = client.settings()
    report_stamp = stamp.stamp(generator)
    report: dict[str, Any] = {
        "machine": f"{report_stamp['python']}, {os.cpu_count()} CPUs",
        "client": args.client,
        "connections": args.connections,
        "pinning": pinning_note(client_cpus, server_cpus),
        "budget_s": seconds,
        "warmup_s": warmup,
        "repeats": repeats,
        "stamp": report_stamp,
    }
    print(f"bench.http_bench: {method(report)}", *stamp.lines(report_stamp), "", sep="\n")
    began = time.perf_counter()
    results = []
    for scenario in chosen:
        results.append(run(scenario, client, seconds, warmup, repeats))
        print(text_table(results[-1]) + "\n", flush=True)
    stamp.finish(report_stamp, time.perf_counter() - began)
    report["elapsed_s"] = report_stamp["elapsed_s"]
    report["results"] = results
    print(f"total {report['elapsed_s']} s; load average {report_stamp['load_after']}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        from bench.chart import write

        print("written:", args.json, *write(args.json))


if __name__ == "__main__":
    if str(ROOT) not in sys.path:  # run as a file, not with -m
        sys.path.insert(0, str(ROOT))
    main()
