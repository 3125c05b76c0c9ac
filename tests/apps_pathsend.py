"""A FastAPI app serving a file with ``FileResponse``, for ``AsgiToWsgi`` on real WSGI servers
(``test_asgi_to_wsgi_pathsend_servers.py``) and for ``bench/pathsend.py``.

``BRIDGE_TEST_FILE`` names the file. ``count_sendfile()``, called in the server process
(gunicorn's ``post_worker_init`` hook, ``tests/gunicorn_count_sendfile.py``), wraps
``os.sendfile`` so ``/sendfile-calls`` can say how many calls and bytes went through it: the
proof that the body left by ``sendfile()`` and not through Python's buffers.
"""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any

from fastapi import FastAPI
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from bridge import AsgiToWsgi

FILE = os.environ.get("BRIDGE_TEST_FILE", "")
SENDFILE = {"calls": 0, "bytes": 0}
_lock = threading.Lock()
background_runs = 0

api = FastAPI()


@api.api_route("/file", methods=["GET", "HEAD"])
async def file() -> FileResponse:
    return FileResponse(FILE, media_type="application/octet-stream")


@api.get("/file-then-background")
async def file_then_background() -> FileResponse:
    async def ran() -> None:
        global background_runs
        await asyncio.sleep(0)  # the app's task is still running when the response starts
        with _lock:
            background_runs += 1

    return FileResponse(FILE, background=BackgroundTask(ran))


@api.get("/sendfile-calls")
async def sendfile_calls() -> dict[str, Any]:
    with _lock:
        return {**SENDFILE, "background_runs": background_runs}


def count_sendfile() -> None:
    """Count the calls to ``os.sendfile`` in this process (``socket.sendfile`` makes them)."""
    real = os.sendfile

    def counting(out_fd: int, in_fd: int, offset: Any, count: int, *args: Any) -> int:
        sent = real(out_fd, in_fd, offset, count, *args)
        with _lock:
            SENDFILE["calls"] += 1
            SENDFILE["bytes"] += sent
        return sent

    os.sendfile = counting


app = AsgiToWsgi(api)


async def _without_pathsend(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        scope = {**scope, "extensions": {}}
    await api(scope, receive, send)


streaming_app = AsgiToWsgi(_without_pathsend)  # for the bench: bridge, the file through its loop


def a2wsgi_app() -> Any:
    """The same app through a2wsgi (for the bench): it streams the file through the loop."""
    from a2wsgi import ASGIMiddleware

    return ASGIMiddleware(api)
