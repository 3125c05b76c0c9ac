"""Drive an ASGI application message by message, as a server would, with every wait bounded."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
WAIT = 5.0  # seconds any single expected message may take


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def http_scope(
    path: str = "/",
    method: str = "GET",
    headers: list[tuple[bytes, bytes]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("utf-8"),
        "query_string": b"",
        "root_path": "",
        "headers": headers if headers is not None else [(b"host", b"testserver")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "extensions": {},
    }
    scope.update(extra)
    return scope


class Conversation:
    """One ASGI call: push messages the app will ``receive()``, pop those it ``send()``s."""

    def __init__(
        self,
        app: Callable[..., Awaitable[None]],
        scope: dict[str, Any],
        send: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
    ) -> None:
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.receive_calls = 0
        self._send_hook = send
        self.task = asyncio.get_running_loop().create_task(app(scope, self._receive, self._send))

    async def _receive(self) -> dict[str, Any]:
        self.receive_calls += 1
        return await self.inbox.get()

    async def _send(self, message: dict[str, Any]) -> None:
        if self._send_hook is not None:
            await self._send_hook(message)
        await self.outbox.put(message)

    def push(self, message: dict[str, Any]) -> None:
        self.inbox.put_nowait(message)

    def push_body(self, body: bytes = b"", more: bool = False) -> None:
        self.push({"type": "http.request", "body": body, "more_body": more})

    async def next(self, timeout: float = WAIT) -> dict[str, Any]:
        get = asyncio.ensure_future(self.outbox.get())
        done, _ = await asyncio.wait(
            {get, self.task}, timeout=timeout, return_when="FIRST_COMPLETED"
        )
        if get in done:
            return get.result()
        get.cancel()
        if self.task in done:
            self.task.result()  # raise the app's error
            raise AssertionError("the app returned without sending another message")
        raise AssertionError(f"no message from the app within {timeout}s")

    async def finish(self, timeout: float = WAIT) -> None:
        """Wait for the ASGI call to return; raise its error."""
        await asyncio.wait_for(asyncio.shield(self.task), timeout)

    def sent_so_far(self) -> list[dict[str, Any]]:
        out = []
        while not self.outbox.empty():
            out.append(self.outbox.get_nowait())
        return out


class Result:
    def __init__(self, messages: list[dict[str, Any]]) -> None:
        self.messages = messages
        start = messages[0]
        assert start["type"] == "http.response.start", messages
        self.status: int = start["status"]
        self.headers: list[tuple[bytes, bytes]] = list(start.get("headers", []))
        self.body = b"".join(m.get("body", b"") for m in messages[1:])

    def header(self, name: bytes) -> bytes | None:
        return next((v for k, v in self.headers if k == name), None)


async def request(
    app: Callable[..., Awaitable[None]],
    path: str = "/",
    method: str = "GET",
    body: bytes = b"",
    chunks: list[bytes] | None = None,
    **scope_extra: Any,
) -> Result:
    """One whole request; the messages up to the one with ``more_body`` false."""
    conv = Conversation(app, http_scope(path, method, **scope_extra))
    if chunks is None:
        conv.push_body(body)
    else:
        for i, chunk in enumerate(chunks):
            conv.push_body(chunk, more=i < len(chunks) - 1)
    messages = [await conv.next()]
    while True:
        message = await conv.next()
        messages.append(message)
        if message["type"] != "http.response.body" or not message.get("more_body", False):
            break
    await conv.finish()
    return Result(messages)
