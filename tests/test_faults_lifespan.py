"""Fault injection into the ASGI lifespan, both directions (machinery in ``tests/faults.py``).

AsgiToWsgi runs the app's lifespan: a case is (fault, k, "lifespan", "<loop>/<lifespan mode>"),
the fault at the app's k-th lifespan step (receive startup, answer it, receive shutdown, answer
it). The exchange: a request (which runs startup), ``close()`` (shutdown), a second request
(a fresh, clean lifespan), ``close()``; then nothing may be left (threads, fds).
WsgiToAsgi answers a server's lifespan: a case is (fault, k, "w2a-lifespan", "own-pool"), the
fault at the server's k-th ``receive()`` or ``send()``; then a request on the same adapter.
"""

from __future__ import annotations

import asyncio
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

from bridge import AsgiToWsgi, WsgiToAsgi
from tests.faults import (
    BOUND,
    LIFESPAN_STEPS,
    AsgiReq,
    AsgiServer,
    Baseline,
    Case,
    Hang,
    LifespanScript,
    LifespanServer,
    LogCapture,
    Req,
    ServerError,
    ServerThread,
    bound_lifespan,
    forget_exit_hook,
    params,
    passing,
    run_bounded,
    serve_wsgi,
    unraisable,
    wsgi_app,
)

MODES = ("per-thread/auto", "per-thread/on", "shared/auto", "shared/on")
# A request or close() here takes milliseconds; a startup that hangs costs this much per case.
CALL_BOUND = min(BOUND, 0.5)

# -- the defects today's code has, one entry each: delete an entry once its fix lands ---------
# key: (fault, k, direction, mode); an element may be a tuple of values or ANY.
DEFECTS: dict[tuple[Any, ...], pytest.MarkDecorator] = {}  # every listed defect is fixed

# -- the fault table ---------------------------------------------------------------------------
# AsgiToWsgi: a failed startup makes requests 500 ("on") or means no lifespan ("auto": 200), for
# an Exception and a BaseException alike (SPEC); a startup that never answers is bounded; a
# wrong message type on the lifespan scope raises from send() at once; a failed or silent
# shutdown leaves close() bounded. Later requests are served normally either way.
A2W_FAULTS = ("raise", "cancel", "stall", "wrong_type")
# WsgiToAsgi: a server's receive()/send() failing propagates from the lifespan call; an unknown
# message type is ignored.
W2A_FAULTS = {"recv_raise": "propagates", "recv_wrong": "complete", "send_raise": "propagates"}


def _cases() -> list[Case]:
    cases = [
        Case(fault, k, "lifespan", mode)
        for mode in MODES
        for fault in A2W_FAULTS
        for k in range(1, LIFESPAN_STEPS + 1)
    ]
    counts = _w2a_counts()
    for fault in W2A_FAULTS:
        count = counts[0] if fault.startswith("recv") else counts[1]
        cases += [Case(fault, k, "w2a-lifespan", "own-pool") for k in range(1, count + 1)]
    return cases


def _w2a_counts() -> tuple[int, int]:
    """(receive() calls, send() calls) of a clean WsgiToAsgi lifespan, recorded once."""
    server = run_bounded(lambda: asyncio.run(_w2a_clean()))
    return server.receives, server.sends


async def _w2a_clean() -> LifespanServer:
    server = LifespanServer()
    assert await server.call(WsgiToAsgi(wsgi_app)) is None
    assert server.sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    return server


CASES = _cases()


def _expected_status(case: Case) -> str:
    """The first request's status: what startup's fault makes of it."""
    if case.k > 2:
        return "200"  # the fault is in shutdown
    return "500" if case.mode.endswith("/on") else "200"


def _a2w(case: Case) -> list[str]:
    loop, lifespan = case.mode.split("/")
    app = LifespanScript(case.fault, case.k)
    adapter = AsgiToWsgi(app, loop=loop, lifespan=lifespan)
    server = ServerThread()
    base = Baseline.take()
    wrong: list[str] = []
    try:
        with unraisable() as lost, LogCapture.on("bridge", "asyncio"):
            try:
                first = server.run(
                    lambda: serve_wsgi(adapter, AsgiReq()), "the first request", CALL_BOUND
                )
            except Hang as hang:
                # Its server thread is stuck; can the adapter still be closed (as exit does)?
                try:
                    run_bounded(adapter.close, CALL_BOUND, "close() while startup is stuck")
                except Hang as also:
                    raise Hang(f"{hang}; {also}: interpreter exit would wait forever") from None
                raise
            want = _expected_status(case)
            if not (first.status or "").startswith(want) and case.fault != "stall":
                wrong.append(f"first request: want {want}, got {first.status!r} {first.body!r}")
            if case.fault == "stall" and case.k <= 2 and not first.ended:
                wrong.append(f"first request after a silent startup: {first}")
            server.run(adapter.close, "close() (lifespan shutdown)")
            second = server.run(lambda: serve_wsgi(adapter, AsgiReq()), "the next request")
            if second.status != "200 OK" or second.body != b"ok":
                wrong.append(f"next request: {second.status!r} {second.body!r}")
            server.run(adapter.close, "the second close()")
        wrong += lost
    finally:
        forget_exit_hook(adapter)
        server.stop()
    if case.fault == "wrong_type" and not app.send_errors:
        wrong.append("the lifespan send() took an http.response.start without raising")
    server.thread.join(BOUND)
    return wrong + base.leaks()


def _w2a(case: Case) -> list[str]:
    async def main() -> list[str]:
        base = Baseline.take()
        adapter = WsgiToAsgi(wsgi_app)
        server = LifespanServer(case.fault, case.k)
        error = await server.call(adapter)
        wrong = []
        if W2A_FAULTS[case.fault] == "propagates" and not isinstance(error, ServerError):
            wrong.append(f"want the server's error to propagate, got {error!r}")
        if W2A_FAULTS[case.fault] == "complete" and (error is not None or len(server.sent) != 2):
            wrong.append(f"want both answers, got {server.sent} and {error!r}")
        req = Req("list")
        out = await AsgiServer(req, path="/").call(adapter)
        if out.status != 200 or out.body != req.expected:
            wrong.append(f"next request: {out.error!r} {out.sent}")
        error = await LifespanServer().call(adapter)  # a clean shutdown stops the pool
        if error is not None:
            wrong.append(f"a clean lifespan after the fault failed: {error!r}")
        return wrong + await base.leaks_async()

    return run_bounded(lambda: asyncio.run(main()), what=case.id)


def run_case(case: Case) -> None:
    wrong = _a2w(case) if case.direction == "lifespan" else _w2a(case)
    assert not wrong, "\n".join(wrong)


@pytest.fixture(autouse=True)
def short_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    bound_lifespan(monkeypatch, 0.3)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("case", params(CASES, DEFECTS))
def test_fault(case: Case) -> None:
    run_case(case)


@pytest.mark.timeout(60)
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(passing(CASES, DEFECTS)), min_size=1, max_size=3))
def test_fault_sequences(cases: list[Case]) -> None:
    """Lifespan faults one after another in one process: none leaves anything for the next."""
    for case in cases:
        run_case(case)


def test_grid_size() -> None:
    assert _w2a_counts() == (2, 2)
    assert len(CASES) == 4 * 4 * 4 + 6
