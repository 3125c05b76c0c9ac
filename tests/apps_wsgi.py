"""Test-only WSGI apps for the end-to-end tests, importable by server subprocesses.

``uvicorn tests.apps_wsgi:app`` serves ``flask_app`` through ``WsgiToAsgi``;
``uvicorn tests.apps_wsgi:fastapi_app`` serves a FastAPI app with ``flask_app`` mounted at
``/legacy``. Configured by environment variables, read when a request needs them:

- ``BRIDGE_TEST_DIR``: a directory the test and the app share. ``/gate/<name>`` waits for the
  test to create ``<dir>/<name>``; ``/endless/<name>`` creates ``<dir>/<name>`` when the
  response iterable's ``close()`` is called.
- ``BRIDGE_TEST_THREADS``: the adapter's ``threads`` (default 10).
"""

from __future__ import annotations

import os
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

from fastapi import FastAPI
from flask import Flask, Response, redirect, request, url_for

from bridge import WsgiToAsgi

BLOCK = 64 * 1024
PATTERN = bytes(range(256)) * (BLOCK // 256)  # what /download sends, block after block
GATE_WAIT = 5.0  # seconds /gate waits for its file before giving up

flask_app = Flask(__name__)


def _shared_dir() -> Path:
    return Path(os.environ["BRIDGE_TEST_DIR"])


def _safe_name(name: str) -> str:
    if not name.isidentifier():
        raise ValueError(f"marker names are identifiers, got {name!r}")
    return name


@flask_app.get("/hello/<name>")
def hello(name: str) -> dict[str, str]:
    return {
        "hello": name,
        "path": request.path,
        "script_root": request.script_root,
        "url": url_for("hello", name=name),
    }


@flask_app.get("/go")
def go() -> Response:
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


@flask_app.get("/download/<int:size>")
def download(size: int) -> Response:
    """``size`` bytes of ``PATTERN``, made one block at a time."""

    def blocks() -> Iterator[bytes]:
        whole, rest = divmod(size, BLOCK)
        for _ in range(whole):
            yield PATTERN
        if rest:
            yield PATTERN[:rest]

    response = Response(blocks(), mimetype="application/octet-stream")
    response.headers["Content-Length"] = str(size)
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


@flask_app.get("/endless/<name>")
def endless(name: str) -> Response:
    """1 KiB every 10 ms for up to 30 s; ``close()`` of the iterable creates the marker file."""
    path = _shared_dir() / _safe_name(name)

    def chunks() -> Iterator[bytes]:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            yield b"x" * 1024
            time.sleep(0.01)

    response = Response(chunks(), mimetype="application/octet-stream")
    response.call_on_close(path.touch)
    return response


app = WsgiToAsgi(flask_app, threads=int(os.environ.get("BRIDGE_TEST_THREADS", "10")))

fastapi_app = FastAPI()


@fastapi_app.get("/ping")
async def ping() -> dict[str, bool]:
    return {"pong": True}


fastapi_app.mount("/legacy", WsgiToAsgi(flask_app))
