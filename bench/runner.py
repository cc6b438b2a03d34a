"""Closed-loop load generation: N workers each repeat an async operation; latencies and
throughput are recorded per operation kind and reported as a table and as JSON lines."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass


@dataclass
class Result:
    name: str
    ops: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    bytes: int = 0

    @property
    def ops_per_s(self) -> float:
        return self.ops / self.seconds if self.seconds else 0.0

    @property
    def mb_per_s(self) -> float:
        return self.bytes / self.seconds / 1e6 if self.seconds else 0.0

    def as_json(self) -> str:
        return json.dumps({**asdict(self), "ops_per_s": round(self.ops_per_s, 1),
                           "mb_per_s": round(self.mb_per_s, 2)})


Operation = Callable[[int], Awaitable[int]]
"""One operation: given its sequence number, do it; return the bytes it moved."""


async def run(name: str, op: Operation, *, count: int, concurrency: int) -> Result:
    """Run ``op`` ``count`` times with ``concurrency`` in flight; failures are counted."""
    latencies: list[float] = []
    errors = 0
    moved = 0
    next_index = 0

    async def worker() -> None:
        nonlocal next_index, errors, moved
        while next_index < count:
            index = next_index
            next_index += 1
            started = time.perf_counter()
            try:
                moved += await op(index)
            except Exception:
                errors += 1
                continue
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return Result(name, len(latencies), elapsed, _pct(latencies, 50), _pct(latencies, 99),
                  errors, moved)


def _pct(values: list[float], pct: int) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0] * 1000
    return statistics.quantiles(values, n=100)[pct - 1] * 1000


def table(results: list[Result]) -> str:
    header = f"{'operation':<28}{'ops':>8}{'ops/s':>10}{'p50 ms':>10}{'p99 ms':>10}" \
             f"{'MB/s':>9}{'errors':>8}"
    lines = [header, "-" * len(header)]
    for r in results:
        lines.append(f"{r.name:<28}{r.ops:>8}{r.ops_per_s:>10.1f}{r.p50_ms:>10.2f}"
                     f"{r.p99_ms:>10.2f}{r.mb_per_s:>9.1f}{r.errors:>8}")
    return "\n".join(lines)
