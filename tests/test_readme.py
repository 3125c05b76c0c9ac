"""Every command README.md shows, run as written (issue 9: a newcomer follows it top to bottom).

The commands are read from the README itself: each line of a ``bash`` block, and each inline
code span in the prose that starts like a command (``scripts/``, ``.venv/bin/python``,
``gunicorn``, ...). ``RUNNERS`` says how the suite runs each one, and
``test_every_command_has_a_runner`` fails on a command the README gains without one (or on a
runner whose command the README no longer shows), so no command goes untried. Each ``python``
block runs in a fresh interpreter, with the names it assumes (``flask_app``, ``fastapi_app``,
``legacy_app``) bound to the demo apps, and is then asked one request.

How "as written" is kept where a command cannot run verbatim inside the suite:

- servers get their port from the environment (``PORT`` for ``scripts/demo``,
  ``GUNICORN_CMD_ARGS`` for gunicorn), never from an edited command line, and are stopped by
  their pid with every worker checked gone;
- long benchmarks run with the ``--quick`` the README offers next to them, one scenario where
  they take ``--only``, and write to a temporary directory, never over ``bench/results``;
- ``scripts/test`` is CI's own command (``.ci/run`` runs it: checked here); the suite cannot run
  itself, so ``PYTHON=...`` is checked to be the interpreter ``scripts/test`` uses.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil
import pytest

from tests.servers import ROOT, Server, serve
from tests.test_conformance_doc import normalised
from tests.test_wsgi_to_asgi_e2e import wait_until

pytestmark = [pytest.mark.server, pytest.mark.timeout(150)]

README = ROOT / "README.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
COMMAND_STARTS = ("scripts/", "PYTHON=", "PORT=", ". .venv/", ".venv/bin/", "python ", "pip ")
COMMAND_STARTS += ("gunicorn ", "bridge ", "uvicorn ", "hypercorn ", "curl ", "bash ")
PYTHON = sys.executable  # the virtualenv's interpreter: the README's .venv/bin/python


def readme_commands(text: str) -> list[str]:
    """The README's commands in order: ``bash`` block lines (comments cut), then inline spans."""
    found = []
    for lang, body in FENCE.findall(text):
        if lang in ("bash", "sh", "shell", "console"):
            lines = (line.split(" # ")[0].strip() for line in body.splitlines())
            found += [line for line in lines if line and not line.startswith("#")]
    for span in re.findall(r"`([^`\n]+)`", FENCE.sub("", text)):
        if span.startswith(COMMAND_STARTS) and not span.endswith("/"):  # "scripts/": a folder
            found.append(span)
    return list(dict.fromkeys(found))


def python_blocks(text: str) -> list[str]:
    return [body for lang, body in FENCE.findall(text) if lang == "python"]


# -- servers ------------------------------------------------------------------------------------


def stop_all(server: Server) -> None:
    """Stop ``server`` by its pid; every process it started (gunicorn's workers) must go too."""
    workers = psutil.Process(server.proc.pid).children(recursive=True)
    assert server.stop() in (0, -15), server.log()
    _, alive = psutil.wait_procs(workers, timeout=10)
    for process in alive:
        process.kill()
    assert not alive, f"processes outlived {server.proc.args}: {alive}\n{server.log()}"


def get_pages(server: Server, *paths: str) -> None:
    with httpx.Client(base_url=server.url, timeout=20) as client:
        for path in paths:
            response = client.get(path)
            assert response.status_code == 200, (path, response.text, server.log())


def demo(command: str, tmp: Path) -> None:
    """``scripts/demo [--server gunicorn]``: on ``PORT``, in the suite's virtualenv."""
    argv = shlex.split(command)
    env = {"PORT": "{port}", "BRIDGE_VENV": sys.prefix}
    with serve([str(ROOT / argv[0]), *argv[1:]], env=env, timeout=60) as server:
        get_pages(server, "/", "/items", "/legacy/", "/legacy/handbook")
        assert f"{server.url}/legacy/ " in server.log()  # the URLs to try are printed
        stop_all(server)


