"""Where bridge's time goes in the bench.inprocess scenarios: hops, loop turns, hot functions.

    .venv/bin/python -m bench.profile_bridge [w2a-hello|w2a-stream|a2w-hello|a2w-stream|...]

For each chosen scenario: per operation, how many ``call_soon_threadsafe`` calls (each one a
cross-thread wake-up), self-pipe writes, executor submissions, event-loop iterations
(``_run_once``) and ``run_forever`` entries happen; then the top of a cProfile listing.
"""

from __future__ import annotations

import asyncio
import asyncio.base_events
import concurrent.futures
import cProfile
import io
import pstats
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import bridge
from bench.inprocess import (
    asgi_hello,
    asgi_stream,
    call_wsgi,
    make_fastapi,
    make_flask,
    one_request,
    wsgi_hello,
    wsgi_stream,
)

COUNTS: Counter[str] = Counter()


def count(owner: Any, name: str, label: str) -> None:
    original = getattr(owner, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        COUNTS[label] += 1
        return original(*args, **kwargs)

    setattr(owner, name, counted)


def instrument() -> None:
    base = asyncio.base_events.BaseEventLoop
    count(base, "call_soon_threadsafe", "call_soon_threadsafe")
    count(base, "_run_once", "loop iterations (_run_once)")
    count(base, "run_forever", "run_forever entries")
    count(asyncio.selector_events.BaseSelectorEventLoop, "_write_to_self", "self-pipe writes")
    count(concurrent.futures.ThreadPoolExecutor, "submit", "executor submits")


def asgi_ops(app: Any, n: int, concurrency: int = 1) -> Callable[[], None]:
    def go() -> None:
        loop = asyncio.new_event_loop()

        async def many() -> None:
            for _ in range(n // concurrency):
                await asyncio.gather(*(one_request(app) for _ in range(concurrency)))

        loop.run_until_complete(many())
        loop.close()

    return go


def wsgi_ops(app: Any, n: int) -> Callable[[], None]:
    def go() -> None:
        for _ in range(n):
            call_wsgi(app)

    return go


def scenarios(n: int) -> dict[str, Callable[[], None]]:
    off = {"lifespan": "off"}
    return {
        "w2a-hello": asgi_ops(bridge.WsgiToAsgi(wsgi_hello), n),
        "w2a-hello-64": asgi_ops(bridge.WsgiToAsgi(wsgi_hello), n, 64),
        "w2a-stream": asgi_ops(bridge.WsgiToAsgi(wsgi_stream), n),
        "w2a-flask": asgi_ops(bridge.WsgiToAsgi(make_flask()), n),
        "a2w-hello": wsgi_ops(bridge.AsgiToWsgi(asgi_hello, **off), n),
        "a2w-stream": wsgi_ops(bridge.AsgiToWsgi(asgi_stream, **off), n),
        "a2w-fastapi": wsgi_ops(bridge.AsgiToWsgi(make_fastapi(), **off), n),
        "direct-stream": asgi_ops(asgi_stream, n),
        "direct-fastapi": asgi_ops(make_fastapi(), n),
        "a2w-shared-hello": wsgi_ops(bridge.AsgiToWsgi(asgi_hello, loop="shared", **off), n),
    }


def main() -> None:
    n = 2048
    chosen = sys.argv[1:] or list(scenarios(1))
    instrument()
    for name in chosen:
        ops = scenarios(n)[name]
        scenarios(50)[name]()  # warm up imports and first-request work elsewhere
        COUNTS.clear()
        started = time.perf_counter()
        ops()
        elapsed = time.perf_counter() - started
        print(f"== {name}: {elapsed / n * 1e6:.1f} us/op (instrumented), per op:")
        for label, total in sorted(COUNTS.items()):
            print(f"   {label:<32}{total / n:8.2f}")
        profiler = cProfile.Profile()
        profiler.runcall(scenarios(n)[name])
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(14)
        lines = [line for line in out.getvalue().splitlines() if line.strip()]
        print("\n".join(lines[3:]) + "\n")


if __name__ == "__main__":
    main()
