"""AsgiToWsgi end to end: FastAPI on real gunicorn (gthread and sync), waitress and the standard
library's wsgiref server, each a subprocess on 127.0.0.1.

Streaming is proven by a hand-off (chunk two waits for a file the test makes once it holds chunk
one); memory is the server process's own peak RSS during the transfer.
"""

from __future__ import annotations

import concurrent.futures
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.servers import Server, serve
from tests.test_wsgi_to_asgi_e2e import HOST, MiB, PeakRss, download, upload, wait_until

pytestmark = pytest.mark.server
APP = "tests.asgi_apps:wsgi_app"
GTHREAD = ["gunicorn", "-k", "gthread", "--threads", "8", "--workers", "1"]
GTHREAD += ["--bind", f"{HOST}:{{port}}", "--no-control-socket", "--graceful-timeout", "5"]
SYNC = ["gunicorn", "-k", "sync", "--workers", "1", "--bind", f"{HOST}:{{port}}"]
SYNC += ["--no-control-socket", "--graceful-timeout", "5"]
WAITRESS = ["waitress-serve", f"--listen={HOST}:{{port}}", "--threads=4", APP]
WSGIREF = ["python", "-m", "tests.asgi_apps", "{port}"]


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


@pytest.mark.timeout(60)
def test_gthread_runs_eight_sleeps_at_once(gthread: Server) -> None:
    httpx.get(f"{gthread.url}/sleep", timeout=10)  # warm up one thread
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda _: httpx.get(f"{gthread.url}/sleep", timeout=10), range(8)))
    elapsed = time.monotonic() - started
    assert all(r.status_code == 200 for r in replies)
    assert elapsed < 1.5, f"8 concurrent 0.5 s sleeps took {elapsed:.2f} s"


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
def test_sigterm_runs_the_lifespan_shutdown_of_every_loop(tmp_path: Path) -> None:
    with serve([*GTHREAD, APP], env={"BRIDGE_TEST_DIR": str(tmp_path)}) as server:
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda _: httpx.get(f"{server.url}/sleep", timeout=10), range(4)))
        threads = {httpx.get(f"{server.url}/hello/x", timeout=10).json()["lifespan_thread"]}
        assert threads and not (tmp_path / "shutdown").exists()
        assert server.stop(signal.SIGTERM) == 0
    shutdowns = (tmp_path / "shutdown").read_text().splitlines()
    assert len(shutdowns) >= 2  # the worker served on several threads, each with its loop
    assert threads <= {line.split()[1] for line in shutdowns}


@pytest.mark.timeout(60)
def test_a_failed_lifespan_startup_answers_500_and_the_server_lives(tmp_path: Path) -> None:
    env = {"BRIDGE_TEST_DIR": str(tmp_path), "BRIDGE_TEST_LIFESPAN": "fail"}
    with serve([*GTHREAD, APP], env=env) as server:
        for _ in range(2):
            assert httpx.get(f"{server.url}/hello/x", timeout=10).status_code == 500
        assert wait_until(lambda: "database unreachable" in server.log(), timeout=5)
        assert server.proc.poll() is None


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "argv", [[*SYNC, APP], WAITRESS, WSGIREF], ids=["sync", "waitress", "wsgiref"]
)
def test_other_wsgi_servers(argv: list[str], shared_dir: Path) -> None:
    with serve(argv, env={"BRIDGE_TEST_DIR": str(shared_dir)}) as server:
        assert httpx.get(f"{server.url}/hello/café", timeout=10).json()["hello"] == "café"
        echo_5_mib(server)
        assert_streams(server, shared_dir, f"gate-{argv[0]}-{argv[2][:4]}")


@pytest.mark.timeout(60)
def test_thread_per_request_server_leaves_no_loops_threads_or_fds(shared_dir: Path) -> None:
    with serve(WSGIREF, env={"BRIDGE_TEST_DIR": str(shared_dir)}) as server:
        process = psutil.Process(server.proc.pid)
        with httpx.Client(base_url=server.url, timeout=10) as client:
            for _ in range(10):
                assert client.get("/hello/x").status_code == 200
            time.sleep(0.2)
            fds, threads = process.num_fds(), process.num_threads()
            for _ in range(100):  # each on a new server thread with a new loop and lifespan
                assert client.get("/hello/x").status_code == 200
            time.sleep(0.2)
            assert process.num_fds() <= fds + 2, (fds, process.num_fds())
            assert process.num_threads() <= threads + 1
