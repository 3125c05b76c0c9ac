"""The soak of ``bench.soak`` in small (issue 8, "Soak and shutdown"): a few thousand mixed
requests (plain, streamed, uploads past the in-memory hold, a route that raises, clients that
hang up mid-stream) through uvicorn + Flask via ``WsgiToAsgi`` and gunicorn gthread + FastAPI
via ``AsgiToWsgi``, each a real server on 127.0.0.1.

The invariants are the full run's: no unexpected outcome; the server process's threads and file
descriptors back to their post-warm-up baseline once it settles (a leaked temporary file,
socket, loop or thread shows here); RSS growth under 20 MiB; and ``stats()`` exact: every
response counted served (the 500s included: the framework answered them), every hang-up
counted a disconnect, no 503/400/413/504, nothing busy but the ``/stats`` request itself.
"""

from __future__ import annotations

import pytest

from bench.soak import SERVERS, line, soak

pytestmark = pytest.mark.server

REQUESTS = 2_000
CONCURRENCY = 32


@pytest.mark.timeout(90)
@pytest.mark.parametrize(
    "name", list(SERVERS), ids=["uvicorn-wsgi_to_asgi", "gthread-asgi_to_wsgi"]
)
def test_soak_leaves_no_error_leak_or_miscount(name: str) -> None:
    report = soak(name, REQUESTS, CONCURRENCY, cap=60, warmup=CONCURRENCY * 10)
    print(line(report))
    assert sum(report.load.done.values()) == REQUESTS
    assert report.load.done["hangup"] == REQUESTS // 20
    assert report.problems == []
