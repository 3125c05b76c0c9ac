"""The ASGI lifespan protocol, driven on one event loop for ``AsgiToWsgi``.

The ASGI spec runs a lifespan per event loop ("in a multi-threaded environment there will be
lifespans for each thread"), so each loop owns one ``Lifespan``: started before the loop's first
request, shut down when the adapter closes or the loop's thread is gone. The app's lifespan task
stays suspended on the loop between the two, waiting for ``lifespan.shutdown``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from .._types import ASGIApp, Message
from ._leftovers import Owned, owner

logger = logging.getLogger("bridge")


class Lifespan:
    """One loop's lifespan: ``startup()`` and ``shutdown()`` run on that loop."""

    def __init__(self, app: ASGIApp, mode: str) -> None:
        self.app = app
        self.mode = mode  # "auto" | "on" | "off"
        self.state: dict[str, Any] = {}
        self.failure: str | None = None  # why startup failed; requests answer 500 meanwhile
        self._inbox: asyncio.Queue[Message] | None = None
        self._answers: asyncio.Queue[Message] | None = None
        self._task: asyncio.Task[None] | None = None
        self.tasks: Owned = []  # tasks the lifespan started (see _leftovers)

    async def startup(self) -> None:
        if self.mode == "off":
            return
        self._inbox, self._answers = asyncio.Queue(), asyncio.Queue()
        scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": self.state,
        }
        self._task = asyncio.get_running_loop().create_task(self._run(scope))
        await self._inbox.put({"type": "lifespan.startup"})
        answer = await self._answers.get()
        if answer["type"] == "lifespan.startup.failed":
            self.failure = answer.get("message") or "the app sent lifespan.startup.failed"
            _log_failure("startup", answer)
        elif answer["type"] == "unsupported":
            self._task = None

    async def _run(self, scope: dict[str, Any]) -> None:
        owner.set(self.tasks)
        inbox, answers = self._inbox, self._answers
        if inbox is None or answers is None:  # pragma: no cover - startup() sets both
            return
        answered = False

        async def send(message: Message) -> None:
            nonlocal answered
            answered = True
            await answers.put(message)

        try:
            await self.app(scope, inbox.get, send)
        except Exception as exc:
            if not answered and self.mode == "auto":
                # Raising on the lifespan scope is how an app says it does not do lifespans
                # (uvicorn reads it the same way).
                logger.debug("bridge: the ASGI app does not support lifespan: %r", exc)
                await answers.put({"type": "unsupported"})
            else:  # logged once, with its traceback, by whoever waits for the answer
                failed = "shutdown" if answered else "startup"
                message = {"type": f"lifespan.{failed}.failed", "message": repr(exc)}
                await answers.put({**message, "exception": exc})
            return
        if not answered:  # returned at once: the app ignores lifespan
            if self.mode == "on":
                await answers.put({"type": "lifespan.startup.failed", "message": "no answer"})
            else:
                await answers.put({"type": "unsupported"})

    async def shutdown(self, grace: float = 10.0) -> None:
        if self._task is None or self._task.done() or self._inbox is None:
            return
        await self._inbox.put({"type": "lifespan.shutdown"})
        try:
            answer = await asyncio.wait_for(self._answers.get(), grace)  # type: ignore[union-attr]
        except asyncio.TimeoutError:
            logger.error("bridge: ASGI lifespan shutdown did not answer within %ss", grace)
            self._task.cancel()
            return
        if answer["type"] == "lifespan.shutdown.failed":
            _log_failure("shutdown", answer)


def _log_failure(phase: str, answer: Message) -> None:
    """One log record per failure: the app's message, and the traceback if it raised."""
    exception = answer.get("exception")
    logger.error(
        "bridge: ASGI lifespan %s failed: %s",
        phase,
        answer.get("message") or f"the app sent lifespan.{phase}.failed",
        exc_info=exception if isinstance(exception, BaseException) else None,
    )
