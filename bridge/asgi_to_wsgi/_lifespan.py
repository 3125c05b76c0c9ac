"""The ASGI lifespan protocol, driven on one event loop for ``AsgiToWsgi``.

The ASGI spec runs a lifespan per event loop ("in a multi-threaded environment there will be
lifespans for each thread"), so each loop owns one ``Lifespan``: started before the loop's first
request, shut down when the adapter closes or the loop's thread is gone. The app's lifespan task
stays suspended on the loop between the two, waiting for ``lifespan.shutdown``.

Theory of operation. ``startup()`` and ``shutdown()`` each put one message in the app's inbox and
wait, with a bound, for the one answer the phase allows (``Phase`` and ``_ANSWERS``). Every way the
app's task can go wrong answers the waiter at once: a message the phase does not allow makes
``send()`` raise (as uvicorn's does) and decides the phase; the task ending in any
``BaseException``, or returning, without an answer is read as the ASGI spec and uvicorn read it
(with ``"auto"``, no lifespan support; with ``"on"``, a failure). So no request ever waits on a
lifespan that can no longer answer, and a startup that does not answer within
``STARTUP_TIMEOUT`` is a failure.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from typing import Any

from .._errors import ASGIProtocolError
from .._types import ASGIApp, Message
from ._leftovers import Owned, owner

logger = logging.getLogger("bridge")

# How long the first request on a loop waits for the app's startup before it is a failure (500s
# from then on, the cause logged). Long enough for a database pool that retries its connect at
# boot; it is gunicorn's default worker --timeout, past which a sync worker stuck here is killed
# anyway (hypercorn bounds startup at 60 s; uvicorn waits forever, which hangs every request).
STARTUP_TIMEOUT = 30.0
# How long shutdown waits for the app's answer before the lifespan task is cancelled.
SHUTDOWN_GRACE = 10.0
# How long a lifespan task that will not be answered any more may take to end once cancelled.
CANCEL_GRACE = 1.0


class Phase(enum.Enum):
    IDLE = "idle"  # lifespan.startup not sent yet
    STARTING = "startup"  # lifespan.startup sent, its answer awaited
    STARTED = "started"  # startup complete: the app waits for lifespan.shutdown
    STOPPING = "shutdown"  # lifespan.shutdown sent, its answer awaited
    ENDED = "ended"  # nothing more to say: shut down, failed, unsupported, or the task ended


# The messages the app may send in each phase; any other is refused with ASGIProtocolError.
_ANSWERS = {
    Phase.STARTING: ("lifespan.startup.complete", "lifespan.startup.failed"),
    Phase.STOPPING: ("lifespan.shutdown.complete", "lifespan.shutdown.failed"),
}
# An app that raises these never means "no lifespan here": they are a failure in every mode.
_INTERRUPTS = (KeyboardInterrupt, SystemExit)


class Lifespan:
    """One loop's lifespan: ``startup()`` and ``shutdown()`` run on that loop."""

    def __init__(self, app: ASGIApp, mode: str) -> None:
        self.app = app
        self.mode = mode  # "auto" | "on" | "off"
        self.state: dict[str, Any] = {}
        self.failure: str | None = None  # why startup failed; requests answer 500 meanwhile
        self._phase = Phase.IDLE
        self._inbox: asyncio.Queue[Message] = asyncio.Queue()
        self._answer: asyncio.Future[Message] | None = None
        self._task: asyncio.Task[None] | None = None
        self.tasks: Owned = []  # tasks the lifespan started (see _leftovers)

    async def startup(self) -> None:
        if self.mode == "off" or self._phase is not Phase.IDLE:
            return
        scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": self.state,
        }
        self._task = asyncio.get_running_loop().create_task(self._run(scope))
        answer = await self._ask("lifespan.startup", Phase.STARTING, STARTUP_TIMEOUT)
        if answer is None:
            answer = _failed(
                "startup", f"did not answer lifespan.startup within {STARTUP_TIMEOUT}s"
            )
        if answer["type"] == "lifespan.startup.complete":
            return
        if answer["type"] == "unsupported":
            logger.debug("bridge: the ASGI app does not support lifespan: %s", answer["message"])
        else:
            self.failure = answer.get("message") or "the app sent lifespan.startup.failed"
            _log_failure("startup", answer)
        await self._end_task()

    async def shutdown(self, grace: float | None = None) -> None:
        grace = SHUTDOWN_GRACE if grace is None else grace  # read now: tests may shorten it
        if self._phase is not Phase.STARTED or self._task is None or self._task.done():
            return
        answer = await self._ask("lifespan.shutdown", Phase.STOPPING, grace)
        if answer is None:
            logger.error("bridge: ASGI lifespan shutdown did not answer within %ss", grace)
            await self._end_task()
        elif answer["type"] == "lifespan.shutdown.failed":
            _log_failure("shutdown", answer)

    async def _ask(self, kind: str, phase: Phase, timeout: float) -> Message | None:
        """Send ``kind`` to the app; its answer, or ``None`` if none came within ``timeout``."""
        answer = self._answer = asyncio.get_running_loop().create_future()
        self._phase = phase
        self._inbox.put_nowait({"type": kind})
        await asyncio.wait([answer], timeout=timeout)
        if not answer.done():
            self._phase = Phase.ENDED  # a late answer is refused from now on
            return None
        result: Message = answer.result()
        self._answer = None  # it may hold an exception, its traceback, and through it us
        return result

    def _reply(self, answer: Message) -> None:
        if self._answer is not None and not self._answer.done():
            self._answer.set_result(answer)

    async def _end_task(self) -> None:
        """Cancel the app's lifespan task, which nobody answers any more, and let it end."""
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task], timeout=CANCEL_GRACE)

    # -- the app's side ---------------------------------------------------------------------------

    async def _run(self, scope: dict[str, Any]) -> None:
        owner.set(self.tasks)
        # Every BaseException is caught here, as uvicorn's lifespan does: re-raised from a task,
        # KeyboardInterrupt and SystemExit would stop the loop itself (the shared loop's thread,
        # or a server thread in the middle of a request), and no request could be answered.
        try:
            await self.app(scope, self._inbox.get, self._send)
        except BaseException as exc:
            self._ended(exc)
        else:
            self._ended(None)

    async def _send(self, message: Message) -> None:
        kind = message.get("type") if isinstance(message, dict) else message
        phase = self._phase
        if kind in _ANSWERS.get(phase, ()):
            self._phase = Phase.STARTED if kind == "lifespan.startup.complete" else Phase.ENDED
            self._reply(message)
            return
        error = ASGIProtocolError(_refusal(kind, phase))
        if phase in _ANSWERS:  # whoever waits for the answer is told now, not when the app ends
            self._phase = Phase.ENDED
            if phase is Phase.STARTING and self.mode == "auto":
                self._reply({"type": "unsupported", "message": str(error)})
            else:
                self._reply(_failed(phase.value, str(error)))
        # Yield before raising: an app that catches the error and sends again in a loop would
        # otherwise never let the loop run, and the cancel that ends it could never land.
        await asyncio.sleep(0)
        raise error

    def _ended(self, exc: BaseException | None) -> None:
        """The app's lifespan task is over: answer whoever still waits for it."""
        phase, self._phase = self._phase, Phase.ENDED
        if phase is Phase.STARTING:
            if self.mode == "auto" and not isinstance(exc, _INTERRUPTS):
                # Raising on the lifespan scope (or returning at once) is how an app says it does
                # not do lifespans (uvicorn reads it the same way).
                self._reply({"type": "unsupported", "message": repr(exc) if exc else "returned"})
            elif exc is None:
                self._reply(_failed("startup", "returned without answering lifespan.startup"))
            else:  # logged once, with its traceback, by the waiter
                self._reply(_failed("startup", repr(exc), exc))
        elif phase is Phase.STOPPING:
            # Returning without an answer is taken as done, as uvicorn does.
            done = {"type": "lifespan.shutdown.complete"}
            self._reply(done if exc is None else _failed("shutdown", repr(exc), exc))
        elif phase is Phase.STARTED and exc is not None:
            logger.error("bridge: the ASGI lifespan task raised after its startup", exc_info=exc)


def _refusal(kind: object, phase: Phase) -> str:
    said = f"the ASGI app sent {kind!r} on the lifespan scope"
    if not isinstance(kind, str) or not kind.startswith("lifespan."):
        return f"{said}: the lifespan send() accepts only lifespan.* messages"
    expected = _ANSWERS.get(phase)
    if expected is None:
        return f"{said} while nothing was asked (the lifespan is {phase.value})"
    return f"{said} in answer to lifespan.{phase.value}: expected {' or '.join(expected)}"


def _failed(phase: str, why: str, exc: BaseException | None = None) -> Message:
    return {"type": f"lifespan.{phase}.failed", "message": why, "exception": exc}


def _log_failure(phase: str, answer: Message) -> None:
    """One log record per failure: the app's message, and the traceback if it raised."""
    exception = answer.get("exception")
    logger.error(
        "bridge: ASGI lifespan %s failed: %s",
        phase,
        answer.get("message") or f"the app sent lifespan.{phase}.failed",
        exc_info=exception if isinstance(exception, BaseException) else None,
    )
