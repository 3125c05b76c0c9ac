"""How each server of the matrix is started: argv for ``tests.servers.serve`` (``{port}`` is
filled in) and the prefix the app answers under. The app itself is chosen by the environment
variable ``BRIDGE_MATRIX_APP`` (a module of ``wsgi_apps`` or ``asgi_apps``), read by the entry
modules ``tests.matrix.asgi_entry`` and ``tests.matrix.wsgi_entry``."""

from __future__ import annotations

from dataclasses import dataclass

HOST = "127.0.0.1"


@dataclass(frozen=True)
class ServerSpec:
    argv: tuple[str, ...]
    prefix: str = ""


def _uvicorn(http: str, loop: str, target: str) -> tuple[str, ...]:
    return ("uvicorn", "--http", http, "--loop", loop, "--host", HOST, "--port", "{port}",
            "--no-access-log", "--timeout-graceful-shutdown", "2", target)  # fmt: skip


def _gunicorn(*worker: str, target: str) -> tuple[str, ...]:
    return ("gunicorn", *worker, "--workers", "1", "--bind", f"{HOST}:{{port}}",
            "--no-control-socket", "--graceful-timeout", "3", target)  # fmt: skip


ASGI = "tests.matrix.asgi_entry:app"
WSGI = "tests.matrix.wsgi_entry:app"

# WSGI apps through WsgiToAsgi, on ASGI servers (and mounted inside ASGI apps).
ASGI_SERVERS: dict[str, ServerSpec] = {
    "uvicorn-h11": ServerSpec(_uvicorn("h11", "asyncio", ASGI)),
    "uvicorn-httptools": ServerSpec(_uvicorn("httptools", "uvloop", ASGI)),
    "hypercorn": ServerSpec(("hypercorn", "--bind", f"{HOST}:{{port}}", ASGI)),
    "daphne": ServerSpec(("daphne", "-b", HOST, "-p", "{port}", ASGI)),
    "granian": ServerSpec(
        ("granian", "--interface", "asgi", "--host", HOST, "--port", "{port}", ASGI)
    ),
    "gunicorn-asgi": ServerSpec(_gunicorn("-k", "asgi", target=ASGI)),
    "gunicorn-uvicorn-worker": ServerSpec(
        _gunicorn("-k", "uvicorn_worker.UvicornWorker", target=ASGI)
    ),
    "fastapi-mount": ServerSpec(
        _uvicorn("h11", "asyncio", "tests.matrix.asgi_entry:fastapi_mount"), "/mnt"
    ),
    "starlette-mount": ServerSpec(
        _uvicorn("h11", "asyncio", "tests.matrix.asgi_entry:starlette_mount"), "/mnt"
    ),
}

# ASGI apps through AsgiToWsgi, on WSGI servers.
WSGI_SERVERS: dict[str, ServerSpec] = {
    "gunicorn-sync": ServerSpec(_gunicorn("-k", "sync", target=WSGI)),
    "gunicorn-gthread": ServerSpec(_gunicorn("-k", "gthread", "--threads", "4", target=WSGI)),
    "waitress": ServerSpec(("waitress-serve", f"--listen={HOST}:{{port}}", "--threads=4", WSGI)),
    "uwsgi": ServerSpec(
        (
            "uwsgi",
            "--http-socket",
            f"{HOST}:{{port}}",
            "--module",
            WSGI,
            "--master",
            "--enable-threads",
            "--threads",
            "4",
            "--die-on-term",
            "--disable-logging",
        )
    ),
    "cheroot": ServerSpec(("cheroot", "--bind", f"{HOST}:{{port}}", WSGI)),
    "wsgiref": ServerSpec(("python", "-m", "tests.matrix.wsgiref_server", "{port}")),
}
