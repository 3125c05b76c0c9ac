"""WSGI -> ASGI conformance: the SPEC.md rules that tell adapters apart, each run against bridge,
a2wsgi's ``WSGIMiddleware`` and asgiref's ``WsgiToAsgi``, in process (the ASGI server is
``tests/asgi_harness.py``). A peer's failure is a strict xfail naming what it does instead; the
titles are the rows of ``docs/conformance.md`` (``scripts/conformance``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.asgi_harness import WAIT, Conversation, http_scope, request, run
from tests.peers import W2A, Broken, Factory, check, no_option
from tests.test_wsgi_to_asgi import Recorder

MiB = 1024 * 1024

pytestmark = pytest.mark.timeout(30)
Environ = dict[str, Any]
FILE = Path(__file__)  # any real file


def hello(environ: Environ, start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


def environ_seen(make: Factory, path: str = "/", **scope: Any) -> Environ:
    """The environ the WSGI app was called with, for one GET built from ``scope``."""
    seen: list[Environ] = []

    def app(environ: Environ, start_response: Any) -> list[bytes]:
        seen.append(dict(environ))
        return hello(environ, start_response)

    assert run(request(make(app), path, **scope)).body == b"hello"
    return seen[0]


def split(make: Factory, path: str, root_path: str) -> tuple[str, str]:
    """(SCRIPT_NAME, PATH_INFO) for a request to ``path`` under ``root_path``."""
    environ = environ_seen(make, path, root_path=root_path)
    return environ["SCRIPT_NAME"], environ["PATH_INFO"]


async def rest_of(conv: Conversation) -> bytes:
    """The rest of the response body, then the call's own end (or error)."""
    messages = [await conv.next()]
    while messages[-1]["type"] == "http.response.start" or messages[-1].get("more_body", False):
        messages.append(await conv.next())
    await conv.finish()
    return b"".join(m.get("body", b"") for m in messages)


# -- streaming both ways ------------------------------------------------------------------------


@check(
    W2A,
    "Request body streams: the app reads chunk 1 (1 MiB) before chunk 2 is sent",
    asgiref="asgiref reads the whole body into a file before it calls the app",
)
def test_request_body_streams(make: Factory) -> None:
    first_read = threading.Event()

    def app(environ: Environ, start_response: Any) -> list[bytes]:
        first = environ["wsgi.input"].read(MiB)
        first_read.set()
        rest = environ["wsgi.input"].read()
        start_response("200 OK", [])
        return [first[:5] + b"|" + rest]

    # 1 MiB: bridge holds up to that much of a body on the loop before the app gets a thread.
    async def main() -> tuple[bool, bytes]:
        conv = Conversation(make(app), http_scope(method="POST"))
        conv.push_body(b"first" + b"." * (MiB - 5), more=True)
        streamed = await asyncio.to_thread(first_read.wait, WAIT)
        conv.push_body(b"second")
        return streamed, await rest_of(conv)

    assert run(main()) == (True, b"first|second")