def demo_port(command: str, tmp: Path) -> None:
    """``PORT=8001 scripts/demo``: the port is the one ``PORT`` names (here a free one)."""
    assert command.startswith("PORT=")
    demo(command.split(" ", 1)[1], tmp)


def activate(command: str, tmp: Path) -> None:
    """``. .venv/bin/activate`` puts the virtualenv's ``bridge`` first on the path."""
    if not (ROOT / ".venv" / "bin" / "activate").exists():
        pytest.skip("no .venv in this checkout (scripts/test or scripts/demo makes it)")
    found = run(["bash", "-c", f"{command} && command -v bridge"], 30).strip()
    assert Path(found) == ROOT / ".venv" / "bin" / "bridge"


def gunicorn(command: str, tmp: Path) -> None:
    """A gunicorn command line as written; the bind address comes from ``GUNICORN_CMD_ARGS``."""
    argv = shlex.split(command.removeprefix(".venv/bin/"))  # the suite's virtualenv's gunicorn
    env = {"GUNICORN_CMD_ARGS": "--bind 127.0.0.1:{port} --no-control-socket"}
    with serve(argv, env=env, timeout=60) as server:
        get_pages(server, "/items", "/legacy/", "/stream")
        master, workers = psutil.Process(server.proc.pid), int(argv[argv.index("--workers") + 1])
        assert wait_until(lambda: len(master.children()) == workers, timeout=30), server.log()
        stop_all(server)


FASTAPI_ON_GUNICORN = ".venv/bin/gunicorn -k gthread --workers 2 --threads 8 demo_fastapi.wsgi:app"


def bridge_serve(command: str, tmp: Path) -> None:
    """``bridge serve MODULE:APP`` / ``python -m bridge serve``, given the demo's apps."""
    head = ["bridge"] if command.startswith("bridge") else ["python", "-m", "bridge"]
    for app, paths in [("demo_flask.app:app", ["/", "/handbook"]), ("demo_fastapi.app:app", ["/"])]:
        argv = [*head, "serve", app, "--port", "{port}"]
        with serve(argv, timeout=60) as server:
            get_pages(server, *paths)
            stop_all(server)


# -- scripts and benchmarks ---------------------------------------------------------------------


def run(argv: list[str], timeout: float, **env: str) -> str:
    """``argv``'s output, once it exited 0. It runs in a process group of its own, killed whole
    when it overruns ``timeout``: a bench's servers and load generator go with it."""
    with subprocess.Popen(
        argv,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        start_new_session=True,
    ) as process:
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            out, err = process.communicate()
            pytest.fail(f"{argv} ran past {timeout} s:\n{out}{err}")
    assert process.returncode == 0, f"{argv} exited {process.returncode}:\n{out}{err}"
    return out


def scripts_test(command: str, tmp: Path) -> None:
    """CI runs exactly this: ``.ci/run`` is ``scripts/test`` with asyncio's debug mode."""
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert "bash scripts/test" in [line.strip() for line in lines]


