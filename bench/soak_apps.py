"""The apps ``bench.soak`` and the SIGTERM tests serve: one Flask app behind ``WsgiToAsgi``
(uvicorn), one FastAPI app behind ``AsgiToWsgi`` (gunicorn gthread), the same routes on both.

    uvicorn --interface asgi3 bench.soak_apps:flask_soak
    gunicorn -k gthread --threads 8 bench.soak_apps:fastapi_soak

- ``GET /``: a short body. ``GET /stream``: ``STREAM_CHUNKS`` chunks of 1 KiB, each produced
  separately. ``POST /upload``: the length of the body it read, as text.
- ``GET /error``: the route raises (the framework answers 500).
- ``GET /endless``: 16 KiB chunks until the client leaves (``ENDLESS_CAP`` at most, so a client
  that never leaves still ends): the mid-stream disconnects.
- ``GET /stats``: the adapter's ``stats()`` as JSON.
- ``GET /gated/<name>``: writes the file ``entered-<name>`` in ``$BRIDGE_SOAK_DIR``, sends its
  first chunk, then waits (bounded) for the file ``open-<name>`` before it sends the rest: a
  request a test holds in flight. FastAPI's ``def`` twin ``/gated_def/<name>`` waits the same
  in one of anyio's worker threads, then answers the same body at once.

Each lifespan run appends ``startup <token>`` and, when shut down, ``shutdown <token>`` to
``$BRIDGE_SOAK_DIR/lifespan`` (``WsgiToAsgi``: the adapter's own lifespan, recorded around it,
followed by ``pool <n>``, the pool threads still alive after its shutdown).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import flask
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, StreamingResponse

import bridge

CHUNK = b"." * 1024
STREAM_CHUNKS = 64
HELLO = b"Hello, soak!"
ENDLESS_CHUNK = b"e" * 16384
ENDLESS_CAP = 4096  # chunks: 64 MiB
GATE_WAIT = 15.0  # seconds a gated request waits for its gate before it gives up
GATED_CHUNKS = 8
_tokens = itertools.count(1)
_lock = threading.Lock()


def _dir() -> Path | None:
    value = os.environ.get("BRIDGE_SOAK_DIR")
    return Path(value) if value else None


def _record(line: str) -> None:
    directory = _dir()
    if directory is not None:
        with _lock, (directory / "lifespan").open("a") as marker:
            marker.write(line + "\n")


def _enter(name: str) -> None:
    directory = _dir()
    if directory is not None:
        (directory / f"entered-{name}").write_text(str(os.getpid()))


def _gate_open(name: str) -> bool:
    directory = _dir()
    return directory is not None and (directory / f"open-{name}").exists()


def _wait_for_gate(name: str) -> bool:
    """Whether the gate opened within ``GATE_WAIT`` (a blocking wait: a WSGI or ``def`` app)."""
    deadline = time.monotonic() + GATE_WAIT
    while not _gate_open(name):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


async def _wait_for_gate_async(name: str) -> bool:
    deadline = time.monotonic() + GATE_WAIT
    while not _gate_open(name):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


def _rest(opened: bool) -> list[bytes]:
    """What a gated request sends after its first chunk."""
    return [gated_chunk(i) for i in range(1, GATED_CHUNKS)] if opened else [b"gate never opened"]


def gated_chunk(i: int) -> bytes:
    return f"chunk {i};".encode()


def _repeat(chunk: bytes, count: int) -> Iterator[bytes]:
    """``count`` times ``chunk``, each yielded on its own (a WSGI generator)."""
    for _ in range(count):
        yield chunk


async def _repeat_async(chunk: bytes, count: int) -> AsyncIterator[bytes]:
    for _ in range(count):
        yield chunk


PAUSE = 0.2  # seconds /pause holds its thread

# -- Flask, served through WsgiToAsgi ---------------------------------------------------------

flask_app = flask.Flask("bench_soak")


@flask_app.route("/")
def hello() -> bytes:
    return HELLO


@flask_app.route("/pause")
def pause() -> bytes:
    """Holds its thread a moment: ``bench.soak`` fills the pool with these before its baseline,
    so threads the pool starts on demand are not counted as growth."""
    time.sleep(PAUSE)
    return HELLO


@flask_app.route("/stream")
def stream() -> flask.Response:
    return flask.Response(_repeat(CHUNK, STREAM_CHUNKS), mimetype="application/octet-stream")


@flask_app.post("/upload")
def upload() -> str:
    return str(len(flask.request.get_data()))


@flask_app.route("/error")
def error() -> str:
    raise RuntimeError("the soak's error route")


@flask_app.route("/endless")
def endless() -> flask.Response:
    return flask.Response(_repeat(ENDLESS_CHUNK, ENDLESS_CAP), mimetype="application/octet-stream")


@flask_app.route("/stats")
def stats() -> Any:
    return dict(_flask_adapter.stats())


@flask_app.route("/gated/<name>")
def gated(name: str) -> flask.Response:
    def chunks() -> Iterator[bytes]:
        _enter(name)
        yield gated_chunk(0)
        yield from _rest(_wait_for_gate(name))

    return flask.Response(chunks(), mimetype="text/plain")


class _Recorded:
    """The adapter, its lifespan's startup and shutdown recorded once they complete."""

    def __init__(self, app: bridge.WsgiToAsgi) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            return await self.app(scope, receive, send)
        token = f"{os.getpid()}-{next(_tokens)}"

        async def recording_send(message: Any) -> None:
            await send(message)
            if message["type"] == "lifespan.startup.complete":
                _record(f"startup {token}")
            elif message["type"] == "lifespan.shutdown.complete":
                _record(f"shutdown {token}")
                _record(f"pool {_pool_threads_left()}")

        await self.app(scope, receive, recording_send)


