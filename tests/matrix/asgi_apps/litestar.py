"""Litestar, keeping the matrix's route contract (``tests.matrix.scenarios``)."""

from __future__ import annotations

from typing import Any

from litestar import Litestar, Request, Response, get, post, route
from litestar.datastructures import URL, Cookie
from litestar.enums import MediaType
from litestar.params import FromPath
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
async def stream(name: FromPath[str]) -> Stream:
    return Stream(appkit.async_gate_chunks(name))


@get("/endless/{name:str}")
async def endless(name: FromPath[str]) -> Stream:
    return Stream(appkit.async_endless_chunks(name))


@get("/info/{rest:path}")
async def info(request: Request[Any, Any, Any], rest: FromPath[str]) -> dict[str, object]:
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
async def status(code: FromPath[int]) -> Response[None]:
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


# One lifespan at a time: Litestar keeps its lifespan's state on the app (the event emitter's
# task group), so with a lifespan per server thread (loop="per-thread") every shutdown but the
# last exits another loop's task group and hangs until bridge's SHUTDOWN_GRACE (10 s each).
# The shared loop runs one lifespan, whose emitter every request then uses, as Litestar means.
ADAPTER = {"loop": "shared"}

# No logging_config: Litestar's default starts a QueueListener thread as the app is made, and
# uWSGI (by default) loads the app in its master and forks without CPython's after-fork hook,
# so in a worker that thread looks alive and Litestar's atexit listener.stop() joins it
# forever: the worker never exits on SIGTERM (seen with gdb's py-bt). Not bridge's doing.
asgi = Litestar(
    [hello, echo, stream, endless, info, cookies, status, boom, go, file],
    debug=False,
    logging_config=None,
)
