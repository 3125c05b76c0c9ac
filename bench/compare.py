"""bridge against a2wsgi and asgiref, in process, side by side in one run.

    .venv/bin/python -m bench.compare            # about two minutes
    .venv/bin/python -m bench.compare --quick    # a smoke run

No sockets: a minimal ASGI server harness drives the WSGI -> ASGI adapters, and plain calls of
the WSGI callable drive the ASGI -> WSGI ones, so what is measured is the adapters (and the
frameworks where named). Every cell runs for a time budget; the repeats of all adapters of a
scenario are interleaved and the best kept, so a noisy neighbour hurts them all alike. Read the
ratios, not the absolute numbers: they compare adapters measured minutes apart on one machine.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import platform
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import a2wsgi
import asgiref.wsgi
import flask
from fastapi import FastAPI

import bridge

RESULTS = Path(__file__).parent / "results"
SCOPE: dict[str, Any] = {
    "type": "http",
    "asgi": {"version": "3.0", "spec_version": "2.4"},
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "path": "/",
    "raw_path": b"/",
    "root_path": "",
    "query_string": b"",
    "headers": [(b"host", b"bench")],
    "client": ("127.0.0.1", 50000),
    "server": ("127.0.0.1", 8000),
}

# -- the apps ---------------------------------------------------------------------------------


def wsgi_hello(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
    return [b"Hello, world!"]


def wsgi_stream(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    for _ in range(100):
        yield b"x" * 1024


flask_app = flask.Flask(__name__)
flask_app.add_url_rule("/", "hello", lambda: "Hello, world!")


async def asgi_hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    headers = [(b"content-type", b"text/plain"), (b"content-length", b"13")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"Hello, world!"})


async def asgi_stream(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    for _ in range(100):
        await send({"type": "http.response.body", "body": b"x" * 1024, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


fastapi_app = FastAPI()


@fastapi_app.get("/")
async def fastapi_hello() -> dict[str, str]:  # async: a sync route would time anyio's pool
    return {"hello": "world"}


# -- driving an ASGI app (WSGI -> ASGI adapters, and ASGI apps "direct") -------------------------


async def asgi_request(app: Any) -> int:
    """One request through ``app``, as a server would make it; returns the body bytes."""
    done = asyncio.Event()
    delivered = False
    size = 0

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal size
        size += len(message.get("body", b""))
        if message["type"] == "http.response.body" and not message.get("more_body"):
            done.set()

    await app(dict(SCOPE), receive, send)
    return size


async def asgi_rate(app: Any, budget: float, concurrency: int) -> float:
    for _ in range(20):
        await asgi_request(app)
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < budget:
        await asyncio.gather(*(asgi_request(app) for _ in range(concurrency)))
        count += concurrency
    return count / (time.perf_counter() - started)


def asgi_cell(factory: Callable[[], Any], concurrency: int = 1) -> Callable[[float], float]:
    def measure(budget: float) -> float:
        app = factory()
        loop = asyncio.new_event_loop()
        try:
            return loop.run_until_complete(asgi_rate(app, budget, concurrency))
        finally:
            loop.close()

    return measure


# -- driving a WSGI callable (ASGI -> WSGI adapters) -----------------------------------------------


def wsgi_request(app: Any) -> int:
    environ = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/",
        "QUERY_STRING": "",
        "SERVER_NAME": "bench",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "bench",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": io.StringIO(),
        "wsgi.input_terminated": True,
    }
    iterable = app(environ, lambda status, headers, exc_info=None: None)
    try:
        return sum(len(chunk) for chunk in iterable)
    finally:
        if hasattr(iterable, "close"):
            iterable.close()


def wsgi_cell(factory: Callable[[], Any], threads: int = 1) -> Callable[[float], float]:
    def measure(budget: float) -> float:
        app = factory()
        counts = [0] * threads

        def worker(i: int) -> None:
            for _ in range(20):
                wsgi_request(app)
            deadline = time.perf_counter() + budget
            while time.perf_counter() < deadline:
                wsgi_request(app)
                counts[i] += 1

        started = time.perf_counter()
        pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        elapsed = time.perf_counter() - started
        if hasattr(app, "close"):
            app.close()
        return sum(counts) / elapsed

    return measure


def direct_cell(app: Any) -> Callable[[float], float]:
    """The ASGI app awaited directly on a loop: what an adapter is measured against."""
    return asgi_cell(lambda: app)


def a2wsgi_asgi(app: Any) -> Any:
    return a2wsgi.ASGIMiddleware(app)


def bridge_asgi(app: Any, loop: str = "per-thread") -> Any:
    return bridge.AsgiToWsgi(app, loop=loop, lifespan="off")


# -- the scenarios -----------------------------------------------------------------------------
# (name, unit, {adapter: measure}, baseline adapter, SPEC target for bridge / baseline or None)

Scenario = tuple[str, str, dict[str, Callable[[float], float]], str, float | None]


def scenarios() -> list[Scenario]:
    w2a = {
        "bridge": lambda app: bridge.WsgiToAsgi(app),
        "a2wsgi": lambda app: a2wsgi.WSGIMiddleware(app),
        "asgiref": lambda app: asgiref.wsgi.WsgiToAsgi(app),
    }

    def each(app: Any, concurrency: int = 1) -> dict[str, Callable[[float], float]]:
        return {name: asgi_cell(lambda f=f: f(app), concurrency) for name, f in w2a.items()}

    return [
        ("WSGI->ASGI hello, 1 task", "req/s", each(wsgi_hello), "a2wsgi", 4.0),
        ("WSGI->ASGI hello, 64 tasks", "req/s", each(wsgi_hello, 64), "a2wsgi", 4.0),
        ("WSGI->ASGI 100 x 1 KiB stream", "streams/s", each(wsgi_stream), "a2wsgi", 50.0),
        ("WSGI->ASGI Flask hello", "req/s", each(flask_app), "a2wsgi", None),
        (
            "ASGI->WSGI hello, 1 thread",
            "req/s",
            {
                "bridge": wsgi_cell(lambda: bridge_asgi(asgi_hello)),
                "bridge shared": wsgi_cell(lambda: bridge_asgi(asgi_hello, "shared")),
                "a2wsgi": wsgi_cell(lambda: a2wsgi_asgi(asgi_hello)),
            },
            "a2wsgi",
            8.0,
        ),
        (
            "ASGI->WSGI hello, 8 threads",
            "req/s",
            {
                "bridge": wsgi_cell(lambda: bridge_asgi(asgi_hello), 8),
                "bridge shared": wsgi_cell(lambda: bridge_asgi(asgi_hello, "shared"), 8),
                "a2wsgi": wsgi_cell(lambda: a2wsgi_asgi(asgi_hello), 8),
            },
            "a2wsgi",
            8.0,
        ),
        (
            "ASGI->WSGI 100 x 1 KiB stream",
            "streams/s",
            {
                "bridge": wsgi_cell(lambda: bridge_asgi(asgi_stream)),
                "a2wsgi": wsgi_cell(lambda: a2wsgi_asgi(asgi_stream)),
            },
            "a2wsgi",
            None,
        ),
        (
            "ASGI->WSGI FastAPI hello vs direct",
            "req/s",
            {
                "bridge": wsgi_cell(lambda: bridge_asgi(fastapi_app)),
                "direct": direct_cell(fastapi_app),
                "a2wsgi": wsgi_cell(lambda: a2wsgi_asgi(fastapi_app)),
            },
            "direct",
            0.7,
        ),
        (
            "ASGI->WSGI stream vs direct",
            "streams/s",
            {
                "bridge": wsgi_cell(lambda: bridge_asgi(asgi_stream)),
                "direct": direct_cell(asgi_stream),
            },
            "direct",
            0.5,
        ),
    ]


def run(budget: float, repeats: int) -> list[dict[str, Any]]:
    results = []
    for name, unit, cells, baseline, target in scenarios():
        best = dict.fromkeys(cells, 0.0)
        for _ in range(repeats):  # interleaved: every adapter once per round
            for adapter, measure in cells.items():
                best[adapter] = max(best[adapter], measure(budget))
        ratio = best["bridge"] / best[baseline]
        results.append(
            {
                "scenario": name,
                "unit": unit,
                "rates": best,
                "baseline": baseline,
                "ratio": ratio,
                "target": target,
                "met": None if target is None else ratio >= target,
            }
        )
        print(table([results[-1]]), flush=True)
    return results


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| scenario | adapter | rate | bridge ÷ baseline | SPEC target |",
        "| --- | --- | ---: | ---: | --- |",
    ]
    for r in results:
        for i, (adapter, rate) in enumerate(r["rates"].items()):
            ratio = f"**{r['ratio']:.1f}×** vs {r['baseline']}" if i == 0 else ""
            target = ""
            if i == 0 and r["target"] is not None:
                target = f"≥ {r['target']}× {'met' if r['met'] else 'MISSED'}"
            lines.append(
                f"| {r['scenario'] if i == 0 else ''} | {adapter} | {rate:,.0f} {r['unit']} | {ratio} | {target} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short budgets, one repeat")
    parser.add_argument("--json", type=Path, default=RESULTS / "compare.json")
    args = parser.parse_args()
    budget, repeats = (0.25, 1) if args.quick else (1.0, 3)
    results = run(budget, repeats)
    machine = (
        f"{platform.python_implementation()} {platform.python_version()}, {platform.machine()}"
    )
    report = {"machine": machine, "budget_s": budget, "repeats": repeats, "results": results}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    markdown = table(results)
    (args.json.parent / "compare.md").write_text(markdown + "\n")
    from bench.chart import write_chart

    write_chart(results, args.json.parent / "compare.svg")
    print(f"\n{markdown}\n\nwritten: {args.json}, compare.md, compare.svg")


if __name__ == "__main__":
    main()
