"""What an adapter counts for ``stats()``: one shape for both directions.

The counters are plain integers bumped where the event happens. In ``WsgiToAsgi`` that is the
event loop's thread (one writer), in ``AsgiToWsgi`` the WSGI server's threads, under the GIL: a
count may then lag by one under a race, which a monitoring figure can bear and a lock on every
request could not. Queue waits keep the last ``WAIT_SAMPLES`` (``deque.append`` is atomic).
"""

from __future__ import annotations

import os
from collections import deque
from typing import TypedDict

WAIT_SAMPLES = 1024


class Stats(TypedDict):
    """What ``stats()`` returns (the README's "Telemetry" section says what each means)."""

    threads: int  # WsgiToAsgi: the pool's size; AsgiToWsgi: event loops open
    busy: int  # requests being served now
    waiting: int  # requests admitted, waiting for a thread (AsgiToWsgi: always 0)
    served: int  # responses sent whole
    rejected_503: int  # no room: threads and backlog full
    bad_request_400: int  # request headers broke a rule (repeats, content-length)
    too_large_413: int  # request bodies over max_body_size
    timeout_504: int  # responses not started within timeout
    disconnects: int  # clients gone before their response was complete
    queue_wait_p50: float  # seconds from arrival to a thread, median of recent requests
    queue_wait_p99: float


class Counters:
    """The running counts behind ``Stats``, of one process."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.served = 0
        self.rejected_503 = 0
        self.bad_request_400 = 0
        self.too_large_413 = 0
        self.timeout_504 = 0
        self.disconnects = 0
        self.waits: deque[float] = deque(maxlen=WAIT_SAMPLES)

    def in_this_process(self) -> Counters:
        """These counts, or new ones in a forked child (gunicorn ``--preload``, uWSGI): the
        parent's describe the requests the parent served (a warm-up, say), not the child's."""
        return self if self.pid == os.getpid() else Counters()

    def snapshot(self, threads: int, busy: int, waiting: int) -> Stats:
        waits = sorted(self.waits)
        return Stats(
            threads=threads,
            busy=busy,
            waiting=waiting,
            served=self.served,
            rejected_503=self.rejected_503,
            bad_request_400=self.bad_request_400,
            too_large_413=self.too_large_413,
            timeout_504=self.timeout_504,
            disconnects=self.disconnects,
            queue_wait_p50=_percentile(waits, 0.50),
            queue_wait_p99=_percentile(waits, 0.99),
        )


def _percentile(ordered: list[float], fraction: float) -> float:
    """The nearest-rank percentile of ``ordered`` (0.0 when there is no sample yet)."""
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]
