"""The WSGI side of a response: ``start_response``, ``write()`` and the iterable, on the worker
thread, turned into ASGI messages queued for the loop.

A response moves AWAITING_START -> HEADERS_HELD -> STREAMING -> DONE, or to FAILED from anywhere.
Headers are held until the first non-empty chunk (PEP 3333: an application may still replace them
with an ``exc_info`` call until then), so an error before any body still becomes a clean 500.

Two ends are told to the loop apart: ``END`` (queued by ``finish()``) says the response is
complete, and the hand-off's ``close()``/``fail()`` (by ``done()``, after the iterable's
``close()``) says the thread is done with the request. A list body queues both without waking the
loop and wakes it once at the very end; a streaming body sends ``END`` at once, so the client has
its response while ``close()`` still runs.
"""

from __future__ import annotations

import enum
import logging
import os
from collections.abc import Iterable
from typing import IO, Any

from .._environ import check_status, encode_headers, plain_length
from .._errors import WSGIProtocolError
from .._streams import ToLoop
from .._types import ExcInfo, Message, Write

errors_logger = logging.getLogger("bridge.wsgi.errors")


class State(enum.Enum):
    AWAITING_START = "awaiting start_response"
    HEADERS_HELD = "headers held until the first body chunk"
    STREAMING = "streaming the body"
    DONE = "done"
    FAILED = "failed"


# Items on the hand-off: a body chunk as plain bytes (the loop joins neighbours into one
# ``http.response.body``), any other message as its dict, and ``END`` once the body is complete.
Item = bytes | Message
END: Message = {"type": "http.response.body", "more_body": False}


def _length_of(headers: list[tuple[bytes, bytes]]) -> int | None:
    """The ``Content-Length`` an app declared, when it is one plain number."""
    for name, value in headers:
        if name == b"content-length":
            return plain_length(value)
    return None


class ResponseWriter:
    """One request's response as the WSGI application makes it."""

    def __init__(self, channel: ToLoop[Item]) -> None:
        self.state = State.AWAITING_START
        self._channel = channel
        self._start: Message = {}
        # Bytes the declared Content-Length still allows (None: no limit). PEP 3333: a server
        # never sends more than declared; the iteration stops once it is reached.
        self.remaining: int | None = None
        # True while the body is a list or tuple: its next chunk cannot block, so the loop is
        # woken once at the end instead of per chunk (an ordinary request: one hop each way).
        self.batch = False

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None
    ) -> Write:
        if exc_info is not None and exc_info[1] is not None:
            try:
                if self.state in (State.STREAMING, State.DONE):
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None  # break the frame <-> traceback cycle, as PEP 3333 asks
        elif self.state is not State.AWAITING_START:
            raise WSGIProtocolError(
                "start_response() called a second time without exc_info (PEP 3333 allows it "
                "only to replace headers after an error)"
            )
        code = check_status(status)
        encoded = encode_headers(headers)
        self._start = {"type": "http.response.start", "status": code, "headers": encoded}
        self.remaining = _length_of(encoded)
        self.state = State.HEADERS_HELD
        return self.write

    def write(self, data: bytes) -> None:
        """PEP 3333's ``write()`` callable: even an empty write sends the headers."""
        self.send_chunk(data)
        self._release_headers()

    def send_chunk(self, data: bytes) -> bool:
        """Queue one chunk of the iterable; blocks while the client is behind (back-pressure).

        An empty chunk keeps the headers held (PEP 3333). Bytes past the declared
        ``Content-Length`` are cut; returns True once that length is reached.
        """
        if type(data) is not bytes:
            raise WSGIProtocolError(
                f"response body chunks must be bytes, got {type(data).__name__}: {data!r:.60}"
            )
        if self.state is State.AWAITING_START:
            raise WSGIProtocolError("body data came before start_response() was called")
        if self.state is State.DONE:
            raise WSGIProtocolError("write() called after the response was finished")
        remaining = self.remaining
        if remaining is not None:
            if len(data) >= remaining:
                data = data[:remaining]
            self.remaining = remaining - len(data)
        if data:
            self._release_headers()
            self._channel.put(data, len(data), wake=not self.batch)
        return self.remaining == 0

    @property
    def complete(self) -> bool:
        """The declared ``Content-Length`` has been sent: nothing more may follow."""
        return self.remaining == 0 and self.state is not State.AWAITING_START

    def send_path(self, path: str) -> None:
        """Finish with ``http.response.pathsend``: the server sends the file itself.

        Returns once the loop's ``send()`` has returned (or the client is gone), so the
        iterable's ``close()``, which may delete the file, only runs after the server opened it.
        """
        self._release_headers()
        self._channel.put({"type": "http.response.pathsend", "path": path}, 0)
        self.state = State.DONE
        self._channel.wait_acknowledged()

    def finish(self) -> None:
        """The body is complete: queue ``END`` at once, or with ``done()`` for a list body."""
        if self.state is State.AWAITING_START:
            raise WSGIProtocolError("the application returned without calling start_response()")
        self._release_headers()
        self.state = State.DONE
        if not self.batch:
            self._channel.put(END, 0)  # the client has it all now; close() may take its time

    def done(self, error: BaseException | None) -> None:
        """The thread is done with the request (``close()`` has returned): the last wake-up.

        A list body's ``END`` goes with it, under one lock and one wake-up.
        """
        if error is None:
            ended = self.batch and self.state is State.DONE
            self._channel.close(END if ended else None)
        else:
            self.state = State.FAILED
            self._channel.fail(error)

    def _release_headers(self) -> None:
        if self.state is State.HEADERS_HELD:
            self.state = State.STREAMING
            self._channel.put(self._start, 0, wake=not self.batch)


