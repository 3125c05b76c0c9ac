"""Starlette, keeping the matrix's route contract (``tests.matrix.scenarios``)."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route

from tests.matrix import appkit


async def hello(request: Request) -> Response:
    return PlainTextResponse("hello")


async def echo(request: Request) -> Response:
    return Response(await request.body(), media_type="application/octet-stream")


async def stream(request: Request) -> Response:
    return StreamingResponse(appkit.async_gate_chunks(request.path_params["name"]))


async def endless(request: Request) -> Response:
    return StreamingResponse(appkit.async_endless_chunks(request.path_params["name"]))


async def info(request: Request) -> Response:
    query: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        query.setdefault(key, []).append(value)
    return JSONResponse(
        {
            "path": request.url.path.removeprefix(request.scope.get("root_path", "")),
            "root": request.scope.get("root_path", ""),
            "query": query,
            "raw_query": request.scope["query_string"].decode("latin-1"),
            "x_repeat": ", ".join(request.headers.getlist("x-repeat")),
        }
    )


async def cookies(request: Request) -> Response:
    response = PlainTextResponse("cookies")
    response.set_cookie("a", "1")
    response.set_cookie("b", "2")
    return response


async def status(request: Request) -> Response:
    return Response(status_code=request.path_params["code"])


async def boom(request: Request) -> Response:
    raise RuntimeError("boom")


async def go(request: Request) -> Response:
    return RedirectResponse(request.url_for("hello").path, status_code=302)


async def file(request: Request) -> Response:
    return FileResponse(appkit.file_path())


asgi = Starlette(
    routes=[
        Route("/hello", hello, methods=["GET", "HEAD"], name="hello"),
        Route("/echo", echo, methods=["POST"]),
        Route("/stream/{name}", stream),
        Route("/endless/{name}", endless),
        Route("/info/{rest:path}", info),
        Route("/cookies", cookies),
        Route("/status/{code:int}", status),
        Route("/boom", boom),
        Route("/redirect", go),
        Route("/file", file),
    ]
)
