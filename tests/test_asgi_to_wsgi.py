"""AsgiToWsgi in process: FastAPI through werkzeug's test client under wsgiref's validator, in
both loop modes, and hand-written ASGI apps for each rule."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import io
import os
import sys
import threading
import time
import weakref
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from http import HTTPStatus
from types import SimpleNamespace
from typing import Any
from wsgiref.validate import validator

import psutil
import pytest
from fastapi import BackgroundTasks, FastAPI, Request, Response
from fastapi.responses import StreamingResponse
from werkzeug.test import Client

from bridge import ASGIMiddleware, ASGIProtocolError, AsgiToWsgi, ClientDisconnected

pytestmark = pytest.mark.timeout(30)
MODES = ["per-thread", "shared"]
Scope = dict[str, Any]

# -- a FastAPI app ---------------------------------------------------------------------------------

done_in_background: list[str] = []


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    yield {"pool": f"pool on loop {id(asyncio.get_running_loop())}"}


api = FastAPI(lifespan=lifespan)


@api.get("/items/{name}")
async def item(name: str, n: int = 1) -> dict[str, Any]:
    return {"name": name, "n": n}


@api.get("/state")
async def state(request: Request) -> dict[str, Any]:
    return {"pool": request.state.pool, "loop": id(asyncio.get_running_loop())}


@api.get("/cookies")
async def cookies(response: Response) -> dict[str, str]:
    response.set_cookie("a", "1")
    response.set_cookie("b", "2")
    return {}


@api.post("/background")
async def background(tasks: BackgroundTasks, tag: str) -> dict[str, str]:
    async def later() -> None:
        await asyncio.sleep(0.05)
        done_in_background.append(tag)

    tasks.add_task(later)
    return {"queued": tag}


@api.post("/echo")
async def echo(request: Request) -> StreamingResponse:
    return StreamingResponse(request.stream(), media_type="application/octet-stream")


@api.post("/digest")
async def digest(request: Request) -> dict[str, Any]:
    sha, size = hashlib.sha256(), 0
    async for chunk in request.stream():
        sha.update(chunk)
        size += len(chunk)
    return {"size": size, "sha256": sha.hexdigest()}


class BufferedClient(Client):
    """werkzeug's client, reading each response whole and closing its iterable."""

    def open(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["buffered"] = True
        return super().open(*args, **kwargs)


def client(mode: str, **options: Any) -> tuple[Client, AsgiToWsgi]:
    adapter = AsgiToWsgi(api, loop=mode, **options)
    return BufferedClient(validator(adapter)), adapter


@pytest.fixture(params=MODES)
def fastapi_client(request: pytest.FixtureRequest) -> Iterator[Client]:
    test_client, adapter = client(request.param)
    yield test_client
    adapter.close()


def test_fastapi_routes(fastapi_client: Client) -> None:
    response = fastapi_client.get("/items/café?n=3")
    assert response.status_code == 200
    assert response.get_json() == {"name": "café", "n": 3}


def test_fastapi_validation_error_and_404(fastapi_client: Client) -> None:
    assert fastapi_client.get("/items/x?n=notanumber").status_code == 422
    assert fastapi_client.get("/nowhere").status_code == 404


def test_two_set_cookie_headers(fastapi_client: Client) -> None:
    response = fastapi_client.get("/cookies")
    assert sorted(v.split(";")[0] for v in response.headers.getlist("Set-Cookie")) == ["a=1", "b=2"]


def test_lifespan_state_reaches_the_request(fastapi_client: Client) -> None:
    body = fastapi_client.get("/state").get_json()
    assert body["pool"] == f"pool on loop {body['loop']}"  # made on the loop serving requests


def test_background_task_is_done_when_the_response_ends(fastapi_client: Client) -> None:
    tag = f"tag-{os.urandom(4).hex()}"
    assert fastapi_client.post(f"/background?tag={tag}").get_json() == {"queued": tag}
    assert tag in done_in_background


def test_five_mib_echo(fastapi_client: Client) -> None:
    body = os.urandom(5 * 1024 * 1024)
    response = fastapi_client.post("/echo", data=body)
    assert response.status_code == 200 and response.data == body


def test_chunked_upload_without_content_length(fastapi_client: Client) -> None:
    body = os.urandom(300_000)
    response = fastapi_client.post(
        "/digest", input_stream=io.BytesIO(body), headers={"Transfer-Encoding": "chunked"}
    )
    assert response.get_json() == {"size": len(body), "sha256": hashlib.sha256(body).hexdigest()}


# -- the WSGI side by hand -----------------------------------------------------------------------


def environ(method: str = "GET", body: bytes = b"", **extra: Any) -> dict[str, Any]:
    env = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": "/",
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": io.StringIO(),
        "wsgi.input_terminated": True,
        "CONTENT_LENGTH": str(len(body)) if body else "",
    }
    env.update(extra)
    return env


