"""One request's ASGI side for ``AsgiToWsgi``: the app's task, ``receive()`` and ``send()``.

Everything here runs on the request's event loop; the WSGI thread reaches it only through the
runner (``Runner.step``), which in per-thread mode is the same thread and in shared mode hands
the work to the loop's thread. ``wsgi.input`` is always read by the request's own WSGI thread:
in per-thread mode inside ``receive()``; on a shared loop, which must never block, ``receive()``
asks for a chunk and the WSGI thread, woken from ``step``, reads it (``feed``) and hands it
over. So a stalled upload holds only its own server thread, never a pool every request shares.

A read the WSGI thread has taken on is never lost: if the ``receive()`` that asked for it is
cancelled meanwhile (an app's ``wait_for(receive(), t)``), the chunk goes to the next one. A body
that ends short of its ``Content-Length``, or an ``OSError`` under ``wsgi.input``, is the client
leaving: the WSGI call then ends with ``ClientDisconnected``, never an error blaming the app.
When the server closes the response early, every ``receive()`` the app awaits returns
``http.disconnect`` before any ``send()`` raises, so a disconnect watcher hears it first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import BinaryIO

from .._environ import declared_length
from .._errors import ASGIProtocolError, ClientDisconnected
from .._streams import RESPONSE_BUFFER
from .._types import ASGIApp, Environ, Message, Scope
from ._leftovers import Owned, owner
from ._runner import Runner, Waiter
from ._shared_loop import SharedRunner

logger = logging.getLogger("bridge")

# Loop iterations abandon() gives the app's waiting receive() calls to return http.disconnect
# before its send() calls raise: each needs two (its future, then its task), and they run side
# by side; the bound only matters for a receiver that never resumes.
_RECEIVER_TURNS = 8


class AppCall:
    def __init__(
        self,
        runner: Runner,
        environ: Environ,
        chunk_size: int,
        timeout: float | None,
        limit: int | None = None,
    ):
        self._runner = runner
        self._limit = limit  # max_body_size: past it the body is cut (see _read_body)
        self._read = 0
        self.too_large = False
        self._loop = runner.loop
        self._input = environ["wsgi.input"]
        self._head = environ.get("REQUEST_METHOD") == "HEAD"
        self._remaining = _content_length(environ)
        self._chunk_size = chunk_size
        self._timeout = timeout
        self._body_done = self._remaining == 0
        self._empty_body = self._body_done  # still owed its one http.request (the ASGI spec)
        self._shared = isinstance(runner, SharedRunner)  # a shared loop must not block on reads
        self.status: int | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self._chunks: list[bytes] = []
        self.queued = 0
        self.complete = False  # the app sent its last body chunk
        self.file: BinaryIO | None = None  # http.response.pathsend's file, opened (see _send)
        self._bodied = False  # an http.response.body came: no pathsend after it
        self._completion_seen = False
        self.gone = False  # the WSGI server closed the response early (or the body was cut)
        self._client_left = False  # the body ended short or wsgi.input raised OSError
        self.timed_out = False
        self.answered = False  # the WSGI side has the status and the first chunk (or the end)
        self.task_done = False
        self.error: BaseException | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready: Waiter | None = None
        self._drained: asyncio.Future[None] | None = None
        self._finished: asyncio.Future[None] | None = None
        self._reading: asyncio.Future[Message] | None = None  # shared: a read the app awaits
        self._wanted: asyncio.Future[Message] | None = None  # ... not yet claimed by the thread
        self.tasks: Owned = []  # the tasks the app started (see _leftovers)
        self._kept: tuple[Message | None, BaseException | None] | None = None  # see _settle
        self._receiving = 0  # receive() calls the app awaits
        self._told: asyncio.Future[None] | None = None  # abandon(): the receivers have heard

    # -- the WSGI side's view -------------------------------------------------------------------

    def start(self, app: ASGIApp, scope: Scope) -> None:
        self._runner.spawn(self._run(app, scope))

    def until_first_chunk(self) -> Waiter | None:
        if self.task_done or self._wanted is not None or self.timed_out:
            return None
        if self.status is not None and (self.queued or self.complete):
            return None
        return self._wait()

    def until_more(self) -> Waiter | None:
        if self.queued or self.task_done or self._wanted is not None:
            return None
        if self.complete and not self._completion_seen:
            # Once: the iterable learns the body is complete (wait_time starts from there).
            self._completion_seen = True
            return None
        return self._wait()

    def take(self) -> tuple[list[bytes], bool, asyncio.Future[Message] | None]:
        """The chunks sent so far (the app may send more), whether the app has ended (taken
        together, so no chunk can slip in between) and, on a shared loop, a body read the app
        waits for: claimed only when no chunk is due, so the server has every chunk before its
        thread blocks on ``wsgi.input`` (a client may send more only once it has them)."""
        chunks, self._chunks, self.queued = self._chunks, [], 0
        _resolve(self._drained)
        if self.status is not None and (chunks or self.complete):
            self.answered = True
        read = None
        if self._wanted is not None and not chunks:
            read, self._wanted = self._wanted, None
        return chunks, self.task_done, read

    def feed(self, read: asyncio.Future[Message]) -> None:
        """Shared loop, in the WSGI thread: read the chunk the app asked for and hand it over."""
        try:
            message = self._read_body()
        except Exception as exc:
            self._loop.call_soon_threadsafe(self._settle, read, None, exc)
        except BaseException as exc:
            # The server tears this thread down (gunicorn's worker timeout raises SystemExit
            # here): the app must not wait for this read forever, nor see that on its loop.
            self._client_left = True
            error = ClientDisconnected("the WSGI server stopped reading the request body")
            error.__cause__ = exc
            self._loop.call_soon_threadsafe(self._settle, read, None, error)
            raise
        else:
            self._loop.call_soon_threadsafe(self._settle, read, message, None)

    def raise_if_failed(self) -> None:
        """Raise what went wrong, if anything, once the app's task is done."""
        if self.error is not None:
            if self.complete:
                # FastAPI sends a whole 500 and then re-raises: the response stands.
                logger.error(
                    "bridge: the ASGI app raised after its response was complete",
                    exc_info=self.error,
                )
            else:
                # Let go of it as it is raised, here and in this frame, which its traceback
                # holds: else it holds this call (and through it the adapter's loops) in a
                # cycle that waits for the garbage collector.
                error, self.error = self.error, None
                try:
                    if self._client_left:  # most likely the cause (Starlette's ClientDisconnect)
                        raise ClientDisconnected(_LEFT_MID_BODY) from error
                    raise error
                finally:
                    del error
        elif not self.task_done or self.timed_out or self.complete:
            return
        elif self._client_left or self.gone:  # the client's doing, not the app's
            raise ClientDisconnected(_LEFT_MID_BODY)
        elif self.status is None:
            raise ASGIProtocolError("the ASGI app returned without sending http.response.start")
        else:
            raise ASGIProtocolError(
                "the ASGI app returned before its last http.response.body (more_body=False)"
            )

    async def abandon(self, grace: float) -> None:
        """The server closed the response early: tell the app, give it ``grace`` seconds."""
        told = self._told = self._loop.create_future()
        self._tell_receivers()
        # A disconnect watcher beside a sender (Starlette's StreamingResponse) must hear
        # http.disconnect before the sender's send() raises: run the receivers first.
        for _ in range(_RECEIVER_TURNS):
            if not self._receiving:
                break
            await asyncio.sleep(0)
        _resolve(told)
        self._fail_send()
        await self.settle(grace)
        # An async generator the app dropped mid-iteration (a StreamingResponse body) is closed
        # by a task its finalizer schedules on this loop: let it run now, while the loop runs,
        # rather than whenever this thread's next request comes.
        for _ in range(3):
            await asyncio.sleep(0)

    async def settle(self, grace: float) -> None:
        """Give the app's task ``grace`` seconds to end, then cancel it."""
        task = self._task
        if task is None or task.done():
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), grace)
        except BaseException:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task

    # -- the app's task -------------------------------------------------------------------------

    def _tell_receivers(self) -> None:
        """The response is over: every receive() the app awaits, or makes, is http.disconnect."""
        self.gone = True
        _resolve(self._finished)
        self._wanted = self._kept = None
        if self._reading is not None and not self._reading.done():
            self._reading.set_result({"type": "http.disconnect"})

    def _fail_send(self) -> None:
        if self._drained is not None and not self._drained.done():
            self._drained.set_exception(ClientDisconnected("the WSGI server closed the response"))

    async def _run(self, app: ASGIApp, scope: Scope) -> None:
        owner.set(self.tasks)
        self._task = asyncio.current_task()
        self._finished = self._loop.create_future()
        timer = None
        if self._timeout is not None:
            timer = self._loop.call_later(self._timeout, self._time_out)
        try:
            await app(scope, self._receive, self._send)
        except asyncio.CancelledError:
            if not self.timed_out and not self.gone:  # not ours: it escaped from the app
                self.error = RuntimeError("the ASGI app's task was cancelled")
        except BaseException as exc:
            if self.gone:
                # Nobody is left to tell (frameworks turn our ClientDisconnected into errors of
                # their own); keeping it would keep its frames, and what they hold, alive.
                logger.debug("bridge: the ASGI app ended after the client left: %r", exc)
            else:
                self.error = exc
        finally:
            if timer is not None:
                timer.cancel()
            self.task_done = True
            _resolve(self._finished)
            self._wake()

    def _time_out(self) -> None:
        # Until the first body chunk nothing can reach the client (PEP 3333 sends the headers
        # with it), so a start message alone does not stop the clock.
        if not self.answered and self._task is not None:
            logger.error(
                "bridge: the ASGI app did not start its response within %ss: 504", self._timeout
            )
            self.timed_out = True
            self._task.cancel()
            # The 504 goes out whatever the app does next: if it ignores the cancellation, it
            # sees the client as gone rather than send a response nobody reads.
            self._tell_receivers()
            self._fail_send()
            self._wake()

    async def _receive(self) -> Message:
        if not self._body_done and not self.gone:
            if self._shared:
                return await self._ask_for_body()
            if self._chunks:
                # Let the server take what the app sent before this thread blocks on wsgi.input:
                # a client may send more only once it has that (an echo in lock-step).
                await asyncio.sleep(0)
            return self._read_body()
        if self._kept is not None and not self.gone:  # the last chunk, kept (shared loop)
            return self._take_kept()
        if self._empty_body and not self.gone:
            self._empty_body = False
            return {"type": "http.request", "body": b"", "more_body": False}
        if self._finished is not None and not self._finished.done() and not self._client_left:
            self._receiving += 1
            try:
                await asyncio.shield(self._finished)
            finally:
                self._receiving -= 1
        return {"type": "http.disconnect"}

    async def _ask_for_body(self) -> Message:
        if self._kept is not None:
            return self._take_kept()
        if self._reading is not None:  # another receive() call is reading: queue up behind it
            await asyncio.wait([self._reading])
            return await self._receive()
        reading: asyncio.Future[Message] = self._loop.create_future()
        self._reading = self._wanted = reading
        self._wake()
        self._receiving += 1
        try:
            return await reading
        except asyncio.CancelledError:
            if reading.done() and not reading.cancelled() and not self.gone:
                # Handed over, then cancelled before this task resumed: keep it for the next.
                self._kept = (
                    (None, reading.exception()) if reading.exception() else (reading.result(), None)
                )
            raise
        finally:
            self._receiving -= 1
            self._reading = None
            if self._wanted is reading:  # cancelled before the WSGI thread took it on
                self._wanted = None

    def _take_kept(self) -> Message:
        """A chunk read for a receive() that was cancelled meanwhile (see ``_settle``)."""
        (message, error), self._kept = self._kept or (None, None), None
        if error is not None:
            raise error
        return message or {"type": "http.disconnect"}

    def _read_body(self) -> Message:
        size = (
            self._chunk_size if self._remaining is None else min(self._chunk_size, self._remaining)
        )
        try:
            data = self._input.read(size)
        except OSError:  # the server's connection to the client failed: the app sees it
            self._client_left = self._body_done = True
            raise
        self._read += len(data)
        if self._limit is not None and self._read > self._limit:
            # max_body_size: the app sees the client go (the WSGI call answers 413 if it can),
            # and no more of the body is read.
            self.too_large = self.gone = self._body_done = self._client_left = True
            return {"type": "http.disconnect"}
        if self._remaining is None:
            self._body_done = not data
        else:
            self._remaining -= len(data)
            if len(data) < size:  # the body ended before its Content-Length: the client left
                self.gone = self._body_done = self._client_left = True
                return {"type": "http.disconnect"}
            self._body_done = self._remaining == 0
        return {"type": "http.request", "body": data, "more_body": not self._body_done}

    async def _send(self, message: Message) -> None:
        if self.gone:
            if self._told is not None and not self._told.done():  # abandon() tells receivers
                await asyncio.shield(self._told)
            raise ClientDisconnected("the WSGI server closed the response (client gone)")
        kind = message["type"]
        if kind == "http.response.body":  # the common message first: it is sent per chunk
            if self.status is None:
                raise ASGIProtocolError("http.response.body sent before http.response.start")
            if self.complete:
                raise ASGIProtocolError("http.response.body sent after the response was complete")
            self._bodied = True
            body = message.get("body", b"")
            if body:
                if type(body) is not bytes:
                    body = _bytes(body)
                if not self._head:  # a HEAD response has no body, as ASGI servers ensure
                    self._chunks.append(body)
                    self.queued += len(body)
            if not message.get("more_body", False):
                self.complete = True
                _resolve(self._finished)
        elif kind == "http.response.start":
            if self.status is not None:
                raise ASGIProtocolError("http.response.start sent twice")
            self.status = _status(message.get("status"))
            self.headers = list(message.get("headers") or [])
        elif kind == "http.response.pathsend":
            self._pathsend(message)
        else:
            raise ASGIProtocolError(
                f"unexpected ASGI message {kind!r}: an http response sends "
                "'http.response.start', then 'http.response.body' or 'http.response.pathsend'"
            )
        if self._ready is not None:
            self._wake()
        if self.queued > RESPONSE_BUFFER:
            self._drained = self._loop.create_future()
            await self._drained

    def _pathsend(self, message: Message) -> None:
        """The ``http.response.pathsend`` extension: the whole body is the file at a path.

        The file is opened here, before ``send()`` returns: what the app does next (a
        background task that deletes a temporary file) cannot take it from the server. The
        WSGI call hands it to ``wsgi.file_wrapper``, so the server may ``sendfile()`` it.
        """
        if self.status is None:
            raise ASGIProtocolError("http.response.pathsend sent before http.response.start")
        if self.complete:
            raise ASGIProtocolError("http.response.pathsend sent after the response was complete")
        if self._bodied:
            raise ASGIProtocolError(
                "http.response.pathsend sent after http.response.body: it must be the whole body"
            )
        path = message.get("path")
        if not isinstance(path, str):
            raise ASGIProtocolError(
                f"http.response.pathsend needs a str path, got {type(path).__name__}"
            )
        if not self._head:  # a HEAD response has no body, as ASGI servers ensure
            self.file = open(path, "rb")  # noqa: SIM115 (the WSGI side closes it)
        self.complete = True
        _resolve(self._finished)

    def _settle(
        self, read: asyncio.Future[Message], message: Message | None, error: BaseException | None
    ) -> None:
        """On the loop: hand the chunk the WSGI thread read to the receive() that asked."""
        if not read.done():
            _deliver(read, message, error)
        elif not self.gone:
            # That receive() was cancelled (an app's wait_for timed out) after the thread took
            # the read on: the chunk is the next receive()'s, a newer one waiting or the next.
            newer = self._reading
            if newer is not None and newer is self._wanted and not newer.done():
                self._wanted = None
                _deliver(newer, message, error)
            else:
                self._kept = (message, error)

    def _wait(self) -> Waiter:
        self._ready = self._runner.waiter()
        return self._ready

    def _wake(self) -> None:
        ready, self._ready = self._ready, None
        if ready is not None:
            ready.wake()


