"""Table-driven tests of the pure scope <-> environ translation (no threads, no loop)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge import WSGIProtocolError
from bridge._environ import (
    check_status,
    decode_headers,
    encode_headers,
    environ_to_scope,
    scope_to_environ,
    split_path,
)
from bridge._errors import RequestHeaderError
from tests.asgi_harness import http_scope


@pytest.mark.parametrize(
    ("root_path", "path", "script_name", "path_info"),
    [
        ("", "/", "", "/"),
        ("", "/a/b", "", "/a/b"),
        ("/app", "/app/x", "/app", "/x"),  # path includes root_path (the ASGI spec's way)
        ("/app", "/app", "/app", ""),
        ("/app", "/x", "/app", "/x"),  # path excludes root_path (older servers' way)
        ("/a", "/abc", "/a", "/abc"),  # not on a segment boundary: not a prefix
        ("/", "/x", "", "/x"),  # SCRIPT_NAME never ends in /
        ("/app/", "/app/x", "/app", "/x"),
        ("/legacy", "/legacy/", "/legacy", "/"),
    ],
)
def test_split_path(root_path: str, path: str, script_name: str, path_info: str) -> None:
    assert split_path(root_path, path) == (script_name, path_info)


def environ_of(**scope: Any) -> dict[str, Any]:
    return scope_to_environ(http_scope(**scope))


def test_path_is_utf8_bytes_carried_as_latin1() -> None:
    environ = environ_of(path="/app/café", root_path="/app")
    assert environ["SCRIPT_NAME"] == "/app"
    assert environ["PATH_INFO"] == "/caf\xc3\xa9"
    assert environ["PATH_INFO"].encode("latin-1").decode("utf-8") == "/café"


@pytest.mark.parametrize(
    ("scope", "key", "expected"),
    [
        ({"method": "PATCH"}, "REQUEST_METHOD", "PATCH"),
        ({"query_string": b"a=1&b=%20"}, "QUERY_STRING", "a=1&b=%20"),
        ({"query_string": b"q=\xe9"}, "QUERY_STRING", "q=\xe9"),  # non-ASCII bytes kept
        ({"http_version": "2"}, "SERVER_PROTOCOL", "HTTP/2"),
        ({"server": ("10.0.0.1", 8443)}, "SERVER_NAME", "10.0.0.1"),
        ({"server": ("10.0.0.1", 8443)}, "SERVER_PORT", "8443"),  # a str, never an int
        ({"server": ("/tmp/sock", None)}, "SERVER_PORT", "80"),
        ({"server": None, "headers": [(b"host", b"example.com:81")]}, "SERVER_NAME", "example.com"),
        ({"server": None, "headers": [(b"host", b"example.com:81")]}, "SERVER_PORT", "81"),
        (
            {"server": None, "headers": [(b"host", b"example.com")], "scheme": "https"},
            "SERVER_PORT",
            "443",
        ),
        ({"server": None, "headers": [(b"host", b"[::1]")]}, "SERVER_NAME", "[::1]"),
        ({"server": None, "headers": [(b"host", b"[::1]:9")]}, "SERVER_PORT", "9"),
        ({"server": None, "headers": []}, "SERVER_NAME", "localhost"),
        ({"client": ("192.0.2.7", 4711)}, "REMOTE_ADDR", "192.0.2.7"),
        ({"client": ("192.0.2.7", 4711)}, "REMOTE_PORT", "4711"),
        ({"scheme": "https"}, "wsgi.url_scheme", "https"),
        ({"raw_path": b"/a%2Fb"}, "RAW_URI", "/a%2Fb"),
        ({"raw_path": b"/a", "query_string": b"x=1"}, "RAW_URI", "/a?x=1"),
    ],
)
def test_environ_keys(scope: dict[str, Any], key: str, expected: str) -> None:
    assert environ_of(**scope)[key] == expected


def test_pep3333_fixed_keys() -> None:
    scope = http_scope()
    environ = scope_to_environ(scope)
    assert environ["wsgi.version"] == (1, 0)
    assert environ["wsgi.multithread"] is True
    assert environ["wsgi.multiprocess"] is False
    assert environ["wsgi.run_once"] is False
    assert environ["wsgi.input_terminated"] is True
    assert environ["asgi.scope"] is scope
    assert "REMOTE_ADDR" not in environ_of(client=None)
    assert "RAW_URI" not in environ_of(raw_path=None)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([(b"content-type", b"text/plain")], {"CONTENT_TYPE": "text/plain"}),
        ([(b"content-length", b"5")], {"CONTENT_LENGTH": "5"}),
        ([(b"x-thing", b"a"), (b"x-thing", b"b")], {"HTTP_X_THING": "a, b"}),
        ([(b"cookie", b"a=1"), (b"cookie", b"b=2")], {"HTTP_COOKIE": "a=1; b=2"}),
        ([(b"X-Upper", b"v")], {"HTTP_X_UPPER": "v"}),
        ([(b"x-latin", b"caf\xe9")], {"HTTP_X_LATIN": "caf\xe9"}),
    ],
)
def test_request_headers(headers: list[tuple[bytes, bytes]], expected: dict[str, str]) -> None:
    environ = environ_of(headers=headers)
    for key, value in expected.items():
        assert environ[key] == value
    assert "HTTP_CONTENT_TYPE" not in environ and "HTTP_CONTENT_LENGTH" not in environ


def test_underscore_header_names_are_dropped() -> None:
    # A proxy that authenticates and sets X-User would not strip a client's X_User; both
    # would become HTTP_X_USER, so the underscore spelling never reaches the app.
    environ = environ_of(headers=[(b"x_user", b"admin"), (b"x-user", b"alice")])
    assert environ["HTTP_X_USER"] == "alice"
    assert environ_of(headers=[(b"x_user", b"admin")]).get("HTTP_X_USER") is None


@pytest.mark.parametrize("status", ["200 OK", "404 Not Found", "599 ", "201 Créé"])
def test_valid_status(status: str) -> None:
    assert check_status(status) == int(status[:3])


@pytest.mark.parametrize(
    "status", [b"200 OK", "200", "20 OK", "2000 OK", "200 OK\r\nX: y", "abc OK", 200, "099 Low"]
)
def test_invalid_status(status: object) -> None:
    with pytest.raises(WSGIProtocolError, match="status"):
        check_status(status)


def test_encode_headers() -> None:
    assert encode_headers([("Content-Type", "text/plain"), ("X-A", "caf\xe9")]) == [
        (b"content-type", b"text/plain"),
        (b"x-a", b"caf\xe9"),
    ]


def test_encode_headers_strips_the_whitespace_around_values() -> None:
    # Django's WSGI handler sends Set-Cookie values as " a=1; Path=/" (SimpleCookie.output).
    assert encode_headers(
        [("Set-Cookie", " a=1; Path=/"), ("X-A", "\t in side \t"), ("X-B", " ")]
    ) == [
        (b"set-cookie", b"a=1; Path=/"),
        (b"x-a", b"in side"),
        (b"x-b", b""),
    ]


@pytest.mark.parametrize(
    ("headers", "rule"),
    [
        ((("a", "b"),), "must be a list"),
        ([("a", "b", "c")], "tuple"),
        ([["a", "b"]], "tuple"),
        ([(b"a", "b")], "must be str"),
        ([("a", b"b")], "must be str"),
        ([("bad name", "v")], "token"),
        ([("", "v")], "token"),
        ([("x", "a\r\nSet-Cookie: evil")], "CR, LF"),
        ([("x", "a\nb")], "CR, LF"),
        ([("x", "a\x00")], "NUL"),
        ([("x", "snowman \u2603")], "latin-1"),
    ],
)
def test_invalid_headers(headers: object, rule: str) -> None:
    with pytest.raises(WSGIProtocolError, match=rule):
        encode_headers(headers)


def test_environ_to_scope() -> None:
    environ = {
        "REQUEST_METHOD": "post",
        "SCRIPT_NAME": "/app",
        "PATH_INFO": "/caf\xc3\xa9",
        "QUERY_STRING": "a=\xe9",
        "SERVER_NAME": "example.com",
        "SERVER_PORT": "8080",
        "SERVER_PROTOCOL": "HTTP/1.0",
        "REMOTE_ADDR": "192.0.2.1",
        "REMOTE_PORT": "5000",
        "CONTENT_TYPE": "text/plain",
        "CONTENT_LENGTH": "",
        "HTTP_X_THING": "v",
        "RAW_URI": "/app/caf%C3%A9?a=%E9",
        "wsgi.url_scheme": "https",
    }
    scope = environ_to_scope(environ)
    assert scope["method"] == "POST"
    assert scope["root_path"] == "/app"
    assert scope["path"] == "/app/café"
    assert scope["raw_path"] == b"/app/caf%C3%A9"
    assert scope["query_string"] == b"a=\xe9"
    assert scope["http_version"] == "1.0"
    assert scope["scheme"] == "https"
    assert scope["client"] == ("192.0.2.1", 5000)
    assert scope["server"] == ("example.com", 8080)
    assert scope["asgi"]["spec_version"] == "2.4"
    assert sorted(scope["headers"]) == [(b"content-type", b"text/plain"), (b"x-thing", b"v")]


def test_decode_headers_drops_hop_by_hop() -> None:
    headers = [(b"content-type", b"a"), (b"connection", b"close"), (b"Transfer-Encoding", b"x")]
    assert decode_headers(headers) == [("content-type", "a")]


_segment = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="/?#"), min_size=1
)


@given(root=st.lists(_segment, max_size=3), rest=st.lists(_segment, max_size=3))
def test_round_trip_scope_environ_scope(root: list[str], rest: list[str]) -> None:
    root_path = "".join("/" + s for s in root)
    path = root_path + "".join("/" + s for s in rest) or "/"
    environ = scope_to_environ(http_scope(path=path, root_path=root_path))
    assert (environ["SCRIPT_NAME"] + environ["PATH_INFO"]).encode("latin-1") == path.encode()
    back = environ_to_scope(environ)
    assert back["path"] == path
    assert back["root_path"] == root_path


def test_transfer_encoding_never_reaches_the_environ() -> None:
    """The ASGI server decoded the body already: an app seeing "chunked" would decode again."""
    environ = environ_of(headers=[(b"host", b"h"), (b"transfer-encoding", b"chunked")])
    assert "HTTP_TRANSFER_ENCODING" not in environ
    assert environ["HTTP_HOST"] == "h"


def test_raw_path_only_from_the_bytes_a_server_gave() -> None:
    base = {"REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "PATH_INFO": "/caf\xc3\xa9"}
    assert "raw_path" not in environ_to_scope(base)  # wsgiref: no RAW_URI, no REQUEST_URI
    assert environ_to_scope({**base, "REQUEST_URI": "/caf%C3%A9?q"})["raw_path"] == b"/caf%C3%A9"


def test_http_copies_of_content_type_and_length_are_not_second_headers() -> None:
    """nginx passes every header as HTTP_* as well: the CGI variables alone are the request's.
    Found by tests/test_round_trips.py (Flask behind both adapters saw "a, a")."""
    environ = {
        "REQUEST_METHOD": "POST",
        "CONTENT_TYPE": "multipart/form-data; boundary=b",
        "HTTP_CONTENT_TYPE": "multipart/form-data; boundary=b",
        "CONTENT_LENGTH": "10",
        "HTTP_CONTENT_LENGTH": "10",
        "HTTP_X_THING": "v",
    }
    assert sorted(environ_to_scope(environ)["headers"]) == [
        (b"content-length", b"10"),
        (b"content-type", b"multipart/form-data; boundary=b"),
        (b"x-thing", b"v"),
    ]
    only_copies = {"REQUEST_METHOD": "GET", "HTTP_CONTENT_TYPE": "text/plain"}
    assert environ_to_scope(only_copies)["headers"] == []  # as werkzeug's request headers


@pytest.mark.parametrize("path", ["/\ud800", "/a\udfff/b"])
def test_a_path_that_is_not_unicode_is_a_400_error(path: str) -> None:
    """No HTTP request decodes to a lone surrogate (surrogateescape's own escapes aside)."""
    with pytest.raises(RequestHeaderError, match="the request path is not valid Unicode"):
        scope_to_environ({"type": "http", "method": "GET", "path": path, "headers": []})


def test_surrogate_escaped_bytes_in_a_path_come_back_as_those_bytes() -> None:
    scope = {"type": "http", "method": "GET", "path": "/caf\udcc3\udca9", "headers": []}
    environ = scope_to_environ(scope)  # the path's bytes b"/caf\xc3\xa9", escaped
    assert environ["PATH_INFO"] == "/caf\xc3\xa9"


def test_invalid_utf8_from_a_wsgi_server_is_replaced_and_kept_raw() -> None:
    scope = environ_to_scope(
        {"REQUEST_METHOD": "GET", "PATH_INFO": "/a\xff", "RAW_URI": "/a%FF", "QUERY_STRING": ""}
    )
    assert scope["path"] == "/a\ufffd"
    assert scope["raw_path"] == b"/a%FF"


def test_a_server_that_put_text_outside_latin_1_in_the_environ_is_not_a_crash() -> None:
    """PEP 3333 wants latin-1 native strings; a server that decoded UTF-8 itself gets its
    bytes back as UTF-8."""
    scope = environ_to_scope(
        {"REQUEST_METHOD": "GET", "PATH_INFO": "/€", "QUERY_STRING": "q=€", "HTTP_X_NAME": "€"}
    )
    assert scope["path"] == "/€"
    assert scope["query_string"] == "q=€".encode()
    assert (b"x-name", "€".encode()) in scope["headers"]
