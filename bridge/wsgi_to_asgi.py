"""``WsgiToAsgi``: a WSGI application served by an ASGI server, its code run in a bounded pool.

Theory of operation. The event loop owns the ASGI side: ``receive()``, ``send()`` and, while a
body is still arriving or a response streams, a pump task that reads ``receive()``. A pool thread
owns the WSGI side: the application call, ``start_response``, the iteration and ``close()``.

- Admission: at most ``threads + backlog`` requests are in the adapter; the next one gets 503 at
  once. A slot is freed when the worker thread is done, not when the ASGI call returns, because a
  thread still inside the application is still busy.
- Request body: when the first ``http.request`` holds the whole body (the common case) it becomes
  a ``BytesIO`` and no thread ever waits on the loop. Otherwise the pump reads ahead at most
  ``READ_AHEAD`` bytes into a ``ToThread`` hand-off that ``wsgi.input`` drains.
- Response: the thread queues messages on a ``ToLoop`` hand-off; the loop sends every queued
  chunk as one message. An ordinary request therefore costs one hop to the thread and one back.
- Disconnect: the pump keeps reading ``receive()`` while the response streams; on
  ``http.disconnect`` (or ``send`` raising ``OSError``) it aborts the hand-off, so the thread's next
  chunk raises ``ClientDisconnected``, the iteration stops and ``close()`` runs.
"""

from __future__ import annotations

import asyncio
import contextvars
import io
import logging
import os
import threading
from collections.abc import Iterable
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

from ._environ import scope_to_environ
from ._errors import BridgeError, ClientDisconnected, RequestBodyTooLarge
from ._response import ErrorStream, FileWrapper, Item, Response, pathsend_target
from ._streams import ToLoop, ToThread, input_stream
from ._types import Environ, Message, Receive, Scope, Send, WSGIApp

logger = logging.getLogger("bridge")

# 10 threads: the ``workers=10`` of a2wsgi's, Starlette's and uvicorn's WSGIMiddleware, so a
# drop-in switch keeps the same concurrency; WSGI apps mostly wait on I/O, and gunicorn's gthread
# deployments commonly run 2-4 threads a core.
DEFAULT_THREADS = 10
# 16 waiting requests per thread: a burst of several times the pool waits (at 50 ms a request the
# last in line waits about 0.8 s, far under the 30-60 s timeouts of common proxies), while a
# runaway flood gets a fast 503 instead of an unbounded queue.
BACKLOG_PER_THREAD = 16
# Bytes of request body read ahead of the application, and of response queued ahead of the
# client: 256 KiB keeps a fast stream from blocking on every chunk while bounding memory per
# request (uvicorn reads 64 KiB at a time; four of those).
READ_AHEAD = 256 * 1024
RESPONSE_BUFFER = 256 * 1024
_ERRORS = ErrorStream()


class WsgiToAsgi:
    """An ASGI application that runs a PEP 3333 WSGI application in a bounded thread pool.

    Args:
        wsgi_app: the WSGI callable (a Flask or Django app, any PEP 3333 application).
        threads: how many requests run the WSGI app at once (the pool's size).
        backlog: how many more may wait for a free thread; beyond that the answer is ``503``
            with ``Retry-After``. Defaults to 16 per thread.
        max_body_size: request bodies larger than this many bytes get ``413``.
        executor: run the app on this executor instead of a pool of the adapter's own, so
            several mounted apps can share threads. ``threads`` still bounds admission.
    """

    def __init__(
        self,
        wsgi_app: WSGIApp,
        *,
        threads: int = DEFAULT_THREADS,
        backlog: int | None = None,
        max_body_size: int | None = None,
        executor: Executor | None = None,
    ) -> None:
        if threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        self.wsgi_app = wsgi_app
        self.threads = threads
        self.backlog = BACKLOG_PER_THREAD * threads if backlog is None else backlog
        self.max_body_size = max_body_size
        self._given_executor = executor
        self._executor: Executor | None = None  # made on first use, never in a constructor
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            # A WSGI app cannot speak WebSocket: close before accepting (the server answers 403).
            if (await receive())["type"] == "websocket.connect":
                await send({"type": "websocket.close", "code": 1000})
        else:
            raise BridgeError(f"unsupported ASGI scope type {kind!r}")

    # -- the pool -------------------------------------------------------------------------------

    def _pool(self) -> Executor:
        if self._given_executor is not None:
            return self._given_executor
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.threads, thread_name_prefix="bridge-wsgi")
        return self._executor

    def _admit(self) -> bool:
        if self._pid != os.getpid():
            # A forked child (gunicorn --preload, uWSGI): the parent's pool threads did not
            # come along, and its lock and count describe the parent's requests.
            self._pid = os.getpid()
            self._lock = threading.Lock()
            self._in_flight = 0
            self._executor = None
        with self._lock:
            if self._in_flight >= self.threads + self.backlog:
                return False
            self._in_flight += 1
            return True

    def _release(self) -> None:
        with self._lock:
            self._in_flight -= 1

    # -- lifespan -------------------------------------------------------------------------------

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                executor, self._executor = self._executor, None
                if executor is not None:
                    executor.shutdown(wait=False)
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -- one request ----------------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._admit():
            logger.warning(
                "bridge: 503 for %s %s: all %d threads busy and %d requests waiting (backlog)",
                scope["method"],
                scope["path"],
                self.threads,
                self.backlog,
            )
            await _plain(send, 503, b"Service Unavailable", [(b"retry-after", b"1")])
            return
        submitted = False
        try:
            environ = scope_to_environ(scope)
            limit = self.max_body_size
            if limit is not None and _content_length(environ) > limit:
                return await _reply_too_large(send, _label(scope), limit)
            message = await receive()
            if message["type"] != "http.request":
                return  # the client left before its request arrived
            body: bytes = message.get("body", b"")
            if limit is not None and len(body) > limit:
                return await _reply_too_large(send, _label(scope), limit)
            exchange = _Exchange(receive, send, limit, _label(scope))
            if message.get("more_body", False):
                environ["wsgi.input"] = exchange.stream_body(body)
            else:
                environ["wsgi.input"] = io.BytesIO(body)
            environ["wsgi.errors"] = _ERRORS
            environ["wsgi.file_wrapper"] = FileWrapper
            response = Response(exchange.channel)
            context = contextvars.copy_context()
            self._pool().submit(context.run, self._run_app, environ, response, scope)
            submitted = True
            await exchange.run(len(body))
        finally:
            if not submitted:
                self._release()

    def _run_app(self, environ: Environ, response: Response, scope: Scope) -> None:
        """On a pool thread: call the app, hand its response to the loop, always ``close()``."""
        try:
            iterable: Iterable[bytes] = self.wsgi_app(environ, response.start_response)
            try:
                path = pathsend_target(iterable, response, scope)
                if path is not None:
                    response.send_path(path)
                else:
                    response.batch = isinstance(iterable, (list, tuple))
                    for chunk in iterable:
                        response.send_chunk(chunk)
                    response.finish()
            finally:
                close = getattr(iterable, "close", None)
                if close is not None:
                    close()
        except BaseException as exc:
            response.fail(exc)
        finally:
            self._release()


