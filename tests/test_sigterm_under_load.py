"""SIGTERM under load (issue 8, "Soak and shutdown"): uvicorn serving Flask through
``WsgiToAsgi``, and gunicorn gthread serving FastAPI (``async def`` and ``def`` endpoints)
through ``AsgiToWsgi``, both from ``bench.soak_apps``.

Requests are held in flight by a hand-off: each ``/gated/<name>`` request marks that it has
entered the app (and sent its first chunk), then waits for a gate file the test creates only
once the server has logged that it handles the SIGTERM (uvicorn: that it waits for the open
connections); meanwhile other clients keep sending
plain requests on fresh connections. Then: every held request gets its complete response, every
plain request either gets a complete response or no byte at all (refused or reset: the server
was no longer taking it), the server exits in bounded time, each lifespan that started has shut
down exactly once, and the server's log, run with ``PYTHONASYNCIODEBUG=1`` and
``PYTHONWARNINGS=error``, shows no leaked task or loop, no unclosed resource, no coroutine never
awaited and no traceback. Every wait is bounded: a hang fails at its bound.
"""

from __future__ import annotations

import concurrent.futures
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil
import pytest

from bench.soak_apps import GATED_CHUNKS, HELLO, gated_chunk
from tests.apps_lifetime import read_tokens
from tests.servers import Server, serve
from tests.test_asgi_to_wsgi_lifetime import assert_paired, stop_all
from tests.test_wsgi_to_asgi_e2e import HOST, wait_until

pytestmark = pytest.mark.server

EXIT_BOUND = 10.0  # seconds from the gates opening to the server's exit
FORBIDDEN = (
    "Task was destroyed but it is pending",
    "Event loop is closed",
    "unclosed",
    "ResourceWarning",
    "never awaited",
    "Traceback",
)
ENV = {"PYTHONWARNINGS": "error"}
UVICORN = [
    "uvicorn",
    f"--host={HOST}",
    "--port={port}",
    "--interface=asgi3",
    "--lifespan=on",
    "--no-access-log",
    "--log-level=info",
    "bench.soak_apps:flask_soak",
]
GTHREAD = [
    "gunicorn",
    f"--bind={HOST}:{{port}}",
    "--workers=1",
    "--worker-class=gthread",
    "--threads=8",
    "--no-control-socket",
    "--graceful-timeout=10",
    "--log-level=info",
    "bench.soak_apps:fastapi_soak",
]
WHOLE = b"".join(gated_chunk(i) for i in range(GATED_CHUNKS))


def plain_get(port: int) -> tuple[str, bytes]:
    """One ``GET /`` on a fresh connection: ("complete", body), or ("none", b"") when the
    server took no part in it (refused, reset or closed before a byte), or ("partial", bytes)."""
    got = b""
    try:
        with socket.create_connection((HOST, port), timeout=15) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            while data := sock.recv(65536):
                got += data
    except OSError:
        if not got:
            return "none", b""
        return "partial", got
    if not got:
        return "none", b""
    head, _, body = got.partition(b"\r\n\r\n")
    complete = head.startswith(b"HTTP/1.1 200") and body == HELLO
    return ("complete" if complete else "partial"), got


class Background:
    """``clients`` threads sending plain requests one after another until stopped."""

    def __init__(self, port: int, clients: int = 3) -> None:
        self.outcomes: list[tuple[str, bytes]] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(port,)) for _ in range(clients)]
        for thread in self._threads:
            thread.start()

    def _run(self, port: int) -> None:
        while not self._stop.is_set():
            self.outcomes.append(plain_get(port))

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)


def get_whole(url: str) -> bytes:
    response = httpx.get(url, timeout=30)  # an incomplete chunked body raises
    assert response.status_code == 200, response.text
    return response.content


