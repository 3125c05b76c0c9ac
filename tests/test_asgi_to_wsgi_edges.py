"""AsgiToWsgi at its edges: who reads ``wsgi.input`` on a shared loop, calls made from a thread
whose event loop is already running, the timeout until the first body chunk, and one log
record per lifespan failure. Hand-written ASGI apps driven through the WSGI call by hand."""

from __future__ import annotations

import asyncio
import gc
import io
import logging
import os
import signal
import threading
import time
from typing import Any

import psutil
import pytest

from bridge import ASGIMiddleware, AsgiToWsgi
from tests.test_asgi_to_wsgi import MODES, Scope, Started, call, environ, hello, lifespan_app

pytestmark = pytest.mark.timeout(30)


class RecordingInput(io.RawIOBase):
    """A request body of ``pieces``; records the thread of each read, or fails at ``fail_at``."""

    def __init__(self, pieces: list[bytes], fail_at: int | None = None) -> None:
        self.pieces = list(pieces)
        self.fail_at = fail_at
        self.threads: list[str] = []

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        self.threads.append(threading.current_thread().name)
        if self.fail_at is not None and len(self.threads) > self.fail_at:
            raise OSError("the upload was cut")
        return self.pieces.pop(0) if self.pieces else b""


def body_env(stream: io.RawIOBase, length: int) -> dict[str, Any]:
    env = environ("POST", CONTENT_LENGTH=str(length))
    env["wsgi.input"] = stream
    return env


