"""Fault-injection harness: drive an adapter as a server does and break one step of the exchange.

Theory of operation. A *script* is one clean exchange between a fake server and a scripted app
(``W2A*`` here: a fake ASGI server and a WSGI app; ``A2W*``: a fake WSGI server and an ASGI app).
Run once with no fault, the script counts the steps it reaches per site (``receive()`` calls,
``send()`` calls, the app's own actions, ``wsgi.input`` reads, chunks the server took); a test then
injects one fault at each step k of that count. Every case runs in a daemon thread of its own
under ``CASE_BOUND`` (``run_bounded``), so a hang fails that case fast and a stuck thread cannot
keep the interpreter from exiting. Chunks move in lock-step (``Lockstep``: a producer waits until
the consumer has taken the previous chunk, with a bound), so the step count is the same on
every run, whatever the scheduling. A fault is one-shot: the next request is clean.

The checks every case makes: (a) the call ended within ``BOUND``; (b) the outcome the test's
fault table names; (c) no leak (``Baseline``: threads, file descriptors; tasks on the loops that
served the request; exceptions nobody retrieved); (d) the next request on the same adapter is
served normally. ``known_defect`` marks the cases today's code fails, from one table per file.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import logging
import os
import queue
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest

T = TypeVar("T")
Message = dict[str, Any]

BOUND = float(os.environ.get("BRIDGE_FAULT_BOUND", "1.5"))  # seconds one call may take
CASE_BOUND = 4 * BOUND  # a whole case: warm-up, the faulty call, the checks, the next call
SETTLE = 1.0  # seconds a leak check waits for threads, fds and tasks to come back
SPIN_LIMIT = 200  # receive() calls answered without suspending before we call it a busy loop
CANCEL_AFTER = 0.1  # a server cancels a request whose send() has blocked this long


class AppError(Exception):
    """Raised by a scripted app at the step its fault names."""


class ServerError(Exception):
    """Raised by a fake server's receive(), send() or start_response at the faulty step."""


class Hang(AssertionError):
    """A bounded wait ran out: the adapter did not end the call."""


# -- cases and the defect table ----------------------------------------------------------------


ANY = "*"


@dataclass(frozen=True)
class Case:
    fault: str
    k: int
    direction: str  # "w2a" shape name or "a2w"/"lifespan" loop mode, as the file defines
    mode: str

    @property
    def id(self) -> str:
        return f"{self.direction}-{self.mode}-{self.fault}-k{self.k}"


def known_defect(reason: str) -> pytest.MarkDecorator:
    """Mark a case that today's code fails; ``reason`` names the defect (issue 6 or NEW)."""
    return pytest.mark.xfail(strict=False, reason=reason)


def _matches(pattern: Any, value: Any) -> bool:
    if pattern == ANY:
        return True
    if isinstance(pattern, (tuple, frozenset, set, range)):
        return value in pattern
    return bool(pattern == value)


def defect_for(case: Case, table: dict[tuple[Any, ...], pytest.MarkDecorator]) -> Any:
    """The first entry of ``table`` whose key (fault, k, direction, mode) matches ``case``.

    A key element is a value, a tuple of values, or ``ANY``."""
    for key, mark in table.items():
        if all(
            _matches(p, v)
            for p, v in zip(key, (case.fault, case.k, case.direction, case.mode), strict=True)
        ):
            return mark
    return None


def params(cases: Iterable[Case], table: dict[tuple[Any, ...], pytest.MarkDecorator]) -> list[Any]:
    """One ``pytest.param`` per case, with its id and, when the table lists it, its xfail."""
    out = []
    for case in cases:
        mark = defect_for(case, table)
        out.append(pytest.param(case, id=case.id, marks=[mark] if mark is not None else []))
    return out


def passing(
    cases: Iterable[Case], table: dict[tuple[Any, ...], pytest.MarkDecorator]
) -> list[Case]:
    """The cases no defect is listed for: what the hypothesis walks combine."""
    return [case for case in cases if defect_for(case, table) is None]


# -- bounded runs ------------------------------------------------------------------------------


def run_bounded(fn: Callable[[], T], bound: float = CASE_BOUND, what: str = "the case") -> T:
    """Run ``fn`` in a daemon thread; raise ``Hang`` if it does not end within ``bound``."""
    result: Future[T] = Future()

    def target() -> None:
        try:
            result.set_result(fn())
        except BaseException as exc:
            result.set_exception(exc)

    thread = threading.Thread(target=target, name="fault-case", daemon=True)
    thread.start()
    thread.join(bound)
    if thread.is_alive():
        raise Hang(f"{what} did not end within {bound}s (stuck in: {stack_of(thread)})")
    return result.result()


def stack_of(thread: threading.Thread) -> str:
    """Where ``thread`` is now: its innermost frames inside bridge or the tests."""
    frame = sys._current_frames().get(thread.ident or -1)
    where = []
    while frame is not None and len(where) < 4:
        name = frame.f_code.co_filename
        if "bridge" in name or "tests" in name:
            where.append(f"{os.path.basename(name)}:{frame.f_lineno} {frame.f_code.co_name}")
        frame = frame.f_back
    return " <- ".join(where) or "?"


