"""Message-level tests of WsgiToAsgi: each drives the ASGI app by hand, as a server would."""

from __future__ import annotations

import asyncio
import contextvars
import io
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from wsgiref.validate import validator

import pytest

from bridge import (
    ClientDisconnected,
    RequestBodyTooLarge,
    WSGIMiddleware,
    WSGIProtocolError,
    WsgiToAsgi,
)
from bridge._streams import READ_AHEAD
from tests.asgi_harness import Conversation, http_scope, request, run

pytestmark = pytest.mark.timeout(20)
Environ = dict[str, Any]


def hello(environ: Environ, start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return [b"hello"]


class Recorder:
    """A WSGI iterable that records what happened to it."""

    def __init__(self, chunks: list[bytes], fail_at: int | None = None) -> None:
        self.chunks = chunks
        self.fail_at = fail_at
        self.closed = threading.Event()

    def __iter__(self) -> Iterator[bytes]:
        for i, chunk in enumerate(self.chunks):
            if i == self.fail_at:
                raise RuntimeError("boom in the middle")
            yield chunk

    def close(self) -> None:
        self.closed.set()


# -- ordinary requests ---------------------------------------------------------------------------


def test_hello_under_wsgiref_validator() -> None:
    result = run(request(WsgiToAsgi(validator(hello))))
    assert result.status == 200
    assert result.header(b"content-type") == b"text/plain"
    assert result.body == b"hello"


def test_complete_body_is_read_without_waiting_on_the_loop() -> None:
    seen: dict[str, Any] = {}

    def app(environ: Environ, start_response: Any) -> list[bytes]:
        stream = environ["wsgi.input"]
        seen["type"] = type(stream)
        seen["lines"] = [stream.readline(), stream.readline(3), stream.read()]
        start_response("200 OK", [])
        return [b"ok"]

    result = run(request(WsgiToAsgi(app), method="POST", body=b"one\ntwo\nthree"))
    assert result.body == b"ok"
    assert seen["type"] is io.BytesIO  # no read can block on the loop
    assert seen["lines"] == [b"one\n", b"two", b"\nthree"]


def test_environ_reaches_the_app() -> None:
    seen: dict[str, Any] = {}

    def app(environ: Environ, start_response: Any) -> list[bytes]:
        seen.update(environ)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return []

    scope = http_scope("/mount/caf\u00e9", root_path="/mount", query_string=b"a=1")
    run(request(WsgiToAsgi(validator(app)), "/mount/café", root_path="/mount", query_string=b"a=1"))
    assert seen["SCRIPT_NAME"] == "/mount"
    assert seen["PATH_INFO"].encode("latin-1").decode() == "/café"
    assert seen["QUERY_STRING"] == "a=1"
    assert seen["asgi.scope"]["path"] == scope["path"]
    assert seen["wsgi.input_terminated"] is True


def test_header_values_go_out_without_surrounding_whitespace() -> None:
    """Django's handler writes cookies with SimpleCookie.output(header=""), a leading space."""

    def app(environ: Environ, start_response: Any) -> list[bytes]:
        headers = [
            ("Content-Type", "text/plain"),
            ("Set-Cookie", " a=1; Path=/"),
            ("Set-Cookie", " b=2 "),
        ]
        start_response("200 OK", headers)
        return [b"ok"]

    result = run(request(WsgiToAsgi(validator(app))))
    assert [v for k, v in result.headers if k == b"set-cookie"] == [b"a=1; Path=/", b"b=2"]


def test_write_callable() -> None:
    def app(environ: Environ, start_response: Any) -> list[bytes]:
        write = start_response("200 OK", [])
        write(b"from write, ")
        return [b"from iterable"]

    assert run(request(WsgiToAsgi(app))).body == b"from write, from iterable"


def test_contextvars_from_asgi_middleware_are_visible() -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")

    def app(environ: Environ, start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        return [var.get().encode()]

    inner = WsgiToAsgi(app)

    async def middleware(scope: Any, receive: Any, send: Any) -> None:
        var.set("set by middleware")
        await inner(scope, receive, send)

    assert run(request(middleware)).body == b"set by middleware"


def test_wsgi_errors_go_to_logging(caplog: pytest.LogCaptureFixture) -> None:
    def app(environ: Environ, start_response: Any) -> list[bytes]:
        environ["wsgi.errors"].write("something odd\n")
        environ["wsgi.errors"].writelines(["a\n", "b\n"])
        environ["wsgi.errors"].flush()
        start_response("200 OK", [])
        return []

    with caplog.at_level(logging.ERROR, logger="bridge.wsgi.errors"):
        run(request(WsgiToAsgi(app)))
    assert [r.getMessage() for r in caplog.records] == ["something odd", "a", "b"]


# -- headers held, state machine ----------------------------------------------------------------


def test_headers_wait_for_the_first_non_empty_chunk() -> None:
    release = threading.Event()

    def app(environ: Environ, start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield b""
        release.wait(5)
        yield b"late"

    async def main() -> None:
        conv = Conversation(WsgiToAsgi(app), http_scope())
        conv.push_body()
        await asyncio.sleep(0.2)
        assert conv.sent_so_far() == []  # headers held: nothing sent before a body byte
        release.set()
        assert (await conv.next())["type"] == "http.response.start"
        assert (await conv.next())["body"] == b"late"

    run(main())


def test_empty_response_sends_headers_at_the_end() -> None:
    def app(environ: Environ, start_response: Any) -> list[bytes]:
        start_response("204 No Content", [])
        return []

    result = run(request(WsgiToAsgi(app)))
    assert result.status == 204
    assert [m["type"] for m in result.messages] == ["http.response.start", "http.response.body"]
    assert result.messages[-1].get("more_body", False) is False


def test_exc_info_replaces_headers_before_any_body() -> None:
    def app(environ: Environ, start_response: Any) -> list[bytes]:
        start_response("200 OK", [("X-First", "1")])
        try:
            raise ValueError("changed my mind")
        except ValueError:
            start_response("500 Internal Server Error", [("X-Second", "2")], sys.exc_info())
        return [b"error page"]

    result = run(request(WsgiToAsgi(app)))
    assert result.status == 500
    assert result.header(b"x-second") == b"2" and result.header(b"x-first") is None


def test_exc_info_after_headers_went_out_reraises() -> None:
    def app(environ: Environ, start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield b"partial"
        try:
            raise KeyError("late failure")
        except KeyError:
            start_response("500 Internal Server Error", [], sys.exc_info())
        yield b"never"

    async def main() -> None:
        conv = Conversation(WsgiToAsgi(app), http_scope())
        conv.push_body()
        assert (await conv.next())["status"] == 200
        with pytest.raises(KeyError, match="late failure"):
            while True:
                message = await conv.next()
                assert message.get("more_body", False), "a failed response must not look whole"

    run(main())


@pytest.mark.parametrize(
    ("app_body", "rule"),
    [
        ("start_response('200', [])", "status"),
        ("start_response('200 OK', [('X', 'a\\r\\nb')])", "CR, LF"),
        ("start_response('200 OK', [('X', b'v')])", "must be str"),
        ("start_response('200 OK', [('Bad Name', 'v')])", "token"),
        ("start_response('200 OK', []); start_response('200 OK', [])", "second time"),
        ("start_response('200 OK', []); return ['text']", "must be bytes"),
        ("return [b'body']", "before start_response"),
        ("return []", "without calling start_response"),
    ],
)
def test_protocol_violations_raise_a_named_error(app_body: str, rule: str) -> None:
    namespace: dict[str, Any] = {}
    exec(f"def app(environ, start_response):\n    {app_body}\n    return []", namespace)
    closed = threading.Event()

    def app(environ: Environ, start_response: Any) -> Any:
        result = namespace["app"](environ, start_response)
        return Recorder(list(result)) if isinstance(result, list) else result

    async def main() -> None:
        conv = Conversation(WsgiToAsgi(app), http_scope())
        conv.push_body()
        with pytest.raises(WSGIProtocolError, match=rule):
            await conv.finish()
        assert conv.sent_so_far() == []  # the server answers 500: no half response from us

    run(main())
    del closed


# -- errors and close() -------------------------------------------------------------------------


def test_error_before_headers_propagates_and_close_is_called() -> None:
    body = Recorder([b"never"], fail_at=0)

    def app(environ: Environ, start_response: Any) -> Recorder:
        start_response("200 OK", [])
        return body

    async def main() -> None:
        conv = Conversation(WsgiToAsgi(app), http_scope())
        conv.push_body()
        with pytest.raises(RuntimeError, match="boom"):
            await conv.finish()
        assert conv.sent_so_far() == []

    run(main())
    assert body.closed.is_set()


def test_error_after_headers_propagates_without_a_final_message() -> None:
    body = Recorder([b"a", b"b", b"c"], fail_at=2)

    def app(environ: Environ, start_response: Any) -> Recorder:
        start_response("200 OK", [])
        return body

    async def main() -> None:
        conv = Conversation(WsgiToAsgi(app), http_scope())
        conv.push_body()
        with pytest.raises(RuntimeError, match="boom"):
            await conv.finish()
        messages = conv.sent_so_far()
        assert messages[0]["type"] == "http.response.start"
        assert all(m.get("more_body") for m in messages[1:])  # never a whole-looking response

    run(main())
    assert body.closed.is_set()


def test_app_call_raising_is_propagated() -> None:
    def app(environ: Environ, start_response: Any) -> list[bytes]:
        raise LookupError("no such thing")

    with pytest.raises(LookupError):
        run(request(WsgiToAsgi(app)))


def test_close_is_called_on_success() -> None:
    body = Recorder([b"a", b"b"])

    def app(environ: Environ, start_response: Any) -> Recorder:
        start_response("200 OK", [])
        return body

    assert run(request(WsgiToAsgi(app))).body == b"ab"
    assert body.closed.wait(2)


# -- streaming, both ways -----------------------------------------------------------------------


def test_response_streams_chunk_by_chunk() -> None:
    """Chunk two is only made after the client holds chunk one: a buffering adapter deadlocks."""
    got_first = threading.Event()

    def app(environ: Environ, start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield b"one"
        if not got_first.wait(5):
            raise AssertionError("chunk one never reached the client")
        yield b"two"

    async def main() -> None:
        conv = Conversation(WsgiToAsgi(app), http_scope())
        conv.push_body()
        assert (await conv.next())["type"] == "http.response.start"
        first = await conv.next()
        assert first["body"] == b"one" and first["more_body"] is True
        got_first.set()
        rest = b""
        while (message := await conv.next())["more_body"]:
            rest += message["body"]
        assert rest + message["body"] == b"two"
        await conv.finish()

    run(main())


def test_request_body_streams_into_wsgi_input() -> None:
    """The app reads chunk one while the client still holds chunk two."""
    read_first = threading.Event()

    def app(environ: Environ, start_response: Any) -> list[bytes]:
        stream = environ["wsgi.input"]
        first = stream.read(5)
        read_first.set()
        rest = stream.read()
        start_response("200 OK", [])
        return [first + b"|" + rest]

    async def main() -> None:
        conv = Conversation(WsgiToAsgi(app, hold_body=0), http_scope(method="POST"))
        conv.push_body(b"first", more=True)
        assert await asyncio.to_thread(read_first.wait, 5), "the app waited for the whole body"
        conv.push_body(b"second", more=True)
        conv.push_body(b"third")
        assert (await conv.next())["status"] == 200
        assert (await conv.next())["body"] == b"first|secondthird"

    run(main())


@pytest.mark.parametrize(
    "reader",
    [
        lambda s: s.read(),
        lambda s: s.read(-1),
        lambda s: b"".join(iter(lambda: s.read(3), b"")),
        lambda s: b"".join(s.readlines()),
        lambda s: b"".join(s),
        lambda s: b"".join(iter(s.readline, b"")),
        lambda s: b"".join(iter(lambda: s.readline(2), b"")),
    ],
)
def test_streamed_wsgi_input_reads(reader: Any) -> None:
    def app(environ: Environ, start_response: Any) -> list[bytes]:
        data = reader(environ["wsgi.input"])
        start_response("200 OK", [])
        return [data]

    chunks = [b"ab\nc", b"", b"d\n\nef", b"g\n"]
    result = run(request(WsgiToAsgi(app), method="POST", chunks=chunks))
    assert result.body == b"ab\ncd\n\nefg\n"


def test_empty_streamed_body_reads() -> None:
    def app(environ: Environ, start_response: Any) -> list[bytes]:
        stream = environ["wsgi.input"]
        start_response("200 OK", [])
        return [repr((stream.read(), stream.readline(), stream.readlines())).encode()]

    result = run(request(WsgiToAsgi(app), method="POST", chunks=[b"", b""]))
    assert result.body == b"(b'', b'', [])"


def test_back_pressure_holds_the_thread_not_memory() -> None:
    """With the client not reading, the app may get only a bounded amount ahead."""
    produced = 0
    unblock = asyncio.Event()

    def app(environ: Environ, start_response: Any) -> Iterator[bytes]:
        nonlocal produced
        start_response("200 OK", [])
        for _ in range(200):  # 200 x 64 KiB = 12.5 MiB if nothing held it back
            produced += 1
            yield b"x" * 65536

    async def slow_send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            await unblock.wait()

    async def main() -> None:
        conv = Conversation(WsgiToAsgi(app), http_scope(), send=slow_send)
        conv.push_body()
        await asyncio.sleep(0.5)
        assert produced <= 12, f"the app ran {produced} chunks ahead of a stalled client"
        unblock.set()
        await conv.finish()
        assert produced == 200

    run(main())


# -- disconnects --------------------------------------------------------------------------------


def endless(closed: threading.Event) -> Any:
    def app(environ: Environ, start_response: Any) -> Any:
        def body() -> Iterator[bytes]:
            try:
                while True:
                    yield b"tick"
                    time.sleep(0.01)
            finally:
                closed.set()

        start_response("200 OK", [])
        return body()

    return app


def test_disconnect_seen_on_receive_stops_the_stream() -> None:
    closed = threading.Event()

    async def main() -> None:
        conv = Conversation(WsgiToAsgi(endless(closed)), http_scope())
        conv.push_body()
        await conv.next()
        await conv.next()
        conv.push({"type": "http.disconnect"})
        await conv.finish(timeout=2)

    run(main())
    assert closed.wait(1), "close() was not called within a second of the disconnect"


def test_send_raising_oserror_stops_the_stream() -> None:
    closed = threading.Event()
    sent = 0

    async def broken_send(message: dict[str, Any]) -> None:
        nonlocal sent
        sent += 1
        if sent > 2:
            raise ConnectionResetError("peer gone")

    async def main() -> None:
        conv = Conversation(WsgiToAsgi(endless(closed)), http_scope(), send=broken_send)
        conv.push_body()
        await conv.finish(timeout=2)

    run(main())
    assert closed.wait(1)


def test_disconnect_mid_body_raises_oserror_from_wsgi_input() -> None:
    raised: list[BaseException] = []
    done = threading.Event()

    def app(environ: Environ, start_response: Any) -> list[bytes]:
        try:
            environ["wsgi.input"].read()
        except OSError as exc:
            raised.append(exc)
            raise
        finally:
            done.set()
        start_response("200 OK", [])
        return [b"not reached"]

    async def main() -> None:
        conv = Conversation(WsgiToAsgi(app, hold_body=0), http_scope(method="POST"))
        conv.push_body(b"part", more=True)
        conv.push({"type": "http.disconnect"})
        await conv.finish()  # the client is gone: nothing to answer, nothing raised
        assert conv.sent_so_far() == []

    run(main())
    assert done.wait(2)
    assert isinstance(raised[0], ClientDisconnected)


# -- limits -------------------------------------------------------------------------------------


def test_backlog_full_answers_503_at_once() -> None:
    gate = threading.Event()
    running = threading.Semaphore(0)

    def app(environ: Environ, start_response: Any) -> list[bytes]:
        running.release()
        gate.wait(5)
        start_response("200 OK", [])
        return [b"ok"]

    adapter = WsgiToAsgi(app, threads=1, backlog=1)

    async def main() -> None:
        first = asyncio.ensure_future(request(adapter))
        await asyncio.to_thread(running.acquire, True, 5)
        second = asyncio.ensure_future(request(adapter))  # waits for the thread
        await asyncio.sleep(0.05)
        third = await asyncio.wait_for(request(adapter), 2)
        assert third.status == 503
        assert third.header(b"retry-after") == b"1"
        gate.set()
        assert (await first).status == 200 and (await second).status == 200
        assert (await request(adapter)).status == 200  # the slot came back

    run(main())


def test_declared_body_over_limit_gets_413_without_running_the_app(
    caplog: pytest.LogCaptureFixture,
) -> None:
    called = []

    def app(environ: Environ, start_response: Any) -> list[bytes]:
        called.append(True)
        return []

    headers = [(b"content-length", b"11")]
    adapter = WsgiToAsgi(app, max_body_size=10)
    result = run(request(adapter, method="POST", body=b"x" * 11, headers=headers))
    assert result.status == 413 and not called
    # One line naming the rule, the same words as AsgiToWsgi's; counted once.
    lines = [r.getMessage() for r in caplog.records if r.name == "bridge"]  # not asyncio's
    assert lines == ["bridge: 413 for POST /: request body over max_body_size=10"]
    assert adapter.stats()["too_large_413"] == 1


def test_streamed_body_over_limit_raises_in_wsgi_input_and_answers_413() -> None:
    raised: list[BaseException] = []

    def app(environ: Environ, start_response: Any) -> list[bytes]:
        try:
            environ["wsgi.input"].read()
        except RequestBodyTooLarge as exc:
            raised.append(exc)
        # Like Flask, turn the error into a page of its own; the client still learns the truth.
        start_response("500 Internal Server Error", [])
        return [b"my error page"]

    result = run(
        request(
            WsgiToAsgi(app, max_body_size=10, hold_body=0), method="POST", chunks=[b"x" * 6] * 3
        )
    )
    assert result.status == 413
    assert raised and isinstance(raised[0], RequestBodyTooLarge)


def test_body_within_limit_passes() -> None:
    def app(environ: Environ, start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        return [environ["wsgi.input"].read()]

    result = run(
        request(WsgiToAsgi(app, max_body_size=10), method="POST", chunks=[b"12345", b"67890"])
    )
    assert result.body == b"1234567890"


def test_threads_bound_concurrency_and_a_shared_executor_is_used() -> None:
    names: list[str] = []
    lock = threading.Lock()
    active = peak = 0

    def app(environ: Environ, start_response: Any) -> list[bytes]:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
            names.append(threading.current_thread().name)
        time.sleep(0.05)
        with lock:
            active -= 1
        start_response("200 OK", [])
        return [b"ok"]

    with ThreadPoolExecutor(2, thread_name_prefix="shared-pool") as pool:
        one, two = WsgiToAsgi(app, executor=pool), WsgiToAsgi(app, executor=pool)

        async def main() -> None:
            results = await asyncio.gather(*(request(a) for a in [one, two] * 4))
            assert all(r.status == 200 for r in results)

        run(main())
    assert peak <= 2
    assert all(name.startswith("shared-pool") for name in names)


def test_invalid_threads() -> None:
    with pytest.raises(ValueError, match="threads"):
        WsgiToAsgi(hello, threads=0)


# -- other scopes, file wrapper, aliases ---------------------------------------------------------


def test_lifespan_is_answered_and_shuts_the_pool_down() -> None:
    adapter = WsgiToAsgi(hello)
    before = set(threading.enumerate())

    async def main() -> None:
        assert (await request(adapter)).status == 200
        # The pool's threads, started by that request (taken now: they may end at any moment
        # once the shutdown is answered).
        pool = [t for t in set(threading.enumerate()) - before if t.name.startswith("bridge-wsgi")]
        assert pool
        conv = Conversation(adapter, {"type": "lifespan", "asgi": {"version": "3.0"}})
        conv.push({"type": "lifespan.startup"})
        assert (await conv.next())["type"] == "lifespan.startup.complete"
        conv.push({"type": "lifespan.shutdown"})
        assert (await conv.next())["type"] == "lifespan.shutdown.complete"
        await conv.finish()
        for thread in pool:  # the pool's threads end once the shutdown is answered
            await asyncio.get_running_loop().run_in_executor(None, thread.join, 5)
        assert not any(t.is_alive() for t in pool)
        assert (await request(adapter)).status == 200  # a new pool after a restart

    run(main())


def test_websocket_is_refused_before_accept() -> None:
    async def main() -> None:
        conv = Conversation(WsgiToAsgi(hello), {"type": "websocket", "path": "/"})
        conv.push({"type": "websocket.connect"})
        assert (await conv.next())["type"] == "websocket.close"
        await conv.finish()

    run(main())


def test_unknown_scope_type_raises() -> None:
    with pytest.raises(Exception, match="unsupported ASGI scope"):
        run(WsgiToAsgi(hello)({"type": "smtp"}, None, None))  # type: ignore[arg-type]


def file_app(path: Path) -> Any:
    def app(environ: Environ, start_response: Any) -> Any:
        start_response("200 OK", [("Content-Length", str(path.stat().st_size))])
        return environ["wsgi.file_wrapper"](path.open("rb"), 4)

    return app


def test_file_wrapper_uses_pathsend_when_the_server_offers_it(tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(b"0123456789")

    async def main() -> None:
        scope = http_scope(extensions={"http.response.pathsend": {}})
        conv = Conversation(WsgiToAsgi(file_app(path)), scope)
        conv.push_body()
        assert (await conv.next())["type"] == "http.response.start"
        assert await conv.next() == {"type": "http.response.pathsend", "path": str(path)}
        await conv.finish()

    run(main())


def test_file_wrapper_under_a_shorter_content_length_is_iterated_not_pathsent(
    tmp_path: Path,
) -> None:
    """A Range served by hand from the file's start (Django's FileResponse, a bytes=0-N request):
    pathsend would make the server send the whole file under the app's Content-Length."""
    path = tmp_path / "data.bin"
    path.write_bytes(b"0123456789")

    def app(environ: Environ, start_response: Any) -> Any:
        start_response("206 Partial Content", [("Content-Length", "6")])
        return environ["wsgi.file_wrapper"](path.open("rb"), 4)

    result = run(request(WsgiToAsgi(app), extensions={"http.response.pathsend": {}}))
    assert (result.status, result.body) == (206, b"012345")


def test_file_wrapper_streams_blocks_without_pathsend(tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(b"0123456789")
    assert run(request(WsgiToAsgi(file_app(path)))).body == b"0123456789"


def test_file_wrapper_without_a_path_is_iterated() -> None:
    def app(environ: Environ, start_response: Any) -> Any:
        start_response("200 OK", [])
        return environ["wsgi.file_wrapper"](io.BytesIO(b"in memory"))

    result = run(request(WsgiToAsgi(app), extensions={"http.response.pathsend": {}}))
    assert result.body == b"in memory"


def test_drop_in_alias_takes_a2wsgi_signature() -> None:
    adapter = WSGIMiddleware(hello, workers=3, send_queue_size=5)
    assert adapter.threads == 3
    assert run(request(adapter)).body == b"hello"


def test_empty_first_chunk_of_a_streamed_body_is_not_the_end() -> None:
    def app(environ: Environ, start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        return [environ["wsgi.input"].read()]

    result = run(request(WsgiToAsgi(app), method="POST", chunks=[b"", b"", b"body"]))
    assert result.body == b"body"


def test_an_empty_write_call_sends_the_headers() -> None:
    """PEP 3333: headers go out at the first non-empty chunk *or* the first write() call."""
    release = threading.Event()

    def app(environ: Environ, start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])(b"")
        release.wait(5)
        yield b"body"

    async def main() -> None:
        conv = Conversation(WsgiToAsgi(app), http_scope())
        conv.push_body()
        assert (await conv.next())["type"] == "http.response.start"
        release.set()
        assert (await conv.next())["body"] == b"body"

    run(main())


def test_file_wrapper_after_write_streams_instead_of_pathsend(tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(b"file")

    def app(environ: Environ, start_response: Any) -> Any:
        start_response("200 OK", [])(b"written ")
        return environ["wsgi.file_wrapper"](path.open("rb"))

    result = run(request(WsgiToAsgi(app), extensions={"http.response.pathsend": {}}))
    assert result.body == b"written file"
    assert all(m["type"] != "http.response.pathsend" for m in result.messages)


def test_client_gone_before_its_request_arrived() -> None:
    called = []

    def app(environ: Environ, start_response: Any) -> list[bytes]:
        called.append(True)
        return []

    async def main() -> None:
        adapter = WsgiToAsgi(app, threads=1, backlog=0)
        conv = Conversation(adapter, http_scope(method="POST"))
        conv.push({"type": "http.disconnect"})
        await conv.finish()
        assert conv.sent_so_far() == [] and not called
        assert (await request(WsgiToAsgi(hello, threads=1, backlog=0))).status == 200

    run(main())


def test_first_chunk_over_the_limit_gets_413() -> None:
    result = run(request(WsgiToAsgi(hello, max_body_size=3), method="POST", body=b"four"))
    assert result.status == 413


@pytest.mark.parametrize(
    "lengths",
    [[b"lots"], [b"+10"], [b"-5"], [b"1_0"], [" ١٠".encode()], [b"10", b"11"], [b"10, 11"], [b""]],
    ids=["word", "plus", "negative", "underscore", "arabic-indic", "two-lines", "list", "empty"],
)
def test_a_content_length_that_is_not_one_plain_number_gets_400(
    lengths: list[bytes], caplog: pytest.LogCaptureFixture
) -> None:
    """RFC 9110: ``1*DIGIT``. ``int()`` takes most of these; a body framed by one reading and
    read by another is how requests get smuggled. The app never runs."""
    ran: list[bool] = []

    def app(environ: Environ, start_response: Any) -> list[bytes]:
        ran.append(True)
        start_response("200 OK", [])
        return []

    headers = [(b"content-length", length) for length in lengths]
    result = run(request(WsgiToAsgi(app), method="POST", headers=headers))
    assert (result.status, ran) == (400, [])
    assert [r.getMessage() for r in caplog.records if "400" in r.getMessage()] == [
        f"bridge: 400 for POST /: content-length must be one number of ASCII digits (RFC 9110),"
        f" got {', '.join(length.decode('latin-1') for length in lengths)!r}"
    ]


def test_the_same_content_length_twice_is_one_length() -> None:
    def app(environ: Environ, start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        return [environ["CONTENT_LENGTH"].encode(), environ["wsgi.input"].read()]

    headers = [(b"content-length", b"4"), (b"content-length", b"4")]
    result = run(request(WsgiToAsgi(app), method="POST", headers=headers, body=b"four"))
    assert (result.status, result.body) == (200, b"4four")


def test_more_than_100_lines_of_one_header_get_400(caplog: pytest.LogCaptureFixture) -> None:
    """asgiref's precedent (CVE-2025-14550): joining thousands of repeats stalled the loop."""

    def app(environ: Environ, start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        return [environ["HTTP_X_MANY"].encode()]

    at_limit = [(b"x-many", b"v")] * 100
    result = run(request(WsgiToAsgi(app), headers=at_limit))
    assert (result.status, result.body) == (200, b", ".join([b"v"] * 100))
    result = run(request(WsgiToAsgi(app), headers=[(b"x-many", b"v")] * 32_000))
    assert result.status == 400
    assert "more than 100 'x-many' header lines" in caplog.text


def test_body_over_the_limit_after_the_response_started_drops_the_connection() -> None:
    def app(environ: Environ, start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield b"started"
        yield environ["wsgi.input"].read()

    async def main() -> None:
        conv = Conversation(
            WsgiToAsgi(app, max_body_size=4, hold_body=0), http_scope(method="POST")
        )
        conv.push_body(b"abc", more=True)
        assert (await conv.next())["status"] == 200
        assert (await conv.next())["body"] == b"started"
        conv.push_body(b"defgh")
        with pytest.raises(RequestBodyTooLarge):
            await conv.finish()

    run(main())


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")  # 3.12+: fork with threads
def test_an_adapter_used_before_fork_serves_in_the_child() -> None:
    gate = threading.Event()

    def app(environ: Environ, start_response: Any) -> list[bytes]:
        gate.wait(5)
        start_response("200 OK", [])
        return [b"pid %d" % os.getpid()]

    adapter = WsgiToAsgi(app, threads=1, backlog=0)

    async def parent_busy() -> asyncio.Future[Any]:
        busy = asyncio.ensure_future(request(adapter))
        await asyncio.sleep(0.1)  # the parent's only thread is inside the app
        return busy

    loop = asyncio.new_event_loop()
    busy = loop.run_until_complete(parent_busy())
    pid = os.fork()
    if pid == 0:  # the child: its pool is fresh, its slot count empty
        code = 1
        try:
            gate.set()
            result = asyncio.run(asyncio.wait_for(request(adapter), 5))
            code = 0 if result.body == b"pid %d" % os.getpid() else 2
        finally:
            os._exit(code)
    gate.set()
    assert loop.run_until_complete(busy).status == 200
    loop.close()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_disconnect_is_seen_while_an_unread_body_fills_the_read_ahead() -> None:
    """Found by the e2e suite: the pump sat on a full read-ahead and missed the disconnect."""
    closed = threading.Event()

    async def main() -> None:
        conv = Conversation(WsgiToAsgi(endless(closed), hold_body=0), http_scope(method="POST"))
        # A longer body, never read: its first READ_AHEAD bytes fill the read-ahead (each message
        # costs a little more than its bytes), and the client then leaves without sending more.
        for _ in range(READ_AHEAD // 65536):
            conv.push_body(b"a" * 65536, more=True)
        assert (await conv.next())["status"] == 200
        await conv.next()
        conv.push({"type": "http.disconnect"})
        await conv.finish(timeout=2)

    run(main())
    assert closed.wait(1), "close() was not called within a second of the disconnect"


def test_an_absurd_content_length_is_a_413_under_a_limit_and_harmless_without() -> None:
    """30 digits: a number, so not a 400; over any max_body_size at once, before a body byte is
    read; without a limit the app reads what the server delivers (it frames the body)."""
    ran: list[str] = []

    def app(environ: Environ, start_response: Any) -> list[bytes]:
        ran.append(environ["CONTENT_LENGTH"])
        start_response("200 OK", [])
        return [environ["wsgi.input"].read()]

    headers = [(b"content-length", b"9" * 30)]
    limited = run(request(WsgiToAsgi(app, max_body_size=10**9), method="POST", headers=headers))
    assert (limited.status, ran) == (413, [])
    unlimited = run(request(WsgiToAsgi(app), method="POST", headers=headers, body=b"small"))
    assert (unlimited.status, unlimited.body, ran) == (200, b"small", ["9" * 30])
