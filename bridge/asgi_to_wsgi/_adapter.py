"""``AsgiToWsgi``: an ASGI application served by a WSGI server.

Theory of operation. A WSGI server thread calls the adapter; the request becomes an ASGI task on
the thread's event loop (see ``_loops``). The thread runs that loop only until it has what it
must hand back next: first the status, headers and first body chunk (or the end), then, each
time the server asks the iterable for more, the next chunks. So a chunk reaches the server as
soon as the app sends it, and the app cannot run ahead of the client by more than
``RESPONSE_BUFFER`` bytes: ``send()`` waits until the server has taken them.

``receive()`` reads ``wsgi.input`` on demand, ``chunk_size`` bytes a message (no read-ahead),
always in the request's own WSGI thread (on a shared loop the thread is woken to read). After
the body it waits until the response is complete or the server closed the iterable, then
returns ``http.disconnect``. Closing the iterable early makes ``send()`` raise
``ClientDisconnected`` and ``receive()`` return ``http.disconnect``; an app still running
``DISCONNECT_GRACE`` seconds later is cancelled, so nothing stays pending on the loop.

The scope offers ``http.response.pathsend``: a response that names a file is answered with
that file, opened before the app's ``send()`` returns, in the server's ``wsgi.file_wrapper``
(gunicorn ``sendfile()``s it); closing it lets the app's task end as exhausting would.
"""

from __future__ import annotations

import asyncio
import http
import logging
import sys
import threading
import weakref
from collections.abc import Iterable, Iterator

from .._environ import declared_length, decode_headers, environ_to_scope
from .._errors import ClientDisconnected
from .._stats import Counters, Stats
from .._types import ASGIApp, Environ, StartResponse
from ._app_call import AppCall
from ._loops import Loops, running_loop
from ._path_body import path_body
from ._runner import Ready, Runner
from ._shared_loop import SharedRunner

logger = logging.getLogger("bridge")

# How long an app may go on after the server closed its response before it is cancelled.
DISCONNECT_GRACE = 3.0
_MODES = {"loop": ("per-thread", "shared"), "lifespan": ("auto", "on", "off")}


