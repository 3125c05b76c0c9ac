"""A client that sends half its declared body and leaves, through real gunicorn (sync and
gthread): the client's doing, so the server logs it at debug level only (no ASGIProtocolError
blaming the app, no traceback), and the next request is served."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from tests.servers import serve
from tests.test_wsgi_to_asgi_e2e import HOST, wait_until

pytestmark = pytest.mark.server
APP = "tests.apps_fastapi:wsgi_app"
WORKERS = {"sync": ["-k", "sync"], "gthread": ["-k", "gthread", "--threads", "4"]}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("worker", sorted(WORKERS))
def test_a_client_leaving_mid_body_is_not_logged_as_the_apps_fault(
    worker: str, tmp_path: Path
) -> None:
    argv = ["gunicorn", *WORKERS[worker], "--workers", "1", "--bind", f"{HOST}:{{port}}"]
    argv += ["--no-control-socket", "--graceful-timeout", "5", "--log-level", "debug", APP]
    with serve(argv, env={"BRIDGE_TEST_DIR": str(tmp_path)}) as server:
        assert httpx.get(f"{server.url}/hello/x", timeout=10).status_code == 200
        with socket.create_connection((HOST, server.port), timeout=5) as sock:
            head = f"POST /upload HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 1000\r\n\r\n"
            sock.sendall(head.encode() + b"x" * 500)
        # gunicorn's own line for an OSError with errno ECONNRESET from the app.
        assert wait_until(lambda: "Ignoring connection reset" in server.log(), timeout=10), (
            server.log()
        )
        assert httpx.get(f"{server.url}/hello/y", timeout=10).status_code == 200
        log = server.log()
    assert "ASGIProtocolError" not in log and "Traceback" not in log, log
