"""``AsgiToWsgi.stats()``: the shape of ``WsgiToAsgi``'s, counting loops, requests in use,
responses served, 504s and responses the server closed early."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any
from wsgiref.util import FileWrapper

import pytest

from bridge import AsgiToWsgi
from tests.test_asgi_to_wsgi import Started, call, environ
from tests.test_asgi_to_wsgi_pathsend import file_app


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] == "/stuck":
        await asyncio.Event().wait()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    more = scope["path"] == "/stream"
    await send({"type": "http.response.body", "body": b"one", "more_body": more})
    while more:
        await send({"type": "http.response.body", "body": b"more", "more_body": True})


@pytest.mark.timeout(20)
@pytest.mark.parametrize("mode", ["per-thread", "shared"])
def test_stats_count_what_happened(mode: str) -> None:
    adapter = AsgiToWsgi(app, loop=mode, lifespan="off", timeout=2.0)  # ample under load
    try:
        assert adapter.stats()["threads"] == 0  # nothing started before the first request
        assert call(adapter)[1] == [b"one"]
        iterable = adapter(environ(PATH_INFO="/stream"), Started())
        assert next(iter(iterable)).startswith(b"one")
        during = adapter.stats()
        assert (during["threads"], during["busy"], during["waiting"]) == (1, 1, 0)
        iterable.close()  # type: ignore[attr-defined]  # the server's client left
        started, _ = call(adapter, environ(PATH_INFO="/stuck"))
        assert started.calls[0][0].startswith("504")
        stats = adapter.stats()
        assert stats == {
            **stats,
            "threads": 1,
            "busy": 0,
            "served": 1,
            "disconnects": 1,
            "timeout_504": 1,
            "rejected_503": 0,
        }
    finally:
        adapter.close()


@pytest.mark.timeout(20)
def test_a_pathsend_body_closed_by_another_thread_counts_as_served(tmp_path: Path) -> None:
    """waitress sends a file body from its I/O thread and closes it there, where the request's
    loop may not run: the response still counts as served, as one closed on its own thread."""
    (tmp_path / "data").write_bytes(b"x" * 100_000)
    adapter = AsgiToWsgi(file_app(tmp_path / "data"), lifespan="off")
    try:
        wrapped = {"wsgi.file_wrapper": FileWrapper}
        iterable = adapter(environ(**wrapped), Started())
        closer = threading.Thread(target=lambda: (b"".join(iterable), iterable.close()))  # type: ignore[attr-defined]
        closer.start()
        closer.join(10)
        assert adapter.stats()["served"] == 1
        assert b"".join(call(adapter, environ(**wrapped))[1]) == b"x" * 100_000  # its own thread
        assert adapter.stats()["served"] == 2
    finally:
        adapter.close()