def settle(ready: Callable[[], bool], bound: float = SETTLE) -> bool:
    """Poll ``ready`` until it holds or ``bound`` passes (threads end on their own time)."""
    deadline = time.monotonic() + bound
    while not ready():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


class Lockstep:
    """A counter one side advances and the other waits on, from a thread or a coroutine.

    Waits are bounded and ``release()`` ends them all, so a fault cannot turn lock-step into a
    hang of the harness itself."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self.count = 0
        self.released = False
        self._waiters: list[tuple[int, asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def advance(self, amount: int = 1) -> None:
        with self._lock:
            self.count += amount
            self._wake()

    def release(self) -> None:
        with self._lock:
            self.released = True
            self._wake()

    def _wake(self) -> None:
        self._lock.notify_all()
        keep = []
        for n, loop, future in self._waiters:
            if self.released or self.count >= n:
                with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits
                    loop.call_soon_threadsafe(_resolve, future)
            else:
                keep.append((n, loop, future))
        self._waiters = keep

    def wait(self, n: int, bound: float = BOUND) -> None:
        with self._lock:
            self._lock.wait_for(lambda: self.released or self.count >= n, bound)

    async def wait_async(self, n: int, bound: float = BOUND) -> None:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self.released or self.count >= n:
                return
            future: asyncio.Future[None] = loop.create_future()
            self._waiters.append((n, loop, future))
        timer = loop.call_later(bound, _resolve, future)  # not wait_for: it can eat a cancel
        try:
            await future
        finally:
            timer.cancel()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def never() -> None:
    """Wait forever (until cancelled): a peer that does not answer."""
    await asyncio.get_running_loop().create_future()


# -- leaks -------------------------------------------------------------------------------------


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


@dataclass
class Baseline:
    """Threads and file descriptors at a point where the adapter is warmed up and idle."""

    threads: set[int] = field(default_factory=set)
    fds: int = 0

    @classmethod
    def take(cls) -> Baseline:
        return cls({t.ident or 0 for t in threading.enumerate()}, fd_count())

    def new_threads(self) -> list[threading.Thread]:
        # bridge's reaper threads start once per process, with its first per-thread loop.
        return [
            t
            for t in threading.enumerate()
            if (t.ident or 0) not in self.threads
            and t.name not in ("bridge-reaper", "bridge-exit-watch")
        ]

    def problems(self, extra: Callable[[], list[str]] = list) -> list[str]:
        found = [f"thread {t.name} ({stack_of(t)})" for t in self.new_threads()]
        if fd_count() > self.fds:
            found.append(f"{fd_count() - self.fds} more file descriptors")
        return found + extra()

    def leaks(self, extra: Callable[[], list[str]] = list) -> list[str]:
        """What is still there after ``SETTLE``: new threads, more fds, ``extra()``'s findings."""
        settle(lambda: not self.problems(extra))
        return self.problems(extra)

    async def leaks_async(self, extra: Callable[[], list[str]] = list) -> list[str]:
        """``leaks`` from a coroutine on the loop that serves the adapter (it keeps running)."""
        deadline = time.monotonic() + SETTLE
        while self.problems(extra) and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        return self.problems(extra)


def pending_tasks(loop: asyncio.AbstractEventLoop | None, ignore: Iterable[Any] = ()) -> list[str]:
    """Tasks still pending on ``loop`` (run on the loop's thread if it is running)."""
    if loop is None or loop.is_closed():
        return []
    skip = set(ignore)

    def collect() -> list[str]:
        return [
            repr(t.get_coro())
            for t in asyncio.all_tasks(loop)
            if t not in skip and t.get_name() != "bridge-root"  # the loop's own, by design
        ]

    if not loop.is_running():
        return collect()
    answer: Future[list[str]] = Future()

    def on_loop() -> None:
        answer.set_result(collect())

    try:
        loop.call_soon_threadsafe(on_loop)
        return answer.result(BOUND)
    except Exception as exc:  # the loop stopped meanwhile
        return [f"could not inspect the loop: {exc!r}"]


@contextlib.contextmanager
def unraisable() -> Iterator[list[str]]:
    """Exceptions raised where nobody can catch them (a finalizer, a coroutine never awaited):
    recorded here, in the case that caused them, instead of failing whichever test runs when
    the garbage collector gets to them."""
    found: list[str] = []
    previous = sys.unraisablehook

    def hook(info: Any) -> None:
        found.append(f"unraisable in {info.object!r}: {info.exc_value!r}"[:300])

    sys.unraisablehook = hook
    try:
        yield found
        import gc

        gc.collect()
    finally:
        sys.unraisablehook = previous


