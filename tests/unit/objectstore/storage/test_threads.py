"""The storage layer's thread pools (storage/threads.py)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from pocketstack.objectstore.storage.threads import ThreadPools

pytestmark = pytest.mark.anyio


async def test_results_and_errors_come_back_to_the_caller() -> None:
    pools = ThreadPools(read_threads=1, io_threads=2)
    try:
        assert await pools.run("io", lambda: threading.current_thread().name) != \
            threading.current_thread().name
        with pytest.raises(ZeroDivisionError):
            await pools.run("read", lambda: 1 // 0)
        many = await asyncio.gather(*(pools.run("io", lambda i=i: i * i) for i in range(200)))
        assert many == [i * i for i in range(200)]
    finally:
        pools.shutdown()


async def test_each_pool_runs_at_most_its_size_at_once() -> None:
    pools = ThreadPools(read_threads=1, io_threads=3)
    running, peak = {"read": 0, "io": 0}, {"read": 0, "io": 0}
    lock = threading.Lock()

    def step(name: str) -> None:
        with lock:
            running[name] += 1
            peak[name] = max(peak[name], running[name])
        time.sleep(0.005)
        with lock:
            running[name] -= 1

    try:
        await asyncio.gather(*(pools.run(name, lambda name=name: step(name))
                               for _ in range(12) for name in ("read", "io")))
    finally:
        pools.shutdown()
    assert peak == {"read": 1, "io": 3}


async def test_a_call_whose_caller_gave_up_before_it_started_does_not_run() -> None:
    pools = ThreadPools(read_threads=1)
    gate, ran = threading.Event(), []
    try:
        busy = asyncio.ensure_future(pools.run("read", gate.wait))  # holds the one thread
        queued = asyncio.ensure_future(pools.run("read", lambda: ran.append(1)))
        await asyncio.sleep(0.01)
        queued.cancel()
        gate.set()
        await busy
        assert await pools.run("read", lambda: "after") == "after"
        assert ran == [] and queued.cancelled()
    finally:
        pools.shutdown()


async def test_idle_counts_the_threads_no_awaited_hop_holds() -> None:
    pools = ThreadPools(read_threads=1, io_threads=3)
    gates = [threading.Event() for _ in range(4)]
    try:
        assert pools.idle("io") == 3  # no thread started yet
        hops = [asyncio.ensure_future(pools.run("io", gate.wait)) for gate in gates[:2]]
        await asyncio.sleep(0.01)
        assert pools.idle("io") == 1 and pools.idle("read") == 1
        hops += [asyncio.ensure_future(pools.run("io", gate.wait)) for gate in gates[2:]]
        await asyncio.sleep(0.01)
        assert pools.idle("io") == 0  # one hop queued behind three: never below 0
        for hop in hops[2:]:  # callers that give up no longer count (an estimate: the
            hop.cancel()      # thread of the one under way is still at it)
        await asyncio.sleep(0)
        assert pools.idle("io") == 1
        for gate in gates:
            gate.set()
        await asyncio.gather(*hops[:2])
        assert pools.idle("io") == 3
    finally:
        pools.shutdown()


def test_one_pool_serves_one_event_loop_after_another() -> None:
    pools = ThreadPools()
    try:
        for value in range(3):  # each asyncio.run has its own loop
            assert asyncio.run(pools.run("io", lambda value=value: value)) == value
    finally:
        pools.shutdown()


async def test_shutdown_lets_queued_work_finish() -> None:
    pools = ThreadPools(io_threads=1)
    done: list[int] = []
    futures = [asyncio.ensure_future(pools.run("io", lambda i=i: done.append(i)))
               for i in range(5)]
    await asyncio.sleep(0)
    pools.shutdown()
    await asyncio.gather(*futures)
    assert done == list(range(5))


async def test_aclose_waits_for_the_work_in_flight() -> None:
    pools = ThreadPools(io_threads=2)
    done: list[int] = []

    def slow(i: int) -> None:
        time.sleep(0.05)
        done.append(i)

    started = [asyncio.ensure_future(pools.run("io", lambda i=i: slow(i))) for i in range(4)]
    await asyncio.sleep(0.01)  # two running, two queued
    assert await pools.aclose() is True
    assert sorted(done) == [0, 1, 2, 3]
    await asyncio.gather(*started)


async def test_aclose_gives_up_after_its_timeout() -> None:
    pools = ThreadPools(io_threads=1)
    gate = threading.Event()
    stuck = asyncio.ensure_future(pools.run("io", gate.wait))
    await asyncio.sleep(0.01)
    assert await pools.aclose(timeout=0.05) is False  # a hung disk does not hang the stop
    gate.set()
    await stuck
