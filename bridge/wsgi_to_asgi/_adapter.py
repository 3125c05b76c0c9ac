"""``WsgiToAsgi``: a WSGI application served by an ASGI server, its code run in a bounded pool.

Theory of operation. The event loop owns the ASGI side: ``receive()``, ``send()`` and, while a
body is still arriving or a response streams, a pump task that reads ``receive()``. A pool thread
owns the WSGI side: the application call, ``start_response``, the iteration and ``close()``.

- Admission: at most ``threads + backlog`` requests are in the adapter; the next one gets 503 at
  once. A slot is freed when the worker thread is done (the call returns only after that, see
  below), or when a job still waiting for a thread is cancelled.
- Waiting for a thread: a client that leaves while its job waits (``http.disconnect``, or its
  task cancelled) abandons the job: it is cancelled in the pool, or returns at once when a
  thread picks it up, without calling the app. When no thread is free at submit time and the job
  still waits ``QUEUED_WATCH_DELAY`` later, the relay reads ``receive()`` to see the disconnect;
  a job with a free thread, or one a thread takes soon, costs no extra task.
- Request body: when the first ``http.request`` holds the whole body (the common case) it becomes
  a ``BytesIO`` and no thread ever waits on the loop. Otherwise the pump reads ahead at most
  ``READ_AHEAD`` bytes into a ``ToThread`` hand-off that ``wsgi.input`` drains.
- Response: the thread queues messages on a ``ToLoop`` hand-off; the loop sends every queued
  chunk as one message. An ordinary request therefore costs one hop to the thread and one back.
- Disconnect: the pump keeps reading ``receive()`` while the response streams; on
  ``http.disconnect`` (or ``send`` raising ``OSError``) it aborts the hand-off, so the thread's next
  chunk raises ``ClientDisconnected``, the iteration stops and ``close()`` runs.
- The end: the ASGI call returns once the thread is done with the request (``close()`` has
  returned), whatever the path; a cancelled call waits for that at most ``CANCEL_GRACE``. The
  thread says "done" on the hand-off it already wakes the loop with: a list body is closed before
  its one wake-up, a streaming body's end goes out first and "done" follows ``close()``.
- ``close()`` errors are logged on ``bridge`` and never replace the outcome: a complete response
  stands (as gunicorn and wsgiref do), and an iteration's own error wins over close's.
- ``Content-Length``: never more bytes than declared; the iteration stops once they are sent.
  Fewer bytes than declared are sent as they are: the server notices and drops the connection.
"""

from __future__ import annotations

import asyncio
import contextvars
import io
import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from typing import Any

from .._environ import declared_length, scope_to_environ, split_path
from .._errors import BridgeError, RequestHeaderError
from .._stats import Counters, Stats
from .._types import Environ, Receive, Scope, Send, WSGIApp
from ._pool import Lane
from ._relay import Relay, plain_response, reply_too_large
from ._response import ErrorStream, FileWrapper, ResponseWriter, pathsend_target

logger = logging.getLogger("bridge")

# 10 threads: the ``workers=10`` of a2wsgi's and uvicorn's WSGIMiddleware, so a
# drop-in switch keeps the same concurrency; WSGI apps mostly wait on I/O, and gunicorn's gthread
# deployments commonly run 2-4 threads a core.
DEFAULT_THREADS = 10
# 16 waiting requests per thread: a burst of several times the pool waits (at 50 ms a request the
# last in line waits about 0.8 s, far under the 30-60 s timeouts of common proxies), while a
# runaway flood gets a fast 503 instead of an unbounded queue.
BACKLOG_PER_THREAD = 16
# Bytes of request body received on the loop before the app gets a thread (see hold_body): nginx
# buffers bodies for the same reason (proxy_request_buffering); 1 MiB covers most form posts and
# JSON bodies, and the longest upload it holds costs a temporary file, not memory.
HOLD_BODY = 1024 * 1024
# Seconds between two 503 log lines; those in between are counted into the next line.
LOG_503_EVERY = 1.0
# Priority requests (health checks) that may wait for the priority thread: probes come one at
# a time; a pile-up means that thread is stuck, and the next probe had better fail fast.
PRIORITY_BACKLOG = 8
# Unknown lifespan messages ignored in a row before the lifespan is given up as broken.
UNKNOWN_LIFESPAN_MESSAGES = 100
_ERRORS = ErrorStream()