class LogCapture(logging.Handler):
    """Records of the ``bridge`` logger (and the loop's unhandled-exception reports)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def errors(self) -> list[logging.LogRecord]:
        return [r for r in self.records if r.levelno >= logging.ERROR]

    @classmethod
    @contextlib.contextmanager
    def on(cls, *names: str) -> Iterator[LogCapture]:
        capture = cls()
        loggers = [logging.getLogger(n) for n in names or ("bridge", "asyncio")]
        for logger in loggers:
            logger.addHandler(capture)
        try:
            yield capture
        finally:
            for logger in loggers:
                logger.removeHandler(capture)


# -- a pool whose threads cannot keep the interpreter from exiting -----------------------------


class DaemonExecutor(Executor):
    """A fixed pool of daemon threads that counts its jobs, queued or running.

    Given to ``WsgiToAsgi(executor=...)``: a WSGI thread stuck for good by a defect must not hang
    pytest at exit (``ThreadPoolExecutor`` joins its threads), and ``busy`` says exactly whether
    every thread was given back."""

    def __init__(self, threads: int) -> None:
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self.busy = 0
        self.threads = [
            threading.Thread(target=self._work, name=f"fault-pool-{i}", daemon=True)
            for i in range(threads)
        ]
        for thread in self.threads:
            thread.start()

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        with self._lock:
            self.busy += 1  # counted from here: a job in the queue is work not yet given back
        self._jobs.put((future, fn, args, kwargs))
        return future

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            future, fn, args, kwargs = job
            try:
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(fn(*args, **kwargs))
                    except BaseException as exc:
                        future.set_exception(exc)
            finally:
                with self._lock:
                    self.busy -= 1

    def idle(self) -> bool:
        return self.busy == 0

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        for _ in self.threads:
            self._jobs.put(None)


# -- WSGI -> ASGI: a fake ASGI server around WsgiToAsgi, a scripted WSGI app inside ------------

W2A_SHAPES = {
    # shape: (request body messages, response body the app makes, what it does)
    "stream": ((b"ab", b"cd"), b"abcd|two|three"),  # generator of 3 chunks, body in 2 messages
    "list": ((b"abcd",), b"abcd|list"),  # the common request: whole body at once, a list body
    "write": ((), b"w1w2"),  # start_response's write() twice, then an empty list
}


@dataclass
class WsgiRecord:
    """What the scripted WSGI app saw and did."""

    ran: bool = False
    read: bytes | None = None
    read_error: BaseException | None = None
    yielded: int = 0
    returned: bool = False  # it returned an iterable (so close() is owed)
    close_called: bool = False
    finished: bool = False  # the app's thread is done with the request (close() returned)


class ClosingList(list):  # type: ignore[type-arg]
    """A list body with a ``close()``, as a framework's response object has."""

    def __init__(self, items: Iterable[bytes], on_close: Callable[[], None]) -> None:
        super().__init__(items)
        self._on_close = on_close

    def close(self) -> None:
        self._on_close()


@dataclass
class Req:
    """One request of the scripted WSGI app: its shape, its fault (if any) and what it saw.

    It rides in the ASGI scope (``environ["asgi.scope"]["fault.req"]``), so one app serves the
    faulty request and the clean ones around it."""

    shape: str
    fault: str | None = None
    k: int = 0
    record: WsgiRecord = field(default_factory=WsgiRecord)
    delivered: Lockstep = field(default_factory=Lockstep)  # body messages the server got
    gate: Lockstep = field(default_factory=Lockstep)  # ``/block`` waits on it
    tmp_path: str | None = None

    @property
    def expected(self) -> bytes:
        body = W2A_SHAPES[self.shape][1]
        return body[: self.overlong_length()] if self.fault == "overlong" else body

    def overlong_length(self) -> int:
        """Content-Length for ``overlong``: the first k chunks and one byte of the next."""
        return sum(len(c) for c in STREAM_CHUNKS[: self.k]) + 1


STREAM_CHUNKS = (b"abcd", b"|two", b"|three")


def wsgi_app(environ: dict[str, Any], start_response: Any) -> Any:
    """The scripted WSGI app. App faults: raise_before_start, bad_status, bad_header,
    start_twice, no_start, raise_in_iter, str_chunk, close_raises, slow_close*, overlong,
    pathsend_tmp. ``/block`` holds its thread until the request's ``gate`` opens."""
    req: Req = environ["asgi.scope"]["fault.req"]
    if environ["PATH_INFO"] == "/block":
        req.gate.wait(1, CASE_BOUND)
        start_response("200 OK", [])
        return [b"blocked"]
    record = req.record
    record.ran = True
    iterable = None
    try:
        iterable = _respond(req, environ, start_response)
        record.returned = True
        return iterable
    finally:
        if iterable is None:
            record.finished = True


def _respond(req: Req, environ: dict[str, Any], start_response: Any) -> Any:
    fault, record = req.fault, req.record
    try:
        record.read = environ["wsgi.input"].read()
    except BaseException as exc:
        record.read_error = exc
        raise
    if fault == "raise_before_start":
        raise AppError("fault: the app raised before start_response")
    headers = [("Content-Type", "text/plain")]
    if fault == "overlong":
        headers.append(("Content-Length", str(req.overlong_length())))
    if fault == "bad_header":
        headers.append(("X-Fault", "split\r\nSet-Cookie: x=1"))
    if fault == "no_start":
        return ClosingList([b"no start"], lambda: _close(req))
    if fault == "pathsend_tmp":
        return _file(req, environ, start_response, headers)
    write = start_response("200" if fault == "bad_status" else "200 OK", headers)
    if fault == "start_twice":
        start_response("200 OK", headers)
    if req.shape == "write":
        write(b"w1")
        req.delivered.wait(1)
        write(b"w2")
        req.delivered.wait(2)
        return ClosingList([], lambda: _close(req))
    if req.shape == "list":
        return ClosingList([record.read or b"", b"|list"], lambda: _close(req))
    return Chunks(req, [record.read or b"", *STREAM_CHUNKS[1:]])


