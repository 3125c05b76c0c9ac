"""Fault injection, WSGI -> ASGI: a fake ASGI server drives ``WsgiToAsgi`` around a scripted WSGI
app, and one fault is injected at step k (see ``tests/faults.py`` for the machinery).

A case is (fault, k, "w2a", shape). Shapes: ``stream`` (a body in two messages, a generator of
three chunks), ``list`` (the common request: one body message, a list body), ``write`` (a GET
answered through ``write()``). Server faults hit the k-th ``receive()`` or ``send()`` of the
clean exchange, for every k it reaches; app faults hit the app's own steps.
"""

from __future__ import annotations

import asyncio
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

from bridge import WSGIProtocolError, WsgiToAsgi
from tests.faults import (
    W2A_SHAPES,
    AppError,
    AsgiOutcome,
    AsgiServer,
    Baseline,
    Case,
    DaemonExecutor,
    LogCapture,
    LoopWatch,
    Req,
    ServerError,
    loop_leaks,
    params,
    passing,
    run_bounded,
)

# -- the defects today's code has, one entry each: delete an entry once its fix lands ---------
# key: (fault, k, direction, shape); an element may be a tuple of values or ANY.
DEFECTS: dict[tuple[Any, ...], pytest.MarkDecorator] = {}  # every listed defect is fixed

# -- the fault table: what SPEC.md says each fault must end in ---------------------------------
# Outcomes: complete (a whole 200), propagates (the fault's own exception leaves the ASGI call),
# protocol (a WSGIProtocolError), client_gone (returns quietly or raises an OSError subclass,
# never a protocol error), cancelled (CancelledError, the server's own cancel), ends (any end
# but a protocol error or a truncated response that looks whole), not_run (the app never ran).
SERVER_FAULTS = {  # site "recv"/"send": k walks every receive()/send() the clean exchange makes
    "recv_raise": "propagates",
    "recv_disconnect": "client_gone",
    "recv_cancelled": "ends",
    "recv_nosuspend": "complete",
    "recv_task_cancel": "cancelled",
    "send_oserror": "client_gone",
    "send_error": "propagates",
    "send_block": "cancelled",
    "send_task_cancel": "cancelled",
}
ALL_SHAPES = tuple(W2A_SHAPES)
APP_FAULTS = {  # fault: (shapes, the k it takes, outcome)
    "raise_before_start": (ALL_SHAPES, (0,), "propagates"),
    "bad_status": (("stream",), (0,), "protocol"),
    "bad_header": (("stream",), (0,), "protocol"),
    "start_twice": (("stream",), (0,), "protocol"),
    "no_start": (("stream",), (0,), "protocol"),
    "raise_in_iter": (("stream",), (0, 1, 2, 3), "propagates"),  # at the k-th next()
    "str_chunk": (("stream",), (0, 1, 2), "protocol"),
    "close_raises": (ALL_SHAPES, (0,), "complete"),
    "overlong": (("stream",), (0, 1, 2), "complete"),  # Content-Length ends inside chunk k+1
    "pathsend_tmp": (("list",), (0,), "complete"),  # a temp file deleted on close, by pathsend
    # close() takes 50 ms: k=0 a clean response, k=1 the client leaves while it streams,
    # k=2 send() fails on the second chunk. The call must return after close() did.
    "slow_close": (("stream",), (0, 1, 2), "complete|client_gone|client_gone"),
    "queued_disconnect": (("list",), (0,), "not_run"),  # the client leaves while it waits
    "queued_cancel": (("list",), (0,), "not_run"),  # for a thread: the app must not run
}


def _clean_steps(shape: str) -> tuple[int, int]:
    """(receive() calls, send() calls) of the clean exchange, recorded once."""

    async def record() -> tuple[int, int]:
        pool = DaemonExecutor(2)
        try:
            server = AsgiServer(Req(shape))
            out = await server.call(WsgiToAsgi(_app(), executor=pool))
            assert out.error is None and out.complete, out
            return out.receives, out.sends
        finally:
            pool.shutdown()

    counts = {run_bounded(lambda: asyncio.run(record())) for _ in range(3)}
    assert len(counts) == 1, f"the clean {shape} exchange is not deterministic: {counts}"
    return counts.pop()


def _app() -> Any:
    from tests.faults import wsgi_app

    return wsgi_app


STEPS = {shape: _clean_steps(shape) for shape in ALL_SHAPES}