class AsgiToWsgi:
    """A PEP 3333 application that runs an ASGI application.

    Each WSGI server thread runs its requests on an event loop, in the thread itself by
    default: the response iterable runs the loop only until the app has sent the next chunk,
    so streaming needs no extra thread. Nothing starts in the constructor (safe under
    ``gunicorn --preload``: a forked worker starts afresh).

    Args:
        asgi_app: the ASGI 3 application (FastAPI, Starlette, Django's ASGI handler, ...);
            kept as the ``asgi_app`` attribute, which ``to_asgi`` unwraps.
        loop: ``"per-thread"`` (default): each WSGI server thread runs requests on an event
            loop of its own, with no thread hop. ``"shared"``: every request runs on one
            background loop, at a hop per step, for apps whose lifespan makes loop-bound
            resources (an asyncpg pool, an ``httpx.AsyncClient``) that all requests must
            share. An event loop object (already running in a thread of the caller's): every
            request runs on it, as ``"shared"`` does; bridge never stops or closes it.
        lifespan: the ASGI lifespan runs once per loop, before that loop's first request, and
            its state is copied into each request's ``scope["state"]``. ``"auto"`` (default)
            treats an app that raises on the lifespan scope as not supporting it; ``"on"``
            makes that a failure (requests then answer ``500``, the cause logged); ``"off"``
            skips the lifespan.
        timeout: seconds a request may take to start its response (its status and first body
            chunk, which a WSGI server sends together); then the app is cancelled and the
            client gets ``504``. ``None`` (default): no limit.
        chunk_size: bytes of request body per ``http.request`` message, read from
            ``wsgi.input`` only when the app calls ``receive()`` (no read-ahead).
        wait_time: seconds the app may go on after its last body chunk (Starlette's background
            tasks) before it is cancelled; ``None`` (default) waits as long as it takes. The
            name and meaning of a2wsgi's ``ASGIMiddleware(wait_time=...)``.
        max_body_size: request bodies larger than this many bytes get ``413``: with a declared
            ``Content-Length`` the app never runs; a chunked body is cut there (the app's
            ``receive()`` returns ``http.disconnect``) and the client gets ``413`` unless the
            app's response had started (then the cut is logged and the connection dropped).
            ``None`` (default): no limit.

    Raises:
        ValueError: ``loop`` or ``lifespan`` is not one of the values above, or
            ``chunk_size`` is less than 1.
    """

    def __init__(
        self,
        asgi_app: ASGIApp,
        *,
        loop: str | asyncio.AbstractEventLoop = "per-thread",
        lifespan: str = "auto",
        timeout: float | None = None,
        chunk_size: int = 65536,
        wait_time: float | None = None,
        max_body_size: int | None = None,
    ) -> None:
        if not isinstance(loop, asyncio.AbstractEventLoop) and loop not in _MODES["loop"]:
            raise ValueError(f"loop must be one of {_MODES['loop']} or an event loop, got {loop!r}")
        if lifespan not in _MODES["lifespan"]:
            raise ValueError(f"lifespan must be one of {_MODES['lifespan']}, got {lifespan!r}")
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
        self.asgi_app = asgi_app
        self.timeout = timeout
        self.chunk_size = chunk_size
        self.wait_time = wait_time
        self.max_body_size = max_body_size
        self._loops = Loops(asgi_app, loop, lifespan)
        self._counters = Counters()
        self._finalizer: weakref.finalize[[Loops], AsgiToWsgi] | None = None

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        """Serve one request: the PEP 3333 entry point a WSGI server calls.

        Returns once the app has sent its status, headers and first body chunk (or ended);
        the iterable then yields each further chunk as the app sends it. An app error before
        that point is raised from here, so the server answers 500 with nothing sent yet; on
        uWSGI, which answers nothing, the iterable sends a 500 and then raises it.

        Raises:
            ASGIProtocolError: the app broke the ASGI HTTP message order or format.
        """
        runner = self._runner()  # in use by this request until its iterable is done
        if runner.lifespan.failure is not None:
            runner.release()
            return _plain(
                environ,
                start_response,
                500,
                b"Internal Server Error (ASGI lifespan startup failed)",
            )
        limit = self.max_body_size
        if limit is not None and (declared_length(environ) or 0) > limit:
            runner.release()
            return self._too_large(environ, start_response, limit)
        try:
            scope = environ_to_scope(environ)
            scope["state"] = dict(runner.lifespan.state)
            scope["extensions"] = {"http.response.pathsend": {}}
            exchange = AppCall(runner, environ, self.chunk_size, self.timeout, limit)
        except BaseException:
            runner.release()
            raise
        exchange.start(self.asgi_app, scope)
        response = ResponseIterable(exchange, runner, self, self._counters)
        try:
            status, headers = response.first()
        except Exception as error:
            response.close()
            if exchange.too_large:  # the app failed on the cut body: the client learns why
                return self._too_large(environ, start_response, limit or 0)
            if isinstance(error, ClientDisconnected) or _server_answers_errors(environ):
                raise
            return _answer_for_the_server(environ, start_response, error)
        except BaseException:
            response.close()
            raise
        try:
            if status is None or exchange.timed_out:  # no response within the timeout
                response.close()
                self._counters.timeout_504 += 1
                return _plain(environ, start_response, 504, b"Gateway Timeout")
            if exchange.too_large:  # whatever the app made of the cut body, no header went out
                response.close()
                return self._too_large(environ, start_response, limit or 0)
            start_response(_status_line(status), decode_headers(headers))
        except BaseException:
            response.close()  # the server refused the response: end the task
            raise
        if limit is not None:  # from here on a cut body cannot be a 413: it is logged instead
            response.cut_note = (_label(environ), limit)
        if exchange.file is not None:  # http.response.pathsend
            file, exchange.file = exchange.file, None
            return path_body(file, self.chunk_size, response.finish, environ)
        return response

    def _too_large(
        self, environ: Environ, start_response: StartResponse, limit: int
    ) -> list[bytes]:
        self._counters.too_large(_label(environ), limit)
        return _plain(environ, start_response, 413, b"Request Entity Too Large")

    def stats(self) -> Stats:
        """The shape of ``WsgiToAsgi.stats()``: ``threads`` is the event loops open, ``busy``
        the requests using them; ``waiting`` and the queue waits are 0 (a WSGI server hands
        each request to a thread itself), as are the 503 and 400 counts."""
        loops, busy = self._loops.in_use()
        return self._counters.snapshot(loops, busy, 0)

    def close(self) -> None:
        """Run the ASGI lifespan shutdown on every loop and close the loops.

        Needs no hook: a loop is also closed as soon as its server thread ends, every loop when
        the main thread ends (gunicorn's SIGTERM, a script that returns: before the interpreter
        waits for anyio's worker threads), and the adapter's loops when it is garbage-collected.
        A loop that a request is still using is shut down by that request's thread when the
        request ends, not under it. The next request after it starts afresh (a new loop and
        lifespan).
        """
        self._loops.close()

    def _runner(self) -> Runner:
        if self._finalizer is None:
            # weakref.finalize also runs at interpreter exit, like atexit, but holds only the
            # loops: an adapter dropped early is not kept alive, with its loops, until then.
            self._finalizer = weakref.finalize(self, _close_loops, self._loops)
        return self._loops.get()


