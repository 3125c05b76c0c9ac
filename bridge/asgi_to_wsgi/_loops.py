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

Lifetime. Each loop owns a ``Lifespan`` started before its first request. A request *uses* its
loop from the WSGI call until its iterable is done; ``close()`` shuts down at once only loops
no request uses, and marks the others, which their last request then closes. Loops of server
threads that end, and every loop at process exit, are closed by ``_reaper``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from .._types import ASGIApp
from . import _leftovers, _reaper
from ._lifespan import Lifespan

T = TypeVar("T")
logger = logging.getLogger("bridge")

# Seconds a closer waits for another thread that is closing the same loop already, and that
# tasks still pending at close get to finish their cancellation.
CLOSE_WAIT = 15.0
CANCEL_WAIT = 2.0
# Seconds a request still running at process exit may take to end before its loop is closed.
EXIT_GRACE = 5.0


class Waiter:
    """What a WSGI thread waits on until the request's task has news for it: in per-thread
    mode the loop simply stops (the thread then runs on), which costs no future and no extra
    loop iteration; the shared loop never stops, so there it is a future."""

    __slots__ = ("_future", "_loop")

    def __init__(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future[None] | None):
        self._loop = loop
        self._future = future

    def wake(self) -> None:
        if self._future is None:
            self._loop.stop()
        elif not self._future.done():
            self._future.set_result(None)

    async def wait(self) -> None:
        if self._future is not None:
            await self._future


Ready = Callable[[], Waiter | None]


async def _hold(until: asyncio.Future[None]) -> None:
    await until


class Runner:
    """A loop, its lifespan, and who uses it; ``close()`` waits for its last user.

    This base runs a per-thread loop, in the calling WSGI thread, inside
    ``run_until_complete`` of its root (where libraries looking for the root task find it).
    """

    def __init__(self, app: ASGIApp, lifespan: str, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.lifespan = Lifespan(app, lifespan)
        self.thread = threading.current_thread()
        self._lock = threading.Lock()
        self._users = 0  # requests between their WSGI call and the end of their iterable
        self._close_wanted = False
        self._closing = False
        self.closed = threading.Event()
        self.warned: set[str] = set()  # coroutine names already warned about (_leftovers)
        self._lifespan_checked = False

    @classmethod
    def per_thread(cls, app: ASGIApp, lifespan: str) -> Runner:
        runner = cls(app, lifespan, asyncio.new_event_loop())
        runner.loop.set_task_factory(_leftovers.task_factory)
        return runner

    @functools.cached_property
    def _end(self) -> asyncio.Future[None]:
        return self.loop.create_future()

    @functools.cached_property
    def _root(self) -> asyncio.Task[None]:
        return self.loop.create_task(_hold(self._end), name="bridge-root")

    # -- running the loop -----------------------------------------------------------------------

    def _turn(self) -> None:
        """Run the loop until something stops it (a ``Waiter``, or the root ending)."""
        try:
            self.loop.run_until_complete(self._root)
        except RuntimeError:
            if self._root.done() or self.loop.is_closed():
                raise
            # "Event loop stopped before Future completed": a Waiter stopped it, as meant.

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop from the calling WSGI thread and return its result."""
        task = self.loop.create_task(coro)
        task.add_done_callback(self._stop)
        while not task.done():
            self._turn()
        return task.result()

    def _stop(self, _: object) -> None:
        self.loop.stop()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Start ``coro`` as a task on the loop (it runs when the loop next runs)."""
        self.loop.create_task(coro)

    def waiter(self) -> Waiter:
        return Waiter(self.loop, None)

    def step(self, ready: Ready, take: Callable[[], T]) -> T:
        """Run the loop until ``ready()`` returns ``None``, then return ``take()``.

        Both run on the loop's thread. ``ready`` returns a ``Waiter`` while the awaited thing
        has not happened; its ``wake()`` stops the loop. This is the per-request hot path.
        """
        while ready() is not None:
            self._turn()
        return take()

    def start(self) -> None:
        self.run(self.lifespan.startup())

    def after_request(self, owned: _leftovers.Owned) -> None:
        """The request's leftover tasks get their time; the lifespan's are named once."""
        if not self._lifespan_checked:
            self._lifespan_checked = True
            _leftovers.warn_lifespan_tasks(self.lifespan.tasks, self.warned)
        leftovers = _leftovers.running(owned)
        if leftovers and self.acquire():  # unless the loop is closing: that cancels them
            try:
                self.run(_leftovers.finish(leftovers, self.warned))
            finally:
                self.release()

    # -- who uses it, and closing ---------------------------------------------------------------

    def acquire(self) -> bool:
        """A request starts using the loop; False once it is closing (take another)."""
        with self._lock:
            if self._closing:
                return False
            self._users += 1
            return True

    def release(self) -> None:
        """A request is done with the loop: close it if that was asked meanwhile."""
        with self._lock:
            self._users -= 1
            close = self._users == 0 and self._close_wanted and not self._closing
            self._closing = self._closing or close
        if close:
            try:
                self._close_now()
            finally:
                self.closed.set()

    def close(self, force: bool = False) -> None:
        """Shut the lifespan down and close the loop now if no request uses it (or ``force``),
        else once the last request using it ends."""
        with self._lock:
            busy = self._closing
            if not busy and self._users and (not force or self.loop.is_running()):
                self._close_wanted = True  # a loop running now can only be closed by its user
                return
            self._closing = True
        if busy:
            self.closed.wait(CLOSE_WAIT)  # another thread is closing it: let it finish
            return
        try:
            self._close_now()
        finally:
            self.closed.set()

    def _close_now(self) -> None:
        loop = self.loop
        if loop.is_closed() or loop.is_running():
            return
        try:
            self.run(self.lifespan.shutdown())
            self.run(_cancel_all(self._root))
            self.run(loop.shutdown_asyncgens())
            self.run(loop.shutdown_default_executor())
            self._end.set_result(None)
            self._turn()  # the root ends: whatever is tied to it (anyio's workers) stops
        except Exception:
            logger.exception("bridge: error while closing an event loop")
        finally:
            with contextlib.suppress(RuntimeError):
                loop.close()


async def _cancel_all(root: asyncio.Task[None] | None) -> None:
    """Cancel every task left on the loop but the root and this one, and let them end."""
    pending = asyncio.all_tasks() - {root, asyncio.current_task()}
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending, timeout=CANCEL_WAIT)


