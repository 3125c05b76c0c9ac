"""Django through ``WsgiToAsgi`` beyond the matrix's contract, on every ASGI server of the matrix
(and mounted under FastAPI and Starlette): the ORM on SQLite from several threads, a form behind
CSRF, ``reverse()`` under a mount prefix, ``FileResponse`` with ranges past its first block, and
a multipart upload through ``request.FILES``. The project is ``tests.matrix.wsgi_apps.django_app``
(its ``StreamingHttpResponse`` is the matrix's ``streamed_response`` and ``disconnect_mid_stream``)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

import pytest

from tests.matrix.client import HOST, Reply, Request, fetch, get
from tests.matrix.run import OneServerAtATime, servers_fixture
from tests.matrix.scenarios import FILE_BYTES, FILE_SIZE, MiB, Target
from tests.matrix.servers import ASGI_SERVERS

pytestmark = [pytest.mark.server, pytest.mark.matrix]

FORM = "application/x-www-form-urlencoded"


def post_form(t: Target, rest: str, fields: dict[str, str], cookie: str | None = None) -> Reply:
    headers = [("Content-Type", FORM)] + ([("Cookie", cookie)] if cookie else [])
    body = urlencode(fields).encode()
    return fetch(t.port, Request("POST", t.path(rest).encode(), headers, body))


def titles(t: Target) -> list[str]:
    reply = get(t.port, t.path("/notes"))
    assert reply.status == 200, reply
    found: list[str] = json.loads(reply.body)["titles"]
    return found


def orm_from_several_threads(t: Target) -> None:
    """Concurrent requests write through the ORM, each on its own connection of its thread."""
    wanted = [f"{t.name}-{i}" for i in range(4)]
    with ThreadPoolExecutor(len(wanted)) as pool:
        replies = list(pool.map(lambda title: post_form(t, "/notes", {"title": title}), wanted))
    assert [r.status for r in replies] == [201] * len(wanted), replies
    assert sorted(title for title in titles(t) if title.startswith(t.name)) == wanted


def form_with_csrf(t: Target) -> None:
    """GET the form (cookie and token), POST both: saved, then a 302 to reverse("notes") within
    the mount prefix. Without the token Django refuses with a 403."""
    page = get(t.port, t.path("/form"))
    assert page.status == 200, page
    cookie = next(c.split(";")[0] for c in page.all("set-cookie") if c.startswith("csrftoken="))
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.body)
    assert token, page.body
    fields = {"title": t.name, "csrfmiddlewaretoken": token.group(1).decode()}
    saved = post_form(t, "/form", fields, cookie)
    assert saved.status == 302, saved
    location = (saved.header("location") or "").removeprefix(f"http://{HOST}:{t.port}")
    assert location == t.path("/notes"), saved.headers
    assert t.name in titles(t)
    refused = post_form(t, "/form", {"title": t.name + "-forged"}, cookie)
    assert refused.status == 403, refused
    assert t.name + "-forged" not in titles(t)


def raw_get(t: Target, rest: str, headers: list[tuple[str, str]]) -> tuple[bytes, bytes]:
    """The response's head and every byte after it up to the connection's end: a client that
    reads Content-Length bytes would not see bytes past them (``Connection: close``)."""
    with socket.create_connection((HOST, t.port), timeout=20) as sock:
        sock.sendall(Request("GET", t.path(rest).encode(), headers).head())
        data = b"".join(iter(lambda: sock.recv(65536), b""))
    head, _, rest_of_it = data.partition(b"\r\n\r\n")
    return head, rest_of_it


def file_ranges(t: Target) -> None:
    """Ranges inside, across and after FileResponse's 4 KiB blocks, and from the file's start
    (where bridge could hand the server the path): FileResponse sends whole blocks from the
    range's start, so the declared Content-Length must end the body (bridge's clamp), on the
    wire, not only for a client that stops reading there."""
    for first, last in ((5000, 5099), (4000, 8999), (0, 99), (FILE_SIZE - 536, FILE_SIZE - 1)):
        head, body = raw_get(t, "/file", [("Range", f"bytes={first}-{last}")])
        lines = head.decode("latin-1").lower().split("\r\n")
        assert lines[0].split()[1] == "206", lines
        assert f"content-range: bytes {first}-{last}/{FILE_SIZE}" in lines, lines
        assert f"content-length: {last + 1 - first}" in lines, lines
        assert body == FILE_BYTES[first : last + 1], (first, last, len(body))


def multipart(parts: list[tuple[str, str | None, bytes]], boundary: str) -> bytes:
    out = b""
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()
        out += b"Content-Type: application/octet-stream\r\n" if filename else b""
        out += b"\r\n" + data + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


def upload(t: Target) -> None:
    """A multipart upload: a file over FILE_UPLOAD_MAX_MEMORY_SIZE (a temporary file on disk), a
    small one (in memory) and a plain field, as request.FILES and request.POST see them."""
    big, small = os.urandom(3 * MiB), b"small file\r\n--not-a-boundary\r\n"
    boundary = "bridge-" + os.urandom(8).hex()
    body = multipart(
        [("big", "big.bin", big), ("small", "s.txt", small), ("note", None, b"hi")], boundary
    )
    headers = [("Content-Type", f"multipart/form-data; boundary={boundary}")]
    reply = fetch(t.port, Request("POST", t.path("/upload").encode(), headers, body), timeout=60)
    assert reply.status == 200, reply
    seen = json.loads(reply.body)
    assert seen["fields"] == {"note": "hi"}, seen
    assert seen["files"] == {
        field: {"name": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        for field, name, data in (("big", "big.bin", big), ("small", "s.txt", small))
    }, seen


EXTRAS: dict[str, Callable[[Target], None]] = {
    f.__name__: f for f in (orm_from_several_threads, form_with_csrf, file_ranges, upload)
}

servers = servers_fixture(ASGI_SERVERS)


@pytest.mark.timeout(90)
@pytest.mark.parametrize("extra", list(EXTRAS))
@pytest.mark.parametrize("server", list(ASGI_SERVERS))
def test_django(servers: OneServerAtATime, server: str, extra: str) -> None:
    target = servers.target("django_app", server, extra)
    try:
        EXTRAS[extra](target)
    except BaseException:
        print(servers.log()[-4000:])
        raise
