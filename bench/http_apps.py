"""The applications bench.http serves, one module attribute per server cell.

    uvicorn --interface asgi3 bench.http_apps:flask_bridge       # Flask through bridge
    gunicorn -k gthread --threads 8 bench.http_apps:flask_app    # Flask natively
    gunicorn -k gthread --threads 8 bench.http_apps:fastapi_bridge

Every app answers ``GET /`` with ``Hello, world!`` (FastAPI: a small JSON object) and
``GET /stream`` with 100 chunks of 1 KiB, each produced separately (a WSGI generator, or an ASGI
``StreamingResponse`` over an async generator). ``wsgi_hello`` and ``asgi_hello`` are bare
callables with no framework: what the server itself costs per request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import a2wsgi
import flask
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

import bridge
from bench.peers import uvicorn_own

CHUNK = b"." * 1024
CHUNKS = 100

flask_app = flask.Flask("bench_http")


@flask_app.route("/")
def hello() -> str:
    return "Hello, world!"


@flask_app.route("/stream")
def stream() -> flask.Response:
    def chunks() -> Iterator[bytes]:
        for _ in range(CHUNKS):
            yield CHUNK

    return flask.Response(chunks(), mimetype="application/octet-stream")


@flask_app.post("/upload")
def upload() -> str:
    return str(len(flask.request.get_data()))


def wsgi_hello(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """The server's ceiling: the least a WSGI app can do."""
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
    return [b"Hello, world!"]


async def asgi_hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The server's ceiling: the least an ASGI app can do."""
    headers = [(b"content-type", b"text/plain"), (b"content-length", b"13")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"Hello, world!"})


fastapi_app = FastAPI()


@fastapi_app.get("/")
async def fastapi_hello() -> dict[str, str]:
    return {"message": "Hello, world!"}


@fastapi_app.get("/stream")
async def fastapi_stream() -> StreamingResponse:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(CHUNKS):
            yield CHUNK

    return StreamingResponse(chunks(), media_type="application/octet-stream")


# Built on first access (PEP 562), so a server builds only the adapter it serves: a2wsgi's
# ASGIMiddleware starts a loop thread in its constructor.
_ADAPTERS = {
    # WSGI -> ASGI, served by uvicorn
    "flask_bridge": lambda: bridge.WsgiToAsgi(flask_app),
    "flask_a2wsgi": lambda: a2wsgi.WSGIMiddleware(flask_app),
    "flask_uvicorn_own": lambda: uvicorn_own(flask_app),
    # bench.slow_clients: 8 threads each
    "flask_bridge_8": lambda: bridge.WsgiToAsgi(flask_app, threads=8),
    "flask_bridge_8_nohold": lambda: bridge.WsgiToAsgi(flask_app, threads=8, hold_body=0),
    "flask_a2wsgi_8": lambda: a2wsgi.WSGIMiddleware(flask_app, workers=8),
    # ASGI -> WSGI, served by gunicorn gthread
    "fastapi_bridge": lambda: bridge.AsgiToWsgi(fastapi_app),
    "fastapi_a2wsgi": lambda: a2wsgi.ASGIMiddleware(fastapi_app),
}


def __getattr__(name: str) -> Any:
    if name not in _ADAPTERS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    app = _ADAPTERS[name]()
    globals()[name] = app
    return app
