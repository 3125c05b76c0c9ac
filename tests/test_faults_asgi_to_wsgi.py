"""Fault injection, ASGI -> WSGI: a fake WSGI server thread drives ``AsgiToWsgi`` around a
scripted ASGI app, in both loop modes, and one fault is injected at step k (see
``tests/faults.py`` for the machinery).

A case is (fault, k, "a2w", loop mode). App faults hit the app's k-th step (receive the body,
start a watcher, send the start, three chunks, the end, background work); server faults hit the
k-th ``wsgi.input`` read, ``start_response``, or the point after the server took k chunks.
"""

from __future__ import annotations

import gc
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

import bridge.asgi_to_wsgi._adapter as a2w_adapter
from bridge import ASGIMiddleware, ASGIProtocolError, AsgiToWsgi
from tests.faults import (
    A2W_CHUNK,
    ANY,
    AppError,
    AsgiReq,
    Baseline,
    Case,
    LogCapture,
    ServerError,
    ServerThread,
    WsgiOutcome,
    asgi_app,
    forget_exit_hook,
    params,
    passing,
    pending_tasks,
    serve_wsgi,
    unraisable,
)

MODES = ("per-thread", "shared")

# -- the defects today's code has, one entry each: delete an entry once its fix lands ---------
# key: (fault, k, direction, mode); an element may be a tuple of values or ANY.
DEFECTS: dict[tuple[Any, ...], pytest.MarkDecorator] = {}  # every listed defect is fixed

# -- the fault table: what SPEC.md says each fault must end in ---------------------------------
# Outcomes: call_error (the app's exception leaves app(environ, start_response): the server
# answers 500), iter_error (it leaves next(): the server drops the connection), complete (a
# whole 200 and the background work done), logged (complete, and the error logged), timeout
# (504, the app cancelled), server_error (the server's own exception comes back to it),
# client_gone (a quiet end or an OSError subclass, never ASGIProtocolError), closed_early
# (close() is quiet, the app's watcher saw http.disconnect, its send() raised an OSError
# subclass, its task had ended when close() returned).
APP_FAULTS = {  # at the app's k-th step; k walks every step the clean exchange reaches
    "raise": lambda k: "call_error" if k <= 5 else "iter_error" if k <= 8 else "logged",
    "cancel": lambda k: "call_error" if k <= 5 else "iter_error" if k <= 8 else "logged",
    "stall": lambda k: "timeout" if k <= 5 else "complete",  # k 6-8: bounded by nothing (SPEC)
    "recv_timeout": lambda k: "complete",  # at the k-th body receive()
}
SERVER_FAULTS = {  # site: which count of the clean exchange k walks
    "start_response_raises": ("start_response", "server_error"),
    "input_oserror": ("reads", "client_gone"),
    "input_short": ("reads", "client_gone"),
    "close_early": ("chunks", "closed_early"),  # k = chunks the server took, 0 to all
    "close_thread": ("chunks", "closed_early"),  # ... and closes from another thread
    "close_pending": ("pending", "closed_early"),  # while a 300 KiB send() waits for room
    "adapter_close": ("chunks", "complete"),  # app.close() from another thread mid-stream
}


def _clean_counts(mode: str) -> dict[str, int]:
    """The steps a clean exchange reaches, counted once per mode with a recording server."""
    server = ServerThread()
    adapter = AsgiToWsgi(asgi_app, loop=mode, lifespan="off", chunk_size=A2W_CHUNK)
    try:
        req = AsgiReq()
        out = server.run(lambda: serve_wsgi(adapter, req), "the clean exchange")
        assert out.ended and out.body == req.expected, out
        return {
            "app": req.record.steps,
            "reads": out.reads,
            "chunks": len(out.chunks),
            "start_response": 1,
            "pending": 1,
        }
    finally:
        server.run(adapter.close, "close")
        server.stop()


COUNTS = {mode: _clean_counts(mode) for mode in MODES}


