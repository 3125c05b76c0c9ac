"""ASGI -> WSGI conformance: the SPEC.md rules that tell adapters apart, each run against bridge
(both loop modes) and a2wsgi's ``ASGIMiddleware`` (asgiref has no adapter this way), in process
(the WSGI server is a hand-made environ or werkzeug's client). A peer's failure is a strict xfail
naming what it does instead; the titles are the rows of ``docs/conformance.md``
(``scripts/conformance``)."""

from __future__ import annotations

import asyncio
import io
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from wsgiref.validate import validator

import pytest
from werkzeug.test import Client

from bridge import AsgiToWsgi
from tests.peers import A2W, Broken, Factory, check, no_option
from tests.test_asgi_to_wsgi import BufferedClient, Scope, Started, api, call, environ, hello

pytestmark = pytest.mark.timeout(30)
FILE = Path(__file__)  # any real file


@pytest.fixture
def made() -> Iterator[list[Any]]:
    """Adapters a test built; bridge's are closed after it (a2wsgi has no close)."""
    built: list[Any] = []
    yield built
    for adapter in built:
        if isinstance(adapter, AsgiToWsgi):
            adapter.close()


def build(made: list[Any], make: Factory, app: Any, **options: Any) -> Any:
    adapter = make(app, **options)
    made.append(adapter)
    return adapter


def scope_seen(made: list[Any], make: Factory, **env: Any) -> Scope:
    """The scope the ASGI app was called with, for one GET with ``env`` in its environ."""
    seen: list[Scope] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        seen.append(scope)
        await hello(scope, receive, send)

    call(build(made, make, app), environ(**env))
    return seen[0]


# -- FastAPI under wsgiref's validator ----------------------------------------------------------------


@check(A2W, "FastAPI under wsgiref's validator: routes, 404, 422, cookies, 1 MiB echo")
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


@check(A2W, "Response streams: chunk 1 reaches the server before the app makes chunk 2")
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


@check(A2W, "Request body streams: no read-ahead of wsgi.input (64 MiB body)")
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


@check(A2W, "receive() after the body waits, then http.disconnect once the response is done")
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


@check(
    A2W,
    "Server closes the response early: send() raises OSError, receive() gives http.disconnect",
    a2wsgi="a2wsgi does not tell the app when the server closes the response: it runs on",
)
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


@check(
    A2W,
    "An app error before the response propagates to the server (no canned 500)",
    a2wsgi="a2wsgi answers the error with a 500 of its own instead of raising it",
)
def test_an_error_before_the_response_reaches_the_server(make: Factory, made: list[Any]) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        raise LookupError("before the response")

    with pytest.raises(LookupError):
        call(build(made, make, app))


@check(
    A2W,
    "Hop-by-hop response headers are dropped (PEP 3333 forbids them)",
    a2wsgi="a2wsgi passes hop-by-hop headers on, which PEP 3333 forbids a WSGI app",
)
def test_hop_by_hop_headers_are_dropped(make: Factory, made: list[Any]) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        headers = [
            (b"connection", b"keep-alive"),
            (b"keep-alive", b"timeout=5"),
            (b"transfer-encoding", b"chunked"),
            (b"x-k", b"v"),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})

    started, _ = call(build(made, make, app))
    assert [name.lower() for name, _ in started.calls[0][1]] == ["x-k"]


@check(A2W, "Work after the last chunk (background tasks) ends before the iterable does")
def test_work_after_the_last_chunk_ends_before_the_iterable(make: Factory, made: list[Any]) -> None:
    done: list[str] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await hello(scope, receive, send)
        await asyncio.sleep(0.05)
        done.append("background")

    assert b"".join(call(build(made, make, app))[1]) == b"hello"
    assert done == ["background"]


@check(
    A2W,
    "An app error after the response is complete: the response stands",
)
def test_an_error_after_the_response_leaves_it_whole(make: Factory, made: list[Any]) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await hello(scope, receive, send)
        raise LookupError("after the response, as FastAPI re-raises")

    assert b"".join(call(build(made, make, app))[1]) == b"hello"


@check(A2W, "An app error after the first chunk propagates from the iterable")
def test_an_error_mid_stream_propagates(make: Factory, made: list[Any]) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        # Not at once: a2wsgi's iterable ends quietly if the app's task is done before its thread
        # looks again (a race, so no mark can say it); this check is about later errors.
        await asyncio.sleep(0.05)
        raise LookupError("mid-stream")

    with pytest.raises(LookupError):
        call(build(made, make, app))


@check(A2W, "Two Set-Cookie headers stay two headers")
def test_two_set_cookie_headers(make: Factory, made: list[Any]) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        headers = [(b"set-cookie", b"a=1"), (b"set-cookie", b"b=2; HttpOnly")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    started, _ = call(build(made, make, app))
    assert started.calls[0][1] == [("set-cookie", "a=1"), ("set-cookie", "b=2; HttpOnly")]


@check(A2W, "204 and 304 go out without a body")
def test_no_body_statuses(make: Factory, made: list[Any]) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        status = int(scope["path"][1:])
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    adapter = build(made, make, app)
    for status in (204, 304):
        started, chunks = call(adapter, environ(PATH_INFO=f"/{status}"))
        assert (started.calls[0][0][:3], b"".join(chunks)) == (str(status), b"")


@check(
    A2W,
    "HEAD: no body goes out, whatever the app sends",
    a2wsgi="a2wsgi passes the app's HEAD body to the WSGI server",
)
def test_head_has_no_body(make: Factory, made: list[Any]) -> None:
    started, chunks = call(build(made, make, hello), environ("HEAD"))
    assert started.calls[0][0].startswith("200") and b"".join(chunks) == b""


@check(
    A2W,
    "Request body without Content-Length is read to its end (wsgi.input_terminated)",
    a2wsgi="a2wsgi reads CONTENT_LENGTH bytes only: without it the app gets an empty body",
)
def test_body_without_content_length(make: Factory, made: list[Any]) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        size, more = 0, True
        while more:
            message = await receive()
            size += len(message.get("body", b""))
            more = message.get("more_body", False)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(size).encode()})

    env = environ("POST", body=bytes(300_000))
    env.pop("CONTENT_LENGTH")  # a chunked upload, already decoded by the server
    assert b"".join(call(build(made, make, app), env)[1]) == b"300000"