def _file(req: Req, environ: dict[str, Any], start_response: Any, headers: list[Any]) -> Any:
    """A temporary file that is deleted when closed, sent through ``wsgi.file_wrapper``."""
    handle = tempfile.NamedTemporaryFile(prefix="bridge-fault-")  # noqa: SIM115
    handle.write(req.expected)
    handle.flush()
    handle.seek(0)
    req.tmp_path = handle.name
    start_response("200 OK", headers)
    wrapper = environ["wsgi.file_wrapper"](handle)
    original = wrapper.close

    def close() -> None:
        try:
            original()
        finally:
            _close(req)

    wrapper.close = close
    return wrapper


def _close(req: Req) -> None:
    record = req.record
    record.close_called = True
    try:
        if (req.fault or "").startswith("slow_close"):
            time.sleep(0.05)  # a close() that takes a while (a DB session, a flush)
        if req.fault == "close_raises":
            raise AppError("fault: close() raised")
    finally:
        record.finished = True


class Chunks:
    """The ``stream`` shape's iterable: one chunk a ``next()``, in lock-step with the server."""

    def __init__(self, req: Req, chunks: list[bytes]) -> None:
        self._req = req
        self._chunks = deque(chunks)
        self._n = 0

    def __iter__(self) -> Chunks:
        return self

    def __next__(self) -> Any:
        req = self._req
        req.delivered.wait(self._n)  # the server has the previous chunk
        if req.fault == "raise_in_iter" and self._n == req.k:
            raise AppError(f"fault: the iterable raised at chunk {self._n}")
        if req.fault == "str_chunk" and self._n == req.k:
            return "a str chunk"
        if not self._chunks:
            raise StopIteration
        self._n += 1
        req.record.yielded = self._n
        return self._chunks.popleft()

    def close(self) -> None:
        _close(self._req)


@dataclass
class AsgiOutcome:
    """What one ASGI call did, seen from the fake server."""

    error: BaseException | None
    sent: list[Message]
    receives: int
    sends: int
    spun: bool
    finished_at_return: bool
    pathsend_ok: bool | None

    @property
    def started(self) -> bool:
        return any(m["type"] == "http.response.start" for m in self.sent)

    @property
    def status(self) -> int | None:
        return next((m["status"] for m in self.sent if m["type"] == "http.response.start"), None)

    @property
    def complete(self) -> bool:
        last = self.sent[-1] if self.sent else {}
        return last.get("type") == "http.response.pathsend" or (
            last.get("type") == "http.response.body" and not last.get("more_body", False)
        )

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body")


