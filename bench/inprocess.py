"""bridge against its peers in one process, no sockets: ops/s and ratios, both directions.

    .venv/bin/python -m bench.inprocess             # full run, about two and a half minutes
    .venv/bin/python -m bench.inprocess --quick     # smoke run, under a minute
    .venv/bin/python -m bench.inprocess --only w2a-hello-1,a2w-stream
    .venv/bin/python bench/inprocess.py --quick    # as a file works too

WSGI -> ASGI adapters are driven by a minimal ASGI "server" written here (``AsgiHarness``);
ASGI -> WSGI adapters are called as plain WSGI callables, the way a WSGI server's worker thread
calls them. Each cell (one adapter in one scenario) warms up, then counts completed operations
for a fixed time budget; the repeats of a scenario's cells are interleaved (every adapter once
per round) and the best round is kept, so a noisy neighbour slows all of them alike. Ratios
are taken between cells of the same run only. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import gc
import inspect
import io
import json
import os
import platform
import resource
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import a2wsgi
import asgiref.wsgi
import flask
from fastapi import FastAPI

import bridge

RESULTS = Path(__file__).resolve().parent / "results"
HELLO = b"Hello, world!"
CHUNK = b"." * 1024
CHUNKS = 100

# -- the applications under test ------------------------------------------------------------------


def wsgi_hello(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(HELLO)))])
    return [HELLO]


def wsgi_stream(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    for _ in range(CHUNKS):
        yield CHUNK


def make_flask() -> flask.Flask:
    app = flask.Flask("bench_flask")

    @app.route("/")
    def hello() -> str:
        return "Hello, world!"

    return app


async def asgi_hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(HELLO)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": HELLO})


async def asgi_stream(scope: dict[str, Any], receive: Any, send: Any) -> None:
    headers = [(b"content-type", b"application/octet-stream")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    for _ in range(CHUNKS):
        await send({"type": "http.response.body", "body": CHUNK, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


def make_fastapi() -> FastAPI:
    app = FastAPI()

    @app.get("/")
    async def hello() -> dict[str, str]:  # async: a sync route would measure anyio's pool
        return {"message": "Hello, world!"}

    return app


# -- a minimal ASGI server: drives WSGI -> ASGI adapters, and ASGI apps "direct" -----------------


def http_scope() -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"localhost"), (b"user-agent", b"bench"), (b"accept", b"*/*")],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "extensions": {},
    }


class AsgiHarness:
    """One HTTP request as an ASGI server would make it.

    ``receive()`` returns the whole (empty) body in one ``http.request``; its next call waits
    until the response is complete, then returns ``http.disconnect``. ``send()`` collects.
    """

    __slots__ = ("_done", "_sent_request", "messages")

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self._sent_request = False
        self._done = asyncio.Event()

    async def receive(self) -> dict[str, Any]:
        if not self._sent_request:
            self._sent_request = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self._done.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        self.messages.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            self._done.set()

    async def request(self, app: Any) -> tuple[int, int]:
        """Run one request; return (status, body bytes)."""
        await app(http_scope(), self.receive, self.send)
        status = self.messages[0]["status"]
        size = sum(len(m.get("body", b"")) for m in self.messages[1:])
        return status, size


async def one_request(app: Any) -> tuple[int, int]:
    return await AsgiHarness().request(app)


async def shutdown_asgi(app: Any) -> None:
    """Send bridge's WsgiToAsgi a lifespan shutdown: it then stops its pool."""
    if not isinstance(app, bridge.WsgiToAsgi):
        return
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for kind in ("lifespan.startup", "lifespan.shutdown"):
        queue.put_nowait({"type": kind})

    async def send(message: dict[str, Any]) -> None:
        pass

    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    await asyncio.wait_for(app(scope, queue.get, send), 5)