class WsgiToAsgi:
    """An ASGI application that runs a PEP 3333 WSGI application in a bounded thread pool.

    The event loop never blocks on the WSGI app: each request runs on a pool thread, its body
    and response cross between the loop and the thread in bounded hand-offs. Nothing starts in
    the constructor: the pool's threads start with the first requests.

    Args:
        wsgi_app: the WSGI callable (a Flask or Django app, any PEP 3333 application); kept
            as the ``wsgi_app`` attribute, which ``to_wsgi`` unwraps.
        threads: how many requests run the WSGI app at once (the pool's size). 10 is the
            ``workers=10`` of a2wsgi's and uvicorn's ``WSGIMiddleware``, so a switch keeps the
            same concurrency; WSGI apps mostly wait on I/O.
        backlog: how many more requests may wait for a free thread; beyond that the answer is
            ``503`` with ``Retry-After: 1`` at once, not an unbounded queue. Defaults to 16
            per thread.
        max_body_size: request bodies larger than this many bytes get ``413``. With a declared
            ``Content-Length``, or a chunked body that passes it within ``hold_body``, the app
            never runs; past that ``wsgi.input`` raises ``RequestBodyTooLarge`` and the client
            gets ``413`` unless the app's response has started. ``None``: no limit.
        executor: run the app on this ``concurrent.futures`` executor instead of a pool of the
            adapter's own, so several mounted apps can share threads. ``threads`` still bounds
            admission.
        timeout: seconds a request may take to start its response, waiting for a thread
            included; past that the client gets ``504`` and the log names where the thread is
            stuck. A thread cannot be killed: it holds its slot of ``threads`` until the app
            returns (its next chunk raises ``ClientDisconnected``). ``None``: no limit.
        priority: requests that skip the pool and its backlog, for health checks: paths
            within the app (``("/healthz", "/readyz")``) or a function of the ASGI scope that
            returns True for them. They run on one thread of their own (``PRIORITY_BACKLOG``,
            8, more may wait for it, then ``503``), so a probe is answered while every thread
            is busy.
        hold_body: bytes of a request body received on the event loop before a thread is taken
            (memory up to 256 KiB, then a temporary file), as nginx buffers bodies: a slow
            upload waits there without holding a thread, and most bodies are whole before the
            app starts. The rest of a longer body streams. ``0``: the app starts at the first
            byte (for apps that answer part of a body before the client sends the rest).

    Raises:
        ValueError: ``threads`` is less than 1.
        TypeError: ``priority`` is a single ``str`` (pass a tuple of paths).
    """

    def __init__(
        self,
        wsgi_app: WSGIApp,
        *,
        threads: int = DEFAULT_THREADS,
        backlog: int | None = None,
        max_body_size: int | None = None,
        executor: Executor | None = None,
        timeout: float | None = None,
        priority: Iterable[str] | Callable[[Scope], bool] | None = None,
        hold_body: int = HOLD_BODY,
    ) -> None:
        if threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        if isinstance(priority, str):
            raise TypeError("priority takes several paths: priority=('/healthz',), not a str")
        self.wsgi_app = wsgi_app
        self.threads = threads
        self.backlog = BACKLOG_PER_THREAD * threads if backlog is None else backlog
        self.max_body_size = max_body_size
        self.timeout = timeout
        self.hold_body = hold_body
        self._lane = Lane(threads, self.backlog, "bridge-wsgi", executor)
        self._priority_lane = Lane(1, PRIORITY_BACKLOG, "bridge-wsgi-priority")
        self._is_priority = _priority_test(priority)
        self._counters = Counters()
        self._logged_503_at = -LOG_503_EVERY
        self._unlogged_503 = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection: the entry point an ASGI server calls.

        ``http``: the request runs on a pool thread; the call returns once that thread is done
        with it (the iterable's ``close()`` included), and an exception from the app
        propagates from here, so the server answers ``500`` or drops a started response.
        ``lifespan``: startup completes at once; shutdown lets the pool's threads end.
        ``websocket``: closed before it is accepted (the server answers ``403``).

        Raises:
            WSGIProtocolError: the WSGI app broke a rule of PEP 3333.
            BridgeError: an ASGI scope type other than these three, or a lifespan
                ``receive()`` that returns only unknown messages
                (``UNKNOWN_LIFESPAN_MESSAGES`` in a row).
        """
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

    def stats(self) -> Stats:
        """What the adapter is doing now and has done since it was made: threads busy, requests
        waiting for one, responses served, 503/400/413/504 answers, client disconnects, and the
        median and 99th percentile of the recent waits for a thread (seconds); ``Stats`` says
        what each key means."""
        busy, waiting = self._lane.counts()
        return self._counters.snapshot(self.threads, busy, waiting)

    # -- lifespan -------------------------------------------------------------------------------

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        unknown = 0  # unknown messages in a row
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self._lane.shutdown()
                self._priority_lane.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return
            else:
                # A message of a later spec is ignored; but a receive() that returns one at once,
                # forever, must not hold the loop: past UNKNOWN_LIFESPAN_MESSAGES in a row, raise.
                unknown += 1
                if unknown > UNKNOWN_LIFESPAN_MESSAGES:
                    raise BridgeError(f"unexpected message on the lifespan scope: {message!r:.80}")
                logger.debug("bridge: ignored a lifespan message: %r", message)
                await asyncio.sleep(0)
                continue
            unknown = 0

    # -- one request ----------------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        arrived = time.monotonic()
        lane = self._priority_lane if self._is_priority(scope) else self._lane
        ahead = lane.admit()
        if ahead < 0:
            self._counters.rejected_503 += 1
            self._log_503(scope, lane, arrived)
            await plain_response(send, 503, b"Service Unavailable", [(b"retry-after", b"1")])
            return
        submitted = False
        try:
            try:
                environ = scope_to_environ(scope)
            except RequestHeaderError as error:
                self._counters.bad_request_400 += 1
                logger.warning("bridge: 400 for %s: %s", _label(scope), error)
                return await plain_response(send, 400, b"Bad Request", [])
            limit = self.max_body_size
            if limit is not None and (declared_length(environ) or 0) > limit:
                return await reply_too_large(send, self._counters, _label(scope), limit)
            message = await receive()
            if message["type"] != "http.request":
                return  # the client left before its request arrived
            body: bytes = message.get("body", b"")
            if limit is not None and len(body) > limit:
                return await reply_too_large(send, self._counters, _label(scope), limit)
            relay = Relay(receive, send, limit, _label(scope), self.timeout, self._counters)
            received = len(body)
            if not message.get("more_body", False):
                environ["wsgi.input"] = io.BytesIO(body)
            elif self.hold_body:
                held = await relay.hold(body, self.hold_body)
                if held is None:
                    return  # the client left, or the body was too large (answered)
                file, received, more = held
                environ["wsgi.input"] = relay.stream_after(file) if more else file
            else:
                environ["wsgi.input"] = relay.stream_body(body)
            environ["wsgi.errors"] = _ERRORS
            environ["wsgi.file_wrapper"] = FileWrapper
            response = ResponseWriter(relay.channel)
            context = contextvars.copy_context()
            job = lane.submit(
                context.run, self._run_app, environ, response, relay, scope, arrived, lane
            )
            submitted = True
            try:
                # Requests admitted ahead of this one hold every thread: it may have to wait.
                # (With a shared executor, other adapters' requests are not counted.)
                await relay.run(received, job, queued=ahead >= lane.size)
            finally:
                if relay.never_ran:
                    lane.release(False)  # its job was cancelled before a thread took it
                    environ["wsgi.input"].close()
        finally:
            if not submitted:
                lane.release(False)

    def _log_503(self, scope: Scope, lane: Lane, now: float) -> None:
        """One line per ``LOG_503_EVERY`` seconds at most: a flood must not flood the log."""
        if now - self._logged_503_at < LOG_503_EVERY:
            self._unlogged_503 += 1
            return
        unlogged, self._unlogged_503, self._logged_503_at = self._unlogged_503, 0, now
        logger.warning(
            "bridge: 503 for %s: all %d threads busy and %d requests waiting (backlog)%s",
            _label(scope),
            lane.size,
            lane.backlog,
            f"; {unlogged} more 503s since the last such line" if unlogged else "",
        )

    def _run_app(
        self,
        environ: Environ,
        response: ResponseWriter,
        relay: Relay,
        scope: Scope,
        arrived: float,
        lane: Lane,
    ) -> None:
        """On a pool thread: run the request unless its client left while it waited for this
        thread; then free the slot and tell the loop the thread is done (the last wake-up)."""
        ran = not relay.abandoned
        error: BaseException | None = None
        try:
            if ran:
                self._counters.waits.append(time.monotonic() - arrived)
                lane.started()
                relay.thread = threading.get_ident()
                body = environ["wsgi.input"]  # the app may put another in the environ
                try:
                    self._respond(environ, response, scope)
                finally:
                    body.close()  # a held body's temporary file goes now
        except BaseException as exc:  # the loop raises it from the ASGI call
            error = exc
        lane.release(ran)
        response.done(error)

    def _respond(self, environ: Environ, response: ResponseWriter, scope: Scope) -> None:
        """Call the app, hand its response to the loop, always ``close()`` the iterable."""
        iterable: Iterable[bytes] = self.wsgi_app(environ, response.start_response)
        try:
            path = pathsend_target(iterable, response, scope)
            if path is not None:
                response.send_path(path)  # returns once the server has the path
            else:
                response.batch = isinstance(iterable, (list, tuple))
                if not response.complete:  # write() may have sent the declared length already
                    for chunk in iterable:
                        if response.send_chunk(chunk):
                            break  # the declared Content-Length is reached: no further next()
                response.finish()
        finally:
            close = getattr(iterable, "close", None)
            if close is not None:
                _close(close, scope)


def _priority_test(
    priority: Iterable[str] | Callable[[Scope], bool] | None,
) -> Callable[[Scope], bool]:
    if priority is None:
        return _never
    if callable(priority):
        return priority
    paths = frozenset(priority)

    def in_paths(scope: Scope) -> bool:
        return split_path(scope.get("root_path") or "", scope["path"])[1] in paths

    return in_paths


def _never(scope: Scope) -> bool:
    return False


def _close(close: Any, scope: Scope) -> None:
    """Call the iterable's ``close()``; an error is logged, never raised (see the module doc)."""
    try:
        close()
    except Exception:
        logger.exception("bridge: close() of the response iterable raised for %s", _label(scope))


def _label(scope: Scope) -> str:
    return f"{scope['method']} {scope['path']}"