class AsgiServer:
    """A fake ASGI server for one http call, with at most one fault at step ``k`` of a site.

    Faults on the k-th ``receive()``: recv_raise, recv_disconnect, recv_cancelled (it raises
    ``CancelledError``), recv_nosuspend (from k on it answers without suspending), recv_task_cancel
    (the server cancels the task). On the k-th ``send()``: send_oserror, send_error, send_block
    (never returns; the task is cancelled after ``CANCEL_AFTER``), send_task_cancel. Without a
    fault it behaves as uvicorn does: body messages, then ``http.disconnect`` once the response
    is complete."""

    def __init__(
        self, req: Req, fault: str | None = None, k: int = 0, *, path: str = "/fault"
    ) -> None:
        self.req = req
        self.fault = fault
        self.k = k
        self.delivered = req.delivered
        self.receives = 0
        self.sends = 0
        self.spins = 0
        self.sent: list[Message] = []
        self.pathsend_ok: bool | None = None
        body = W2A_SHAPES[req.shape][0]
        method = "POST" if body else "GET"
        pathsend = req.fault == "pathsend_tmp"
        self.scope = w2a_scope(path, method, sum(len(b) for b in body), pathsend)
        self.scope["fault.req"] = req
        self._body = deque(
            {"type": "http.request", "body": b, "more_body": i < len(body) - 1}
            for i, b in enumerate(body)
        ) or deque([{"type": "http.request", "body": b"", "more_body": False}])
        self._done = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def _at(self, site: str) -> str | None:
        fault = self.fault or ""
        if not fault.startswith(site):
            return None
        n = self.receives if site == "recv" else self.sends
        if n == self.k or (fault == "recv_nosuspend" and n >= self.k):
            return fault
        return None

    async def receive(self) -> Message:
        self.receives += 1
        fault = self._at("recv")
        if fault is not None and fault != "recv_nosuspend":
            self.delivered.release()  # the client is gone: the app is no longer paced by it
        if fault == "recv_raise":
            raise ServerError(f"fault: receive() #{self.receives} failed")
        if fault == "recv_disconnect":
            self._done.set()
            return {"type": "http.disconnect"}
        if fault == "recv_cancelled":
            raise asyncio.CancelledError()
        if fault == "recv_task_cancel":
            self._cancel_task()
            await never()
        if fault == "recv_nosuspend":
            self.spins += 1
            if self.spins > SPIN_LIMIT:
                await never()  # a busy loop: stop feeding it, the check reports it
            if self._body:
                return self._body.popleft()
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.sleep(0)  # a real server suspends here
        if self._body:
            return self._body.popleft()
        await self._done.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        self.sends += 1
        fault = self._at("send")
        if fault is not None:
            self.delivered.release()  # the client is gone: the app is no longer paced by it
        if fault == "send_oserror":
            raise OSError(errno.EPIPE, f"fault: send() #{self.sends} failed: client gone")
        if fault == "send_error":
            raise ServerError(f"fault: send() #{self.sends} failed")
        if fault == "send_block":
            asyncio.get_running_loop().call_later(CANCEL_AFTER, self._cancel_task)
            await never()
        if fault == "send_task_cancel":
            self._cancel_task()
            await never()
        await asyncio.sleep(0)
        if message["type"] == "http.response.pathsend":
            self.pathsend_ok = os.path.isfile(message["path"])
        self.sent.append(message)
        if message["type"] == "http.response.body" and message.get("body"):
            self.delivered.advance()
        if message["type"] == "http.response.pathsend" or (
            message["type"] == "http.response.body" and not message.get("more_body", False)
        ):
            self._done.set()

    def _cancel_task(self) -> None:
        if self.task is not None:
            self.task.cancel()

    async def call(self, app: Any, idle: Callable[[], bool] | None = None) -> AsgiOutcome:
        """One ASGI call, bounded; the response stops being fed once it ends.

        ``idle`` tells whether the adapter's WSGI threads are all done, read when the call
        returns (``finished_at_return``)."""
        record = self.req.record
        self.task = asyncio.ensure_future(app(self.scope, self.receive, self.send))
        try:
            done, _ = await asyncio.wait({self.task}, timeout=BOUND)
            finished = idle() if idle is not None else not record.ran or record.finished
            if not done:
                self.task.cancel()
                await asyncio.wait({self.task}, timeout=BOUND)
                raise Hang(
                    f"the ASGI call did not end within {BOUND}s "
                    f"({self.receives} receive(), {self.sends} send() calls)"
                )
        finally:
            self.delivered.release()
        try:
            self.task.result()
            error = None
        except BaseException as exc:
            error = exc
        return AsgiOutcome(
            error,
            self.sent,
            self.receives,
            self.sends,
            self.spins > SPIN_LIMIT,
            finished,
            self.pathsend_ok,
        )


def w2a_scope(path: str, method: str, length: int, pathsend: bool) -> Message:
    headers = [(b"host", b"testserver")]
    if method == "POST":
        headers.append((b"content-length", str(length).encode()))
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "extensions": {"http.response.pathsend": {}} if pathsend else {},
    }


