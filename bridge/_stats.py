"""What an adapter counts for ``stats()``: one shape for both directions.

The counters are plain integers bumped where the event happens. In ``WsgiToAsgi`` that is the
event loop's thread (one writer), in ``AsgiToWsgi`` the WSGI server's threads, under the GIL: a
count may then lag by one under a race, which a monitoring figure can bear and a lock on every
request could not. Queue waits keep the last ``WAIT_SAMPLES`` (``deque.append`` is atomic).
"""

from __future__ import annotations

import logging
from collections import deque
from typing import TypedDict

from ._fork import reset_after_fork

WAIT_SAMPLES = 1024

logger = logging.getLogger("bridge")


class Stats(TypedDict):
    """What ``stats()`` returns: the same keys from both adapters, read in one call.

    Counts (``served`` to ``disconnects``) run from the adapter's creation (in a forked child,
    from the fork) and only grow;
    ``threads``, ``busy`` and ``waiting`` are the moment's; the queue waits cover the last
    ``WAIT_SAMPLES`` (1,024) requests. A key that does not apply to a direction is 0 there.

    Keys:
        threads: ``WsgiToAsgi``: the pool's size (its ``threads``, started or not yet);
            ``AsgiToWsgi``: the event loops open.
        busy: requests being served now (``WsgiToAsgi``: running on a pool thread, the
            ``priority`` thread's not counted).
        waiting: ``WsgiToAsgi``: requests admitted and not yet on a thread, waiting for one
            or for the rest of a body held on the loop (``hold_body``). ``AsgiToWsgi``: 0.
        served: responses sent whole.
        rejected_503: requests answered ``503`` at once: every thread and the backlog taken
            (``WsgiToAsgi`` only).
        bad_request_400: requests answered ``400``: their headers broke a rule bridge
            enforces, such as too many repeats of one header or a ``Content-Length`` that is
            not one number (``WsgiToAsgi`` only).
        too_large_413: requests answered ``413``: a body over ``max_body_size``.
        timeout_504: requests answered ``504``: no response started within ``timeout``.
        disconnects: clients gone before their response was complete.
        queue_wait_p50: seconds from a request's arrival to its thread, the median over the
            recent requests (0.0 before the first; ``AsgiToWsgi``: always 0.0).
        queue_wait_p99: the 99th percentile of the same waits.
    """

    threads: int
    busy: int
    waiting: int
    served: int
    rejected_503: int
    bad_request_400: int
    too_large_413: int
    timeout_504: int
    disconnects: int
    queue_wait_p50: float
    queue_wait_p99: float


class Counters:
    """The running counts behind ``Stats``, of one process: a forked child's start at zero."""

    def __init__(self) -> None:
        self._reset()
        reset_after_fork(self, Counters._reset)  # the parent's counts (a warm-up) are its own

    def _reset(self) -> None:
        self.served = 0
        self.rejected_503 = 0
        self.bad_request_400 = 0
        self.too_large_413 = 0
        self.timeout_504 = 0
        self.disconnects = 0
        self.waits: deque[float] = deque(maxlen=WAIT_SAMPLES)

    def too_large(self, label: str, limit: int) -> None:
        """A request refused with ``413``: counted, and its one log line (both directions)."""
        self.too_large_413 += 1
        logger.warning("bridge: 413 for %s: request body over max_body_size=%d", label, limit)

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