class ResponseIterable:
    """The WSGI iterable: each ``next()`` runs the loop until the app has sent more body.

    It holds its runner in use until the app's task has ended (what is left to hand out is
    then in memory) or the server closed it early. Once the server has the whole response
    (exhausted or closed), the request's leftover tasks get their time (``_leftovers``).
    """

    def __init__(
        self, exchange: AppCall, runner: Runner, adapter: AsgiToWsgi, counters: Counters
    ) -> None:
        self._exchange = exchange
        self._runner = runner
        self._adapter = adapter  # alive while a response is: collecting it closes the loops
        self._counters = counters
        self.cut_note: tuple[str, int] | None = None  # (request, max_body_size) once started
        self._chunks: list[bytes] = []
        self._ended = False  # the app's task is done: what it sent is all there is
        self._checked = False
        self._holding = True  # the runner is in use by this request
        self._finished = False
        self._thread = threading.get_ident()  # the request's: its loop is run only from it

    def first(self) -> tuple[int | None, list[tuple[bytes, bytes]]]:
        """Run until the status, headers and first chunk (or the end) are there.

        An error before that point is raised here, from the WSGI call, so the server still
        answers a clean 500: no header has gone out.
        """
        exchange = self._exchange
        self._chunks, self._ended = self._pull(exchange.until_first_chunk)
        if self._ended:
            self._check()
        return exchange.status, exchange.headers

    def __iter__(self) -> ResponseIterable:
        return self

    def __next__(self) -> bytes:
        while not self._chunks:
            if self._ended:
                try:
                    self._check()  # an error now, after the headers: the server drops it
                finally:
                    self._done()
                raise StopIteration
            if self._exchange.complete and self._adapter.wait_time is not None:
                # All the body is out; what the app does now (background tasks) is bounded.
                self._runner.run(self._exchange.settle(self._adapter.wait_time))
            self._chunks, self._ended = self._pull(self._exchange.until_more)
        # Every chunk queued so far goes out as one: none of them waits for anything by that,
        # and the server makes one write instead of many (WsgiToAsgi batches the same way).
        chunks, self._chunks = self._chunks, []
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _pull(self, ready: Ready) -> tuple[list[bytes], bool]:
        """Run the loop until ``ready``; on a shared loop, read for the app meanwhile."""
        exchange = self._exchange
        while True:
            chunks, ended, read = self._runner.step(ready, exchange.take)
            if read is None:
                if ended:
                    self._let_go()
                return chunks, ended
            exchange.feed(read)  # only a shared loop asks: chunks is empty, the app waits

    def _check(self) -> None:
        if not self._checked:
            self._checked = True
            self._exchange.raise_if_failed()

    def finish(self) -> None:
        """The server has sent the whole ``pathsend`` file: let the app's task end as
        exhausting the iterable would (``wait_time`` bounds its background work), then close.

        A server that sends file bodies from another thread (waitress's I/O thread) must not
        run this request's loop, which the request's own thread may be running by then. There
        the loop is let go at once (no request runs on it now: each holds it while it does), and
        what the app still has to do runs when the loop next runs, as a leftover task would.
        """
        if threading.get_ident() == self._thread or isinstance(self._runner, SharedRunner):
            try:
                next(self, None)  # the body is complete: no chunk comes, this waits for the task
            finally:
                self.close()
        else:
            self._finished = True
            self._count()
            self._let_go()

    def close(self) -> None:
        """The server is done with the response: end the app's task, early or not."""
        if self._finished:
            return
        try:
            if self._holding and not self._exchange.task_done:
                self._runner.run(self._exchange.abandon(DISCONNECT_GRACE))
        finally:
            self._done()

    def _count(self) -> None:
        """What the request came to, for ``stats()``: served, or a client that left."""
        exchange = self._exchange
        if exchange.too_large and self.cut_note is not None:
            logger.warning(
                "bridge: request body of %s cut at max_body_size=%d after the response had "
                "started (too late for a 413)",
                *self.cut_note,
            )
        if exchange.timed_out or exchange.too_large or exchange.status is None:
            pass  # a 504 or a 413 (counted as such) or an error, not a client that left
        elif exchange.gone:
            self._counters.disconnects += 1
        elif exchange.complete:
            self._counters.served += 1

    def _let_go(self) -> None:
        if self._holding:
            self._holding = False
            self._runner.release()

    def _done(self) -> None:
        """Once: the runner is let go, and the request's leftover tasks get their time."""
        if self._finished:
            return
        self._finished = True
        self._count()
        file, self._exchange.file = self._exchange.file, None
        if file is not None:  # a pathsend whose body never went out (a 504, an error)
            file.close()
        self._let_go()
        self._runner.after_request(self._exchange.tasks)


