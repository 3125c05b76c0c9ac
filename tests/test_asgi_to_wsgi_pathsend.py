"""``http.response.pathsend`` through ``AsgiToWsgi`` (issue 7, "zero-copy files on WSGI
servers"), in process: the extension is offered, the file goes to the server's
``wsgi.file_wrapper`` (so a server can ``sendfile()`` it) or out in blocks, and the app's call
ends as it would after a streamed body. The real-gunicorn proof is in
``test_asgi_to_wsgi_pathsend_servers.py``."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path
from typing import Any
from wsgiref.util import FileWrapper
from wsgiref.validate import validator

import pytest
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.responses import FileResponse
from starlette.routing import Route

from bridge import ASGIProtocolError, AsgiToWsgi

from .test_asgi_to_wsgi import MODES, Started, call, environ

pytestmark = pytest.mark.timeout(30)
Scope = dict[str, Any]
DATA = os.urandom(3 * 65536 + 123)  # not a whole number of blocks


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "data.bin"
    path.write_bytes(DATA)
    return path


def file_app(path: Path, background: BackgroundTask | None = None) -> Starlette:
    async def endpoint(request: Any) -> FileResponse:
        return FileResponse(path, background=background)

    return Starlette(routes=[Route("/", endpoint, methods=["GET", "HEAD"])])


def pathsend_app(path: str) -> Any:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.pathsend", "path": path})

    return app


class CountingWrapper(FileWrapper):
    """wsgiref's ``wsgi.file_wrapper``, remembering what it was given."""

    made: list[Any] = []

    def __init__(self, filelike: Any, blksize: int = 8192) -> None:
        super().__init__(filelike, blksize)
        CountingWrapper.made.append(filelike)


@pytest.mark.parametrize("mode", MODES)
def test_starlette_file_response_goes_to_the_servers_file_wrapper(
    data_file: Path, mode: str
) -> None:
    """Starlette sends pathsend (the scope offers it); the iterable the server gets back is its
    own ``wsgi.file_wrapper`` around an object with a ``fileno()`` of the file: what gunicorn
    hands to ``sendfile()``. A streaming adapter returns its own iterable and fails."""
    CountingWrapper.made.clear()
    adapter = AsgiToWsgi(file_app(data_file), loop=mode, lifespan="off")
    started = Started()
    iterable = adapter(environ(**{"wsgi.file_wrapper": CountingWrapper}), started)
    try:
        assert isinstance(iterable, CountingWrapper)
        filelike = CountingWrapper.made[0]
        assert os.path.samefile(f"/proc/self/fd/{filelike.fileno()}", data_file)
        assert b"".join(iterable) == DATA
    finally:
        iterable.close()
    status, headers = started.calls[0]
    assert status == "200 OK" and ("content-length", str(len(DATA))) in headers
    with pytest.raises(ValueError):
        filelike.fileno()  # closed with the iterable
    iterable.close()  # a second close() does nothing
    adapter.close()


@pytest.mark.parametrize("mode", MODES)
def test_without_a_file_wrapper_the_file_goes_out_in_blocks(data_file: Path, mode: str) -> None:
    adapter = AsgiToWsgi(file_app(data_file), loop=mode, lifespan="off", chunk_size=65536)
    started = Started()
    iterable = adapter(environ(), started)
    try:
        blocks = list(iterable)
    finally:
        iterable.close()  # type: ignore[attr-defined]
    assert b"".join(blocks) == DATA
    assert [len(b) for b in blocks] == [65536, 65536, 65536, 123]
    adapter.close()


def test_the_validator_accepts_both_bodies(data_file: Path) -> None:
    adapter = AsgiToWsgi(file_app(data_file), lifespan="off")
    for extra in ({}, {"wsgi.file_wrapper": FileWrapper}):
        env = environ(**{"wsgi.version": (1, 0), "wsgi.multithread": True}, **extra)
        env.update({"wsgi.multiprocess": False, "wsgi.run_once": False})
        _, body = call(validator(adapter), env)
        assert b"".join(body) == DATA
    adapter.close()


