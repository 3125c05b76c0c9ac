"""The per-thread loop's life (issue 6, section 3; SPEC "Per-thread loops own their lifetime").

With a FastAPI app that uses anyio's worker threads (a ``def`` endpoint, a ``FileResponse``):
SIGTERM to gunicorn (gthread and sync, no hook configured) exits in seconds with every lifespan
shutdown run; a plain script exits on its own; the worker threads are reused across requests;
the loop of a thread that ended is closed then, not when the next thread comes; tasks a request
leaves behind run, within ``LEFTOVER_WAIT``, before its thread is released, and an endless one
is cancelled with one warning; ``close()`` from another thread lets a response in flight finish.

Every lifespan run writes ``startup <token>`` and, when its loop shuts it down, ``shutdown
<token>`` (``tests/apps_lifetime.py``), so "each startup has its shutdown" is a list equality.
Every wait is bounded: a hang fails the test at its bound, it never stalls the suite.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import gc
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from bridge import AsgiToWsgi
from bridge.asgi_to_wsgi import _leftovers
from tests.apps_lifetime import (
    FILE,
    GATES,
    STREAM_CHUNKS,
    Sink,
    StartResponse,
    build,
    environ,
    get,
    read_tokens,
)
from tests.servers import ROOT, Server, serve
from tests.test_wsgi_to_asgi_e2e import HOST, wait_until

pytestmark = pytest.mark.server

APP = "tests.apps_lifetime:wsgi_app"
EXIT_BOUND = 5.0  # seconds from SIGTERM (or from a script's last request) to exit
HANDFUL = 4  # anyio worker threads one server thread may use for 200 sequential requests
WORKER_THREAD = "AnyIO worker thread"
# No hook, no config file, gunicorn's default graceful timeout (30 s): what a deploy gets.
WORKERS = {
    "gthread": ["gunicorn", "-k", "gthread", "--threads", "4", "-w", "1"],
    "sync": ["gunicorn", "-k", "sync", "-w", "1"],
}


@pytest.fixture
def sink() -> Sink:
    return Sink()


@pytest.fixture
def adapter(request: pytest.FixtureRequest, sink: Sink) -> Iterator[AsgiToWsgi]:
    mode = getattr(request, "param", "per-thread")
    app = AsgiToWsgi(build(sink), loop=mode)
    try:
        yield app
    finally:
        app.close()


def assert_paired(startups: list[str], shutdowns: list[str]) -> None:
    """Every lifespan that started was shut down, once."""
    assert startups, "no lifespan started"
    assert len(set(startups)) == len(startups)
    assert sorted(shutdowns) == sorted(startups), f"startups {startups}, shutdowns {shutdowns}"


def worker_threads() -> dict[int, threading.Thread]:
    return {t.native_id or 0: t for t in threading.enumerate() if t.name == WORKER_THREAD}


# -- process exit without any hook ---------------------------------------------------------------


def hit(server: Server) -> None:
    """A few ``def`` and ``FileResponse`` requests, four at a time so gthread spreads them."""

    def one(path: str) -> None:
        response = httpx.get(f"{server.url}{path}", timeout=10)
        assert response.status_code == 200, response.text
        if path == "/file":
            assert response.content == FILE.read_bytes()
        else:
            assert response.json()["name"] == WORKER_THREAD

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(one, ["/def", "/file"] * 6))


def stop_all(master: psutil.Process, workers: list[psutil.Process]) -> None:
    """Kill whatever of the master and its workers is still there, by pid; none may stay."""
    for process in [master, *workers]:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    _, alive = psutil.wait_procs([master, *workers], timeout=5)
    assert not alive, f"left running after SIGKILL: {alive}"


@pytest.mark.timeout(40)
@pytest.mark.parametrize("worker", WORKERS)
def test_sigterm_exits_in_seconds_with_every_lifespan_shutdown(worker: str, tmp_path: Path) -> None:
    marker = tmp_path / "lifespan"
    argv = [*WORKERS[worker], "--bind", f"{HOST}:{{port}}", "--no-control-socket", APP]
    with serve(argv, env={"BRIDGE_LIFETIME_MARKER": str(marker)}) as server:
        master = psutil.Process(server.proc.pid)
        assert wait_until(lambda: bool(master.children()), 5), "gunicorn started no worker"
        workers = master.children()
        try:
            hit(server)
            started = time.monotonic()
            master.send_signal(signal.SIGTERM)
            _, alive = psutil.wait_procs(workers, timeout=EXIT_BOUND)
            with contextlib.suppress(subprocess.TimeoutExpired):  # the exit code: Popen reaps it
                server.proc.wait(max(0.1, started + EXIT_BOUND - time.monotonic()))
            took = time.monotonic() - started
            print(f"{worker}: exit {took:.2f} s after SIGTERM; lifespan: {marker.read_text()!r}")
            assert not alive and server.proc.returncode is not None, (
                f"still running {EXIT_BOUND} s after SIGTERM: workers {alive}, master "
                f"{'gone' if server.proc.returncode is not None else 'too'}\n{server.log()[-3000:]}"
            )
            assert server.proc.returncode == 0, server.log()[-3000:]
        finally:
            stop_all(master, workers)
    startups, shutdowns = read_tokens(marker, "startup"), read_tokens(marker, "shutdown")
    assert_paired(startups, shutdowns)
    if worker == "sync":
        assert len(startups) == 1  # one thread, one loop, one lifespan
    else:
        assert len(startups) <= 4  # one per server thread that served


# The last request uses a worker thread: one that ends with an ``async def`` request would run
# the loop once more, and with it the callbacks that stop the previous request's workers.
SCRIPT = """
import time
from tests.apps_lifetime import wsgi_app, get
for path in ["/async", "/def", "/file", "/def", "/file"]:
    status, body = get(wsgi_app, path)
    assert status == "200 OK", (path, status, body)
