"""A small "legacy" Flask app, the kind a team keeps while it moves to FastAPI: Jinja pages with
``url_for`` links, a guestbook form that posts and redirects with a flash message, a session
cookie, a file download, a streamed CSV export and an upload page. ``/hello``, ``/stream``,
``/go`` and ``/echo`` show what the bridge carries: paths, streams both ways, redirects."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from flask import (
    Flask,
    Response,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    session,
    url_for,
)

HANDBOOK = Path(__file__).with_name("files") / "handbook.txt"

app = Flask(__name__)
# A demo key: a real app reads its secret from the environment and never commits one.
app.secret_key = os.environ.get("DEMO_SECRET_KEY", "bridge-demo-not-a-secret")
app.config["MAX_CONTENT_LENGTH"] = 32 * 1024 * 1024


@dataclass(frozen=True)
class Entry:
    name: str
    message: str
    at: str


_entries: list[Entry] = [Entry("Ada", "The legacy app still works, one prefix further down.", "")]
_entries_lock = threading.Lock()  # WsgiToAsgi runs requests on a pool of threads


def entries() -> list[Entry]:
    with _entries_lock:
        return list(_entries)


@app.get("/")
def index() -> str:
    session["visits"] = session.get("visits", 0) + 1  # a signed cookie: Flask's own session
    return render_template("index.html", entries=entries(), script_root=request.script_root)


@app.route("/guestbook/sign", methods=["GET", "POST"])
def sign() -> str | Response | tuple[str, int]:
    if request.method == "GET":
        return render_template("sign.html", name=session.get("name", ""))
    name = request.form.get("name", "").strip()[:40]
    message = request.form.get("message", "").strip()[:200]
    if not name or not message:
        flash("Both a name and a message, please.", "error")
        return render_template("sign.html", name=name, message=message), 400
    at = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    with _entries_lock:
        _entries.append(Entry(name, message, at))
    session["name"] = name
    flash(f"Thanks for signing, {name}!", "success")
    return redirect(url_for("index"))  # post/redirect/get: a reload does not post twice


@app.get("/handbook")
def handbook() -> Response:
    # send_file hands Flask's file to wsgi.file_wrapper: WsgiToAsgi answers with
    # http.response.pathsend where the server offers it, else streams the file in chunks.
    return send_file(HANDBOOK, mimetype="text/plain", as_attachment=True)


@app.get("/guestbook.csv")
def export_csv() -> Response:
    def rows() -> Iterator[str]:  # a generator: each row goes out as it is made
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        for row in [("name", "message", "at"), *((e.name, e.message, e.at) for e in entries())]:
            writer.writerow(row)
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()

    headers = {"Content-Disposition": "attachment; filename=guestbook.csv"}
    return Response(rows(), mimetype="text/csv", headers=headers)


@app.route("/upload", methods=["GET", "POST"])
def upload() -> str:
    report = None
    if request.method == "POST" and (file := request.files.get("file")) and file.filename:
        digest, size = hashlib.sha256(), 0
        while chunk := file.stream.read(65536):
            digest.update(chunk)
            size += len(chunk)
        report = {"name": file.filename, "size": size, "sha256": digest.hexdigest()}
    return render_template("upload.html", report=report)


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


# -- what the bridge carries ---------------------------------------------------------------------


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
