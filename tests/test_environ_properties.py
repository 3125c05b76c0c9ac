"""Properties of the scope <-> environ translation over generated input: on anything a server
may hand over, only the documented error is raised, what comes out keeps PEP 3333's and the ASGI
spec's types, and a valid input survives the round trip."""

from __future__ import annotations

import string
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge._environ import MAX_REPEATS, environ_to_scope, plain_length, scope_to_environ
from bridge._errors import RequestHeaderError

TOKEN_CHARS = string.ascii_lowercase + string.digits + "!#$%&'*+-.^_`|~"
names = st.text(TOKEN_CHARS, min_size=1, max_size=12)
values = st.binary(max_size=40)
segments = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="/"), max_size=8)
paths = st.lists(segments, max_size=4).map(lambda parts: "/" + "/".join(parts))
lengths = st.one_of(
    st.integers(0, 10**12).map(lambda n: str(n).encode()),
    st.sampled_from([b"", b"+1", b"-1", b"1_0", " ١".encode(), b"0x1", b"1 ", b"1,2", b"3, 3"]),
)


def _is_valid_length(lines: list[bytes]) -> bool:
    """What bridge accepts: every line a list of one same plain number (RFC 9110 8.6)."""
    found = {part.strip() for line in lines for part in line.decode("latin-1").split(",")}
    return len(found) == 1 and plain_length(next(iter(found))) is not None


@st.composite
def scopes(draw: st.DrawFn) -> dict[str, Any]:
    headers = draw(st.lists(st.tuples(names, values), max_size=8))
    headers += [(b"content-length", v) for v in draw(st.lists(lengths, max_size=2))]
    if draw(st.booleans()):  # one name repeated up to just past the limit
        headers += [(b"x-many", b"v")] * draw(st.integers(MAX_REPEATS - 2, MAX_REPEATS + 2))
    scope: dict[str, Any] = {
        "type": "http",
        "method": draw(st.sampled_from(["GET", "POST", "HEAD", "PATCH", "PURGE"])),
        "http_version": draw(st.sampled_from(["1.0", "1.1", "2"])),
        "scheme": draw(st.sampled_from(["http", "https"])),
        "root_path": draw(st.one_of(st.just(""), paths)),
        "path": draw(paths),
        "query_string": draw(st.binary(max_size=30)),
        "headers": [(name.encode() if isinstance(name, str) else name, v) for name, v in headers],
        "client": draw(
            st.one_of(st.none(), st.tuples(st.just("127.0.0.1"), st.integers(1, 65535)))
        ),
        "server": draw(
            st.one_of(st.none(), st.tuples(st.just("localhost"), st.integers(1, 65535)))
        ),
    }
    if draw(st.booleans()):
        scope["raw_path"] = draw(st.binary(min_size=1, max_size=30))
    return scope


@settings(max_examples=300, deadline=None)
@given(scopes())
def test_any_scope_gives_a_pep_3333_environ_or_the_documented_400(scope: dict[str, Any]) -> None:
    names_seen = [name for name, _ in scope["headers"] if b"_" not in name]
    too_many = max((names_seen.count(n) for n in set(names_seen)), default=0) > MAX_REPEATS
    length_lines = [v for name, v in scope["headers"] if name == b"content-length"]
    bad_length = bool(length_lines) and not _is_valid_length(length_lines)
    try:
        environ = scope_to_environ(scope)
    except RequestHeaderError:
        assert too_many or bad_length
        return
    assert not too_many and not bad_length
    for key, value in environ.items():
        if key.isupper():  # a CGI variable: a native string of latin-1 characters
            assert type(value) is str, key
            value.encode("latin-1")
    assert not environ["SCRIPT_NAME"].endswith("/")
    assert environ["PATH_INFO"] == "" or environ["PATH_INFO"].startswith("/")
    assert environ["QUERY_STRING"].encode("latin-1") == scope["query_string"]
    if length_lines:
        assert plain_length(environ["CONTENT_LENGTH"]) is not None
    assert "HTTP_TRANSFER_ENCODING" not in environ


