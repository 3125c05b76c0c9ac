"""Prometheus metrics from an adapter's ``stats()`` (the ``bridge[prometheus]`` extra).

Register one collector for the process, each adapter named by the ``adapter`` label::

    from prometheus_client import REGISTRY
    from bridge.prometheus import StatsCollector

    REGISTRY.register(StatsCollector(legacy_app, name="legacy").add(admin_app, name="admin"))

Each scrape calls each adapter's ``stats()`` once; nothing is counted twice and nothing runs
between scrapes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ._stats import Stats

# stats() key -> the status label of bridge_error_responses_total
_ERROR_RESPONSES = {
    "bad_request_400": "400",
    "too_large_413": "413",
    "rejected_503": "503",
    "timeout_504": "504",
}


class HasStats(Protocol):
    def stats(self) -> Stats: ...


class StatsCollector(Collector):
    """A ``prometheus_client`` collector for one or more ``WsgiToAsgi`` / ``AsgiToWsgi``.

    A registry takes each metric name from one collector only, so several adapters in one
    process (a Flask and a Django app mounted side by side) share one collector: ``add`` the
    others to it, each under a name of its own.

    Args:
        adapter: the adapter whose ``stats()`` is exported (anything with a ``stats()`` that
            returns ``Stats``: a ``WsgiToAsgi``, an ``AsgiToWsgi`` or their aliases).
        name: the value of the ``adapter`` label, to tell several adapters apart.
    """

    def __init__(self, adapter: HasStats, name: str = "bridge") -> None:
        self._adapters: dict[str, HasStats] = {}
        self.add(adapter, name)

    def add(self, adapter: HasStats, name: str) -> StatsCollector:
        """Export ``adapter``'s ``stats()`` too, labelled ``adapter=name``; returns the collector.

        Raises:
            ValueError: ``name`` is taken by an adapter already added.
        """
        if name in self._adapters:
            raise ValueError(f"an adapter named {name!r} is exported already")
        self._adapters[name] = adapter
        return self

    def collect(self) -> Iterator[Metric]:
        """The metrics of one ``stats()`` call per adapter, each labelled ``adapter``: the
        gauges ``bridge_threads``, ``bridge_busy``, ``bridge_waiting`` and
        ``bridge_queue_wait_seconds{quantile="0.5|0.99"}``, the counters
        ``bridge_served_total``, ``bridge_error_responses_total{status="400|413|503|504"}``
        and ``bridge_disconnects_total``. ``prometheus_client`` calls it at each scrape."""
        labels = ["adapter"]
        threads = GaugeMetricFamily(
            "bridge_threads", "WSGI pool threads (ASGI->WSGI: event loops open)", labels=labels
        )
        busy = GaugeMetricFamily("bridge_busy", "Requests being served now", labels=labels)
        waiting = GaugeMetricFamily(
            "bridge_waiting", "Requests waiting for a thread", labels=labels
        )
        served = CounterMetricFamily("bridge_served", "Responses sent whole", labels=labels)
        errors = CounterMetricFamily(
            "bridge_error_responses", "Answers bridge gave itself", labels=["adapter", "status"]
        )
        gone = CounterMetricFamily(
            "bridge_disconnects", "Clients gone before their response was complete",
            labels=labels,
        )  # fmt: skip
        wait = GaugeMetricFamily(
            "bridge_queue_wait_seconds", "Wait for a thread over recent requests",
            labels=["adapter", "quantile"],
        )  # fmt: skip
        for name, adapter in list(self._adapters.items()):  # an add() during a scrape
            stats = adapter.stats()
            threads.add_metric([name], stats["threads"])
            busy.add_metric([name], stats["busy"])
            waiting.add_metric([name], stats["waiting"])
            served.add_metric([name], stats["served"])
            for key, status in _ERROR_RESPONSES.items():
                errors.add_metric([name, status], stats[key])  # type: ignore[literal-required]
            gone.add_metric([name], stats["disconnects"])
            wait.add_metric([name, "0.5"], stats["queue_wait_p50"])
            wait.add_metric([name, "0.99"], stats["queue_wait_p99"])
        yield from (threads, busy, waiting, served, errors, gone, wait)