class Started:
    def __init__(self) -> None:
        self.calls: list[tuple[str, list[tuple[str, str]]]] = []

    def __call__(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        self.calls.append((status, headers))
        return lambda data: None


def call(app: Any, env: dict[str, Any] | None = None) -> tuple[Started, list[bytes]]:
    started = Started()
    iterable = app(env or environ(), started)
    try:
        return started, list(iterable)
    finally:
        if hasattr(iterable, "close"):
            iterable.close()


async def hello(scope: Scope, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"x-a", b"1")]})
    await send({"type": "http.response.body", "body": b"hello"})


@pytest.mark.parametrize(
    ("header", "rule"),
    [
        ((b"x-a", b"1\r\nSet-Cookie: evil=1"), "CR, LF or NUL"),
        ((b"x-a", b"nul\x00"), "CR, LF or NUL"),
        ((b"bad name", b"v"), "not an HTTP token"),
        ((b"", b"v"), "not an HTTP token"),
    ],
)
def test_response_headers_that_would_split_the_response_are_refused(
    header: tuple[bytes, bytes], rule: str
) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [header]})
        await send({"type": "http.response.body", "body": b"ok"})

    started = Started()
    with pytest.raises(ASGIProtocolError, match=rule):
        AsgiToWsgi(app, lifespan="off")(environ(), started)
    assert started.calls == []


def test_an_int_enum_status_is_a_status() -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": HTTPStatus.ACCEPTED})
        await send({"type": "http.response.body", "body": b"ok"})

    assert call(AsgiToWsgi(app, lifespan="off"))[0].calls == [("202 Accepted", [])]


@pytest.mark.parametrize("mode", MODES)
def test_hop_by_hop_headers_are_dropped(mode: str) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        headers = [(b"connection", b"close"), (b"transfer-encoding", b"chunked"), (b"x-b", b"2")]
        await send({"type": "http.response.start", "status": 201, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})

    started, body = call(AsgiToWsgi(app, loop=mode, lifespan="off"))
    assert started.calls == [("201 Created", [("x-b", "2")])]
    assert body == [b"ok"]


def test_scope_from_environ() -> None:
    seen: list[Scope] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            seen.append(scope)
        await hello(scope, receive, send)

    env = environ(
        SCRIPT_NAME="/app", PATH_INFO="/caf\xc3\xa9", QUERY_STRING="q=1", REMOTE_ADDR="192.0.2.1"
    )
    call(AsgiToWsgi(app, lifespan="off"), env)
    scope = seen[0]
    assert (scope["root_path"], scope["path"], scope["query_string"]) == (
        "/app",
        "/app/café",
        b"q=1",
    )
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert scope["client"] == ("192.0.2.1", 0)
    assert scope["extensions"] == {"http.response.pathsend": {}}
    assert scope["state"] == {}


