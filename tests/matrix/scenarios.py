"""The scenario set every (framework, server) pair runs, and the route contract behind it.

Each framework app (``wsgi_apps/*.py``, ``asgi_apps/*.py``) serves these routes, written with
that framework's own request, response, routing and URL-building API, relative to its root
(which is ``/mnt`` when the pair mounts it under FastAPI or Starlette):

``GET|HEAD /hello``
    ``200``, ``text/plain`` (a charset may follow), body ``hello``.
``POST /echo``
    ``200``, the request body exactly (read through the framework, streamed or whole).
``GET /stream/<name>``
    body ``one;``, then waits up to ``GATE_WAIT`` s for ``$BRIDGE_TEST_DIR/<name>`` to exist,
    then ``two`` (``timeout`` instead if it never does): chunk one must reach the client first.
``GET /endless/<name>``
    1 KiB chunks of ``x`` without end (a short pause between them); when the framework closes or
    cancels the stream it writes ``$BRIDGE_TEST_DIR/<name>`` (``finally``).
``GET /info/<rest>``
    JSON ``{"path", "root", "query", "raw_query", "x_repeat"}``: the request path within the
    app and the mount prefix (``PATH_INFO``/``SCRIPT_NAME`` or ``path``/``root_path``, as the
    framework exposes them, decoded to ``str``), the query parsed by the framework
    (``{name: [values]}``), the query string's bytes as the framework has them (decoded as
    latin-1 for JSON), and the ``X-Repeat`` header as one comma-joined string.
``GET /cookies``
    ``200`` with two ``Set-Cookie`` headers, ``a=1; Path=/`` and ``b=2; Path=/``.
``GET /status/204``, ``GET /status/304``
    that status, no body.
``GET /boom``
    the view raises ``RuntimeError`` (the framework in production mode: its 500, or the error
    propagated to the adapter and the server).
``GET /redirect``
    ``302`` to the URL of ``/hello`` made by the framework's URL builder (``url_for``,
    ``reverse``, ``route_url``, ...), so a mounted app redirects within its prefix.
``GET /file``
    ``$BRIDGE_TEST_DIR/file.bin`` through the framework's file response, with ``Range`` support
    (the framework's own, or by hand where it has none).

Anything else is a ``404``.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.matrix.client import HOST, Reply, Request, fetch, get, send

MiB = 1024 * 1024
GATE_WAIT = 10.0
FILE_SIZE = 64 * 1024
FILE_BYTES = bytes(range(251)) * (FILE_SIZE // 251) + bytes(FILE_SIZE % 251)


def write_file(directory: Path) -> None:
    """The file ``/file`` serves; made by the fixture that starts the server."""
    (directory / "file.bin").write_bytes(FILE_BYTES)


@dataclass
class Target:
    """Where a pair's app answers: its port, its mount prefix and the directory it shares."""

    port: int
    prefix: str
    shared_dir: Path
    name: str  # unique per test, for marker files

    def path(self, rest: str) -> str:
        return self.prefix + rest


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def text_plain(reply: Reply) -> bool:
    return (reply.header("content-type") or "").split(";")[0].strip() == "text/plain"


# -- the scenarios -------------------------------------------------------------------------------


def get_hello(t: Target) -> None:
    reply = get(t.port, t.path("/hello"))
    assert (reply.status, reply.body) == (200, b"hello"), reply
    assert text_plain(reply), reply.headers


def head_hello(t: Target) -> None:
    reply = fetch(t.port, Request("HEAD", t.path("/hello").encode()))
    assert (reply.status, reply.body) == (200, b""), reply
    assert reply.header("content-length") in (None, "5"), reply.headers


def post_echo_5_mib(t: Target) -> None:
    body = os.urandom(5 * MiB)
    reply = fetch(t.port, Request("POST", t.path("/echo").encode(), body=body), timeout=60)
    assert reply.status == 200, reply.status
    assert reply.body == body, f"{len(reply.body)} bytes back of {len(body)}"


def chunked_upload(t: Target) -> None:
    """No Content-Length: the server decodes the chunks, the app reads to the end."""
    pieces = [os.urandom(n) for n in (1, 1000, 65536, 7, 300_000)]
    reply = fetch(t.port, Request("POST", t.path("/echo").encode(), body=iter(pieces)))
    assert reply.status == 200, reply.status
    assert reply.body == b"".join(pieces), f"{len(reply.body)} bytes back"


def streamed_response(t: Target) -> None:
    """Chunk two is made only once the client holds chunk one: a buffering side deadlocks."""
    gate = t.shared_dir / t.name
    with socket.create_connection((HOST, t.port), timeout=20) as sock:
        response = send(sock, Request("GET", t.path(f"/stream/{t.name}").encode()))
        assert response.status == 200, response.status
        with response:
            first = b""
            while len(first) < 4:
                more = response.read1(100)
                assert more, f"the stream ended after {first!r}"
                first += more
            assert first == b"one;", "chunk one was held back until the app gave up"
            gate.touch()
            rest = response.read()
    assert rest == b"two", rest