@pytest.mark.parametrize("mode", MODES)
def test_a_head_response_has_headers_and_no_body(data_file: Path, mode: str) -> None:
    adapter = AsgiToWsgi(pathsend_app(str(data_file)), loop=mode, lifespan="off")
    started, body = call(adapter, environ("HEAD", **{"wsgi.file_wrapper": FileWrapper}))
    assert started.calls[0][0] == "200 OK" and body == []
    adapter.close()


@pytest.mark.parametrize("mode", MODES)
def test_the_file_is_the_servers_though_a_background_task_deletes_it(
    data_file: Path, mode: str
) -> None:
    """The file is opened before the app's ``send()`` returns: a background task that removes
    it (the usual clean-up of a temporary file) cannot take it from the server. The task has
    run when the server closes the body, as after a streamed one."""
    removed = threading.Event()

    def remove() -> None:
        data_file.unlink()
        removed.set()

    adapter = AsgiToWsgi(file_app(data_file, BackgroundTask(remove)), loop=mode, lifespan="off")
    _, body = call(adapter, environ(**{"wsgi.file_wrapper": FileWrapper}))
    assert removed.is_set() and not data_file.exists()
    assert b"".join(body) == DATA
    adapter.close()


def test_background_work_after_pathsend_ends_before_close_returns(data_file: Path) -> None:
    """The app's task goes on after pathsend (a background task that awaits); closing the body
    waits for it, as exhausting a streamed body does."""
    finished: list[str] = []

    async def later() -> None:
        await asyncio.sleep(0)
        await asyncio.sleep(0.01)
        finished.append("done")

    adapter = AsgiToWsgi(file_app(data_file, BackgroundTask(later)), lifespan="off")
    iterable = adapter(environ(**{"wsgi.file_wrapper": FileWrapper}), Started())
    assert b"".join(iterable) == DATA
    iterable.close()  # type: ignore[attr-defined]
    assert finished == ["done"]
    adapter.close()


def test_a_body_closed_by_another_thread_lets_the_loop_go(data_file: Path) -> None:
    """waitress sends file bodies from its I/O thread and closes them there. That thread must
    not run the request's loop; the app's remaining work runs when the loop next runs (the
    request thread's next request), and the loop is then free to close."""
    finished: list[str] = []

    async def later() -> None:
        await asyncio.sleep(0)
        finished.append("done")

    adapter = AsgiToWsgi(file_app(data_file, BackgroundTask(later)), lifespan="off")
    iterable = adapter(environ(**{"wsgi.file_wrapper": FileWrapper}), Started())
    closer = threading.Thread(target=lambda: (b"".join(iterable), iterable.close()))  # type: ignore[attr-defined]
    closer.start()
    closer.join(10)
    _, body = call(adapter, environ(**{"wsgi.file_wrapper": FileWrapper}))
    assert b"".join(body) == DATA and finished == ["done", "done"]
    adapter.close()


def test_a_body_closed_elsewhere_mid_background_work_lets_the_loop_go_at_once(
    data_file: Path,
) -> None:
    """As above, with the app's task still waiting: the loop is let go at once (it can be
    closed), and the task goes on whenever the loop runs (here the next request's app
    releases it; it resumes on the loop run after that)."""
    finished: list[str] = []
    gate: list[asyncio.Event] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        if scope["path"] == "/file":
            await send({"type": "http.response.pathsend", "path": str(data_file)})
            gate.append(asyncio.Event())
            await gate[0].wait()
            finished.append("background")
        else:
            gate[0].set()
            await send({"type": "http.response.body", "body": b"ok"})

    adapter = AsgiToWsgi(app, lifespan="off")
    iterable = adapter(environ(PATH_INFO="/file", **{"wsgi.file_wrapper": FileWrapper}), Started())
    closer = threading.Thread(target=lambda: (b"".join(iterable), iterable.close()))  # type: ignore[attr-defined]
    closer.start()
    closer.join(10)
    assert finished == []  # nothing ran the request's loop meanwhile
    (runner,) = adapter._loops._runners
    assert runner._users == 0
    assert call(adapter, environ(PATH_INFO="/other"))[1] == [b"ok"]  # releases the gate
    assert call(adapter, environ(PATH_INFO="/other"))[1] == [b"ok"]  # the loop runs on
    assert finished == ["background"]
    adapter.close()
    assert runner.closed.is_set()  # no request holds it any more: close() closed it


