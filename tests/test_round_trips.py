"""Round trips, in process: ``WsgiToAsgi(AsgiToWsgi(fastapi_app))`` answers like ``fastapi_app``,
``AsgiToWsgi(WsgiToAsgi(flask_app))`` like ``flask_app``, over generated requests.

Both apps echo what they saw (method, path, raw path, root, raw query, every header, scheme,
addresses, the body's length and SHA-256) and answer with a status, cookies and a header chosen
by the request, as a JSON body or a streamed one. So a translation that loses or changes a byte
on the way in changes the echo, and one that does so on the way out changes the answer.

Each property runs twice: as it is, and with ``wsgiref.validate.validator`` on both sides of
every in-process WSGI call in it (the environ one adapter builds, the response the other gives
back), so a generated request that makes either adapter break PEP 3333 fails there. The apps
keep to what that validator accepts (no Content-Type on 204/304, none missing elsewhere, no tab
in a response header value); each such place says so.

The answers are compared whole: status, every response header (in order) and the body. No
header is left out as transport-specific: in process no server adds ``date`` or ``server``, and
neither adapter adds or drops a response header of these apps (hop-by-hop ones, which the apps
never send, would be dropped by AsgiToWsgi: SPEC.md). What the specs make differ is normalised
narrowly, each place with its rule:

- Repeated request headers: a WSGI environ has one CGI variable a name, so they arrive joined
  with ``", "`` (``"; "`` for cookies), which RFC 9110 section 5.3 (and RFC 9113 section 8.2.3
  for cookies) says means the same. The echo apps report headers in that combined form.
- Header name case: CGI variables are upper case (PEP 3333), ASGI names lower case; both apps
  report names lower case, and the WSGI side's response names are compared lower case
  (RFC 9110 section 5.1: case-insensitive; WsgiToAsgi sends ASGI's lower case).
- Request headers with ``_`` in the name and ``Transfer-Encoding`` never reach a WSGI environ
  (SPEC.md: a spoofing hole; a body already decoded): dropped from the direct answer's echo.
- A ``HEAD`` response through AsgiToWsgi carries no body, as every ASGI server ensures (SPEC.md):
  the direct ASGI answer's body is dropped for ``HEAD``.
- Response header values leave WsgiToAsgi without the spaces and tabs around them (RFC 9110
  section 5.5: they are not part of the value; h11 refuses them): the direct answers' values
  are compared stripped.
- ASGI has no reason phrase (``http.response.start`` holds an int): the WSGI side compares
  status codes, and the round trip's phrase is the standard one for the code.
- An empty ``Content-Type`` or ``Content-Length``: PEP 3333 says the CGI variables "may be
  empty or absent" (servers set them to ``""`` when the request has none), so AsgiToWsgi
  passes no such header on, and the direct call gets none either.
- ``HTTP_CONTENT_TYPE``/``HTTP_CONTENT_LENGTH``, the copies some gateways (nginx) add of the
  CGI variables (RFC 3875 section 4.1.18: they SHOULD not), are not passed on as second
  headers (werkzeug ignores them too); the generator makes such environs (not under wsgiref's
  validator, which refuses them).
- A ``root_path`` ending in ``/`` comes back without it, and a ``path`` that does not start
  with the ``root_path`` (older servers) comes back with it in front (SPEC.md's decisions:
  ``SCRIPT_NAME`` never ends in ``/``; ``path`` = ``SCRIPT_NAME + PATH_INFO``).
- No ``server`` in the scope (a unix socket): PEP 3333 requires ``SERVER_NAME`` and
  ``SERVER_PORT``, so WsgiToAsgi takes them from the Host header, and they come back.
- The ``Date`` werkzeug's ``send_file`` writes from the clock: the two calls can fall either
  side of a second, so each answer's value is checked to be an HTTP date and then compared as
  a placeholder (``wsgi_answer``).
- ``REQUEST_URI`` (mod_wsgi, uWSGI) is not re-made by WsgiToAsgi, which sets ``RAW_URI`` from
  the same bytes; ``REMOTE_PORT`` missing from an environ comes back as ``"0"``, since an ASGI
  ``client`` must carry an int port.
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import itertools
import json
import random
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from io import BytesIO
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote
from wsgiref.validate import validator

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, StreamingResponse
from fastapi.responses import Response as ApiResponse
from flask import Flask, send_file
from flask import Response as FlaskResponse
from flask import request as flask_request
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from werkzeug.test import Client

from bridge import AsgiToWsgi, WsgiToAsgi
from tests.asgi_harness import Conversation, Result, http_scope, run

pytestmark = pytest.mark.timeout(60)

FILE = Path(__file__).resolve()  # what the "file" mode sends: any file that stays the same
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
STATUSES = [200, 201, 204, 304, 404, 418, 500, 599]
NO_BODY = (204, 304)
EXAMPLES = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def combined(pairs: list[tuple[str, str]]) -> list[list[str]]:
    """Header fields by lower-case name, repeated ones joined as RFC 9110 section 5.3 allows."""
    out: dict[str, str] = {}
    for name, value in pairs:
        name = name.lower()
        if name in out:
            value = out[name] + ("; " if name == "cookie" else ", ") + value
        out[name] = value
    return sorted([name, value] for name, value in out.items())


def echoed(answer: tuple[Any, ...]) -> dict[str, Any]:
    """The echo in an answer; empty for an error, a body-less answer or a framework's page."""
    try:
        echo = json.loads(answer[2]) if answer[0] != "raised" else {}
    except ValueError:
        return {}
    return echo if isinstance(echo, dict) and "body" in echo else {}