@pytest.mark.parametrize("mode", MODES)
def test_request_body_arrives_in_chunk_size_pieces_on_demand(mode: str) -> None:
    """The app sees its first chunk before the adapter read more than 1 MiB of 64 MiB."""
    total = 64 * 1024 * 1024

    class Endless(io.RawIOBase):
        read_so_far = 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            size = min(len(buffer), total - self.read_so_far)
            buffer[:size] = b"x" * size
            self.read_so_far += size
            return size

    stream = Endless()
    at_first_chunk: list[int] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        first = await receive()
        at_first_chunk.append(stream.read_so_far)
        assert len(first["body"]) == 65536 and first["more_body"]
        await hello(scope, receive, send)

    env = environ("POST", CONTENT_LENGTH=str(total))
    env["wsgi.input"] = stream
    call(AsgiToWsgi(app, loop=mode, lifespan="off"), env)
    assert at_first_chunk and at_first_chunk[0] <= 1024 * 1024


@pytest.mark.parametrize("mode", MODES)
def test_response_chunks_reach_the_server_as_they_are_sent(mode: str) -> None:
    """Chunk two is only sent once the WSGI side holds chunk one: buffering would deadlock."""
    consumer_has_first = threading.Event()

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"one", "more_body": True})
        got = await asyncio.get_running_loop().run_in_executor(None, consumer_has_first.wait, 5)
        assert got, "the WSGI side never got chunk one"
        await send({"type": "http.response.body", "body": b"two"})

    iterable = AsgiToWsgi(app, loop=mode, lifespan="off")(environ(), Started())
    assert next(iter(iterable)) == b"one"
    consumer_has_first.set()
    assert list(iterable) == [b"two"]
    iterable.close()


@pytest.mark.parametrize("mode", MODES)
def test_receive_after_the_body_waits_for_the_response(mode: str) -> None:
    order: list[str] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        async def watch() -> None:
            assert (await receive())["type"] == "http.request"
            order.append((await receive())["type"])

        watcher = asyncio.ensure_future(watch())
        await asyncio.sleep(0.05)
        order.append("still waiting" if not watcher.done() else "returned early")
        await hello(scope, receive, send)
        await watcher

    call(AsgiToWsgi(app, loop=mode, lifespan="off"))
    assert order == ["still waiting", "http.disconnect"]


@pytest.mark.parametrize("mode", MODES)
def test_closing_early_tells_the_app_and_ends_its_task(mode: str) -> None:
    outcome: list[str] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            while True:
                await send({"type": "http.response.body", "body": b"tick", "more_body": True})
                await asyncio.sleep(0.001)
        except OSError as exc:
            outcome.append(type(exc).__name__)
            outcome.append((await receive())["type"])
            raise

    adapter = AsgiToWsgi(app, loop=mode, lifespan="off")
    iterable = adapter(environ(), Started())
    assert next(iter(iterable)) == b"tick"
    iterable.close()
    assert outcome == [ClientDisconnected.__name__, "http.disconnect"]
    adapter.close()


@pytest.mark.parametrize("mode", MODES)
def test_an_app_ignoring_the_disconnect_is_cancelled(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bridge.asgi_to_wsgi._adapter.DISCONNECT_GRACE", 0.2)
    cancelled = threading.Event()

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"x", "more_body": True})
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    iterable = AsgiToWsgi(app, loop=mode, lifespan="off")(environ(), Started())
    assert next(iter(iterable)) == b"x"
    iterable.close()
    assert cancelled.wait(2)


@pytest.mark.parametrize("mode", MODES)
def test_error_before_the_response_propagates(mode: str) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        raise KeyError("no such thing")

    with pytest.raises(KeyError):
        AsgiToWsgi(app, loop=mode, lifespan="off")(environ(), Started())


def test_error_after_start_but_before_the_body_still_raises_from_the_call() -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise ValueError("late")

    started = Started()
    with pytest.raises(ValueError):
        AsgiToWsgi(app, lifespan="off")(environ(), started)
    assert started.calls == []  # nothing went out: the server answers a clean 500


