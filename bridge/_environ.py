"""Pure translation between an ASGI HTTP ``scope`` and a WSGI ``environ``: data in, data out.

Nothing here touches a thread, a loop or a socket, so every rule is tested with plain tables. The
rules come from PEP 3333 and the "WSGI compatibility" notes of the ASGI HTTP spec; where the two
leave room, SPEC.md's decisions apply (each is named where it is made).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from ._errors import ASGIProtocolError, RequestHeaderError, WSGIProtocolError
from ._types import Environ, Headers, Scope

# RFC 9110 token characters, the only ones a header name may hold.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
# A header value may hold tabs and visible latin-1, never CR, LF or NUL (response splitting).
_FORBIDDEN_IN_VALUE = re.compile(r"[\x00\r\n]")
_STATUS = re.compile(r"([1-9][0-9]{2}) [^\x00-\x08\x0a-\x1f\x7f]*\Z")
# Field lines one header name may have in a request: past this, 400 (as asgiref answers since
# CVE-2025-14550, where joining thousands of repeats stalled the event loop).
MAX_REPEATS = 100
_DEFAULT_PORTS = {"http": "80", "https": "443", "ws": "80", "wss": "443"}
# Hop-by-hop headers (RFC 9110 section 7.6.1) describe one connection; PEP 3333 forbids a WSGI
# application to send them, so those coming from an ASGI app are dropped on the way to WSGI.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)


def wsgi_str(text: str) -> str:
    """Text as PEP 3333 carries it: the UTF-8 bytes, each as one latin-1 character.

    A lone surrogate cannot be UTF-8 (``surrogateescape``'s own escapes aside): that path came
    from no HTTP request, and is refused with ``400``.
    """
    try:
        return text.encode("utf-8", "surrogateescape").decode("latin-1")
    except UnicodeEncodeError:
        raise RequestHeaderError(f"the request path is not valid Unicode: {text!r}") from None


def _native_bytes(text: str) -> bytes:
    """A PEP 3333 native string's bytes. A server that put text outside latin-1 there (it
    decoded the bytes as UTF-8 itself) gets the UTF-8 bytes back, not an exception."""
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape")


def split_path(root_path: str, path: str) -> tuple[str, str]:
    """Return ``(SCRIPT_NAME, PATH_INFO)`` as text, before the latin-1 step.

    Servers differ on whether ``path`` includes ``root_path`` (the ASGI spec says it does; older
    servers and some routers do not), so the prefix is removed only when it is there on a ``/``
    segment boundary: ``/abc`` under ``/a`` keeps its whole path. ``SCRIPT_NAME`` never ends in
    ``/``, so a root of ``/`` or ``/app/`` is trimmed first.
    """
    root = root_path.rstrip("/")
    if root and (path == root or path.startswith(root + "/")):
        return root, path[len(root) :]
    return root, path


def _server(scope: Scope, headers: Mapping[str, str], scheme: str) -> tuple[str, str]:
    server = scope.get("server")
    if server:
        host, port = server[0], server[1]
        return str(host), str(port) if port is not None else _DEFAULT_PORTS.get(scheme, "80")
    host_header = headers.get("HTTP_HOST", "")
    name, sep, port = host_header.rpartition(":")
    if not sep or "]" in port:  # no port, or the colon was inside an IPv6 literal
        name, port = host_header, _DEFAULT_PORTS.get(scheme, "80")
    return name or "localhost", port


def plain_length(value: str | bytes) -> int | None:
    """A ``Content-Length`` as RFC 9110 writes it (``1*DIGIT``, ASCII digits only), or None.

    ``int()`` alone would also take ``"+10"``, ``"1_0"``, ``" 10"`` and Arabic-Indic digits.
    """
    return int(value) if value.isascii() and value.isdigit() else None


def _header_items(raw_headers: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """Request headers as CGI variables, repeated ones joined (cookies with ``; ``).

    Raises ``RequestHeaderError`` for more than ``MAX_REPEATS`` lines of one name and for a
    ``Content-Length`` that is not one plain number.
    """
    out: dict[str, str] = {}
    repeats: dict[str, list[str]] = {}  # rare: kept apart so the common case stays a dict store
    for raw_name, raw_value in raw_headers:
        name = raw_name.decode("latin-1").lower()
        if "_" in name or name == "transfer-encoding":
            # ``X_User`` and ``X-User`` would both become HTTP_X_USER: a proxy that strips one
            # spelling lets a client spoof the other, so underscore names are not passed on.
            # Transfer-Encoding: the ASGI server has decoded the body already, and an app that
            # saw it would decode it again (Bottle answers 400); waitress drops it likewise.
            continue
        key = name.upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = "HTTP_" + key
        value = raw_value.decode("latin-1")
        if key not in out:
            out[key] = value
        elif key in repeats:
            repeats[key].append(value)
            if len(repeats[key]) > MAX_REPEATS:
                raise RequestHeaderError(
                    f"more than {MAX_REPEATS} {name!r} header lines (bridge's limit)"
                )
        else:
            repeats[key] = [out[key], value]
    for key, values in repeats.items():  # joined once each: linear in the number of lines
        out[key] = ("; " if key == "HTTP_COOKIE" else ", ").join(values)
    if "CONTENT_LENGTH" in out:
        out["CONTENT_LENGTH"] = _one_length(out["CONTENT_LENGTH"])
    return out


def _one_length(declared: str) -> str:
    """The request's ``Content-Length``: one number, or the same one repeated (RFC 9110 8.6)."""
    values = {value.strip() for value in declared.split(",")}
    if len(values) == 1:
        (value,) = values
        if plain_length(value) is not None:
            return value
    raise RequestHeaderError(
        f"content-length must be one number of ASCII digits (RFC 9110), got {declared!r}"
    )


