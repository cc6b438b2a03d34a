"""The worker threads a LocalNode runs its disk and SQLite steps on: two small pools.

Every step that blocks (a ``listdir``, an ``fsync``, a SQLite commit) runs off the event
loop, and each system call in it releases the GIL and takes it back afterwards. While the
loop thread is busy, taking it back means waiting for a forced switch (futex calls and two
context switches), so what a hop costs grows with the number of threads that run at once,
not only with the work. Measured on 2 cores (docs/performance.md, "Worker threads"):
against asyncio's default pool of 6 threads, these two pools cut the server CPU of a small
GET from 0.68 to 0.52 ms and of a small PUT from 6.9 to 5.7 ms.

- ``read``: opening an object for GET (and reading its first chunk: all of a small one) and
  reading its metadata for HEAD. Short page-cache work, two threads by default. With one,
  a read that is done waits for the GIL while the event loop (uvloop: `common.eventloop`)
  writes to its sockets, and the next read waits behind it: in alternated rounds (``make
  ab``), uvloop with one read thread cost small GETs a tenth of their rate, and with two
  it gained them a third. Three cost a fifth more CPU per read than two.
- ``io``: everything else (writes and their fsyncs, deletes, container and account
  databases, replication, the next chunks of a large GET). Three by default: the three
  replicas of a PUT write and sync in parallel while threads are free (`idle`); when all
  are busy, a node's replicas go in one hop (`LocalNode.put_object_replicas`).

A pool is a queue and its threads, not a ``ThreadPoolExecutor``: a hop is one loop future,
and the results that are ready when the loop wakes are settled together, with one wake-up
of the loop (asyncio's ``run_in_executor`` chains a second future per hop and writes to the
loop's self-pipe once per result).

Threads start on first use and never cross a fork: a forked worker process
(``[objectstore] workers``) starts its own. They are daemon threads, so an unclosed node
never holds its process at exit; `ThreadPools.aclose` (the node's ``close``) lets the jobs
in flight finish first, for up to a few seconds (a hung disk does not hang the stop).
"""

from __future__ import annotations

import asyncio
import os
import queue
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, Final, TypeVar

R = TypeVar("R")
DEFAULT_READ_THREADS: Final = 2
DEFAULT_IO_THREADS: Final = 3
_ALL: weakref.WeakSet[ThreadPools] = weakref.WeakSet()
_Job = tuple["asyncio.Future[Any]", Callable[[], Any]]
_Result = tuple["asyncio.Future[Any]", bool, Any]


class _Pool:
    """``size`` threads that run the jobs of one queue (see the module docstring)."""

    def __init__(self, size: int, name: str) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        # the hops awaited now (a set: add and discard are atomic, whatever thread runs
        # the loop); a hop whose caller gave up is no longer counted, though its thread
        # may still be at it: an estimate, for `ThreadPools.idle`
        self.awaited: set[asyncio.Future[Any]] = set()
        self._lock = threading.Lock()
        self._ready: dict[asyncio.AbstractEventLoop, list[_Result]] = {}
        self._threads = [threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True)
                         for i in range(size)]
        for thread in self._threads:
            thread.start()

    def submit(self, future: asyncio.Future[Any], call: Callable[[], Any]) -> None:
        self._jobs.put((future, call))

    def shutdown(self) -> list[threading.Thread]:
        """The threads end once the jobs queued before are done; returns them."""
        for _ in self._threads:
            self._jobs.put(None)
        return self._threads

    def _work(self) -> None:
        while (job := self._wait_for_job()) is not None:
            self._run(*job)
            del job  # an idle thread keeps nothing of its last job alive (open files...)

    def _wait_for_job(self) -> _Job | None:
        """Blocks while the pool is idle (profilers: the frame of an idle thread)."""
        return self._jobs.get()

    def _run(self, future: asyncio.Future[Any], call: Callable[[], Any]) -> None:
        if future.cancelled():  # its caller gave up before it started, as an executor's
            return
        try:
            result: _Result = (future, True, call())
        except BaseException as exc:  # handed to the caller, whatever it is
            result = (future, False, exc)
        self._hand_back(result)

    def _hand_back(self, result: _Result) -> None:
        loop = result[0].get_loop()
        with self._lock:
            waiting = self._ready.get(loop)
            if waiting is not None:  # a wake-up is on its way: it settles this one too
                waiting.append(result)
                return
            self._ready[loop] = [result]
        try:
            loop.call_soon_threadsafe(self._settle, loop)
        except RuntimeError:  # the loop is closed: nobody waits for this result
            with self._lock:
                self._ready.pop(loop, None)

    def _settle(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            ready = self._ready.pop(loop, [])
        for future, ok, value in ready:
            if future.done():  # cancelled meanwhile
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)


class ThreadPools:
    """The ``read`` and ``io`` pools of one node (see the module docstring)."""

    def __init__(self, *, read_threads: int = DEFAULT_READ_THREADS,
                 io_threads: int = DEFAULT_IO_THREADS) -> None:
        if read_threads < 1 or io_threads < 1:
            raise ValueError("a pool needs at least one thread")
        self.sizes = {"read": read_threads, "io": io_threads}
        self._pools: dict[str, _Pool] = {}
        _ALL.add(self)

    def _pool(self, name: str) -> _Pool:
        pool = self._pools.get(name)
        if pool is None:
            pool = self._pools[name] = _Pool(self.sizes[name], f"storage-{name}")
        return pool

    async def run(self, name: str, call: Callable[[], R]) -> R:
        """``call()`` on a thread of pool ``name`` (``read`` or ``io``)."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        pool = self._pool(name)
        pool.submit(future, call)
        pool.awaited.add(future)
        try:
            return await future
        finally:
            pool.awaited.discard(future)

    def idle(self, name: str) -> int:
        """About how many threads of pool ``name`` have nothing to do right now (the hops
        awaited, against the pool's size)."""
        pool = self._pools.get(name)
        return max(0, self.sizes[name] - (len(pool.awaited) if pool is not None else 0))

    def shutdown(self) -> list[threading.Thread]:
        """Stop the pools (their threads end once the jobs queued before are done)."""
        pools, self._pools = self._pools, {}
        return [thread for pool in pools.values() for thread in pool.shutdown()]

    async def aclose(self, timeout: float = 5.0) -> bool:
        """`shutdown`, then wait (off the loop) up to ``timeout`` seconds for the jobs in
        flight to end: the threads are daemons, so a process that exits does not wait for
        them by itself. False if some were still running."""
        threads = self.shutdown()
        deadline = time.monotonic() + timeout

        def join() -> bool:
            for thread in threads:
                thread.join(max(0.0, deadline - time.monotonic()))
            return not any(thread.is_alive() for thread in threads)

        return await asyncio.to_thread(join) if threads else True

    def _forget(self) -> None:
        """In a forked child: the parent's threads are not there (their queues are)."""
        self._pools = {}


def _after_fork() -> None:
    for pools in list(_ALL):
        pools._forget()


os.register_at_fork(after_in_child=_after_fork)