class LoopWatch:
    """Exceptions the running loop reports as never retrieved (a task nobody awaited)."""

    def __init__(self) -> None:
        self.unretrieved: list[str] = []
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(self._handler)

    def _handler(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        self.unretrieved.append(str(context.get("message")) + f": {context.get('exception')!r}")


async def loop_leaks(watch: LoopWatch) -> list[str]:
    """Tasks still pending on the server's loop after the call, and unretrieved exceptions."""
    current = asyncio.current_task()

    def pending() -> list[asyncio.Task[Any]]:
        # The loop's root task lives as long as the loop does, by design (bridge's _runner).
        return [
            t for t in asyncio.all_tasks() if t is not current and t.get_name() != "bridge-root"
        ]

    for _ in range(100):  # a cancelled task needs a few iterations to finish
        if not pending():
            break
        await asyncio.sleep(0.005)
    gc.collect()  # so a task's exception nobody retrieved is reported now
    await asyncio.sleep(0)
    return [f"task left pending: {t.get_coro()!r}" for t in pending()] + [
        f"never retrieved: {u}" for u in watch.unretrieved
    ]


# -- ASGI -> WSGI: a fake WSGI server (one server thread, as a gthread worker's) around
# AsgiToWsgi, a scripted ASGI app inside --------------------------------------------------------

A2W_BODY = b"abcdefgh"  # read in two http.request messages of A2W_CHUNK bytes
A2W_CHUNK = 4
A2W_TAIL = {"small": (b"|two", b"|three"), "big": (b"x" * (300 * 1024), b"|three")}
# The app's steps: 1, 2 receive the body; 3 start a watcher task on receive(); 4 send the start;
# 5, 6, 7 send three chunks (the first echoes the request body); 8 send the last, empty body;
# 9 background work after the response (a Starlette BackgroundTask).
A2W_STEPS = 9


@dataclass
class AsgiRecord:
    """What the scripted ASGI app saw and did."""

    loop: asyncio.AbstractEventLoop | None = None
    body: bytes = b""
    watcher_saw: str | None = None
    events: list[str] = field(default_factory=list)  # the watcher's and send()'s, in order
    send_error: BaseException | None = None
    error: BaseException | None = None
    background_done: bool = False
    steps: int = 0  # the last step the app reached
    finished: bool = False  # the app's coroutine has returned or raised


@dataclass(eq=False)
class AsgiReq:
    """One request to the scripted ASGI app; it finds this by the ``x-fault-id`` header."""

    fault: str | None = None
    k: int = 0
    shape: str = "small"
    record: AsgiRecord = field(default_factory=AsgiRecord)
    taken: Lockstep = field(default_factory=Lockstep)  # body bytes the server has taken
    sending: Lockstep = field(default_factory=Lockstep)  # chunks the app is about to send
    read_started: Lockstep = field(default_factory=Lockstep)  # recv_timeout: a read under way
    read_abandoned: Lockstep = field(default_factory=Lockstep)  # ... and the app gave up on it

    @property
    def chunks(self) -> tuple[bytes, ...]:
        return (A2W_BODY, *A2W_TAIL[self.shape])

    @property
    def expected(self) -> bytes:
        return b"".join(self.chunks)


_A2W_REQUESTS: dict[str, AsgiReq] = {}


async def asgi_app(scope: Message, receive: Any, send: Any) -> None:
    """The scripted ASGI app. App faults at step k: raise (an Exception), cancel (it raises
    ``CancelledError``, as code under a cancelled anyio scope does), stall (never goes on),
    recv_timeout (gives up on a ``receive()`` once the server is reading for it, then asks
    again). On ``http.disconnect`` during the body it returns quietly, as a handler does."""
    assert scope["type"] == "http", scope["type"]
    fault_id = dict(scope["headers"]).get(b"x-fault-id", b"").decode()
    req = _A2W_REQUESTS[fault_id]
    record = req.record
    record.loop = asyncio.get_running_loop()
    watcher: asyncio.Task[None] | None = None

    async def at(step: int) -> None:
        record.steps = step
        if req.k != step:
            return
        if req.fault == "raise":
            raise AppError(f"fault: the app raised at step {step}")
        if req.fault == "cancel":
            raise asyncio.CancelledError()
        if req.fault == "stall":
            await never()

    async def sending(message: Message) -> None:
        try:
            await send(message)
        except BaseException as exc:
            record.send_error = exc
            record.events.append("send raised")
            raise

    async def watch() -> None:
        record.watcher_saw = (await receive())["type"]
        record.events.append(f"watcher saw {record.watcher_saw}")

    try:
        for step in (1, 2, 2):  # the body: one or two messages (step 2 is each further one)
            await at(step)
            if req.fault == "recv_timeout" and req.k == step:
                message = await _receive_given_up_once(receive, req)
            else:
                message = await receive()
            if message["type"] == "http.disconnect":
                return
            record.body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        else:
            raise AssertionError("the body came in more than three messages")
        await at(3)
        watcher = asyncio.ensure_future(watch())
        await asyncio.sleep(0)  # the watcher is awaiting receive() from here on
        await at(4)
        await sending({"type": "http.response.start", "status": 200, "headers": _A2W_HEADERS})
        taken = 0
        for step, chunk in enumerate((record.body, *A2W_TAIL[req.shape]), start=5):
            await at(step)
            req.sending.advance()
            await sending({"type": "http.response.body", "body": chunk, "more_body": True})
            taken += len(chunk)
            # Lock-step: the server has this chunk, unless the watcher saw the client leave.
            waiting = asyncio.ensure_future(req.taken.wait_async(taken))
            await asyncio.wait([waiting, watcher], return_when=asyncio.FIRST_COMPLETED)
            if not waiting.done():
                waiting.cancel()
                await asyncio.wait([waiting])
        await at(8)
        await sending({"type": "http.response.body", "body": b"", "more_body": False})
        await at(9)
        await asyncio.sleep(0)
        record.background_done = True
        await asyncio.wait_for(watcher, BOUND)
    except BaseException as exc:
        record.error = exc
        raise
    finally:
        if watcher is not None and not watcher.done():
            if record.send_error is not None:  # the client is gone: the watcher hears it too
                await asyncio.wait([watcher], timeout=BOUND)
            watcher.cancel()  # as a task group does when the response ends or fails
            await asyncio.wait([watcher])
        record.finished = True


_A2W_HEADERS = [(b"content-type", b"text/plain")]


async def _receive_given_up_once(receive: Any, req: AsgiReq) -> Message:
    """A ``receive()`` cancelled by a timeout once the server thread is reading for it, then a
    second ``receive()`` (what ``asyncio.wait_for(receive(), t)`` in a retry loop does)."""
    first = asyncio.ensure_future(receive())
    await req.read_started.wait_async(1)
    first.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await first
    if first.cancelled():
        req.read_abandoned.release()
        return await receive()
    req.read_abandoned.release()
    return first.result()


class FaultyInput:
    """``wsgi.input`` with a fault at read k: input_oserror raises, input_short returns fewer
    bytes than asked and then nothing (a client that sent less than its Content-Length and
    left), recv_timeout holds the read until the app has given up on it."""

    def __init__(self, req: AsgiReq) -> None:
        self._req = req
        self._data = A2W_BODY
        self.reads = 0

    def read(self, size: int = -1) -> bytes:
        req = self._req
        self.reads += 1
        if size < 0:
            size = len(self._data)
        if req.fault == "input_oserror" and self.reads == req.k:
            raise OSError(errno.ECONNRESET, f"fault: wsgi.input read #{self.reads} failed")
        if req.fault == "input_short" and self.reads >= req.k:
            size = min(size, 2 if self.reads == req.k else 0)
        data, self._data = self._data[:size], self._data[size:]
        if req.fault == "input_short" and self.reads >= req.k:
            self._data = b""
        if req.fault == "recv_timeout" and self.reads == req.k:
            loop = req.record.loop
            on_app_loop = loop is not None and loop.is_running() and _loop_thread_is_me(loop)
            req.read_started.advance()
            if not on_app_loop:  # shared loop: the app can give up while this thread reads
                req.read_abandoned.wait(1, BOUND)
        return data


def _loop_thread_is_me(loop: asyncio.AbstractEventLoop) -> bool:
    with contextlib.suppress(RuntimeError):
        return asyncio.get_running_loop() is loop
    return False


@dataclass
class WsgiOutcome:
    """What one WSGI call did, seen from the fake server."""

    call_error: BaseException | None = None  # raised by app(environ, start_response)
    iter_error: BaseException | None = None  # raised by next()
    close_error: BaseException | None = None
    status: str | None = None
    chunks: list[bytes] = field(default_factory=list)
    ended: bool = False  # the iteration reached StopIteration
    reads: int = 0  # wsgi.input reads the adapter made

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)


