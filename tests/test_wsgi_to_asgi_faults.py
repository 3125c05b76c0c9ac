"""WsgiToAsgi on the paths that go wrong (issue 6, section 2): each test names the defect it
guards against and fails on an adapter that has it.

No sleeps prove an order here: where a test must show that something did *not* happen early,
the thing that would happen early records what it saw at that moment.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge import ClientDisconnected, WsgiToAsgi
from bridge.wsgi_to_asgi import _relay
from tests.asgi_harness import Conversation, http_scope, request, run

pytestmark = pytest.mark.timeout(20)
Environ = dict[str, Any]


def hello(environ: Environ, start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Length", "5")])
    return [b"hello"]


class Body:
    """A WSGI iterable over ``chunks`` that counts ``next()`` calls and records ``close()``."""

    def __init__(self, chunks: list[bytes], close_error: Exception | None = None) -> None:
        self._chunks = iter(chunks)
        self.nexts = 0
        self.close_error = close_error
        self.closed = threading.Event()

    def __iter__(self) -> Body:
        return self

    def __next__(self) -> bytes:
        self.nexts += 1
        return next(self._chunks)

    def close(self) -> None:
        self.closed.set()
        if self.close_error is not None:
            raise self.close_error


async def drive(app: Any, receive: Any, send: Any, scope: dict[str, Any] | None = None) -> None:
    await WsgiToAsgi(app)(scope or http_scope(), receive, send)


# -- 1. a receive() that never suspends -----------------------------------------------------------


class Ticker:
    """A task on the same loop; ``receive()`` notes whether it moved between two calls."""

    def __init__(self) -> None:
        self.ticks = 0
        self.stalled = 0  # receive() calls in a row with no tick in between
        self.worst = 0
        self._last = -1
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            self.ticks += 1
            await asyncio.sleep(0)

    def note(self) -> None:
        self.stalled = self.stalled + 1 if self.ticks == self._last else 0
        self.worst = max(self.worst, self.stalled)
        self._last = self.ticks


def handshake_stream(got_first: threading.Event, chunks: int = 3) -> Any:
    """A streaming response: chunk two is made only once the client holds chunk one."""

    def app(environ: Environ, start_response: Any) -> Iterator[bytes]:
        environ["wsgi.input"].read()
        start_response("200 OK", [])
        yield b"first"
        if not got_first.wait(5):
            raise AssertionError("chunk one never reached the client")
        for _ in range(chunks):
            yield b"more"

    return app


@pytest.mark.timeout(10)
def test_receive_replaying_the_body_without_suspending_does_not_freeze_the_loop() -> None:
    """A middleware that replays a logged body: its receive() returns at once, forever."""
    got_first = threading.Event()
    sent: list[dict[str, Any]] = []

    async def main() -> None:
        ticker = Ticker()

        async def replaying_receive() -> dict[str, Any]:
            ticker.note()
            if ticker.stalled > 10_000:  # the loop is frozen: end it, so the test can fail
                return {"type": "http.disconnect"}
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)
            if message.get("body") == b"first":
                got_first.set()

        try:
            await asyncio.wait_for(drive(handshake_stream(got_first), replaying_receive, send), 5)
        finally:
            ticker.task.cancel()
        assert ticker.worst < 100, f"receive() ran {ticker.worst} times while the loop starved"

    run(main())
    assert b"".join(m.get("body", b"") for m in sent[1:]) == b"first" + b"more" * 3
    assert sent[-1].get("more_body", False) is False


@pytest.mark.timeout(10)
def test_receive_of_empty_body_parts_without_suspending_does_not_starve_the_loop() -> None:
    """Still mid-body: a receive() returning empty ``more_body`` parts at once must yield."""
    calls = 0

    async def main() -> None:
        ticker = Ticker()

        async def eager_receive() -> dict[str, Any]:
            nonlocal calls
            calls += 1
            ticker.note()
            if calls == 1:
                return {"type": "http.request", "body": b"a", "more_body": True}
            if calls < 2_000:
                return {"type": "http.request", "body": b"", "more_body": True}
            if calls == 2_000:
                return {"type": "http.request", "body": b"z", "more_body": False}
            await asyncio.Event().wait()  # then nothing more to say, as a real server
            raise AssertionError("unreachable")

        def app(environ: Environ, start_response: Any) -> list[bytes]:
            start_response("200 OK", [])
            return [environ["wsgi.input"].read()]

        sent: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        try:
            await asyncio.wait_for(drive(app, eager_receive, send), 5)
        finally:
            ticker.task.cancel()
        assert b"".join(m.get("body", b"") for m in sent[1:]) == b"az"
        assert ticker.worst < 100, f"receive() ran {ticker.worst} times while the loop starved"

    run(main())


# -- 2. receive() raising mid-body ----------------------------------------------------------------


@pytest.mark.timeout(10)
def test_receive_raising_mid_body_reaches_the_app_and_the_asgi_call() -> None:
    seen: list[BaseException] = []
    body = Body([b"never"])

    def app(environ: Environ, start_response: Any) -> Body:
        try:
            environ["wsgi.input"].read()
        except OSError as exc:
            seen.append(exc)
        start_response("200 OK", [])
        return body

    calls = 0

    async def receive() -> dict[str, Any]:
        nonlocal calls
        calls += 1
        if calls == 1:
            return {"type": "http.request", "body": b"part", "more_body": True}
        raise RuntimeError("the server's receive() broke")

    async def main() -> None:
        adapter = WsgiToAsgi(app, threads=1, backlog=0, hold_body=0)

        async def send(message: dict[str, Any]) -> None:
            pass

        with pytest.raises(RuntimeError, match="receive\\(\\) broke"):
            await asyncio.wait_for(adapter(http_scope(method="POST"), receive, send), 5)
        stats = adapter.stats()
        assert stats["busy"] + stats["waiting"] == 0, "the pool slot was not given back"
        assert (await request(adapter)).status == 200

    run(main())
    assert seen and isinstance(seen[0], ClientDisconnected)
    assert isinstance(seen[0].__cause__, RuntimeError)
    assert body.closed.is_set()


# -- 3. never more than Content-Length ------------------------------------------------------------


@pytest.mark.parametrize("kind", ["generator", "list"])
def test_body_stops_at_the_declared_content_length(kind: str) -> None:
    """Django's FileResponse for a Range request writes a 4 KiB block under Content-Length 100."""
    chunks = [b"x" * 4096, b"y" * 4096, b"z" * 4096]
    body = Body(chunks) if kind == "generator" else Body([])

    def app(environ: Environ, start_response: Any) -> Any:
        start_response("206 Partial Content", [("Content-Length", "100")])
        if kind == "list":
            return ListWithClose(chunks, body)
        return body

    result = run(request(WsgiToAsgi(app)))
    assert result.body == b"x" * 100
    assert result.messages[-1].get("more_body", False) is False
    assert body.closed.is_set()
    if kind == "generator":
        assert body.nexts == 1, "the iteration went on past the declared length"


