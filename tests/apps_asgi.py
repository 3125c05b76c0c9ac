"""Test-only ASGI apps for ``tests/test_asgi_to_wsgi_e2e.py``: a plain Starlette app (no FastAPI
on top) served by real WSGI servers through ``AsgiToWsgi``, in both loop modes.

Configured by environment variables, as ``tests/apps_wsgi.py`` is: ``BRIDGE_TEST_DIR`` is where
the tests and the app leave files for each other (hand-off gates, markers written in ``finally``
blocks, the lifespan shutdown's record); ``BRIDGE_TEST_LIFESPAN=fail`` fails the lifespan
startup. ``python -m tests.apps_asgi PORT [APP]`` serves ``APP``
(default ``wsgi_app``) on the standard library's ``wsgiref`` with a thread per request.

- ``wsgi_app``: per-thread loops (the default).
- ``shared_wsgi_app``: ``loop="shared"``, one loop and one lifespan for the whole process.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route

from bridge import AsgiToWsgi
from tests.servers import write_marker

GATE_WAIT = 5.0  # seconds /gate waits for its file before giving up (and saying so)


def _dir() -> Path:
    return Path(os.environ.get("BRIDGE_TEST_DIR", "."))


def _file(name: str) -> Path:
    if not name.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"not a plain file name: {name!r}")
    return _dir() / name


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
    """State for the requests on this loop; its shutdown leaves a line in ``<dir>/shutdown``.
    ``BRIDGE_TEST_LIFESPAN=fail`` makes the startup fail."""
    if os.environ.get("BRIDGE_TEST_LIFESPAN") == "fail":
        raise ConnectionRefusedError("the test database is unreachable")
    loop_id = id(asyncio.get_running_loop())
    yield {"loop_id": loop_id, "pid": os.getpid()}
    with (_dir() / "shutdown").open("a") as record:
        record.write(f"{os.getpid()} {loop_id}\n")


async def hello(request: Request) -> JSONResponse:
    # A wrong adapter whose receive() answers http.disconnect as soon as the body is read makes
    # Starlette think the client is gone while it is still waiting for this answer.
    return JSONResponse(
        {
            "hello": request.path_params["name"],
            "root_path": request.scope.get("root_path"),
            "lifespan_loop": request.state.loop_id,
            "request_loop": id(asyncio.get_running_loop()),
            "thread": threading.current_thread().name,
            "disconnected": await request.is_disconnected(),
        }
    )


async def echo(request: Request) -> StreamingResponse:
    return StreamingResponse(request.stream(), media_type="application/octet-stream")


async def gate(request: Request) -> StreamingResponse:
    """Chunk two only once the test has created ``<dir>/<name>``: proof it holds chunk one."""
    opened = _file(request.path_params["name"])

    async def chunks() -> AsyncIterator[bytes]:
        yield b"chunk one\n"
        for _ in range(int(GATE_WAIT / 0.005)):
            if opened.exists():
                yield b"chunk two\n"
                return
            await asyncio.sleep(0.005)
        yield b"the gate never opened\n"

    return StreamingResponse(chunks(), media_type="text/plain")


async def count(request: Request) -> StreamingResponse:
    """A short finite stream: ``n`` lines, each its own body message."""

    async def lines() -> AsyncIterator[bytes]:
        for i in range(int(request.path_params["n"])):
            yield f"{i}\n".encode()
            await asyncio.sleep(0)

    return StreamingResponse(lines(), media_type="text/plain")


async def endless(request: Request) -> StreamingResponse:
    """Ticks until the client is gone; how the generator ended goes to ``<dir>/<name>``."""
    marker = _file(request.path_params["name"])

    async def ticks() -> AsyncIterator[bytes]:
        ended = "ran to the end"
        try:
            for _ in range(3000):  # 30 s at most: far beyond any test's wait
                yield b"tick\n"
                await asyncio.sleep(0.01)
        except BaseException as exc:
            ended = type(exc).__name__
            raise
        finally:
            write_marker(marker, ended)

    return StreamingResponse(ticks(), media_type="text/plain")


async def consume(request: Request) -> PlainTextResponse:
    """Reads the whole body; how that ended goes to ``<dir>/<name>``."""
    marker = _file(request.path_params["name"])
    size = 0
    ended = "ran to the end"
    try:
        async for piece in request.stream():
            size += len(piece)
    except BaseException as exc:
        ended = type(exc).__name__
        raise
    finally:
        write_marker(marker, f"{ended} {size}")
    return PlainTextResponse(str(size))


async def stream_boom(request: Request) -> StreamingResponse:
    """One chunk, then an error: the response has started, so the server must cut it short."""

    async def chunks() -> AsyncIterator[bytes]:
        yield b"chunk one\n"
        await asyncio.sleep(0.01)
        raise LookupError("starlette stream broke after the headers")

    return StreamingResponse(chunks(), media_type="text/plain")


async def sleep(request: Request) -> JSONResponse:
    await asyncio.sleep(0.5)
    return JSONResponse({"loop": id(asyncio.get_running_loop())})


def blocking(request: Request) -> PlainTextResponse:
    """A plain ``def`` endpoint: Starlette runs it in anyio's worker threads."""
    return PlainTextResponse(threading.current_thread().name)


async def boom(request: Request) -> PlainTextResponse:
    raise LookupError("starlette app broke before responding")


async def later(request: Request) -> PlainTextResponse:
    """Answers at once; the background task then writes ``<dir>/<name>`` after 0.2 s."""
    marker = _file(request.path_params["name"])

    async def work() -> None:
        await asyncio.sleep(0.2)
        write_marker(marker, "done")

    return PlainTextResponse("queued", background=BackgroundTask(work))


routes = [
    Route("/hello/{name}", hello),
    Route("/echo", echo, methods=["POST"]),
    Route("/gate/{name}", gate),
    Route("/count/{n:int}", count),
    Route("/endless/{name}", endless),
    Route("/consume/{name}", consume, methods=["POST"]),
    Route("/stream-boom", stream_boom),
    Route("/sleep", sleep),
    Route("/blocking", blocking),
    Route("/boom", boom),
    Route("/later/{name}", later, methods=["POST"]),
]
starlette_app = Starlette(routes=routes, lifespan=lifespan)
wsgi_app = AsgiToWsgi(starlette_app)
shared_wsgi_app = AsgiToWsgi(starlette_app, loop="shared")


def serve_wsgiref(port: int, app: Any) -> None:
    """The standard library's server with a thread per request, until SIGTERM (then the
    interpreter exits normally, so ``atexit`` runs the adapter's lifespan shutdown)."""
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    class ThreadingServer(ThreadingMixIn, WSGIServer):
        daemon_threads = True

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    with make_server("127.0.0.1", port, app, ThreadingServer, QuietHandler) as server:
        print(f"wsgiref serving on 127.0.0.1:{port}", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    serve_wsgiref(int(sys.argv[1]), globals()[sys.argv[2] if len(sys.argv) > 2 else "wsgi_app"])