def release(app: Any) -> None:
    """Stop the threads an adapter started, so cells do not pile up idle pools."""
    executor = getattr(app, "executor", None)  # a2wsgi / uvicorn WSGIMiddleware
    if executor is not None and hasattr(executor, "shutdown"):
        executor.shutdown(wait=True)
    if isinstance(app, a2wsgi.ASGIMiddleware):
        app.loop.call_soon_threadsafe(app.loop.stop)
    if isinstance(app, bridge.AsgiToWsgi) and hasattr(app, "close"):
        app.close()


# -- a minimal WSGI server: drives ASGI -> WSGI adapters ------------------------------------------


def wsgi_environ() -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/",
        "QUERY_STRING": "",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "40000",
        "HTTP_HOST": "localhost",
        "HTTP_USER_AGENT": "bench",
        "HTTP_ACCEPT": "*/*",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.input_terminated": True,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }


def call_wsgi(app: Any) -> tuple[int, int]:
    """Call a WSGI app as a server would; consume and close the iterable; (status, bytes)."""
    status: list[str] = []

    def start_response(line: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        status.append(line)

    iterable = app(wsgi_environ(), start_response)
    size = 0
    try:
        for chunk in iterable:
            size += len(chunk)
    finally:
        close = getattr(iterable, "close", None)
        if close is not None:
            close()
    return int(status[-1].split(" ", 1)[0]), size


# -- cells: one adapter in one scenario, measured for a time budget ------------------------------


def check(response: tuple[int, int], expect: int) -> None:
    """Every measured response must be the real one: a fast 503 must not count as a request."""
    if response != (200, expect):
        raise RuntimeError(f"bad response: {response[0]}, {response[1]} bytes (want {expect})")


def asgi_cell(factory: Callable[[], Any], expect: int, concurrency: int = 1) -> Cell:
    """An ASGI app (an adapter around a WSGI app, or an ASGI app itself) under the harness."""

    def measure(budget: float, warmup: float) -> tuple[float, float]:
        loop = asyncio.new_event_loop()
        app = factory()

        async def rate() -> tuple[float, float]:
            status, size = await one_request(app)
            if status != 200 or size != expect:
                raise RuntimeError(f"bad response: {status}, {size} bytes (want {expect})")
            for phase in (warmup, budget):
                done, started, switched = 0, time.perf_counter(), switches()
                while (elapsed := time.perf_counter() - started) < phase:
                    if concurrency == 1:
                        check(await one_request(app), expect)
                    else:
                        wave = await asyncio.gather(*(one_request(app) for _ in range(concurrency)))
                        for response in wave:
                            check(response, expect)
                    done += concurrency
            return done / elapsed, (switches() - switched) / done

        try:
            return loop.run_until_complete(rate())
        finally:
            loop.run_until_complete(shutdown_asgi(app))
            release(app)
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    return measure


def wsgi_cell(factory: Callable[[], Any], expect: int, threads: int = 1) -> Cell:
    """A WSGI callable called from ``threads`` threads, each running its own request loop."""

    def measure(budget: float, warmup: float) -> tuple[float, float]:
        app = factory()
        status, size = call_wsgi(app)
        if status != 200 or size != expect:
            raise RuntimeError(f"bad response: {status}, {size} bytes (want {expect})")
        counts = [0] * threads
        errors: list[BaseException] = []
        start = threading.Barrier(threads + 1)
        stop = threading.Event()

        def worker(index: int) -> None:
            try:
                warm_until = time.perf_counter() + warmup
                while time.perf_counter() < warm_until:
                    check(call_wsgi(app), expect)
                start.wait()
                while not stop.is_set():
                    check(call_wsgi(app), expect)
                    counts[index] += 1
            except BaseException as exc:
                errors.append(exc)
                start.abort()

        pool = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(threads)]
        for thread in pool:
            thread.start()
        try:
            start.wait()
            started, switched = time.perf_counter(), switches()
            time.sleep(budget)
            stop.set()
            for thread in pool:
                thread.join()
            elapsed = time.perf_counter() - started
            switched = switches() - switched
        finally:
            stop.set()
            release(app)
        if errors:
            raise errors[0]
        return sum(counts) / elapsed, switched / max(sum(counts), 1)

    return measure


