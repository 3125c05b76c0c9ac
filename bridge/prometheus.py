"""Prometheus metrics from an adapter's ``stats()`` (the ``bridge[prometheus]`` extra).

Register one collector per adapter, named by the ``adapter`` label::

    from prometheus_client import REGISTRY
    from bridge.prometheus import StatsCollector

    REGISTRY.register(StatsCollector(legacy_app, name="legacy"))

Each scrape calls ``stats()`` once; nothing is counted twice and nothing runs between scrapes.
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
    """A ``prometheus_client`` collector for a ``WsgiToAsgi`` or an ``AsgiToWsgi``.

    Args:
        adapter: the adapter whose ``stats()`` is exported (anything with a ``stats()`` that
            returns ``Stats``: a ``WsgiToAsgi``, an ``AsgiToWsgi`` or their aliases).
        name: the value of the ``adapter`` label, to tell several adapters apart.
    """

    def __init__(self, adapter: HasStats, name: str = "bridge") -> None:
        self._adapter = adapter
        self._name = name

    def collect(self) -> Iterator[Metric]:
        """The metrics of one ``stats()`` call, each labelled ``adapter``: the gauges
        ``bridge_threads``, ``bridge_busy``, ``bridge_waiting`` and
        ``bridge_queue_wait_seconds{quantile="0.5|0.99"}``, the counters
        ``bridge_served_total``, ``bridge_error_responses_total{status="400|413|503|504"}``
        and ``bridge_disconnects_total``. ``prometheus_client`` calls it at each scrape."""
        stats = self._adapter.stats()
        label = [self._name]

        def gauge(metric: str, doc: str, value: float) -> GaugeMetricFamily:
            family = GaugeMetricFamily(metric, doc, labels=["adapter"])
            family.add_metric(label, value)
            return family

        yield gauge("bridge_threads", "WSGI pool threads (ASGI->WSGI: event loops open)",
                    stats["threads"])  # fmt: skip
        yield gauge("bridge_busy", "Requests being served now", stats["busy"])
        yield gauge("bridge_waiting", "Requests waiting for a thread", stats["waiting"])
        served = CounterMetricFamily("bridge_served", "Responses sent whole", labels=["adapter"])
        served.add_metric(label, stats["served"])
        yield served
        errors = CounterMetricFamily(
            "bridge_error_responses", "Answers bridge gave itself", labels=["adapter", "status"]
        )
        for key, status in _ERROR_RESPONSES.items():
            errors.add_metric([self._name, status], stats[key])  # type: ignore[literal-required]
        yield errors
        gone = CounterMetricFamily(
            "bridge_disconnects", "Clients gone before their response was complete",
            labels=["adapter"],
        )  # fmt: skip
        gone.add_metric(label, stats["disconnects"])
        yield gone
        wait = GaugeMetricFamily(
            "bridge_queue_wait_seconds", "Wait for a thread over recent requests",
            labels=["adapter", "quantile"],
        )  # fmt: skip
        wait.add_metric([self._name, "0.5"], stats["queue_wait_p50"])
        wait.add_metric([self._name, "0.99"], stats["queue_wait_p99"])
        yield wait
