"""The worker threads a LocalNode runs its disk and SQLite steps on: two small pools.

Every step that blocks (a ``listdir``, an ``fsync``, a SQLite commit) runs off the event
loop, and each system call in it releases the GIL and takes it back afterwards. While the
loop thread is busy, taking it back means waiting for a forced switch (futex calls and two
context switches), so what a hop costs grows with the number of threads that run at once,
not only with the work. Measured on 2 cores (docs/performance.md, "Worker threads"):
against asyncio's default pool of 6 threads, these two pools cut the server CPU of a small
GET from 0.68 to 0.52 ms and of a small PUT from 6.9 to 5.7 ms.

- ``read``: opening an object for GET (and reading its first chunk: all of a small one) and
  reading its metadata for HEAD. Short page-cache work, one thread by default: like one
  eventlet object server process of Swift, which reads its disks in its one thread.
- ``io``: everything else (writes and their fsyncs, deletes, container and account
  databases, replication, the next chunks of a large GET). Three by default: the three
  replicas of a PUT write and sync in parallel.

Threads start on first use and never cross a fork: a forked worker process
(``[objectstore] workers``) starts its own.
"""

from __future__ import annotations

import asyncio
import os
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Final, TypeVar

R = TypeVar("R")
DEFAULT_READ_THREADS: Final = 1
DEFAULT_IO_THREADS: Final = 3
_ALL: weakref.WeakSet[ThreadPools] = weakref.WeakSet()


class ThreadPools:
    """The ``read`` and ``io`` pools of one node (see the module docstring)."""

    def __init__(self, *, read_threads: int = DEFAULT_READ_THREADS,
                 io_threads: int = DEFAULT_IO_THREADS) -> None:
        if read_threads < 1 or io_threads < 1:
            raise ValueError("a pool needs at least one thread")
        self.sizes = {"read": read_threads, "io": io_threads}
        self._pools: dict[str, ThreadPoolExecutor] = {}
        _ALL.add(self)

    def _pool(self, name: str) -> ThreadPoolExecutor:
        pool = self._pools.get(name)
        if pool is None:
            pool = self._pools[name] = ThreadPoolExecutor(
                self.sizes[name], thread_name_prefix=f"storage-{name}")
        return pool

    async def run(self, name: str, call: Callable[[], R]) -> R:
        """``call()`` on a thread of pool ``name`` (``read`` or ``io``)."""
        return await asyncio.get_running_loop().run_in_executor(self._pool(name), call)

    def shutdown(self) -> None:
        pools, self._pools = self._pools, {}
        for pool in pools.values():
            pool.shutdown(wait=False)

    def _forget(self) -> None:
        """In a forked child: the parent's threads are not there (their queues are)."""
        self._pools = {}


def _after_fork() -> None:
    for pools in list(_ALL):
        pools._forget()


os.register_at_fork(after_in_child=_after_fork)
