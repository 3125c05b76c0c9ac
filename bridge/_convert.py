"""Telling ASGI and WSGI applications apart, and wrapping whichever one needs it."""

from __future__ import annotations

import inspect
from typing import Any

from ._types import ASGIApp, WSGIApp
from .wsgi_to_asgi import WsgiToAsgi


def is_asgi(app: object) -> bool:
    """True for an ASGI 3 app: a coroutine function, or an object whose ``__call__`` is one."""
    if isinstance(app, WsgiToAsgi):
        return True
    if inspect.iscoroutinefunction(app):
        return True
    if inspect.isfunction(app) or inspect.isclass(app) or not callable(app):
        return False
    return inspect.iscoroutinefunction(type(app).__call__)


def is_wsgi(app: object) -> bool:
    """True for a callable that takes ``(environ, start_response)`` and is not an ASGI app."""
    if not callable(app) or inspect.isclass(app) or is_asgi(app):
        return False
    try:
        inspect.signature(app).bind({}, None)
    except TypeError:
        return False
    except ValueError:  # no signature to read (a builtin): give it the benefit of the doubt
        return True
    return True


def to_asgi(app: Any, **options: Any) -> ASGIApp:
    """``app`` as an ASGI application: returned as is when it is one already, unwrapped when it
    is an ``AsgiToWsgi``, else wrapped in ``WsgiToAsgi(app, **options)``."""
    from .asgi_to_wsgi import AsgiToWsgi

    if isinstance(app, AsgiToWsgi):
        return app.asgi_app
    if is_asgi(app):
        return app  # type: ignore[no-any-return]
    if is_wsgi(app):
        return WsgiToAsgi(app, **options)
    raise TypeError(f"to_asgi() needs a WSGI or ASGI application, got {app!r}")


def to_wsgi(app: Any, **options: Any) -> WSGIApp:
    """``app`` as a WSGI application: the mirror image of ``to_asgi``."""
    from .asgi_to_wsgi import AsgiToWsgi

    if isinstance(app, WsgiToAsgi):
        return app.wsgi_app
    if is_asgi(app):
        return AsgiToWsgi(app, **options)
    if is_wsgi(app):
        return app  # type: ignore[no-any-return]
    raise TypeError(f"to_wsgi() needs a WSGI or ASGI application, got {app!r}")
