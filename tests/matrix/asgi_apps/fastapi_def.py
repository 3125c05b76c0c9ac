"""FastAPI with ``def`` endpoints, keeping the matrix's route contract
(``tests.matrix.scenarios``): FastAPI runs each endpoint on an anyio worker thread, and
Starlette iterates the streams' sync generators on those threads too."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Annotated

from fastapi import Body, Request
from fastapi.responses import FileResponse, PlainTextResponse, Response, StreamingResponse

from tests.matrix import appkit
from tests.matrix.asgi_apps import _fastapi

asgi = _fastapi.app()


def off_loop() -> None:
    """Fails the request if this code runs on an event loop's thread (where ``def`` must not)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError("a def endpoint ran on the event loop's thread")


def on_worker(chunks: Iterator[bytes]) -> Iterator[bytes]:
    for chunk in chunks:
        off_loop()
        yield chunk


@asgi.api_route("/hello", methods=["GET", "HEAD"], response_class=PlainTextResponse)
def hello() -> str:
    off_loop()
    return "hello"


@asgi.post("/echo")
def echo(body: Annotated[bytes, Body()] = b"") -> Response:
    off_loop()
    return Response(body, media_type="application/octet-stream")


@asgi.get("/stream/{name}")
def stream(name: str) -> Response:
    return StreamingResponse(on_worker(appkit.gate_chunks(name)))


@asgi.get("/endless/{name}")
def endless(name: str) -> Response:
    return StreamingResponse(on_worker(appkit.endless_chunks(name)))


@asgi.get("/info/{rest:path}")
def info(request: Request) -> Response:
    return _fastapi.info(request)


@asgi.get("/cookies")
def cookies() -> Response:
    return _fastapi.cookies()


@asgi.get("/status/{code}")
def status(code: int) -> Response:
    return Response(status_code=code)


@asgi.get("/boom")
def boom() -> Response:
    raise RuntimeError("boom")


@asgi.get("/redirect")
def redirect(request: Request) -> Response:
    return _fastapi.redirect(request)


@asgi.get("/file")
def file() -> Response:
    return FileResponse(appkit.file_path())
