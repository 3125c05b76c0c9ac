"""``bridge serve`` / ``python -m bridge serve``: every server with a WSGI and an ASGI app, wrapped
only when needed; its options reach the server; each start-up error is one line."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import psutil
import pytest

from bridge._cli import StartError, load
from tests.servers import BIN, ROOT, Server, serve

pytestmark = [pytest.mark.timeout(60), pytest.mark.server]

SERVE = ["python", "-m", "bridge", "serve"]
WSGI, ASGI = "tests.apps_serve:wsgi_app", "tests.apps_serve:asgi_app"


def children(server: Server) -> list[psutil.Process]:
    return psutil.Process(server.proc.pid).children(recursive=True)


@contextmanager
def bridge_serve(*args: str) -> Iterator[Server]:
    """``python -m bridge serve ARGS --port {port}``, its worker processes stopped with it."""
    with serve([*SERVE, *args, "--port", "{port}"], timeout=40) as server:
        try:
            yield server
        finally:
            workers = children(server)
            server.stop()
            _, alive = psutil.wait_procs(workers, timeout=10)
            for process in alive:  # a worker the master left behind fails the test, once reaped
                process.kill()
            assert not alive, f"workers outlived their master: {alive}\n{server.log()}"


# (server, app) -> what must have called the app, and the Server header
EXPECTED = {
    ("uvicorn", WSGI): ("bridge.wsgi_to_asgi", "uvicorn"),
    ("uvicorn", ASGI): ("uvicorn.", "uvicorn"),
    ("gunicorn", WSGI): ("gunicorn.", "gunicorn"),
    ("gunicorn", ASGI): ("bridge.asgi_to_wsgi", "gunicorn"),
    ("gunicorn-asgi", WSGI): ("bridge.wsgi_to_asgi", "gunicorn"),
    ("gunicorn-asgi", ASGI): ("gunicorn.", "gunicorn"),
    ("hypercorn", WSGI): ("bridge.wsgi_to_asgi", "hypercorn"),
    ("hypercorn", ASGI): ("asyncio.queues", "hypercorn"),  # hypercorn's receive is a Queue.get
}


@pytest.mark.parametrize(("server", "app"), list(EXPECTED))
def test_each_server_runs_either_app_wrapped_only_when_needed(server: str, app: str) -> None:
    via, header = EXPECTED[server, app]
    with bridge_serve(app, "--server", server, "--root-path", "/app/") as srv:
        response = httpx.post(f"{srv.url}/café", content=b"x" * 100_000, timeout=20)
        log = srv.log()
    report = response.json()
    assert report["interface"] == app.rsplit("_", 1)[0].rsplit(":", 1)[1]
    assert report["via"].startswith(via), report
    assert response.headers["server"].startswith(header)
    assert report["root"] == "/app"  # the proxy removed /app: the app is told it is mounted there
    assert report["path"] in ("/café", "/app/café")  # ASGI's path may include root_path
    assert report["body_size"] == 100_000
    wrapped = "through " if via.startswith("bridge.") else "as is"
    assert f"is {report['interface'].upper()}: serving it on {server} {wrapped}" in log


def test_gunicorn_threads_serve_requests_at_once() -> None:
    """Two requests wait for each other in the app: only two threads can answer both."""
    with bridge_serve(WSGI, "--server", "gunicorn", "--threads", "2") as srv:
        results: list[Any] = []

        def call() -> None:
            results.append(httpx.get(f"{srv.url}/barrier", timeout=30).json()["meeting"])

        callers = [threading.Thread(target=call) for _ in range(2)]
        for caller in callers:
            caller.start()
        for caller in callers:
            caller.join()
    assert results == ["met", "met"]


@pytest.mark.parametrize("server", ["gunicorn", "gunicorn-asgi", "uvicorn", "hypercorn"])
def test_workers_are_worker_processes(server: str) -> None:
    with bridge_serve(ASGI, "--server", server, "--workers", "2") as srv:
        assert httpx.get(srv.url, timeout=20).status_code == 200
        deadline = time.monotonic() + 30  # gunicorn forks its workers a little apart
        while len(workers := worker_processes(srv)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(workers) == 2, workers


def worker_processes(server: Server) -> list[psutil.Process]:
    """The server's children, without the tracker multiprocessing may start (uvicorn and
    hypercorn spawn their workers with it)."""
    return [p for p in children(server) if "resource_tracker" not in " ".join(p.cmdline())]


@pytest.mark.parametrize(("mode", "shared"), [(None, False), ("shared", True)])
def test_loop_chooses_asgi_to_wsgi_loop(mode: str | None, shared: bool) -> None:
    """``shared`` runs every request on AsgiToWsgi's one background loop thread; per-thread runs
    each in gunicorn's request thread."""
    loop = ["--loop", mode] if mode else []
    with bridge_serve(ASGI, "--server", "gunicorn", *loop) as srv:
        thread = httpx.get(srv.url, timeout=20).json()["thread"]
    assert (thread == "bridge-asgi-loop") == shared, thread


