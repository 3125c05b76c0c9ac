"""The conformance matrix, WSGI side: each WSGI framework through ``WsgiToAsgi`` on each ASGI
server (and mounted under FastAPI and Starlette), started for real on 127.0.0.1, running the one
scenario set of ``tests.matrix.scenarios``."""

from __future__ import annotations

import pytest

from tests.matrix.run import (
    ANY,
    REFUSES_NON_ASCII_TARGET,
    Known,
    OneServerAtATime,
    cases,
    run_case,
    servers_fixture,
)
from tests.matrix.scenarios import SCENARIOS
from tests.matrix.servers import ASGI_SERVERS

pytestmark = [pytest.mark.server, pytest.mark.matrix]

FRAMEWORKS = ["flask", "django_app", "bottle", "falcon", "pyramid"]


def framework_limit(reason: str) -> pytest.MarkDecorator:
    """The framework cannot do what the scenario asks, on any streaming server, bridge or not:
    it must go on failing (strict), so a framework or bridge change that ends it is seen."""
    return pytest.mark.xfail(reason=reason, strict=True)


# Both verified natively, without bridge: on gunicorn's sync worker (which streams a chunked
# body, as bridge does) Django echoes b"" and Bottle answers 400; only waitress, which buffers the
# whole body and sets CONTENT_LENGTH, lets them read it.
NO_BODY_WITHOUT_CONTENT_LENGTH = {
    "django_app": "Django reads a body only up to CONTENT_LENGTH (none: an empty body); it"
    " ignores wsgi.input_terminated",
    "bottle": "Bottle reads a body only up to CONTENT_LENGTH, or decodes the chunks itself when"
    " HTTP_TRANSFER_ENCODING is chunked (which bridge, like waitress, never sets: wsgi.input is"
    " already decoded); it ignores wsgi.input_terminated, so the body is empty",
}

KNOWN: Known = {
    **{
        (framework, ANY, "chunked_upload"): framework_limit(reason)
        for framework, reason in NO_BODY_WITHOUT_CONTENT_LENGTH.items()
    },
    **{
        (ANY, server, "raw_non_ascii_query"): REFUSES_NON_ASCII_TARGET
        for server in ASGI_SERVERS
        if server != "granian"
    },
}
assert all(key[2] in (ANY, *SCENARIOS) for key in KNOWN)


servers = servers_fixture(ASGI_SERVERS)


@pytest.mark.timeout(90)
@pytest.mark.parametrize(
    ("framework", "server", "scenario"), cases(FRAMEWORKS, list(ASGI_SERVERS), KNOWN)
)
def test_pair(servers: OneServerAtATime, framework: str, server: str, scenario: str) -> None:
    run_case(servers, framework, server, scenario)
