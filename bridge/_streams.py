"""Bounded hand-offs between an event loop and one worker thread, and ``wsgi.input`` over them.

Theory of operation. A hand-off is a FIFO of items with a byte budget, one producer and one
consumer, one on the loop and one on a thread:

- ``ToLoop``: a thread produces (response chunks), the loop consumes. The loop takes *every*
  waiting item at once, so however many small chunks the thread made while the loop was busy,
  they cross the thread boundary in one wake-up. The thread wakes the loop only when the loop is
  actually waiting (one ``call_soon_threadsafe``), and blocks once the budget is spent: a slow
  client holds the worker thread, never unbounded memory.
- ``ToThread``: the loop produces (request body from ``receive()``), a thread consumes. The loop
  reads ahead up to the budget, then waits until the thread has drained it.

Either side may end the exchange: the producer with ``close()`` (no more items) or ``fail(exc)``
(its error reaches the consumer after the items already queued), the consumer with ``abort(exc)``
(the producer's next ``put`` raises ``exc``). An abort does not end the producer: a ``ToLoop``
consumer that must know the thread is done waits for ``finished()`` after aborting. One lock
guards the state; the thread sleeps on a condition of that lock and the loop on a future.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import threading
from collections import deque
from typing import IO, Any, Generic, TypeVar

from ._errors import ClientDisconnected

T = TypeVar("T")

# Bytes of request body read ahead of the application, and of response queued ahead of the
# client, in both directions: 256 KiB keeps a fast stream from blocking on every chunk while
# bounding memory per request (uvicorn reads 64 KiB at a time; four of those).
READ_AHEAD = 256 * 1024
RESPONSE_BUFFER = 256 * 1024
# What one queued item costs beyond its bytes (the bytes object's header, its deque slot), so a
# flood of tiny chunks is bounded in memory as well as in bytes: 2-byte messages counted by
# their length alone held about 22 times the budget.
ITEM_COST = 64


def _set_done(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class _Handoff(Generic[T]):
    def __init__(self, loop: asyncio.AbstractEventLoop, limit: int) -> None:
        self._loop = loop
        self._loop_thread = threading.get_ident()  # built on the loop's own thread
        self._limit = limit
        self._lock = threading.Lock()
        self._thread_wakeup = threading.Condition(self._lock)
        self._items: deque[T] = deque()
        self._size = 0
        self._closed = False
        self._acknowledged = False
        self._error: BaseException | None = None
        self._loop_waiter: asyncio.Future[None] | None = None

    def _take_loop_waiter(self) -> asyncio.Future[None] | None:
        """With the lock held: claim the loop's waiter, to be woken once the lock is released."""
        waiter, self._loop_waiter = self._loop_waiter, None
        return waiter

    def _wake_loop(self, waiter: asyncio.Future[None] | None) -> None:
        if waiter is None:
            return
        if threading.get_ident() == self._loop_thread:
            _set_done(waiter)
            return
        # A closed loop raises RuntimeError: nobody is left to wake.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(_set_done, waiter)

    async def _wait_on_loop(self) -> None:
        """With the lock held: release it, sleep until the thread side wakes the loop."""
        waiter = self._loop_waiter = self._loop.create_future()
        self._lock.release()
        try:
            await waiter
        finally:
            self._lock.acquire()
            if self._loop_waiter is waiter:
                self._loop_waiter = None

    def close(self) -> None:
        """Producer: no more items will come."""
        self._finish(None)

    def fail(self, exc: BaseException) -> None:
        """Producer: stop with ``exc``, raised to the consumer after the queued items."""
        self._finish(exc)

    def abort(self, exc: BaseException) -> None:
        """Consumer: stop; the producer's next ``put`` raises ``exc``, queued items are dropped."""
        with self._lock:
            if self._error is None:
                self._error = exc
            self._items.clear()
            self._size = 0
            self._thread_wakeup.notify_all()
            waiter = self._take_loop_waiter()
        self._wake_loop(waiter)

    def _finish(self, exc: BaseException | None) -> None:
        with self._lock:
            self._closed = True
            if exc is not None and self._error is None:
                self._error = exc
            self._thread_wakeup.notify_all()
            waiter = self._take_loop_waiter()
        self._wake_loop(waiter)


