"""The per-thread event loop of ``AsgiToWsgi``: a ``Runner`` and how its WSGI thread runs it.

Each loop bridge owns has one long-lived *root* task, and the loop always runs inside
``run_until_complete(root)``. Libraries that tie resources to "the root task" find it there
(anyio keeps its worker threads, which FastAPI's ``def`` endpoints and ``FileResponse`` use,
per root task: with a root per request every such request started a new OS thread). The root
ends when the loop is closed, which stops those worker threads.

A request *uses* its runner from the WSGI call until its app's task has ended or the server
closed the response; ``close()`` shuts a runner down at once only when nobody uses it, and
otherwise marks it, and its last user closes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import selectors
import threading
import weakref
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from .._types import ASGIApp
from . import _leftovers
from ._lifespan import Lifespan

T = TypeVar("T")
logger = logging.getLogger("bridge")

# Seconds a closer waits for another thread that is closing the same loop already, and that
# tasks still pending at close get to finish their cancellation.
CLOSE_WAIT = 15.0
CANCEL_WAIT = 2.0
_selectors: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, selectors.BaseSelector] = (
    weakref.WeakKeyDictionary()
)


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


def new_loop() -> asyncio.AbstractEventLoop:
    """A selector event loop whose copy in a forked child can be closed (``close_copy``)."""
    selector = selectors.DefaultSelector()
    loop = asyncio.SelectorEventLoop(selector)
    _selectors[loop] = selector
    return loop


def close_copy(loop: asyncio.AbstractEventLoop) -> None:
    """In a forked child: close the copy of a parent's loop, and so its file descriptors.

    An epoll instance is shared with the parent across ``fork``, and closing a loop unregisters
    its self-pipe from it, which would unregister the parent's too (its loop would no longer be
    woken from other threads). So the child's copy of that descriptor is first swapped for
    ``/dev/null``: the unregistering then fails harmlessly and the close frees the rest.
    """
    selector = _selectors.pop(loop, None)
    fileno = getattr(selector, "fileno", None)
    if fileno is not None:
        null = os.open(os.devnull, os.O_RDONLY)
        try:
            os.dup2(null, fileno())
        finally:
            os.close(null)
    with contextlib.suppress(Exception):
        loop.close()


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
        runner = cls(app, lifespan, new_loop())
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

    @property
    def users(self) -> int:
        """Requests using the loop now."""
        return self._users

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
            self._shut_down()

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
        self._shut_down()

    def _shut_down(self) -> None:
        """Close now (the caller has claimed the closing); ``closed`` is set however it ends."""
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
            self.run(cancel_all(self._root))
            self.run(loop.shutdown_asyncgens())
            self.run(loop.shutdown_default_executor())
            self._end.set_result(None)
            self._turn()  # the root ends: whatever is tied to it (anyio's workers) stops
        except Exception:
            logger.exception("bridge: error while closing an event loop")
        finally:
            with contextlib.suppress(RuntimeError):
                loop.close()


async def cancel_all(root: asyncio.Task[None] | None) -> None:
    """Cancel every task left on the loop but the root and this one, and let them end."""
    pending = asyncio.all_tasks() - {root, asyncio.current_task()}
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending, timeout=CANCEL_WAIT)