def test_socket_sendfile_takes_the_body_as_a_file(data_file: Path) -> None:
    """What gunicorn does with its wrapper's ``filelike``: ``socket.sendfile()`` (``fileno``,
    ``os.sendfile``, then ``seek``)."""
    import socket

    adapter = AsgiToWsgi(file_app(data_file), lifespan="off")
    iterable = adapter(environ(**{"wsgi.file_wrapper": FileWrapper}), Started())
    left, right = socket.socketpair()
    received = bytearray()

    def drain() -> None:
        while chunk := right.recv(65536):
            received.extend(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    try:
        assert left.sendfile(iterable.filelike) == len(DATA)  # type: ignore[attr-defined]
        assert iterable.filelike.tell() == len(DATA)  # type: ignore[attr-defined]
    finally:
        left.close()
        reader.join(10)
        right.close()
        iterable.close()  # type: ignore[attr-defined]
    assert bytes(received) == DATA
    adapter.close()


@pytest.mark.parametrize(
    ("steps", "rule"),
    [
        ([{"type": "http.response.pathsend", "path": "/"}], "before http.response.start"),
        (
            [
                {"type": "http.response.start", "status": 200},
                {"type": "http.response.body", "body": b"", "more_body": True},
                {"type": "http.response.pathsend", "path": "/"},
            ],
            "after http.response.body",
        ),
        (
            [
                {"type": "http.response.start", "status": 200},
                {"type": "http.response.pathsend", "path": b"/etc/hostname"},
            ],
            "needs a str path, got bytes",
        ),
    ],
)
def test_pathsend_protocol_violations_are_named(steps: list[dict[str, Any]], rule: str) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        for message in steps:
            await send(message)

    with pytest.raises(ASGIProtocolError, match=rule):
        call(AsgiToWsgi(app, lifespan="off"))


def test_pathsend_after_a_complete_response_is_logged_and_the_response_stands(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"whole"})
        await send({"type": "http.response.pathsend", "path": "/"})

    adapter = AsgiToWsgi(app, lifespan="off")
    assert call(adapter)[1] == [b"whole"]
    (record,) = [r for r in caplog.records if r.exc_info]
    assert "pathsend sent after the response was complete" in str(record.exc_info[1])  # type: ignore[index]
    adapter.close()


def test_a_path_that_cannot_be_opened_is_the_apps_error(tmp_path: Path) -> None:
    """Raised from the app's ``send()``: unhandled, it reaches the server before any header
    went out, which answers 500."""
    adapter = AsgiToWsgi(pathsend_app(str(tmp_path / "missing")), lifespan="off")
    with pytest.raises(FileNotFoundError):
        call(adapter)
    adapter.close()


def test_a_timed_out_pathsend_closes_its_file(data_file: Path) -> None:
    """A file opened for a response that never goes out is closed with it."""
    opened: list[Any] = []
    real_open = open

    def spy(*args: Any, **kwargs: Any) -> Any:
        opened.append(real_open(*args, **kwargs))
        return opened[-1]

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.pathsend", "path": str(data_file)})

    def refuse(status: str, headers: Any, exc_info: Any = None) -> Any:
        raise OSError("the server refused the response")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("builtins.open", spy)
        adapter = AsgiToWsgi(app, lifespan="off")
        with pytest.raises(OSError, match="refused"):
            adapter(environ(**{"wsgi.file_wrapper": FileWrapper}), refuse)
    assert len(opened) == 1 and opened[0].closed
    adapter.close()
