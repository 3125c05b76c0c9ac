"""The loop side of one ``WsgiToAsgi`` request: the two hand-offs and the task that reads
``receive()`` (see the theory of operation in ``wsgi_to_asgi._adapter``).

Every ``await`` here, and what happens when it fails:

- ``channel.get()`` raises the app's error (after close() ran) or the abort's; on cancellation
  the request is abandoned (a queued job never runs) and the call waits for the thread at most
  ``CANCEL_GRACE`` seconds before re-raising.
- ``send()`` raising ``OSError`` means the client is gone: the thread is aborted at its next
  chunk. Any other error is the server's: the thread is aborted and the error propagates. A
  ``send()`` that never returns holds the call (the thread is still released by a disconnect).
- ``receive()`` in the pump: ``http.disconnect`` aborts both hand-offs; an error aborts them with
  ``ClientDisconnected`` (its cause the error) and is raised from the ASGI call; after the body
  any other message means the callable is not a real server's (a middleware replaying a logged
  body returns at once, forever), so the pump stops and disconnects are left to ``send()``. While
  the body streams, the pump yields to the loop after each message and waits for the reader once
  ``READ_AHEAD`` is queued, so a receive() that never suspends cannot starve the loop.
- The call returns only once the thread is done with the request (its ``close()`` returned), on
  every path, so a returned call means the request is over, as servers and middleware assume.
  One exception: ``timeout``. A response not started by then gets ``504`` and the call returns;
  the thread (which cannot be killed) is aborted at its next chunk and holds its pool slot until
  it returns. The log line carries its stack, to show where it is stuck.
"""

from __future__ import annotations

import asyncio
import io
import logging
import sys
import tempfile
import traceback
from typing import IO, Any

from .._errors import ClientDisconnected, RequestBodyTooLarge
from .._stats import Counters
from .._streams import READ_AHEAD, RESPONSE_BUFFER, ToLoop, ToThread, input_stream
from .._types import Message, Receive, Send
from ._pool import Job
from ._response import END, Item

logger = logging.getLogger("bridge")

# Seconds a cancelled call waits for its thread to finish: the abort stops the app at its next
# chunk and then close() runs, which takes milliseconds; an app deaf to it (inside a slow query)
# must not hold a timeout middleware's own answer much past its deadline.
CANCEL_GRACE = 2.0
# Seconds a queued request waits before its receive() is watched for the client leaving. A
# watch costs a task; a pool that keeps up (the bench's 64 requests on 10 threads wait about
# 3 ms) never pays it, while a backlog of requests that wait for long is watched.
QUEUED_WATCH_DELAY = 0.01
# Bytes of a held request body (see ``Relay.hold``) kept in memory; past that, a temporary file.
HOLD_IN_MEMORY = READ_AHEAD


async def reply_too_large(send: Send, counters: Counters, label: str, limit: int) -> None:
    counters.too_large(label, limit)
    await plain_response(send, 413, b"Request Entity Too Large", [])