def _cases() -> list[Case]:
    cases = []
    for mode in MODES:
        counts = COUNTS[mode]
        for fault in APP_FAULTS:
            ks = range(1, counts["app"] + 1)
            if fault == "stall":  # mid-stream stalls are bounded by nothing SPEC names
                ks = [k for k in ks if k <= 5 or (k == 9 and mode == "per-thread")]
            if fault == "recv_timeout":
                ks = range(1, counts["reads"] + 1)
            cases += [Case(fault, k, "a2w", mode) for k in ks]
        for fault, (site, _) in SERVER_FAULTS.items():
            if fault == "close_pending" and mode == "per-thread":
                continue  # its loop runs only inside next(), which takes every chunk queued
            first = 0 if site == "chunks" else 1
            cases += [Case(fault, k, "a2w", mode) for k in range(first, counts[site] + 1)]
    return cases


CASES = _cases()


def expected(case: Case) -> str:
    if case.fault in APP_FAULTS:
        return APP_FAULTS[case.fault](case.k)
    return SERVER_FAULTS[case.fault][1]


def make_adapter(case: Case | None, mode: str) -> Any:
    if case is not None and case.fault == "stall" and case.k == 9:
        # After the last chunk only a2wsgi's wait_time bounds the wait (SPEC, aliases).
        return ASGIMiddleware(asgi_app, wait_time=0.3)
    timeout = 0.3 if case is not None and case.fault == "stall" else None
    return AsgiToWsgi(asgi_app, loop=mode, lifespan="off", chunk_size=A2W_CHUNK, timeout=timeout)


def _serve_options(case: Case) -> dict[str, Any]:
    if case.fault == "start_response_raises":
        return {"start_response_raises": True}
    if case.fault == "close_early":
        return {"close_after": case.k}
    if case.fault == "close_pending":
        return {"close_after": case.k, "close_while_sending": True}
    if case.fault == "close_thread":
        return {"close_after": case.k, "close_from_thread": True}
    if case.fault == "adapter_close":
        return {"adapter_close_after": case.k}
    return {}


def check(case: Case, out: WsgiOutcome, req: AsgiReq, logs: list[Any]) -> list[str]:
    """What is wrong with the outcome of ``case``, per SPEC.md (empty: nothing)."""
    want = expected(case)
    record = req.record
    errors = (out.call_error, out.iter_error, out.close_error)
    wrong = [
        f"a protocol error for a fault that is not one: {e!r}"
        for e in errors
        if isinstance(e, ASGIProtocolError)
    ]
    if out.ended and (out.status or "").startswith("200") and out.body != req.expected:
        wrong.append(f"a truncated response that looks whole: {out.body[:80]!r}")
    injected = AppError if case.fault == "raise" else Exception
    if want in ("complete", "logged"):
        if any(errors) or not out.ended or out.body != req.expected:
            wrong.append(f"want a whole 200, got {_short(out)}")
        if not record.background_done and want == "complete" and case.fault != "stall":
            wrong.append("the background work had not run when the iteration ended")
        if want == "logged" and not [r for r in logs if r.levelno >= 40 and r.name == "bridge"]:
            wrong.append("the app raised after its response and nothing was logged")
    elif want == "call_error":
        if not isinstance(out.call_error, injected) or out.status is not None:
            wrong.append(f"want the {injected.__name__} from the WSGI call, got {_short(out)}")
    elif want == "iter_error":
        if not isinstance(out.iter_error, injected) or out.call_error is not None:
            wrong.append(f"want the {injected.__name__} from next(), got {_short(out)}")
    elif want == "timeout":
        if not (out.status or "").startswith("504") or not out.ended or any(errors):
            wrong.append(f"want a 504 within the timeout, got {_short(out)}")
    elif want == "server_error":
        if not isinstance(out.call_error, ServerError):
            wrong.append(f"want the server's own error back, got {_short(out)}")
    elif want == "client_gone":
        if any(e is not None and not isinstance(e, OSError) for e in errors):
            wrong.append(f"want a quiet end or an OSError subclass, got {_short(out)}")
    elif want == "closed_early":
        if out.close_error is not None:
            wrong.append(f"close() raised {out.close_error!r}")
        if record.watcher_saw != "http.disconnect":
            wrong.append(f"the app's watcher saw {record.watcher_saw!r}, not http.disconnect")
        if case.fault == "close_pending" and record.events[:1] != ["watcher saw http.disconnect"]:
            wrong.append(f"the pending send() raised before receive() said so: {record.events}")
        if record.send_error is not None and not isinstance(record.send_error, OSError):
            wrong.append(f"send() after close raised {record.send_error!r}, not an OSError")
    if case.fault in ("close_early", "close_thread", "close_pending") and not record.finished:
        wrong.append("the app's task was still running when close() returned")
    return wrong