def test_error_after_the_first_chunk_raises_from_the_iterable() -> None:
    handed_out = threading.Event()

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        await asyncio.get_running_loop().run_in_executor(None, handed_out.wait, 5)
        raise ValueError("mid stream")

    started = Started()
    iterable = AsgiToWsgi(app, lifespan="off")(environ(), started)
    assert started.calls and next(iter(iterable)) == b"part"
    handed_out.set()
    with pytest.raises(ValueError, match="mid stream"):
        next(iter(iterable))
    iterable.close()


def test_error_before_the_call_returned_is_a_clean_500_even_after_a_chunk() -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        raise ValueError("failed before anything went out")

    started = Started()
    with pytest.raises(ValueError):
        AsgiToWsgi(app, lifespan="off")(environ(), started)
    assert started.calls == []


def test_error_after_a_complete_response_is_logged_and_the_response_stands(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 500, "headers": []})
        await send({"type": "http.response.body", "body": b"Internal Server Error"})
        raise RuntimeError("re-raised after the 500 went out")

    started, body = call(AsgiToWsgi(app, lifespan="off"))
    assert started.calls[0][0] == "500 Internal Server Error"
    assert body == [b"Internal Server Error"]
    assert "after its response was complete" in caplog.text


UWSGI = {"uwsgi.version": b"2.0.30"}  # in every environ uWSGI makes


async def raises(scope: Scope, receive: Any, send: Any) -> None:
    raise KeyError("no such thing")


