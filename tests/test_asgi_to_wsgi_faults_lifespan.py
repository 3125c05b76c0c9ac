"""AsgiToWsgi lifespan faults: a wrong message on the lifespan scope, a lifespan that ends in a
``BaseException``, a startup that never answers, a shutdown that raises. Each must end within a
bound with the outcome SPEC names (requests served, or 500 with one log line), in both loop
modes, and the next request must be served."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

import pytest

from bridge import ASGIProtocolError, AsgiToWsgi
from bridge.asgi_to_wsgi import _lifespan
from tests.test_asgi_to_wsgi import MODES, Scope, call, environ, hello

pytestmark = pytest.mark.timeout(15)
SERVER_ERROR = "500 Internal Server Error"
TICK = b"tick" * 256


def warnings_and_up(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.WARNING and r.name == "bridge"]


# -- an app that does not look at scope["type"] --------------------------------------------------


def streaming_app(seen: list[tuple[str, str]]) -> Any:
    """Streams until the client is gone and records how each call ended; never checks the scope
    type, so a lifespan scope is served as if it were a request. Bounded, so a wrong adapter
    makes the test fail rather than eat memory."""

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        try:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            for _ in range(20_000):  # 20 MB: more than the response buffer holds
                await send({"type": "http.response.body", "body": TICK, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        except (ASGIProtocolError, OSError) as exc:
            seen.append((scope["type"], type(exc).__name__))
            raise
        seen.append((scope["type"], "streamed 20000 chunks"))

    return app


def read_three_chunks(adapter: AsgiToWsgi) -> tuple[str, bytes]:
    started = Started()
    iterable = adapter(environ(), started)
    try:
        chunks = iter(iterable)
        return started.status, b"".join(next(chunks) for _ in range(3))
    finally:
        iterable.close()  # type: ignore[attr-defined]


class Started:
    status = ""

    def __call__(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        self.status = status
        return lambda data: None


@pytest.mark.parametrize("mode", MODES)
def test_a_response_message_on_the_lifespan_scope_is_refused_at_once(mode: str) -> None:
    """auto: the first ``send()`` on the lifespan scope raises, the lifespan is unsupported and
    requests are served; the stream never runs on the lifespan scope."""
    seen: list[tuple[str, str]] = []
    adapter = AsgiToWsgi(streaming_app(seen), loop=mode, lifespan="auto")
    for _ in range(2):
        status, body = read_three_chunks(adapter)
        assert status == "200 OK" and body.startswith(b"tick")
    adapter.close()
    assert seen[0] == ("lifespan", "ASGIProtocolError")
    assert [s for s in seen if s[0] == "lifespan"] == [("lifespan", "ASGIProtocolError")]


@pytest.mark.parametrize("mode", MODES)
def test_a_response_message_on_the_lifespan_scope_with_lifespan_on_is_a_startup_failure(
    mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[tuple[str, str]] = []
    adapter = AsgiToWsgi(streaming_app(seen), loop=mode, lifespan="on")
    for _ in range(3):
        assert call(adapter)[0].calls[0][0] == SERVER_ERROR
    adapter.close()
    assert seen == [("lifespan", "ASGIProtocolError")]
    records = warnings_and_up(caplog)
    assert len(records) == 1
    assert "'http.response.start'" in records[0].getMessage()
    assert "lifespan" in records[0].getMessage()


@pytest.mark.parametrize("mode", MODES)
def test_background_work_does_not_run_on_the_lifespan_scope(mode: str) -> None:
    """An app that starts a task on every call (after its response, as a background task does):
    the lifespan call must not count as a request."""
    background: list[str] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})

        async def later() -> None:
            background.append(scope["type"])

        await asyncio.create_task(later())

    adapter = AsgiToWsgi(app, loop=mode)
    assert call(adapter)[1] == [b"done"]
    adapter.close()
    assert background == ["http"]


@pytest.mark.parametrize("mode", MODES)
def test_an_app_that_catches_the_refusal_and_retries_does_not_freeze_the_loop(mode: str) -> None:
    """An app that swallows the error and sends again, forever: the refusal yields to the loop,
    so the adapter can end that lifespan task and go on serving."""
    calls = 0

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        nonlocal calls
        if scope["type"] == "http":
            await hello(scope, receive, send)
            return
        while True:
            calls += 1
            try:
                await send({"type": "http.response.start", "status": 200, "headers": []})
            except ASGIProtocolError:
                continue

    adapter = AsgiToWsgi(app, loop=mode)
    assert call(adapter)[1] == [b"hello"]
    adapter.close()
    assert 1 <= calls < 100


def test_a_wrong_lifespan_message_in_order_names_what_was_expected(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()
            await send({"type": "lifespan.shutdown.complete"})  # not now: startup is asked
            return
        await hello(scope, receive, send)

    adapter = AsgiToWsgi(app, lifespan="on")
    assert call(adapter)[0].calls[0][0] == SERVER_ERROR
    adapter.close()
    (record,) = warnings_and_up(caplog)
    assert "'lifespan.shutdown.complete'" in record.getMessage()
    assert "lifespan.startup.complete" in record.getMessage()


# -- a lifespan that ends in a BaseException ------------------------------------------------------


def ending_in(error: BaseException, when: str = "startup") -> Any:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await hello(scope, receive, send)
            return
        await receive()
        if when == "startup":
            raise error
        await send({"type": "lifespan.startup.complete"})
        await receive()
        raise error

    return app


class Halt(BaseException):
    """A BaseException of the app's own (neither Exception nor a cancellation)."""


