"""The loop <-> thread hand-offs on their own, and wsgi.input over them."""

from __future__ import annotations

import asyncio
import io
import threading
import tracemalloc
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge import ClientDisconnected
from bridge._streams import ITEM_COST, ToLoop, ToThread, input_stream
from tests.asgi_harness import run

pytestmark = pytest.mark.timeout(20)


def in_thread(fn: Any) -> threading.Thread:
    thread = threading.Thread(target=fn, daemon=True)
    thread.start()
    return thread


def test_to_loop_batches_everything_queued_in_one_get() -> None:
    async def main() -> None:
        channel: ToLoop[bytes] = ToLoop(asyncio.get_running_loop(), 1000)

        def produce() -> None:
            for i in range(5):
                channel.put(b"%d" % i, 1, wake=False)
            channel.close()

        in_thread(produce).join(5)
        assert await channel.get() == ([b"0", b"1", b"2", b"3", b"4"], True)

    run(main())


def test_to_loop_budget_blocks_the_producer_until_the_loop_drains() -> None:
    async def main() -> None:
        # Room for two 4-byte items (each costs ITEM_COST more), not three.
        channel: ToLoop[bytes] = ToLoop(asyncio.get_running_loop(), 2 * (4 + ITEM_COST) + 2)
        progress: list[int] = []

        def produce() -> None:
            for i in range(6):
                channel.put(b"x" * 4, 4, wake=False)  # over budget: wakes the loop anyway
                progress.append(i)
            channel.close()

        thread = in_thread(produce)
        await asyncio.sleep(0.2)
        assert progress == [0, 1]  # the third put went over the budget and is waiting
        total = 0
        while True:
            items, done = await asyncio.wait_for(channel.get(), 5)
            total += len(items)
            if done:
                break
        thread.join(5)
        assert total == 6

    run(main())


def test_to_loop_error_comes_after_the_queued_items() -> None:
    async def main() -> None:
        channel: ToLoop[bytes] = ToLoop(asyncio.get_running_loop(), 100)
        channel.put(b"a", 1)
        channel.fail(ValueError("producer broke"))
        assert await channel.get() == ([b"a"], False)
        with pytest.raises(ValueError, match="producer broke"):
            await channel.get()

    run(main())


def test_to_loop_abort_wakes_a_blocked_producer_with_the_error() -> None:
    async def main() -> None:
        channel: ToLoop[bytes] = ToLoop(asyncio.get_running_loop(), 1)
        raised: list[BaseException] = []

        def produce() -> None:
            try:
                channel.put(b"too big", 7)
            except ClientDisconnected as exc:
                raised.append(exc)

        thread = in_thread(produce)
        await asyncio.sleep(0.1)
        channel.abort(ClientDisconnected("gone"))
        await asyncio.to_thread(thread.join, 5)
        assert raised and not thread.is_alive()
        with pytest.raises(ClientDisconnected):
            channel.put(b"after", 5)

    run(main())


def test_to_loop_finished_waits_for_the_producer_even_after_an_abort() -> None:
    async def main() -> None:
        channel: ToLoop[bytes] = ToLoop(asyncio.get_running_loop(), 100)
        channel.abort(ClientDisconnected("client gone"))
        waiting = asyncio.ensure_future(channel.finished())
        await asyncio.sleep(0.05)
        assert not waiting.done()  # the thread may still be inside the app or its close()
        in_thread(channel.close).join(5)
        await asyncio.wait_for(waiting, 5)
        assert channel.closed

    run(main())


def test_to_loop_close_with_a_last_item_is_one_batch() -> None:
    async def main() -> None:
        channel: ToLoop[bytes] = ToLoop(asyncio.get_running_loop(), 100)
        in_thread(lambda: (channel.put(b"a", 1, wake=False), channel.close(b"end"))).join(5)
        assert await channel.get() == ([b"a", b"end"], True)

    run(main())