def _short(out: WsgiOutcome) -> str:
    return (
        f"status={out.status!r} body={out.body[:40]!r} ended={out.ended} "
        f"call_error={out.call_error!r} iter_error={out.iter_error!r} "
        f"close_error={out.close_error!r}"
    )


def _ok(server: ServerThread, adapter: Any) -> list[str]:
    """The next ordinary request on the same adapter, from the same server thread."""
    req = AsgiReq()
    out = server.run(lambda: serve_wsgi(adapter, req), "the next request")
    if out.status != "200 OK" or not out.ended or out.body != req.expected:
        return [f"next request failed: {_short(out)}"]
    return []


def exchange(case: Case, server: ServerThread, adapter: Any, logs: LogCapture) -> list[str]:
    """One faulty request on a warmed-up adapter and the checks (b), (c)."""
    base = Baseline.take()
    seen = len(logs.records)
    req = AsgiReq(case.fault, case.k, "big" if case.fault == "close_pending" else "small")
    options = _serve_options(case)
    out = server.run(lambda: serve_wsgi(adapter, req, **options), case.id)

    def tasks_and_unretrieved() -> list[str]:
        gc.collect()  # a task's exception nobody retrieved is logged when it is collected
        found = [f"task left pending: {t}" for t in pending_tasks(req.record.loop)]
        found += [
            f"asyncio: {r.getMessage()[:120]}"
            for r in logs.records[seen:]
            if r.name == "asyncio" and r.levelno >= 40
        ]
        return found

    leaks = base.leaks(tasks_and_unretrieved)
    return check(case, out, req, logs.records[seen:]) + leaks


def run_cases(cases: list[Case], mode: str) -> None:
    """``cases`` one after another on one adapter and one server thread, then an ordinary
    request; at the end the adapter is closed."""
    server = ServerThread()
    adapter = make_adapter(cases[0] if len(cases) == 1 else None, mode)
    try:
        with unraisable() as lost, LogCapture.on("bridge", "asyncio") as logs:
            wrong = _ok(server, adapter)  # warm-up: the loop (and its thread) exist from here
            for case in cases:
                wrong += [f"{case.id}: {w}" for w in exchange(case, server, adapter, logs)]
            wrong += _ok(server, adapter)
            server.run(adapter.close, "adapter.close()")
    finally:
        forget_exit_hook(adapter)
        server.stop()
    wrong += lost
    assert not wrong, "\n".join(wrong)


@pytest.fixture(autouse=True)
def short_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    """An app still running after the server closed its response is cancelled sooner."""
    monkeypatch.setattr(a2w_adapter, "DISCONNECT_GRACE", 0.5)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("case", params(CASES, DEFECTS))
def test_fault(case: Case) -> None:
    run_cases([case], case.mode)


# stall: an adapter of its own. adapter_close: close() makes the next request start a new loop,
# and the per-case descriptor baseline does not follow that yet (3 descriptors seen after it in a
# sequence; not yet explained, see the closing note).
SEQUENCE_CASES = [c for c in passing(CASES, DEFECTS) if c.fault not in ("stall", "adapter_close")]
SEQUENCES = st.sampled_from(MODES).flatmap(
    lambda mode: st.lists(
        st.sampled_from([c for c in SEQUENCE_CASES if c.mode == mode]), min_size=2, max_size=4
    )
)


@pytest.mark.timeout(60)
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(SEQUENCES)
def test_fault_sequences_on_one_adapter(cases: list[Case]) -> None:
    """Faults that each pass alone, back to back on one adapter and one server thread."""
    run_cases(cases, cases[0].mode)


def test_grid_size() -> None:
    """The grid covers every step the clean exchanges reach (counted, not assumed)."""
    for counts in COUNTS.values():
        assert counts == {"app": 9, "reads": 2, "chunks": 3, "start_response": 1, "pending": 1}
    assert len(CASES) >= 80
    assert ANY
