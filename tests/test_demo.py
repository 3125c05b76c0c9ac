"""``scripts/demo`` for real: the script itself (``PORT`` set to a free port, ``BRIDGE_VENV`` to
the test's virtualenv, so nothing is installed) on uvicorn and on gunicorn gthread, every route of
demo_fastapi and of the legacy Flask app inside it walked with httpx, then the server stopped by
its pid (gunicorn's workers too) and the lifespan shutdown checked.

On uvicorn the Flask app runs through ``WsgiToAsgi``; on gunicorn through both adapters
(gunicorn -> AsgiToWsgi -> FastAPI -> WsgiToAsgi -> Flask), so each check covers the round trip.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil
import pytest

from bridge import WsgiToAsgi
from demo_fastapi.app import RELEASE_NOTES
from demo_flask.app import HANDBOOK
from demo_flask.app import app as flask_app
from tests.asgi_harness import Conversation, http_scope, run
from tests.servers import ROOT, Server, serve
from tests.test_wsgi_to_asgi_e2e import wait_until

pytestmark = [pytest.mark.timeout(90)]

# Arguments after these go to the server: short graceful stops, no gunicorn control socket.
SERVER_ARGS = {
    "uvicorn": ["--timeout-graceful-shutdown", "2"],
    "gunicorn": ["--server", "gunicorn", "--no-control-socket", "--graceful-timeout", "5"],
}


@contextmanager
def run_demo(server: str, marker: Path) -> Iterator[Server]:
    """``scripts/demo`` with ``server``; on leaving, the server and all its processes are gone."""
    env = {"PORT": "{port}", "BRIDGE_VENV": sys.prefix, "BRIDGE_DEMO_SHUTDOWN_MARKER": str(marker)}
    with serve([str(ROOT / "scripts" / "demo"), *SERVER_ARGS[server]], env=env, timeout=60) as demo:
        # scripts/demo execs the server: its pid is the script's, so stop() reaches it.
        process = psutil.Process(demo.proc.pid)
        assert wait_until(lambda: server != "gunicorn" or bool(process.children()), timeout=10)
        children = process.children(recursive=True)
        yield demo
        assert demo.stop() in (0, -15), demo.log()
    _, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, f"{server} left processes behind: {alive}"


@pytest.fixture(
    scope="module", params=[pytest.param(name, marks=pytest.mark.server) for name in SERVER_ARGS]
)
def demo(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    marker = tmp_path_factory.mktemp("demo") / "shutdown"
    with run_demo(request.param, marker) as server:
        yield server
    assert "shutdown" in marker.read_text(), "the lifespan shutdown did not run"


def test_prints_the_urls_to_try(demo: Server) -> None:
    log = demo.log()
    for path in ["/", "/legacy/", "/docs", "/items", "/stream", "/release-notes"]:
        assert f"{demo.url}{path} " in log
    assert f"curl -X POST {demo.url}/orders" in log


def test_fastapi_routes(demo: Server) -> None:
    with httpx.Client(base_url=demo.url, timeout=10) as client:
        index = client.get("/")
        assert index.status_code == 200
        assert index.headers["content-type"].startswith("text/html")
        assert '<a href="legacy/">legacy/</a>' in index.text
        assert client.get("/healthz").json() == {"status": "ok"}
        assert "/orders" in client.get("/openapi.json").json()["paths"]
        assert "swagger" in client.get("/docs").text.lower()
        # Typed routes over the catalog the lifespan loaded.
        items = client.get("/items").json()
        assert items == [
            {"id": 1, "name": "Adapter", "price_cents": 1250},
            {"id": 2, "name": "Cable", "price_cents": 399},
        ]
        assert client.get("/items/2").json() == items[1]
        assert client.get("/items/9").json() == {"detail": "no item 9"}
        assert client.get("/items/nine").status_code == 422
        state = client.get("/state").json()
        assert state["lifespan_loop_is_request_loop"] is True
        # An order, its receipt a background task that runs after the response.
        created = client.post("/orders", json={"item_id": 1, "quantity": 3})
        assert created.status_code == 201
        order = created.json()
        assert order["item"] == items[0] and order["total_cents"] == 3750
        assert client.post("/orders", json={"item_id": 1, "quantity": 0}).status_code == 422
        assert client.post("/orders", json={"item_id": 7, "quantity": 1}).status_code == 404
        assert wait_until(
            lambda: client.get(f"/orders/{order['id']}").json()["receipt_sent"], timeout=10
        ), "the background task never marked the receipt sent"
        assert client.get("/orders/99999").status_code == 404
        # A FileResponse, a stream, the echo.
        notes = client.get("/release-notes")
        assert notes.content == RELEASE_NOTES.read_bytes()
        assert 'filename="release-notes.txt"' in notes.headers["content-disposition"]
        with client.stream("GET", "/stream") as response:
            assert list(response.iter_lines()) == [f"line {i}" for i in range(10)]
        body = os.urandom(300_000)
        assert client.post("/echo", content=body).content == body
        assert client.get("/hello/café").json() == {"hello": "café"}
        assert client.get("/sleep").json() == {"slept": 0.5}


def test_legacy_flask_pages(demo: Server) -> None:
    with httpx.Client(base_url=f"{demo.url}/legacy", timeout=10) as client:
        home = client.get("/")
        assert home.status_code == 200
        # url_for links carry the mount prefix; the session cookie counts the visits.
        for link in ["/legacy/guestbook/sign", "/legacy/upload", "/legacy/handbook"]:
            assert f'href="{link}"' in home.text
        assert 'href="/legacy/hello/caf%C3%A9"' in home.text
        assert '<strong id="visits">1</strong>' in home.text
        assert '<strong id="visits">2</strong>' in client.get("/").text
        form = client.get("/guestbook/sign")
        assert 'action="/legacy/guestbook/sign"' in form.text
        # An incomplete form is shown again with an error; a complete one posts and redirects.
        missing = client.post("/guestbook/sign", data={"name": "Grace", "message": " "})
        assert missing.status_code == 400 and "Both a name and a message" in missing.text
        signed = client.post("/guestbook/sign", data={"name": "Grace", "message": "Hi from httpx"})
        assert signed.status_code == 302
        assert signed.headers["location"] == "/legacy/"
        after = client.get(demo.url + signed.headers["location"])  # an absolute path
        assert "Thanks for signing, Grace!" in after.text
        assert "Welcome back, Grace" in after.text
        assert "<strong>Grace</strong>: Hi from httpx" in after.text
        assert "Thanks for signing" not in client.get("/").text  # a flash is shown once
        assert 'value="Grace"' in client.get("/guestbook/sign").text
        # send_file, then the generator's CSV (no Content-Length: it streams).
        handbook = client.get("/handbook")
        assert handbook.content == HANDBOOK.read_bytes()
        assert handbook.headers["content-disposition"] == "attachment; filename=handbook.txt"
        export = client.get("/guestbook.csv")
        assert export.headers["content-type"] == "text/csv; charset=utf-8"
        assert "content-length" not in export.headers
        rows = list(csv.reader(io.StringIO(export.text)))
        assert rows[0] == ["name", "message", "at"]
        assert ["Grace", "Hi from httpx"] in [row[:2] for row in rows]
        # An upload, reported by name, size and sha256.
        data = os.urandom(200_000)
        files = {"file": ("report.bin", data, "application/octet-stream")}
        report = client.post("/upload", files=files).text
        assert '<code id="report-name">report.bin</code>' in report
        assert '<code id="report-size">200000</code>' in report
        assert f'<code id="report-sha256">{hashlib.sha256(data).hexdigest()}</code>' in report
        # What the bridge carries: paths, redirects, streams, the priority lane's health check.
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/hello/café").json() == {
            "hello": "café",
            "script_root": "/legacy",
            "path": "/hello/café",
        }
        assert client.get("/go").headers["location"] == "/legacy/hello/redirected"
        with client.stream("GET", "/stream") as response:
            assert list(response.iter_lines()) == [f"line {i}" for i in range(10)]
        body = os.urandom(300_000)
        echoed = client.post("/echo", content=body, headers={"content-type": "application/x-demo"})
        assert echoed.content == body and echoed.headers["content-type"] == "application/x-demo"
        assert client.get("/nope").status_code == 404


@pytest.mark.timeout(10)
def test_the_handbook_is_pathsent_where_the_server_offers_it() -> None:
    """send_file goes through wsgi.file_wrapper: WsgiToAsgi hands the server the file's path."""

    async def main() -> None:
        scope = http_scope("/handbook", extensions={"http.response.pathsend": {}})
        conversation = Conversation(WsgiToAsgi(flask_app), scope)
        conversation.push_body()
        start = await conversation.next()
        assert start["status"] == 200
        assert (b"content-length", str(HANDBOOK.stat().st_size).encode()) in start["headers"]
        assert await conversation.next() == {
            "type": "http.response.pathsend",
            "path": str(HANDBOOK),
        }
        await conversation.finish()

    run(main())
