"""``bridge serve MODULE:APP``: serve a WSGI or ASGI app on uvicorn, gunicorn or hypercorn.

The app is imported, recognised as WSGI or ASGI, and wrapped only when the chosen server speaks
the other interface. The servers are optional dependencies, imported only when chosen; each
start-up failure is one line on stderr and an exit status, never a traceback.

``--root-path`` has one meaning on every server: the app is mounted under that prefix and the
proxy in front has already removed it from the path (nginx's ``proxy_pass http://backend/;``).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Iterable, Sequence
from types import ModuleType
from typing import Any

from ._convert import is_asgi, is_wsgi, to_asgi, to_wsgi
from ._environ import wsgi_str
from ._types import Environ, StartResponse, WSGIApp

_APP_ENV = "BRIDGE_SERVE_APP"
# --server -> (the package it imports, the extra that installs it, the interface it speaks)
SERVERS = {
    "uvicorn": ("uvicorn", "uvicorn", "ASGI"),
    "gunicorn": ("gunicorn", "gunicorn", "WSGI"),
    "gunicorn-asgi": ("gunicorn", "gunicorn", "ASGI"),
    "hypercorn": ("hypercorn", "hypercorn", "ASGI"),
}
_EXAMPLE = """\
examples:
  bridge serve myproject.wsgi:application                  # Django (WSGI) on uvicorn
  bridge serve main:app --server gunicorn --threads 16     # FastAPI (ASGI) on gunicorn gthread
  bridge serve main:app --server hypercorn --root-path /api
"""


class StartError(Exception):
    """Why the server cannot start, as one line; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def load(target: str) -> Any:
    """Import ``module.path:attribute.path`` the way uvicorn and gunicorn do; check it is an app."""
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise StartError(f"expected MODULE:APP (e.g. main:app), got {target!r}", code=2)
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as exc:  # the app's own import error, whatever it is, in one line
        raise StartError(f"cannot import {module_name!r}: {type(exc).__name__}: {exc}") from None
    for name in attribute.split("."):
        try:
            obj = getattr(obj, name)
        except AttributeError:
            raise StartError(f"module {module_name!r} has no attribute {attribute!r}") from None
    if not is_asgi(obj) and not is_wsgi(obj):
        raise StartError(f"{target} is a {type(obj).__name__}, not a WSGI or ASGI application")
    return obj


def asgi_factory() -> Any:
    """The app named by ``$BRIDGE_SERVE_APP`` as ASGI: uvicorn's and hypercorn's entry in each
    worker process (the parent has checked it already)."""
    return to_asgi(load(os.environ[_APP_ENV]))


