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

FRAMEWORKS = ["flask"]
KNOWN: Known = {
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
