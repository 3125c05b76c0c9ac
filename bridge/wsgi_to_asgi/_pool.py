"""The thread pool ``WsgiToAsgi`` runs WSGI calls on, when no ``executor`` is given.

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
from typing import Any, Protocol

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
