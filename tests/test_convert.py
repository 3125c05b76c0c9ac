"""to_asgi / to_wsgi / is_asgi / is_wsgi."""

from __future__ import annotations

from typing import Any

import flask
import pytest
from fastapi import FastAPI

from bridge import AsgiToWsgi, WsgiToAsgi, is_asgi, is_wsgi, to_asgi, to_wsgi


def wsgi_fn(environ: Any, start_response: Any) -> list[bytes]:
    return []


async def asgi_fn(scope: Any, receive: Any, send: Any) -> None:
    pass


class AsgiObject:
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        pass


@pytest.mark.parametrize("app", [asgi_fn, AsgiObject(), FastAPI(), WsgiToAsgi(wsgi_fn)])
def test_asgi_apps(app: Any) -> None:
    assert is_asgi(app) and not is_wsgi(app)
    assert to_asgi(app) is app


@pytest.mark.parametrize("app", [wsgi_fn, flask.Flask(__name__)])
def test_wsgi_apps(app: Any) -> None:
    assert is_wsgi(app) and not is_asgi(app)
    assert to_wsgi(app) is app
    wrapped = to_asgi(app, threads=3)
    assert isinstance(wrapped, WsgiToAsgi) and wrapped.threads == 3
    assert to_wsgi(wrapped) is app  # unwrapped, never double wrapped


@pytest.mark.parametrize(
    "thing", [None, 42, "app", lambda: None, lambda a, b, c, d: None, AsgiObject]
)
def test_non_apps_are_refused_with_a_clear_message(thing: Any) -> None:
    assert not is_wsgi(thing) or not is_asgi(thing)
    if not is_wsgi(thing):
        with pytest.raises(TypeError, match="WSGI or ASGI application"):
            to_asgi(thing)
    if not is_asgi(thing) and not is_wsgi(thing):
        with pytest.raises(TypeError, match="WSGI or ASGI application"):
            to_wsgi(thing)


def test_asgi_apps_are_wrapped_for_wsgi_and_unwrapped_back() -> None:
    wrapped = to_wsgi(asgi_fn, loop="shared", lifespan="off")
    assert isinstance(wrapped, AsgiToWsgi) and is_wsgi(wrapped) and not is_asgi(wrapped)
    assert to_asgi(wrapped) is asgi_fn  # never an ASGI -> WSGI -> ASGI sandwich