# A cell measures for (budget, warmup) seconds: (operations/s, context switches per operation).
Cell = Callable[[float, float], tuple[float, float]]


def switches() -> int:
    """Voluntary context switches of this process so far, all threads together (Linux sums
    them): a thread that blocks (waiting for a hand-off, the GIL, epoll) counts one. Per
    operation it counts the thread hops an adapter pays."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_nvcsw


# -- scenarios ------------------------------------------------------------------------------------


@dataclass
class Scenario:
    key: str
    title: str
    unit: str
    cells: dict[str, Cell]
    baseline: str  # the adapter the others are divided by
    target: float | None = None  # SPEC: bridge / baseline must be at least this
    subject: str = "bridge"  # whose ratio the target applies to
    rates: dict[str, list[float]] = field(default_factory=dict)
    switches: dict[str, float] = field(default_factory=dict)  # per op, in the best round


def wsgi_to_asgi_adapters() -> dict[str, Callable[[Any], Any]]:
    from bench.peers import UVICORN_OWN, uvicorn_own  # here: a run as a file fixes sys.path first

    def on_thread_pool_executor(app: Any) -> Any:
        # The pool bridge ran on before its own (issue 8): the same adapter, the old executor.
        pool = concurrent.futures.ThreadPoolExecutor(10, thread_name_prefix="bench-tpe")
        return bridge.WsgiToAsgi(app, executor=pool)

    return {
        "bridge": lambda app: bridge.WsgiToAsgi(app),
        "bridge on ThreadPoolExecutor": on_thread_pool_executor,
        "a2wsgi": lambda app: a2wsgi.WSGIMiddleware(app),
        "asgiref": lambda app: asgiref.wsgi.WsgiToAsgi(app),
        UVICORN_OWN: uvicorn_own,
    }


def bridge_wsgi(app: Any, loop: str = "per-thread") -> Any:
    # lifespan="off" where the option exists: the test apps have none, and a lifespan would
    # only add its startup to the first request of each loop.
    options = inspect.signature(bridge.AsgiToWsgi).parameters
    kwargs = {"lifespan": "off"} if "lifespan" in options else {}
    if loop != "per-thread" or "loop" in options:
        kwargs["loop"] = loop
    return bridge.AsgiToWsgi(app, **kwargs)


def asgi_to_wsgi_missing() -> str | None:
    """Why the ASGI->WSGI scenarios cannot run (bridge.AsgiToWsgi still a placeholder), or None."""
    try:
        app = bridge_wsgi(asgi_hello)
        try:
            call_wsgi(app)
        finally:
            release(app)
    except NotImplementedError as exc:
        return f"bridge.AsgiToWsgi is not implemented yet ({exc or 'NotImplementedError'})"
    return None


def scenarios() -> list[Scenario]:
    w2a = wsgi_to_asgi_adapters()
    flask_app = make_flask()
    fastapi_app = make_fastapi()
    stream_size = CHUNKS * len(CHUNK)
    fastapi_size = len(b'{"message":"Hello, world!"}')

    def each(app: Any, expect: int, concurrency: int = 1) -> dict[str, Cell]:
        return {
            name: asgi_cell(lambda wrap=wrap: wrap(app), expect, concurrency)
            for name, wrap in w2a.items()
        }

    def a2w(app: Any, expect: int, threads: int = 1, shared: bool = True) -> dict[str, Cell]:
        cells = {"bridge (per-thread)": wsgi_cell(lambda: bridge_wsgi(app), expect, threads)}
        if shared:
            cells["bridge (shared)"] = wsgi_cell(
                lambda: bridge_wsgi(app, "shared"), expect, threads
            )
        cells["a2wsgi"] = wsgi_cell(lambda: a2wsgi.ASGIMiddleware(app), expect, threads)
        return cells

    direct = "direct (awaited on a loop)"
    return [
        Scenario(
            "w2a-hello-1",
            "WSGI->ASGI hello, 1 task",
            "req/s",
            each(wsgi_hello, len(HELLO)),
            "a2wsgi",
            4.0,
        ),
        Scenario(
            "w2a-hello-64",
            "WSGI->ASGI hello, 64 concurrent tasks",
            "req/s",
            each(wsgi_hello, len(HELLO), 64),
            "a2wsgi",
            4.0,
        ),
        Scenario(
            "w2a-stream",
            "WSGI->ASGI 100 x 1 KiB stream",
            "streams/s",
            each(wsgi_stream, stream_size),
            "a2wsgi",
            50.0,
        ),
        Scenario(
            "w2a-flask",
            "WSGI->ASGI Flask hello",
            "req/s",
            each(flask_app, len(HELLO)),
            "a2wsgi",
        ),
        Scenario(
            "a2w-hello-1",
            "ASGI->WSGI hello, 1 thread",
            "req/s",
            a2w(asgi_hello, len(HELLO)),
            "a2wsgi",
            8.0,
            "bridge (per-thread)",
        ),
        Scenario(
            "a2w-hello-8",
            "ASGI->WSGI hello, 8 threads",
            "req/s",
            a2w(asgi_hello, len(HELLO), 8),
            "a2wsgi",
            8.0,
            "bridge (per-thread)",
        ),
        Scenario(
            "a2w-stream",
            "ASGI->WSGI 100 x 1 KiB stream",
            "streams/s",
            a2w(asgi_stream, stream_size),
            "a2wsgi",
            None,
            "bridge (per-thread)",
        ),
        Scenario(
            "a2w-fastapi",
            "ASGI->WSGI FastAPI hello vs FastAPI direct",
            "req/s",
            {
                "bridge (per-thread)": wsgi_cell(lambda: bridge_wsgi(fastapi_app), fastapi_size),
                direct: asgi_cell(lambda: fastapi_app, fastapi_size),
                "a2wsgi": wsgi_cell(lambda: a2wsgi.ASGIMiddleware(fastapi_app), fastapi_size),
            },
            direct,
            0.7,
            "bridge (per-thread)",
        ),
        Scenario(
            "a2w-stream-direct",
            "ASGI->WSGI 100 x 1 KiB stream vs direct",
            "streams/s",
            {
                "bridge (per-thread)": wsgi_cell(lambda: bridge_wsgi(asgi_stream), stream_size),
                direct: asgi_cell(lambda: asgi_stream, stream_size),
            },
            direct,
            0.5,
            "bridge (per-thread)",
        ),
    ]


# -- running and reporting -----------------------------------------------------------------------


def run(scenario: Scenario, budget: float, warmup: float, repeats: int) -> dict[str, Any]:
    scenario.rates = {name: [] for name in scenario.cells}
    for _ in range(repeats):
        for name, cell in scenario.cells.items():
            gc.collect()
            rate, switched = cell(budget, warmup)
            if rate > max(scenario.rates[name], default=0.0):
                scenario.switches[name] = switched
            scenario.rates[name].append(rate)
    best = {name: max(rates) for name, rates in scenario.rates.items()}
    base = best[scenario.baseline]
    ratio = best[scenario.subject] / base
    return {
        "key": scenario.key,
        "title": scenario.title,
        "unit": scenario.unit,
        "baseline": scenario.baseline,
        "subject": scenario.subject,
        "target": scenario.target,
        "ratio": ratio,
        "met": None if scenario.target is None else ratio >= scenario.target,
        "adapters": [
            {
                "name": name,
                "best": best[name],
                "runs": scenario.rates[name],
                "ratio": best[name] / base,
                "switches_per_op": scenario.switches[name],
            }
            for name in scenario.cells
        ],
    }


def verdict(result: dict[str, Any]) -> str:
    if result["target"] is None:
        return "(no SPEC target)"
    word = "met" if result["met"] else "MISSED"
    return f"SPEC >= {result['target']:g}x: {word}"


def text_table(result: dict[str, Any]) -> str:
    rows = [
        f"{result['title']}  [{result['unit']}, ratio vs {result['baseline']}]",
        f"  {'adapter':<30}{'ops/s':>12}{'us/op':>10}{'ctx sw/op':>11}{'ratio':>10}",
    ]
    for adapter in result["adapters"]:
        rows.append(
            f"  {adapter['name']:<30}{adapter['best']:>12,.0f}{1e6 / adapter['best']:>10,.1f}"
            f"{adapter.get('switches_per_op', float('nan')):>11.1f}{adapter['ratio']:>9.2f}x"
        )
    rows.append(f"  -> {result['subject']}: {result['ratio']:.2f}x  {verdict(result)}")
    return "\n".join(rows)


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"In process, no sockets; {report['machine']}; best of {report['repeats']} x "
        f"{report['budget_s']:g} s per cell; ratios within this one run.",
        "",
        "| scenario | adapter | ops/s | µs/op | context switches/op | ratio | SPEC target |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for result in report["results"]:
        for i, adapter in enumerate(result["adapters"]):
            title = f"{result['title']} ({result['unit']})" if i == 0 else ""
            is_subject = adapter["name"] == result["subject"]
            ratio = f"{adapter['ratio']:.2f}×"
            if adapter["name"] == result["baseline"]:
                ratio = "1× (baseline)"
            elif is_subject:
                ratio = f"**{ratio}**"
            target = ""
            if is_subject and result["target"] is not None:
                target = f"≥ {result['target']:g}× {'met' if result['met'] else '**MISSED**'}"
            switched = adapter.get("switches_per_op")
            lines.append(
                f"| {title} | {adapter['name']} | {adapter['best']:,.0f} | "
                f"{1e6 / adapter['best']:,.1f} | "
                f"{'' if switched is None else f'{switched:.1f}'} | {ratio} | {target} |"
            )
    if report.get("skipped"):
        lines += ["", f"ASGI->WSGI scenarios skipped: {report['skipped']}."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="0.3 s cells (default 1.0 s)")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--only", default="", help="comma-separated scenario keys")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    budget, warmup = (0.3, 0.05) if args.quick else (1.0, 0.15)
    wanted = {key for key in args.only.split(",") if key}
    chosen = [s for s in scenarios() if not wanted or s.key in wanted]
    skipped = None
    if any(s.key.startswith("a2w-") for s in chosen) and (skipped := asgi_to_wsgi_missing()):
        chosen = [s for s in chosen if not s.key.startswith("a2w-")]
        print(f"SKIPPED the ASGI->WSGI scenarios: {skipped}\n", flush=True)
    machine = (
        f"{platform.python_implementation()} {platform.python_version()} on "
        f"{platform.machine()}, {os.cpu_count()} CPUs"
    )
    print(f"bench.inprocess: {machine}; {budget:g} s x best of {args.repeats}\n", flush=True)
    began = time.perf_counter()
    results = []
    for scenario in chosen:
        results.append(run(scenario, budget, warmup, args.repeats))
        print(text_table(results[-1]) + "\n", flush=True)
    report = {
        "machine": machine,
        "budget_s": budget,
        "warmup_s": warmup,
        "repeats": args.repeats,
        "versions": versions(),
        "elapsed_s": round(time.perf_counter() - began, 1),
        "skipped": skipped,
        "results": results,
    }
    print(f"total {report['elapsed_s']} s")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        from bench.chart import write  # here: it imports this module

        print("written:", args.json, *write(args.json))


def versions() -> dict[str, str]:
    from importlib.metadata import version

    names = ("a2wsgi", "asgiref", "flask", "fastapi", "starlette", "uvicorn")
    return {"python": platform.python_version(), **{name: version(name) for name in names}}


if __name__ == "__main__":
    root = str(RESULTS.parent.parent)
    if root not in sys.path:  # run as a file, not with -m: bench.chart must be importable
        sys.path.insert(0, root)
    main()