def _cases() -> list[Case]:
    cases = []
    for shape, (receives, sends) in STEPS.items():
        for fault in SERVER_FAULTS:
            count = receives if fault.startswith("recv") else sends
            cases += [Case(fault, k, "w2a", shape) for k in range(1, count + 1)]
    for fault, (shapes, ks, _) in APP_FAULTS.items():
        cases += [Case(fault, k, "w2a", shape) for shape in shapes for k in ks]
    return cases


CASES = _cases()


def expected(case: Case) -> str:
    if case.fault in SERVER_FAULTS:
        outcome = SERVER_FAULTS[case.fault]
        body_messages = len(W2A_SHAPES[case.mode][0]) or 1
        if case.fault == "recv_raise" and case.k > body_messages:
            return "ends"  # watching for a disconnect: the response may stand or fail
        return outcome
    outcome = APP_FAULTS[case.fault][2]
    return outcome.split("|")[case.k] if "|" in outcome else outcome


def _server_fault(case: Case) -> tuple[str | None, int]:
    """The server-side fault of a case (app faults other than slow_close have none)."""
    if case.fault in SERVER_FAULTS:
        return case.fault, case.k
    if case.fault == "slow_close" and case.k == 1:
        return "recv_disconnect", STEPS[case.mode][0]  # the watch for a disconnect
    if case.fault == "slow_close" and case.k == 2:
        return "send_oserror", 3  # start, chunk 1, then chunk 2 fails
    if case.fault == "queued_disconnect":
        return "recv_disconnect", 2
    return None, 0


def _before_headers(case: Case) -> bool:
    """True when the fault strikes before any body (so no http.response.start may go out)."""
    if case.fault in ("raise_in_iter", "str_chunk"):
        return case.k == 0
    return case.fault in ("raise_before_start", "bad_status", "bad_header", "start_twice")


def check(case: Case, out: AsgiOutcome, req: Req, logs: LogCapture) -> list[str]:
    """What is wrong with the outcome of ``case``, per SPEC.md (empty: nothing)."""
    want = expected(case)
    error, record = out.error, req.record
    wrong = []
    if out.spun:
        wrong.append(f"busy loop: receive() answered {out.receives} times without suspending")
    pathsend = bool(out.sent) and out.sent[-1]["type"] == "http.response.pathsend"
    if out.complete and not pathsend and out.body != req.expected:
        wrong.append(f"a truncated response that looks whole: {out.body!r}")
    if want == "complete":
        if error is not None or not out.complete or out.status != 200:
            wrong.append(f"want a whole 200; got error={error!r}, sent={_short(out)}")
    elif want == "propagates":
        injected = ServerError if case.fault in SERVER_FAULTS else AppError
        if not isinstance(error, injected):
            wrong.append(f"want the {injected.__name__} to propagate, got {error!r}")
        if out.complete:
            wrong.append("the response completed although the app failed")
    elif want == "protocol":
        if not isinstance(error, WSGIProtocolError):
            wrong.append(f"want WSGIProtocolError, got {error!r}")
    elif want == "client_gone":
        if error is not None and not isinstance(error, OSError):
            wrong.append(f"want a quiet end or an OSError subclass, got {error!r}")
    elif want == "cancelled":
        if not isinstance(error, asyncio.CancelledError):
            wrong.append(f"want the server's CancelledError, got {error!r}")
    elif want == "ends":
        if isinstance(error, WSGIProtocolError):
            wrong.append(f"a protocol error for a server fault: {error!r}")
    elif want == "not_run" and record.ran:
        wrong.append("the app ran for a client that had left while it waited for a thread")
    if _before_headers(case) and out.started:
        wrong.append("http.response.start went out before the app failed")
    server_fault, k = _server_fault(case)
    if server_fault == "recv_disconnect" and k == 1 and record.ran:
        wrong.append("the app ran for a client that left before its request arrived")
    mid_body = len(W2A_SHAPES[case.mode][0]) > 1 and 2 <= k <= len(W2A_SHAPES[case.mode][0])
    read_fails = OSError if server_fault == "recv_disconnect" else Exception
    mid_body_fault = server_fault in ("recv_disconnect", "recv_raise") and mid_body
    if mid_body_fault and record.ran and not isinstance(record.read_error, read_fails):
        wrong.append(f"wsgi.input read ended with {record.read!r}, not an error, mid-body")
    if case.fault == "close_raises" and not logs.errors():
        wrong.append("close() raised and nothing was logged")
    if case.fault == "slow_close" and not out.finished_at_return:
        wrong.append("the ASGI call returned while the WSGI thread was still in close()")
    if case.fault == "pathsend_tmp" and out.pathsend_ok is not True:
        wrong.append(f"pathsend named a file that is gone (close() ran first): {out.sent}")
    if case.fault == "overlong" and record.yielded > case.k + 1:
        wrong.append(f"the iteration went on past Content-Length ({record.yielded} chunks)")
    return wrong