class ServerThread:
    """One WSGI server thread (a daemon), running the calls it is given one at a time, each
    within a bound: a per-thread loop stays the same across the calls, as in a real worker."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._serve, name="fault-server", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            future, fn = job
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)

    def run(self, fn: Callable[[], T], what: str, bound: float = BOUND) -> T:
        future: Future[T] = Future()
        self._jobs.put((future, fn))
        try:
            return future.result(bound)
        except TimeoutError:
            raise Hang(f"{what} did not end within {bound}s ({stack_of(self.thread)})") from None

    def stop(self) -> None:
        self._jobs.put(None)


def a2w_environ(req: AsgiReq) -> dict[str, Any]:
    fault_id = str(id(req))
    _A2W_REQUESTS.clear()  # one request at a time; the registry must not keep old ones alive
    _A2W_REQUESTS[fault_id] = req
    return {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/fault",
        "QUERY_STRING": "",
        "CONTENT_TYPE": "text/plain",
        "CONTENT_LENGTH": str(len(A2W_BODY)),
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "50000",
        "HTTP_HOST": "testserver",
        "HTTP_X_FAULT_ID": fault_id,
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": FaultyInput(req),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }


def serve_wsgi(
    app: Any,
    req: AsgiReq,
    *,
    start_response_raises: bool = False,
    close_after: int | None = None,
    close_from_thread: bool = False,
    close_while_sending: bool = False,
    adapter_close_after: int | None = None,
) -> WsgiOutcome:
    """Call ``app`` as a WSGI server does: call, iterate (taking chunks in lock-step with the
    app), close. ``close_after=n`` closes after n chunks (``close_while_sending``: once the
    app is inside its next ``send()``); ``close_from_thread`` closes from another thread;
    ``adapter_close_after=n`` has another thread call ``app.close()`` then. The lock-step is
    released only after ``close()``, so what the app sees during it is bridge's doing."""
    out = WsgiOutcome()

    def start_response(status: str, headers: list[Any], exc_info: Any = None) -> Any:
        if start_response_raises:
            raise ServerError("fault: start_response failed")
        out.status = status
        return lambda data: None

    environ = a2w_environ(req)
    try:
        result = app(environ, start_response)
    except BaseException as exc:
        out.call_error = exc
        req.taken.release()
        return out
    try:
        iterator = iter(result)
        while True:
            if close_after is not None and len(out.chunks) >= close_after:
                if close_while_sending:  # the app's next send() waits for room now
                    req.sending.wait(close_after + 1)
                break
            if adapter_close_after == len(out.chunks):
                in_thread(app.close, "the adapter's close() from another thread")
            try:
                chunk = next(iterator)
            except StopIteration:
                out.ended = True
                break
            except BaseException as exc:
                out.iter_error = exc
                break
            out.chunks.append(chunk)
            req.taken.advance(len(chunk))
    finally:
        close = getattr(result, "close", None)
        try:
            if close is not None and close_from_thread:
                in_thread(close, "the iterable's close() from another thread")
            elif close is not None:
                close()
        except BaseException as exc:
            out.close_error = exc
        req.taken.release()  # an app still waiting for the server to take a chunk goes on
        out.reads = environ["wsgi.input"].reads
    return out


def in_thread(fn: Callable[[], Any], what: str) -> None:
    """Run ``fn`` in a short-lived thread and wait for it (bounded); re-raise its error."""
    run_bounded(fn, BOUND, what)


