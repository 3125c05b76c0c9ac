"""``python -m bridge serve``: the app is wrapped for the chosen server only when it needs it."""

from __future__ import annotations

import subprocess
import sys

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