BASE_EXCEPTIONS = [asyncio.CancelledError, Halt]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("error", BASE_EXCEPTIONS)
def test_a_startup_ending_in_a_base_exception_with_auto_is_unsupported(
    mode: str, error: type[BaseException]
) -> None:
    adapter = AsgiToWsgi(ending_in(error()), loop=mode, lifespan="auto")
    assert call(adapter)[1] == [b"hello"]
    assert call(adapter)[1] == [b"hello"]
    adapter.close()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("error", [*BASE_EXCEPTIONS, KeyboardInterrupt, SystemExit])
def test_a_startup_ending_in_a_base_exception_with_on_is_a_failure(
    mode: str, error: type[BaseException], caplog: pytest.LogCaptureFixture
) -> None:
    adapter = AsgiToWsgi(ending_in(error()), loop=mode, lifespan="on")
    for _ in range(2):
        assert call(adapter)[0].calls[0][0] == SERVER_ERROR
    adapter.close()
    (record,) = warnings_and_up(caplog)
    assert "startup failed" in record.getMessage() and record.exc_info is not None


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("error", [KeyboardInterrupt, SystemExit])
def test_an_interrupt_in_startup_is_a_failure_even_with_auto(
    mode: str, error: type[BaseException], caplog: pytest.LogCaptureFixture
) -> None:
    """``sys.exit()`` or an interrupt raised by the app's startup is never a way of saying "no
    lifespan here": the requests answer 500 rather than run without the app's startup. It is
    not re-raised: the loop's thread (the shared loop's, or a server thread mid-request) is not
    the place to stop a process, and uvicorn does the same."""
    adapter = AsgiToWsgi(ending_in(error()), loop=mode, lifespan="auto")
    assert call(adapter)[0].calls[0][0] == SERVER_ERROR
    adapter.close()
    assert len(warnings_and_up(caplog)) == 1


@pytest.mark.parametrize("mode", MODES)
def test_a_startup_ending_in_a_cancellation_does_not_hold_up_other_threads(mode: str) -> None:
    """Shared mode starts the lifespan under a lock every server thread takes: a hang there
    would hold them all."""
    adapter = AsgiToWsgi(ending_in(asyncio.CancelledError()), loop=mode, lifespan="on")
    statuses: list[str] = []
    threads = [
        threading.Thread(target=lambda: statuses.append(call(adapter)[0].calls[0][0]))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert statuses == [SERVER_ERROR] * 4
    adapter.close()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("error", [asyncio.CancelledError, Halt, RuntimeError])
def test_a_shutdown_ending_in_any_exception_is_logged_at_once(
    mode: str, error: type[BaseException], caplog: pytest.LogCaptureFixture
) -> None:
    adapter = AsgiToWsgi(ending_in(error("pool would not close"), when="shutdown"), loop=mode)
    assert call(adapter)[1] == [b"hello"]
    began = time.monotonic()
    adapter.close()
    assert time.monotonic() - began < 5  # not the 10 s grace of a shutdown that never answers
    (record,) = warnings_and_up(caplog)
    assert "shutdown failed" in record.getMessage() and record.exc_info is not None


# -- a startup that never answers ----------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("lifespan", ["auto", "on"])
def test_a_startup_that_never_answers_is_a_failure_after_the_bound(
    mode: str, lifespan: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    cancelled = threading.Event()

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()
            try:
                await asyncio.sleep(60)  # a database that never answers
            except asyncio.CancelledError:
                cancelled.set()
                raise
        await hello(scope, receive, send)

    monkeypatch.setattr(_lifespan, "STARTUP_TIMEOUT", 0.2)
    adapter = AsgiToWsgi(app, loop=mode, lifespan=lifespan)
    assert call(adapter)[0].calls[0][0] == SERVER_ERROR
    assert call(adapter)[0].calls[0][0] == SERVER_ERROR
    adapter.close()
    assert cancelled.is_set()  # nothing left pending on the loop
    (record,) = warnings_and_up(caplog)
    assert "did not answer lifespan.startup within 0.2" in record.getMessage()