def no_tab(value: str) -> str:
    """A request header value fit to echo in a response header: wsgiref's validator refuses a
    tab in one (RFC 9110 section 5.5 allows it; the request side still carries tabs)."""
    return value.replace("\t", "%09")


def body_pieces(body: bytes, fail: bool = False) -> Iterator[bytes]:
    """A streamed response body: four pieces, one of them empty; or, to ``fail``, an error
    after the first (the headers have gone out: SPEC.md says it propagates, both ways)."""
    third = len(body) // 3
    yield body[:third]
    if fail:
        raise LookupError("asked to fail after the headers")
    yield b""
    yield body[third : 2 * third]
    yield body[2 * third :]


# -- the ASGI echo app ----------------------------------------------------------------------------

# No redirect_slashes: its 307 has no Content-Type, which wsgiref's validator refuses on any
# status but 204 and 304 (the validated round trips would stop there; the app's doing, not
# bridge's). A request for the mount point itself is then a 404 with a JSON body.
api = FastAPI(redirect_slashes=False)


@api.api_route("/{rest:path}", methods=METHODS)
async def asgi_echo(request: Request) -> ApiResponse:
    scope = request.scope
    sha, size = hashlib.sha256(), 0
    async for chunk in request.stream():
        sha.update(chunk)
        size += len(chunk)
    raw_path = scope.get("raw_path")
    seen = {
        "method": scope["method"],
        "path": scope["path"],
        "raw_path": None if raw_path is None else raw_path.decode("latin-1"),
        "root_path": scope["root_path"],
        "query": scope["query_string"].decode("latin-1"),
        "headers": combined(
            [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        ),
        "http_version": scope["http_version"],
        "scheme": scope["scheme"],
        "client": list(scope["client"]) if scope.get("client") else None,
        "server": list(scope["server"]) if scope.get("server") else None,
        "body": [size, sha.hexdigest()],
    }
    status = int(request.headers.get("x-status", "200"))
    # The combined view, as the app's WSGI twin can only have it (module doc).
    headers = {"x-echo": no_tab(dict(seen["headers"]).get("x-echo-me", "none"))}
    response: ApiResponse
    if request.headers.get("x-mode") == "raise":
        raise LookupError(f"asked to fail at {scope['path']!r}")
    if status in NO_BODY:
        response = ApiResponse(status_code=status, headers=headers)
    elif request.headers.get("x-mode") == "file":  # pathsend where offered, Range requests
        response = FileResponse(FILE, headers=headers, media_type="text/x-python")
    elif request.headers.get("x-mode") in ("stream", "stream-raise"):
        fail = request.headers["x-mode"] == "stream-raise"
        pieces = body_pieces(json.dumps(seen).encode(), fail)

        async def stream() -> AsyncIterator[bytes]:
            for piece in pieces:
                yield piece

        response = StreamingResponse(stream(), status, headers, media_type="application/x-echo")
    else:
        response = ApiResponse(json.dumps(seen), status, headers, media_type="application/json")
    response.set_cookie("a", "1")
    response.set_cookie("seen", str(size), path="/")
    return response


# -- the WSGI echo app ----------------------------------------------------------------------------

flask_app = Flask(__name__)
flask_app.config["PROPAGATE_EXCEPTIONS"] = True
CGI = ("CONTENT_TYPE", "CONTENT_LENGTH", "REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO")
CGI += ("QUERY_STRING", "SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL", "REMOTE_ADDR")
CGI += ("REMOTE_PORT", "RAW_URI", "REQUEST_URI")


@flask_app.before_request
def wsgi_echo() -> FlaskResponse:
    """Every request, whatever its path or method (no routing, no automatic OPTIONS)."""
    environ = flask_request.environ
    sha, size = hashlib.sha256(), 0
    while chunk := flask_request.stream.read(8192):
        sha.update(chunk)
        size += len(chunk)
    seen = {key: environ[key] for key in CGI if key in environ}
    seen["headers"] = combined(
        [(key[5:].replace("_", "-"), value) for key, value in environ.items() if key[:5] == "HTTP_"]
    )
    seen["scheme"] = environ["wsgi.url_scheme"]
    seen["body"] = [size, sha.hexdigest()]
    status = int(environ.get("HTTP_X_STATUS", "200"))
    headers = {"X-Echo": no_tab(environ.get("HTTP_X_ECHO_ME", "none"))}
    response: FlaskResponse
    if environ.get("HTTP_X_MODE") == "raise":
        raise LookupError(f"asked to fail at {environ['PATH_INFO']!r}")
    if status in NO_BODY:
        response = FlaskResponse(status=status, headers=headers)
        del response.headers["Content-Type"]  # werkzeug's default; wsgiref's validator refuses it
    elif environ.get("HTTP_X_MODE") == "file":  # wsgi.file_wrapper, Range requests
        response = send_file(FILE, mimetype="text/x-python")
        response.headers.update(headers)
    elif environ.get("HTTP_X_MODE") in ("stream", "stream-raise"):
        fail = environ["HTTP_X_MODE"] == "stream-raise"
        response = FlaskResponse(body_pieces(json.dumps(seen).encode(), fail), status, headers)
    else:
        response = FlaskResponse(json.dumps(seen), status, headers, mimetype="application/json")
    response.set_cookie("a", "1")
    response.set_cookie("seen", str(size), path="/")
    return response


# -- generated requests ---------------------------------------------------------------------------

# Characters a path segment may hold once decoded: anything but surrogates (a server's UTF-8
# decoding never makes one), with the reserved ones and the encoded slash drawn often.
RESERVED = list("/?#%;,=+&$!'()*:@[] ~-._")
# No newline: Starlette's path parameter does not match across one, so such a path is a 404
# (compared all the same, but it never reaches the echo).
PATH_CHAR = st.one_of(
    st.sampled_from(RESERVED),
    st.characters(exclude_categories=["Cs", "Cc"]),
    st.sampled_from(["\x00", "\t", "\x7f"]),
)
UNRESERVED = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")
KEPT = UNRESERVED | frozenset("!$&'()*+,;=:@")  # sub-delims, ':' and '@' are legal unencoded
VALUE_BYTES = [b for b in range(0x20, 0x100) if b != 0x7F] + [0x09]  # VCHAR, obs-text, SP, HTAB
TOKEN_NAME = st.from_regex(r"[a-z0-9!#$%&'*+.^`|~_-]{1,8}", fullmatch=True)
NAMES = st.one_of(
    st.sampled_from(["x-a", "x-b", "cookie", "accept", "x-echo-me", "x_under", "content-type"]),
    TOKEN_NAME.filter(lambda n: n not in ("host", "content-length", "transfer-encoding")),
)


@st.composite
def raw_segment(draw: st.DrawFn) -> str:
    """One path segment as a client sends it: percent-encoded where it must be, maybe where it
    need not be, and now and then a byte that is not UTF-8 (a server decodes it to U+FFFD)."""
    out = []
    for char in draw(st.lists(PATH_CHAR, max_size=6)):
        if char in KEPT and not draw(st.booleans()):
            out.append(char)
        else:
            out.append(quote(char.encode("utf-8"), safe=""))
    if draw(st.sampled_from([False] * 5 + [True])):
        out.append(draw(st.sampled_from(["%FF", "%C3", "%e9"])))
    return "".join(out)


@st.composite
def header_value(draw: st.DrawFn) -> bytes:
    return bytes(draw(st.lists(st.sampled_from(VALUE_BYTES), max_size=12))).strip(b" \t")


@st.composite
def body_and_chunks(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    """A body from empty to a few hundred KiB, cut into several chunks (some of them empty)."""
    size = draw(st.one_of(st.just(0), st.integers(1, 3000), st.integers(3000, 400_000)))
    body = random.Random(draw(st.integers(0, 2**32))).randbytes(size)
    cuts = sorted(draw(st.lists(st.integers(0, size), max_size=5)))
    edges = [0, *cuts, size]
    return body, [body[a:b] for a, b in itertools.pairwise(edges)]


# Single ranges only: a multipart/byteranges answer has a random boundary, different each call.
# How the apps answer (x-mode): json twice as often as the others.
MODES = ["json", "json", "stream", "file", "raise", "stream-raise"]
RANGES = st.sampled_from([b"bytes=10-29", b"bytes=-100", b"bytes=0-0", b"bytes=999999-"])


@st.composite
def asgi_requests(draw: st.DrawFn) -> dict[str, Any]:
    """An ASGI request as a server hands it over: scope fields, body chunks."""
    root = draw(st.sampled_from(["", "/mnt", "/café", "/", "/mnt/"]))
    raw_rest = "/" + "/".join(draw(st.lists(raw_segment(), min_size=1, max_size=4)))
    if root.strip("/") and draw(st.sampled_from([False] * 9 + [True])):
        raw_rest = ""  # the mount point itself: PATH_INFO is empty
    raw_path = (quote(root.rstrip("/")) + raw_rest).encode("ascii")
    path = unquote(raw_path.decode("ascii"))  # what uvicorn makes of it
    mount = root.rstrip("/")
    if mount and draw(st.sampled_from([False] * 4 + [True])):
        # An older server's (or router's) path without the root_path (SPEC.md's grey area), but
        # never one that starts with it again: that one could be either.
        rest = unquote(raw_rest)
        assume(not (rest == mount or rest.startswith(mount + "/")))
        path = rest
    body, chunks = draw(body_and_chunks())
    host = draw(st.sampled_from([b"testserver", b"testserver:8080", b"[::1]:8000", b"[::1]"]))
    headers = [(b"host", host)]
    headers += [(n.encode(), draw(header_value())) for n in draw(st.lists(NAMES, max_size=6))]
    if draw(st.booleans()):
        headers.append((b"content-length", str(len(body)).encode()))
    elif draw(st.booleans()):
        headers.append((b"transfer-encoding", b"chunked"))
    headers.append((b"x-status", str(draw(st.sampled_from(STATUSES))).encode()))
    headers.append((b"x-mode", draw(st.sampled_from(MODES)).encode()))
    if draw(st.booleans()):
        headers.append((b"range", draw(RANGES)))
    draw(st.randoms()).shuffle(headers)
    return {
        "method": draw(st.sampled_from(METHODS)),
        "path": path,
        "raw_path": draw(st.sampled_from([raw_path, raw_path, None])),  # optional in ASGI
        "root_path": root,
        "query_string": draw(st.binary(max_size=24)),
        "headers": headers,
        "http_version": draw(st.sampled_from(["1.0", "1.1", "2"])),
        "scheme": draw(st.sampled_from(["http", "https"])),
        # None: a unix socket (the ASGI spec's optional client and server)
        "client": draw(st.sampled_from([("10.1.2.3", 50000), ("::1", 1), None])),
        "extensions": draw(st.sampled_from([{}, {"http.response.pathsend": {}}])),
        "hold": draw(st.sampled_from(HOLDS)),
        "server": draw(st.sampled_from([("127.0.0.1", 80), ("127.0.0.1", 8443), None])),
        "chunks": chunks,
    }


# -- WsgiToAsgi(AsgiToWsgi(fastapi_app)) == fastapi_app --------------------------------------------


def as_is(app: Any) -> Any:
    return app


# Each round trip runs twice: as it is, and with wsgiref's validator on both sides of each
# in-process WSGI call in it (the environ one adapter makes, the response the other gives).
CHECKS = [pytest.param(as_is, id="plain"), pytest.param(validator, id="validated")]


# WsgiToAsgi's hold_body: the default (every generated body is held on the loop, past 256 KiB in
# a temporary file), none (wsgi.input streams from the loop), and 4 KiB (held, then streamed).
HOLDS = [-1, 0, 4096]


def held(app: Any, hold: int, pool: ThreadPoolExecutor) -> WsgiToAsgi:
    options = {} if hold < 0 else {"hold_body": hold}
    return WsgiToAsgi(app, threads=2, executor=pool, **options)


@pytest.fixture(scope="module", params=CHECKS)
def asgi_round_trip(request: pytest.FixtureRequest) -> Iterator[dict[int, WsgiToAsgi]]:
    check = request.param
    pool = ThreadPoolExecutor(2, thread_name_prefix="round-trip")
    inner = AsgiToWsgi(api)
    yield {hold: held(check(inner), hold, pool) for hold in HOLDS}
    inner.close()
    pool.shutdown(wait=True)  # the pool threads' loops are closed as their threads end


def asgi_answer(app: Any, req: dict[str, Any]) -> tuple[Any, ...]:
    """What a client gets: ``(status, headers, body)``, or the error the ASGI call raised
    before the response was complete (SPEC.md: errors propagate both ways; an error after a
    complete response leaves it standing, as FastAPI's 500 then re-raise does on uvicorn)."""
    return run(_asgi_call(app, dict(req)))


async def _asgi_call(app: Any, req: dict[str, Any]) -> tuple[Any, ...]:
    chunks = req.pop("chunks")
    conv = Conversation(app, http_scope(req.pop("path"), req.pop("method"), **req))
    for i, chunk in enumerate(chunks):
        conv.push_body(chunk, more=i < len(chunks) - 1)
    try:
        messages = [await conv.next()]  # http.response.start
        while messages[-1]["type"] == "http.response.start" or messages[-1].get("more_body"):
            messages.append(await conv.next())
    except Exception as exc:
        return "raised", type(exc), str(exc)
    with contextlib.suppress(Exception):  # after a complete response: the response stands
        await conv.finish()
    if messages[-1]["type"] == "http.response.pathsend":  # the server sends the file
        messages[-1] = {
            "type": "http.response.body",
            "body": Path(messages[-1]["path"]).read_bytes(),
        }
    result = Result(messages)
    return result.status, result.headers, result.body


def passed_on(req: dict[str, Any]) -> dict[str, Any]:
    """The request as the specs let it through to a WSGI environ: no ``_`` names, no
    ``Transfer-Encoding`` (module doc). Everything else must arrive as it is."""
    headers = [(n, v) for n, v in req["headers"] if b"_" not in n and n != b"transfer-encoding"]
    for name in (b"content-type", b"content-length"):
        if [v for n, v in headers if n == name] == [b""]:  # PEP 3333: "may be empty or absent"
            headers = [(n, v) for n, v in headers if n != name]
    server = req["server"]
    if server is None:  # PEP 3333 requires SERVER_NAME and SERVER_PORT: from the Host header
        host = dict(headers)[b"host"].decode()
        name, _, port = host.rpartition(":")
        if "]" in port or not name:  # no port, or the colon was inside an IPv6 literal
            name, port = host, {"http": "80", "https": "443"}[req["scheme"]]
        server = (name, int(port))
    # SCRIPT_NAME never ends in "/", and the path it gives back starts with it (SPEC.md).
    root = req["root_path"].rstrip("/")
    path = req["path"]
    if root and not (path == root or path.startswith(root + "/")):
        path = root + path
    return {**req, "headers": headers, "server": server, "root_path": root, "path": path}


@given(req=asgi_requests())
@EXAMPLES
def test_asgi_app_answers_alike_through_wsgi(
    asgi_round_trip: dict[int, WsgiToAsgi], req: dict[str, Any]
) -> None:
    expected = passed_on({k: v for k, v in req.items() if k != "hold"})
    direct = asgi_answer(api, expected)
    through = asgi_answer(asgi_round_trip[req.pop("hold")], req)
    if direct[0] != "raised":
        # WsgiToAsgi sends header values without the whitespace around them (module doc).
        direct = (direct[0], [(n, v.strip(b" \t")) for n, v in direct[1]], direct[2])
    if req["method"] == "HEAD" and direct[0] != "raised":
        direct = (*direct[:2], b"")  # an ASGI server drops the body; AsgiToWsgi does (module doc)
    assert through == direct
    body = echoed(through)
    event(f"status {through[0]}")  # statistics: how often each outcome is exercised
    event(f"echoed: {bool(body)}")
    if body:  # not a 404 from routing (Starlette's path parameter stops at a newline)
        # The echo is the request, translated twice: not merely the same mistake on both sides.
        assert (body["path"], body["root_path"]) == (expected["path"], expected["root_path"])
        raw_path = req["raw_path"]
        assert body["raw_path"] == (None if raw_path is None else raw_path.decode("latin-1"))
        assert body["query"] == req["query_string"].decode("latin-1")
        assert body["body"][0] == sum(map(len, req["chunks"]))


# -- AsgiToWsgi(WsgiToAsgi(flask_app)) == flask_app ------------------------------------------------

CHUNK_SIZES = [65536, 4096]  # AsgiToWsgi's http.request size: 4096 makes many messages


@pytest.fixture(scope="module", params=CHECKS)
def wsgi_round_trips(request: pytest.FixtureRequest) -> Iterator[dict[Any, Any]]:
    check = request.param
    pool = ThreadPoolExecutor(2, thread_name_prefix="round-trip")
    inner = {hold: held(check(flask_app), hold, pool) for hold in HOLDS}
    adapters = {
        (size, hold): AsgiToWsgi(inner[hold], chunk_size=size)
        for size in CHUNK_SIZES
        for hold in HOLDS
    }
    yield {"check": check, **{key: check(adapter) for key, adapter in adapters.items()}}
    for adapter in adapters.values():
        adapter.close()
    pool.shutdown(wait=True)


@st.composite
def wsgi_requests(draw: st.DrawFn) -> dict[str, Any]:
    """A request as werkzeug's client makes its environ: mixed-case and repeated header names
    (it joins those), a raw query in the environ, a body with or without a length."""
    raw_target = "/" + "/".join(draw(st.lists(raw_segment(), min_size=1, max_size=4)))
    query = draw(st.binary(max_size=24)).decode("latin-1")
    body, _ = draw(body_and_chunks())
    names = st.one_of(NAMES, st.sampled_from(["X-A", "X-b", "Cookie", "ACCEPT", "X-Echo-Me"]))
    headers = [
        (n, draw(header_value()).decode("latin-1")) for n in draw(st.lists(names, max_size=6))
    ]
    headers.append(("X-Status", str(draw(st.sampled_from(STATUSES)))))
    headers.append(("X-Mode", draw(st.sampled_from(MODES))))
    if draw(st.booleans()):
        headers.append(("Range", draw(RANGES).decode()))
    options: dict[str, Any] = {}
    if draw(st.booleans()):
        options["data"] = body
    else:  # no Content-Length: the body is as long as wsgi.input (wsgi.input_terminated)
        headers.append(("Transfer-Encoding", "chunked"))
        options["input_stream"] = BytesIO(body)
    uri = raw_target + ("?" + query if query else "")
    environ = {"QUERY_STRING": query, "RAW_URI": uri, "REQUEST_URI": uri}
    environ["SERVER_PROTOCOL"] = draw(st.sampled_from(["HTTP/1.0", "HTTP/1.1"]))
    remote = {"REMOTE_ADDR": "10.1.2.3"}
    if draw(st.booleans()):
        remote["REMOTE_PORT"] = str(draw(st.integers(1, 65535)))
    return {
        "path": raw_target,
        "method": draw(st.sampled_from(METHODS)),
        "headers": headers,
        "base_url": draw(st.sampled_from(["http://localhost/", "https://h:8443/mnt/"])),
        "environ_base": remote,
        "environ_overrides": environ,
        "chunk_size": draw(st.sampled_from(CHUNK_SIZES)),
        "hold": draw(st.sampled_from(HOLDS)),
        "body_size": len(body),
        "http_copies": draw(st.booleans()),
        **options,
    }


def wsgi_answer(app: Any, req: dict[str, Any]) -> tuple[Any, ...]:
    """``(status, headers, body)``, or the error the WSGI call raised (see ``asgi_answer``)."""
    if req["http_copies"]:
        app = with_http_copies(app)
    req = {
        k: v for k, v in req.items() if k not in ("chunk_size", "hold", "body_size", "http_copies")
    }
    if "input_stream" in req:
        req["input_stream"] = BytesIO(req["input_stream"].getvalue())  # each call reads its own
    try:
        response = Client(app, use_cookies=False).open(buffered=True, **req)
    except Exception as exc:
        return "raised", type(exc), str(exc)
    headers = [
        (name, _clock(value) if name.lower() == "date" else value)
        for name, value in response.headers.to_wsgi_list()
    ]
    return response.status, headers, response.get_data()


def _clock(value: str) -> str:
    """A ``Date`` value's placeholder, once it is seen to be an HTTP date (module doc)."""
    assert email.utils.parsedate_to_datetime(value).tzinfo is not None, value
    return "<an HTTP date>"


def with_http_copies(app: Any) -> Any:
    """A server that also passes Content-Type and Content-Length as ``HTTP_*`` variables, as
    nginx's uwsgi and fastcgi params do (RFC 3875 section 4.1.18 only says it SHOULD not)."""

    def server(environ: dict[str, Any], start_response: Any) -> Any:
        for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if key in environ:
                environ["HTTP_" + key] = environ[key]
        return app(environ, start_response)

    return server


def spec_view(environ: dict[str, Any], start_response: Any) -> Any:
    """``flask_app`` given the environ as the specs let it through WsgiToAsgi (module doc)."""
    environ.pop("REQUEST_URI")
    environ.pop("HTTP_TRANSFER_ENCODING", None)
    environ.pop("HTTP_CONTENT_TYPE", None)  # copies of CONTENT_TYPE/LENGTH (with_http_copies),
    environ.pop("HTTP_CONTENT_LENGTH", None)  # which werkzeug's EnvironHeaders ignores as well
    environ.setdefault("REMOTE_PORT", "0")
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key) == "":  # PEP 3333: "may be empty or absent"
            del environ[key]
    return flask_app(environ, start_response)


@given(req=wsgi_requests())
@EXAMPLES
def test_wsgi_app_answers_alike_through_asgi(
    wsgi_round_trips: dict[Any, Any], req: dict[str, Any]
) -> None:
    if wsgi_round_trips["check"] is validator:
        req = {**req, "http_copies": False}  # wsgiref's validator refuses HTTP_CONTENT_* keys
    direct = wsgi_answer(spec_view, req)
    through = wsgi_answer(wsgi_round_trips[req["chunk_size"], req["hold"]], req)
    if "raised" in (direct[0], through[0]):
        event(f"raised: {(direct if direct[0] == 'raised' else through)[1].__name__}")
        assert through == direct
        return
    status, headers, body = through
    assert (int(status[:3]), headers, body) == (
        int(direct[0][:3]),
        [(name.lower(), value.strip(" \t")) for name, value in direct[1]],
        direct[2],
    )
    assert status == f"{status[:3]} {_phrase(int(status[:3]))}"  # ASGI carries no phrase
    echo = echoed(through)
    event(f"echoed: {bool(echo)}")
    if echo:
        assert echo["body"][0] == req["body_size"]


def _phrase(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return "Unknown"


# -- the normalisations above are needed, and no more than that ----------------------------------


def test_a_repeated_header_arrives_joined() -> None:
    """The one ASGI request shape that changes on the way: two fields of one name become one."""
    pool = ThreadPoolExecutor(1)
    inner = AsgiToWsgi(_raw_headers_app)
    try:
        headers = [(b"x-a", b"1"), (b"cookie", b"c=1"), (b"x-a", b"2"), (b"cookie", b"d=2")]
        through = asgi_answer(
            WsgiToAsgi(inner, executor=pool),
            {"chunks": [b""], "path": "/", "method": "GET", "headers": headers},
        )
        assert json.loads(through[2]) == [["cookie", "c=1; d=2"], ["x-a", "1, 2"]]
    finally:
        inner.close()
        pool.shutdown(wait=True)


async def _raw_headers_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await receive()
    body = json.dumps(sorted([k.decode(), v.decode()] for k, v in scope["headers"])).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})