@st.composite
def valid_scopes(draw: st.DrawFn) -> dict[str, Any]:
    root = draw(st.one_of(st.just(""), paths.filter(lambda p: p != "/")))
    passed_on = names.filter(lambda n: n != "transfer-encoding" and "_" not in n)
    header_names = draw(st.lists(passed_on, unique=True))
    headers = [(n.encode(), draw(values)) for n in header_names if n != "content-length"]
    if draw(st.booleans()):
        headers.append((b"content-length", str(draw(st.integers(0, 10**9))).encode()))
    return {
        "type": "http",
        "method": draw(st.sampled_from(["GET", "POST", "DELETE"])),
        "http_version": "1.1",
        "scheme": "http",
        "root_path": root.rstrip("/"),
        "path": root.rstrip("/") + draw(paths),
        "query_string": draw(st.binary(max_size=30)),
        "headers": headers,
        "raw_path": draw(st.binary(min_size=1, max_size=30).filter(lambda b: b"?" not in b)),
    }


@settings(max_examples=300, deadline=None)
@given(valid_scopes())
def test_a_valid_scope_survives_a_round_trip_through_an_environ(scope: dict[str, Any]) -> None:
    back = environ_to_scope(scope_to_environ(scope))
    for key in ("method", "root_path", "path", "query_string", "raw_path", "http_version"):
        assert back[key] == scope[key], key
    assert sorted(back["headers"]) == sorted(scope["headers"])


cgi_names = st.text(string.ascii_uppercase + string.digits, min_size=1, max_size=10)
latin1 = st.text(st.characters(max_codepoint=255), max_size=20)


@st.composite
def environs(draw: st.DrawFn) -> dict[str, Any]:
    """A PEP 3333 environ: native strings of latin-1 characters, paths as UTF-8 bytes."""
    utf8 = paths.map(lambda p: p.encode().decode("latin-1"))
    environ: dict[str, Any] = {
        "REQUEST_METHOD": draw(st.sampled_from(["GET", "POST", "OPTIONS"])),
        "SCRIPT_NAME": draw(st.one_of(st.just(""), utf8.filter(lambda p: p != "/"))).rstrip("/"),
        "PATH_INFO": draw(st.one_of(st.just(""), utf8)),
        "QUERY_STRING": draw(latin1),
        "SERVER_PROTOCOL": draw(st.sampled_from(["HTTP/1.0", "HTTP/1.1"])),
        "SERVER_NAME": "localhost",
        "SERVER_PORT": draw(st.sampled_from(["80", "8000"])),
        "wsgi.url_scheme": "http",
    }
    for name in draw(st.lists(cgi_names, unique=True, max_size=6)):
        environ["HTTP_" + name] = draw(latin1)
    if draw(st.booleans()):
        environ["CONTENT_LENGTH"] = str(draw(st.integers(0, 10**9)))
    if draw(st.booleans()):
        environ["CONTENT_TYPE"] = draw(latin1.filter(bool))
    return environ


@settings(max_examples=300, deadline=None)
@given(environs())
def test_a_valid_environ_survives_a_round_trip_through_a_scope(environ: dict[str, Any]) -> None:
    back = scope_to_environ(environ_to_scope(environ))
    for key, value in environ.items():
        if key.isupper():
            assert back.get(key) == value, key


@pytest.mark.parametrize(
    ("lines", "valid"),
    [
        ([b"10"], True),
        ([b"10", b"10"], True),
        ([b"10, 10"], True),
        ([b"0"], True),
        ([b"10", b"11"], False),
        ([b"+10"], False),
        ([b"1_0"], False),
        ([b"-5"], False),
        ([" ١٠".encode()], False),
        ([b""], False),
    ],
)
def test_content_length_rule(lines: list[bytes], valid: bool) -> None:
    scope = {"type": "http", "method": "POST", "path": "/", "headers": []}
    scope["headers"] = [(b"content-length", line) for line in lines]
    if valid:
        assert scope_to_environ(scope)["CONTENT_LENGTH"] == lines[0].split(b",")[0].decode()
    else:
        with pytest.raises(RequestHeaderError, match="content-length must be one number"):
            scope_to_environ(scope)
