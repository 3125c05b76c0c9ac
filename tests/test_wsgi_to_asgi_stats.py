"""``WsgiToAsgi.stats()``: each counter moves on its own event, and threads busy / requests
waiting describe the pool while it is full."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from bridge import WsgiToAsgi
from bridge._types import Environ
from tests.asgi_harness import Conversation, http_scope, request

WAIT = 5.0


class Gate:
    """``/block`` waits on ``release``; ``/stream`` yields until the client goes; else hello."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, environ: Environ, start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        if environ["PATH_INFO"] == "/block":
            self.entered.set()
            self.release.wait(WAIT)
        elif environ["PATH_INFO"] == "/stream":
            for _ in range(10_000):
                yield b"x" * 1024
        yield b"hello"


@pytest.mark.timeout(20)
def test_every_counter_moves_on_its_own_event() -> None:
    app = Gate()
    adapter = WsgiToAsgi(app, threads=1, backlog=1, max_body_size=4, timeout=2.0)
    assert adapter.stats()["served"] == 0 and adapter.stats()["queue_wait_p99"] == 0.0

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        assert (await request(adapter, "/")).status == 200
        blocked = asyncio.ensure_future(request(adapter, "/block"))
        await loop.run_in_executor(None, app.entered.wait, WAIT)
        waiting = asyncio.ensure_future(request(adapter, "/"))
        for _ in range(500):  # until the adapter has admitted it
            if adapter.stats()["waiting"]:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)  # a floor for its wait, which the percentiles must show
        busy = adapter.stats()
        assert (busy["threads"], busy["busy"], busy["waiting"]) == (1, 1, 1)
        assert (await request(adapter, "/")).status == 503  # threads + backlog are taken
        app.release.set()
        assert (await blocked).status == 200 and (await waiting).status == 200
        assert (await request(adapter, "/", method="POST", body=b"too long")).status == 413
        headers = [(b"content-length", b"+1")]
        assert (await request(adapter, "/", method="POST", headers=headers)).status == 400
        conv = Conversation(adapter, http_scope("/stream"))
        conv.push_body()
        assert (await conv.next())["status"] == 200
        await conv.next()
        conv.push({"type": "http.disconnect"})
        await conv.finish()

    asyncio.run(scenario())
    stats = adapter.stats()
    assert stats == {
        **stats,
        "busy": 0,
        "waiting": 0,
        "served": 3,
        "rejected_503": 1,
        "too_large_413": 1,
        "bad_request_400": 1,
        "timeout_504": 0,
        "disconnects": 1,
    }
    # The request that waited behind /block is the slowest of the four that got a thread.
    assert 0.0 <= stats["queue_wait_p50"] <= stats["queue_wait_p99"]
    assert stats["queue_wait_p99"] >= 0.04


@pytest.mark.timeout(20)
def test_a_timeout_is_counted() -> None:
    release = threading.Event()

    def stuck(environ: Environ, start_response: Any) -> list[bytes]:
        release.wait(WAIT)
        start_response("200 OK", [])
        return [b""]

    adapter = WsgiToAsgi(stuck, timeout=0.05)
    try:
        assert asyncio.run(request(adapter, "/")).status == 504
    finally:
        release.set()
    assert adapter.stats()["timeout_504"] == 1


@pytest.mark.timeout(20)
def test_503_lines_are_rate_limited(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flood of 503s writes one line per interval, the next line counting the rest."""
    monkeypatch.setattr("bridge.wsgi_to_asgi._adapter.LOG_503_EVERY", 0.2)
    app = Gate()
    adapter = WsgiToAsgi(app, threads=1, backlog=0)

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        blocked = asyncio.ensure_future(request(adapter, "/block"))
        await loop.run_in_executor(None, app.entered.wait, WAIT)
        for _ in range(50):
            assert (await request(adapter, "/")).status == 503
        await asyncio.sleep(0.25)
        assert (await request(adapter, "/")).status == 503
        app.release.set()
        await blocked

    asyncio.run(scenario())
    lines = [r.getMessage() for r in caplog.records if "503 for" in r.getMessage()]
    assert lines == [
        "bridge: 503 for GET /: all 1 threads busy and 0 requests waiting (backlog)",
        "bridge: 503 for GET /: all 1 threads busy and 0 requests waiting (backlog);"
        " 49 more 503s since the last such line",
    ]
    assert adapter.stats()["rejected_503"] == 51