def scope_to_environ(scope: Scope) -> Environ:
    """Build the CGI and ``wsgi.*`` keys of an environ from an ASGI HTTP scope.

    ``wsgi.input``, ``wsgi.errors`` and ``wsgi.file_wrapper`` are the caller's to add: they are
    I/O objects, not data.
    """
    scheme = scope.get("scheme") or "http"
    script_name, path_info = split_path(scope.get("root_path") or "", scope["path"])
    query = scope.get("query_string") or b""
    environ: Environ = _header_items(scope.get("headers") or ())
    server_name, server_port = _server(scope, environ, scheme)
    environ.update(
        {
            "REQUEST_METHOD": scope["method"],
            "SCRIPT_NAME": wsgi_str(script_name),
            "PATH_INFO": wsgi_str(path_info),
            "QUERY_STRING": query.decode("latin-1"),
            "SERVER_NAME": server_name,
            "SERVER_PORT": server_port,
            "SERVER_PROTOCOL": "HTTP/" + scope.get("http_version", "1.1"),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": scheme,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "wsgi.input_terminated": True,
            "asgi.scope": scope,
        }
    )
    client = scope.get("client")
    if client:
        environ["REMOTE_ADDR"] = str(client[0])
        environ["REMOTE_PORT"] = str(client[1])
    raw_path = scope.get("raw_path")
    if raw_path is not None:
        target = raw_path.decode("latin-1")
        environ["RAW_URI"] = f"{target}?{environ['QUERY_STRING']}" if query else target
    return environ


def declared_length(environ: Mapping[str, Any]) -> int | None:
    """``CONTENT_LENGTH`` as a number, or ``None`` when it is missing, empty or not one plain
    number (a WSGI server should have refused such a request; bridge does not guess)."""
    declared = environ.get("CONTENT_LENGTH")
    return plain_length(declared) if isinstance(declared, str) and declared else None


def check_status(status: object) -> int:
    """Validate a PEP 3333 status line and return its code."""
    if type(status) is not str:
        raise WSGIProtocolError(f"status must be a str, got {type(status).__name__}: {status!r}")
    match = _STATUS.match(status)
    if match is None:
        raise WSGIProtocolError(
            f"status must be a 3-digit code, a space and a reason phrase without control "
            f"characters, like '200 OK'; got {status!r}"
        )
    return int(match.group(1))


def encode_headers(headers: object) -> list[tuple[bytes, bytes]]:
    """Validate PEP 3333 response headers and encode them for an ASGI ``http.response.start``,
    each value without the spaces and tabs around it."""
    if type(headers) is not list:
        raise WSGIProtocolError(f"response headers must be a list, got {type(headers).__name__}")
    out = []
    for item in headers:
        if type(item) is not tuple or len(item) != 2:
            raise WSGIProtocolError(f"each response header must be a (name, value) tuple: {item!r}")
        name, value = item
        if type(name) is not str or type(value) is not str:
            raise WSGIProtocolError(f"header name and value must be str, not bytes: {item!r}")
        if not _TOKEN.match(name):
            raise WSGIProtocolError(f"header name is not an HTTP token: {name!r}")
        if _FORBIDDEN_IN_VALUE.search(value):
            raise WSGIProtocolError(f"header {name!r} has CR, LF or NUL in its value: {value!r}")
        try:
            # Whitespace around a field value is not part of it (RFC 9110 section 5.5), and ASGI
            # servers refuse it (h11): Django's Set-Cookie values start with a space.
            out.append((name.lower().encode("ascii"), value.strip(" \t").encode("latin-1")))
        except UnicodeEncodeError:
            raise WSGIProtocolError(f"header {name!r} has a value outside latin-1") from None
    return out


