"""The conformance matrix, ASGI side: each ASGI framework through ``AsgiToWsgi`` on each WSGI
server, started for real on 127.0.0.1, running the one scenario set of ``tests.matrix.scenarios``."""

from __future__ import annotations

import gc
import logging
import threading
from pathlib import Path

import pytest

from bridge import AsgiToWsgi
from tests.matrix.asgi_apps import _raw
from tests.matrix.client import get
from tests.matrix.run import (
    ANY,
    REFUSES_NON_ASCII_TARGET,
    Known,
    OneServerAtATime,
    cases,
    run_case,
    server_bug,
    servers_fixture,
)
from tests.matrix.scenarios import SCENARIOS, wait_until
from tests.matrix.servers import WSGI_SERVERS
from tests.servers import serve

pytestmark = [pytest.mark.server, pytest.mark.matrix]

FRAMEWORKS = ["starlette", "fastapi_async", "fastapi_def", "django_asgi", "litestar", "quart"]
KNOWN: Known = {
    **{
        (ANY, server, "raw_non_ascii_query"): REFUSES_NON_ASCII_TARGET
        for server in ("gunicorn-sync", "gunicorn-gthread", "waitress", "cheroot")
    },
    (ANY, "cheroot", "encoded_slash"): server_bug(
        "cheroot leaves %2F encoded in PATH_INFO, which PEP 3333 (via CGI) says is decoded"
    ),
    (ANY, "cheroot", "repeated_headers"): server_bug(
        "cheroot keeps only the last of repeated request header lines in the environ"
    ),
    (ANY, "wsgiref", "chunked_upload"): server_bug(
        "wsgiref does not decode a chunked request body: wsgi.input is empty without Content-Length"
    ),
    (ANY, "uwsgi", "chunked_upload"): server_bug(
        "uWSGI's http-socket does not decode a chunked request body into wsgi.input"
    ),
    # Django's handler sends no Content-Length; bridge drops the HEAD body as ASGI servers do.
    ("django_asgi", "wsgiref", "head_hello"): server_bug(
        "wsgiref answers a HEAD whose app sent no body and no Content-Length with"
        " 'Content-Length: 0', which RFC 9110 (8.6) forbids unless the GET's body is empty"
    ),
}
assert all(key[2] in (ANY, *SCENARIOS) for key in KNOWN)


servers = servers_fixture(WSGI_SERVERS)


@pytest.mark.timeout(90)
@pytest.mark.parametrize(
    ("framework", "server", "scenario"), cases(FRAMEWORKS, list(WSGI_SERVERS), KNOWN)
)
def test_pair(servers: OneServerAtATime, framework: str, server: str, scenario: str) -> None:
    run_case(servers, framework, server, scenario)


# uWSGI with --catch-exceptions (a development option) answers the 500 itself, with the
# traceback: bridge then leaves the error to it, as to every other server.
CATCHING_UWSGI = (*WSGI_SERVERS["uwsgi"].argv, "--catch-exceptions")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("server", [*WSGI_SERVERS, "uwsgi-catch-exceptions"])
def test_an_app_error_before_the_response_is_a_500_the_server_logs(
    server: str, tmp_path: Path
) -> None:
    """A bare ASGI app raises before http.response.start: the client gets a 500, the server's
    log has the traceback and the next request is served. On uWSGI, which answers an exception
    from the WSGI call with an empty reply, bridge sends the 500 and raises after it."""
    argv = WSGI_SERVERS[server].argv if server in WSGI_SERVERS else CATCHING_UWSGI
    env = {"BRIDGE_TEST_DIR": str(tmp_path), "BRIDGE_MATRIX_APP": "_raw"}
    with serve(list(argv), env=env, timeout=30) as running:
        reply = get(running.port, "/boom")
        assert reply.status == 500, reply
        assert (b"uWSGI exceptions catcher" in reply.body) == (argv is CATCHING_UWSGI), reply
        assert wait_until(lambda: _raw.MESSAGE in running.log(), 10), running.log()[-3000:]
        assert get(running.port, "/hello").body == b"hello"


@pytest.mark.timeout(30)
# The per-thread failure leaves Litestar's taken-over emitter stream unclosed (collected here).
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize(
    "loop",
    [
        pytest.param(
            "per-thread",
            marks=pytest.mark.xfail(
                strict=True,
                raises=AssertionError,
                reason="Litestar keeps its lifespan's state on the app (one event emitter): a second"
                " lifespan, on another thread's loop, takes it over, and the first one's"
                " shutdown then never answers (a framework limit, not a server's)",
            ),
        ),
        "shared",
    ],
)
def test_litestar_runs_one_lifespan_at_a_time(
    loop: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Why the Litestar app asks for loop="shared" (its ADAPTER): two server threads, each with
    a loop (and so a lifespan) of its own under "per-thread", then close(), which shuts the
    first one's lifespan down first."""
    from bridge.asgi_to_wsgi import _lifespan
    from tests.matrix.asgi_apps.litestar import asgi
    from tests.test_asgi_to_wsgi import Started, environ

    monkeypatch.setattr(_lifespan, "SHUTDOWN_GRACE", 1.0)  # the failure costs this, not 10 s
    adapter = AsgiToWsgi(asgi, loop=loop)
    closed = threading.Event()

    def server_thread(served: threading.Event) -> None:  # alive until after close()
        b"".join(adapter(environ(PATH_INFO="/hello"), Started()))
        served.set()
        closed.wait(10)

    threads = []
    for _ in range(2):  # one after the other: the second lifespan starts after the first
        served = threading.Event()
        threads.append(threading.Thread(target=server_thread, args=(served,)))
        threads[-1].start()
        assert served.wait(10)
    try:
        with caplog.at_level(logging.ERROR, logger="bridge"):
            adapter.close()
    finally:
        closed.set()
        for thread in threads:
            thread.join(10)
        gc.collect()
    assert "shutdown did not answer" not in caplog.text