class ToLoop(_Handoff[T]):
    """Items made on a worker thread, consumed on the event loop in batches."""

    def put(self, item: T, size: int, *, wake: bool = True) -> None:
        """Thread side: queue ``item``; block while more than the budget is queued.

        ``wake=False`` leaves a waiting loop asleep, for a producer that knows its next item
        follows without blocking: the loop is woken once for all of them, by a later ``put``,
        by ``close()``, or as soon as the budget is spent.
        """
        with self._lock:
            if self._error is not None:
                raise self._error
            self._items.append(item)
            self._size += size + ITEM_COST
            over_budget = self._size > self._limit
            waiter = self._take_loop_waiter() if wake or over_budget else None
        self._wake_loop(waiter)
        if over_budget:
            with self._lock:
                while self._size > self._limit and self._error is None:
                    self._thread_wakeup.wait()
                if self._error is not None:
                    raise self._error

    async def get(self) -> tuple[list[T], bool]:
        """Loop side: every queued item and whether the producer has finished.

        Raises the producer's error once the items queued before it have been returned.
        """
        with self._lock:
            while not self._items and not self._closed and self._error is None:
                await self._wait_on_loop()
            items = list(self._items)
            self._items.clear()
            self._size = 0
            self._thread_wakeup.notify()
            if not items and self._error is not None:
                raise self._error
            return items, self._closed and self._error is None

    def close(self, last: T | None = None) -> None:
        """Producer: no more items will come; ``last``, when given, is queued first, under the
        same lock (one wake-up, one lock round for a producer's final item and its end)."""
        if last is None:
            self._finish(None)
            return
        with self._lock:
            if self._error is None:
                self._items.append(last)
            self._closed = True
            self._thread_wakeup.notify_all()
            waiter = self._take_loop_waiter()
        self._wake_loop(waiter)

    @property
    def closed(self) -> bool:
        """The producer has called ``close()`` or ``fail()`` (a plain read: no lock needed)."""
        return self._closed

    async def finished(self) -> None:
        """Loop side: wait until the producer has called ``close()`` or ``fail()``.

        Returns at once when it already has (the common case: no suspension). An ``abort()``
        does not end this wait: the producer only notices it at its next ``put``.
        """
        with self._lock:
            while not self._closed:
                await self._wait_on_loop()

    def acknowledge(self) -> None:
        """Loop side: the last item taken has been dealt with (see ``wait_acknowledged``)."""
        with self._lock:
            self._acknowledged = True
            self._thread_wakeup.notify_all()

    def wait_acknowledged(self) -> None:
        """Thread side: block until the loop calls ``acknowledge()`` or aborts."""
        with self._lock:
            while not self._acknowledged and self._error is None:
                self._thread_wakeup.wait()


class ToThread(_Handoff[bytes]):
    """Byte chunks received on the event loop, read on a worker thread.

    Empty chunks are never queued: to the reader, ``b""`` means the end of the body.
    """

    def put_nowait(self, chunk: bytes) -> None:
        """Loop side: queue ``chunk`` without regard to the budget."""
        if not chunk:
            return
        with self._lock:
            self._items.append(chunk)
            self._size += len(chunk) + ITEM_COST
            self._thread_wakeup.notify()

    def over_budget(self) -> bool:
        """Loop side: more is queued than the reader should have waiting."""
        return self._size > self._limit

    async def drained(self) -> None:
        """Loop side: wait until the reader has brought the queue under budget (or stopped)."""
        with self._lock:
            while self._size > self._limit and self._error is None:
                await self._wait_on_loop()

    def get(self) -> bytes:
        """Thread side: the next chunk, ``b""`` at the end; raises the producer's error."""
        with self._lock:
            while not self._items and not self._closed and self._error is None:
                self._thread_wakeup.wait()
            if self._items:
                chunk = self._items.popleft()
                self._size -= len(chunk) + ITEM_COST
                waiter = self._take_loop_waiter() if self._size <= self._limit else None
            elif self._error is not None:
                raise self._error
            else:
                return b""
        self._wake_loop(waiter)
        return chunk


class ReceiveStream(io.RawIOBase):
    """The raw ``wsgi.input`` of a request whose body is still arriving.

    Only ``readinto`` is written here; ``read``, ``readline``, ``readlines`` and iteration come
    from ``io`` (through the ``BufferedReader`` that ``input_stream`` wraps this in), which is
    where hand-written versions usually go wrong.
    """

    def __init__(self, chunks: ToThread) -> None:
        super().__init__()
        self._chunks = chunks
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not self._pending:
            chunk = self._chunks.get()
            if not chunk:
                return 0
            self._pending = memoryview(chunk)
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


class HeldThenReceived(io.RawIOBase):
    """The raw ``wsgi.input`` of a body whose start was held on the loop (a file, rewound)
    and whose rest is still arriving: the held bytes, then the rest."""

    def __init__(self, held: IO[bytes], rest: ReceiveStream) -> None:
        super().__init__()
        self._held: IO[bytes] | None = held
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._held is not None:
            data = self._held.read(len(buffer))
            if data:
                buffer[: len(data)] = data
                return len(data)
            self._held.close()
            self._held = None
        return self._rest.readinto(buffer)

    def close(self) -> None:
        if self._held is not None:
            self._held.close()
        super().close()


def input_stream(chunks: ToThread, held: IO[bytes] | None = None) -> io.BufferedReader:
    """``wsgi.input`` reading from ``chunks`` (after ``held``, the start of the body kept on the
    loop, when given): ``read(n)`` returns ``n`` bytes unless the body ends first, as every WSGI
    server's input does; a lost client raises ``ClientDisconnected``."""
    rest = ReceiveStream(chunks)
    raw = rest if held is None else HeldThenReceived(held, rest)
    return io.BufferedReader(raw, buffer_size=65536)


__all__ = [
    "READ_AHEAD",
    "RESPONSE_BUFFER",
    "ClientDisconnected",
    "HeldThenReceived",
    "ReceiveStream",
    "ToLoop",
    "ToThread",
    "input_stream",
]
