"""FastAPI ``def`` endpoints and ``FileResponse`` through AsgiToWsgi: req/s and OS threads.

    .venv/bin/python -m bench.def_endpoints              # about a minute
    .venv/bin/python -m bench.def_endpoints --output bench/results/def_endpoints-before.md

Starlette runs a ``def`` endpoint, and reads a ``FileResponse``'s file, in anyio's worker
threads; anyio reuses them for as long as their event loop's root task lives (issue 6, section
3). An ``async def`` endpoint uses none and is the comparison. Each adapter (bridge, a2wsgi as
the peer) serves the same app in the same run:

- in process: a fresh adapter per round, called as a WSGI app ``--requests`` times from one
  thread, then from four (a thread pool, as a threaded server would);
- over HTTP: ``gunicorn -k gthread --threads 8 -w 1`` on 127.0.0.1, one server per adapter,
  driven by bench.http_bench's keep-alive load generator (16 connections), ``--http-requests``
  requests a round after a warm-up.

Each row is ``--rounds`` rounds, the adapters interleaved: req/s of the best round; threads of
the worst. "anyio started" is how many threads named "AnyIO worker thread" a round started,
counted exactly by wrapping ``threading.Thread.start`` (Python 3.11 has no audit event for it);
"peak" (sampled) and "after" (read at the end) are thread counts: in process, the threads above
those alive before the round (after: once the calling threads are gone, before ``close()``);
over HTTP, the gunicorn worker process's own count, read with psutil.
Every response is checked (status 200, body size).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import os
import platform
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import FileResponse

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
FILE = Path(__file__)  # what /file serves
HELLO = {"message": "Hello, world!"}
HELLO_SIZE = len(b'{"message":"Hello, world!"}')
WORKER_THREAD = "AnyIO worker thread"
ENDPOINTS = {"def": "/def", "FileResponse": "/file", "async def": "/async"}
HTTP_WARMUP = 200


class ThreadStarts:
    """Threads started in this process, by name, once ``install()`` has run."""

    def __init__(self) -> None:
        self.by_name: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._installed = False

    def install(self) -> None:
        if self._installed:
            return
        self._installed = True
        original = threading.Thread.start
        counts = self

        def start(thread: threading.Thread) -> None:
            with counts._lock:
                counts.by_name[thread.name] += 1
            original(thread)

        threading.Thread.start = start  # type: ignore[assignment]

    def workers(self) -> int:
        with self._lock:
            return self.by_name[WORKER_THREAD]


STARTS = ThreadStarts()

app = FastAPI()


@app.get("/def")
def hello_blocking() -> dict[str, str]:
    return HELLO


@app.get("/async")
async def hello() -> dict[str, str]:
    return HELLO


@app.get("/file")
async def file() -> FileResponse:
    return FileResponse(FILE)


@app.get("/threads")
async def threads() -> dict[str, int]:
    """How many anyio worker threads this process has started (for the HTTP cells)."""
    return {"anyio_started": STARTS.workers(), "active": threading.active_count()}


def expected_size(path: str) -> int:
    return FILE.stat().st_size if path == "/file" else HELLO_SIZE


def _bridge() -> Any:
    import bridge

    return bridge.AsgiToWsgi(app)


def _a2wsgi() -> Any:
    import a2wsgi

    return a2wsgi.ASGIMiddleware(app)  # type: ignore[arg-type]


ADAPTERS: dict[str, Callable[[], Any]] = {"bridge": _bridge, "a2wsgi": _a2wsgi}


def __getattr__(name: str) -> Any:
    """``bridge_app`` and ``a2wsgi_app`` for gunicorn, built on first access (a2wsgi starts a
    thread in its constructor: it must happen in the worker, not at import)."""
    adapter = name.removesuffix("_app")
    if not name.endswith("_app") or adapter not in ADAPTERS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    STARTS.install()
    built = ADAPTERS[adapter]()
    globals()[name] = built
    return built


@dataclass
class Row:
    part: str
    endpoint: str
    adapter: str
    clients: str
    requests: int
    rate: float
    anyio_started: int
    peak: int  # threads above the row's baseline (in process) / the worker's (HTTP)
    after: int


# -- in process -----------------------------------------------------------------------------------


def in_process(adapter: str, endpoint: str, requests: int, threads: int) -> Row:
    """One fresh adapter, ``requests`` requests from ``threads`` calling threads."""
    from tests.apps_lifetime import get

    path, expect = ENDPOINTS[endpoint], expected_size(ENDPOINTS[endpoint])
    baseline = threading.active_count()  # earlier rows' leftovers (a2wsgi's loop threads)
    wsgi_app = ADAPTERS[adapter]()
    peak = [baseline]
    started = STARTS.workers()

    def one(_: int) -> None:
        status, body = get(wsgi_app, path)
        if status != "200 OK" or len(body) != expect:
            raise RuntimeError(f"{adapter} {path}: {status}, {len(body)} bytes (want {expect})")
        peak.append(threading.active_count())

    began = time.perf_counter()
    if threads == 1:
        for i in range(requests):
            one(i)
    else:
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            list(pool.map(one, range(requests)))
    rate = requests / (time.perf_counter() - began)
    anyio_started, after = STARTS.workers() - started, threading.active_count() - baseline
    close = getattr(wsgi_app, "close", None)
    if close is not None:
        close()
    clients = "1 thread" if threads == 1 else f"{threads} threads"
    return Row(
        "in process",
        endpoint,
        adapter,
        clients,
        requests,
        rate,
        anyio_started,
        max(peak) - baseline,
        after,
    )


def best_of(rounds: list[Row]) -> Row:
    """The best round's rate; the most threads any round started or peaked at; the last
    round's count after."""
    row = rounds[-1]
    row.rate = max(r.rate for r in rounds)
    row.anyio_started = max(r.anyio_started for r in rounds)
    row.peak = max(r.peak for r in rounds)
    return row


