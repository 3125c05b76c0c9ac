"""Test-only ASGI apps served by real WSGI servers through AsgiToWsgi.

Configured by environment variables: ``BRIDGE_TEST_DIR`` is where the tests and the app leave
files for each other (hand-offs, markers); ``BRIDGE_TEST_LIFESPAN=fail`` makes startup fail.
"""

from __future__ import annotations

import asyncio
import os
import threading
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse

from bridge import AsgiToWsgi
from tests.apps_wsgi import BLOCK, PATTERN
from tests.servers import write_marker

DIR = Path(os.environ.get("BRIDGE_TEST_DIR", "."))


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    if os.environ.get("BRIDGE_TEST_LIFESPAN") == "fail":
        raise RuntimeError("database unreachable")
    started_on = threading.current_thread().name
    yield {"thread": started_on}
    with (DIR / "shutdown").open("a") as marker:
        marker.write(f"{os.getpid()} {started_on}\n")


api = FastAPI(lifespan=lifespan)


@api.get("/hello/{name}")
async def hello(name: str, request: Request) -> dict[str, str]:
    return {"hello": name, "lifespan_thread": request.state.thread}


@api.get("/boom")
async def boom() -> None:
    raise LookupError("the app broke before responding")


@api.get("/gate/{name}")
async def gate(name: str) -> StreamingResponse:
    """Chunk two only once the test has created ``<dir>/<name>``: it proves it holds chunk one."""

    async def chunks() -> AsyncIterator[bytes]:
        yield b"one;"
        for _ in range(1000):
            if (DIR / name).exists():
                yield b"two"
                return
            await asyncio.sleep(0.005)
        yield b"gate never opened"

    return StreamingResponse(chunks(), media_type="text/plain")


@api.get("/endless/{name}")
async def endless(name: str) -> StreamingResponse:
    """Ticks until the client is gone; how it ended is written to ``<dir>/<name>``."""

    async def ticks() -> AsyncIterator[bytes]:
        try:
            for _ in range(10_000):
                yield b"tick\n"
                await asyncio.sleep(0.01)
        except BaseException as exc:
            write_marker(DIR / name, type(exc).__name__)
            raise
        write_marker(DIR / name, "ran to the end")

    return StreamingResponse(ticks(), media_type="text/plain")


@api.post("/echo")
async def echo(request: Request) -> StreamingResponse:
    return StreamingResponse(request.stream(), media_type="application/octet-stream")


@api.post("/upload")
async def upload(request: Request) -> dict[str, int]:
    size = crc = 0
    async for chunk in request.stream():
        size += len(chunk)
        crc = zlib.crc32(chunk, crc)
    return {"size": size, "crc32": crc}


@api.get("/download/{size}")
async def download(size: int) -> Response:
    async def blocks() -> AsyncIterator[bytes]:
        for _ in range(size // BLOCK):
            yield PATTERN

    headers = {"Content-Length": str(size)}
    return StreamingResponse(blocks(), media_type="application/octet-stream", headers=headers)


@api.get("/sleep")
async def sleep() -> dict[str, str]:
    await asyncio.sleep(0.5)
    return {"thread": threading.current_thread().name}


async def raw_endless(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Plain ASGI under /raw/<name>: ticks until send() fails, then records what receive() says."""
    name = scope["path"].rsplit("/", 1)[-1]
    await send({"type": "http.response.start", "status": 200, "headers": []})
    try:
        for _ in range(10_000):
            await send({"type": "http.response.body", "body": b"tick\n", "more_body": True})
            await asyncio.sleep(0.01)
    except OSError as exc:
        after = await receive()
        write_marker(DIR / name, f"{type(exc).__name__} {after['type']}")
        return
    write_marker(DIR / name, "ran to the end")


api.mount("/raw", raw_endless)
wsgi_app = AsgiToWsgi(api)
