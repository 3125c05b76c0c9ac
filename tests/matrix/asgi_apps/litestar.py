"""Litestar, keeping the matrix's route contract (``tests.matrix.scenarios``)."""

from __future__ import annotations

from typing import Any

from litestar import Litestar, Request, Response, get, post, route
from litestar.datastructures import URL, Cookie
from litestar.enums import MediaType
from litestar.response import File, Redirect, Stream

from tests.matrix import appkit


# One handler for both: a @head handler may not return a body, and Litestar then declares
# Content-Length: 0, which is not the length of the GET's answer.
@route("/hello", http_method=["GET", "HEAD"], media_type=MediaType.TEXT, name="hello")
async def hello() -> str:
    return "hello"


@post("/echo", status_code=200, media_type="application/octet-stream")
async def echo(request: Request[Any, Any, Any]) -> bytes:
    return await request.body()


@get("/stream/{name:str}")
async def stream(name: str) -> Stream:
    return Stream(appkit.async_gate_chunks(name))


@get("/endless/{name:str}")
async def endless(name: str) -> Stream:
    return Stream(appkit.async_endless_chunks(name))


@get("/info/{rest:path}")
async def info(request: Request[Any, Any, Any], rest: str) -> dict[str, object]:
    root = request.scope.get("root_path", "")
    return {
        "path": request.url.path.removeprefix(root),
        "root": root,
        "query": request.query_params.dict(),
        "raw_query": request.scope["query_string"].decode("latin-1"),
        "x_repeat": ", ".join(request.headers.getall("x-repeat", [])),
    }


@get("/cookies", media_type=MediaType.TEXT)
async def cookies() -> Response[str]:
    return Response("cookies", cookies=[Cookie(key="a", value="1"), Cookie(key="b", value="2")])


@get("/status/{code:int}")
async def status(code: int) -> Response[None]:
    return Response(None, status_code=code)


@get("/boom")
async def boom() -> None:
    raise RuntimeError("boom")


@get("/redirect")
async def go(request: Request[Any, Any, Any]) -> Redirect:
    return Redirect(URL(request.url_for("hello")).path, status_code=302)


@get("/file")
async def file(request: Request[Any, Any, Any]) -> Response[bytes] | File:
    """Litestar's File has no Range support: a range is served by hand, as its slice."""
    data = appkit.file_path().read_bytes()
    span = appkit.parse_range(request.headers.get("range"), len(data))
    if span is None:
        return File(appkit.file_path())
    start, stop = span
    return Response(
        data[start:stop],
        status_code=206,
        media_type="application/octet-stream",
        headers={"Content-Range": f"bytes {start}-{stop - 1}/{len(data)}"},
    )


asgi = Litestar(
    [hello, echo, stream, endless, info, cookies, status, boom, go, file],
    debug=False,
)
