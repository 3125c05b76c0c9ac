"""AsgiToWsgi request faults, driven as a WSGI server drives the adapter: a ``receive()`` the app
cancels, a client that leaves mid-body or whose socket fails under ``wsgi.input``, a server that
closes the response while the app both listens and sends, the timeout meeting an app that
ignores its cancellation, and bodies of the wrong type. Both loop modes where it applies."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import io
import threading
from array import array
from typing import Any
from wsgiref.validate import validator

import pytest

from bridge import ASGIProtocolError, AsgiToWsgi, ClientDisconnected
from bridge._streams import RESPONSE_BUFFER
from tests.test_asgi_to_wsgi import MODES, Scope, Started, api, call, environ, hello

pytestmark = pytest.mark.timeout(15)


def complete(env: dict[str, Any]) -> dict[str, Any]:
    """An environ with every key wsgiref's validator asks for."""
    env.update({"wsgi.version": (1, 0), "wsgi.multithread": True})
    env.update({"wsgi.multiprocess": False, "wsgi.run_once": False})
    return env


def post(body: io.RawIOBase | io.BytesIO, length: int) -> dict[str, Any]:
    env = complete(environ("POST", CONTENT_LENGTH=str(length)))
    env["wsgi.input"] = body
    return env


# -- a receive() the app cancels keeps its chunk (shared loop) ------------------------------------


class SlowBody(io.RawIOBase):
    """A body arriving slowly: each read returns only once the app's ``receive()`` has timed out
    waiting for it (a hand-off; in per-thread mode, where receive() reads in the app's own
    thread and cannot time out meanwhile, after a short bound)."""

    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = list(pieces)
        self.timeouts = 0
        self.changed = threading.Condition()

    def readable(self) -> bool:
        return True

    def timed_out(self) -> None:
        with self.changed:
            self.timeouts += 1
            self.changed.notify_all()

    def read(self, size: int = -1) -> bytes:
        with self.changed:
            seen = self.timeouts
            self.changed.wait_for(lambda: self.timeouts > seen, timeout=0.1)
        return self.pieces.pop(0) if self.pieces else b""


@pytest.mark.parametrize("mode", MODES)
def test_a_receive_cancelled_by_the_apps_timeout_loses_no_byte(mode: str) -> None:
    pieces = [bytes([65 + i]) * 1000 for i in range(4)]
    body = SlowBody(pieces)
    timeouts = 0

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        nonlocal timeouts
        got = b""
        while True:
            try:
                message = await asyncio.wait_for(receive(), 0.01)
            except asyncio.TimeoutError:
                timeouts += 1
                body.timed_out()
                continue
            assert message["type"] == "http.request"
            got += message["body"]
            if not message["more_body"]:
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": got})

    adapter = AsgiToWsgi(app, loop=mode, lifespan="off", chunk_size=1000)
    assert b"".join(call(adapter, post(body, 4000))[1]) == b"".join(pieces)
    adapter.close()
    if mode == "shared":
        assert timeouts >= 4  # each chunk came after a receive() had given up on it


# -- a client that leaves in the middle of its body -----------------------------------------------


async def read_all_then_answer(scope: Scope, receive: Any, send: Any) -> None:
    """Reads to the end of the body; on ``http.disconnect`` gives up without answering."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        if not message["more_body"]:
            break
    await hello(scope, receive, send)


async def raise_on_disconnect(scope: Scope, receive: Any, send: Any) -> None:
    """What Starlette's ``request.body()`` does: an error of the app's own on a disconnect."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise LookupError("client disconnected")
        if not message["more_body"]:
            break
    await hello(scope, receive, send)


def assert_client_disconnected(raised: pytest.ExceptionInfo[BaseException]) -> None:
    assert isinstance(raised.value, ClientDisconnected)
    # gunicorn's sync and gthread workers log an OSError with this errno at debug level only.
    assert raised.value.errno == errno.ECONNRESET


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("app", [read_all_then_answer, raise_on_disconnect, api])
def test_a_body_shorter_than_its_content_length_is_a_client_disconnect(mode: str, app: Any) -> None:
    """The client's fault, never an ASGIProtocolError blaming the app; the next request is
    served."""
    adapter = AsgiToWsgi(app, loop=mode, lifespan="off", chunk_size=4)
    env = post(io.BytesIO(b"half"), 8)
    env["PATH_INFO"] = "/digest"
    with pytest.raises(ClientDisconnected) as raised:
        call(adapter, env)
    assert_client_disconnected(raised)
    env = post(io.BytesIO(b"all of it"), 9)
    env["PATH_INFO"] = "/digest"
    assert call(adapter, env)[0].calls[0][0] == "200 OK"
    adapter.close()


class VanishingBody(io.RawIOBase):
    """The server's socket fails under ``wsgi.input`` after the first read."""

    def __init__(self) -> None:
        self.reads = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        self.reads += 1
        if self.reads > 1:
            raise ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")
        return b"abcd"


