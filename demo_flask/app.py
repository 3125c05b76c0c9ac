"""A small Flask app that shows what the bridge carries: paths, forms, uploads, streams."""

from __future__ import annotations

import time
from collections.abc import Iterator

from flask import Flask, Response, redirect, request, url_for

app = Flask(__name__)

INDEX = """<!doctype html>
<title>bridge demo</title>
<h1>Flask, served by an ASGI server through bridge.WsgiToAsgi</h1>
<ul>
  <li><a href="{hello}">{hello}</a>: a path parameter, decoded as UTF-8</li>
  <li><a href="{stream}">{stream}</a>: a streamed response, one line every 0.2 s</li>
  <li><a href="{go}">{go}</a>: a redirect built with url_for (it keeps any mount prefix)</li>
  <li>POST a body to <code>{echo}</code>: it comes back as it went, streamed both ways</li>
</ul>
<p>script_root: <code>{root}</code></p>
"""


@app.get("/")
def index() -> str:
    return INDEX.format(
        hello=url_for("hello", name="café"),
        stream=url_for("stream"),
        go=url_for("go"),
        echo=url_for("echo"),
        root=request.script_root or "(none)",
    )


@app.get("/hello/<name>")
def hello(name: str) -> dict[str, str]:
    return {"hello": name, "script_root": request.script_root, "path": request.path}


@app.get("/stream")
def stream() -> Response:
    def lines() -> Iterator[str]:
        for i in range(10):
            yield f"line {i}\n"
            time.sleep(0.2)

    return Response(lines(), mimetype="text/plain")


@app.get("/go")
def go() -> Response:
    return redirect(url_for("hello", name="redirected"))


@app.post("/echo")
def echo() -> Response:
    stream = request.stream

    def chunks() -> Iterator[bytes]:
        while chunk := stream.read(65536):
            yield chunk

    return Response(chunks(), mimetype=request.mimetype or "application/octet-stream")