def run_cli(*args: str, code: str = "") -> subprocess.CompletedProcess[str]:
    """Run the command (after ``code``, e.g. hiding a package) and return what it printed."""
    script = f"import sys\n{code}\nfrom bridge._cli import main\nmain(sys.argv[1:], 'bridge')"
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.parametrize(
    ("args", "code", "message", "status"),
    [
        (
            ["no_such_module:app"],
            "",
            "cannot import 'no_such_module': ModuleNotFoundError: No module named 'no_such_module'",
            1,
        ),
        (
            ["tests.apps_serve_broken:app"],
            "",
            "cannot import 'tests.apps_serve_broken': RuntimeError: broken at import",
            1,
        ),
        (["tests.apps_serve:nope"], "", "module 'tests.apps_serve' has no attribute 'nope'", 1),
        (
            ["tests.apps_serve:NOT_AN_APP"],
            "",
            "tests.apps_serve:NOT_AN_APP is a dict, not a WSGI or ASGI application",
            1,
        ),
        (
            ["tests.apps_serve"],
            "",
            "expected MODULE:APP (e.g. main:app), got 'tests.apps_serve'",
            2,
        ),
        (
            [WSGI, "--server", "hypercorn"],
            "sys.modules['hypercorn'] = None",
            "--server hypercorn needs the hypercorn package: pip install 'bridge[hypercorn]'",
            1,
        ),
        (
            [WSGI, "--server", "gunicorn-asgi"],
            "sys.modules['gunicorn'] = None",
            "--server gunicorn-asgi needs the gunicorn package: pip install 'bridge[gunicorn]'",
            1,
        ),
        (
            [WSGI, "--server", "gunicorn-asgi"],
            "import gunicorn.workers as w; w.SUPPORTED_WORKERS.pop('asgi');"
            " import gunicorn; gunicorn.__version__ = '23.0.0'",
            "--server gunicorn-asgi needs gunicorn 24 or later (its asgi worker), found 23.0.0:"
            " pip install 'bridge[gunicorn]'",
            1,
        ),
        ([WSGI, "--threads", "4"], "", "--threads is for --server gunicorn (gthread) only", 2),
        (
            [WSGI, "--server", "gunicorn", "--loop", "shared"],
            "",
            "--loop is for an ASGI app on --server gunicorn only",
            2,
        ),
        ([ASGI, "--root-path", "app"], "", "--root-path must start with '/', got 'app'", 2),
    ],
)
def test_start_up_errors_are_one_line(
    args: list[str], code: str, message: str, status: int
) -> None:
    result = run_cli("serve", *args, code=code)
    assert (result.returncode, result.stderr, result.stdout) == (
        status,
        f"bridge serve: error: {message}\n",
        "",
    )


def test_load_raises_start_errors() -> None:
    with pytest.raises(StartError, match="no attribute 'nope'"):
        load("demo_flask.app:nope")
    assert callable(load("demo_flask.app:app.wsgi_app"))


def test_help_reads_like_uvicorns() -> None:
    result = run_cli("serve", "--help")
    assert result.returncode == 0
    text = result.stdout
    assert text.startswith("usage: bridge serve [-h] [--server NAME]")
    assert "Serve a WSGI or ASGI app, wrapped only when the server speaks the other" in text
    for option, default in [
        ("--server NAME", "uvicorn"),
        ("--host HOST", "127.0.0.1"),
        ("--port INT", "8000"),
        ("--workers INT", "1"),
        ("--threads INT", "8"),
        ("--loop MODE", "per-thread"),
        ("--root-path PATH", "none"),
    ]:
        assert f"  {option}" in text
        assert f"[default: {default}]" in text
    assert "examples:\n  bridge serve " in text


def test_the_console_script_is_python_m_bridge() -> None:
    """pyproject's ``bridge`` script names ``main``; installed, it runs the same command."""
    pyproject = (ROOT / "pyproject.toml").read_text()  # (no tomllib on Python 3.10)
    assert '\n[project.scripts]\nbridge = "bridge._cli:main"\n' in pyproject
    assert "\ndependencies = []\n" in pyproject  # the servers stay optional
    via_module = subprocess.run(
        [sys.executable, "-m", "bridge", "serve", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert via_module.stdout.startswith("usage: python -m bridge serve")
    script = BIN / "bridge"
    if not script.exists():
        pytest.skip("the bridge script is not installed yet (pip install -e . creates it)")
    via_script = subprocess.run(
        [str(script), "serve", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert via_script.stdout == run_cli("serve", "--help").stdout  # the prog is "bridge" there too


def test_a_flask_app_builds_urls_under_its_root_path() -> None:
    with bridge_serve("tests.apps_serve:flask_app", "--root-path", "/app") as srv:
        page = httpx.get(f"{srv.url}/", timeout=20).text
        redirect = httpx.get(f"{srv.url}/go", timeout=20)
    assert page == '<a href="/app/hello/caf%C3%A9">hello</a>'
    assert (redirect.status_code, redirect.headers["location"]) == (302, "/app/hello/redirected")
