"""ASGI -> WSGI conformance, each rule run against bridge (both loop modes) and a2wsgi's
``ASGIMiddleware``, the peer it replaces, so a regression against the peer shows (as uvicorn's
``tests/middleware/test_wsgi.py`` does). Where the peer breaks a rule, its case is a strict xfail
naming the rule: if a2wsgi fixes it, the mark has to go."""

from __future__ import annotations

import asyncio
import io
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any
from wsgiref.validate import validator

import pytest
from a2wsgi import ASGIMiddleware as A2wsgiMiddleware
from werkzeug.test import Client

from bridge import AsgiToWsgi
from tests.test_asgi_to_wsgi import BufferedClient, Scope, Started, api, call, environ, hello

pytestmark = pytest.mark.timeout(30)

Factory = Callable[[Any], Any]
ADAPTERS: dict[str, Factory] = {
    "bridge": lambda app: AsgiToWsgi(app, lifespan="off"),
    "bridge-shared": lambda app: AsgiToWsgi(app, loop="shared", lifespan="off"),
    "a2wsgi": A2wsgiMiddleware,
}


def adapters(**peer_fails: str) -> Any:
    """Parametrize over the adapters; ``a2wsgi="reason"`` marks the peer's case a strict xfail."""
    params = []
    for name, factory in ADAPTERS.items():
        marks = []
        if name in peer_fails:
            marks.append(pytest.mark.xfail(strict=True, reason=peer_fails[name]))
        params.append(pytest.param(factory, id=name, marks=marks))
    return pytest.mark.parametrize("make", params)


@pytest.fixture
def made() -> Iterator[list[Any]]:
    """Adapters a test built; bridge's are closed after it (a2wsgi has no close)."""
    built: list[Any] = []
    yield built
    for adapter in built:
        if isinstance(adapter, AsgiToWsgi):
            adapter.close()


def build(made: list[Any], make: Factory, app: Any) -> Any:
    adapter = make(app)
    made.append(adapter)
    return adapter


# -- FastAPI under wsgiref's validator ----------------------------------------------------------------


@adapters()
def test_fastapi_under_the_validator(make: Factory, made: list[Any]) -> None:
    client: Client = BufferedClient(validator(build(made, make, api)))
    assert client.get("/items/café?n=3").get_json() == {"name": "café", "n": 3}
    assert client.get("/items/x?n=nan-sense").status_code == 422
    assert client.get("/nowhere").status_code == 404
    cookies = client.get("/cookies").headers.getlist("Set-Cookie")
    assert sorted(c.split(";")[0] for c in cookies) == ["a=1", "b=2"]
    body = os.urandom(1024 * 1024)
    assert client.post("/echo", data=body).data == body


# -- streaming both ways ------------------------------------------------------------------------------


@adapters()
def test_response_chunk_one_reaches_the_server_before_chunk_two_is_made(
    make: Factory, made: list[Any]
) -> None:
    consumer_has_first = threading.Event()

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"one", "more_body": True})
        if await asyncio.get_running_loop().run_in_executor(None, consumer_has_first.wait, 5):
            await send({"type": "http.response.body", "body": b"two"})
        else:
            await send({"type": "http.response.body", "body": b"buffered"})

    iterable = build(made, make, app)(environ(), Started())
    try:
        assert next(iter(iterable)) == b"one"
        consumer_has_first.set()
        assert b"".join(iterable) == b"two"
    finally:
        iterable.close()


@adapters()
def test_request_body_is_read_on_demand(make: Factory, made: list[Any]) -> None:
    total = 64 * 1024 * 1024

    class Counting(io.RawIOBase):
        read_so_far = 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            size = min(len(buffer), total - self.read_so_far)
            buffer[:size] = bytes(size)
            self.read_so_far += size
            return size

    stream = Counting()
    at_first_chunk: list[int] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await receive()
        at_first_chunk.append(stream.read_so_far)
        await hello(scope, receive, send)

    env = environ("POST", CONTENT_LENGTH=str(total))
    env["wsgi.input"] = stream
    call(build(made, make, app), env)
    assert at_first_chunk[0] <= 1024 * 1024, f"read {at_first_chunk[0]} bytes ahead of the app"


# -- receive() after the body, and the client leaving -----------------------------------------------


@adapters()
def test_receive_after_the_body_waits_until_the_response_is_done(
    make: Factory, made: list[Any]
) -> None:
    order: list[str] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        async def watch() -> None:
            await receive()  # the (empty) body
            order.append((await receive())["type"])

        watcher = asyncio.ensure_future(watch())
        await asyncio.sleep(0.05)
        order.append("waiting" if not watcher.done() else "returned at once")
        await hello(scope, receive, send)
        await asyncio.wait_for(watcher, 5)

    call(build(made, make, app))
    assert order == ["waiting", "http.disconnect"]


@adapters(a2wsgi="a2wsgi does not tell the app when the server closes the response: it runs on")
def test_closing_early_makes_send_raise_and_receive_disconnect(
    make: Factory, made: list[Any]
) -> None:
    outcome: list[str] = []
    ended = threading.Event()

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            for _ in range(2000):  # 2 s at most, whatever the adapter does
                await send({"type": "http.response.body", "body": b"tick", "more_body": True})
                await asyncio.sleep(0.001)
            outcome.append("send never raised")
        except OSError:
            outcome.append("OSError")
            outcome.append((await receive())["type"])
        finally:
            ended.set()

    iterable = build(made, make, app)(environ(), Started())
    assert next(iter(iterable)) == b"tick"
    iterable.close()
    assert ended.wait(5), "the app's task went on after the server closed the response"
    assert outcome == ["OSError", "http.disconnect"]


# -- errors, headers, background work --------------------------------------------------------------


@adapters(a2wsgi="a2wsgi answers the error with a 500 of its own instead of raising it")
def test_an_error_before_the_response_reaches_the_server(make: Factory, made: list[Any]) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        raise LookupError("before the response")

    with pytest.raises(LookupError):
        call(build(made, make, app))


@adapters(a2wsgi="a2wsgi passes hop-by-hop headers on, which PEP 3333 forbids a WSGI app")
def test_hop_by_hop_headers_are_dropped(make: Factory, made: list[Any]) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        headers = [(b"connection", b"keep-alive"), (b"keep-alive", b"timeout=5"), (b"x-k", b"v")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})

    started, _ = call(build(made, make, app))
    assert [name.lower() for name, _ in started.calls[0][1]] == ["x-k"]


@adapters()
def test_work_after_the_last_chunk_ends_before_the_iterable(make: Factory, made: list[Any]) -> None:
    done: list[str] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await hello(scope, receive, send)
        await asyncio.sleep(0.05)
        done.append("background")

    assert b"".join(call(build(made, make, app))[1]) == b"hello"
    assert done == ["background"]
