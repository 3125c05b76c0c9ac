"""The Prometheus recipe: a ``StatsCollector`` per adapter exports its ``stats()``."""

from __future__ import annotations

import asyncio
from typing import Any

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