def info(
    t: Target, target: bytes, headers: list[tuple[str, str]] | None = None
) -> dict[str, object]:
    reply = fetch(t.port, Request("GET", target, headers or []))
    assert reply.status == 200, reply
    result: dict[str, object] = json.loads(reply.body)
    return result


def unicode_path(t: Target) -> None:
    seen = info(t, t.path("/info/caf%C3%A9/%E2%82%AC").encode())
    assert seen["path"] == "/info/café/€", seen
    assert seen["root"] == t.prefix, seen


def encoded_slash(t: Target) -> None:
    """WSGI's PATH_INFO and ASGI's path are both decoded: ``%2F`` arrives as ``/``."""
    seen = info(t, t.path("/info/a%2Fb").encode())
    assert seen["path"] == "/info/a/b", seen


def raw_non_ascii_query(t: Target) -> None:
    """Bytes outside ASCII in the query reach the app unchanged (how a framework then decodes
    them is its own business: Starlette reads them as latin-1, werkzeug as UTF-8)."""
    query = b"q=caf\xc3\xa9&n=1&n=2"
    seen = info(t, t.path("/info/q").encode() + b"?" + query)
    assert seen["raw_query"] == query.decode("latin-1"), seen


def encoded_query(t: Target) -> None:
    query = b"q=caf%C3%A9&sp=a+b%20c&e="
    seen = info(t, t.path("/info/q").encode() + b"?" + query)
    assert seen["query"] == {"q": ["café"], "sp": ["a b c"], "e": [""]}, seen
    assert seen["raw_query"] == query.decode(), seen


def repeated_headers(t: Target) -> None:
    seen = info(t, t.path("/info/h").encode(), [("X-Repeat", "a"), ("X-Repeat", "b")])
    # Servers join repeated fields with "," or ", " (RFC 9110 allows either).
    assert [v.strip() for v in str(seen["x_repeat"]).split(",")] == ["a", "b"], seen


def two_set_cookies(t: Target) -> None:
    reply = get(t.port, t.path("/cookies"))
    assert reply.status == 200, reply
    cookies = [c.replace(" ", "").lower().split(";") for c in reply.all("set-cookie")]
    assert [c[0] for c in cookies] == ["a=1", "b=2"], reply.headers
    assert all("path=/" in c[1:] for c in cookies), reply.headers


def no_content(t: Target) -> None:
    reply = get(t.port, t.path("/status/204"))
    assert (reply.status, reply.body) == (204, b""), reply
    assert reply.header("transfer-encoding") is None, reply.headers


def not_modified(t: Target) -> None:
    reply = get(t.port, t.path("/status/304"))
    assert (reply.status, reply.body) == (304, b""), reply
    assert reply.header("transfer-encoding") is None, reply.headers


def not_found(t: Target) -> None:
    assert get(t.port, t.path("/nope/nothing-here")).status == 404


def app_exception(t: Target) -> None:
    """The view raises; the client gets a 500 and the next request is served."""
    reply = get(t.port, t.path("/boom"))
    assert reply.status == 500, reply
    get_hello(t)


def redirect_within_prefix(t: Target) -> None:
    """The location may be relative or absolute; an absolute one names the host as the request's
    ``Host`` did (the client sends ``127.0.0.1`` without the port, so some frameworks leave the
    port out) or with the server's port."""
    reply = get(t.port, t.path("/redirect"))
    assert reply.status in (302, 303, 307), reply
    location = reply.header("location") or ""
    for origin in (f"http://{HOST}:{t.port}", f"http://{HOST}"):
        if location.startswith(origin + "/"):
            location = location.removeprefix(origin)
            break
    assert location == t.path("/hello"), reply.header("location")


def disconnect_mid_stream(t: Target) -> None:
    """The client reads a little of an endless stream and leaves: the app's stream is closed
    (it writes its marker), and the worker is free for the next request."""
    marker = t.shared_dir / t.name
    with (
        socket.create_connection((HOST, t.port), timeout=20) as sock,
        send(sock, Request("GET", t.path(f"/endless/{t.name}").encode())) as response,
    ):
        assert response.status == 200, response.status
        assert response.read(2048)
        assert not marker.exists()
    assert wait_until(marker.exists, 15), "the app's stream was never closed after the client left"
    get_hello(t)


def range_request(t: Target) -> None:
    reply = get(t.port, t.path("/file"), [("Range", "bytes=10-109")])
    assert reply.status == 206, reply.status
    assert reply.body == FILE_BYTES[10:110], f"{len(reply.body)} bytes"
    assert reply.header("content-length") in (None, "100"), reply.headers
    whole = get(t.port, t.path("/file"))
    assert (whole.status, whole.body) == (200, FILE_BYTES), whole.status


SCENARIOS: dict[str, Callable[[Target], None]] = {
    f.__name__: f
    for f in (
        get_hello,
        head_hello,
        post_echo_5_mib,
        chunked_upload,
        streamed_response,
        unicode_path,
        encoded_slash,
        raw_non_ascii_query,
        encoded_query,
        repeated_headers,
        two_set_cookies,
        no_content,
        not_modified,
        not_found,
        app_exception,
        redirect_within_prefix,
        disconnect_mid_stream,
        range_request,
    )
}