# -- over HTTP ------------------------------------------------------------------------------------


def gthread(adapter: str) -> list[str]:
    return [
        "gunicorn",
        "-k",
        "gthread",
        "--threads",
        "8",
        "-w",
        "1",
        "--bind",
        "127.0.0.1:{port}",
        "--no-control-socket",
        "--log-level",
        "warning",
        f"bench.def_endpoints:{adapter}_app",
    ]


@contextmanager
def sampling(process: Any) -> Iterator[list[int]]:
    """The process's thread count, every 10 ms until the block ends."""
    counts = [process.num_threads()]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.01):
            counts.append(process.num_threads())

    sampler = threading.Thread(target=sample, name="bench-sampler")
    sampler.start()
    try:
        yield counts
    finally:
        done.set()
        sampler.join()


def over_http(server: Any, adapter: str, endpoint: str, requests: int) -> Row:
    """One round on ``server``: a warm-up, then ``requests`` requests."""
    import httpx
    import psutil

    from bench.http_bench import CONNECTIONS, hammer

    path, expect = ENDPOINTS[endpoint], expected_size(ENDPOINTS[endpoint])
    worker = psutil.Process(server.proc.pid).children()[0]
    asyncio.run(hammer(server.port, path, expect, 30, HTTP_WARMUP))
    started = httpx.get(f"{server.url}/threads", timeout=10).json()["anyio_started"]
    with sampling(worker) as counts:
        began = time.perf_counter()
        done = len(asyncio.run(hammer(server.port, path, expect, 60, requests)))
        rate = done / (time.perf_counter() - began)
    anyio_started = httpx.get(f"{server.url}/threads", timeout=10).json()["anyio_started"]
    clients = f"{CONNECTIONS} connections"
    return Row(
        "HTTP gthread",
        endpoint,
        adapter,
        clients,
        done,
        rate,
        anyio_started - started,
        max(counts),
        worker.num_threads(),
    )


# -- running and reporting ------------------------------------------------------------------------


def markdown(rows: list[Row], machine: str, load: str, rounds: int) -> str:
    lines = [
        f"bench.def_endpoints on {machine} (load average {load} at the start); both adapters in the same run, {rounds} rounds per "
        "row, interleaved: req/s of the best round, threads started and peak of the worst, "
        "after of the last; requests are per round. In process: a fresh adapter per round, "
        "called as a WSGI app; peak and after count the threads above those alive before the "
        "round (after: once the calling threads are gone, before `close()`). HTTP: `gunicorn -k "
        f"gthread --threads 8 -w 1`, {HTTP_WARMUP} warm-up requests before each round; peak and "
        "after are the worker process's thread count.",
        "",
        "| where | endpoint | adapter | clients | requests | req/s | anyio threads started "
        "| peak threads | threads after |",
        "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r.part} | {r.endpoint} | {r.adapter} | {r.clients} | {r.requests:,} | "
            f"{r.rate:,.0f} | {r.anyio_started:,} | {r.peak} | {r.after} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000, help="per in-process round")
    parser.add_argument("--http-requests", type=int, default=1000, help="per HTTP round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per row, best kept")
    parser.add_argument("--output", type=Path, default=RESULTS / "def_endpoints.md")
    args = parser.parse_args()
    from tests.servers import serve

    machine = (
        f"{platform.python_implementation()} {platform.python_version()} on "
        f"{platform.machine()}, {os.cpu_count()} CPUs"
    )
    load = " / ".join(f"{n:.1f}" for n in os.getloadavg())  # other work on the machine
    STARTS.install()
    rows: list[Row] = []
    for endpoint in ENDPOINTS:
        for threads in (1, 4):
            rounds: dict[str, list[Row]] = {name: [] for name in ADAPTERS}
            for _ in range(args.rounds):
                for name in ADAPTERS:
                    rounds[name].append(in_process(name, endpoint, args.requests, threads))
            rows += [best_of(rounds[name]) for name in ADAPTERS]
            print(*rows[-2:], sep="\n", flush=True)
    with serve(gthread("bridge"), timeout=30) as ours, serve(gthread("a2wsgi"), timeout=30) as peer:
        servers = {"bridge": ours, "a2wsgi": peer}
        for endpoint in ENDPOINTS:
            rounds = {name: [] for name in servers}
            for _ in range(args.rounds):
                for name, server in servers.items():
                    rounds[name].append(over_http(server, name, endpoint, args.http_requests))
            rows += [best_of(rounds[name]) for name in servers]
            print(*rows[-2:], sep="\n", flush=True)
    table = markdown(rows, machine, load, args.rounds)
    print("\n" + table)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(table)
    print("written:", args.output)


if __name__ == "__main__":
    if str(ROOT) not in sys.path:  # run as a file, not with -m
        sys.path.insert(0, str(ROOT))
    main()
