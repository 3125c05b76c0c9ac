"""``python -m bridge serve MODULE:APP --server uvicorn|gunicorn``: serve any app on either server.

The app is imported, recognised as WSGI or ASGI, and wrapped only when the chosen server speaks
the other interface. The servers are optional dependencies, imported only when chosen.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any

from ._convert import to_asgi, to_wsgi

_APP_ENV = "BRIDGE_SERVE_APP"


def load(target: str) -> Any:
    """Import ``module.path:attribute.path`` the way uvicorn and gunicorn do."""
    module_name, sep, attribute = target.partition(":")
    if not sep or not module_name or not attribute:
        raise SystemExit(f"bridge serve: expected MODULE:APP, got {target!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    obj: Any = importlib.import_module(module_name)
    for name in attribute.split("."):
        try:
            obj = getattr(obj, name)
        except AttributeError:
            raise SystemExit(
                f"bridge serve: {module_name!r} has no attribute {attribute!r}"
            ) from None
    return obj


def asgi_factory() -> Any:
    """The app named by ``$BRIDGE_SERVE_APP`` as ASGI: uvicorn's ``factory`` entry in each worker."""
    return to_asgi(load(os.environ[_APP_ENV]))


def _serve_uvicorn(args: argparse.Namespace) -> None:
    import uvicorn

    os.environ[_APP_ENV] = args.app
    asgi_factory()  # fail here, once, with a clear message, rather than in every worker
    uvicorn.run(
        "bridge._cli:asgi_factory",
        factory=True,
        interface="asgi3",
        host=args.host,
        port=args.port,
        workers=args.workers,
    )


def _serve_gunicorn(args: argparse.Namespace) -> None:
    from gunicorn.app.base import BaseApplication

    app = to_wsgi(load(args.app))
    options = {
        "bind": f"{args.host}:{args.port}",
        "workers": args.workers,
        "worker_class": "gthread",
        "threads": args.threads,
        # gunicorn 27's control socket has one default path per user: two servers would clash.
        "control_socket_disable": True,
    }
    close = getattr(app, "close", None)
    if callable(close):
        # Runs the ASGI lifespan shutdown in each worker as it exits.
        options["worker_exit"] = lambda server, worker: close()

    class Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return app

    Server().run()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bridge", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve a WSGI or ASGI app on uvicorn or gunicorn")
    serve.add_argument("app", help="the application, as MODULE:APP")
    serve.add_argument("--server", choices=["uvicorn", "gunicorn"], default="uvicorn")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="server processes")
    serve.add_argument("--threads", type=int, default=8, help="threads per gunicorn worker")
    args = parser.parse_args(argv)
    if args.server == "uvicorn":
        _serve_uvicorn(args)
    else:
        _serve_gunicorn(args)
