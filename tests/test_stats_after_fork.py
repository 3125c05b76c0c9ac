"""``stats()`` in a forked child (gunicorn ``--preload``, uWSGI): the counts start from zero.

A master that served warm-up requests before forking hands its adapter to every worker; the
parent's counts describe the parent's requests, so a worker's ``stats()`` (and the Prometheus
figures made from it) must count only its own.
"""

from __future__ import annotations

import asyncio
import os
import threading
import traceback
from typing import Any

import pytest

from bridge import AsgiToWsgi, WsgiToAsgi
from tests.asgi_harness import request
from tests.test_asgi_to_wsgi import call, hello

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork"),
    pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning"),
    pytest.mark.timeout(20),
]


def wsgi_hello(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


def serve_one(adapter: Any) -> None:
    if isinstance(adapter, WsgiToAsgi):
        assert asyncio.run(request(adapter)).body == b"hello"
    else:
        assert call(adapter)[1] == [b"hello"]


def in_child(check: Any) -> int:
    """Run ``check`` in a forked child; its exit code (0: every assertion held)."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            check()
            code = 0
        except BaseException:
            traceback.print_exc()  # the reason, in pytest's captured output
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


@pytest.mark.parametrize(
    "make",
    [
        lambda: WsgiToAsgi(wsgi_hello, threads=2),
        lambda: AsgiToWsgi(hello, lifespan="off"),
        lambda: AsgiToWsgi(hello, loop="shared", lifespan="off"),
    ],
    ids=["WsgiToAsgi", "AsgiToWsgi-per-thread", "AsgiToWsgi-shared"],
)
def test_a_forked_child_counts_only_its_own_requests(make: Any) -> None:
    adapter = make()
    serve_one(adapter)
    serve_one(adapter)
    assert adapter.stats()["served"] == 2  # the master's warm-up

    def child() -> None:
        assert adapter.stats()["served"] == 0  # asked before the child's first request, too
        serve_one(adapter)
        assert adapter.stats()["served"] == 1

    assert in_child(child) == 0
    assert adapter.stats()["served"] == 2  # the parent's own counts are left as they were
    if isinstance(adapter, AsgiToWsgi):
        adapter.close()


def test_a_forked_child_does_not_see_the_parents_busy_threads() -> None:
    """A request in flight in the parent at the fork is not the child's: 0 busy, 0 waiting."""
    entered, release = threading.Event(), threading.Event()

    def gate(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        entered.set()
        release.wait(10)
        return wsgi_hello(environ, start_response)

    adapter = WsgiToAsgi(gate, threads=1)
    parent = threading.Thread(target=serve_one, args=(adapter,))
    parent.start()
    try:
        assert entered.wait(10)
        assert adapter.stats()["busy"] == 1

        def child() -> None:
            stats = adapter.stats()
            assert (stats["busy"], stats["waiting"], stats["served"]) == (0, 0, 0), stats

        assert in_child(child) == 0
    finally:
        release.set()
        parent.join(10)
    assert adapter.stats()["served"] == 1