@check(W2A, "Response streams: chunk 1 is sent before the app makes chunk 2")
def test_response_streams(make: Factory) -> None:
    client_has_first = threading.Event()

    def app(environ: Environ, start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield b"one"
        yield b"two" if client_has_first.wait(2 * WAIT) else b"held back"

    async def main() -> list[bytes]:
        conv = Conversation(make(app), http_scope())
        conv.push_body()
        try:
            assert (await conv.next())["type"] == "http.response.start"
            first = (await conv.next())["body"]
        finally:
            client_has_first.set()
        return [first, await rest_of(conv)]

    assert run(main()) == [b"one", b"two"]


@check(W2A, "Constant memory: a 64 MiB body is never held whole")
def test_constant_memory_on_a_big_body(make: Factory) -> None:
    total, piece = 64 * 1024 * 1024, 64 * 1024

    def app(environ: Environ, start_response: Any) -> list[bytes]:
        size = 0
        while data := environ["wsgi.input"].read(piece):
            size += len(data)
        start_response("200 OK", [])
        return [str(size).encode()]

    async def main() -> tuple[bytes, int]:
        sent, done, body = 0, asyncio.Event(), []

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent == total:
                await done.wait()
                return {"type": "http.disconnect"}
            sent += piece
            return {"type": "http.request", "body": bytes(piece), "more_body": sent < total}

        async def send(message: dict[str, Any]) -> None:
            body.append(message.get("body", b""))
            if message["type"] == "http.response.body" and not message.get("more_body"):
                done.set()

        tracemalloc.start()
        try:
            await asyncio.wait_for(make(app)(http_scope(method="POST"), receive, send), 6 * WAIT)
            return b"".join(body), tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    body, peak = run(main())
    assert body == str(total).encode()
    assert peak < 8 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB for a 64 MiB body"


@check(W2A, "An empty first body chunk is not the end of the body")
def test_empty_first_chunk_is_not_eof(make: Factory) -> None:
    def app(environ: Environ, start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        return [environ["wsgi.input"].read()]

    assert run(request(make(app), method="POST", chunks=[b"", b"data"])).body == b"data"


@check(
    W2A,
    "Client gone mid-body: wsgi.input raises OSError, never a truncated EOF",
    a2wsgi="a2wsgi reads the http.disconnect as the end of the body: the app gets 5 of 10 bytes",
)
def test_disconnect_mid_body_is_an_error(make: Factory) -> None:
    outcome: list[str] = []

    def app(environ: Environ, start_response: Any) -> list[bytes]:
        try:
            data = environ["wsgi.input"].read()
        except OSError:
            outcome.append("OSError")
            raise
        outcome.append(f"read {len(data)} of 10 bytes")
        start_response("200 OK", [])
        return [data]

    async def main() -> None:
        conv = Conversation(
            make(app), http_scope(method="POST", headers=[(b"content-length", b"10")])
        )
        conv.push_body(b"first", more=True)
        conv.push({"type": "http.disconnect"})
        # The adapter may raise the disconnect on, or not: not the rule here.
        with contextlib.suppress(Exception):
            await conv.finish()

    run(main())
    assert outcome in (["OSError"], []), outcome  # [] : the app never ran on a partial body


@check(
    W2A,
    "Client gone mid-response: iteration stops, close() runs",
    a2wsgi="a2wsgi never watches receive() while it streams: the app makes all its chunks",
    asgiref="asgiref never watches receive() while it streams: the app makes all its chunks",
)
def test_disconnect_mid_response_stops_the_app(make: Factory) -> None:
    closed = threading.Event()
    produced: list[int] = []

    def app(environ: Environ, start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        try:
            for i in range(200):  # 2 s at most, whatever the adapter does
                produced.append(i)
                yield b"tick"
                closed.wait(0.01)
        finally:
            closed.set()

    async def main() -> None:
        conv = Conversation(make(app), http_scope())
        conv.push_body()
        await conv.next()  # the start
        await conv.next()  # a first tick
        conv.push({"type": "http.disconnect"})
        with contextlib.suppress(OSError):
            await conv.finish(2 * WAIT)

    run(main())
    assert closed.is_set() and len(produced) < 200, f"{len(produced)} chunks made"


# -- the response ---------------------------------------------------------------------------------


@check(
    W2A,
    "Content-Length clamp: never more bytes than the app declared",
    a2wsgi="a2wsgi sends every byte the app yields past its Content-Length",
)
def test_content_length_clamp(make: Factory) -> None:
    def app(environ: Environ, start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Length", "3")])
        return [b"hello", b"more"]

    assert run(request(make(app))).body == b"hel"


@check(
    W2A,
    "close() is called after a complete response",
    asgiref="asgiref never calls the iterable's close()",
)
def test_close_after_success(make: Factory) -> None:
    iterable = Recorder([b"a", b"b"])

    def app(environ: Environ, start_response: Any) -> Recorder:
        start_response("200 OK", [])
        return iterable

    assert run(request(make(app))).body == b"ab"
    assert iterable.closed.is_set()


@check(
    W2A,
    "close() is called when the iterable raises",
    asgiref="asgiref never calls the iterable's close()",
)
def test_close_after_an_error(make: Factory) -> None:
    iterable = Recorder([b"a", b"b"], fail_at=1)

    def app(environ: Environ, start_response: Any) -> Recorder:
        start_response("200 OK", [])
        return iterable

    with pytest.raises(RuntimeError):
        run(request(make(app)))
    assert iterable.closed.is_set()


@check(W2A, "An app error before the response propagates out of the ASGI call")
def test_error_before_the_response_propagates(make: Factory) -> None:
    def app(environ: Environ, start_response: Any) -> list[bytes]:
        raise LookupError("before the response")

    with pytest.raises(LookupError):
        run(request(make(app)))


@check(W2A, "An app error after the first chunk propagates (connection dropped)")
def test_error_mid_stream_propagates(make: Factory) -> None:
    def app(environ: Environ, start_response: Any) -> Recorder:
        start_response("200 OK", [])
        return Recorder([b"part", b"never"], fail_at=1)

    with pytest.raises(RuntimeError):
        run(request(make(app)))


@check(W2A, "Two Set-Cookie headers stay two headers")
def test_two_set_cookie_headers(make: Factory) -> None:
    def app(environ: Environ, start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2; HttpOnly")])
        return [b""]

    result = run(request(make(app)))
    assert [v for k, v in result.headers if k == b"set-cookie"] == [b"a=1", b"b=2; HttpOnly"]


@check(W2A, "204 and 304 go out without a body")
def test_no_body_statuses(make: Factory) -> None:
    def app(environ: Environ, start_response: Any) -> list[bytes]:
        start_response(environ["PATH_INFO"][1:] + " Whatever", [])
        return []

    for status in (204, 304):
        result = run(request(make(app), f"/{status}"))
        assert (result.status, result.body) == (status, b"")
        assert result.header(b"content-length") in (None, b"0")


@check(
    W2A,
    "wsgi.file_wrapper is offered",
    a2wsgi=Broken("a2wsgi's environ has no wsgi.file_wrapper", KeyError),
    asgiref=Broken("asgiref's environ has no wsgi.file_wrapper", KeyError),
)
def test_file_wrapper(make: Factory) -> None:
    def app(environ: Environ, start_response: Any) -> Any:
        start_response("200 OK", [])
        return environ["wsgi.file_wrapper"](FILE.open("rb"))

    assert run(request(make(app))).body == FILE.read_bytes()


@check(
    W2A,
    "wsgi.file_wrapper sends the file with http.response.pathsend when offered",
    a2wsgi=Broken("a2wsgi has no wsgi.file_wrapper, and never sends pathsend", KeyError),
    asgiref=Broken("asgiref has no wsgi.file_wrapper, and never sends pathsend", KeyError),
)
def test_file_wrapper_uses_pathsend(make: Factory) -> None:
    def app(environ: Environ, start_response: Any) -> Any:
        start_response("200 OK", [])
        return environ["wsgi.file_wrapper"](FILE.open("rb"))

    result = run(request(make(app), extensions={"http.response.pathsend": {}}))
    assert result.messages[1] == {"type": "http.response.pathsend", "path": str(FILE)}


@check(
    W2A,
    "max_body_size: a body over the limit gets 413, the app never runs",
    a2wsgi=no_option("max_body_size"),
    asgiref=no_option("max_body_size"),
)
def test_max_body_size(make: Factory) -> None:
    ran: list[bool] = []

    def app(environ: Environ, start_response: Any) -> list[bytes]:
        ran.append(True)
        return hello(environ, start_response)

    headers = [(b"content-length", b"2048")]
    result = run(request(make(app, max_body_size=1024), body=bytes(2048), headers=headers))
    assert (result.status, ran) == (413, [])


@check(
    W2A,
    "backlog: a request beyond threads + backlog gets 503 at once",
    a2wsgi=no_option("threads/backlog"),
    asgiref=no_option("threads/backlog"),
)
def test_backlog_full_is_503(make: Factory) -> None:
    entered, release = threading.Event(), threading.Event()

    def app(environ: Environ, start_response: Any) -> list[bytes]:
        entered.set()
        release.wait(2 * WAIT)
        return hello(environ, start_response)

    async def main() -> tuple[int, bytes]:
        adapter = make(app, threads=1, backlog=0)
        busy = Conversation(adapter, http_scope())
        busy.push_body()
        try:
            assert await asyncio.to_thread(entered.wait, WAIT), "the first request never ran"
            refused = await request(adapter)
        finally:
            release.set()
        return refused.status, await rest_of(busy)

    assert run(main()) == (503, b"hello")


@check(
    W2A,
    "Content-Length must be 1*DIGIT: '+10' gets 400, the app never runs",
    a2wsgi="a2wsgi passes CONTENT_LENGTH '+10' on, which int() reads as 10",
    asgiref="asgiref passes CONTENT_LENGTH '+10' on, which int() reads as 10",
)
def test_content_length_must_be_digits(make: Factory) -> None:
    ran: list[str] = []

    def app(environ: Environ, start_response: Any) -> list[bytes]:
        ran.append(environ.get("CONTENT_LENGTH", ""))
        return hello(environ, start_response)

    headers = [(b"content-length", b"+10")]
    result = run(request(make(app), method="POST", body=b"0123456789", headers=headers))
    assert (result.status, ran) == (400, [])


@check(
    W2A,
    "More than 100 lines of one request header get 400",
    a2wsgi="a2wsgi joins any number of repeats (string concatenation, quadratic)",
)
def test_header_repeats_are_capped(make: Factory) -> None:
    result = run(request(make(hello), headers=[(b"x-many", b"v")] * 1000))
    assert result.status == 400


@check(
    W2A,
    "timeout: a response not started in time gets 504",
    a2wsgi=no_option("timeout"),
    asgiref=no_option("timeout"),
)
def test_timeout_is_504(make: Factory) -> None:
    release = threading.Event()

    def app(environ: Environ, start_response: Any) -> list[bytes]:
        release.wait(2 * WAIT)
        return hello(environ, start_response)

    try:
        result = run(request(make(app, timeout=0.2)))
    finally:
        release.set()
    assert result.status == 504


@check(
    W2A,
    "Slow uploads hold no thread: with 16 waiting on their body, a plain request is served",
    a2wsgi="a2wsgi gives each upload one of its 10 threads at once, to wait on the body",
)
def test_slow_uploads_hold_no_thread(make: Factory) -> None:
    def app(environ: Environ, start_response: Any) -> list[bytes]:
        environ["wsgi.input"].read()
        return hello(environ, start_response)

    async def main() -> int:
        adapter = make(app)  # every implementation's default pool (bridge and a2wsgi: 10)
        uploads = [Conversation(adapter, http_scope(method="POST")) for _ in range(16)]
        for upload in uploads:
            upload.push_body(b"slow", more=True)
        for _ in range(500):  # until each has asked for more body, which its client withholds
            if all(upload.receive_calls >= 2 for upload in uploads):
                break
            await asyncio.sleep(0.01)
        try:
            plain = await asyncio.wait_for(request(adapter), WAIT)
        except asyncio.TimeoutError:
            return 0
        finally:
            for upload in uploads:
                upload.push({"type": "http.disconnect"})
            # Each call ends (its thread too) while this loop still runs, and what it raised is
            # taken here: a task's unretrieved error logged later, from a finalizer, can land
            # inside an ast.parse of pytest's and crash it (CPython 3.11's gh-106905).
            tasks = [upload.task for upload in uploads]
            await asyncio.wait(tasks, timeout=2 * WAIT)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return plain.status

    assert run(main()) == 200


# -- what the app gets wrong ----------------------------------------------------------------------


def outcome(make: Factory, app: Any) -> tuple[BaseException | None, list[dict[str, Any]]]:
    """What the ASGI call raised (if it did) and every message it sent, for one GET."""

    async def main() -> tuple[BaseException | None, list[dict[str, Any]]]:
        conv = Conversation(make(app), http_scope())
        conv.push_body()
        try:
            await conv.finish()
        except Exception as exc:  # each adapter raises its own kind
            return exc, conv.sent_so_far()
        return None, conv.sent_so_far()

    return run(main())


@check(
    W2A,
    "A response header with CR/LF is refused (no response splitting)",
    a2wsgi="a2wsgi passes the CR/LF on in http.response.start",
    asgiref="asgiref passes the CR/LF on in http.response.start",
)
def test_header_with_crlf_is_refused(make: Factory) -> None:
    def app(environ: Environ, start_response: Any) -> list[bytes]:
        start_response("200 OK", [("X-A", "1\r\nSet-Cookie: evil=1")])
        return [b"body"]

    error, sent = outcome(make, app)
    assert error is not None and [m for m in sent if m.get("headers")] == [], sent


@check(
    W2A,
    "start_response twice without exc_info raises",
    a2wsgi="a2wsgi ignores the second call and answers with the first status",
)
def test_start_response_twice_raises(make: Factory) -> None:
    def app(environ: Environ, start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        start_response("500 Oops", [])
        return [b"body"]

    error, sent = outcome(make, app)
    assert error is not None, sent


@check(
    W2A,
    "A str body chunk raises (bytes only)",
    a2wsgi="a2wsgi passes the str on in http.response.body",
    asgiref="asgiref passes the str on in http.response.body",
)
def test_str_body_chunk_raises(make: Factory) -> None:
    def app(environ: Environ, start_response: Any) -> list[Any]:
        start_response("200 OK", [])
        return ["text"]

    error, sent = outcome(make, app)
    assert error is not None and all(isinstance(m.get("body", b""), bytes) for m in sent), sent


@check(
    W2A,
    "An app that never calls start_response raises",
    a2wsgi="a2wsgi sends the body with no http.response.start before it",
)
def test_no_start_response_raises(make: Factory) -> None:
    def app(environ: Environ, start_response: Any) -> list[bytes]:
        return [b"body"]

    error, sent = outcome(make, app)
    assert error is not None and [m["type"] for m in sent][:1] != ["http.response.body"], sent


# -- the environ ----------------------------------------------------------------------------------


@check(W2A, "A UTF-8 path reaches PATH_INFO as latin-1 bytes (/café)")
def test_utf8_path(make: Factory) -> None:
    assert environ_seen(make, "/café")["PATH_INFO"] == "/café".encode().decode("latin-1")


@check(
    W2A,
    "RAW_URI carries the server's raw_path (%2F kept)",
    a2wsgi="a2wsgi sets no RAW_URI: a %2F cannot be told from /",
    asgiref="asgiref sets no RAW_URI: a %2F cannot be told from /",
)
def test_raw_uri(make: Factory) -> None:
    environ = environ_seen(make, "/a/b", raw_path=b"/a%2Fb")
    assert (environ["PATH_INFO"], environ.get("RAW_URI")) == ("/a/b", "/a%2Fb")


@check(
    W2A,
    "Transfer-Encoding never reaches the environ (the body is already decoded)",
    a2wsgi="a2wsgi passes HTTP_TRANSFER_ENCODING: chunked on, for a body it already decoded",
    asgiref="asgiref passes HTTP_TRANSFER_ENCODING: chunked on, for a body it already decoded",
)
def test_no_transfer_encoding(make: Factory) -> None:
    headers = [(b"host", b"testserver"), (b"transfer-encoding", b"chunked")]
    assert "HTTP_TRANSFER_ENCODING" not in environ_seen(make, headers=headers)


@check(
    W2A,
    "wsgi.input_terminated is True",
    a2wsgi="a2wsgi's environ has no wsgi.input_terminated",
    asgiref="asgiref's environ has no wsgi.input_terminated",
)
def test_input_terminated(make: Factory) -> None:
    assert environ_seen(make).get("wsgi.input_terminated") is True


@check(
    W2A,
    "wsgi.errors goes to logging",
    a2wsgi="a2wsgi's wsgi.errors is sys.stdout",
    asgiref="asgiref's wsgi.errors is sys.stderr",
)
def test_errors_go_to_logging(make: Factory, caplog: pytest.LogCaptureFixture) -> None:
    def app(environ: Environ, start_response: Any) -> list[bytes]:
        environ["wsgi.errors"].write("a line for the log\n")
        environ["wsgi.errors"].flush()
        return hello(environ, start_response)

    with caplog.at_level(logging.DEBUG):
        run(request(make(app)))
    assert "a line for the log" in caplog.text


@check(W2A, "SCRIPT_NAME is root_path, PATH_INFO the rest of path")
def test_script_name(make: Factory) -> None:
    assert split(make, "/app/x", root_path="/app") == ("/app", "/x")


@check(W2A, "root_path without the prefix in path (older servers) still splits")
def test_script_name_path_without_prefix(make: Factory) -> None:
    assert split(make, "/x", root_path="/app") == ("/app", "/x")


@check(
    W2A,
    "A trailing / of root_path is trimmed from SCRIPT_NAME",
    a2wsgi="a2wsgi keeps SCRIPT_NAME '/app/' and makes PATH_INFO 'x'",
    asgiref="asgiref keeps SCRIPT_NAME '/app/' and makes PATH_INFO 'x'",
)
def test_script_name_trailing_slash(make: Factory) -> None:
    assert split(make, "/app/x", root_path="/app/") == ("/app", "/x")


@check(
    W2A,
    "A root_path of / gives SCRIPT_NAME ''",
    a2wsgi="a2wsgi makes SCRIPT_NAME '/' and PATH_INFO 'x'",
    asgiref="asgiref makes SCRIPT_NAME '/' and PATH_INFO 'x'",
)
def test_script_name_root(make: Factory) -> None:
    assert split(make, "/x", root_path="/") == ("", "/x")


@check(
    W2A,
    "root_path is cut from path on a / boundary only (/legacyfoo under /legacy)",
    a2wsgi="a2wsgi cuts root_path as a string prefix: PATH_INFO 'foo'",
    asgiref="asgiref cuts root_path as a string prefix: PATH_INFO 'foo'",
)
def test_script_name_segment_boundary(make: Factory) -> None:
    assert split(make, "/legacyfoo", root_path="/legacy") == ("/legacy", "/legacyfoo")


@check(
    W2A,
    "Non-ASCII query bytes reach QUERY_STRING (latin-1)",
    a2wsgi=Broken("a2wsgi decodes query_string as ASCII: UnicodeDecodeError", UnicodeError),
    asgiref="asgiref decodes query_string as ASCII and answers 400 'Too many duplicate headers'",
)
def test_non_ascii_query(make: Factory) -> None:
    environ = environ_seen(make, query_string="q=café".encode())
    assert environ["QUERY_STRING"] == "q=café".encode().decode("latin-1")


@check(
    W2A,
    "Repeated headers are joined with ', '",
    a2wsgi="a2wsgi joins them with ','",
    asgiref="asgiref joins them with ','",
)
def test_repeated_headers(make: Factory) -> None:
    headers = [(b"host", b"testserver"), (b"x-multi", b"a"), (b"x-multi", b"b")]
    assert environ_seen(make, headers=headers)["HTTP_X_MULTI"] == "a, b"


@check(
    W2A,
    "Repeated Cookie headers are joined with '; '",
    a2wsgi="a2wsgi joins them with ',': werkzeug then reads cookie a as '1,b=2'",
    asgiref="asgiref joins them with ',': werkzeug then reads cookie a as '1,b=2'",
)
def test_repeated_cookie_headers(make: Factory) -> None:
    headers = [(b"host", b"testserver"), (b"cookie", b"a=1"), (b"cookie", b"b=2")]
    assert environ_seen(make, headers=headers)["HTTP_COOKIE"] == "a=1; b=2"


@check(
    W2A,
    "Header names with '_' are dropped (X_User would pass for X-User)",
    a2wsgi="a2wsgi turns x_user into HTTP_X_USER",
    asgiref="asgiref turns x_user into HTTP_X_USER",
)
def test_underscore_header_names(make: Factory) -> None:
    headers = [(b"host", b"testserver"), (b"x_user", b"admin")]
    assert "HTTP_X_USER" not in environ_seen(make, headers=headers)


# -- other scopes ---------------------------------------------------------------------------------


@check(
    W2A,
    "Lifespan startup and shutdown are answered",
    asgiref=Broken("asgiref raises ValueError on any scope but http", ValueError),
)
def test_lifespan(make: Factory) -> None:
    async def main() -> list[str]:
        conv = Conversation(make(hello), {"type": "lifespan", "asgi": {"version": "3.0"}})
        conv.push({"type": "lifespan.startup"})
        answers = [(await conv.next())["type"]]
        conv.push({"type": "lifespan.shutdown"})
        answers.append((await conv.next())["type"])
        await conv.finish()
        return answers

    assert run(main()) == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


@check(
    W2A,
    "A websocket is refused cleanly (closed before accept)",
    asgiref=Broken("asgiref raises ValueError on any scope but http", ValueError),
)
def test_websocket_refused(make: Factory) -> None:
    async def main() -> str:
        conv = Conversation(make(hello), http_scope(type="websocket"))
        conv.push({"type": "websocket.connect"})
        answer: str = (await conv.next())["type"]
        await conv.finish()
        return answer

    assert run(main()) == "websocket.close"
