"""Event loops for ``AsgiToWsgi``: one per WSGI server thread, or one shared background loop.

Theory of operation.

- Per-thread (the fast path): a WSGI server thread gets its own loop on its first request and
  keeps it. A request runs on that loop *in the server thread itself*: the thread runs the loop
  only until the next thing it needs (the response start, the next body chunk), so no message
  ever crosses a thread. Loops are made lazily, never in a constructor, and a forked child drops
  its parent's.
- Shared: one daemon thread runs one loop; WSGI threads hand it work with
  ``run_coroutine_threadsafe``. Slower, but every request sees the same loop-bound resources.
  The loop may also be the caller's own, already running in a thread of theirs (a2wsgi's
  ``loop=`` argument): then bridge neither starts nor stops nor closes it.

Each loop bridge owns has one long-lived *root* task, and the loop always runs inside
``run_until_complete(root)``. Libraries that tie resources to "the root task" find it there
(anyio keeps its worker threads, which FastAPI's ``def`` endpoints and ``FileResponse`` use,
per root task: with a root per request every such request started a new OS thread). The root
ends when the loop is closed, which stops those worker threads.

Lifetime (``_runner``, ``_shared_loop``, ``_reaper``). Each loop owns a ``Lifespan`` started
before its first request. A request *uses* its loop from the WSGI call until its app's task has
ended; ``close()`` shuts down at once only loops
no request uses, and marks the others, which their last request then closes. Loops of server
threads that end, and every loop at process exit, are closed by ``_reaper``.
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
import time
import weakref

from .._types import ASGIApp
from . import _reaper
from ._runner import Runner, close_copy
from ._shared_loop import SharedRunner

# Seconds a request still running at process exit may take to end before its loop is closed.
EXIT_GRACE = 5.0


class Loops:
    """Which runner serves the calling thread, per the adapter's ``loop`` mode.

    ``get()`` hands out a runner the caller then uses (``release()`` it when the request is
    done). A thread whose own event loop is running (a WSGI test client called from async code,
    an ASGI app calling a wrapped app synchronously) cannot run a second loop, so it is served
    by the shared loop whatever the mode: it blocks its caller, as any WSGI call from async
    code does, but works.
    """

    def __init__(self, app: ASGIApp, mode: str | asyncio.AbstractEventLoop, lifespan: str) -> None:
        self._app = app
        self._given = mode if isinstance(mode, asyncio.AbstractEventLoop) else None
        self._mode = "shared" if self._given is not None else mode
        self._lifespan = lifespan
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._local = threading.local()
        self._runners: list[Runner] = []  # per-thread loops
        self._shared: SharedRunner | None = None
        self._closing: list[Runner] = []  # closed while in use: their last request closes them

    def get(self) -> Runner:
        runner: Runner | None = getattr(self._local, "runner", None)
        if (
            runner is not None
            and self._pid == os.getpid()
            and running_loop() is None
            and runner.acquire()
        ):
            return runner
        return self._new_runner()

    def _new_runner(self) -> Runner:
        with self._lock:
            if self._pid != os.getpid():
                self._forget_parent()
            running = running_loop()
            if self._mode == "shared" or running is not None:
                return self._get_shared(running)
            runner = Runner.per_thread(self._app, self._lifespan)
            runner.acquire()
            self._runners.append(runner)
            _reaper.close_at_exit(self)
        self._local.runner = runner
        self._local.token = _reaper.ThreadToken(
            functools.partial(_retire, weakref.ref(self), runner)
        )
        try:
            runner.start()
        except BaseException:
            runner.release()
            raise
        return runner

    def _get_shared(self, running: asyncio.AbstractEventLoop | None) -> SharedRunner:
        """The shared loop (made on first use), in use; the caller holds the lock."""
        shared = self._shared
        if shared is None or not shared.acquire():  # none yet, or closing: a new one
            shared = self._shared = SharedRunner(self._app, self._lifespan, self._given)
            shared.acquire()
            _reaper.close_at_exit(self)
            shared.start()
        if running is shared.loop:
            shared.release()
            raise RuntimeError(
                "AsgiToWsgi called synchronously from a task on its own shared loop: it would "
                "wait for itself forever"
            )
        if running is None:
            self._local.runner = shared
        return shared

    def in_use(self) -> tuple[int, int]:
        """How many loops are open, and how many requests are using them."""
        with self._lock:
            runners = [*self._runners, *([self._shared] if self._shared else [])]
        return len(runners), sum(runner.users for runner in runners)

    def retire(self, runner: Runner) -> None:
        """On the reaper thread: ``runner``'s server thread has ended."""
        with self._lock:
            if runner not in self._runners:
                return  # closed already, or a forked child's copy of a parent's loop
            self._runners.remove(runner)
            self._closing.append(runner)  # a close() meanwhile waits for it
        runner.close(force=True)  # nobody can use it any more
        with self._lock:
            if runner in self._closing:
                self._closing.remove(runner)

    def close(self, force: bool = False) -> None:
        """Shut down every loop's lifespan and close the loops (the next request starts anew).

        A loop a request is using is closed by that request's thread when it ends, unless
        ``force`` (at interpreter exit, when no request can still be running).
        """
        with self._lock:
            if self._pid != os.getpid():  # a forked child that never served (atexit still runs)
                self._forget_parent()
                return
            runners = [*self._closing, *self._runners, *([self._shared] if self._shared else [])]
            self._runners, self._shared = [], None
            self._local = threading.local()
        for runner in runners:
            runner.close(force)
        with self._lock:
            # Kept with any that retire() added meanwhile: a later close() waits for them all.
            still = dict.fromkeys([*self._closing, *runners])
            self._closing = [runner for runner in still if not runner.closed.is_set()]

    def close_at_exit(self) -> None:
        """At process exit: close every loop; one a request still uses gets ``EXIT_GRACE``
        seconds for that request to end (servers drain before they exit), then is forced."""
        self.close()
        deadline = time.monotonic() + EXIT_GRACE
        for runner in list(self._closing):
            runner.closed.wait(max(0.0, deadline - time.monotonic()))
        self.close(force=True)

    def _forget_parent(self) -> None:
        """In a forked child: the loops are copies of the parent's. Running their lifespan
        shutdown would repeat the parent's, and the shared loop's thread does not exist here
        (waiting for it would never end), so only the copies' file descriptors are closed."""
        for runner in self._runners:
            close_copy(runner.loop)
        self._pid, self._runners, self._shared, self._closing = os.getpid(), [], None, []
        self._local = threading.local()


def _retire(loops: weakref.ref[Loops], runner: Runner) -> None:
    adapter_loops = loops()
    if adapter_loops is not None:
        adapter_loops.retire(runner)
    else:
        runner.close(force=True)


def running_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop running in this thread, if any (checked on every request)."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
