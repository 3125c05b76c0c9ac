"""Apps for ``bridge serve`` and nginx tests: each reports, as JSON, what it was handed.

``via`` is the module of the ``start_response`` (WSGI) or ``receive`` (ASGI) callable, so a
response says which server or adapter called the app: ``gunicorn.http.wsgi`` for gunicorn's own
WSGI call, ``bridge.wsgi_to_asgi...`` for WsgiToAsgi, ``bridge.asgi_to_wsgi...`` for AsgiToWsgi.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterable, Iterator
from typing import Any

NOT_AN_APP = {"a": "dict"}
BARRIER = threading.Barrier(2)  # /barrier: two requests must be in the app at once


def _via(func: Any) -> str:
    return str(getattr(func, "__module__", None) or type(func).__module__)


def _headers(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    return {name.lower(): value for name, value in pairs}


def _meeting() -> str:
    try:
        BARRIER.wait(timeout=20)
    except threading.BrokenBarrierError:
        return "alone"
    return "met"


# /stream?GATE sends a first chunk, then the rest only once the client, having read it, asks for
# /release?GATE: a proxy that held the first chunk back would leave it waiting.
_GATES: dict[str, threading.Event] = {}
STREAM_HEADERS = [("Content-Type", "text/plain"), ("X-Accel-Buffering", "no")]


def _gate(name: str) -> threading.Event:
    return _GATES.setdefault(name, threading.Event())


def _stream(gate: str) -> Iterator[bytes]:
    yield b"first\n"
    yield b"second\n" if _gate(gate).wait(timeout=20) else b"timed out\n"


def wsgi_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    if path == "/stream":
        start_response("200 OK", STREAM_HEADERS)
        return _stream(environ.get("QUERY_STRING", ""))
    if path == "/release":
        _gate(environ.get("QUERY_STRING", "")).set()
    if path == "/redirect":  # what url_for does: the mount prefix, then the route
        location = environ["SCRIPT_NAME"] + "/target"
        start_response("302 Found", [("Location", location), ("Content-Length", "0")])
        return []
    size = 0
    stream = environ["wsgi.input"]
    while chunk := stream.read(65536):
        size += len(chunk)
    report = {
        "interface": "wsgi",
        "via": _via(start_response),
        "root": environ.get("SCRIPT_NAME", "").encode("latin-1").decode(),
        "path": path.encode("latin-1").decode(),
        "thread": threading.current_thread().name,
        "meeting": _meeting() if path == "/barrier" else None,
        "body_size": size,
        "scheme": environ["wsgi.url_scheme"],
        "client": environ.get("REMOTE_ADDR"),
        "headers": _headers(
            (key[5:].replace("_", "-"), value)
            for key, value in environ.items()
            if key.startswith("HTTP_")
        ),
    }
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(report).encode()]


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["type"] != "http":
        return
    if scope["path"].endswith("/stream"):
        await _asgi_stream(scope["query_string"].decode(), send)
        return
    if scope["path"].endswith("/release"):
        _gate(scope["query_string"].decode()).set()
    if scope["path"].endswith("/redirect"):
        location = (scope["root_path"] + "/target").encode()
        await send(
            {"type": "http.response.start", "status": 302, "headers": [(b"location", location)]}
        )
        await send({"type": "http.response.body", "body": b""})
        return
    size = 0
    more = True
    while more:
        message = await receive()
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    report = {
        "interface": "asgi",
        "via": _via(receive),
        "root": scope.get("root_path", ""),
        "path": scope["path"],
        "thread": threading.current_thread().name,
        "body_size": size,
        "scheme": scope["scheme"],
        "client": (scope.get("client") or [None])[0],
        "headers": _headers(
            (k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]
        ),
    }
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": json.dumps(report).encode()})


async def _asgi_stream(gate: str, send: Any) -> None:
    headers = [(k.lower().encode(), v.encode()) for k, v in STREAM_HEADERS]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"first\n", "more_body": True})
    released = await asyncio.get_running_loop().run_in_executor(None, _gate(gate).wait, 20)
    await send({"type": "http.response.body", "body": b"second\n" if released else b"timed out\n"})


def _flask() -> Any:
    """A Flask app whose links and redirects come from ``url_for``."""
    from flask import Flask, redirect, request, url_for

    app = Flask("apps_serve")

    @app.get("/")
    def index() -> str:
        return f'<a href="{url_for("hello", name="café")}">hello</a>'

    @app.get("/hello/<name>")
    def hello(name: str) -> dict[str, str]:
        return {"hello": name, "script_root": request.script_root, "url": request.url}

    @app.get("/go")
    def go() -> Any:
        return redirect(url_for("hello", name="redirected"))

    return app


flask_app = _flask()