def mounted(app: WSGIApp, root_path: str) -> WSGIApp:
    """``app`` told it lives under ``root_path``: gunicorn's own ``SCRIPT_NAME`` setting expects
    the prefix still in the path, which the proxy has removed."""
    prefix = wsgi_str(root_path)

    def call(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        environ["SCRIPT_NAME"] = prefix + environ.get("SCRIPT_NAME", "")
        return app(environ, start_response)

    return call


def _require(server: str) -> ModuleType:
    package, extra, _ = SERVERS[server]
    try:
        module = importlib.import_module(package)
    except ImportError as exc:
        if exc.name != package:
            raise
        raise StartError(
            f"--server {server} needs the {package} package: pip install 'bridge[{extra}]'"
        ) from None
    if server == "gunicorn-asgi" and not _has_asgi_worker():
        raise StartError(
            f"--server gunicorn-asgi needs gunicorn 24 or later (its asgi worker), found"
            f" {module.__version__}: pip install 'bridge[gunicorn]'"
        )
    return module


def _has_asgi_worker() -> bool:
    from gunicorn.workers import SUPPORTED_WORKERS

    return "asgi" in SUPPORTED_WORKERS


def _serve_uvicorn(args: argparse.Namespace) -> None:
    import uvicorn

    uvicorn.run(
        "bridge._cli:asgi_factory",
        factory=True,
        interface="asgi3",
        host=args.host,
        port=args.port,
        workers=args.workers,
        root_path=args.root_path,
    )


def _serve_hypercorn(args: argparse.Namespace) -> None:
    from hypercorn.config import Config
    from hypercorn.run import run

    config = Config()
    config.application_path = "asgi:bridge._cli:asgi_factory()"
    config.bind = [f"{args.host}:{args.port}"]
    config.workers = args.workers
    config.root_path = args.root_path
    config.accesslog = "-"
    sys.exit(run(config))


def _serve_gunicorn(args: argparse.Namespace, app: Any) -> None:
    from gunicorn.app.base import BaseApplication

    options: dict[str, Any] = {
        "bind": f"{args.host}:{args.port}",
        "workers": args.workers,
        # gunicorn 27's control socket has one default path per user: two servers would clash.
        "control_socket_disable": True,
    }
    if args.server == "gunicorn-asgi":
        options.update(worker_class="asgi", root_path=args.root_path)
        app = to_asgi(app)
    else:
        options.update(worker_class="gthread", threads=args.threads or 8)
        app = to_wsgi(app, loop=args.loop or "per-thread")
        close = getattr(app, "close", None)
        if callable(close):  # runs the ASGI lifespan shutdown in each worker as it exits
            options["worker_exit"] = lambda server, worker: close()
        if args.root_path:
            app = mounted(app, args.root_path)

    class Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in options.items():
                if key in self.cfg.settings:  # an older gunicorn lacks the newer settings
                    self.cfg.set(key, value)

        def load(self) -> Any:
            return app

    Server().run()


def _check(args: argparse.Namespace, app: Any) -> str:
    """Refuse options the chosen server would ignore; return how the app will be served."""
    kind = "ASGI" if is_asgi(app) else "WSGI"
    speaks = SERVERS[args.server][2]
    if args.threads is not None and args.server != "gunicorn":
        raise StartError("--threads is for --server gunicorn (gthread) only", code=2)
    if args.loop is not None and (args.server != "gunicorn" or kind != "ASGI"):
        raise StartError("--loop is for an ASGI app on --server gunicorn only", code=2)
    if args.root_path and not args.root_path.startswith("/"):
        raise StartError(f"--root-path must start with '/', got {args.root_path!r}", code=2)
    adapter = "as is" if kind == speaks else f"through {kind.title()}To{speaks.title()}"
    return f"{args.app} is {kind}: serving it on {args.server} {adapter}"


def parser(prog: str | None = None) -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog=prog, description="WSGI <-> ASGI bridge.")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="serve a WSGI or ASGI app on uvicorn, gunicorn or hypercorn",
        description="Serve a WSGI or ASGI app, wrapped only when the server speaks the other"
        " interface.",
        epilog=_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = serve.add_argument
    add("app", metavar="MODULE:APP", help="The app: a module path, ':', an attribute path.")
    add("--server", choices=list(SERVERS), default="uvicorn", metavar="NAME",
        help="The server: uvicorn | gunicorn (gthread) | gunicorn-asgi (gunicorn's asgi worker) | hypercorn."
        " [default: uvicorn]")  # fmt: skip
    add("--host", default="127.0.0.1", help="Bind socket to this host. [default: 127.0.0.1]")
    add("--port", type=int, default=8000, metavar="INT",
        help="Bind socket to this port. [default: 8000]")  # fmt: skip
    add("--workers", type=int, default=1, metavar="INT",
        help="Number of worker processes. [default: 1]")  # fmt: skip
    add("--threads", type=int, metavar="INT",
        help="Threads per worker, gunicorn only. [default: 8]")  # fmt: skip
    add("--loop", choices=["per-thread", "shared"], metavar="MODE",
        help="AsgiToWsgi's event loops, for an ASGI app on gunicorn: per-thread | shared."
        " [default: per-thread]")  # fmt: skip
    add("--root-path", default="", metavar="PATH",
        help="The prefix the app is mounted under, removed by the proxy in front (sets"
        " SCRIPT_NAME / root_path). [default: none]")  # fmt: skip
    return top


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> None:
    """The ``bridge`` command (and ``python -m bridge``)."""
    args = parser(prog).parse_args(argv)
    args.root_path = args.root_path.rstrip("/")
    try:
        _require(args.server)
        app = load(args.app)
        print(f"bridge serve: {_check(args, app)}", file=sys.stderr, flush=True)
    except StartError as error:
        print(f"bridge serve: error: {error}", file=sys.stderr)
        sys.exit(error.code)
    os.environ[_APP_ENV] = args.app  # for asgi_factory in uvicorn's and hypercorn's workers
    if args.server == "uvicorn":
        _serve_uvicorn(args)
    elif args.server == "hypercorn":
        _serve_hypercorn(args)
    else:
        _serve_gunicorn(args, app)
