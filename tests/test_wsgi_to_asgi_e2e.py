"""WsgiToAsgi end to end: Flask on real uvicorn and gunicorn subprocesses on 127.0.0.1, and the
pool's limits driven in process.

Streaming is proven by hand-offs, not by timing: the app makes chunk two only once the test holds
chunk one, so an adapter that buffered the body would show nothing until the app gave up (and the
body then says so). Memory is the server process's own: its RSS sampled during a transfer and its
kernel high-water mark (``VmHWM``, reset just before the transfer).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import signal
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from bridge import WsgiToAsgi
from bridge.wsgi_to_asgi._adapter import HOLD_BODY
from tests.apps_wsgi import BLOCK, PATTERN
from tests.asgi_harness import Conversation, http_scope
from tests.servers import Server, serve

MiB = 1024 * 1024
HOST = "127.0.0.1"
UVICORN = ["uvicorn", "--host", HOST, "--port", "{port}", "--no-access-log"]
UVICORN += ["--timeout-graceful-shutdown", "2"]  # a stuck test request must not stall the stop
GUNICORN = ["gunicorn", "-k", "asgi", "--bind", f"{HOST}:{{port}}", "--workers", "1"]
GUNICORN += ["--no-control-socket", "--graceful-timeout", "5"]


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.005) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass; return whether it held."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


@pytest.fixture(scope="module")
def shared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bridge-e2e")


@pytest.fixture(scope="module")
def flask_server(shared_dir: Path) -> Iterator[Server]:
    """``tests.apps_wsgi:app`` (Flask through WsgiToAsgi, 2 threads) on uvicorn."""
    env = {"BRIDGE_TEST_DIR": str(shared_dir), "BRIDGE_TEST_THREADS": "2"}
    with serve([*UVICORN, "tests.apps_wsgi:app"], env=env) as server:
        yield server


# -- helpers for the hand-off and disconnect tests ----------------------------------------------


def assert_gate_streams(server: Server, shared_dir: Path, name: str, prefix: str = "") -> None:
    """Chunk one must reach the client while the app is still waiting to make chunk two."""
    gate = shared_dir / name
    with httpx.stream("GET", f"{server.url}{prefix}/gate/{name}", timeout=10) as response:
        assert response.status_code == 200
        chunks = response.iter_raw()
        first = next(chunks)
        assert first == b"chunk one\n", "the adapter held chunk one until the generator gave up"
        gate.touch()  # only now may the app make chunk two
        rest = b"".join(chunks)
    assert rest == b"chunk two\n"


def disconnect_mid_stream(server: Server, marker: Path, unread_body: int = 0) -> float:
    """Read part of an endless response, hang up; return seconds until the iterable's close().

    With ``unread_body``, the request is a POST announcing 4 MiB and sending that many bytes,
    which the app never reads: the adapter is still feeding ``wsgi.input`` when the client goes.
    """
    with socket.create_connection((HOST, server.port), timeout=5) as sock:
        if unread_body:
            head = f"POST /endless/{marker.name} HTTP/1.1\r\nHost: {HOST}\r\n"
            head += f"Content-Length: {4 * MiB}\r\n\r\n"
            sock.sendall(head.encode() + PATTERN[:1024] * (unread_body // 1024))
        else:
            request = f"GET /endless/{marker.name} HTTP/1.1\r\nHost: {HOST}\r\n\r\n"
            sock.sendall(request.encode())
        received = b""
        while b"xxxx" not in received:  # headers, then the body has started
            data = sock.recv(65536)
            assert data, "the server closed the connection before the body started"
            received += data
        assert received.startswith(b"HTTP/1.1 200 ")
        assert not marker.exists()
    hung_up = time.monotonic()
    assert wait_until(marker.exists, timeout=1.0), "close() not called within 1 s of the hang-up"
    return time.monotonic() - hung_up


def websocket_handshake(server: Server) -> bytes:
    """Ask for a WebSocket on ``/``; return the start of the answer."""
    with socket.create_connection((HOST, server.port), timeout=5) as sock:
        sock.sendall(
            b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        return sock.recv(1000)


# -- Flask on uvicorn ---------------------------------------------------------------------------


@pytest.mark.server
@pytest.mark.timeout(60)
def test_demo_on_uvicorn_echoes_5_mib() -> None:
    body = os.urandom(5 * MiB)
    with serve([*UVICORN, "demo_flask.asgi:app"]) as server:
        index = httpx.get(server.url, timeout=10)
        echoed = httpx.post(
            f"{server.url}/echo",
            content=body,
            headers={"Content-Type": "application/x-test"},
            timeout=30,
        )
        hello = httpx.get(f"{server.url}/hello/café", timeout=10)
        returncode = server.stop()  # SIGTERM: uvicorn runs the lifespan shutdown
        log = server.log()
    assert returncode in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once it is done
    assert "Application startup complete" in log
    assert "Application shutdown complete" in log
    assert index.status_code == 200
    assert 'href="/hello/caf%C3%A9"' in index.text
    assert echoed.status_code == 200
    assert echoed.headers["content-type"] == "application/x-test"
    assert len(echoed.content) == len(body)
    assert echoed.content == body
    assert hello.json() == {"hello": "café", "path": "/hello/café", "script_root": ""}


@pytest.mark.server
@pytest.mark.timeout(30)
def test_uvicorn_sends_the_first_chunk_before_the_generator_ends(
    flask_server: Server, shared_dir: Path
) -> None:
    assert_gate_streams(flask_server, shared_dir, "uvicorn_gate")


@pytest.mark.server
@pytest.mark.timeout(30)
def test_uvicorn_disconnect_mid_stream_closes_the_iterable(
    flask_server: Server, shared_dir: Path
) -> None:
    # uvicorn's send() returns silently once the client is gone: only watching receive() tells.
    # Three hang-ups on a 2-thread adapter: each must also give its thread back.
    for i in range(3):
        disconnect_mid_stream(flask_server, shared_dir / f"closed_{i}")
    # The client leaves while its request body is still due (past the 1 MiB the adapter holds
    # before the app starts, 128 KiB more sent of 4 MiB, never read).
    unread = HOLD_BODY + 128 * 1024
    disconnect_mid_stream(flask_server, shared_dir / "closed_mid_body", unread_body=unread)
    started = time.monotonic()
    response = httpx.get(f"{flask_server.url}/hello/after", timeout=5)
    assert response.json()["hello"] == "after"
    assert time.monotonic() - started < 2


@pytest.mark.server
@pytest.mark.timeout(30)
@pytest.mark.xfail(
    strict=True,
    reason="a2wsgi does not watch receive() while streaming; uvicorn's send() is silent",
)
def test_a2wsgi_on_uvicorn_misses_the_disconnect(shared_dir: Path) -> None:
    env = {"BRIDGE_TEST_DIR": str(shared_dir), "BRIDGE_TEST_ADAPTER": "a2wsgi"}
    with serve([*UVICORN, "tests.apps_wsgi:app"], env=env) as server:
        disconnect_mid_stream(server, shared_dir / "a2wsgi_closed")


@pytest.mark.server
@pytest.mark.timeout(30)
def test_uvicorn_disconnect_mid_request_body_raises_from_wsgi_input(
    flask_server: Server, shared_dir: Path
) -> None:
    marker = shared_dir / "consume_cut"
    with socket.create_connection((HOST, flask_server.port), timeout=5) as sock:
        head = (
            f"POST /consume/{marker.name} HTTP/1.1\r\nHost: {HOST}\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {8 * MiB}\r\n\r\n"
        )
        # 2 MiB of the 8 announced: past the 1 MiB held before the app starts (a client that
        # leaves within it never reaches the app at all).
        sock.sendall(head.encode() + PATTERN * (2 * MiB // BLOCK))
    assert wait_until(marker.exists, timeout=2.0), "the app's read never ended"
    outcome = marker.read_text()
    # Never a silent, truncated EOF: the app would take 2 MiB for the whole body.
    assert outcome.startswith("ClientDisconnected after "), outcome
    assert int(outcome.rsplit(" ", 1)[1]) <= 2 * MiB


@pytest.mark.server
@pytest.mark.timeout(60)
def test_uvicorn_stalled_client_holds_the_thread_not_memory(
    flask_server: Server, shared_dir: Path
) -> None:
    marker = shared_dir / "stalled"
    size = 4096 * MiB  # far more than could ever be buffered
    with socket.create_connection((HOST, flask_server.port), timeout=5) as sock:
        request = f"GET /download/{size}?marker={marker.name} HTTP/1.1\r\nHost: {HOST}\r\n\r\n"
        sock.sendall(request.encode())
        received = 0
        while received < MiB:
            data = sock.recv(65536)
            assert data, "the server closed the connection early"
            received += len(data)
        with PeakRss(flask_server.proc.pid) as rss:
            time.sleep(1.0)  # the client reads nothing: only back-pressure stops the app
        assert not marker.exists()
    assert wait_until(marker.exists, timeout=1.0), "close() not called within 1 s of the hang-up"
    made = int(marker.read_text())
    print(
        f"stalled client: app made {(made - received) / MiB:.1f} MiB ahead of the client, "
        f"server RSS growth {rss.growth / MiB:.1f} MiB"
    )
    assert rss.growth < 48 * MiB, f"server RSS grew {rss.growth / MiB:.1f} MiB"
    # Ahead of the client: socket buffers on both sides, the transport's and the hand-off's.
    assert made - received < 32 * MiB


@pytest.mark.server
@pytest.mark.timeout(30)
def test_uvicorn_app_errors_before_and_after_the_headers(flask_server: Server) -> None:
    with httpx.Client(base_url=flask_server.url, timeout=10) as client:
        before = client.get("/boom")
        # After the headers the server drops the connection: a chunked body lacks its last
        # chunk, a sized one its last bytes. Never a truncated response that looks whole.
        with pytest.raises(httpx.RemoteProtocolError):
            client.get("/stream-boom")
        with pytest.raises(httpx.RemoteProtocolError):
            client.get("/stream-boom", params={"length": "100"})
        after = client.get("/hello/still-here")
    assert before.status_code == 500
    assert after.json()["hello"] == "still-here"
    log = flask_server.log()
    assert "RuntimeError: boom before the headers" in log  # the traceback, logged by uvicorn
    assert "RuntimeError: boom after the headers" in log


class PeakRss:
    """The peak RSS growth of a process over a block: sampled every 10 ms by a thread, and the
    kernel's ``VmHWM`` (reset at the start through ``clear_refs``) so no spike falls between
    two samples."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.process = psutil.Process(pid)
        self.baseline = 0
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _rss(self) -> int:
        return int(self.process.memory_info().rss)

    def _hwm(self) -> int | None:
        status = Path(f"/proc/{self.pid}/status").read_text()
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        return None

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self._rss())

    def __enter__(self) -> PeakRss:
        self.baseline = self.peak = self._rss()
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
            self._hwm_reset = True
        except OSError:
            self._hwm_reset = False
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.peak = max(self.peak, self._rss())
        hwm = self._hwm() if self._hwm_reset else None
        if hwm is not None:
            self.peak = max(self.peak, hwm)

    @property
    def growth(self) -> int:
        return self.peak - self.baseline