async def returns_without_a_response(scope: Scope, receive: Any, send: Any) -> None:
    return


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("app", "error"), [(raises, KeyError), (returns_without_a_response, ASGIProtocolError)]
)
def test_on_uwsgi_an_error_before_the_response_is_a_500_then_raised_for_the_server(
    mode: str, app: Any, error: type[Exception]
) -> None:
    """uWSGI answers an exception from the WSGI call with an empty reply: bridge sends the 500
    and raises the error from the iterable, after the body, where uWSGI still logs it."""
    calls = []

    def start_response(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
        calls.append((status, headers, exc_info))

    iterable = AsgiToWsgi(app, loop=mode, lifespan="off")(environ(**UWSGI), start_response)
    # No exc_info: uWSGI's start_response then leaves the error pending (a SystemError).
    headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", "21")]
    assert calls == [("500 Internal Server Error", headers, ())]
    chunks = iter(iterable)
    assert next(chunks) == b"Internal Server Error"
    with pytest.raises(error):
        next(chunks)


class Broken(Exception):
    """An app's error that a weak reference can watch."""


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("server", [{}, UWSGI], ids=["raised-from-the-call", "uwsgi"])
def test_an_app_error_is_freed_without_the_garbage_collector(
    mode: str, server: dict[str, Any]
) -> None:
    """Once the server drops the error, nothing keeps it: a cycle through its traceback would
    hold the request's call and the adapter's loops until the next collection."""

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        raise Broken

    adapter = AsgiToWsgi(app, loop=mode, lifespan="off")

    def serve_once() -> weakref.ref[Broken]:
        try:
            for _ in adapter(environ(**server), Started()):
                pass
        except Broken as error:
            return weakref.ref(error)
        raise AssertionError("the app's error never reached the server")

    gc.disable()
    try:
        assert serve_once()() is None
    finally:
        gc.enable()
        adapter.close()


def test_on_uwsgi_with_catch_exceptions_the_error_leaves_the_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``--catch-exceptions`` makes uWSGI answer the 500 itself (with the traceback)."""
    monkeypatch.setitem(sys.modules, "uwsgi", SimpleNamespace(opt={"catch-exceptions": True}))
    started = Started()
    with pytest.raises(KeyError):
        AsgiToWsgi(raises, lifespan="off")(environ(**UWSGI), started)
    assert started.calls == []


def test_on_uwsgi_a_client_gone_mid_body_still_leaves_the_call() -> None:
    """Nobody is there to read a 500: uWSGI gets the disconnect, as every server does."""

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        raise RuntimeError("the framework's own error for the client that left")

    env = environ("POST", b"abc", **UWSGI)
    env["CONTENT_LENGTH"] = "10"
    started = Started()
    with pytest.raises(ClientDisconnected):
        AsgiToWsgi(app, lifespan="off")(env, started)
    assert started.calls == []


@pytest.mark.parametrize(
    ("app_steps", "rule"),
    [
        ([], "without sending http.response.start"),
        ([{"type": "http.response.body", "body": b"x"}], "before http.response.start"),
        ([{"type": "http.response.start", "status": 200}] * 2, "sent twice"),
        ([{"type": "http.response.push", "path": "/"}], "unexpected ASGI message"),
        ([{"type": "http.response.start"}], "int status of three digits, got None"),
        ([{"type": "http.response.start", "status": "200"}], "int status of three digits"),
        ([{"type": "http.response.start", "status": 42}], "int status of three digits, got 42"),
        (
            [
                {"type": "http.response.start", "status": 200},
                {"type": "http.response.body", "body": b"a", "more_body": True},
            ],
            "before its last http.response.body",
        ),
    ],
)
def test_protocol_violations_are_named(app_steps: list[dict[str, Any]], rule: str) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        for message in app_steps:
            await send(message)

    with pytest.raises(ASGIProtocolError, match=rule):
        call(AsgiToWsgi(app, lifespan="off"))


def test_timeout_before_the_response_starts_is_504() -> None:
    cancelled = threading.Event()

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    started, body = call(AsgiToWsgi(app, lifespan="off", timeout=0.1))
    assert started.calls[0][0] == "504 Gateway Timeout" and body == [b"Gateway Timeout"]
    assert cancelled.is_set()


def test_back_pressure_holds_the_app_at_the_buffer() -> None:
    sent = 0

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        nonlocal sent
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(100):
            sent += 1
            await send({"type": "http.response.body", "body": b"x" * 65536, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    iterable = AsgiToWsgi(app, lifespan="off")(environ(), Started())
    first = next(iter(iterable))  # everything queued so far, as one chunk
    assert sent <= 6, f"the app ran {sent} x 64 KiB ahead of the server"
    assert len(first) + sum(len(c) for c in iterable) == 100 * 65536
    iterable.close()


# -- lifespan ---------------------------------------------------------------------------------------


def lifespan_app(events: list[str], startup: str = "complete") -> Any:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                events.append(message["type"])
                if message["type"] == "lifespan.startup":
                    scope["state"]["thread"] = threading.current_thread().name
                    await send({"type": f"lifespan.startup.{startup}", "message": "db down"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": scope["state"]["thread"].encode()})

    return app


def test_lifespan_runs_once_per_loop_and_shuts_down_when_its_thread_ends() -> None:
    events: list[str] = []
    adapter = AsgiToWsgi(lifespan_app(events))
    names = []
    all_served = threading.Barrier(3, timeout=10)

    def serve_two() -> None:
        names.append(b"".join(call(adapter)[1]))
        names.append(b"".join(call(adapter)[1]))
        all_served.wait()  # no thread ends (and has its loop shut down) before all have served

    threads = [threading.Thread(target=serve_two) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert events.count("lifespan.startup") == 3
    assert len(set(names)) == 3  # each thread's requests saw its own loop's state
    # Each loop is shut down as its thread ends, without waiting for close().
    deadline = time.monotonic() + 5
    while events.count("lifespan.shutdown") < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert events.count("lifespan.shutdown") == 3
    adapter.close()
    assert events.count("lifespan.shutdown") == 3


def test_shared_loop_runs_one_lifespan() -> None:
    events: list[str] = []
    adapter = AsgiToWsgi(lifespan_app(events), loop="shared")
    threads = [threading.Thread(target=call, args=(adapter,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert events == ["lifespan.startup"]
    adapter.close()
    assert events == ["lifespan.startup", "lifespan.shutdown"]


def test_failed_startup_answers_500(caplog: pytest.LogCaptureFixture) -> None:
    started, _ = call(AsgiToWsgi(lifespan_app([], startup="failed")))
    assert started.calls[0][0] == "500 Internal Server Error"
    assert "db down" in caplog.text


@pytest.mark.parametrize(
    ("mode", "status"), [("auto", "200 OK"), ("on", "500 Internal Server Error")]
)
def test_an_app_raising_on_lifespan(mode: str, status: str) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError("only http here")
        await hello(scope, receive, send)

    started, _ = call(AsgiToWsgi(app, lifespan=mode))
    assert started.calls[0][0] == status


def test_lifespan_off_is_never_called() -> None:
    events: list[str] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        events.append(scope["type"])
        await hello(scope, receive, send)

    assert call(AsgiToWsgi(app, lifespan="off"))[1] == [b"hello"]
    assert events == ["http"]


def test_bad_options() -> None:
    with pytest.raises(ValueError, match="loop"):
        AsgiToWsgi(hello, loop="forked")
    with pytest.raises(ValueError, match="lifespan"):
        AsgiToWsgi(hello, lifespan="maybe")
    with pytest.raises(ValueError, match="chunk_size"):
        AsgiToWsgi(hello, chunk_size=0)


def test_drop_in_alias() -> None:
    assert call(ASGIMiddleware(hello))[1] == [b"hello"]
    middleware = ASGIMiddleware(hello, wait_time=2.0)
    assert (middleware.wait_time, middleware.timeout) == (2.0, None)


# -- threads, loops, fds, fork ------------------------------------------------------------------------


def test_many_threads_leave_no_threads_loops_or_fds_behind() -> None:
    adapter = AsgiToWsgi(hello, lifespan="off")
    process = psutil.Process()
    call(adapter)  # the first loop exists before we count
    adapter.close()
    fds, threads = process.num_fds(), threading.active_count()

    def fifty() -> None:
        for _ in range(50):
            assert call(adapter)[1] == [b"hello"]

    for _ in range(2):
        wave = [threading.Thread(target=fifty) for _ in range(8)]
        for t in wave:
            t.start()
        for t in wave:
            t.join(20)
    deadline = time.monotonic() + 5  # each loop is closed as its thread ends, not later
    while adapter._loops._runners and time.monotonic() < deadline:
        time.sleep(0.01)
    assert adapter._loops._runners == []
    adapter.close()
    deadline = time.monotonic() + 2  # threads of other tests' loops may still be stopping
    while threading.active_count() > threads or process.num_fds() > fds:
        assert time.monotonic() < deadline, (threading.enumerate(), process.num_fds(), fds)
        time.sleep(0.01)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
@pytest.mark.parametrize("mode", MODES)
def test_an_adapter_used_before_fork_serves_in_the_child(mode: str) -> None:
    adapter = AsgiToWsgi(hello, loop=mode, lifespan="off")
    assert call(adapter)[1] == [b"hello"]  # the parent made its loop (and thread, if shared)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = 0 if call(adapter)[1] == [b"hello"] else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    adapter.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
def test_a_forked_child_closes_its_copy_of_the_shared_loop() -> None:
    """The child does not inherit the parent's shared-loop descriptors (epoll, self-pipe)."""
    before = set(os.listdir("/proc/self/fd"))
    adapter = AsgiToWsgi(hello, loop="shared", lifespan="off")
    assert call(adapter)[1] == [b"hello"]
    loop_fds = set(os.listdir("/proc/self/fd")) - before
    assert len(loop_fds) >= 2  # the loop's selector and self-pipe, at least
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            leaked = loop_fds & set(os.listdir("/proc/self/fd"))
            code = 3 if leaked else 0 if call(adapter)[1] == [b"hello"] else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0  # 3: descriptors leaked, 2: no answer
    assert call(adapter)[1] == [b"hello"]  # the parent's loop resumed after the fork
    adapter.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
@pytest.mark.timeout(15)
@pytest.mark.parametrize("mode", MODES)
def test_a_child_closing_its_copies_leaves_the_parents_loops_wakeable(mode: str) -> None:
    """epoll is shared across fork: the child's close must not unregister the parent's pipe."""

    async def via_thread(scope: Scope, receive: Any, send: Any) -> None:
        body = await asyncio.get_running_loop().run_in_executor(None, lambda: b"from a thread")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    adapter = AsgiToWsgi(via_thread, loop=mode, lifespan="off")
    assert call(adapter)[1] == [b"from a thread"]
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            adapter.close()  # closes the child's copies of the parent's loops
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    for _ in range(3):  # each needs a wake-up from another thread (the executor's)
        assert call(adapter)[1] == [b"from a thread"]
    adapter.close()


def test_every_loop_started_is_shut_down_however_threads_come_and_go() -> None:
    """Threads ending while others arrive: each loop gets its shutdown (a race lost some)."""
    for _ in range(30):
        events: list[str] = []
        adapter = AsgiToWsgi(lifespan_app(events))

        def serve_two(adapter: AsgiToWsgi) -> None:
            call(adapter)
            call(adapter)

        wave = [threading.Thread(target=serve_two, args=(adapter,)) for _ in range(3)]
        for t in wave:
            t.start()
        for t in wave:
            t.join(10)
        adapter.close()
        assert events.count("lifespan.startup") == events.count("lifespan.shutdown") >= 1


@pytest.mark.parametrize("how", ["raises", "fails"])
def test_a_failing_lifespan_shutdown_is_logged(how: str, caplog: pytest.LogCaptureFixture) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()
            await send({"type": "lifespan.startup.complete"})
            await receive()
            if how == "raises":
                raise RuntimeError("pool would not close")
            await send({"type": "lifespan.shutdown.failed", "message": "pool would not close"})
            return
        await hello(scope, receive, send)

    adapter = AsgiToWsgi(app)
    assert call(adapter)[1] == [b"hello"]
    adapter.close()
    assert "pool would not close" in caplog.text


def test_bad_response_headers_are_refused_and_the_app_task_ends() -> None:
    finished = threading.Event()

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [("x", "str")]})
        try:
            await send({"type": "http.response.body", "body": b"a", "more_body": True})
            await asyncio.sleep(10)
        finally:
            finished.set()

    with pytest.raises(ASGIProtocolError, match="must be bytes"):
        AsgiToWsgi(app, lifespan="off")(environ(), Started())
    assert finished.wait(5)