# ---------------------------------------------------------------------------------------------
# environ -> scope (AsgiToWsgi)


_CGI_HEADERS = {"CONTENT_TYPE": b"content-type", "CONTENT_LENGTH": b"content-length"}
# Some gateways pass every request header as HTTP_* too (nginx to uwsgi and FastCGI backends),
# so Content-Type and Content-Length arrive twice. The CGI variables are the request's (RFC 3875
# section 4.1.18: the copies SHOULD not be made); passed on, a copy would be a second field line,
# which a WSGI app behind WsgiToAsgi sees joined as "a, a".
_HTTP_COPIES = frozenset({"HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"})


def _scope_headers(environ: Mapping[str, Any]) -> list[tuple[bytes, bytes]]:
    # Once per request over the whole environ: kept to plain string operations.
    headers = []
    for key, value in environ.items():
        if key[:5] == "HTTP_":
            if key in _HTTP_COPIES:
                continue
            name = key[5:].replace("_", "-").lower().encode("latin-1")
        elif key in _CGI_HEADERS:
            if not value:  # CGI servers set them to "" when the request has none
                continue
            name = _CGI_HEADERS[key]
        else:
            continue
        headers.append((name, _native_bytes(value)))
    return headers


def _address(host: Any, port: Any) -> tuple[str, int] | None:
    if not host:
        return None
    try:
        return host, int(port)
    except (TypeError, ValueError):
        return host, 0


def environ_to_scope(environ: Mapping[str, Any], spec_version: str = "2.4") -> Scope:
    """Build an ASGI HTTP scope from a WSGI environ (without ``state`` and ``extensions``)."""
    script_name = _native_bytes(environ.get("SCRIPT_NAME", ""))
    path_info = _native_bytes(environ.get("PATH_INFO", ""))
    raw_uri = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    protocol = environ.get("SERVER_PROTOCOL", "HTTP/1.1")
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": spec_version},
        "http_version": protocol[5:] if protocol.startswith("HTTP/") else "1.1",
        "method": environ["REQUEST_METHOD"].upper(),
        "scheme": environ.get("wsgi.url_scheme", "http"),
        "root_path": script_name.decode("utf-8", "replace"),
        "path": (script_name + path_info).decode("utf-8", "replace"),
        "query_string": _native_bytes(environ.get("QUERY_STRING", "")),
        "headers": _scope_headers(environ),
        "client": _address(environ.get("REMOTE_ADDR"), environ.get("REMOTE_PORT", 0)),
        "server": _address(environ.get("SERVER_NAME"), environ.get("SERVER_PORT", 0)),
    }
    if raw_uri:  # the bytes as received, or none at all (never rebuilt from the decoded path)
        scope["raw_path"] = _native_bytes(raw_uri.split("?", 1)[0])
    return scope


def decode_headers(headers: Iterable[tuple[bytes, bytes]]) -> Headers:
    """ASGI response headers as PEP 3333 wants them: latin-1 ``str``, hop-by-hop dropped.

    A name that is not an HTTP token, or CR, LF or NUL in a value, is refused: not every WSGI
    server checks (wsgiref writes them out), and passed on they split the response.
    """
    out = []
    for name, value in headers:
        if not isinstance(name, bytes) or not isinstance(value, bytes):
            raise ASGIProtocolError(f"response header names and values must be bytes: {name!r}")
        text = name.decode("latin-1")
        if text not in _CHECKED_NAMES:  # an app sends the same few names: check each once
            if text.lower() in HOP_BY_HOP:
                continue
            if not _TOKEN.match(text):
                raise ASGIProtocolError(f"response header name is not an HTTP token: {name!r}")
            if len(_CHECKED_NAMES) < 1024:
                _CHECKED_NAMES.add(text)
        decoded = value.decode("latin-1")
        if _FORBIDDEN_IN_VALUE.search(decoded):  # the same rule as for WSGI response headers
            raise ASGIProtocolError(f"response header {name!r} has CR, LF or NUL in its value")
        out.append((text, decoded))
    return out


_CHECKED_NAMES: set[str] = set()  # valid, not hop-by-hop; bounded so no app can grow it forever
