"""A FastAPI app for the per-thread loop's lifetime tests (tests/test_asgi_to_wsgi_lifetime.py).

It uses what ties a request to anyio's worker threads (a ``def`` endpoint, a ``FileResponse``)
and what a request can leave behind on its loop (fire-and-forget tasks). Its lifespan writes a
``startup <token>`` line when a loop starts it and ``shutdown <token>`` when that loop shuts it
down, one token per lifespan run, so a test can pair each startup with its shutdown.

In process, ``build(Sink())`` gives a fresh app and its record; as a server module (gunicorn,
``python -c``), ``wsgi_app`` records into the file named by ``BRIDGE_LIFETIME_MARKER``.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import os
import threading
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults

from fastapi import FastAPI
from fastapi.responses import FileResponse, StreamingResponse

from bridge import AsgiToWsgi

FILE = Path(__file__)  # what /file serves: this module's own source
STREAM_CHUNKS = 8
# Set by a test to let /gated/<name> go on past its first chunk.
GATES: defaultdict[str, threading.Event] = defaultdict(threading.Event)
_tokens = itertools.count(1)


class Sink:
    """Where the app records what happened: in memory, and in ``path`` if given."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.lines: list[str] = []
        self._lock = threading.Lock()

    def record(self, line: str) -> None:
        with self._lock:
            self.lines.append(line)
            if self.path is not None:
                with self.path.open("a") as marker:
                    marker.write(line + "\n")

    def tokens(self, kind: str) -> list[str]:
        """The tokens of the ``kind`` lines ("startup", "shutdown"), in order."""
        return [line.split()[1] for line in list(self.lines) if line.split()[0] == kind]


def read_tokens(path: Path, kind: str) -> list[str]:
    """``Sink.tokens`` for a sink that lives in another process and wrote to ``path``."""
    lines = path.read_text().splitlines() if path.exists() else []
    return [line.split()[1] for line in lines if line.split()[0] == kind]


def build(sink: Sink) -> FastAPI:
    keep: set[asyncio.Task[None]] = set()  # asyncio holds tasks weakly

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        token = f"{os.getpid()}-{next(_tokens)}"
        sink.record(f"startup {token}")
        yield
        sink.record(f"shutdown {token}")

    api = FastAPI(lifespan=lifespan)

    @api.get("/def")
    def blocking() -> dict[str, Any]:
        """Starlette runs a plain ``def`` endpoint in one of anyio's worker threads."""
        return {"native_id": threading.get_native_id(), "name": threading.current_thread().name}

    @api.get("/async")
    async def not_blocking() -> dict[str, Any]:
        return {"native_id": threading.get_native_id(), "name": threading.current_thread().name}

    @api.get("/file")
    async def file() -> FileResponse:
        return FileResponse(FILE)  # opened and read in anyio's worker threads

    def leave(coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        keep.add(task)
        task.add_done_callback(keep.discard)

    @api.get("/fire/{name}")
    async def fire(name: str) -> dict[str, str]:
        """Answers at once; a task it leaves running records ``done <name>`` 0.2 s later."""
        leave(record_after_a_while(sink, name))
        return {"fired": name}

    @api.get("/forever")
    async def forever() -> dict[str, str]:
        """Answers at once, leaving a task that would sleep for an hour."""
        leave(sleep_for_an_hour(sink))
        return {"left": "sleep_for_an_hour"}

    @api.get("/gated/{name}")
    async def gated(name: str) -> StreamingResponse:
        """Chunk 0, then the rest only once the test has set ``GATES[name]``."""

        async def chunks() -> AsyncIterator[bytes]:
            yield b"chunk 0;"
            for _ in range(2000):
                if GATES[name].is_set():
                    break
                await asyncio.sleep(0.005)
            else:
                yield b"gate never opened"
                return
            for i in range(1, STREAM_CHUNKS):
                yield f"chunk {i};".encode()
                await asyncio.sleep(0)

        return StreamingResponse(chunks(), media_type="text/plain")

    return api


async def record_after_a_while(sink: Sink, name: str) -> None:
    await asyncio.sleep(0.2)
    sink.record(f"done {name}")


async def sleep_for_an_hour(sink: Sink) -> None:
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        sink.record("cancelled sleep_for_an_hour")
        raise


def environ(path: str) -> dict[str, Any]:
    env: dict[str, Any] = {"PATH_INFO": path, "wsgi.input": io.BytesIO(b"")}
    setup_testing_defaults(env)
    env["wsgi.multithread"] = True
    return env


class StartResponse:
    """A server's ``start_response``: keeps the status lines it is given."""

    def __init__(self) -> None:
        self.status: list[str] = []

    def __call__(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        self.status.append(status)
        return self.write

    def write(self, data: bytes) -> None:
        raise AssertionError("AsgiToWsgi used the legacy write() callable")


def get(app: Any, path: str) -> tuple[str, bytes]:
    """Call ``app`` as a WSGI server's thread would: the status line and the whole body; the
    iterable is exhausted and closed."""
    start_response = StartResponse()
    iterable: Iterable[bytes] = app(environ(path), start_response)
    try:
        body = b"".join(iterable)
    finally:
        close = getattr(iterable, "close", None)
        if close is not None:
            close()
    return start_response.status[-1], body


_marker = os.environ.get("BRIDGE_LIFETIME_MARKER")
wsgi_app = AsgiToWsgi(build(Sink(Path(_marker) if _marker else None)))