@check(A2W, "root_path is SCRIPT_NAME, path is SCRIPT_NAME + PATH_INFO decoded as UTF-8")
def test_root_path_and_path(made: list[Any], make: Factory) -> None:
    scope = scope_seen(made, make, SCRIPT_NAME="/app", PATH_INFO="/café".encode().decode("latin-1"))
    assert (scope["root_path"], scope["path"]) == ("/app", "/app/café")


@check(
    A2W,
    "raw_path is the server's RAW_URI bytes, without the query (%2F kept)",
    a2wsgi="a2wsgi sets no raw_path: a %2F cannot be told from /",
)
def test_raw_path_from_raw_uri(made: list[Any], make: Factory) -> None:
    scope = scope_seen(made, make, PATH_INFO="/a/b", QUERY_STRING="q=1", RAW_URI="/a%2Fb?q=1")
    assert scope.get("raw_path") == b"/a%2Fb"


@check(A2W, "No raw_path is made up from the decoded path without RAW_URI/REQUEST_URI")
def test_no_raw_path_made_up(made: list[Any], make: Factory) -> None:
    assert scope_seen(made, make, PATH_INFO="/a/b").get("raw_path") is None


@check(
    A2W,
    "Non-ASCII QUERY_STRING bytes reach query_string",
    a2wsgi=Broken("a2wsgi encodes QUERY_STRING as ASCII: UnicodeEncodeError", UnicodeError),
)
def test_non_ascii_query_string(made: list[Any], make: Factory) -> None:
    scope = scope_seen(made, make, QUERY_STRING="q=café".encode().decode("latin-1"))
    assert scope["query_string"] == "q=café".encode()


@check(
    A2W,
    "Lifespan startup runs before the first request, shutdown on close()",
    a2wsgi=no_option("lifespan"),
)
def test_lifespan(make: Factory, made: list[Any]) -> None:
    events: list[str] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            events.append("request")
            return await hello(scope, receive, send)
        while True:
            message = await receive()
            events.append(message["type"])
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return

    adapter = build(made, make, app, lifespan="on")
    call(adapter)
    adapter.close()
    assert events == ["lifespan.startup", "request", "lifespan.shutdown"]


@check(
    A2W,
    "timeout: a response not started in time gets 504",
    a2wsgi=no_option("timeout"),
)
def test_timeout(make: Factory, made: list[Any]) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await asyncio.Event().wait()

    started, _ = call(build(made, make, app, timeout=0.2))
    assert started.calls[0][0].startswith("504")


class RecordingFileWrapper:
    """A server's ``wsgi.file_wrapper``: what it was given is what it would ``sendfile()``."""

    def __init__(self, file: Any, block_size: int = 8192) -> None:
        self.file = file

    def __iter__(self) -> Iterator[bytes]:
        yield from iter(lambda: self.file.read(8192), b"")

    def close(self) -> None:
        self.file.close()


@check(
    A2W,
    "http.response.pathsend is offered and answered with the server's wsgi.file_wrapper",
    a2wsgi="a2wsgi offers no extensions: the app has to send the bytes itself",
)
def test_pathsend_through_the_file_wrapper(make: Factory, made: list[Any]) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        if "http.response.pathsend" in scope.get("extensions", {}):
            await send({"type": "http.response.pathsend", "path": str(FILE)})
        else:
            await send({"type": "http.response.body", "body": FILE.read_bytes()})

    started = Started()
    env = environ()
    env["wsgi.file_wrapper"] = RecordingFileWrapper
    iterable = build(made, make, app)(env, started)
    try:
        assert isinstance(iterable, RecordingFileWrapper)
        # What sendfile() needs: a file descriptor of the file itself.
        assert os.path.samestat(os.fstat(iterable.file.fileno()), os.stat(FILE))
    finally:
        iterable.close()


# -- what the app gets wrong ----------------------------------------------------------------------


@check(
    A2W,
    "A body before http.response.start raises",
    a2wsgi="a2wsgi yields the body without ever calling start_response",
)
def test_body_before_start_raises(make: Factory, made: list[Any]) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.body", "body": b"early"})

    with pytest.raises(Exception):  # noqa: B017 - which error is each adapter's own
        call(build(made, make, app))


def bounded(server: Callable[[], object], seconds: float) -> str:
    """How a WSGI server's call ended: "raised", "returned", or "hung" (left on its thread)."""
    ended: list[str] = []

    def serve() -> None:
        try:
            server()
        except Exception:
            ended.append("raised")
        else:
            ended.append("returned")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    thread.join(seconds)
    return ended[0] if ended else "hung"


@check(
    A2W,
    "An app that returns without a response raises",
    a2wsgi="a2wsgi ends the iterable without calling start_response, or hangs (a race)",
)
def test_no_response_raises(make: Factory, made: list[Any]) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await receive()

    adapter = build(made, make, app)
    assert bounded(lambda: call(adapter), 5) == "raised"


@check(A2W, "An unknown message type raises")
def test_unknown_message_raises(make: Factory, made: list[Any]) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.nonsense"})

    with pytest.raises(Exception):  # noqa: B017 - which error is each adapter's own
        call(build(made, make, app))
