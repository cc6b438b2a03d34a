"""Closed-loop load generation: N workers each repeat an async operation; latencies and
throughput are recorded per operation kind and reported as a table and as JSON lines.

:func:`measure` wraps :func:`run` with the CPU the server processes (a
:class:`~bench.procstat.ProcessTree`) and the client spent meanwhile, read from ``/proc``."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field, replace

from bench.procstat import ProcessTree, self_cpu_seconds


@dataclass
class Result:
    name: str
    ops: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    bytes: int = 0
    cloud: str = ""
    cpu_ms_per_op: float | None = None  # server processes, utime + stime, per successful op
    client_cpu_ms_per_op: float | None = None
    first_error: str = ""
    latencies: list[float] = field(default_factory=list, repr=False)  # seconds, not in JSON

    @property
    def ops_per_s(self) -> float:
        return self.ops / self.seconds if self.seconds else 0.0

    @property
    def mb_per_s(self) -> float:
        return self.bytes / self.seconds / 1e6 if self.seconds else 0.0

    def as_json(self) -> str:
        fields = {k: v for k, v in asdict(self).items() if k != "latencies"}
        return json.dumps({**fields, "ops_per_s": round(self.ops_per_s, 1),
                           "mb_per_s": round(self.mb_per_s, 2)})


Operation = Callable[[int], Awaitable[int]]
"""One operation: given its sequence number, do it; return the bytes it moved."""


async def run(name: str, op: Operation, *, count: int, concurrency: int) -> Result:
    """Run ``op`` ``count`` times with ``concurrency`` in flight; failures are counted."""
    latencies: list[float] = []
    errors = 0
    first_error = ""
    moved = 0
    next_index = 0

    async def worker() -> None:
        nonlocal next_index, errors, moved, first_error
        while next_index < count:
            index = next_index
            next_index += 1
            started = time.perf_counter()
            try:
                done = await op(index)  # (``moved += await op()`` would lose updates)
            except Exception as exc:
                errors += 1
                first_error = first_error or f"{type(exc).__name__}: {exc}"[:300]
                continue
            moved += done
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return Result(name, len(latencies), elapsed, _pct(latencies, 50), _pct(latencies, 99),
                  errors, moved, first_error=first_error, latencies=latencies)


async def measure(cloud: str, name: str, op: Operation, *, count: int, concurrency: int,
                  servers: ProcessTree) -> Result:
    """:func:`run`, plus the server processes' and the client's CPU ms per operation."""
    server0, client0 = servers.cpu_seconds(), self_cpu_seconds()
    result = await run(name, op, count=count, concurrency=concurrency)
    server1, client1 = servers.cpu_seconds(), self_cpu_seconds()
    ops = max(result.ops, 1)
    return replace(result, cloud=cloud,
                   cpu_ms_per_op=round((server1 - server0) * 1000 / ops, 3),
                   client_cpu_ms_per_op=round((client1 - client0) * 1000 / ops, 3))


def pool(rounds: list[Result]) -> Result:
    """Rounds of one operation on one cloud as one result: totals, and percentiles and CPU
    over all the operations of all rounds."""
    first = rounds[0]
    ops = sum(r.ops for r in rounds)
    latencies = [t for r in rounds for t in r.latencies]

    def per_op(values: list[tuple[float | None, int]]) -> float | None:
        if any(v is None for v, _ in values) or not ops:
            return None
        return round(sum(v * n for v, n in values) / ops, 3)

    return Result(first.name, ops, sum(r.seconds for r in rounds), _pct(latencies, 50),
                  _pct(latencies, 99), sum(r.errors for r in rounds),
                  sum(r.bytes for r in rounds), first.cloud,
                  per_op([(r.cpu_ms_per_op, r.ops) for r in rounds]),
                  per_op([(r.client_cpu_ms_per_op, r.ops) for r in rounds]),
                  next((r.first_error for r in rounds if r.first_error), ""), latencies)


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
