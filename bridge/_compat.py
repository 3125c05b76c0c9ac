"""Drop-in names for the adapters bridge replaces, so switching is a one-line import change."""

from __future__ import annotations

from ._types import WSGIApp
from .wsgi_to_asgi import WsgiToAsgi


class WSGIMiddleware(WsgiToAsgi):
    """``WSGIMiddleware(app, workers=10, send_queue_size=10)``: the signature of a2wsgi's class
    and of Starlette's and uvicorn's former ``WSGIMiddleware(app, workers=...)``.

    ``workers`` is the thread pool's size. ``send_queue_size`` is accepted for compatibility;
    bridge bounds the response by bytes instead of by message count.
    """

    def __init__(self, app: WSGIApp, workers: int = 10, send_queue_size: int = 10) -> None:
        super().__init__(app, threads=workers)
