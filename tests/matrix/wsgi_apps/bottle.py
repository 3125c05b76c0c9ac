"""Bottle, keeping the matrix's route contract (``tests.matrix.scenarios``)."""

from __future__ import annotations

from collections.abc import Iterator

import bottle
from bottle import Bottle, HTTPResponse, redirect, request, response, static_file

from tests.matrix import appkit

app = Bottle()


@app.route("/hello", method=["GET", "HEAD"], name="hello")
def hello() -> str:
    response.content_type = "text/plain"
    return "hello"


@app.post("/echo")
def echo() -> bytes:
    response.content_type = "application/octet-stream"
    body: bytes = request.body.read()
    return body


@app.get("/stream/<name>")
def stream(name: str) -> Iterator[bytes]:
    response.content_type = "text/plain"
    return appkit.gate_chunks(name)


@app.get("/endless/<name>")
def endless(name: str) -> Iterator[bytes]:
    response.content_type = "text/plain"
    return appkit.endless_chunks(name)


@app.get("/info/<rest:path>")
def info(rest: str) -> dict[str, object]:
    query = request.query.decode()  # Bottle keeps WSGI's latin-1 strings until asked
    return {
        "path": request.path,
        "root": request.script_name.rstrip("/"),
        "query": {name: query.getall(name) for name in query},
        "raw_query": request.query_string,
        "x_repeat": request.get_header("X-Repeat"),
    }


@app.get("/cookies")
def cookies() -> str:
    response.content_type = "text/plain"
    response.set_cookie("a", "1", path="/")
    response.set_cookie("b", "2", path="/")
    return "cookies"


@app.get("/status/<code:int>")
def status(code: int) -> HTTPResponse:
    return HTTPResponse(status=code)


@app.get("/boom")
def boom() -> None:
    raise RuntimeError("boom")


@app.get("/redirect")
def go() -> None:
    redirect(app.get_url("hello"), 302)


@app.get("/file")
def file() -> HTTPResponse:
    path = appkit.file_path()
    result: HTTPResponse = static_file(path.name, root=str(path.parent))
    return result


bottle.debug(False)
wsgi = app
