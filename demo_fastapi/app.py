"""A small FastAPI app that shows what the bridge carries: lifespan state, streams both ways,
background tasks, and concurrency on per-thread event loops."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import BackgroundTasks, FastAPI, Request
from fastapi.responses import HTMLResponse, StreamingResponse

# Set by the tests: the lifespan shutdown leaves a line here, proving it ran.
SHUTDOWN_MARKER = os.environ.get("BRIDGE_DEMO_SHUTDOWN_MARKER")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    # Per-thread mode runs this once on each server thread's loop, so anything loop-bound made
    # here (a DB pool, an httpx.AsyncClient) is usable by that loop's requests.
    yield {"started_at": time.time(), "loop_id": id(asyncio.get_running_loop())}
    if SHUTDOWN_MARKER:
        with Path(SHUTDOWN_MARKER).open("a") as marker:
            marker.write(f"shutdown {os.getpid()}\n")


app = FastAPI(title="bridge demo", lifespan=lifespan)
finished_tasks: list[str] = []

INDEX = """<!doctype html>
<title>bridge demo</title>
<h1>FastAPI, served by a WSGI server through bridge.AsgiToWsgi</h1>
<ul>
  <li><a href="hello/café">hello/café</a>: a path parameter</li>
  <li><a href="stream">stream</a>: a StreamingResponse, one line every 0.2 s</li>
  <li><a href="state">state</a>: what this thread's lifespan put in request.state</li>
  <li><a href="sleep">sleep</a>: await asyncio.sleep(0.5); eight at once take 0.5 s, not 4</li>
  <li>POST a body to <code>echo</code>: it streams back as it arrives</li>
</ul>
"""


@app.get("/", response_class=HTMLResponse)
async def index() -> str:
    return INDEX


@app.get("/hello/{name}")
async def hello(name: str) -> dict[str, str]:
    return {"hello": name}


@app.get("/stream")
async def stream() -> StreamingResponse:
    async def lines() -> AsyncIterator[bytes]:
        for i in range(10):
            yield f"line {i}\n".encode()
            await asyncio.sleep(0.2)

    return StreamingResponse(lines(), media_type="text/plain")


@app.get("/state")
async def state(request: Request) -> dict[str, Any]:
    return {
        "started_at": request.state.started_at,
        "lifespan_loop_is_request_loop": request.state.loop_id == id(asyncio.get_running_loop()),
    }


@app.get("/sleep")
async def sleep() -> dict[str, float]:
    await asyncio.sleep(0.5)
    return {"slept": 0.5}


@app.post("/echo")
async def echo(request: Request) -> StreamingResponse:
    return StreamingResponse(request.stream(), media_type="application/octet-stream")


@app.post("/later/{tag}")
async def later(tag: str, tasks: BackgroundTasks) -> dict[str, str]:
    async def work() -> None:
        await asyncio.sleep(0.05)
        finished_tasks.append(tag)

    tasks.add_task(work)
    return {"queued": tag}


@app.get("/later/{tag}")
async def later_done(tag: str) -> dict[str, bool]:
    return {"done": tag in finished_tasks}
