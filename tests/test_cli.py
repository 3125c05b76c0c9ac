"""``python -m bridge serve``: the app is wrapped for the chosen server only when it needs it."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import httpx
import pytest

from bridge._cli import load
from tests.servers import ROOT, serve

pytestmark = [pytest.mark.timeout(60), pytest.mark.server]


@pytest.mark.parametrize("server", ["uvicorn", "gunicorn"])
def test_serves_a_wsgi_app_on_either_server(server: str) -> None:
    argv = ["python", "-m", "bridge", "serve", "demo_flask.app:app", "--server", server]
    with serve([*argv, "--port", "{port}"]) as srv:
        response = httpx.get(f"{srv.url}/hello/café", timeout=10)
        assert response.json() == {"hello": "café", "path": "/hello/café", "script_root": ""}
        log = srv.log()
    assert ("Uvicorn running" in log) == (server == "uvicorn")


async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
    """A bare ASGI app for the servers below (this module is importable as tests.test_cli)."""
    if scope["type"] != "http":
        return
    body = f"asgi {scope['path']} via {scope['asgi'].get('spec_version')}".encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


@pytest.mark.parametrize(("server", "spec"), [("gunicorn", "2.4"), ("uvicorn", "2.")])
def test_serves_an_asgi_app_on_either_server(server: str, spec: str) -> None:
    argv = ["python", "-m", "bridge", "serve", "tests.test_cli:asgi_app", "--server", server]
    with serve([*argv, "--port", "{port}"]) as srv:
        text = httpx.get(f"{srv.url}/café", timeout=10).text
    # On gunicorn the scope comes from AsgiToWsgi (spec 2.4); on uvicorn from uvicorn itself.
    assert text.startswith("asgi /café via " + spec)


def test_load_names_what_is_missing() -> None:
    with pytest.raises(SystemExit, match="expected MODULE:APP"):
        load("demo_flask.app")
    with pytest.raises(SystemExit, match="no attribute 'nope'"):
        load("demo_flask.app:nope")
    assert callable(load("demo_flask.app:app.wsgi_app"))


def test_a_bad_target_exits_with_the_message() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bridge", "serve", "demo_flask.app:missing"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert "has no attribute 'missing'" in result.stderr