def upload(server: Server, size: int, chunked: bool = False) -> tuple[dict[str, Any], int]:
    """POST ``size`` bytes of ``PATTERN`` to /upload, made block by block; the reply and the CRC."""
    crc = 0

    def blocks() -> Iterator[bytes]:
        nonlocal crc
        for _ in range(size // BLOCK):
            crc = zlib.crc32(PATTERN, crc)
            yield PATTERN

    conn = http.client.HTTPConnection(HOST, server.port, timeout=30)
    try:
        headers = {"Content-Type": "application/octet-stream"}
        if not chunked:
            headers["Content-Length"] = str(size)
        conn.request("POST", "/upload", body=blocks(), headers=headers, encode_chunked=chunked)
        response = conn.getresponse()
        assert response.status == 200, response.read(1000)
        return json.loads(response.read()), crc
    finally:
        conn.close()


def download(server: Server, size: int) -> tuple[int, int, int]:
    """GET /download/<size> read in 1 MiB pieces: bytes received, their CRC, the expected CRC."""
    conn = http.client.HTTPConnection(HOST, server.port, timeout=30)
    try:
        conn.request("GET", f"/download/{size}")
        response = conn.getresponse()
        assert response.status == 200
        assert response.getheader("Content-Length") == str(size)
        buffer = memoryview(bytearray(MiB))
        received = crc = 0
        while n := response.readinto(buffer):
            received += n
            crc = zlib.crc32(buffer[:n], crc)
        expected = 0
        for _ in range(size // BLOCK):
            expected = zlib.crc32(PATTERN, expected)
        return received, crc, expected
    finally:
        conn.close()


@pytest.mark.server
@pytest.mark.timeout(120)
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_uvicorn_256_mib_upload_in_constant_memory(flask_server: Server, chunked: bool) -> None:
    upload(flask_server, 4 * MiB, chunked)  # warm up: every code path imported and run once
    size = 256 * MiB
    with PeakRss(flask_server.proc.pid) as rss:
        started = time.monotonic()
        reply, crc = upload(flask_server, size, chunked)
        elapsed = time.monotonic() - started
    kind = "chunked" if chunked else "sized"
    print(f"256 MiB {kind} upload: {elapsed:.1f} s, server RSS growth {rss.growth / MiB:.1f} MiB")
    assert reply == {"size": size, "crc32": crc}
    assert rss.growth < 48 * MiB, f"server RSS grew {rss.growth / MiB:.1f} MiB"


@pytest.mark.server
@pytest.mark.timeout(120)
def test_uvicorn_256_mib_download_in_constant_memory(flask_server: Server) -> None:
    download(flask_server, 4 * MiB)  # warm up
    size = 256 * MiB
    with PeakRss(flask_server.proc.pid) as rss:
        started = time.monotonic()
        received, crc, expected = download(flask_server, size)
        elapsed = time.monotonic() - started
    print(f"256 MiB download: {elapsed:.1f} s, server RSS growth {rss.growth / MiB:.1f} MiB")
    assert received == size
    assert crc == expected
    assert rss.growth < 48 * MiB, f"server RSS grew {rss.growth / MiB:.1f} MiB"


@pytest.mark.server
@pytest.mark.timeout(30)
def test_uvicorn_root_path_option(shared_dir: Path) -> None:
    # uvicorn --root-path: a proxy stripped /proxy; uvicorn puts it back into scope["path"].
    env = {"BRIDGE_TEST_DIR": str(shared_dir)}
    argv = [*UVICORN, "--root-path", "/proxy", "tests.apps_wsgi:app"]
    with serve(argv, env=env) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        hello = client.get("/hello/café")
        go = client.get("/go")
    assert hello.json() == {
        "hello": "café",
        "path": "/hello/café",
        "script_root": "/proxy",
        "url": "/proxy/hello/caf%C3%A9",
    }
    assert go.headers["location"] == "/proxy/hello/redirected"


# -- FastAPI with Flask mounted at /legacy, on uvicorn ------------------------------------------


@pytest.mark.server
@pytest.mark.timeout(60)
def test_flask_mounted_in_fastapi_on_uvicorn(shared_dir: Path) -> None:
    env = {"BRIDGE_TEST_DIR": str(shared_dir)}
    body = os.urandom(MiB)
    with serve([*UVICORN, "tests.apps_wsgi:fastapi_app"], env=env) as server:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            hello = client.get("/legacy/hello/café")
            go = client.get("/legacy/go")
            followed = client.get(go.headers["location"])
            echoed = client.post("/legacy/echo", content=body)
            beside = client.get("/legacyfoo")
            ping = client.get("/ping")
        assert_gate_streams(server, shared_dir, "mounted_gate", prefix="/legacy")
    assert hello.json() == {
        "hello": "café",
        "path": "/hello/café",
        "script_root": "/legacy",
        "url": "/legacy/hello/caf%C3%A9",
    }
    assert go.status_code == 302
    assert go.headers["location"] == "/legacy/hello/redirected"
    assert followed.json()["hello"] == "redirected"
    assert echoed.content == body
    # /legacyfoo is not under /legacy: FastAPI's own 404, never Flask's.
    assert beside.status_code == 404
    assert beside.json() == {"detail": "Not Found"}
    assert ping.json() == {"pong": True}


# -- gunicorn's own asgi worker -----------------------------------------------------------------


@pytest.mark.server
@pytest.mark.timeout(60)
def test_demo_on_gunicorn_asgi_worker() -> None:
    body = os.urandom(2 * MiB)
    with (
        serve([*GUNICORN, "demo_flask.asgi:app"]) as server,
        httpx.Client(base_url=server.url, timeout=10) as client,
    ):
        hello = client.get("/hello/café")
        echoed = client.post("/echo", content=body)
        go = client.get("/go")
        with client.stream("GET", "/stream") as response:
            lines = list(response.iter_lines())
        refused = websocket_handshake(server)
    assert hello.json() == {"hello": "café", "path": "/hello/café", "script_root": ""}
    assert echoed.content == body
    assert go.headers["location"] == "/hello/redirected"
    assert lines == [f"line {i}" for i in range(10)]
    # gunicorn speaks WebSocket: the adapter closes before accepting, gunicorn answers 403.
    assert refused.startswith(b"HTTP/1.1 403 ")


@pytest.mark.server
@pytest.mark.timeout(60)
def test_gunicorn_asgi_worker_streams_and_closes_on_disconnect(shared_dir: Path) -> None:
    env = {"BRIDGE_TEST_DIR": str(shared_dir), "BRIDGE_TEST_THREADS": "2"}
    with serve([*GUNICORN, "tests.apps_wsgi:app"], env=env) as server:
        assert_gate_streams(server, shared_dir, "gunicorn_gate")
        disconnect_mid_stream(server, shared_dir / "gunicorn_closed")
        response = httpx.get(f"{server.url}/hello/after", timeout=5)
    assert response.json()["hello"] == "after"


# -- the pool's limits, in process --------------------------------------------------------------


class Gate:
    """A WSGI app whose requests all wait for ``release``, counting how many run at once."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self._lock = threading.Lock()
        self.running = 0
        self.peak = 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        with self._lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        try:
            released = self.release.wait(10)
        finally:
            with self._lock:
                self.running -= 1
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"released" if released else b"never released"]


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.002)


class Dispatcher:
    """A tiny ASGI app: ``/ping`` answered on the loop, the rest to the adapter. Counts the
    requests whose first ``receive()`` has returned: the adapter calls it after admitting the
    request and submits the request to its pool in the same step."""

    def __init__(self, adapter: WsgiToAsgi) -> None:
        self.adapter = adapter
        self.received = 0

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["path"] == "/ping":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"pong"})
            return
        first = True

        async def counting_receive() -> MutableMapping[str, Any]:
            nonlocal first
            message: MutableMapping[str, Any] = await receive()
            if first:
                first = False
                self.received += 1
            return message

        await self.adapter(scope, counting_receive, send)


@pytest.mark.timeout(30)
def test_threads_bound_concurrency_and_the_loop_keeps_answering() -> None:
    gate = Gate()
    dispatcher = Dispatcher(WsgiToAsgi(gate, threads=4))

    async def main() -> tuple[list[httpx.Response], float, int]:
        transport = httpx.ASGITransport(app=dispatcher)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://t", timeout=15
        ) as client:
            tasks = [asyncio.create_task(client.get(f"/slow/{i}")) for i in range(16)]
            try:
                await until(lambda: dispatcher.received == 16)  # all 16 handed to the pool
                await until(lambda: gate.running == 4)
                started = time.monotonic()
                pong = await asyncio.wait_for(client.get("/ping"), 2)
                ping_time = time.monotonic() - started
                assert pong.text == "pong"
                await asyncio.sleep(0.1)  # time enough for a fifth thread to enter, were there one
                running = gate.running
            finally:
                gate.release.set()
            return await asyncio.wait_for(asyncio.gather(*tasks), 15), ping_time, running

    responses, ping_time, running = asyncio.run(main())
    print(f"/ping answered in {ping_time * 1000:.1f} ms while 4 threads were busy")
    assert running == 4
    assert ping_time < 0.5
    assert [r.status_code for r in responses] == [200] * 16
    assert {r.text for r in responses} == {"released"}
    assert gate.peak == 4


@pytest.mark.timeout(30)
def test_backlog_full_answers_503_with_retry_after_at_once() -> None:
    gate = Gate()
    adapter = WsgiToAsgi(gate, threads=1, backlog=1)

    async def main() -> None:
        running = Conversation(adapter, http_scope("/a"))
        running.push_body()
        await until(lambda: gate.running == 1)
        waiting = Conversation(adapter, http_scope("/b"))
        waiting.push_body()
        await until(lambda: waiting.receive_calls >= 1)  # admitted, queued for the thread
        try:
            started = time.monotonic()
            refused = Conversation(adapter, http_scope("/c"))
            refused.push_body()
            start = await refused.next(timeout=2)
            elapsed = time.monotonic() - started
            body = await refused.next(timeout=2)
            await refused.finish(timeout=2)
            assert start["status"] == 503
            assert dict(start["headers"]).get(b"retry-after") == b"1"
            assert not body.get("more_body", False)
            assert elapsed < 0.5
            assert gate.running == 1  # /b still waits for the one thread
        finally:
            gate.release.set()
        for conv in (running, waiting):
            start = await conv.next()
            body = await conv.next()
            await conv.finish()
            assert (start["status"], body["body"]) == (200, b"released")
        # The slots are free again.
        again = Conversation(adapter, http_scope("/d"))
        again.push_body()
        assert (await again.next())["status"] == 200

    asyncio.run(main())