@pytest.mark.parametrize("mode", MODES)
def test_a_socket_error_under_wsgi_input_reaches_the_app_and_ends_the_call_as_a_disconnect(
    mode: str,
) -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["method"] == "GET":
            await hello(scope, receive, send)
            return
        try:
            while (await receive()).get("more_body"):
                pass
        except OSError as exc:
            seen.append(type(exc).__name__)
            raise

    adapter = AsgiToWsgi(app, loop=mode, lifespan="off", chunk_size=4)
    with pytest.raises(ClientDisconnected) as raised:
        call(adapter, post(VanishingBody(), 8))
    assert_client_disconnected(raised)
    assert isinstance(raised.value.__cause__, ConnectionResetError)
    assert seen == ["ConnectionResetError"]
    assert call(adapter)[1] == [b"hello"]
    adapter.close()


class Abort(BaseException):
    """What a server raises in a thread it is tearing down (gunicorn's timeout: SystemExit)."""


class AbortingBody(io.RawIOBase):
    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        raise Abort


def test_a_server_aborting_its_thread_in_a_body_read_ends_the_apps_task() -> None:
    """Shared loop: the WSGI thread reads for the app. If the read never returns (the server
    raised a BaseException there), the app must not wait on the loop for it forever."""
    ended = threading.Event()
    seen: list[str] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        try:
            await receive()
        except OSError as exc:
            seen.append(type(exc).__name__)
        finally:
            ended.set()

    adapter = AsgiToWsgi(app, loop="shared", lifespan="off")
    with pytest.raises(Abort):
        call(adapter, post(AbortingBody(), 8))
    assert ended.wait(5)
    assert seen == ["ClientDisconnected"]
    adapter.close()


# -- the server closes the response while the app listens and sends -------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_a_watching_receive_sees_the_disconnect_before_a_blocked_send_raises(mode: str) -> None:
    """Starlette's StreamingResponse runs a disconnect listener beside its sender: when the
    server closes the response, the listener must hear ``http.disconnect`` first."""
    order: list[str] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "http.request"

        async def watch() -> None:
            order.append(f"receive: {(await receive())['type']}")

        watcher = asyncio.create_task(watch())
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            while True:  # each send fills the buffer, so it waits for the server
                chunk = b"x" * (RESPONSE_BUFFER + 1)
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except ClientDisconnected:
            order.append("send: ClientDisconnected")
        await watcher

    adapter = AsgiToWsgi(app, loop=mode, lifespan="off")
    iterable = adapter(environ(), Started())
    assert len(next(iter(iterable))) > RESPONSE_BUFFER
    iterable.close()  # type: ignore[attr-defined]
    assert order == ["receive: http.disconnect", "send: ClientDisconnected"]
    adapter.close()


# -- the timeout meets an app that ignores its cancellation ---------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_the_timeout_answers_504_even_if_the_app_swallows_its_cancellation(mode: str) -> None:
    after: list[str] = []
    release = asyncio.Event()

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        with contextlib.suppress(asyncio.CancelledError):  # goes on regardless
            await asyncio.sleep(30)
        try:
            await send({"type": "http.response.start", "status": 200, "headers": []})
        except OSError as exc:
            after.append(type(exc).__name__)
        after.append((await receive())["type"])
        await release.wait()

    adapter = AsgiToWsgi(app, loop=mode, lifespan="off", timeout=0.2)
    started, body = call(adapter)
    assert started.calls[0][0] == "504 Gateway Timeout" and body == [b"Gateway Timeout"]
    adapter.close()  # cancels what is still pending on the loop
    assert after[:2] == ["ClientDisconnected", "http.disconnect"]


# -- response bodies --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_bytes_like_bodies_are_sent_as_they_were_when_sent(mode: str) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"application/octet-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        mutable = bytearray(b"one;")
        await send({"type": "http.response.body", "body": mutable, "more_body": True})
        mutable[:] = b"XXXX"  # the app reuses its buffer: what it sent must not change
        wide = memoryview(array("H", [0x6974, 0x6F77]))  # 2-byte items: len() is not the size
        await send({"type": "http.response.body", "body": wide, "more_body": True})
        await send({"type": "http.response.body", "body": memoryview(b";three")})

    adapter = validator(AsgiToWsgi(app, loop=mode, lifespan="off"))
    body = b"".join(call(adapter, complete(environ()))[1])
    assert body == b"one;" + array("H", [0x6974, 0x6F77]).tobytes() + b";three"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("bad", ["text", 5])
def test_a_body_that_is_not_bytes_is_a_named_protocol_error(mode: str, bad: object) -> None:
    """``bytes(5)`` would be five NUL bytes and ``bytes("text")`` a TypeError of ours."""

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": bad})

    with pytest.raises(ASGIProtocolError, match="body must be bytes"):
        call(AsgiToWsgi(app, loop=mode, lifespan="off"))
