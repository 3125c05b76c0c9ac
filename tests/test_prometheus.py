"""The Prometheus recipe: one ``StatsCollector`` exports the ``stats()`` of each adapter."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from bridge import WsgiToAsgi
from bridge._types import Environ
from bridge.prometheus import StatsCollector
from tests.asgi_harness import request


def hello(environ: Environ, start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


def test_the_collector_exports_what_stats_says() -> None:
    adapter = WsgiToAsgi(hello, threads=3, max_body_size=1)

    async def traffic() -> None:
        await request(adapter, "/")
        await request(adapter, "/")
        await request(adapter, "/", method="POST", body=b"too big")

    asyncio.run(traffic())
    registry = CollectorRegistry()
    registry.register(StatsCollector(adapter, name="legacy"))
    text = generate_latest(registry).decode()
    lines = set(text.splitlines())
    assert 'bridge_threads{adapter="legacy"} 3.0' in lines
    assert 'bridge_busy{adapter="legacy"} 0.0' in lines
    assert 'bridge_served_total{adapter="legacy"} 2.0' in lines
    assert 'bridge_error_responses_total{adapter="legacy",status="413"} 1.0' in lines
    assert 'bridge_error_responses_total{adapter="legacy",status="503"} 0.0' in lines
    assert 'bridge_disconnects_total{adapter="legacy"} 0.0' in lines
    assert any(line.startswith('bridge_queue_wait_seconds{adapter="legacy",quantile="0.99"}')
               for line in lines)  # fmt: skip


def test_one_collector_exports_several_adapters() -> None:
    """Two mounted apps in one process: a registry refuses a second collector of the same
    metric names (DuplicateTimeseries), so one collector carries both, told apart by label."""
    legacy, admin = WsgiToAsgi(hello, threads=2), WsgiToAsgi(hello, threads=5)

    async def traffic() -> None:
        await request(legacy, "/")
        await request(admin, "/")
        await request(admin, "/")

    asyncio.run(traffic())
    registry = CollectorRegistry()
    collector = StatsCollector(legacy, name="legacy").add(admin, name="admin")
    registry.register(collector)
    lines = set(generate_latest(registry).decode().splitlines())
    assert 'bridge_threads{adapter="legacy"} 2.0' in lines
    assert 'bridge_threads{adapter="admin"} 5.0' in lines
    assert 'bridge_served_total{adapter="legacy"} 1.0' in lines
    assert 'bridge_served_total{adapter="admin"} 2.0' in lines
    with pytest.raises(ValueError, match="'admin' is exported already"):
        collector.add(legacy, name="admin")
