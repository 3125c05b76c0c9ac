"""docs/nginx.conf, run by Debian's nginx in front of ``bridge serve --root-path /app``.

nginx runs in the foreground as a child of the test, on an ephemeral port, with its pid file,
logs and temporary files in a temp dir: it touches neither /etc/nginx nor port 80.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.servers import ROOT, free_port
from tests.test_cli import ASGI, WSGI, bridge_serve

pytestmark = [pytest.mark.timeout(90), pytest.mark.server]

MiB = 1 << 20
WRAPPER = """\
daemon off;
master_process off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {tmp}/access.log;
    # As Debian's /etc/nginx/nginx.conf does (there for text/html): gzip holds a buffered stream.
    gzip on;
    gzip_types text/plain;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    include {tmp}/site.conf;
}}
"""


def _nginx_binary() -> str | None:
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")


@pytest.fixture(scope="module")
def nginx() -> str:
    """The nginx binary: Debian's, installed here when missing and we may."""
    found = _nginx_binary()
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        install = ["apt-get", "install", "-y", "-q", "nginx"]
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        if subprocess.run(install, env=env, capture_output=True, timeout=300).returncode:
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, timeout=300)
            subprocess.run(install, env=env, capture_output=True, timeout=300)
        found = _nginx_binary()
    if found is None:
        pytest.skip("nginx is not installed and cannot be (apt-get install nginx needs root)")
    return found


def site_config(backend_port: int, port: int) -> str:
    """docs/nginx.conf with the test's ports in place of 8000 and 80."""
    text = (ROOT / "docs" / "nginx.conf").read_text()
    for old, new in [
        ("server 127.0.0.1:8000;", f"server 127.0.0.1:{backend_port};"),
        ("listen 80;", f"listen 127.0.0.1:{port};"),
    ]:
        assert text.count(old) == 1, f"docs/nginx.conf no longer has {old!r}"
        text = text.replace(old, new)
    return text


@contextmanager
def run_nginx(binary: str, backend_port: int, tmp: Path) -> Iterator[str]:
    port = free_port()
    (tmp / "site.conf").write_text(site_config(backend_port, port))
    (tmp / "nginx.conf").write_text(WRAPPER.format(tmp=tmp))
    argv = [binary, "-p", str(tmp), "-e", str(tmp / "error.log"), "-c", str(tmp / "nginx.conf")]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        _wait_listening(proc, port, tmp / "error.log")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _wait_listening(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"nginx exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nginx did not listen within 30s:\n{log.read_text()}")


@contextmanager
def behind_nginx(binary: str, tmp: Path, *args: str) -> Iterator[str]:
    with (
        bridge_serve(*args, "--root-path", "/app") as backend,
        run_nginx(binary, backend.port, tmp) as url,
    ):
        yield url


# the app on its server -> the client address it is told (uvicorn trusts nginx's X-Forwarded-For)
BACKENDS = {("uvicorn", WSGI): "203.0.113.7", ("gunicorn", ASGI): "127.0.0.1"}


@pytest.mark.parametrize(("server", "app"), list(BACKENDS))
def test_the_app_behind_nginx(nginx: str, tmp_path: Path, server: str, app: str) -> None:
    headers = {"Host": "example.test", "X-Forwarded-For": "203.0.113.7"}
    with behind_nginx(nginx, tmp_path, app, "--server", server) as url:
        report = httpx.get(f"{url}/app/café", headers=headers, timeout=20).json()
        redirect = httpx.get(f"{url}/app/redirect", timeout=20)
        bare = httpx.get(f"{url}/app", timeout=20)
        upload = httpx.post(f"{url}/app/upload", content=os.urandom(20 * MiB), timeout=60).json()
        streamed = read_a_stream(url)
    assert (report["root"], report["path"].removeprefix("/app")) == ("/app", "/café")
    forwarded = report["headers"]
    assert forwarded["x-forwarded-for"] == "203.0.113.7, 127.0.0.1"
    assert (forwarded["x-forwarded-proto"], report["scheme"]) == ("http", "http")
    assert (forwarded["x-forwarded-host"], forwarded["host"]) == ("example.test", "example.test")
    assert report["client"] == BACKENDS[server, app]
    assert (redirect.status_code, redirect.headers["location"]) == (302, "/app/target")
    assert (bare.status_code, bare.headers["location"].endswith("/app/")) == (301, True)
    assert upload["body_size"] == 20 * MiB
    assert streamed == b"first\nsecond\n"


GZIP = {"Accept-Encoding": "gzip"}


def read_a_stream(url: str) -> bytes:
    """The first chunk must reach the client while the app waits for the client to have read
    it: an nginx that held the response back would leave both waiting (the app gives up after
    20 s and sends "timed out"). Gzipped, it passes only because the app sends
    ``X-Accel-Buffering: no`` (without it nginx's gzip holds the chunk: checked by hand)."""
    gate = uuid.uuid4().hex
    with httpx.stream("GET", f"{url}/app/stream?{gate}", headers=GZIP, timeout=30) as response:
        assert response.headers["content-encoding"] == "gzip"
        chunks = response.iter_bytes()
        received = b""
        while b"\n" not in received:
            received += next(chunks)
        assert received == b"first\n"
        httpx.get(f"{url}/app/release?{gate}", timeout=20).raise_for_status()
        return received + b"".join(chunks)


def test_flask_url_for_carries_the_prefix(nginx: str, tmp_path: Path) -> None:
    with behind_nginx(nginx, tmp_path, "tests.apps_serve:flask_app") as url:
        page = httpx.get(f"{url}/app/", timeout=20).text
        redirect = httpx.get(f"{url}/app/go", headers={"Host": "example.test"}, timeout=20)
        hello = httpx.get(f"{url}/app/hello/x", headers={"Host": "example.test"}, timeout=20)
    assert page == '<a href="/app/hello/caf%C3%A9">hello</a>'
    assert redirect.headers["location"] == "/app/hello/redirected"
    assert hello.json()["url"] == "http://example.test/app/hello/x"
