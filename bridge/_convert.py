"""Telling ASGI and WSGI applications apart, and wrapping whichever one needs it."""

from __future__ import annotations

import inspect
from typing import Any

from ._types import ASGIApp, WSGIApp
from .wsgi_to_asgi import WsgiToAsgi


def is_asgi(app: object) -> bool:
    """True for an ASGI 3 app: a coroutine function, or an object whose ``__call__`` is one
    (a ``WsgiToAsgi`` included). A class is not an app: its instances may be."""
    if isinstance(app, WsgiToAsgi):
        return True
    if inspect.iscoroutinefunction(app):
        return True
    if inspect.isfunction(app) or inspect.isclass(app) or not callable(app):
        return False
    return inspect.iscoroutinefunction(type(app).__call__)


def is_wsgi(app: object) -> bool:
    """True for a callable that takes ``(environ, start_response)`` and is not an ASGI app.

    A callable whose signature cannot be read (a builtin) counts as WSGI; a class does not."""
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
    """``app`` as an ASGI application, wrapped only if it needs it.

    An ASGI app is returned as is; an ``AsgiToWsgi`` is unwrapped (its ``asgi_app``), never
    wrapped twice; a WSGI app is wrapped in ``WsgiToAsgi(app, **options)``.

    Args:
        app: a WSGI or ASGI application.
        options: ``WsgiToAsgi``'s keyword options (``threads=``, ...), used only when ``app``
            is wrapped.

    Raises:
        TypeError: ``app`` is neither (``is_asgi`` and ``is_wsgi`` both say no).
    """
    from .asgi_to_wsgi import AsgiToWsgi

    if isinstance(app, AsgiToWsgi):
        return app.asgi_app
    if is_asgi(app):
        return app  # type: ignore[no-any-return]
    if is_wsgi(app):
        return WsgiToAsgi(app, **options)
    raise TypeError(f"to_asgi() needs a WSGI or ASGI application, got {app!r}")


def to_wsgi(app: Any, **options: Any) -> WSGIApp:
    """``app`` as a WSGI application, wrapped only if it needs it: the mirror of ``to_asgi``.

    A WSGI app is returned as is, a ``WsgiToAsgi`` unwrapped (its ``wsgi_app``), an ASGI app
    wrapped in ``AsgiToWsgi(app, **options)``: ``options`` are that class's keyword options
    (``loop=``, ...), used only then.

    Raises:
        TypeError: ``app`` is neither a WSGI nor an ASGI application.
    """
    from .asgi_to_wsgi import AsgiToWsgi

    if isinstance(app, WsgiToAsgi):
        return app.wsgi_app
    if is_asgi(app):
        return AsgiToWsgi(app, **options)
    if is_wsgi(app):
        return app  # type: ignore[no-any-return]
    raise TypeError(f"to_wsgi() needs a WSGI or ASGI application, got {app!r}")