def _short(out: AsgiOutcome) -> str:
    return str([(m["type"], m.get("status", m.get("body"))) for m in out.sent])[:300]


async def _ok(adapter: Any) -> list[str]:
    """The next ordinary request on the same adapter: a whole 200."""
    req = Req("list")
    try:
        out = await AsgiServer(req, path="/").call(adapter)
    except AssertionError as exc:
        return [f"next request: {exc}"]
    if out.error is not None or out.status != 200 or out.body != req.expected:
        return [f"next request failed: error={out.error!r}, sent={_short(out)}"]
    return []


async def _queued(
    adapter: Any, case: Case, server: AsgiServer, pool: DaemonExecutor
) -> AsgiOutcome:
    """The pool's one thread is busy; ``case``'s request waits for it while its client leaves."""
    blocker = AsgiServer(Req("write"), path="/block")
    blocked = asyncio.ensure_future(blocker.call(adapter))
    while pool.busy == 0:
        await asyncio.sleep(0.005)
    waiting = asyncio.ensure_future(server.call(adapter))
    while server.receives == 0:
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.02)  # it is in the pool's queue now
    if case.fault == "queued_cancel" and server.task is not None:
        server.task.cancel()
    await asyncio.sleep(0.05)  # time for a correct adapter to see the client leave
    blocker.req.gate.release()
    out = await waiting
    await blocked
    return out


async def exchange(case: Case, adapter: Any, pool: DaemonExecutor, watch: LoopWatch) -> list[str]:
    """One faulty request on a warmed-up adapter and the checks (b), (c), (d)."""
    base = Baseline.take()
    req = Req(case.mode, case.fault if case.fault not in SERVER_FAULTS else None, case.k)
    server_fault, k = _server_fault(case)
    server = AsgiServer(req, server_fault, k)
    with LogCapture.on("bridge") as logs:
        if case.fault.startswith("queued_"):
            out = await _queued(adapter, case, server, pool)
        else:
            out = await server.call(adapter)  # at return: close() has returned (record.finished)
        # The thread's own record is read once it is done (or the settle ran out).
        wrong = await base.leaks_async(lambda: [] if pool.idle() else ["a WSGI thread is busy"])
        wrong = check(case, out, req, logs) + wrong
        if req.record.returned and not req.record.close_called:
            wrong.append("the iterable's close() was never called")
        wrong += await loop_leaks(watch)
    return wrong


def run_cases(cases: list[Case]) -> None:
    """Run ``cases`` one after another on one adapter, then an ordinary request."""

    async def main() -> list[str]:
        watch = LoopWatch()
        pool = DaemonExecutor(1 if any(c.fault.startswith("queued_") for c in cases) else 2)
        try:
            adapter = WsgiToAsgi(_app(), threads=len(pool.threads), executor=pool)
            wrong = await _ok(adapter)  # warm-up: the pool's threads exist from here on
            for case in cases:
                wrong += [f"{case.id}: {w}" for w in await exchange(case, adapter, pool, watch)]
            return wrong + await _ok(adapter)
        finally:
            pool.shutdown()

    wrong = run_bounded(lambda: asyncio.run(main()), what=", ".join(c.id for c in cases))
    assert not wrong, "\n".join(wrong)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("case", params(CASES, DEFECTS))
def test_fault(case: Case) -> None:
    run_cases([case])


@pytest.mark.timeout(60)
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(passing(CASES, DEFECTS)), min_size=2, max_size=4))
def test_fault_sequences_on_one_adapter(cases: list[Case]) -> None:
    """Faults that each pass alone, back to back on one adapter: no state leaks between them."""
    if sum(c.fault.startswith("queued_") for c in cases) and len(cases) > 1:
        cases = [c for c in cases if not c.fault.startswith("queued_")] or cases[:1]
    run_cases(cases)


def test_grid_size() -> None:
    """The grid covers every step the clean exchanges reach (counted, not assumed)."""
    assert STEPS == {"stream": (3, 5), "list": (1, 2), "write": (2, 4)}, STEPS
    assert len(CASES) >= 90
