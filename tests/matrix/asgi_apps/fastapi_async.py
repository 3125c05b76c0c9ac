"""FastAPI with ``async def`` endpoints (run on the request's loop), keeping the matrix's route
contract (``tests.matrix.scenarios``)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import FileResponse, PlainTextResponse, Response, StreamingResponse

from tests.matrix import appkit
from tests.matrix.asgi_apps import _fastapi

asgi = _fastapi.app()


@asgi.api_route("/hello", methods=["GET", "HEAD"], response_class=PlainTextResponse)
async def hello() -> str:
    return "hello"


@asgi.post("/echo")
async def echo(request: Request) -> Response:
    return Response(await request.body(), media_type="application/octet-stream")


@asgi.get("/stream/{name}")
async def stream(name: str) -> Response:
    return StreamingResponse(appkit.async_gate_chunks(name))


@asgi.get("/endless/{name}")
async def endless(name: str) -> Response:
    return StreamingResponse(appkit.async_endless_chunks(name))


@asgi.get("/info/{rest:path}")
async def info(request: Request) -> Response:
    return _fastapi.info(request)


@asgi.get("/cookies")
async def cookies() -> Response:
    return _fastapi.cookies()


@asgi.get("/status/{code}")
async def status(code: int) -> Response:
    return Response(status_code=code)


@asgi.get("/boom")
async def boom() -> Response:
    raise RuntimeError("boom")


@asgi.get("/redirect")
async def redirect(request: Request) -> Response:
    return _fastapi.redirect(request)


@asgi.get("/file")
async def file() -> Response:
    return FileResponse(appkit.file_path())