def test_a_cancellation_escaping_the_app_is_an_error_not_a_disconnect() -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        raise asyncio.CancelledError

    with pytest.raises(RuntimeError, match="task was cancelled"):
        call(AsgiToWsgi(app, lifespan="off"))


@pytest.mark.parametrize("mode", MODES)
def test_an_echo_in_lock_step_hands_each_chunk_out_before_reading_on(mode: str) -> None:
    """Found on gunicorn: piece k+1 of the body exists only once the server holds echo k."""
    handed: list[bytes] = []
    pieces = [b"aaaa", b"bbbb", b"cccc"]

    class LockStep(io.RawIOBase):
        asked = 0

        def readable(self) -> bool:
            return True

        def read(self, size: int = -1) -> bytes:
            deadline = time.monotonic() + 3  # like a client: wait for the echo, then send more
            while self.asked > len(handed):
                if time.monotonic() > deadline:
                    raise AssertionError("the echo never went out before the next read: deadlock")
                time.sleep(0.001)
            self.asked += 1
            return pieces[self.asked - 1] if self.asked <= len(pieces) else b""

    async def echo(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        while True:
            message = await receive()
            await send({"type": "http.response.body", "body": message["body"], "more_body": True})
            if not message.get("more_body"):
                break
        await send({"type": "http.response.body", "body": b""})

    env = environ("POST", CONTENT_LENGTH="12")
    env["wsgi.input"] = LockStep()
    iterable = AsgiToWsgi(echo, loop=mode, lifespan="off", chunk_size=4)(env, Started())
    handed.extend(iterable)
    iterable.close()
    assert b"".join(handed) == b"aaaabbbbcccc"


@pytest.mark.parametrize("length", ["0", ""], ids=["content-length-0", "no-length"])
def test_an_empty_body_still_gets_its_http_request(length: str) -> None:
    """Found on wsgiref: the first receive() waited for the response instead."""

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        message = await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": repr(message).encode()})

    env = environ("POST", CONTENT_LENGTH=length, **{"wsgi.input_terminated": False})
    started, body = call(AsgiToWsgi(app, lifespan="off", timeout=2), env)
    assert started.calls[0][0] == "200 OK"
    assert b"".join(body) == b"{'type': 'http.request', 'body': b'', 'more_body': False}"


@pytest.mark.parametrize("mode", MODES)
def test_a_head_response_carries_no_body(mode: str) -> None:
    """Starlette, Quart and Django's ASGI handler send a HEAD body and rely on the server to
    drop it, as every ASGI server does; WSGI servers do not, so the adapter does."""

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        headers = [(b"content-length", b"5")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"hello"})

    adapter = AsgiToWsgi(app, loop=mode, lifespan="off")
    started, body = call(adapter, environ("HEAD"))
    assert b"".join(body) == b""
    assert ("Content-Length", "5") in started.calls[0][1] or ("content-length", "5") in [
        (k.lower(), v) for k, v in started.calls[0][1]
    ]
    assert b"".join(call(adapter, environ("GET"))[1]) == b"hello"
    adapter.close()


