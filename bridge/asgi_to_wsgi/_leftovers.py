"""Tasks a request leaves running on a per-thread loop, and what becomes of them.

A per-thread loop runs only while its WSGI thread serves a request, so a task that outlives its
request (``asyncio.create_task(notify())`` and return) would freeze until the thread's next
request, and its timeouts would fire late. The policy:

- A request's own tasks (created while its app ran, however deep) get ``LEFTOVER_WAIT`` seconds
  after the app's task ends, before the WSGI thread is released, as Starlette's background tasks
  do. Those still running then are cancelled, with one warning per coroutine name that points to
  ``loop="shared"`` (a loop that always runs) for work that must outlive a request.
- Tasks the lifespan starts (a cache refresher) belong to the loop, not to a request: they are
  left alone, but they too run only while the thread serves requests, which is said once.

Ownership is recorded by a task factory on the per-thread loops: a new task is filed under the
owner (a list) that the code creating it runs under, a context variable every child inherits.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from typing import Any

logger = logging.getLogger("bridge")

# Seconds a request's leftover tasks may run on after its app's task ended. Starlette waits for
# background tasks without bound; 5 s lets short fire-and-forget work (a notification, a log
# shipment) finish while a task that would run forever holds the server thread only briefly.
LEFTOVER_WAIT = 5.0

Owned = list["asyncio.Task[Any]"]
owner: contextvars.ContextVar[Owned | None] = contextvars.ContextVar("bridge_owner", default=None)


def task_factory(
    loop: asyncio.AbstractEventLoop, coro: Any, /, **options: Any
) -> asyncio.Task[Any]:
    """The per-thread loops' task factory: an ordinary task, filed under its creator's owner."""
    task = asyncio.Task(coro, loop=loop, **options)
    owned = owner.get()
    if owned is not None:
        owned.append(task)
    return task


def running(owned: Owned) -> list[asyncio.Task[Any]]:
    return [task for task in owned if not task.done()]


async def finish(tasks: list[asyncio.Task[Any]], warned: set[str]) -> None:
    """Give a request's leftover ``tasks`` ``LEFTOVER_WAIT`` seconds, then cancel the rest."""
    _, late = await asyncio.wait(tasks, timeout=LEFTOVER_WAIT)
    for task in late:
        _warn_once(
            task,
            warned,
            "bridge: task %s was still running %ss after its request ended and was cancelled: "
            "with loop='per-thread' an event loop runs only while its WSGI thread serves a "
            "request; use loop='shared' for work that outlives a request",
            LEFTOVER_WAIT,
        )
        task.cancel()
    if late:
        await asyncio.wait(late, timeout=1.0)


def warn_lifespan_tasks(owned: Owned, warned: set[str]) -> None:
    """Say once per coroutine name that a lifespan task runs only while requests do."""
    for task in running(owned):
        _warn_once(
            task,
            warned,
            "bridge: the lifespan started task %s; with loop='per-thread' it runs only while this "
            "WSGI thread serves a request. Use loop='shared' for work that must run between "
            "requests",
        )


def _warn_once(task: asyncio.Task[Any], warned: set[str], message: str, *args: object) -> None:
    coro = task.get_coro()
    name = getattr(coro, "__qualname__", None) or task.get_name()
    if name not in warned:
        warned.add(name)
        logger.warning(message, name, *args)