async def plain_response(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    headers = [(b"content-type", b"text/plain; charset=utf-8"), *headers]
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Relay:
    """The loop side of one request: the two hand-offs and the task that reads ``receive()``."""

    def __init__(
        self,
        receive: Receive,
        send: Send,
        limit: int | None,
        label: str,
        timeout: float | None,
        counters: Counters,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._counters = counters
        self._label = label
        self._over_limit = False
        self._receive = receive
        self._send = send
        self._limit = limit
        self.channel: ToLoop[Item] = ToLoop(self._loop, RESPONSE_BUFFER)
        self._chunks: ToThread | None = None
        self._pump: asyncio.Task[None] | None = None
        self._receive_error: BaseException | None = None
        self._watch_timer: asyncio.TimerHandle | None = None
        self._timeout = timeout
        self._deadline: asyncio.TimerHandle | None = None
        self._started = False  # the response's start went out
        self._timed_out = False
        # Set once the call is over; a job that a thread picks up after that returns at once.
        self.abandoned = False
        self.never_ran = False  # the job was cancelled before a thread took it
        self.thread: int | None = None  # the ident of the thread running the app, once one does

    def stream_body(self, first: bytes) -> io.BufferedReader:
        """``wsgi.input`` for a body still arriving after ``first``."""
        self._chunks = ToThread(self._loop, READ_AHEAD)
        self._chunks.put_nowait(first)
        return input_stream(self._chunks)

    def stream_after(self, held: IO[bytes]) -> io.BufferedReader:
        """``wsgi.input`` for a body whose start is ``held`` and whose rest is still arriving."""
        self._chunks = ToThread(self._loop, READ_AHEAD)
        return input_stream(self._chunks, held)

    async def hold(self, first: bytes, bound: int) -> tuple[IO[bytes], int, bool] | None:
        """Receive a body on the loop, up to ``bound`` bytes, before a thread is taken.

        A slow upload then waits on the loop, where waiting costs a coroutine, not on a pool
        thread: clients trickling bytes cannot take every thread (slow-loris). The bytes go to
        memory up to ``HOLD_IN_MEMORY``, then to a temporary file. Returns the held bytes
        (rewound), their count and whether more body follows; ``None`` when the client left,
        or the body passed ``max_body_size`` (then answered ``413``).
        """
        held = tempfile.SpooledTemporaryFile(max_size=HOLD_IN_MEMORY)  # noqa: SIM115 (its request closes it)
        try:
            held.write(first)
            total, more = len(first), True
            while more and total < bound:
                message = await self._receive()
                if message["type"] != "http.request":  # http.disconnect: nobody to answer
                    held.close()
                    self._counters.disconnects += 1
                    return None
                chunk = message.get("body", b"")
                total += len(chunk)
                if self._limit is not None and total > self._limit:
                    held.close()
                    await reply_too_large(self._send, self._counters, self._label, self._limit)
                    return None
                held.write(chunk)
                more = message.get("more_body", False)
                await asyncio.sleep(0)  # a receive() that never suspends must not hold the loop
        except BaseException:
            held.close()
            raise
        held.seek(0)
        return held, total, more

    async def run(self, received: int, job: Job, queued: bool) -> None:
        """Relay the response; return once the thread is done with the request.

        ``queued``: no thread may be free for ``job``; if it still waits ``QUEUED_WATCH_DELAY``
        later, ``receive()`` is watched, so a client that leaves while it waits is seen and the
        job never runs the app.
        """
        if self._chunks is not None:
            self._pump = self._loop.create_task(self._read_receive(self._chunks, received))
        elif queued:
            self._watch_timer = self._loop.call_later(QUEUED_WATCH_DELAY, self._watch_queued, job)
        if self._timeout is not None:
            self._deadline = self._loop.call_later(self._timeout, self._on_deadline)
        try:
            completed = await self._relay()
        except ClientDisconnected:
            if self._timed_out:
                return await self._answer_timeout(job)
            completed = False  # the app saw the disconnect on wsgi.input; nobody is left to answer
        except asyncio.CancelledError:
            self._stop(False)
            self._counters.disconnects += 1  # the server cancels a call whose client left
            await self._wait_for_thread(job, CANCEL_GRACE)
            raise
        except BaseException:
            self._stop(False)
            await self._wait_for_thread(job, None)
            raise
        self._stop(completed)
        if not completed:
            self._counters.disconnects += 1
        elif not self._over_limit:
            self._counters.served += 1
        if not self.channel.closed:  # the common case: the thread is already done
            await self._wait_for_thread(job, None)
        if self._receive_error is not None:
            raise self._receive_error

    def _on_deadline(self) -> None:
        self._deadline = None
        if not self._started:
            self._timed_out = True
            self.channel.abort(ClientDisconnected(f"no response within timeout={self._timeout}s"))

    async def _answer_timeout(self, job: Job) -> None:
        self._stop(False)
        self._counters.timeout_504 += 1
        if job.cancel():
            self.never_ran = True  # still waiting for a thread: it never will run
            where = "it was still waiting for a thread"
        else:
            frame = sys._current_frames().get(self.thread or 0)
            stack = "".join(traceback.format_stack(frame)) if frame else "(not found)\n"
            where = (
                f"its WSGI thread is still busy and holds a pool slot until it returns:\n{stack}"
            )
        logger.error("bridge: 504 for %s: no response within timeout=%ss; %s", self._label,
                     self._timeout, where.rstrip())  # fmt: skip
        await plain_response(self._send, 504, b"Gateway Timeout", [])

    def _watch_queued(self, job: Job) -> None:
        self._watch_timer = None
        if self._pump is None and not job.running() and not job.done():
            self._pump = self._loop.create_task(self._read_receive(None, 0))

    def _stop(self, completed: bool) -> None:
        self.abandoned = True
        if self._watch_timer is not None:
            self._watch_timer.cancel()
        if self._deadline is not None:
            self._deadline.cancel()
        if self._pump is not None:
            self._pump.cancel()
        if not completed:
            gone = ClientDisconnected("the request ended before the response did")
            self.channel.abort(gone)
            if self._chunks is not None:
                self._chunks.fail(gone)

    async def _wait_for_thread(self, job: Job, bound: float | None) -> None:
        """Wait until the thread is done with the request (``bound``: at most that long).

        Cancelled while it waits without a bound, it waits ``CANCEL_GRACE`` more, then lets the
        cancellation through: a task cancelled once more (anyio re-delivers) stops at once.
        """
        if job.cancel():
            self.never_ran = True  # it was still waiting for a thread (the adapter frees its slot)
            return
        if bound is None:
            try:
                await self.channel.finished()
            except asyncio.CancelledError:
                await self._wait_for_thread(job, CANCEL_GRACE)
                raise
            return
        try:
            await asyncio.wait_for(self.channel.finished(), bound)
        except asyncio.TimeoutError:
            logger.warning(
                "bridge: %s was cancelled; its WSGI thread is still busy after %.1f s, "
                "not waiting longer",
                self._label,
                bound,
            )

    async def _relay(self) -> bool:
        """Send the response as the thread makes it; True once it is complete."""
        started = False
        while True:
            try:
                items, finished = await self.channel.get()  # the app's errors are raised here
            except RequestBodyTooLarge:
                if started or not self._over_limit:
                    raise
                items, finished = [], False
            if self._over_limit and not started:
                # Whatever the app made of the error on wsgi.input (Flask turns it into a 500),
                # the client is told the truth while no header has gone out.
                self.channel.abort(ClientDisconnected("the request body was too large"))
                await reply_too_large(self._send, self._counters, self._label, self._limit or 0)
                return True
            started = started or bool(items)
            self._started = started
            try:
                if await self._send_batch(items):
                    return True
            except OSError:
                return False  # send() failed: the client is gone
            if finished:
                return False  # the thread ended without a response: it saw the call was over
            if self._pump is None:  # a streaming response: watch for the client leaving
                self._pump = self._loop.create_task(self._read_receive(None, 0))

    async def _send_batch(self, items: list[Item]) -> bool:
        """Send queued items, neighbouring chunks joined; True once the response is complete."""
        body: list[bytes] = []
        for item in items:
            if isinstance(item, bytes):
                body.append(item)
            elif item is END:
                await self._send_body(body, more=False)
                return True
            elif item["type"] == "http.response.pathsend":
                try:
                    await self._send(item)
                finally:
                    self.channel.acknowledge()  # only now may the thread close() the file
                return True
            else:
                await self._send(item)  # the start, which comes before any chunk
        if body:
            await self._send_body(body, more=True)
        return False

    async def _send_body(self, chunks: list[bytes], more: bool) -> None:
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        await self._send({"type": "http.response.body", "body": body, "more_body": more})

    async def _read_receive(self, chunks: ToThread | None, received: int) -> None:
        """Feed the rest of the request body to ``wsgi.input``, then watch for a disconnect.

        While the read-ahead is full, one more ``receive()`` stays outstanding, so a client that
        stops sending and leaves is seen at once even if the app never reads its body; memory
        stays bounded by the budget plus that one message. (A client still sending is another
        matter: ASGI offers no way to see its disconnect without reading the body first.)
        """
        ahead: asyncio.Future[Message] | None = None
        try:
            while True:
                message = await (ahead or self._receive())
                ahead = None
                if message["type"] == "http.disconnect":
                    if chunks is not None:
                        chunks.fail(ClientDisconnected("the client disconnected mid request body"))
                    self.channel.abort(ClientDisconnected("the client disconnected"))
                    return
                if chunks is None:
                    logger.debug(
                        "bridge: %s: receive() returned %r after the request body; not a "
                        "server's receive(), no longer watched (send() raising tells a "
                        "disconnect)",
                        self._label,
                        message["type"],
                    )
                    return
                received += len(message.get("body", b""))
                if self._limit is not None and received > self._limit:
                    self._over_limit = True
                    chunks.fail(
                        RequestBodyTooLarge(f"request body over max_body_size={self._limit}")
                    )
                    return
                chunks.put_nowait(message.get("body", b""))
                if not message.get("more_body", False):
                    chunks.close()
                    chunks = None
                elif chunks.over_budget():
                    ahead = asyncio.ensure_future(self._receive())
                    await _drained_or_disconnected(chunks, ahead)
                else:
                    await asyncio.sleep(0)  # a receive() that never suspends must not starve
        except asyncio.CancelledError as exc:
            if self.abandoned:
                raise  # _stop() cancelled the pump
            # receive() itself raised CancelledError (a server's own cancel scope): as an error.
            self._fail_receive(exc, chunks)
        except Exception as exc:
            self._fail_receive(exc, chunks)
        finally:
            if ahead is not None:
                ahead.cancel()

    def _fail_receive(self, exc: BaseException, chunks: ToThread | None) -> None:
        """``receive()`` raised: both sides hear of it (wsgi.input reads, the ASGI call)."""
        self._receive_error = exc
        gone = ClientDisconnected(f"receive() raised {type(exc).__name__}: {exc}")
        gone.__cause__ = exc
        if chunks is not None:
            chunks.fail(gone)
        self.channel.abort(gone)


async def _drained_or_disconnected(chunks: ToThread, ahead: asyncio.Future[Message]) -> None:
    """Wait until the reader drains ``chunks``, unless ``ahead`` brings a disconnect first."""
    drained = asyncio.ensure_future(chunks.drained())
    either: list[asyncio.Future[Any]] = [drained, ahead]
    try:
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        if not drained.done() and ahead.result()["type"] != "http.disconnect":
            await drained  # a body message: it waits until there is room for it
    finally:
        drained.cancel()
