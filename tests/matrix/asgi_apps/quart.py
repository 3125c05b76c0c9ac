"""Quart, keeping the matrix's route contract (``tests.matrix.scenarios``)."""

from __future__ import annotations

from quart import Quart, Response, redirect, request, send_file, url_for
from quart.typing import ResponseReturnValue

from tests.matrix import appkit

asgi = Quart(__name__)


@asgi.get("/hello")  # Quart answers HEAD wherever it answers GET
async def hello() -> ResponseReturnValue:
    return "hello", {"Content-Type": "text/plain"}


@asgi.post("/echo")
async def echo() -> ResponseReturnValue:
    return Response(await request.get_data(), content_type="application/octet-stream")


@asgi.get("/stream/<name>")
async def stream(name: str) -> ResponseReturnValue:
    return Response(appkit.async_gate_chunks(name))


@asgi.get("/endless/<name>")
async def endless(name: str) -> ResponseReturnValue:
    return Response(appkit.async_endless_chunks(name))


@asgi.get("/info/<path:rest>")
async def info(rest: str) -> ResponseReturnValue:
    return {
        "path": request.path,
        "root": request.root_path,
        "query": request.args.to_dict(flat=False),
        "raw_query": request.query_string.decode("latin-1"),
        "x_repeat": ", ".join(request.headers.getlist("x-repeat")),
    }


@asgi.get("/cookies")
async def cookies() -> ResponseReturnValue:
    response = Response("cookies", content_type="text/plain")
    response.set_cookie("a", "1")
    response.set_cookie("b", "2")
    return response


@asgi.get("/status/<int:code>")
async def status(code: int) -> ResponseReturnValue:
    return "", code


@asgi.get("/boom")
async def boom() -> ResponseReturnValue:
    raise RuntimeError("boom")


@asgi.get("/redirect")
async def go() -> ResponseReturnValue:
    return redirect(url_for("hello"))


@asgi.get("/file")
async def file() -> ResponseReturnValue:
    return await send_file(appkit.file_path(), conditional=True)