# -- lifespan ----------------------------------------------------------------------------------

# The app's lifespan steps: 1 receive startup, 2 send startup.complete, 3 receive shutdown,
# 4 send shutdown.complete.
LIFESPAN_STEPS = 4


@dataclass(eq=False)
class LifespanScript:
    """An ASGI app whose first lifespan has one fault at step k: raise (an Exception), cancel
    (it raises ``CancelledError``, as an anyio cancel scope makes it), stall (never answers),
    wrong_type (sends ``http.response.start`` on the lifespan scope, then goes on: an app that
    does not check ``scope["type"]``). Later lifespans and every request are clean."""

    fault: str | None = None
    k: int = 0
    runs: int = 0
    steps: int = 0
    send_errors: list[BaseException] = field(default_factory=list)

    async def __call__(self, scope: Message, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})
            return
        fault = self.fault if self.runs == 0 else None
        self.runs += 1

        async def at(step: int) -> None:
            self.steps = max(self.steps, step)
            if fault is None or self.k != step:
                return
            if fault == "raise":
                raise AppError(f"fault: the lifespan raised at step {step}")
            if fault == "cancel":
                raise asyncio.CancelledError()
            if fault == "stall":
                await never()
            if fault == "wrong_type":
                try:
                    await send({"type": "http.response.start", "status": 200, "headers": []})
                except BaseException as exc:
                    self.send_errors.append(exc)
                    raise

        await at(1)
        assert (await receive())["type"] == "lifespan.startup"
        await at(2)
        await send({"type": "lifespan.startup.complete"})
        await at(3)
        assert (await receive())["type"] == "lifespan.shutdown"
        await at(4)
        await send({"type": "lifespan.shutdown.complete"})


def bound_lifespan(monkeypatch: pytest.MonkeyPatch, seconds: float) -> str:
    """Shorten bridge's lifespan bounds to ``seconds``; say what was found to shorten.

    A module-level constant of ``bridge.asgi_to_wsgi._lifespan`` whose name says TIMEOUT or
    GRACE is the way; failing that, the ``grace`` default of ``Lifespan.shutdown``."""
    import bridge.asgi_to_wsgi._lifespan as module

    found = [
        name
        for name, value in vars(module).items()
        if name.isupper()
        and ("TIMEOUT" in name or "GRACE" in name)
        and isinstance(value, (int, float))
    ]
    for name in found:
        monkeypatch.setattr(module, name, seconds)
    if found:
        return "constants " + ", ".join(found)
    shutdown = module.Lifespan.shutdown
    if shutdown.__defaults__ and "grace" in shutdown.__code__.co_varnames:
        monkeypatch.setattr(shutdown, "__defaults__", (seconds,))
        return "Lifespan.shutdown's grace default (startup: nothing)"
    return "nothing"


class LifespanServer:
    """A fake ASGI server's side of one lifespan, for ``WsgiToAsgi``: startup, then shutdown,
    with one fault at the k-th receive() or send(): recv_raise, recv_wrong (an unknown message
    type first), send_raise."""

    def __init__(self, fault: str | None = None, k: int = 0) -> None:
        self.fault = fault
        self.k = k
        self.receives = 0
        self.sends = 0
        self.sent: list[str] = []
        self._inbox = deque(["lifespan.startup", "lifespan.shutdown"])
        self._answered = asyncio.Event()

    async def receive(self) -> Message:
        self.receives += 1
        if self.fault == "recv_raise" and self.receives == self.k:
            raise ServerError(f"fault: lifespan receive() #{self.receives} failed")
        if self.fault == "recv_wrong" and self.receives == self.k:
            return {"type": "lifespan.bogus"}
        if len(self._inbox) == 1:  # shutdown comes once startup was answered
            await self._answered.wait()
        await asyncio.sleep(0)
        return {"type": self._inbox.popleft()} if self._inbox else await _forever()

    async def send(self, message: Message) -> None:
        self.sends += 1
        if self.fault == "send_raise" and self.sends == self.k:
            raise ServerError(f"fault: lifespan send() #{self.sends} failed")
        self.sent.append(message["type"])
        self._answered.set()

    async def call(self, app: Any) -> BaseException | None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}}
        task = asyncio.ensure_future(app(scope, self.receive, self.send))
        done, _ = await asyncio.wait({task}, timeout=BOUND)
        if not done:
            task.cancel()
            await asyncio.wait({task}, timeout=BOUND)
            raise Hang(f"the lifespan call did not end within {BOUND}s: sent {self.sent}")
        return asyncio.CancelledError() if task.cancelled() else task.exception()


async def _forever() -> Message:
    await never()
    raise AssertionError("unreachable")


def forget_exit_hook(adapter: Any) -> None:
    """Drop an ``AsgiToWsgi``'s interpreter-exit hook once a case has closed it (or failed to).

    The hook closes the adapter's loops at exit; for an adapter a defect left wedged (a startup
    stuck under the loops' lock) it would wedge the interpreter's exit, and with it the suite."""
    finalizer = getattr(adapter, "_finalizer", None)
    if finalizer is not None:
        finalizer.detach()