def scripts_test_python(command: str, tmp: Path) -> None:
    """``PYTHON=...`` is the interpreter ``scripts/test`` sets up: one older than 3.10 is
    refused, by name, before anything is installed."""
    old = tmp / "python3.9"
    old.write_text("#!/bin/sh\nexit 1\n")  # what the version check sees from Python 3.9
    old.chmod(0o755)
    name, _ = command.split(" ", 1)[0].split("=")
    done = subprocess.run(
        ["scripts/test"], cwd=ROOT, env={**os.environ, name: str(old)},
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 1
    assert "bridge needs Python 3.10 or newer as $PYTHON" in done.stderr


def conformance(command: str, tmp: Path) -> None:
    """``scripts/conformance`` runs the checks and renders the committed docs/conformance.md."""
    run([str(ROOT / command), "--output", str(tmp / "conformance.md")], 280, BRIDGE_VENV=sys.prefix)
    committed = (ROOT / "docs" / "conformance.md").read_text(encoding="utf-8")
    fresh = (tmp / "conformance.md").read_text(encoding="utf-8")
    assert normalised(fresh) == normalised(committed)  # peers newer than the committed run's


def api_reference(command: str, tmp: Path) -> None:
    """``scripts/api-reference`` renders the committed docs/api.md."""
    run([str(ROOT / command), "--output", str(tmp / "api.md")], 60, BRIDGE_VENV=sys.prefix)
    committed = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    assert (tmp / "api.md").read_text(encoding="utf-8") == committed


def bench(command: str, tmp: Path) -> None:
    """A benchmark with its ``--quick``, one scenario where it has ``--only``, and its output
    (``--json``/``--md``, the README's path or none) in ``tmp``."""
    argv = shlex.split(command)
    module = argv[argv.index("-m") + 1]
    output = argv[argv.index("--json") : argv.index("--json") + 2] if "--json" in argv else []
    assert argv == [".venv/bin/python", "-m", module, *output], "a bench option the runner drops"
    quick = {
        "bench.inprocess": ["--only", "w2a-hello-1", "--json", str(tmp / "inprocess.json")],
        "bench.http_bench": ["--only", "http-flask-hello", "--json", str(tmp / "http.json")],
        "bench.slow_clients": ["--md", str(tmp / "slow_clients.md")],
        "bench.soak": ["--only", "uvicorn", "--md", str(tmp / "soak.md")],
    }[module]
    if module == "bench.http_bench" and not shutil.which("wrk"):
        pytest.skip("wrk is not installed (apt-get install wrk; the bench installs it as root)")
    out = run([PYTHON, "-m", module, "--quick", *quick], 140)
    written = {path.name: path.read_text() for path in tmp.iterdir()}
    assert written, f"{module} wrote nothing:\n{out}"
    if module == "bench.slow_clients":  # the README's claim: every plain request answered
        assert "| bridge (hold_body=1 MiB, the default) | 2/2 |" in written["slow_clients.md"]


def readme_tables(command: str, tmp: Path) -> None:
    """``bench.readme`` has nothing to copy: the README's tables are the committed results."""
    out = run([PYTHON, "-m", "bench.readme", "--check"], 30)
    assert "are the committed results" in out


def stamp(command: str, tmp: Path) -> None:
    """The run stamp of bench/results/http.md, which the README includes: the command of the
    README's own bash block, run there, but for the virtualenv's path."""
    assert RUNNERS[".venv/bin/" + command] is bench


def extras(command: str, tmp: Path) -> None:
    """``pip install 'bridge[NAME]'``: every extra the README names is one pyproject.toml
    declares (a line ``NAME = [`` in its ``[project.optional-dependencies]`` table)."""
    pyproject = (ROOT / "pyproject.toml").read_text()
    table = pyproject.split("[project.optional-dependencies]", 1)[1].split("\n[", 1)[0]
    declared = set(re.findall(r"^([\w-]+) = \[", table, re.MULTILINE))
    named = set(re.findall(r"bridge\[(\w+)\]", README.read_text()))
    assert named and named <= declared, (named, declared)


RUNNERS: dict[str, Callable[[str, Path], None]] = {
    "scripts/demo": demo,
    "scripts/demo --server gunicorn": demo,
    "scripts/test": scripts_test,
    "PORT=8001 scripts/demo": demo_port,
    ". .venv/bin/activate": activate,
    "PYTHON=python3.12 scripts/test": scripts_test_python,
    "scripts/conformance": conformance,
    "scripts/api-reference": api_reference,
    "gunicorn --preload": lambda _, tmp: gunicorn(FASTAPI_ON_GUNICORN + " --preload", tmp),
    "bridge serve MODULE:APP": bridge_serve,
    "python -m bridge serve": bridge_serve,
    "pip install 'bridge[uvicorn]'": extras,
    FASTAPI_ON_GUNICORN: gunicorn,
    ".venv/bin/python -m bench.http_bench --json bench/results/http.json": bench,
    "python -m bench.http_bench --json bench/results/http.json": stamp,
    ".venv/bin/python -m bench.readme": readme_tables,
    ".venv/bin/python -m bench.inprocess --json bench/results/inprocess.json": bench,
    ".venv/bin/python -m bench.slow_clients": bench,
    ".venv/bin/python -m bench.soak": bench,
}


def test_every_command_has_a_runner() -> None:
    found = readme_commands(README.read_text())
    assert sorted(found) == sorted(RUNNERS), "a README command without a runner, or the reverse"


SLOW = {"scripts/conformance": 300}  # runs the conformance checks: 35 s idle, more under load


@pytest.mark.parametrize(
    "command",
    [pytest.param(c, marks=pytest.mark.timeout(SLOW.get(c, 150))) for c in RUNNERS],
)
def test_the_command_works_as_written(command: str, tmp_path: Path) -> None:
    RUNNERS[command](command, tmp_path)


# -- the Python blocks ---------------------------------------------------------------------------

# What each block assumes, and one request through what it built.
PRELUDE = """
import asyncio, httpx
from fastapi import FastAPI
from bridge import WsgiToAsgi
from demo_flask.app import app as flask_app
fastapi_app = FastAPI()
legacy_app = WsgiToAsgi(flask_app)

def get(asgi, path):
    async def one():
        transport = httpx.ASGITransport(app=asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get(path)
    return asyncio.run(one())
"""
CHECKS = {
    "asgi_app = WsgiToAsgi(flask_app)": """
assert get(asgi_app, "/").status_code == 200
page = get(fastapi_app, "/legacy/")
assert page.status_code == 200 and 'href="/legacy/handbook"' in page.text, page.text
from werkzeug.test import Client
assert Client(wsgi_app).get("/legacy/handbook").status_code == 200
""",
    "StatsCollector(legacy_app": """
assert get(legacy_app, "/").status_code == 200
from prometheus_client import generate_latest
assert b'bridge_served_total{adapter="legacy"} 1.0' in generate_latest(REGISTRY)
""",
    "def readyz": """
ready = get(legacy_app, "/readyz")
assert (ready.status_code, ready.text) == (200, "ready"), ready.text
assert legacy_app.stats()["served"] == 1
real_stats = legacy_app.stats  # a backlog as long as the pool: the route sheds load
legacy_app.stats = lambda: {**real_stats(), "waiting": real_stats()["threads"]}
busy = get(legacy_app, "/readyz")  # answered on the priority thread all the same
assert (busy.status_code, busy.text) == (503, "busy"), busy.text
""",
}


def test_every_python_block_is_checked() -> None:
    blocks = python_blocks(README.read_text())
    assert [next(key for key in CHECKS if key in block) for block in blocks] == list(CHECKS)


@pytest.mark.parametrize("key", list(CHECKS))
def test_the_python_block_runs(key: str, tmp_path: Path) -> None:
    (block,) = [block for block in python_blocks(README.read_text()) if key in block]
    script = tmp_path / "block.py"
    script.write_text(PRELUDE + block + textwrap.dedent(CHECKS[key]))
    run([PYTHON, str(script)], 60)


def test_the_benchmark_figures_are_the_committed_results() -> None:
    """The README's speed tables are ``bench/results/*.md`` as a run wrote them, never retyped."""
    from bench.readme import INCLUDED, render

    text = README.read_text(encoding="utf-8")
    assert render(text) == text, "README.md's tables are not bench/results: run bench.readme"
    for name in INCLUDED:  # and each block is there, whole
        assert (ROOT / name).read_text(encoding="utf-8").strip("\n") in text
