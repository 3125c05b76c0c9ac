"""Flask, keeping the matrix's route contract (``tests.matrix.scenarios``)."""

from __future__ import annotations

from flask import Flask, Response, redirect, request, send_file, url_for
from flask.typing import ResponseReturnValue

from tests.matrix import appkit

app = Flask(__name__)


@app.route("/hello", methods=["GET", "HEAD"])
def hello() -> Response:
    return Response("hello", mimetype="text/plain")


@app.post("/echo")
def echo() -> Response:
    return Response(request.get_data(), mimetype="application/octet-stream")


@app.get("/stream/<name>")
def stream(name: str) -> Response:
    return Response(appkit.gate_chunks(name), mimetype="text/plain")


@app.get("/endless/<name>")
def endless(name: str) -> Response:
    return Response(appkit.endless_chunks(name), mimetype="text/plain")


@app.get("/info/<path:rest>")
def info(rest: str) -> dict[str, object]:
    return {
        "path": request.path,
        "root": request.root_path,
        "query": request.args.to_dict(flat=False),
        "raw_query": request.query_string.decode("latin-1"),
        "x_repeat": request.headers.get("X-Repeat"),
    }


@app.get("/cookies")
def cookies() -> Response:
    response = Response("cookies", mimetype="text/plain")
    response.set_cookie("a", "1")
    response.set_cookie("b", "2")
    return response


@app.get("/status/<int:code>")
def status(code: int) -> Response:
    return Response(status=code)


@app.get("/boom")
def boom() -> Response:
    raise RuntimeError("boom")


@app.get("/redirect")
def go() -> ResponseReturnValue:
    return redirect(url_for("hello"))


@app.get("/file")
def file() -> Response:
    return send_file(appkit.file_path(), conditional=True)


wsgi = app.wsgi_app
