"""``WsgiToAsgi(hold_body=...)``: the start of a request body is received on the event loop
before a thread is taken, so slow uploads wait there instead of on pool threads; the rest of a
longer body streams; a client that leaves, or a body over the limit, never reaches the app."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from typing import Any

import pytest

from bridge import WsgiToAsgi
from bridge._types import Environ
from tests.asgi_harness import Conversation, http_scope, request

KiB = 1024
pytestmark = pytest.mark.timeout(20)


class Echo:
    """Answers the body's length and digest; records whether it ran, and on which thread."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, environ: Environ, start_response: Any) -> list[bytes]:
        self.calls.append(threading.current_thread().name)
        body = environ["wsgi.input"].read()
        start_response("200 OK", [])
        return [b"%d %s" % (len(body), hashlib.sha256(body).hexdigest().encode())]


async def _until_asked(conv: Conversation, calls: int) -> None:
    """Until the adapter has asked ``receive()`` for message number ``calls``."""
    for _ in range(1000):
        if conv.receive_calls >= calls:
            return
        await asyncio.sleep(0.001)
    raise AssertionError(f"receive() was called {conv.receive_calls} times, not {calls}")


def test_a_body_under_the_hold_is_whole_before_a_thread_is_taken() -> None:
    app = Echo()
    adapter = WsgiToAsgi(app, hold_body=64 * KiB)

    async def scenario() -> None:
        conv = Conversation(adapter, http_scope(method="POST"))
        conv.push_body(b"a" * 1000, more=True)
        conv.push_body(b"b" * 1000, more=True)
        await _until_asked(conv, 3)  # waiting for the third message: the body is not whole
        assert app.calls == []  # ... so no thread has been taken
        assert adapter.stats()["busy"] == 0 and adapter.stats()["waiting"] == 1
        conv.push_body(b"c" * 1000)
        start = await conv.next()
        assert start["status"] == 200
        body = (await conv.next())["body"]
        whole = b"a" * 1000 + b"b" * 1000 + b"c" * 1000
        assert body == b"3000 " + hashlib.sha256(whole).hexdigest().encode()
        await conv.finish()

    asyncio.run(scenario())
    assert len(app.calls) == 1


@pytest.mark.parametrize("size", [300 * KiB, 3 * 1024 * KiB])
def test_a_body_past_the_hold_streams_the_rest_after_the_held_part(size: int) -> None:
    """300 KiB: held in memory then a file (past 256 KiB); 3 MiB: over a 1 MiB hold."""
    app = Echo()
    adapter = WsgiToAsgi(app, hold_body=1024 * KiB)
    data = bytes(range(256)) * (size // 256)
    chunks = [data[i : i + 64 * KiB] for i in range(0, size, 64 * KiB)]
    result = asyncio.run(request(adapter, method="POST", chunks=chunks))
    assert result.body == b"%d %s" % (size, hashlib.sha256(data).hexdigest().encode())


def test_a_client_that_leaves_during_the_hold_never_reaches_the_app() -> None:
    app = Echo()
    adapter = WsgiToAsgi(app)

    async def scenario() -> None:
        conv = Conversation(adapter, http_scope(method="POST"))
        conv.push_body(b"slow", more=True)
        await _until_asked(conv, 2)
        conv.push({"type": "http.disconnect"})
        await conv.finish()
        assert conv.sent_so_far() == []

    asyncio.run(scenario())
    assert app.calls == []
    assert adapter.stats()["disconnects"] == 1


def test_a_body_over_the_limit_during_the_hold_gets_413_without_the_app() -> None:
    app = Echo()
    adapter = WsgiToAsgi(app, max_body_size=1500)
    result = asyncio.run(request(adapter, method="POST", chunks=[b"x" * 1000, b"y" * 1000]))
    assert result.status == 413
    assert app.calls == []
    assert adapter.stats()["too_large_413"] == 1


def test_slow_uploads_do_not_take_the_threads() -> None:
    """Two threads, eight uploads that have sent a little and then wait: a plain request is
    still answered (without the hold, both threads would sit in wsgi.input.read())."""
    app = Echo()
    adapter = WsgiToAsgi(app, threads=2)

    async def scenario() -> None:
        uploads = [Conversation(adapter, http_scope(method="POST")) for _ in range(8)]
        for conv in uploads:
            conv.push_body(b"k" * KiB, more=True)
        for conv in uploads:
            await _until_asked(conv, 2)
        plain = await request(adapter, "/")
        assert plain.status == 200
        for conv in uploads:
            conv.push({"type": "http.disconnect"})
            await conv.finish()

    asyncio.run(scenario())
    assert len(app.calls) == 1