class ListWithClose(list[bytes]):
    def __init__(self, chunks: list[bytes], body: Body) -> None:
        super().__init__(chunks)
        self.close = body.close


def test_write_past_the_declared_length_is_cut_and_the_iterable_not_read() -> None:
    body = Body([b"never"])

    def app(environ: Environ, start_response: Any) -> Body:
        write = start_response("200 OK", [("Content-Length", "4")])
        write(b"ab")
        write(b"cdef")
        return body

    result = run(request(WsgiToAsgi(app)))
    assert result.body == b"abcd"
    assert body.nexts == 0 and body.closed.is_set()


def test_content_length_of_a_replaced_header_set_counts() -> None:
    def app(environ: Environ, start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Length", "2")])
        try:
            raise ValueError("changed my mind")
        except ValueError:
            start_response("500 Internal Server Error", [("Content-Length", "6")], sys.exc_info())
        return [b"failed", b" and more"]

    result = run(request(WsgiToAsgi(app)))
    assert result.status == 500 and result.body == b"failed"


# -- 4. close() raising ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["list", "generator"])
def test_close_raising_after_a_complete_response_is_logged_and_the_response_stands(
    kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    body = Body([b"whole", b" body"], close_error=RuntimeError("close broke"))

    def app(environ: Environ, start_response: Any) -> Any:
        start_response("200 OK", [])
        return ListWithClose([b"whole", b" body"], body) if kind == "list" else body

    with caplog.at_level(logging.ERROR, logger="bridge"):
        result = run(request(WsgiToAsgi(app)))
    assert result.status == 200 and result.body == b"whole body"
    assert result.messages[-1].get("more_body", False) is False
    records = [r for r in caplog.records if r.name == "bridge"]
    assert len(records) == 1, records
    assert records[0].exc_info is not None and "close broke" in str(records[0].exc_info[1])


def test_close_raising_after_the_iteration_failed_the_iteration_error_wins(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Failing(Body):
        def __next__(self) -> bytes:
            raise KeyError("iteration broke")

    body = Failing([], close_error=RuntimeError("close broke"))

    def app(environ: Environ, start_response: Any) -> Body:
        start_response("200 OK", [])
        return body

    async def main() -> None:
        conv = Conversation(WsgiToAsgi(app), http_scope())
        conv.push_body()
        with pytest.raises(KeyError, match="iteration broke"):
            await conv.finish()

    with caplog.at_level(logging.ERROR, logger="bridge"):
        run(main())
    records = [r for r in caplog.records if r.name == "bridge"]
    assert len(records) == 1 and "close broke" in str(records[0].exc_info[1])  # type: ignore[index]


# -- 5. pathsend and close() ----------------------------------------------------------------------


def test_pathsend_file_deleted_on_close_is_still_there_when_the_server_sends_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "report.bin"
    path.write_bytes(b"temporary report")
    send_returned = False
    at_close: list[bool] = []
    served: list[bytes] = []

    class TempFile:
        def __init__(self) -> None:
            self.file = path.open("rb")
            self.name = self.file.name

        def read(self, size: int = -1) -> bytes:
            return self.file.read(size)

        def tell(self) -> int:
            return self.file.tell()

        def close(self) -> None:
            at_close.append(send_returned)
            self.file.close()
            os.unlink(path)

    def app(environ: Environ, start_response: Any) -> Any:
        start_response("200 OK", [("Content-Length", "16")])
        return environ["wsgi.file_wrapper"](TempFile())

    async def send(message: dict[str, Any]) -> None:
        nonlocal send_returned
        if message["type"] == "http.response.pathsend":
            await asyncio.sleep(0)  # a server opens the file on a later turn of its loop
            served.append(Path(message["path"]).read_bytes())
            send_returned = True

    async def main() -> None:
        scope = http_scope(extensions={"http.response.pathsend": {}})
        conv = Conversation(WsgiToAsgi(app), scope, send=send)
        conv.push_body()
        await conv.finish()

    run(main())
    assert served == [b"temporary report"]
    assert at_close == [True], "close() ran before send(pathsend) had returned"
    assert not path.exists()


def test_pathsend_send_raising_still_closes(tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(b"0123456789")
    closed = threading.Event()

    def app(environ: Environ, start_response: Any) -> Any:
        start_response("200 OK", [])
        wrapper = environ["wsgi.file_wrapper"](path.open("rb"))
        original = wrapper.close

        def close() -> None:
            original()
            closed.set()

        wrapper.close = close
        return wrapper

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.pathsend":
            raise ConnectionResetError("peer gone")

    async def main() -> None:
        scope = http_scope(extensions={"http.response.pathsend": {}})
        await asyncio.wait_for(drive(app, _body_then_wait(), send, scope), 5)

    run(main())
    assert closed.is_set()


def _body_then_wait() -> Any:
    sent_body = False
    forever = asyncio.Event()

    async def receive() -> dict[str, Any]:
        nonlocal sent_body
        if not sent_body:
            sent_body = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await forever.wait()
        raise AssertionError("unreachable")

    return receive


# -- 6. requests whose client left while they waited for a thread ---------------------------------


@pytest.mark.parametrize("leave", ["disconnect", "cancel"])
@pytest.mark.timeout(15)
def test_queued_requests_whose_client_left_never_run_the_app(leave: str) -> None:
    gate = threading.Event()
    entered = threading.Event()
    ran: list[str] = []

    def app(environ: Environ, start_response: Any) -> list[bytes]:
        ran.append(environ["PATH_INFO"])
        entered.set()
        gate.wait(10)
        start_response("200 OK", [])
        return [b"ok"]

    adapter = WsgiToAsgi(app, threads=1, backlog=10)

    async def main() -> None:
        first = Conversation(adapter, http_scope("/first", method="POST"))
        first.push_body(b"payload")
        assert await asyncio.to_thread(entered.wait, 5)
        queued = [Conversation(adapter, http_scope(f"/q{i}", method="POST")) for i in range(5)]
        for conv in queued:
            conv.push_body(b"payload")
        await asyncio.sleep(0)
        while any(conv.receive_calls == 0 for conv in queued):
            await asyncio.sleep(0.001)
        try:
            for conv in queued:
                if leave == "disconnect":
                    conv.push({"type": "http.disconnect"})
                else:
                    conv.task.cancel()
            done, _ = await asyncio.wait([c.task for c in queued], timeout=3)
            assert len(done) == len(queued), "a queued request outlived its client"
        finally:
            gate.set()
        assert (await first.next())["status"] == 200
        await first.finish()
        assert (await request(adapter)).status == 200  # every slot came back
        assert adapter.stats()["busy"] + adapter.stats()["waiting"] == 0

    run(main())
    assert ran == ["/first", "/"]


# -- 7. the ASGI call returns only once the thread is done ----------------------------------------


class SlowClose:
    """A streaming body (endless, or one chunk) whose ``close()`` takes its time."""

    def __init__(self, closed: list[float], endless: bool) -> None:
        self.closed = closed
        self.endless = endless
        self.made = 0

    def __iter__(self) -> SlowClose:
        return self

    def __next__(self) -> bytes:
        if self.made and not self.endless:
            raise StopIteration
        if self.made:
            time.sleep(0.005)
        self.made += 1
        return b"tick"

    def close(self) -> None:
        time.sleep(0.5)  # a teardown that takes its time
        self.closed.append(time.monotonic())


@pytest.mark.parametrize(
    "path", ["disconnect", "success", "cancel", "cancel_after_the_end", "send_raises"]
)
def test_the_asgi_call_returns_only_after_close_has_returned(path: str) -> None:
    closed: list[float] = []

    async def send(message: dict[str, Any]) -> None:
        if path == "send_raises" and message.get("body"):
            raise ConnectionResetError("peer gone")

    async def main() -> float:
        def app(environ: Environ, start_response: Any) -> SlowClose:
            start_response("200 OK", [])
            return SlowClose(closed, endless=path not in ("success", "cancel_after_the_end"))

        conv = Conversation(WsgiToAsgi(app), http_scope(), send=send)
        conv.push_body()
        if path != "send_raises":
            assert (await conv.next())["type"] == "http.response.start"
        if path == "disconnect":
            conv.push({"type": "http.disconnect"})
        elif path == "cancel":
            conv.task.cancel()
        elif path == "cancel_after_the_end":
            while (await conv.next()).get("more_body", False):
                pass  # the whole response is out; close() is still running
            conv.task.cancel()
        try:
            await conv.finish()
        except asyncio.CancelledError:
            assert path.startswith("cancel")
        return time.monotonic()

    returned = run(main())
    assert closed, "the ASGI call returned before close() had returned"
    assert closed[0] <= returned


def test_a_cancelled_call_waits_for_the_thread_only_so_long(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_relay, "CANCEL_GRACE", 0.2)
    release = threading.Event()

    def app(environ: Environ, start_response: Any) -> list[bytes]:
        release.wait(5)  # deaf to the cancellation: only the bound ends the wait
        start_response("200 OK", [])
        return [b"late"]

    async def main() -> None:
        conv = Conversation(WsgiToAsgi(app), http_scope())
        conv.push_body()
        await asyncio.sleep(0.05)
        conv.task.cancel()
        started = time.monotonic()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(conv.task, 3)
        assert time.monotonic() - started < 2
        release.set()

    run(main())


# -- 8. early-closed Flask streams under load ------------------------------------------------------


@pytest.mark.timeout(30)
def test_early_closed_flask_streams_tear_down_in_their_own_context() -> None:
    """200 Flask ``stream_with_context`` responses cut short (disconnect before, at and after
    the first chunk, ``send()`` raising, the task cancelled) next to a CPU-burning thread.

    Each request's teardown must run once per push, in its own context (``g`` and ``request``
    are its own), before its ASGI call returns; nothing may reach ``close()``'s error log or
    ``sys.unraisablehook``, and a plain request afterwards sees a clean context.
    """
    from flask import Flask, Response, g, stream_with_context
    from flask import request as flask_request

    app = Flask("stress")
    torn_down: dict[str, int] = {}
    wrong: list[str] = []

    @app.teardown_request
    def teardown(exc: BaseException | None) -> None:
        mine = flask_request.args.get("id", "")
        if getattr(g, "request_id", mine) != mine:
            wrong.append(f"{mine} tore down with g of {g.request_id}")
        torn_down[mine] = torn_down.get(mine, 0) + 1

    @app.get("/stream")
    def stream() -> Response:
        g.request_id = flask_request.args["id"]

        def chunks() -> Iterator[bytes]:
            for i in range(10_000):
                yield b"x" * (32_768 if i % 2 else 16)

        return Response(stream_with_context(chunks()))

    @app.get("/plain")
    def plain() -> str:
        return repr(getattr(g, "request_id", None))

    unraisable: list[str] = []
    hook, sys.unraisablehook = sys.unraisablehook, lambda u: unraisable.append(repr(u))
    stop = threading.Event()

    def burn() -> None:
        while not stop.is_set():
            sum(range(2_000))

    burner = threading.Thread(target=burn, daemon=True)
    burner.start()
    adapter = WsgiToAsgi(app, threads=4)
    returned_early: list[str] = []

    async def one(i: int) -> None:
        mode = i % 5
        sent = 0

        async def send(message: dict[str, Any]) -> None:
            nonlocal sent
            sent += 1
            if mode == 3 and sent > 2:
                raise ConnectionResetError("peer gone")

        query = f"id={i}".encode()
        conv = Conversation(adapter, http_scope("/stream", query_string=query), send=send)
        conv.push_body()
        if mode in (1, 2, 4):
            await conv.next()
        if mode == 2:
            await conv.next()
        if mode == 4:
            conv.task.cancel()
        elif mode != 3:
            conv.push({"type": "http.disconnect"})
        with contextlib.suppress(asyncio.CancelledError):
            await conv.finish(timeout=10)
        if mode != 0 and torn_down.get(str(i)) != 2:  # once after the view, once for the stream
            returned_early.append(f"{i}: {torn_down.get(str(i))}")

    async def main() -> bytes:
        for start in range(0, 200, 8):
            await asyncio.gather(*(one(i) for i in range(start, start + 8)))
        return (await request(adapter, "/plain")).body

    try:
        with _bridge_errors() as logged:
            plain_body = run(main())
    finally:
        stop.set()
        burner.join(5)
        sys.unraisablehook = hook
    assert not wrong and not unraisable and not logged, (wrong, unraisable, logged)
    assert not returned_early, f"calls returned before their teardown ran: {returned_early[:5]}"
    assert plain_body == b"None"


class _bridge_errors:
    """Collect what bridge logs at ERROR and above while the block runs."""

    def __enter__(self) -> list[str]:
        self.records: list[str] = []
        self.handler = logging.Handler(logging.ERROR)
        self.handler.emit = lambda record: self.records.append(record.getMessage())  # type: ignore[method-assign]
        logging.getLogger("bridge").addHandler(self.handler)
        return self.records

    def __exit__(self, *exc: object) -> None:
        logging.getLogger("bridge").removeHandler(self.handler)


def test_an_unknown_lifespan_message_raises_instead_of_looping() -> None:
    async def receive() -> dict[str, Any]:
        return {"type": "lifespan.bogus"}  # at once, forever

    async def send(message: dict[str, Any]) -> None:
        raise AssertionError(f"nothing to answer: {message}")

    with pytest.raises(Exception, match="unexpected message on the lifespan scope"):
        run(asyncio.wait_for(WsgiToAsgi(hello)({"type": "lifespan"}, receive, send), 5))
