"""``AsgiToWsgi(max_body_size=...)``: a declared body over the limit gets 413 before the app
runs; a chunked one is cut at the limit (the app's receive() says the client left) and the
client gets 413 whatever the app made of it; a body within the limit passes whole."""

from __future__ import annotations

import io

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bridge import AsgiToWsgi
from tests.test_asgi_to_wsgi import Started, environ

MODES = ["per-thread", "shared"]
calls: list[str] = []


async def echo(request: Request) -> Response:
    calls.append("echo")
    return Response(await request.body())


app = Starlette(routes=[Route("/", echo, methods=["POST"])])


def post(adapter: AsgiToWsgi, body: bytes, chunked: bool) -> tuple[str, bytes]:
    env = environ("POST", body)
    if chunked:  # as a server that decoded a chunked body: no length, input terminated
        del env["CONTENT_LENGTH"]
        env["wsgi.input"] = io.BytesIO(body)
        env["wsgi.input_terminated"] = True
    started = Started()
    iterable = adapter(env, started)
    try:
        return started.calls[0][0], b"".join(iterable)
    finally:
        getattr(iterable, "close", lambda: None)()


@pytest.fixture(autouse=True)
def _no_calls() -> None:
    calls.clear()


@pytest.mark.timeout(20)
@pytest.mark.parametrize("mode", MODES)
def test_a_declared_body_over_the_limit_gets_413_and_the_app_never_runs(mode: str) -> None:
    adapter = AsgiToWsgi(app, loop=mode, lifespan="off", max_body_size=10)
    try:
        assert post(adapter, b"x" * 11, chunked=False)[0].startswith("413")
        assert calls == []
        assert adapter.stats()["too_large_413"] == 1
        assert post(adapter, b"x" * 10, chunked=False) == ("200 OK", b"x" * 10)
    finally:
        adapter.close()


@pytest.mark.timeout(20)
@pytest.mark.parametrize("mode", MODES)
def test_a_chunked_body_over_the_limit_is_cut_and_answered_413(
    mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    adapter = AsgiToWsgi(app, loop=mode, lifespan="off", max_body_size=100_000, chunk_size=4096)
    try:
        status, body = post(adapter, b"y" * 200_000, chunked=True)
        assert (status, body) == ("413 Request Entity Too Large", b"Request Entity Too Large")
        assert calls == ["echo"]  # it ran, and its receive() said the client left
        stats = adapter.stats()
        assert (stats["too_large_413"], stats["disconnects"]) == (1, 0)
        assert post(adapter, b"z" * 100_000, chunked=True) == ("200 OK", b"z" * 100_000)
    finally:
        adapter.close()
    assert "413 for POST /: request body over max_body_size=100000" in caplog.text