class FileWrapper:
    """``wsgi.file_wrapper``: iterates a file in blocks, or lets the server send it by path."""

    def __init__(self, filelike: IO[bytes], blksize: int = 65536) -> None:
        self.filelike = filelike
        self.blksize = blksize

    # Its own iterator, as wsgiref's and werkzeug's wrappers are: code that keeps ``iter()`` of
    # it and closes that (werkzeug's Range support) closes the file, not a bare generator.
    def __iter__(self) -> FileWrapper:
        return self

    def __next__(self) -> bytes:
        block = self.filelike.read(self.blksize)
        if not block:
            raise StopIteration
        return block

    def close(self) -> None:
        close = getattr(self.filelike, "close", None)
        if close is not None:
            close()

    def path(self) -> str | None:
        """The file's absolute path, when it is a real file read from its start."""
        name = getattr(self.filelike, "name", None)
        if not isinstance(name, str):
            return None
        try:
            if self.filelike.tell() != 0:
                return None
        except (OSError, ValueError):
            return None
        path = os.path.abspath(name)
        return path if os.path.isfile(path) else None


def pathsend_target(iterable: Iterable[bytes], response: ResponseWriter, scope: Any) -> str | None:
    """The path to send with ``http.response.pathsend``, when the server and response allow."""
    if type(iterable) is not FileWrapper or response.state is not State.HEADERS_HELD:
        return None  # not a file, or write() already sent part of the body
    if "http.response.pathsend" not in (scope.get("extensions") or {}):
        return None
    path = iterable.path()
    if path is None or response.remaining is None:
        return path
    # A declared length that is not the file's (a Range served by hand from the file's start):
    # the server would send the whole file, so the blocks are iterated and the length clamps.
    return path if os.path.getsize(path) == response.remaining else None


class ErrorStream:
    """``wsgi.errors``: each write becomes one log record on ``bridge.wsgi.errors``."""

    def write(self, text: str) -> None:
        text = text.rstrip("\n")
        if text:
            errors_logger.error("%s", text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        pass
