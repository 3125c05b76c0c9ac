"""Event loops for ``AsgiToWsgi``: one per WSGI server thread, or one shared background loop.

Theory of operation.

- Per-thread (the fast path): a WSGI server thread gets its own loop on its first request and
  keeps it. A request runs on that loop *in the server thread itself*: the thread runs the loop
  only until the next thing it needs (the response start, the next body chunk), so no message
  ever crosses a thread. Loops are made lazily, never in a constructor, and a forked child drops
  its parent's. When a thread gets its first loop, the loops of threads that have ended are shut
  down (lifespan shutdown, then ``close()``), so a thread-per-request server leaves none behind.
- Shared: one daemon thread runs one loop forever; WSGI threads hand it work with
  ``run_coroutine_threadsafe``. Slower, but every request sees the same loop-bound resources.
  The loop may also be the caller's own, already running in a thread of theirs (a2wsgi's
  ``loop=`` argument): then bridge neither starts nor stops nor closes it.

Each loop owns a ``Lifespan`` started before its first request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from .._types import ASGIApp
from ._lifespan import Lifespan

T = TypeVar("T")
logger = logging.getLogger("bridge")


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


class Runner:
    """A loop, its lifespan, and how a WSGI thread runs a coroutine on it."""

    def __init__(
        self, app: ASGIApp, lifespan: str, loop: asyncio.AbstractEventLoop | None = None
    ) -> None:
        self.loop = loop if loop is not None else asyncio.new_event_loop()
        self.lifespan = Lifespan(app, lifespan)
        self.thread = threading.current_thread()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop from the calling WSGI thread and return its result."""
        return self.loop.run_until_complete(coro)

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
            self.loop.run_forever()
        return take()

    def start(self) -> None:
        self.run(self.lifespan.startup())

    def close(self) -> None:
        """Shut the lifespan down and close the loop; the loop must not be running."""
        loop = self.loop
        if loop.is_closed() or loop.is_running():
            return
        try:
            loop.run_until_complete(self.lifespan.shutdown())
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        except Exception:
            logger.exception("bridge: error while closing an event loop")
        finally:
            loop.close()


class SharedRunner(Runner):
    """The loop runs forever on a daemon thread of its own (or the caller's, if ``loop`` is
    given: it must be running already); WSGI threads submit to it."""

    def __init__(
        self, app: ASGIApp, lifespan: str, loop: asyncio.AbstractEventLoop | None = None
    ) -> None:
        super().__init__(app, lifespan, loop)
        self._owned = loop is None
        if loop is not None and not loop.is_running():
            raise RuntimeError(
                "the event loop given to AsgiToWsgi must be running, in a thread of its own"
            )
        if self._owned:
            self.thread = threading.Thread(target=self._serve, name="bridge-asgi-loop", daemon=True)
            self.thread.start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

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

    def close(self) -> None:
        if self.loop.is_closed() or not self.loop.is_running():
            return  # a caller's loop stopped meanwhile: nothing could run the shutdown
        with contextlib.suppress(Exception):
            self.run(self.lifespan.shutdown())
        if not self._owned:
            return  # the caller's loop: theirs to stop and close
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        super().close()


class Loops:
    """Which runner serves the calling thread, per the adapter's ``loop`` mode.

    A thread whose own event loop is running (a WSGI test client called from async code, an
    ASGI app calling a wrapped app synchronously) cannot run a second loop, so it is served by
    the shared loop whatever the mode: it blocks its caller, as any WSGI call from async code
    does, but works.
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

    def get(self) -> Runner:
        runner: Runner | None = getattr(self._local, "runner", None)
        if runner is not None and self._pid == os.getpid() and running_loop() is None:
            return runner
        return self._new_runner()

    def _new_runner(self) -> Runner:
        with self._lock:
            if self._pid != os.getpid():
                self._forget_parent()
            running = running_loop()
            if self._mode == "shared" or running is not None:
                return self._get_shared(running)
            # One look at each thread: one that ends between two looks would be dropped unclosed.
            alive: list[Runner] = []
            ended: list[Runner] = []
            for old in self._runners:
                (alive if old.thread.is_alive() else ended).append(old)
            runner = Runner(self._app, self._lifespan)
            self._runners = [*alive, runner]
        for old in ended:
            old.close()
        runner.start()
        self._local.runner = runner
        return runner

    def _get_shared(self, running: asyncio.AbstractEventLoop | None) -> SharedRunner:
        """The shared loop (made on first use); the caller holds the lock."""
        if self._shared is None:
            self._shared = SharedRunner(self._app, self._lifespan, self._given)
            self._shared.start()
        if running is self._shared.loop:
            raise RuntimeError(
                "AsgiToWsgi called synchronously from a task on its own shared loop: it would "
                "wait for itself forever"
            )
        if running is None:
            self._local.runner = self._shared
        return self._shared

    def close(self) -> None:
        """Shut down every loop's lifespan and close the loops (the next request starts anew)."""
        with self._lock:
            if self._pid != os.getpid():  # a forked child that never served (atexit still runs)
                self._forget_parent()
                return
            runners: list[Runner] = [*self._runners, *([self._shared] if self._shared else [])]
            self._runners, self._shared = [], None
            self._local = threading.local()
        for runner in runners:
            runner.close()

    def _forget_parent(self) -> None:
        """In a forked child: the loops are copies of the parent's. Running their lifespan
        shutdown would repeat the parent's, and the shared loop's thread does not exist here
        (waiting for it would never end), so only the copies' file descriptors are closed."""
        for runner in self._runners:
            with contextlib.suppress(Exception):
                runner.loop.close()
        self._pid, self._runners, self._shared = os.getpid(), [], None
        self._local = threading.local()


# The C function itself (asyncio's documented low-level API): checked on every request.
running_loop = asyncio._get_running_loop
