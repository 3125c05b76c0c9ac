"""Zero-copy files on WSGI servers (issue 7): a FastAPI ``FileResponse`` through
``AsgiToWsgi`` on real gunicorn (sync and gthread) goes out with ``sendfile()``.

Starlette sends ``http.response.pathsend`` because bridge's scope offers it; bridge hands the
open file to gunicorn's ``wsgi.file_wrapper``; gunicorn, seeing its own wrapper come back,
calls ``socket.sendfile()``. The proof that it did is counted in the worker itself
(``tests/gunicorn_count_sendfile.py`` wraps ``os.sendfile`` in ``post_worker_init``): an adapter
that streams the file through the loop, as a2wsgi does, leaves the count at 0. Range requests
(Starlette answers them with body messages, not pathsend) and HEAD are checked byte for byte.
waitress (it sends file bodies from its I/O thread), uWSGI (its file wrapper sends from C) and
cheroot (no file wrapper) are checked for bytes, Range, HEAD and background work.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.servers import Server, serve

pytestmark = [pytest.mark.server, pytest.mark.timeout(60)]

HOST = "127.0.0.1"
SIZE = 5 * 1024 * 1024 + 321  # several MiB, not a whole number of blocks
APP = "tests.apps_pathsend:app"
COMMON = ["--workers", "1", "--bind", f"{HOST}:{{port}}", "--no-control-socket"]
COMMON += ["--graceful-timeout", "5", "-c", "tests/gunicorn_count_sendfile.py"]
SERVERS = {
    "gunicorn-sync": ["gunicorn", "-k", "sync", *COMMON, APP],
    "gunicorn-gthread": ["gunicorn", "-k", "gthread", "--threads", "4", *COMMON, APP],
    "waitress": ["waitress-serve", f"--listen={HOST}:{{port}}", "--threads=1", APP],
    # uWSGI's own wsgi.file_wrapper sends from C; cheroot has none (bridge reads blocks).
    "uwsgi": [
        *("uwsgi", "--http-socket", f"{HOST}:{{port}}", "--module", APP, "--threads", "2"),
        *("--need-app", "--die-on-term", "--disable-logging"),
    ],
    "cheroot": ["cheroot", "--bind", f"{HOST}:{{port}}", APP],
}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    path = tmp_path_factory.mktemp("pathsend") / "data.bin"
    content = os.urandom(SIZE)
    path.write_bytes(content)
    return path, content


@pytest.fixture(scope="module", params=list(SERVERS))
def server(request: pytest.FixtureRequest, data: tuple[Path, bytes]) -> Iterator[Server]:
    with serve(SERVERS[request.param], env={"BRIDGE_TEST_FILE": str(data[0])}) as running:
        running.name = request.param  # type: ignore[attr-defined]
        yield running


def gunicorn_only(server: Server) -> None:
    if not server.name.startswith("gunicorn"):  # type: ignore[attr-defined]
        pytest.skip("os.sendfile is counted in gunicorn's workers only")


def counted(server: Server) -> dict[str, int]:
    response = httpx.get(f"{server.url}/sendfile-calls", timeout=10)
    assert response.status_code == 200
    return dict(response.json())


def test_file_bytes_are_exact(server: Server, data: tuple[Path, bytes]) -> None:
    response = httpx.get(f"{server.url}/file", timeout=30)
    assert response.status_code == 200, server.log()
    assert response.headers["content-length"] == str(SIZE)
    assert hashlib.sha256(response.content).digest() == hashlib.sha256(data[1]).digest()


def test_the_body_left_by_sendfile(server: Server) -> None:
    """Every byte of the body went through ``os.sendfile`` in the worker."""
    gunicorn_only(server)
    before = counted(server)
    response = httpx.get(f"{server.url}/file", timeout=30)
    assert response.status_code == 200 and len(response.content) == SIZE
    after = counted(server)
    assert after["calls"] > before["calls"], server.log()
    assert after["bytes"] - before["bytes"] == SIZE


def test_concurrent_downloads_are_exact(server: Server, data: tuple[Path, bytes]) -> None:
    digest = hashlib.sha256(data[1]).digest()

    def fetch(_: int) -> bytes:
        return hashlib.sha256(httpx.get(f"{server.url}/file", timeout=30).content).digest()

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        assert list(pool.map(fetch, range(4))) == [digest] * 4


@pytest.mark.parametrize(
    ("header", "start", "stop"),
    [("bytes=1000-1999", 1000, 2000), (f"bytes={SIZE - 700}-", SIZE - 700, SIZE)],
)
def test_a_range_request_gets_its_slice(
    server: Server, data: tuple[Path, bytes], header: str, start: int, stop: int
) -> None:
    """Starlette answers a Range with body messages (pathsend has no offset): 206, the
    right Content-Range and exactly those bytes."""
    response = httpx.get(f"{server.url}/file", headers={"Range": header}, timeout=30)
    assert response.status_code == 206, server.log()
    assert response.headers["content-range"] == f"bytes {start}-{stop - 1}/{SIZE}"
    assert response.headers["content-length"] == str(stop - start)
    assert response.content == data[1][start:stop]


def test_a_multi_range_request_gets_each_slice(server: Server, data: tuple[Path, bytes]) -> None:
    response = httpx.get(f"{server.url}/file", headers={"Range": "bytes=0-9,4096-4105"})
    assert response.status_code == 206, server.log()
    boundary = response.headers["content-type"].split("boundary=")[1]
    parts = response.content.split(f"--{boundary}".encode())
    # Exactly the one CRLF before the next boundary: the data itself may end in \n bytes.
    bodies = [part.split(b"\r\n\r\n", 1)[1].removesuffix(b"\r\n") for part in parts[1:-1]]
    assert bodies == [data[1][0:10], data[1][4096:4106]]
    assert len(response.content) == int(response.headers["content-length"])


def test_head_has_the_headers_and_no_body(server: Server) -> None:
    """Read on a raw socket to the end: after the header block there is not one byte (the
    server would put a body there if the adapter gave it one), and nothing was sendfile()d."""
    before = counted(server) if server.name.startswith("gunicorn") else None  # type: ignore[attr-defined]
    with socket.create_connection((HOST, server.port), timeout=30) as sock:
        sock.sendall(b"HEAD /file HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, rest = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), received[:200]
    assert f"content-length: {SIZE}".encode() in head.lower()
    assert rest == b""
    if before is not None:
        assert counted(server)["bytes"] == before["bytes"]


def test_background_work_after_the_file_runs(server: Server, data: tuple[Path, bytes]) -> None:
    """A ``FileResponse`` with a background task: the file is sent whole, the task runs."""
    before = counted(server)["background_runs"]
    for _ in range(2):
        response = httpx.get(f"{server.url}/file-then-background", timeout=30)
        assert response.status_code == 200 and response.content == data[1]
    # The task runs after the body; in gunicorn before close() returns, on waitress (file
    # bodies are closed by its I/O thread) when the request thread's loop next runs: the
    # second request's remainder may still be pending when the count is read.
    runs = counted(server)["background_runs"] - before
    assert runs >= 1 if server.name == "waitress" else runs == 2  # type: ignore[attr-defined]
