"""Pacing for background daemons: a periodic runner that can also be asked for a pass now,
and a rate limiter (bytes or files per second).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

LOG = logging.getLogger(__name__)
T = TypeVar("T")


class Periodic(Generic[T]):
    """Runs ``run_pass`` every ``interval`` seconds (0: only when asked, with `run_now`),
    one pass at a time: a pass asked for while one runs starts once it is done."""

    def __init__(self, name: str, run_pass: Callable[[], Awaitable[T]], interval: float) -> None:
        self.name = name
        self.interval = interval
        self._run_pass = run_pass
        self._lock = asyncio.Lock()

    async def run_now(self) -> T:
        async with self._lock:
            return await self._run_pass()

    async def run_forever(self) -> None:
        """Wait an interval, run a pass, repeat; a failed pass is logged, not fatal."""
        if self.interval <= 0:
            return
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.run_now()
            except Exception:
                LOG.exception("%s pass failed", self.name)


class RateLimiter:
    """Paces work to ``rate`` units per second (0 or less: no limit).

    ``await take(n)`` returns once ``n`` more units fit the rate since the first `take`
    (a burst of at most one second's worth is allowed after idling).
    """

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.rate = rate
        self._clock = clock
        self._sleep = sleep
        self._next = clock()

    async def take(self, amount: float) -> None:
        if self.rate <= 0 or amount <= 0:
            return
        now = self._clock()
        self._next = max(self._next, now - 1.0) + amount / self.rate
        delay = self._next - now
        if delay > 0:
            await self._sleep(delay)
