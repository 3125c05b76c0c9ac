"""WsgiToAsgi's own thread pool: lazily started threads, at most ``size``, reused; a job
cancelled while it waits never runs; a raising job is logged and its thread goes on; shutdown
lets the threads end after the jobs already submitted."""

from __future__ import annotations

import threading

import pytest

from bridge.wsgi_to_asgi._pool import Pool

WAIT = 5.0


def _pool_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("test-pool_")]


def _stop(pool: Pool) -> None:
    pool.shutdown()
    for thread in _pool_threads():
        thread.join(WAIT)
    assert _pool_threads() == []


@pytest.mark.timeout(20)
def test_threads_start_as_needed_up_to_size_and_are_reused() -> None:
    pool = Pool(2, "test-pool")
    assert _pool_threads() == []  # nothing before the first job
    release = threading.Event()
    started = [threading.Event() for _ in range(3)]
    jobs = [pool.submit(lambda e=e: (e.set(), release.wait(WAIT))) for e in started]
    assert started[0].wait(WAIT) and started[1].wait(WAIT)
    assert not started[2].is_set()  # both threads busy: the third job waits its turn
    assert not jobs[2].running() and not jobs[2].done()
    assert len(_pool_threads()) == 2
    release.set()
    assert started[2].wait(WAIT)
    for _ in range(20):  # sequential jobs on idle threads start no new thread
        done = threading.Event()
        pool.submit(done.set)
        assert done.wait(WAIT)
    assert len(_pool_threads()) == 2
    _stop(pool)


@pytest.mark.timeout(20)
def test_a_job_cancelled_while_it_waits_never_runs() -> None:
    pool = Pool(1, "test-pool")
    release, ran = threading.Event(), []
    busy = pool.submit(release.wait, WAIT)
    waiting = pool.submit(ran.append, "waiting")
    assert waiting.cancel() and waiting.done()
    assert not busy.cancel()  # a running job cannot be withdrawn
    release.set()
    after = threading.Event()
    pool.submit(after.set)
    assert after.wait(WAIT)
    assert ran == [] and busy.done()
    _stop(pool)


@pytest.mark.timeout(20)
def test_a_raising_job_is_logged_and_its_thread_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    pool = Pool(1, "test-pool")

    def fail() -> None:
        raise RuntimeError("job failed")

    job = pool.submit(fail)
    after = threading.Event()
    pool.submit(after.set)
    assert after.wait(WAIT) and job.done()
    assert "a job on the WSGI thread pool raised" in caplog.text
    assert len(_pool_threads()) == 1
    _stop(pool)
    with pytest.raises(RuntimeError, match="shut down"):
        pool.submit(after.set)