def _content_length(environ: Environ) -> int:
    try:
        return int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0  # not ours to judge: the app sees the header as it came


def _label(scope: Scope) -> str:
    return f"{scope['method']} {scope['path']}"


async def _reply_too_large(send: Send, label: str, limit: int) -> None:
    logger.warning("bridge: 413 for %s: request body over max_body_size=%d", label, limit)
    await _plain(send, 413, b"Request Entity Too Large", [])


async def _plain(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    headers = [(b"content-type", b"text/plain; charset=utf-8"), *headers]
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _Exchange:
    """The loop side of one request: the two hand-offs and the task that reads ``receive()``."""

    def __init__(self, receive: Receive, send: Send, limit: int | None, label: str) -> None:
        self._loop = asyncio.get_running_loop()
        self._label = label
        self._over_limit = False
        self._receive = receive
        self._send = send
        self._limit = limit
        self.channel: ToLoop[Item] = ToLoop(self._loop, RESPONSE_BUFFER)
        self._chunks: ToThread | None = None
        self._pump: asyncio.Task[None] | None = None

    def stream_body(self, first: bytes) -> io.BufferedReader:
        """``wsgi.input`` for a body still arriving after ``first``."""
        self._chunks = ToThread(self._loop, READ_AHEAD)
        self._chunks.put_nowait(first)
        return input_stream(self._chunks)

    async def run(self, received: int) -> None:
        """Relay the response until it is done, the client is gone, or the app fails."""
        if self._chunks is not None:
            self._pump = self._loop.create_task(self._read_receive(self._chunks, received))
        completed = False
        try:
            completed = await self._relay()
        except ClientDisconnected:
            pass  # the app saw the disconnect on wsgi.input; nobody is left to answer
        finally:
            if self._pump is not None:
                self._pump.cancel()
            if not completed:
                gone = ClientDisconnected("the request ended before the response did")
                self.channel.abort(gone)
                if self._chunks is not None:
                    self._chunks.fail(gone)

    async def _relay(self) -> bool:
        started = False
        while True:
            try:
                items, done = await self.channel.get()  # the app's errors are raised here
            except RequestBodyTooLarge:
                if started or not self._over_limit:
                    raise
                items, done = [], False
            if self._over_limit and not started:
                # Whatever the app made of the error on wsgi.input (Flask turns it into a 500),
                # the client is told the truth while no header has gone out.
                self.channel.abort(ClientDisconnected("the request body was too large"))
                await _reply_too_large(self._send, self._label, self._limit or 0)
                return True
            started = started or bool(items)
            try:
                if await self._send_batch(items, done):
                    return True
            except OSError:
                return False  # send() failed: the client is gone
            if self._pump is None:  # a streaming response: watch for the client leaving
                self._pump = self._loop.create_task(self._read_receive(None, 0))

    async def _send_batch(self, items: list[Item], done: bool) -> bool:
        """Send queued items, neighbouring chunks joined; True once the response is complete."""
        body: list[bytes] = []
        for item in items:
            if isinstance(item, bytes):
                body.append(item)
                continue
            # A message: the start, which comes before any chunk, or a pathsend, which comes
            # right after the start and ends the response (``Response`` keeps that order).
            await self._send(item)
            if item["type"] == "http.response.pathsend":
                return True
        if body or done:
            await self._send_body(body, more=not done)
        return done

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
                    continue
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
        finally:
            if ahead is not None:
                ahead.cancel()


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