async def echo_all(scope: Scope, receive: Any, send: Any) -> None:
    """Read the whole body, then answer with it."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


# -- loop="shared": the request's own thread reads its body ----------------------------------------


def test_shared_loop_reads_the_body_in_the_server_thread() -> None:
    """A shared loop must never block on a read, and a pool of readers would let stalled uploads
    hold up everyone: the WSGI thread that serves the request reads for it."""
    stream = RecordingInput([b"aaaa", b"bbbb", b"cc"])
    adapter = AsgiToWsgi(echo_all, loop="shared", lifespan="off", chunk_size=4)
    server_thread = threading.Thread(
        target=lambda: results.append(call(adapter, body_env(stream, 10))[1]), name="wsgi-server"
    )
    results: list[list[bytes]] = []
    server_thread.start()
    server_thread.join(10)
    assert results == [[b"aaaabbbbcc"]]
    assert stream.threads == ["wsgi-server"] * 3
    adapter.close()


def test_shared_loop_read_error_reaches_the_app() -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        assert (await receive())["body"] == b"aaaa"
        try:
            await receive()
        except OSError as exc:
            seen.append(str(exc))
        await hello(scope, receive, send)

    adapter = AsgiToWsgi(app, loop="shared", lifespan="off", chunk_size=4)
    stream = RecordingInput([b"aaaa", b"bbbb"], fail_at=1)
    assert call(adapter, body_env(stream, 8))[1] == [b"hello"]
    assert seen == ["the upload was cut"]
    adapter.close()


@pytest.mark.parametrize("mode", MODES)
def test_concurrent_receive_calls_get_each_chunk_once(mode: str) -> None:
    got: list[bytes] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        while True:
            messages = await asyncio.gather(receive(), receive())
            got.extend(m.get("body", b"") for m in messages if m["type"] == "http.request")
            if any(not m.get("more_body") for m in messages):
                break
        await hello(scope, receive, send)

    adapter = AsgiToWsgi(app, loop=mode, lifespan="off", chunk_size=2)
    stream = RecordingInput([b"ab", b"cd", b"ef", b"gh"])
    assert call(adapter, body_env(stream, 8))[1] == [b"hello"]
    assert b"".join(got) == b"abcdefgh"
    adapter.close()


def test_shared_loop_close_while_the_app_waits_for_body_is_a_disconnect() -> None:
    """The server closes the response while the app waits for a body chunk nobody has read: the
    app gets ``http.disconnect`` (the read is never made) and its task ends."""
    outcome: list[str] = []
    ended = threading.Event()

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        try:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"early", "more_body": True})
            outcome.append((await receive())["type"])
        finally:
            ended.set()

    stream = RecordingInput([b"never read"])
    adapter = AsgiToWsgi(app, loop="shared", lifespan="off")
    iterable = adapter(body_env(stream, 10), Started())
    assert next(iter(iterable)) == b"early"
    iterable.close()
    assert ended.wait(5)
    assert outcome == ["http.disconnect"] and stream.threads == []
    adapter.close()


# -- a caller whose thread already runs an event loop ------------------------------------------------


def test_a_call_from_a_running_loop_is_served_by_the_shared_loop() -> None:
    """A WSGI call from async code (a test client in an async test) cannot run a second loop in
    the same thread: per-thread mode serves it on the shared loop instead of failing."""
    events: list[str] = []
    adapter = AsgiToWsgi(lifespan_app(events))

    async def caller() -> list[bytes]:
        return call(adapter)[1]

    body = asyncio.run(caller())
    assert body == [b"bridge-asgi-loop"]  # the lifespan ran on the shared loop's thread
    assert call(adapter)[1] == [threading.current_thread().name.encode()]  # back on our own
    adapter.close()
    assert events.count("lifespan.startup") == events.count("lifespan.shutdown") == 2


def test_an_app_calling_a_wrapped_app_synchronously() -> None:
    """Per-thread: the inner call finds the thread's loop running and goes to the shared loop.
    Shared: the inner call would wait for its own loop, so it is refused with a clear error."""

    inner = AsgiToWsgi(hello, lifespan="off")

    async def outer(scope: Scope, receive: Any, send: Any) -> None:
        body = b"".join(call(inner)[1])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"outer+" + body})

    assert call(AsgiToWsgi(outer, lifespan="off"))[1] == [b"outer+hello"]
    inner.close()

    async def reentrant(scope: Scope, receive: Any, send: Any) -> None:
        call(shared)  # from a task on shared's own loop

    shared = AsgiToWsgi(reentrant, loop="shared", lifespan="off")
    with pytest.raises(RuntimeError, match="wait for itself"):
        call(shared)
    shared.close()


# -- the timeout runs until the first body chunk -----------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_a_start_without_a_body_within_the_timeout_is_504(mode: str) -> None:
    """PEP 3333 sends the headers with the first body chunk: until then the client has nothing,
    so a start message alone does not stop the clock."""
    cancelled = threading.Event()

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    started, body = call(AsgiToWsgi(app, loop=mode, lifespan="off", timeout=0.2))
    assert started.calls[0][0] == "504 Gateway Timeout" and body == [b"Gateway Timeout"]
    assert cancelled.is_set()


@pytest.mark.parametrize("mode", MODES)
def test_the_timeout_never_cuts_a_response_under_way(mode: str) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"one", "more_body": True})
        await asyncio.sleep(1.5)
        await send({"type": "http.response.body", "body": b"two"})

    # 1 s: the first chunk must be out well within it even on a loaded machine; the second
    # comes after it has passed.
    started, body = call(AsgiToWsgi(app, loop=mode, lifespan="off", timeout=1.0))
    assert started.calls[0][0] == "200 OK" and b"".join(body) == b"onetwo"


# -- lifespan failures: one log record each --------------------------------------------------------


@pytest.mark.parametrize("mode", ["on", "auto"])
def test_a_failed_startup_is_one_log_record_with_its_traceback(
    mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()
            if mode == "auto":  # after an answer, raising is a failure even in auto mode
                await send({"type": "lifespan.startup.failed", "message": "db unreachable"})
                return
            raise ConnectionError("db unreachable")
        await hello(scope, receive, send)

    caplog.set_level(logging.DEBUG, logger="bridge")
    adapter = AsgiToWsgi(app, lifespan=mode)
    for _ in range(3):
        assert call(adapter)[0].calls[0][0] == "500 Internal Server Error"
    records = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(records) == 1 and "db unreachable" in records[0].getMessage()
    assert (records[0].exc_info is not None) == (mode == "on")
    adapter.close()


# -- a forked child that never serves ----------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
@pytest.mark.parametrize("mode", MODES)
def test_a_forked_child_that_never_served_exits_without_the_parents_shutdown(mode: str) -> None:
    """gunicorn --preload with a warm-up request in the master: a worker that exits before its
    first request still runs ``close()`` at exit. It must neither repeat the parent's lifespan
    shutdown nor wait for the parent's shared loop thread, which the child does not have."""
    events: list[str] = []
    adapter = AsgiToWsgi(lifespan_app(events), loop=mode)
    call(adapter)  # the parent's loop (and, in shared mode, its thread) exist before the fork
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit code
        code = 1
        try:
            adapter.close()
            code = 3 if "lifespan.shutdown" in events else 0
        finally:
            os._exit(code)
    deadline = time.monotonic() + 5
    while (ended := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    if ended[0] == 0:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail("the child's close() hung on the parent's shared loop")
    assert os.waitstatus_to_exitcode(ended[1]) == 0, "the child ran the parent's lifespan shutdown"
    adapter.close()
    assert events == ["lifespan.startup", "lifespan.shutdown"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
def test_the_shared_loop_runs_again_as_soon_as_a_fork_returns_in_the_parent() -> None:
    """The shared loop is paused around a fork. The parent must get it back running before
    ``fork()`` returns: a ``close()`` straight after found it stopped and skipped the lifespan
    shutdown (seen once in a full run; each fork here is a chance for that race)."""
    events: list[str] = []
    adapter = AsgiToWsgi(lifespan_app(events), loop="shared")
    call(adapter)
    shared = adapter._loops._shared
    assert shared is not None
    for _ in range(20):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child only exits
            os._exit(0)
        running = shared.loop.is_running()
        os.waitpid(pid, 0)
        assert running, "fork() returned in the parent before the shared loop ran again"
    adapter.close()
    assert events == ["lifespan.startup", "lifespan.shutdown"]


# -- an adapter that is dropped ----------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_a_dropped_adapter_shuts_its_loops_down_and_frees_their_fds(mode: str) -> None:
    """Built per mount or per test and then dropped: nothing (atexit) keeps it, its loops and
    their file descriptors alive until the interpreter exits."""
    process = psutil.Process()
    events: list[str] = []
    call(AsgiToWsgi(lifespan_app([]), loop=mode))  # warm up: imports, the first loop's leftovers
    gc.collect()
    fds, threads = process.num_fds(), threading.active_count()
    for _ in range(20):
        adapter = AsgiToWsgi(lifespan_app(events), loop=mode)
        call(adapter)
        del adapter
    gc.collect()
    assert events.count("lifespan.shutdown") == events.count("lifespan.startup") == 20
    assert process.num_fds() == fds and threading.active_count() == threads


def test_an_adapter_dropped_in_async_code_is_closed_by_a_helper_thread() -> None:
    events: list[str] = []

    async def caller() -> None:
        adapter = AsgiToWsgi(lifespan_app(events))
        call(adapter)  # this thread runs a loop: served by the shared one
        del adapter  # collected here, where no other loop can run

    asyncio.run(caller())
    for thread in threading.enumerate():
        if thread.name == "bridge-close":
            thread.join(10)
    assert events == ["lifespan.startup", "lifespan.shutdown"]


def test_a_response_keeps_its_adapter_alive() -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for piece in (b"one", b"two", b"three"):
            await send({"type": "http.response.body", "body": piece, "more_body": True})
            await asyncio.sleep(0.01)
        await send({"type": "http.response.body", "body": b""})

    iterable = AsgiToWsgi(app, lifespan="off")(environ(), Started())  # no other reference
    gc.collect()
    try:
        assert b"".join(iterable) == b"onetwothree"
    finally:
        iterable.close()  # type: ignore[attr-defined]


# -- a loop of the caller's (a2wsgi's ASGIMiddleware(app, loop=...)) ---------------------------------


def test_requests_run_on_a_loop_the_caller_gives_and_runs() -> None:
    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_forever, name="callers-loop", daemon=True)
    runner.start()
    try:
        events: list[str] = []
        seen: list[asyncio.AbstractEventLoop] = []
        app = lifespan_app(events)

        async def recording(scope: Scope, receive: Any, send: Any) -> None:
            seen.append(asyncio.get_running_loop())
            await app(scope, receive, send)

        adapter = ASGIMiddleware(recording, loop=loop)
        assert b"".join(call(adapter)[1]) == b"callers-loop"  # the lifespan ran on it too
        assert seen and all(s is loop for s in seen)
        adapter.close()
        assert events == ["lifespan.startup", "lifespan.shutdown"]
        assert loop.is_running() and not loop.is_closed()  # the caller's, not ours to stop
    finally:
        loop.call_soon_threadsafe(loop.stop)
        runner.join(5)
        loop.close()


def test_a_given_loop_that_is_not_running_is_a_clear_error() -> None:
    loop = asyncio.new_event_loop()
    try:
        with pytest.raises(RuntimeError, match="must be running"):
            call(AsgiToWsgi(hello, loop=loop, lifespan="off"))
    finally:
        loop.close()
    with pytest.raises(ValueError, match="lifespan must be one of"):
        AsgiToWsgi(hello, lifespan=loop)  # type: ignore[arg-type]