def run_under_load(
    server: Server,
    directory: Path,
    paths: dict[str, str],
    log_says_term: Callable[[], bool],
    processes: list[psutil.Process],
) -> None:
    """Hold ``paths`` (gate name -> path) in flight, SIGTERM the server, open the gates; check
    the held responses, the plain ones, and a bounded exit."""
    for _ in range(20):  # warm: every server thread's loop (AsgiToWsgi) starts its lifespan
        assert get_whole(f"{server.url}/") == HELLO
    background = Background(server.port)
    try:
        with concurrent.futures.ThreadPoolExecutor(len(paths)) as pool:
            held = {name: pool.submit(get_whole, server.url + path) for name, path in paths.items()}
            entered = [directory / f"entered-{name}" for name in paths]
            assert wait_until(lambda: all(p.exists() for p in entered), 15), (
                f"not all requests entered the app: {[p.name for p in entered if p.exists()]}"
            )
            server.proc.send_signal(signal.SIGTERM)
            assert wait_until(log_says_term, 10), f"no sign of the SIGTERM:\n{server.log()}"
            assert not any(future.done() for future in held.values()), "a held request ended"
            for name in paths:
                (directory / f"open-{name}").touch()
            opened = time.monotonic()
            for name, future in held.items():
                assert future.result(timeout=EXIT_BOUND) == WHOLE, name
        _, alive = psutil.wait_procs(processes, timeout=EXIT_BOUND)
        with_master = server.proc.wait(max(0.1, opened + EXIT_BOUND - time.monotonic()))
        took = time.monotonic() - opened
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running {EXIT_BOUND} s after the gates opened:\n{server.log()}")
    finally:
        background.stop()
    kinds = [kind for kind, _ in background.outcomes]
    print(
        f"exit {took:.2f} s after the gates opened, code {with_master}; plain requests: "
        f"{kinds.count('complete')} complete, {kinds.count('none')} not taken"
    )
    assert not alive, f"still running: {alive}"
    partial = [got for kind, got in background.outcomes if kind == "partial"]
    assert not partial, f"{len(partial)} cut responses, first: {partial[0]!r:.300}"
    assert kinds.count("complete") > 0


def assert_clean_log(log: str) -> None:
    found = [word for word in FORBIDDEN if word in log]
    assert not found, f"{found} in the server's log:\n{log[-6000:]}"


@pytest.mark.timeout(60)
def test_uvicorn_sigterm_under_load_finishes_in_flight_requests(tmp_path: Path) -> None:
    env = {**ENV, "BRIDGE_SOAK_DIR": str(tmp_path)}
    with serve(UVICORN, env=env, asyncio_debug=True, timeout=30) as server:
        paths = {f"w{i}": f"/gated/w{i}" for i in range(6)}  # of the pool's 10 threads
        run_under_load(
            server,
            tmp_path,
            paths,
            lambda: "Waiting for connections to close" in server.log(),  # held: they're open
            [psutil.Process(server.proc.pid)],
        )
        assert server.proc.returncode in (0, -signal.SIGTERM), server.log()
        log = server.log()
    print(log)
    startups = read_tokens(tmp_path / "lifespan", "startup")
    assert_paired(startups, read_tokens(tmp_path / "lifespan", "shutdown"))
    assert len(startups) == 1
    assert read_tokens(tmp_path / "lifespan", "pool") == ["0"]  # every pool thread ended
    assert "Application shutdown complete" in log
    assert_clean_log(log)


@pytest.mark.timeout(60)
def test_gunicorn_gthread_sigterm_under_load_finishes_in_flight_requests(tmp_path: Path) -> None:
    env = {**ENV, "BRIDGE_SOAK_DIR": str(tmp_path)}
    with serve(GTHREAD, env=env, asyncio_debug=True, timeout=30) as server:
        master = psutil.Process(server.proc.pid)
        assert wait_until(lambda: bool(master.children()), 10), "gunicorn started no worker"
        workers = master.children()
        paths = {f"a{i}": f"/gated/a{i}" for i in range(3)}  # async def, streamed
        paths |= {f"d{i}": f"/gated_def/d{i}" for i in range(3)}  # def, in anyio's threads
        try:
            run_under_load(
                server,
                tmp_path,
                paths,
                lambda: "Handling signal: term" in server.log(),
                workers,
            )
            assert server.proc.returncode == 0, server.log()
        finally:
            stop_all(master, workers)
        log = server.log()
    print(log)
    startups = read_tokens(tmp_path / "lifespan", "startup")
    assert_paired(startups, read_tokens(tmp_path / "lifespan", "shutdown"))
    assert 1 <= len(startups) <= 8  # one per server thread that served (per-thread loops)
    assert_clean_log(log)