def _close_loops(loops: Loops) -> None:
    """Close a collected adapter's loops. Collection may happen in a thread whose own event
    loop is running, where no other loop can run: then a short-lived thread does it."""
    if running_loop() is None:
        loops.close(force=True)
    else:
        threading.Thread(target=loops.close, args=(True,), name="bridge-close", daemon=True).start()


_STATUS_LINES = {int(s): f"{s.value} {s.phrase}" for s in http.HTTPStatus}


def _status_line(status: int) -> str:
    return _STATUS_LINES.get(status) or f"{status} Unknown"


def _plain(
    environ: Environ, start_response: StartResponse, status: int, body: bytes
) -> list[bytes]:
    """bridge's own answer; to a HEAD without its body, as every response through bridge."""
    start_response(
        _status_line(status),
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
    )
    return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]


def _server_answers_errors(environ: Environ) -> bool:
    """Whether the server answers 500 to an exception from the WSGI call (gunicorn, waitress,
    wsgiref, cheroot, mod_wsgi do). uWSGI logs it and closes the connection without a reply,
    unless ``--catch-exceptions`` (a development option) makes it show the traceback."""
    if "uwsgi.version" not in environ:
        return True
    options = getattr(sys.modules.get("uwsgi"), "opt", None) or {}
    return bool(options.get("catch-exceptions"))


def _label(environ: Environ) -> str:
    """The request, as bridge's log lines name it (``WsgiToAsgi`` names it the same way)."""
    return f"{environ.get('REQUEST_METHOD')} {environ.get('PATH_INFO')}"


def _answer_for_the_server(
    environ: Environ, start_response: StartResponse, error: Exception
) -> Iterator[bytes]:
    """The 500 the server would not send, then the app's error from the iterable, so the server
    still logs and counts it (uWSGI's ``--reload-on-exception`` sees it) and WSGI middleware
    around the adapter sees it. No ``exc_info``: uWSGI's ``start_response`` given one sets the
    error as pending and returns, which Python turns into a ``SystemError``."""
    body = _plain(environ, start_response, 500, b"Internal Server Error")
    return _then_raise(body, error)


def _then_raise(body: list[bytes], error: Exception) -> Iterator[bytes]:
    yield from body
    try:
        raise error
    finally:
        del error  # the traceback holds this frame: no cycle through the local
