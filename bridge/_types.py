"""Type names for the two interfaces, kept loose where the specs are loose.

ASGI messages and scopes are plain dicts; the TypedDicts in asgiref would add a dependency for
little gain, so the aliases here say what a value is without pretending to check it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from types import TracebackType
from typing import Any, Protocol, TypeAlias

Scope: TypeAlias = MutableMapping[str, Any]
Message: TypeAlias = MutableMapping[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[Message]]
Send: TypeAlias = Callable[[Message], Awaitable[None]]
ASGIApp: TypeAlias = Callable[[Scope, Receive, Send], Awaitable[None]]

Environ: TypeAlias = dict[str, Any]
# The shape of typeshed's ``_typeshed.wsgi``, which Flask's and Django's annotations use, so
# ``WsgiToAsgi(flask_app)`` type-checks: ``sys.exc_info()`` may also be three Nones.
ExcInfo: TypeAlias = (
    tuple[type[BaseException], BaseException, TracebackType] | tuple[None, None, None]
)
Headers: TypeAlias = list[tuple[str, str]]
Write: TypeAlias = Callable[[bytes], object]


class StartResponse(Protocol):
    """PEP 3333 ``start_response(status, response_headers, exc_info=None)``."""

    def __call__(
        self, status: str, headers: Headers, exc_info: ExcInfo | None = ..., /
    ) -> Write: ...


WSGIApp: TypeAlias = Callable[[Environ, StartResponse], Iterable[bytes]]