def _pool_threads_left(wait: float = 5.0) -> int:
    """How many of the adapter's pool threads are alive ``wait`` seconds at most after its
    lifespan shutdown (each should end: the pool was shut down). Blocks the loop: the server
    runs nothing else by then."""
    deadline = time.monotonic() + wait
    pool = [t for t in threading.enumerate() if t.name.startswith("bridge-wsgi")]
    for thread in pool:
        thread.join(max(0.0, deadline - time.monotonic()))
    return sum(thread.is_alive() for thread in pool)


_flask_adapter = bridge.WsgiToAsgi(flask_app)
flask_soak = _Recorded(_flask_adapter)


# -- FastAPI, served through AsgiToWsgi -------------------------------------------------------


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    token = f"{os.getpid()}-{next(_tokens)}"
    _record(f"startup {token}")
    yield
    _record(f"shutdown {token}")


fastapi_app = FastAPI(lifespan=_lifespan)


@fastapi_app.get("/")
async def fastapi_hello() -> PlainTextResponse:
    return PlainTextResponse(HELLO)


@fastapi_app.get("/pause")
def pause_def() -> PlainTextResponse:
    time.sleep(PAUSE)  # a def endpoint: on a worker thread, as bench.soak's baseline wants
    return PlainTextResponse(HELLO)


@fastapi_app.get("/stream")
async def fastapi_stream() -> StreamingResponse:
    chunks = _repeat_async(CHUNK, STREAM_CHUNKS)
    return StreamingResponse(chunks, media_type="application/octet-stream")


@fastapi_app.post("/upload")
async def fastapi_upload(request: Request) -> PlainTextResponse:
    return PlainTextResponse(str(len(await request.body())))


@fastapi_app.get("/error")
async def fastapi_error() -> None:
    raise RuntimeError("the soak's error route")


@fastapi_app.get("/endless")
async def fastapi_endless() -> StreamingResponse:
    chunks = _repeat_async(ENDLESS_CHUNK, ENDLESS_CAP)
    return StreamingResponse(chunks, media_type="application/octet-stream")


@fastapi_app.get("/stats")
async def fastapi_stats() -> dict[str, Any]:
    return dict(fastapi_soak.stats())


@fastapi_app.get("/gated/{name}")
async def fastapi_gated(name: str) -> StreamingResponse:
    async def chunks() -> AsyncIterator[bytes]:
        _enter(name)
        yield gated_chunk(0)
        for chunk in _rest(await _wait_for_gate_async(name)):
            yield chunk

    return StreamingResponse(chunks(), media_type="text/plain")


@fastapi_app.get("/gated_def/{name}")
def fastapi_gated_def(name: str) -> PlainTextResponse:
    """A ``def`` endpoint: Starlette runs it in one of anyio's worker threads."""
    _enter(name)
    return PlainTextResponse(gated_chunk(0) + b"".join(_rest(_wait_for_gate(name))))


fastapi_soak = bridge.AsgiToWsgi(fastapi_app)