def _resolve(future: asyncio.Future[None] | None) -> None:
    if future is not None and not future.done():
        future.set_result(None)


def _deliver(
    future: asyncio.Future[Message], message: Message | None, error: BaseException | None
) -> None:
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(message or {"type": "http.disconnect"})


def _bytes(body: object) -> bytes:
    """A copy of a bytes-like body (the app may reuse its buffer once send() returns)."""
    if isinstance(body, (bytearray, memoryview)):
        return bytes(body)  # bytes(memoryview) is every byte, whatever its item size
    raise ASGIProtocolError(
        f"http.response.body's body must be bytes, got {type(body).__name__}: {body!r:.40}"
    )


_LEFT_MID_BODY = "the client left before the request body was complete"


def _status(status: object) -> int:
    if type(status) is int and 100 <= status <= 999:  # the usual case, checked first
        return status
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 999:
        raise ASGIProtocolError(
            f"http.response.start needs an int status of three digits, got {status!r}"
        )
    return int(status)  # an IntEnum such as HTTPStatus.OK is an int too


def _content_length(environ: Environ) -> int | None:
    """The body's declared length; ``None`` to read to the end (chunked, input terminated)."""
    declared = declared_length(environ)
    if declared is not None:
        return declared
    return None if environ.get("wsgi.input_terminated") else 0
