"""Test-only WSGI apps for the end-to-end tests, importable by server subprocesses.

``uvicorn tests.apps_wsgi:app`` serves ``flask_app`` through ``WsgiToAsgi``;
``uvicorn tests.apps_wsgi:fastapi_app`` serves a FastAPI app with ``flask_app`` mounted at
``/legacy``. Configured by environment variables, read when a request needs them:

- ``BRIDGE_TEST_DIR``: a directory the test and the app share. ``/gate/<name>`` waits for the
  test to create ``<dir>/<name>``; ``/endless/<name>``, ``/consume/<name>`` and
  ``/download/<size>?marker=<name>`` write ``<dir>/<name>`` to tell the test what happened.
- ``BRIDGE_TEST_THREADS``: the adapter's ``threads`` (default 10).
- ``BRIDGE_TEST_ADAPTER=a2wsgi``: serve ``app`` through a2wsgi instead, for strict xfails.
"""

from __future__ import annotations

import os
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from flask import Flask, Response, redirect, request, url_for
from flask.typing import ResponseReturnValue

from bridge import WsgiToAsgi

BLOCK = 64 * 1024
PATTERN = bytes(range(256)) * (BLOCK // 256)  # what /download sends, block after block
GATE_WAIT = 5.0  # seconds /gate waits for its file before giving up

flask_app = Flask(__name__)
# Errors leave Flask for the adapter and the server, as they do in a debug or testing setup.
flask_app.config["PROPAGATE_EXCEPTIONS"] = True


def _shared_dir() -> Path:
    return Path(os.environ["BRIDGE_TEST_DIR"])


def _safe_name(name: str) -> str:
    if not name.isidentifier():
        raise ValueError(f"marker names are identifiers, got {name!r}")
    return name


def _write_marker(name: str, text: str) -> None:
    """Write ``text`` to ``<dir>/<name>`` all at once: the test never sees half of it."""
    path = _shared_dir() / _safe_name(name)
    partial = path.with_suffix(".partial")
    partial.write_text(text)
    os.replace(partial, path)


@flask_app.get("/hello/<name>")
def hello(name: str) -> dict[str, str]:
    return {
        "hello": name,
        "path": request.path,
        "script_root": request.script_root,
        "url": url_for("hello", name=name),
    }


@flask_app.get("/go")
def go() -> ResponseReturnValue:
    return redirect(url_for("hello", name="redirected"))


@flask_app.post("/echo")
def echo() -> Response:
    stream = request.stream

    def chunks() -> Iterator[bytes]:
        while chunk := stream.read(BLOCK):
            yield chunk

    return Response(chunks(), mimetype="application/octet-stream")


@flask_app.post("/upload")
def upload() -> dict[str, int]:
    """Read the body in blocks, keeping only its size and CRC-32."""
    stream = request.stream
    size = crc = 0
    while chunk := stream.read(BLOCK):
        size += len(chunk)
        crc = zlib.crc32(chunk, crc)
    return {"size": size, "crc32": crc}


@flask_app.post("/consume/<name>")
def consume(name: str) -> str:
    """Read ``wsgi.input`` to its end; write how the reading ended to ``<dir>/<name>``."""
    stream = request.environ["wsgi.input"]
    size = 0
    try:
        while chunk := stream.read(BLOCK):
            size += len(chunk)
        outcome = f"eof after {size}"
    except OSError as exc:
        outcome = f"{type(exc).__name__} after {size}"
    _write_marker(name, outcome)
    return outcome


@flask_app.get("/download/<int:size>")
def download(size: int) -> Response:
    """``size`` bytes of ``PATTERN``, made one block at a time. With ``?marker=<name>``, the
    iterable's ``close()`` writes to ``<dir>/<name>`` how many bytes the generator had made."""
    made = 0

    def blocks() -> Iterator[bytes]:
        nonlocal made
        whole, rest = divmod(size, BLOCK)
        for _ in range(whole):
            made += BLOCK
            yield PATTERN
        if rest:
            made += rest
            yield PATTERN[:rest]

    response = Response(blocks(), mimetype="application/octet-stream")
    response.headers["Content-Length"] = str(size)
    marker = request.args.get("marker")
    if marker is not None:
        response.call_on_close(lambda: _write_marker(marker, str(made)))
    return response


@flask_app.get("/boom")
def boom() -> Response:
    raise RuntimeError("boom before the headers")


@flask_app.get("/stream-boom")
def stream_boom() -> Response:
    """Headers and a first chunk, then an error: the client must not see a complete response."""

    def chunks() -> Iterator[bytes]:
        yield b"part one\n"
        raise RuntimeError("boom after the headers")

    length = request.args.get("length")
    response = Response(chunks(), mimetype="text/plain")
    if length is not None:
        response.headers["Content-Length"] = length
    return response


@flask_app.get("/gate/<name>")
def gate(name: str) -> Response:
    """Chunk one at once; chunk two only after the test has created the gate file, which it
    does once it holds chunk one. An adapter that buffered the body would never show chunk one
    before the generator ended: the generator gives up after ``GATE_WAIT`` and says so."""
    path = _shared_dir() / _safe_name(name)

    def chunks() -> Iterator[bytes]:
        yield b"chunk one\n"
        deadline = time.monotonic() + GATE_WAIT
        while not path.exists():
            if time.monotonic() > deadline:
                yield b"gate timed out\n"
                return
            time.sleep(0.005)
        yield b"chunk two\n"

    return Response(chunks(), mimetype="text/plain")


@flask_app.route("/endless/<name>", methods=["GET", "POST"])
def endless(name: str) -> Response:
    """1 KiB every 10 ms for up to 30 s; ``close()`` of the iterable creates the marker file.
    A request body is never read."""
    path = _shared_dir() / _safe_name(name)

    def chunks() -> Iterator[bytes]:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            yield b"x" * 1024
            time.sleep(0.01)

    response = Response(chunks(), mimetype="application/octet-stream")
    response.call_on_close(path.touch)
    return response


_threads = int(os.environ.get("BRIDGE_TEST_THREADS", "10"))
if os.environ.get("BRIDGE_TEST_ADAPTER") == "a2wsgi":  # the peer, to show what a test catches
    from a2wsgi import WSGIMiddleware

    app: Any = WSGIMiddleware(flask_app, workers=_threads)
else:
    app = WsgiToAsgi(flask_app, threads=_threads)

fastapi_app = FastAPI()


@fastapi_app.get("/ping")
async def ping() -> dict[str, bool]:
    return {"pong": True}


fastapi_app.mount("/legacy", WsgiToAsgi(flask_app))
