"""The thread pool ``WsgiToAsgi`` runs WSGI calls on, when no ``executor`` is given, and the
lanes that admit requests to it.

Why not ``ThreadPoolExecutor``: each of its jobs is a ``Future`` with a ``Condition`` of its own,
and bridge needs neither (the result travels on the request's own hand-off). A job here is three
slots and a state; the queue is a ``SimpleQueue``; one lock guards the states and the count of
idle threads. That makes an ordinary request measurably cheaper (see ``bench/``).

The threads are started as jobs need them, up to ``size``, and are daemon threads: a WSGI call
that never returns must not hold the interpreter at exit (``WsgiToAsgi`` returns from the ASGI
call only once its thread is done, so a server's graceful shutdown has no job left running).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, Protocol

from .._fork import reset_after_fork

logger = logging.getLogger("bridge")

_WAITING, _RUNNING, _DONE, _CANCELLED = range(4)


class Job(Protocol):
    """What the adapter needs of a submitted call: the part of ``concurrent.futures.Future``
    it uses, so that an ``executor=`` given by the user fits as well."""

    def cancel(self) -> bool: ...

    def running(self) -> bool: ...

    def done(self) -> bool: ...


class PoolJob:
    """One call waiting for, or running on, a pool thread."""

    __slots__ = ("_args", "_fn", "_lock", "_state")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...], lock: threading.Lock) -> None:
        self._fn = fn
        self._args = args
        self._lock = lock
        self._state = _WAITING

    def cancel(self) -> bool:
        """Withdraw the job if no thread has taken it yet; True if it will never run."""
        with self._lock:
            if self._state == _WAITING:
                self._state = _CANCELLED
            return self._state == _CANCELLED

    def running(self) -> bool:
        return self._state == _RUNNING

    def done(self) -> bool:
        return self._state in (_DONE, _CANCELLED)

    def run(self) -> None:
        """On a pool thread: the call, unless it was cancelled while it waited."""
        with self._lock:
            if self._state != _WAITING:
                return
            self._state = _RUNNING
        try:
            self._fn(*self._args)
        except BaseException:  # the adapter's calls catch their own; this is a last resort
            logger.exception("bridge: a job on the WSGI thread pool raised")
        finally:
            self._state = _DONE


class Pool:
    """At most ``size`` threads taking jobs in the order they were submitted."""

    def __init__(self, size: int, name: str) -> None:
        self.size = size
        self._name = name
        self._jobs: queue.SimpleQueue[PoolJob | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._started = 0
        self._idle = 0  # threads waiting for a job that no submitted job has claimed yet
        self._shut = False

    def submit(self, fn: Callable[..., Any], *args: Any) -> PoolJob:
        job = PoolJob(fn, args, self._lock)
        with self._lock:
            if self._shut:
                raise RuntimeError("the WSGI thread pool was shut down")
            number = 0  # of the thread to start, if one is needed
            if self._idle:
                self._idle -= 1
            elif self._started < self.size:
                self._started = number = self._started + 1
        self._jobs.put(job)
        if number:
            threading.Thread(target=self._work, name=f"{self._name}_{number}", daemon=True).start()
        return job

    def shutdown(self) -> None:
        """Let each thread end once the jobs submitted before this call are done."""
        with self._lock:
            self._shut = True
            started = self._started
        for _ in range(started):
            self._jobs.put(None)

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            job.run()
            del job  # the request's objects go now, not when the next job comes
            with self._lock:
                self._idle += 1


class Lane:
    """Admission to one pool: at most ``size`` requests running and ``backlog`` waiting.

    ``WsgiToAsgi`` has one for its requests and, with ``priority=``, one of a single thread for
    the priority requests, so a health check never queues behind a saturated pool.
    """

    def __init__(
        self, size: int, backlog: int, name: str, executor: Executor | None = None
    ) -> None:
        self.size = size
        self.backlog = backlog
        self._name = name
        self._given = executor
        self._reset()
        # A forked child (gunicorn --preload, uWSGI): the parent's pool threads did not come
        # along, and its lock and counts describe the parent's requests.
        reset_after_fork(self, Lane._reset)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self.in_flight = 0  # admitted and not yet released
        self.busy = 0  # of those, the requests a thread is running
        self._pool: Pool | None = None  # made on first use, never in a constructor

    def admit(self) -> int:
        """Take a slot; return how many requests were in the lane before, or -1 when full."""
        with self._lock:
            ahead = self.in_flight
            if ahead >= self.size + self.backlog:
                return -1
            self.in_flight = ahead + 1
            return ahead

    def started(self) -> None:
        """On the thread: an admitted request begins to run."""
        with self._lock:
            self.busy += 1

    def release(self, ran: bool) -> None:
        """The request is done (``ran``: it had ``started()``), or will never run."""
        with self._lock:
            self.in_flight -= 1
            self.busy -= ran

    def counts(self) -> tuple[int, int]:
        """Requests running, and requests waiting for a thread."""
        with self._lock:
            return self.busy, self.in_flight - self.busy

    def submit(self, *call: Any) -> Job:
        if self._given is not None:
            return self._given.submit(*call)
        if self._pool is None:
            self._pool = Pool(self.size, self._name)
        return self._pool.submit(*call)

    def shutdown(self) -> None:
        """Let the lane's own threads end (the next request starts new ones)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown()
