"""The shared event loop of ``AsgiToWsgi(loop="shared")``: one daemon thread runs it, every
WSGI thread hands it work.

Forks. A forked child gets a copy of the loop but not its thread; the copy's file descriptors
(its selector and self-pipe) can only be closed while it is not running (see ``close_copy``).
So, when no request uses the loop, it is paused around a fork (``os.register_at_fork``): the
parent's resumes at once, the child's copy is closed. A loop busy with a request at the fork is
left to the child as it is (its descriptors stay open there until exit).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import weakref
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from .._types import ASGIApp
from . import _leftovers
from ._runner import CLOSE_WAIT, Ready, Runner, Waiter, cancel_all, close_copy, new_loop

T = TypeVar("T")
# Seconds a fork waits for an idle shared loop to pause; past that it is left running.
PAUSE_WAIT = 1.0
_owned_loops: weakref.WeakSet[SharedRunner] = weakref.WeakSet()


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
        super().__init__(app, lifespan, new_loop() if loop is None else loop)
        self._paused = threading.Event()  # the loop's thread stopped it for a fork
        self._resume = threading.Event()
        self._running = threading.Event()  # the loop's thread has (re)started the loop
        self._fork_lock_held = False
        if self._owned:
            self.thread = threading.Thread(target=self._serve, name="bridge-asgi-loop", daemon=True)
            self._root  # noqa: B018 - made here, before the loop's thread runs it
            self.thread.start()
            _owned_loops.add(self)

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        while True:
            self.loop.call_soon(self._running.set)
            try:
                self.loop.run_until_complete(self._root)
                return
            except RuntimeError:
                if self._root.done() or self.loop.is_closed():
                    raise
            # Stopped for a fork (_pause): wait until the parent's side resumes.
            self._paused.set()
            self._resume.wait()
            self._resume.clear()

    # -- forks ----------------------------------------------------------------------------------

    def _pause(self) -> None:
        """Before a fork: stop the loop if no request uses it, holding users off meanwhile."""
        self._lock.acquire()
        if self._users or self._closing or threading.current_thread() is self.thread:
            self._lock.release()
            return
        self._fork_lock_held = True
        self._paused.clear()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._paused.wait(PAUSE_WAIT)

    def _after_fork_in_parent(self) -> None:
        if self._fork_lock_held:
            self._fork_lock_held = False
            # Held off until the loop runs again: a close() right after the fork would find it
            # stopped and skip the lifespan shutdown.
            self._running.clear()
            self._resume.set()
            self._running.wait(PAUSE_WAIT)
            self._lock.release()

    def _after_fork_in_child(self) -> None:
        """The copy of a paused loop is not running: close it, and so its descriptors."""
        if not self._fork_lock_held:
            return
        self._fork_lock_held = False
        if self._paused.is_set() and not self.loop.is_running():
            self._closing = True
            close_copy(self.loop)
            self.closed.set()
        self._lock.release()

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
            self.run(cancel_all(self._root))
            self.run(self.loop.shutdown_asyncgens())
            self.run(self.loop.shutdown_default_executor())
        self.loop.call_soon_threadsafe(self._end.set_result, None)  # once: under _closing
        self.thread.join(CLOSE_WAIT)
        if not self.loop.is_running():
            self.loop.close()


def _before_fork() -> None:
    for runner in list(_owned_loops):
        runner._pause()


def _after_fork_in_parent() -> None:
    for runner in list(_owned_loops):
        runner._after_fork_in_parent()


def _after_fork_in_child() -> None:
    for runner in list(_owned_loops):
        runner._after_fork_in_child()
    _owned_loops.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork,
        after_in_parent=_after_fork_in_parent,
        after_in_child=_after_fork_in_child,
    )
