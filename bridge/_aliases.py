"""Drop-in names for the adapters bridge replaces, so switching is a one-line import change."""

from __future__ import annotations

from typing import Any

from ._types import ASGIApp, WSGIApp
from .asgi_to_wsgi import AsgiToWsgi
from .wsgi_to_asgi import WsgiToAsgi


class WSGIMiddleware(WsgiToAsgi):
    """``WSGIMiddleware(app, workers=10, send_queue_size=10)``: the signature of a2wsgi's class
    and of Starlette's and uvicorn's former ``WSGIMiddleware(app, workers=...)``.

    ``workers`` is the thread pool's size. ``send_queue_size`` is accepted for compatibility;
    bridge bounds the response by bytes instead of by message count.
    """

    def __init__(self, app: WSGIApp, workers: int = 10, send_queue_size: int = 10) -> None:
        super().__init__(app, threads=workers)


class ASGIMiddleware(AsgiToWsgi):
    """``ASGIMiddleware(app, wait_time=None, loop=None)``: the signature of a2wsgi's class.

    ``wait_time`` bounds, as in a2wsgi, how long the app may run on after its response
    ended (background tasks) before it is cancelled. A ``loop`` given (an event loop the
    caller runs in a thread of their own) runs every request on it, as a2wsgi does; without
    one, each server thread gets its own loop (bridge's fast path).
    """

    def __init__(self, app: ASGIApp, wait_time: float | None = None, loop: Any = None) -> None:
        super().__init__(app, wait_time=wait_time, loop="per-thread" if loop is None else loop)
