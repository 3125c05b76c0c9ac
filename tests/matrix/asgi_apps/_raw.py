"""A bare ASGI app, no framework: it raises before ``http.response.start`` on ``/boom`` (every
framework sends its own 500 first, so only a bare app shows what the server does with the
error) and answers ``hello`` elsewhere."""

from __future__ import annotations

from typing import Any

MESSAGE = "the bare app raised before its response"


async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        raise RuntimeError("no lifespan here")  # AsgiToWsgi's "auto": not supported
    if scope["path"] == "/boom":
        raise RuntimeError(MESSAGE)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})