print(time.time(), flush=True)
"""


@pytest.mark.timeout(30)
def test_a_plain_script_exits_on_its_own_with_the_lifespan_shutdown(tmp_path: Path) -> None:
    marker = tmp_path / "lifespan"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BRIDGE_LIFETIME_MARKER": str(marker)}
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        out, _ = proc.communicate(timeout=7 + EXIT_BOUND)  # the imports take a second or two
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate(timeout=5)
        pytest.fail(f"the script did not exit on its own; lifespan: {marker.read_text()!r}")
    assert proc.returncode == 0, out
    took = time.time() - float(out.split()[-1])
    print(f"script: exit {took:.2f} s after its last request")
    assert took < EXIT_BOUND
    assert_paired(read_tokens(marker, "startup"), read_tokens(marker, "shutdown"))
    assert len(read_tokens(marker, "startup")) == 1


# -- anyio's worker threads -----------------------------------------------------------------------


@pytest.mark.timeout(20)
@pytest.mark.parametrize("adapter", ["per-thread", "shared"], indirect=True)
@pytest.mark.parametrize("server_threads", [1, 4])
def test_def_endpoint_reuses_worker_threads(adapter: AsgiToWsgi, server_threads: int) -> None:
    before = set(worker_threads())

    def one(_: int) -> int:
        status, body = get(adapter, "/def")
        assert status == "200 OK", body
        reply = json.loads(body)
        assert reply["name"] == WORKER_THREAD  # it did run in one of anyio's threads
        return int(reply["native_id"])

    with concurrent.futures.ThreadPoolExecutor(server_threads) as pool:
        seen = set(pool.map(one, range(200)))
    print(f"{server_threads} server thread(s): 200 requests, {len(seen)} worker threads")
    assert len(seen) <= HANDFUL * server_threads, f"{len(seen)} OS threads for 200 requests"
    adapter.close()  # the loops' worker threads stop with them
    assert wait_until(lambda: not (set(worker_threads()) - before), 2), worker_threads()


# -- a loop ends with its thread ------------------------------------------------------------------


def on_a_thread_of_its_own(adapter: AsgiToWsgi, path: str) -> tuple[str, bytes]:
    """``get`` on a server thread that serves this one request and ends."""
    replies: list[tuple[str, bytes]] = []
    thread = threading.Thread(target=lambda: replies.append(get(adapter, path)))
    thread.start()
    thread.join(5)
    assert not thread.is_alive() and len(replies) == 1
    return replies[0]


@pytest.mark.timeout(20)
def test_an_ended_threads_loop_is_closed_when_the_thread_ends(
    adapter: AsgiToWsgi, sink: Sink
) -> None:
    process = psutil.Process()
    gc.collect()  # earlier tests' adapters close their loops now, not during this test
    fds, threads = process.num_fds(), set(worker_threads())
    for ended, path in enumerate(["/def", "/file"], 1):  # both use anyio's worker threads
        assert on_a_thread_of_its_own(adapter, path)[0] == "200 OK"
        assert len(sink.tokens("startup")) == ended  # one loop per server thread

        def closed(ended: int = ended) -> bool:
            gone = not (set(worker_threads()) - threads)
            return gone and len(sink.tokens("shutdown")) == ended and process.num_fds() <= fds

        # No further request or thread, and the adapter stays alive: nothing else closes it.
        assert wait_until(closed, 2), (
            f"after thread {ended} ended: shutdowns {sink.tokens('shutdown')}, fds {fds} -> "
            f"{process.num_fds()}, worker threads {sorted(set(worker_threads()) - threads)}"
        )
    assert_paired(sink.tokens("startup"), sink.tokens("shutdown"))


# -- what a request leaves running ----------------------------------------------------------------


@pytest.mark.timeout(20)
def test_a_requests_leftover_task_runs_before_its_thread_is_released(
    adapter: AsgiToWsgi, sink: Sink
) -> None:
    status, body = get(adapter, "/fire/a")
    assert status == "200 OK", body
    assert "done a" in sink.lines, f"the leftover task did not run: {sink.lines}"


def warnings_on_bridge(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "bridge" and r.levelno == logging.WARNING]


@pytest.mark.timeout(20)
def test_an_endless_leftover_task_is_cancelled_after_the_bound_with_one_warning(
    adapter: AsgiToWsgi,
    sink: Sink,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bound = 0.3
    monkeypatch.setattr(_leftovers, "LEFTOVER_WAIT", bound)
    caplog.set_level(logging.WARNING, logger="bridge")
    for i in range(2):
        started = time.monotonic()
        status, body = get(adapter, "/forever")
        took = time.monotonic() - started
        assert status == "200 OK", body
        assert took < bound + 1.5, f"request {i} held its thread {took:.2f} s (bound {bound} s)"
        cancelled = sink.lines.count("cancelled sleep_for_an_hour")
        assert cancelled == i + 1, f"request {i}: leftover not cancelled at the bound: {sink.lines}"
        records = warnings_on_bridge(caplog)
        assert len(records) == 1, [r.getMessage() for r in records]
    message = records[0].getMessage()
    assert "sleep_for_an_hour" in message
    assert re.search(r"""loop=["']shared["']""", message), message


# -- close() from another thread ------------------------------------------------------------------


@pytest.mark.timeout(20)
def test_close_from_another_thread_lets_the_stream_in_flight_finish(
    adapter: AsgiToWsgi, sink: Sink
) -> None:
    name = "close-mid-stream"
    start_response = StartResponse()
    iterable = adapter(environ(f"/gated/{name}"), start_response)
    chunks = iter(iterable)
    received = [next(chunks)]
    assert start_response.status == ["200 OK"] and received == [b"chunk 0;"]
    errors: list[BaseException] = []

    def close() -> None:
        try:
            adapter.close()
        except BaseException as exc:
            errors.append(exc)

    closer = threading.Thread(target=close)
    closer.start()
    # close() may wait for the response, or return and leave the loop to shut down after it:
    # give it its chance to do the wrong thing (cancel the app) before the stream goes on.
    closer.join(1)
    GATES[name].set()
    try:
        for chunk in chunks:
            assert sink.tokens("shutdown") == [], "the loop shut down under a live response"
            received.append(chunk)
    finally:
        iterable.close()  # type: ignore[attr-defined]
    assert b"".join(received) == b"".join(b"chunk %d;" % i for i in range(STREAM_CHUNKS))
    closer.join(5)
    assert not closer.is_alive() and errors == []
    assert wait_until(lambda: len(sink.tokens("shutdown")) == 1, 2), sink.lines
    assert_paired(sink.tokens("startup"), sink.tokens("shutdown"))
