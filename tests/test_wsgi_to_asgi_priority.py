"""``WsgiToAsgi(priority=...)``: health checks run on a thread of their own, answered while the
pool and its backlog are full; the lane has its own bound."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from bridge import WsgiToAsgi
from bridge._types import Environ
from bridge.wsgi_to_asgi._adapter import PRIORITY_BACKLOG
from tests.asgi_harness import request

WAIT = 5.0


class App:
    """``/block`` holds its thread until ``release``; ``/stuck-probe`` too; else ``ok``."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Semaphore(0)
        self.threads: dict[str, str] = {}

    def __call__(self, environ: Environ, start_response: Any) -> list[bytes]:
        path = environ["PATH_INFO"]
        self.threads[path] = threading.current_thread().name
        if path in ("/block", "/stuck-probe"):
            self.entered.release()
            self.release.wait(WAIT)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]


async def _hold(adapter: WsgiToAsgi, app: App, path: str) -> asyncio.Future[Any]:
    held = asyncio.ensure_future(request(adapter, path))
    assert await asyncio.get_running_loop().run_in_executor(None, app.entered.acquire, True, WAIT)
    return held


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    "priority",
    [("/healthz", "/readyz"), lambda scope: scope["path"].endswith("/healthz")],
    ids=["paths", "predicate"],
)
def test_a_probe_is_answered_while_the_pool_and_backlog_are_full(priority: Any) -> None:
    app = App()
    adapter = WsgiToAsgi(app, threads=1, backlog=0, priority=priority)

    async def scenario() -> None:
        held = await _hold(adapter, app, "/block")
        assert (await request(adapter, "/")).status == 503  # the pool and its backlog are full
        probe = await request(adapter, "/healthz")
        assert (probe.status, probe.body) == (200, b"ok")
        app.release.set()
        assert (await held).status == 200

    asyncio.run(scenario())
    assert app.threads["/healthz"].startswith("bridge-wsgi-priority")
    assert app.threads["/block"].startswith("bridge-wsgi_")


@pytest.mark.timeout(20)
def test_priority_paths_are_within_a_mounted_app() -> None:
    app = App()
    adapter = WsgiToAsgi(app, threads=1, backlog=0, priority=("/healthz",))

    async def scenario() -> None:
        held = await _hold(adapter, app, "/block")
        probe = await request(adapter, "/legacy/healthz", root_path="/legacy")
        assert probe.status == 200
        app.release.set()
        await held

    asyncio.run(scenario())


@pytest.mark.timeout(20)
def test_the_priority_lane_has_its_own_bound() -> None:
    """A probe that hangs holds the one priority thread: later probes wait, up to a bound."""
    app = App()
    adapter = WsgiToAsgi(app, priority=("/stuck-probe",))

    async def scenario() -> None:
        held = await _hold(adapter, app, "/stuck-probe")
        waiting = [
            asyncio.ensure_future(request(adapter, "/stuck-probe")) for _ in range(PRIORITY_BACKLOG)
        ]
        await asyncio.sleep(0.05)  # they are admitted at their first step, and then wait
        assert (await request(adapter, "/stuck-probe")).status == 503
        assert (await request(adapter, "/")).status == 200  # the pool is not affected
        app.release.set()
        assert [r.status for r in await asyncio.gather(held, *waiting)] == [200] * 9

    asyncio.run(scenario())


def test_priority_takes_paths_not_one_string() -> None:
    with pytest.raises(TypeError, match="several paths"):
        WsgiToAsgi(App(), priority="/healthz")  # type: ignore[arg-type]