class SharedRunner(Runner):
    """The loop runs on a daemon thread of its own (or the caller's, if ``loop`` is given: it
    must be running already); WSGI threads submit to it."""

    def __init__(
        self, app: ASGIApp, lifespan: str, loop: asyncio.AbstractEventLoop | None = None
    ) -> None:
        if loop is not None and not loop.is_running():
            raise RuntimeError(
                "the event loop given to AsgiToWsgi must be running, in a thread of its own"
            )
        self._owned = loop is None
        super().__init__(app, lifespan, asyncio.new_event_loop() if loop is None else loop)
        self._lifespan_checked = True  # the loop always runs: nothing freezes between requests
        if self._owned:
            self.thread = threading.Thread(target=self._serve, name="bridge-asgi-loop", daemon=True)
            self._root  # noqa: B018 - made here, before the loop's thread runs it
            self.thread.start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._root)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coro, self.loop)

    def waiter(self) -> Waiter:
        return Waiter(self.loop, self.loop.create_future())

    def step(self, ready: Ready, take: Callable[[], T]) -> T:
        async def wait() -> T:
            while (waiter := ready()) is not None:
                await waiter.wait()
            return take()

        return self.run(wait())

    def after_request(self, owned: _leftovers.Owned) -> None:
        pass  # the loop keeps running: a request's leftover tasks go on by themselves

    def _close_now(self) -> None:
        if self.loop.is_closed() or not self.loop.is_running():
            return  # a caller's loop stopped meanwhile: nothing could run the shutdown
        with contextlib.suppress(Exception):
            self.run(self.lifespan.shutdown())
        if not self._owned:
            return  # the caller's loop: theirs to stop and close
        with contextlib.suppress(Exception):
            self.run(_cancel_all(self._root))
            self.run(self.loop.shutdown_asyncgens())
            self.run(self.loop.shutdown_default_executor())
        self.loop.call_soon_threadsafe(_resolve, self._end)
        self.thread.join(CLOSE_WAIT)
        if not self.loop.is_running():
            self.loop.close()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


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
            self._closing = [runner for runner in runners if not runner.closed.is_set()]

    def close_at_exit(self) -> None:
        """At process exit: close every loop; one a request still uses gets ``EXIT_GRACE``
        seconds for that request to end (servers drain before they exit), then is forced."""
        self.close()
        deadline = time.monotonic() + EXIT_GRACE
        while time.monotonic() < deadline and any(not r.closed.is_set() for r in self._closing):
            time.sleep(0.05)
        self.close(force=True)

    def _forget_parent(self) -> None:
        """In a forked child: the loops are copies of the parent's. Running their lifespan
        shutdown would repeat the parent's, and the shared loop's thread does not exist here
        (waiting for it would never end), so only the copies' file descriptors are closed."""
        for runner in self._runners:
            with contextlib.suppress(Exception):
                runner.loop.close()
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
