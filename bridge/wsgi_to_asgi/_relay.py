"""The loop side of one ``WsgiToAsgi`` request: the two hand-offs and the task that reads
``receive()`` (see the theory of operation in ``wsgi_to_asgi``)."""

from __future__ import annotations

import asyncio
import io
import logging
from typing import Any

from .._errors import ClientDisconnected, RequestBodyTooLarge
from .._streams import READ_AHEAD, RESPONSE_BUFFER, ToLoop, ToThread, input_stream
from .._types import Message, Receive, Send
from ._response import Item

logger = logging.getLogger("bridge")


async def reply_too_large(send: Send, label: str, limit: int) -> None:
    logger.warning("bridge: 413 for %s: request body over max_body_size=%d", label, limit)
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
                await reply_too_large(self._send, self._label, self._limit or 0)
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
