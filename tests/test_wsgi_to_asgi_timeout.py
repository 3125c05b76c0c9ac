"""``WsgiToAsgi(timeout=...)``: a response not started in time gets 504 with one log line that
shows where the thread is stuck; the thread keeps its pool slot until the app returns, and then
the adapter serves as before. A response that started in time is never cut by the timeout."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from bridge import WsgiToAsgi
from bridge._types import Environ
from tests.asgi_harness import request

WAIT = 5.0


def hello(environ: Environ, start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


class Stuck:
    """A WSGI app whose ``/stuck`` waits on ``release`` (like a slow query) before answering."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.outcome: list[str] = []

    def __call__(self, environ: Environ, start_response: Any) -> Iterator[bytes]:
        if environ["PATH_INFO"] != "/stuck":
            yield from hello(environ, start_response)
            return
        self.entered.set()
        wait_in_a_slow_query(self.release)
        start_response("200 OK", [])
        try:
            yield b"too late"
            self.outcome.append("sent")
        except BaseException as exc:
            self.outcome.append(type(exc).__name__)
            raise


def wait_in_a_slow_query(release: threading.Event) -> None:
    release.wait(WAIT)


@pytest.mark.timeout(20)
def test_a_stuck_call_gets_504_with_its_stack_and_keeps_its_slot_until_it_returns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = Stuck()
    adapter = WsgiToAsgi(app, threads=1, backlog=0, timeout=0.2)

    async def scenario() -> None:
        stuck = await request(adapter, "/stuck")
        assert (stuck.status, stuck.body) == (504, b"Gateway Timeout")
        # The one thread is still in the app: the next request finds no room (threads=1,
        # backlog=0) and gets 503, not a thread the pool does not have.
        assert (await request(adapter, "/")).status == 503
        app.release.set()
        for _ in range(200):  # the thread returns: its first chunk is refused
            if app.outcome:
                break
            await asyncio.sleep(0.01)
        assert app.outcome == ["GeneratorExit"]  # its chunk was refused and close() ran
        assert (await request(adapter, "/")).body == b"hello"

    asyncio.run(scenario())
    [line] = [r.getMessage() for r in caplog.records if "504" in r.getMessage()]
    assert line.startswith("bridge: 504 for GET /stuck: no response within timeout=0.2s; its")
    assert "holds a pool slot until it returns" in line
    assert "wait_in_a_slow_query" in line  # the stack shows where the thread is stuck


@pytest.mark.timeout(20)
def test_a_request_still_waiting_for_a_thread_times_out_without_ever_running(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = Stuck()
    adapter = WsgiToAsgi(app, threads=1, timeout=0.3)
    ran: list[str] = []

    def second(environ: Environ, start_response: Any) -> list[bytes]:
        ran.append("second")
        return hello(environ, start_response)

    async def scenario() -> None:
        first = asyncio.ensure_future(request(adapter, "/stuck"))
        await asyncio.get_running_loop().run_in_executor(None, app.entered.wait, WAIT)
        adapter.wsgi_app = second  # what the waiting request would run, if it ever ran
        waiting = await request(adapter, "/")
        assert waiting.status == 504
        app.release.set()
        assert (await first).status == 504
        assert ran == []

    asyncio.run(scenario())
    assert any("it was still waiting for a thread" in r.getMessage() for r in caplog.records)


@pytest.mark.timeout(20)
def test_a_response_that_started_in_time_is_not_cut_by_the_timeout() -> None:
    release = threading.Event()

    def slow_stream(environ: Environ, start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield b"first;"
        release.wait(WAIT)
        yield b"second"

    adapter = WsgiToAsgi(slow_stream, timeout=1.0)  # the first chunk is out well within it

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        loop.call_later(1.5, release.set)  # past the timeout
        result = await request(adapter, "/")
        assert (result.status, result.body) == (200, b"first;second")

    asyncio.run(scenario())
