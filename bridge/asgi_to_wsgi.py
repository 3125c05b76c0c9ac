"""``AsgiToWsgi``: an ASGI application served by a WSGI server (placeholder until issue 3)."""

from __future__ import annotations

from ._types import ASGIApp


class AsgiToWsgi:
    def __init__(self, asgi_app: ASGIApp) -> None:
        self.asgi_app = asgi_app

    def __call__(self, environ: object, start_response: object) -> list[bytes]:
        raise NotImplementedError
