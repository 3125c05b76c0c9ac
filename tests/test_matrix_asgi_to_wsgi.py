"""The conformance matrix, ASGI side: each ASGI framework through ``AsgiToWsgi`` on each WSGI
server, started for real on 127.0.0.1, running the one scenario set of ``tests.matrix.scenarios``."""

from __future__ import annotations

import pytest

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
from tests.matrix.scenarios import SCENARIOS
from tests.matrix.servers import WSGI_SERVERS

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