async def never_answers(scope: Scope, receive: Any, send: Any) -> None:
    await asyncio.Event().wait()  # the timeout cancels it


def answer(app: Any, method: str, server: dict[str, Any]) -> tuple[str, dict[str, str], bytes]:
    """Status, headers and body, up to the app's error that uWSGI gets after bridge's 500."""
    started, chunks = Started(), []
    with contextlib.suppress(KeyError):
        chunks.extend(app(environ(method, **server), started))
    (status, headers), *_ = started.calls
    return status, dict(headers), b"".join(chunks)


@pytest.mark.parametrize(
    ("make", "server", "status"),
    [
        (lambda: AsgiToWsgi(lifespan_app([], startup="failed")), {}, 500),
        (lambda: AsgiToWsgi(never_answers, lifespan="off", timeout=0.05), {}, 504),
        (lambda: AsgiToWsgi(raises, lifespan="off"), UWSGI, 500),
    ],
    ids=["lifespan-failed", "timeout", "uwsgi-app-error"],
)
def test_bridges_own_answers_to_a_head_carry_no_body(
    make: Any, server: dict[str, Any], status: int, caplog: pytest.LogCaptureFixture
) -> None:
    """The rule bridge keeps for the app's responses holds for its own: waitress, cheroot,
    uWSGI and wsgiref send whatever body the iterable yields, HEAD or not."""
    app = make()
    get_status, _, get_body = answer(app, "GET", server)
    head_status, head_headers, head_body = answer(app, "HEAD", server)
    assert get_status == head_status and head_status.startswith(f"{status} ")
    assert get_body and head_body == b""
    # The GET's length: RFC 9110 allows no other value in a HEAD answer's Content-Length.
    assert head_headers["Content-Length"] == str(len(get_body))
    app.close()
