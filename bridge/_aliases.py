"""Drop-in names for the adapters bridge replaces, so switching is a one-line import change."""

from __future__ import annotations

from typing import Any

from ._types import ASGIApp, WSGIApp
from .asgi_to_wsgi import AsgiToWsgi
from .wsgi_to_asgi import WsgiToAsgi


class WSGIMiddleware(WsgiToAsgi):
    """``WsgiToAsgi`` under the signature of a2wsgi's ``WSGIMiddleware``, which is also
    ``uvicorn.middleware.wsgi.WSGIMiddleware`` (a2wsgi's class when a2wsgi is installed, else
    uvicorn's own, deprecated one, both ``(app, workers=10)``): switching is a change of import.

    Args:
        app: the WSGI application, as ``WsgiToAsgi``'s ``wsgi_app``.
        workers: the thread pool's size: ``WsgiToAsgi``'s ``threads``.
        send_queue_size: accepted for compatibility and unused: bridge bounds a response in
            flight by bytes (256 KiB), not by a count of messages.
    """

    def __init__(self, app: WSGIApp, workers: int = 10, send_queue_size: int = 10) -> None:
        super().__init__(app, threads=workers)


class ASGIMiddleware(AsgiToWsgi):
    """``AsgiToWsgi`` under the signature of a2wsgi's ``ASGIMiddleware``, so switching is a
    change of import.

    Args:
        app: the ASGI application, as ``AsgiToWsgi``'s ``asgi_app``.
        wait_time: as in a2wsgi, seconds the app may run on after its response ended
            (background tasks) before it is cancelled; ``None``: as long as it takes.
        loop: an event loop the caller runs in a thread of their own: every request runs on
            it, as a2wsgi does (``AsgiToWsgi(loop=...)``). ``None``: each server thread gets a
            loop of its own (``loop="per-thread"``, bridge's fast path).
    """

    def __init__(self, app: ASGIApp, wait_time: float | None = None, loop: Any = None) -> None:
        super().__init__(app, wait_time=wait_time, loop="per-thread" if loop is None else loop)
