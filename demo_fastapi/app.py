"""A FastAPI service in the middle of a migration: its own typed routes (a lifespan, ``def`` and
``async def`` endpoints, a background task, a stream, a file) and the legacy Flask app mounted at
``/legacy`` through ``bridge.WsgiToAsgi``. Served by an ASGI server as it is, or by a WSGI server
through ``bridge.AsgiToWsgi`` (``demo_fastapi/wsgi.py``)."""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import BackgroundTasks, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, StreamingResponse
from pydantic import BaseModel, Field
from starlette.types import Receive, Scope, Send

from bridge import WsgiToAsgi
from demo_flask.app import app as flask_app

# Set by the tests: the lifespan shutdown leaves a line here, proving it ran.
SHUTDOWN_MARKER = os.environ.get("BRIDGE_DEMO_SHUTDOWN_MARKER")
RELEASE_NOTES = Path(__file__).with_name("files") / "release-notes.txt"


class Item(BaseModel):
    id: int
    name: str
    price_cents: int = Field(ge=0)


class OrderIn(BaseModel):
    item_id: int
    quantity: int = Field(gt=0, le=100)


class Order(BaseModel):
    id: int
    item: Item
    quantity: int
    total_cents: int
    receipt_sent: bool = False


CATALOG = [Item(id=1, name="Adapter", price_cents=1250), Item(id=2, name="Cable", price_cents=399)]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    # On an ASGI server this runs once. Through AsgiToWsgi's per-thread loops it runs once on
    # each server thread's loop, so anything loop-bound made here (a DB pool, an
    # httpx.AsyncClient) is usable by that loop's requests; shared data lives at module level.
    catalog = {item.id: item for item in CATALOG}  # "loaded at startup"
    yield {"started_at": time.time(), "loop_id": id(asyncio.get_running_loop()), "catalog": catalog}
    if SHUTDOWN_MARKER:
        with Path(SHUTDOWN_MARKER).open("a") as marker:
            marker.write(f"shutdown {os.getpid()}\n")


app = FastAPI(title="bridge demo", lifespan=lifespan)
# The legacy app, as teams mount it during a migration. Its /healthz gets a thread of its own
# (priority), so a probe is answered while slow legacy pages fill the pool; timeout= answers 504
# for a page stuck past 30 s.
app.mount("/legacy", WsgiToAsgi(flask_app, threads=8, priority=("/healthz",), timeout=30))

orders: dict[int, Order] = {}
orders_lock = threading.Lock()  # def endpoints run on threads, and so may AsgiToWsgi's loops
order_ids = itertools.count(1)
finished_tasks: list[str] = []

INDEX = """<!doctype html>
<title>bridge demo</title>
<h1>FastAPI with a legacy Flask app inside, through bridge</h1>
<ul>
  <li><a href="legacy/">legacy/</a>: the Flask app, mounted through WsgiToAsgi</li>
  <li><a href="docs">docs</a>: FastAPI's OpenAPI page</li>
  <li><a href="items">items</a>: the catalog the lifespan loaded (a <code>def</code> route)</li>
  <li>POST <code>{"item_id": 1, "quantity": 2}</code> to <code>orders</code>, then GET
      <code>orders/1</code>: the receipt is a background task</li>
  <li><a href="hello/café">hello/café</a>: a path parameter</li>
  <li><a href="stream">stream</a>: a StreamingResponse, one line every 0.2 s</li>
  <li><a href="release-notes">release-notes</a>: a FileResponse</li>
  <li><a href="state">state</a>: what this loop's lifespan put in request.state</li>
  <li><a href="sleep">sleep</a>: await asyncio.sleep(0.5); eight at once take 0.5 s, not 4</li>
  <li>POST a body to <code>echo</code>: it streams back as it arrives</li>
</ul>
"""


@app.get("/", response_class=HTMLResponse)
async def index() -> str:
    return INDEX


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/items")
def list_items(request: Request) -> list[Item]:  # a def endpoint: FastAPI runs it on a thread
    return list(request.state.catalog.values())


@app.get("/items/{item_id}")
async def get_item(item_id: int, request: Request) -> Item:
    item: Item | None = request.state.catalog.get(item_id)
    if item is None:
        raise HTTPException(404, f"no item {item_id}")
    return item


@app.post("/orders", status_code=201)
async def create_order(body: OrderIn, request: Request, tasks: BackgroundTasks) -> Order:
    item = await get_item(body.item_id, request)
    order = Order(
        id=next(order_ids),
        item=item,
        quantity=body.quantity,
        total_cents=item.price_cents * body.quantity,
    )
    with orders_lock:
        orders[order.id] = order
    tasks.add_task(send_receipt, order.id)  # runs after the response is sent
    return order


async def send_receipt(order_id: int) -> None:
    await asyncio.sleep(0.05)  # a mail server, say
    with orders_lock:
        orders[order_id].receipt_sent = True


@app.get("/orders/{order_id}")
def get_order(order_id: int) -> Order:
    with orders_lock:
        order = orders.get(order_id)
    if order is None:
        raise HTTPException(404, f"no order {order_id}")
    return order


@app.get("/release-notes")
async def release_notes() -> FileResponse:
    return FileResponse(RELEASE_NOTES, media_type="text/plain", filename="release-notes.txt")


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


class EchoResponse(StreamingResponse):
    """A StreamingResponse that leaves ``receive`` to the body it echoes. On a server of ASGI
    spec < 2.4 (uvicorn says 2.3) Starlette's own also calls ``receive()`` to watch for a
    disconnect, and every request-body message that watcher gets is lost to request.stream():
    the echo would come back without its start. Reading the body already notices a disconnect."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.stream_response(send)


@app.post("/echo")
async def echo(request: Request) -> StreamingResponse:
    return EchoResponse(request.stream(), media_type="application/octet-stream")


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
