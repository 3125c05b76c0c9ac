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

from bridge import AsgiToWsgi, ClientDisconnected
from tests.test_asgi_to_wsgi import Started, environ

MODES = ["per-thread", "shared"]
calls: list[str] = []


async def echo(request: Request) -> Response:
    calls.append("echo")
    return Response(await request.body())


async def answer_first(scope: dict[str, object], receive: object, send: object) -> None:
    """Sends its status and a first chunk, then reads the body (and so meets the limit)."""
    assert callable(receive) and callable(send)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"early ", "more_body": True})
    message = {"more_body": True}
    while message.get("more_body"):  # until the end, or http.disconnect at the cut
        message = await receive()
    await send({"type": "http.response.body", "body": b"end"})


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


@pytest.mark.timeout(20)
@pytest.mark.parametrize("mode", MODES)
def test_a_body_cut_after_the_response_started_is_logged(
    mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Too late for a 413 (the status went out): the app's receive() says the client left, its
    next send() raises, the server drops the connection, and the cut is one log line."""
    adapter = AsgiToWsgi(answer_first, loop=mode, lifespan="off", max_body_size=10, chunk_size=4)
    try:
        with pytest.raises(ClientDisconnected):
            post(adapter, b"y" * 100, chunked=True)
        assert adapter.stats()["too_large_413"] == 0
        assert post(adapter, b"y" * 8, chunked=True) == ("200 OK", b"early end")
    finally:
        adapter.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "bridge"]
    assert lines == [
        "bridge: request body of POST / cut at max_body_size=10 after the response had started "
        "(too late for a 413)"
    ]
