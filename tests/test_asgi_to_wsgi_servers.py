"""AsgiToWsgi end to end: a FastAPI test app on real gunicorn gthread, on 127.0.0.1 (the other
servers, the demo, shared mode and shutdown signals are in test_asgi_to_wsgi_e2e.py).

Streaming is proven by a hand-off (chunk two waits for a file the test makes once it holds chunk
one); memory is the server process's own peak RSS during the transfer.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.servers import Server, serve
from tests.test_wsgi_to_asgi_e2e import HOST, MiB, PeakRss, download, upload, wait_until

pytestmark = pytest.mark.server
APP = "tests.apps_fastapi:wsgi_app"
GTHREAD = ["gunicorn", "-k", "gthread", "--threads", "8", "--workers", "1"]
GTHREAD += ["--bind", f"{HOST}:{{port}}", "--no-control-socket", "--graceful-timeout", "5"]


@pytest.fixture(scope="module")
def shared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bridge-asgi-e2e")


@pytest.fixture(scope="module")
def gthread(shared_dir: Path) -> Iterator[Server]:
    with serve([*GTHREAD, APP], env={"BRIDGE_TEST_DIR": str(shared_dir)}) as server:
        yield server


def assert_streams(server: Server, shared_dir: Path, name: str) -> None:
    """Chunk one arrives while the app still waits for the test: a buffering adapter hangs."""
    with httpx.Client(timeout=10) as client, client.stream("GET", f"{server.url}/gate/{name}") as r:
        chunks = r.iter_raw()
        received = next(chunks)
        assert received.startswith(b"one;"), received
        (shared_dir / name).touch()
        received += b"".join(chunks)
    assert received == b"one;two"


def echo_5_mib(server: Server) -> None:
    body = os.urandom(5 * MiB)
    response = httpx.post(f"{server.url}/echo", content=body, timeout=30)
    assert response.status_code == 200 and response.content == body


@pytest.mark.timeout(60)
def test_gthread_serves_fastapi_with_lifespan_state(gthread: Server) -> None:
    body = httpx.get(f"{gthread.url}/hello/café", timeout=10).json()
    assert body["hello"] == "café"
    assert body["lifespan_thread"]  # the lifespan of the loop serving this thread ran first


@pytest.mark.timeout(60)
def test_gthread_streams_chunk_by_chunk(gthread: Server, shared_dir: Path) -> None:
    assert_streams(gthread, shared_dir, "gthread-gate")
    echo_5_mib(gthread)


def hang_up_mid_stream(server: Server, path: str) -> None:
    with socket.create_connection((HOST, server.port), timeout=5) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
        received = b""
        while b"tick" not in received:
            data = sock.recv(65536)
            assert data
            received += data


@pytest.mark.timeout(60)
def test_gthread_client_gone_mid_stream_ends_the_app(gthread: Server, shared_dir: Path) -> None:
    raw = shared_dir / "raw-gthread"
    hang_up_mid_stream(gthread, f"/raw/{raw.name}")
    assert wait_until(raw.exists, timeout=5), "the app went on after the client left"
    assert raw.read_text() == "ClientDisconnected http.disconnect"
    # The same through FastAPI's StreamingResponse: its body generator is closed too.
    endless = shared_dir / "endless-gthread"
    hang_up_mid_stream(gthread, f"/endless/{endless.name}")
    assert wait_until(endless.exists, timeout=5), "the body generator went on after the client left"
    assert endless.read_text() != "ran to the end"


@pytest.mark.timeout(60)
def test_gthread_error_before_the_response_is_a_500_with_the_traceback(gthread: Server) -> None:
    response = httpx.get(f"{gthread.url}/boom", timeout=10)
    assert response.status_code == 500
    assert wait_until(lambda: "the app broke before responding" in gthread.log(), timeout=5)
    assert httpx.get(f"{gthread.url}/hello/x", timeout=10).status_code == 200


@pytest.mark.timeout(120)
def test_gthread_256_mib_each_way_in_constant_memory(gthread: Server) -> None:
    upload(gthread, 4 * MiB)
    download(gthread, 4 * MiB)
    with PeakRss(gthread.proc.pid) as rss:
        worker = psutil.Process(gthread.proc.pid).children()[0]
        with PeakRss(worker.pid) as worker_rss:
            reply, crc = upload(gthread, 256 * MiB)
            received, got, expected = download(gthread, 256 * MiB)
    assert reply == {"size": 256 * MiB, "crc32": crc}
    assert received == 256 * MiB and got == expected
    print(f"gthread worker RSS growth over 256 MiB up + down: {worker_rss.growth / MiB:.1f} MiB")
    assert worker_rss.growth < 48 * MiB and rss.growth < 48 * MiB


@pytest.mark.timeout(60)
def test_a_failed_lifespan_startup_answers_500_and_the_server_lives(tmp_path: Path) -> None:
    env = {"BRIDGE_TEST_DIR": str(tmp_path), "BRIDGE_TEST_LIFESPAN": "fail"}
    with serve([*GTHREAD, APP], env=env) as server:
        for _ in range(2):
            assert httpx.get(f"{server.url}/hello/x", timeout=10).status_code == 500
        assert wait_until(lambda: "database unreachable" in server.log(), timeout=5)
        assert server.proc.poll() is None
