"""Slow uploads against a small pool, on real uvicorn: is a normal request still answered?

    .venv/bin/python -m bench.slow_clients            # about 3 minutes (5 s a lost GET)
    .venv/bin/python -m bench.slow_clients --quick    # 2 GETs a cell, 3 s to answer: ~25 s
    .venv/bin/python -m bench.slow_clients --md bench/results/slow_clients.md

Each cell is uvicorn serving Flask through an adapter with 8 threads. ``SLOW`` clients each
start a 1 MiB upload and then trickle it at 1 KiB/s; while they do, one client sends plain
``GET /`` requests one after another and records how long each takes (``GIVE_UP`` seconds at
most: past that it counts as unanswered). Traffic goes to 127.0.0.1 only; every cell is bounded
in time. The issue's target: with threads=8, 32 trickling uploads do not stop a normal request
from being answered within 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from pathlib import Path

from bench.http_bench import percentile, uvicorn
from tests.servers import serve

SLOW = 32
TRICKLE = 1024  # bytes a second per slow client
DECLARED = 1024 * 1024
SETTLE = 2.0  # seconds the slow clients get to start before plain requests are timed
PROBES = 16
PROBE_EVERY = 0.25
GIVE_UP = 5.0
CELLS = {
    "bridge (hold_body=1 MiB, the default)": "flask_bridge_8",
    "bridge (hold_body=0)": "flask_bridge_8_nohold",
    "a2wsgi": "flask_a2wsgi_8",
}


async def trickle(port: int, stop: asyncio.Event) -> None:
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    head = f"POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {DECLARED}\r\n\r\n"
    writer.write(head.encode())
    try:
        while not stop.is_set():
            writer.write(b"u" * TRICKLE)
            await writer.drain()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
    except OSError:
        pass
    finally:
        writer.close()


async def probe(port: int, give_up: float) -> float | None:
    """Seconds for one plain GET on a fresh connection, or None if unanswered in time."""
    began = time.perf_counter()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), give_up)
        writer.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), give_up)
        writer.close()
    except (asyncio.TimeoutError, OSError):
        return None
    return time.perf_counter() - began if answer.startswith(b"HTTP/1.1 200") else None


async def cell(port: int, probes: int, give_up: float) -> list[float | None]:
    stop = asyncio.Event()
    slow = [asyncio.ensure_future(trickle(port, stop)) for _ in range(SLOW)]
    await asyncio.sleep(SETTLE)
    times = []
    for _ in range(probes):
        times.append(await probe(port, give_up))
        await asyncio.sleep(PROBE_EVERY)
    stop.set()
    await asyncio.gather(*slow, return_exceptions=True)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--md", type=Path, help="also write the table as Markdown here")
    parser.add_argument("--quick", action="store_true", help="2 GETs a cell, unanswered after 3 s")
    args = parser.parse_args()
    probes, give_up = (2, 3.0) if args.quick else (PROBES, GIVE_UP)
    rows = []
    for label, app in CELLS.items():
        with serve(uvicorn(app)) as server:
            times = asyncio.run(cell(server.port, probes, give_up))
        answered = [t for t in times if t is not None]
        p50 = percentile(answered, 0.5) * 1000 if answered else float("nan")
        worst = max(answered) * 1000 if answered else float("nan")
        rows.append((label, len(answered), len(times), p50, worst))
        print(f"{label:40} answered {len(answered):2}/{len(times)}  p50 {p50:8.1f} ms  "
              f"max {worst:8.1f} ms", flush=True)  # fmt: skip
    if args.md:
        lines = [
            f"{SLOW} uploads trickling at 1 KiB/s against 8 threads on uvicorn; "
            f"{probes} plain GETs while they do (unanswered: no answer within {give_up:.0f} s).",
            "",
            "| adapter | plain GETs answered | p50 | max |",
            "| --- | ---: | ---: | ---: |",
        ]
        for label, answered, probes, p50, worst in rows:
            times = f"{p50:.1f} ms | {worst:.1f} ms" if answered else "– | –"
            lines.append(f"| {label} | {answered}/{probes} | {times} |")
        args.md.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
