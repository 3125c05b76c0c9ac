"""Closing loops when what they served is gone: a server thread that ended, or the process.

Theory of operation. One daemon thread per process, started with the first per-thread loop
(never in a constructor; again in a forked child), closes loops handed to it on a queue:

- Thread end. Each per-thread loop leaves a token in its thread's ``threading.local``; the
  thread's local storage is freed when the thread ends, and the token's weak reference callback
  queues the loop. The callback only queues: the closing (lifespan shutdown, then ``close()``)
  runs on the reaper thread, so a thread-per-request server leaves nothing behind, at once.
- Process exit. Non-daemon threads (anyio's worker threads, which FastAPI's ``def`` endpoints
  and ``FileResponse`` use) are joined at interpreter exit *before* ``atexit`` runs, and they
  end only when their loop's root task does. A second daemon thread therefore waits for the
  main thread to finish (``Thread.join``: it returns once the interpreter starts shutting down)
  and queues every live adapter's ``close()``: lifespans shut down, roots end, the worker
  threads stop, and the exit proceeds without any hook configured (gunicorn's SIGTERM, a script
  that returns). A loop still serving a request then is closed by its own thread as that
  request ends.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import weakref
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("bridge")

Job = Callable[[], Any]
_jobs: queue.SimpleQueue[Job] = queue.SimpleQueue()
_at_exit: weakref.WeakSet[Any] = weakref.WeakSet()  # objects with close_at_exit()
_started_in: int | None = None  # the pid whose reaper threads run
_start_lock = threading.Lock()


class ThreadToken:
    """Kept in one thread's local storage only: freed, and so reported, when the thread ends."""

    __slots__ = ("__weakref__", "_ref")

    def __init__(self, on_thread_end: Job) -> None:
        # The callback holds the job, the token holds the reference (a ref must outlive its
        # object for its callback to run).
        self._ref = weakref.ref(self, lambda _: _jobs.put(on_thread_end))


def close_at_exit(closable: Any) -> None:
    """Start the reaper in this process if needed; ``closable.close_at_exit()`` runs when the
    main thread ends."""
    global _jobs, _started_in
    _at_exit.add(closable)
    if _started_in == os.getpid():
        return
    with _start_lock:
        if _started_in == os.getpid():
            return
        if _started_in is not None:  # a forked child: the parent's queued jobs are the parent's
            _jobs = queue.SimpleQueue()
        _started_in = os.getpid()
        threading.Thread(target=_reap, name="bridge-reaper", daemon=True).start()
        threading.Thread(target=_watch_exit, name="bridge-exit-watch", daemon=True).start()


def _reap() -> None:
    while True:
        job = _jobs.get()
        try:
            job()
        except Exception:
            logger.exception("bridge: error while closing an event loop")


def _watch_exit() -> None:
    threading.main_thread().join()
    for closable in list(_at_exit):
        _jobs.put(closable.close_at_exit)