def test_to_loop_wait_acknowledged_returns_on_acknowledge_or_abort() -> None:
    async def main() -> None:
        for end in ("acknowledge", "abort"):
            channel: ToLoop[bytes] = ToLoop(asyncio.get_running_loop(), 100)
            thread = in_thread(channel.wait_acknowledged)
            await asyncio.sleep(0.05)
            assert thread.is_alive()  # waits for the loop
            if end == "acknowledge":
                channel.acknowledge()
            else:
                channel.abort(ClientDisconnected("gone"))
            await asyncio.to_thread(thread.join, 5)
            assert not thread.is_alive()

    run(main())


def test_to_thread_reads_ahead_only_up_to_the_budget() -> None:
    async def main() -> None:
        chunks = ToThread(asyncio.get_running_loop(), 8 + 2 * ITEM_COST)
        chunks.put_nowait(b"1234")
        chunks.put_nowait(b"5678")
        await asyncio.wait_for(chunks.drained(), 1)  # two items of 4 bytes: within budget
        chunks.put_nowait(b"9")
        assert chunks.over_budget()
        drained = asyncio.ensure_future(chunks.drained())  # waits for the reader
        await asyncio.sleep(0.05)
        assert not drained.done()
        assert await asyncio.to_thread(chunks.get) == b"1234"
        await asyncio.wait_for(drained, 5)
        chunks.close()
        got = [await asyncio.to_thread(chunks.get) for _ in range(3)]
        assert got == [b"5678", b"9", b""]

    run(main())


def test_tiny_chunks_are_bounded_in_memory_not_only_in_bytes() -> None:
    """A client sending 2-byte messages: the read-ahead fills by what they cost, not by their
    length (counted by length alone, 256 KiB of them held about 22 times that in memory)."""

    async def main() -> None:
        budget = 256 * 1024
        chunks = ToThread(asyncio.get_running_loop(), budget)
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            queued = 0
            while not chunks.over_budget():
                chunks.put_nowait(bytes([queued % 256, 1]))  # distinct objects, as a server's
                queued += 1
            held = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        assert queued * 2 < budget // 20  # the flood stopped long before 256 KiB of bytes
        assert held < 1.5 * budget, f"{held} bytes held for a {budget}-byte budget"

    run(main())


def test_to_thread_failure_reaches_the_reader_after_the_data() -> None:
    async def main() -> None:
        chunks = ToThread(asyncio.get_running_loop(), 100)
        chunks.put_nowait(b"data")
        chunks.fail(ClientDisconnected("mid body"))
        assert chunks.get() == b"data"
        with pytest.raises(ClientDisconnected):
            chunks.get()

    run(main())


def test_to_thread_drained_returns_once_the_reader_aborted() -> None:
    async def main() -> None:
        chunks = ToThread(asyncio.get_running_loop(), 1)
        chunks.put_nowait(b"xyz")
        waiting = asyncio.ensure_future(chunks.drained())
        await asyncio.sleep(0.01)
        chunks.abort(ClientDisconnected("reader gone"))
        await asyncio.wait_for(waiting, 1)

    run(main())


def stream_over(parts: list[bytes]) -> io.BufferedReader:
    async def make() -> ToThread:
        chunks = ToThread(asyncio.get_running_loop(), 1 << 20)
        for part in parts:
            chunks.put_nowait(part)
        chunks.close()
        return chunks

    return input_stream(run(make()))


READERS = {
    "read": lambda s: [s.read()],
    "read(n)": lambda s: list(iter(lambda: s.read(3), b"")),
    "readline": lambda s: list(iter(s.readline, b"")),
    "readline(n)": lambda s: list(iter(lambda: s.readline(2), b"")),
    "readlines": lambda s: s.readlines(),
    "iter": lambda s: list(s),
}


@settings(max_examples=60, deadline=None)
@given(
    parts=st.lists(st.binary(max_size=12).map(lambda b: b.replace(b"\x00", b"\n")), max_size=8),
    reader=st.sampled_from(sorted(READERS)),
)
def test_wsgi_input_reads_like_a_file_whatever_the_chunking(
    parts: list[bytes], reader: str
) -> None:
    body = b"".join(parts)
    assert READERS[reader](stream_over(parts)) == READERS[reader](io.BytesIO(body))
