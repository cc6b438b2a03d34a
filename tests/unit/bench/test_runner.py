"""bench.runner: closed-loop runs count every operation and byte; rounds pool exactly."""

from __future__ import annotations

import asyncio

from bench.procstat import ProcessTree
from bench.runner import Result, measure, pool, run


def test_run_counts_bytes_of_concurrent_operations() -> None:
    async def op(_: int) -> int:
        await asyncio.sleep(0)  # every operation yields while another is in flight
        return 10

    result = asyncio.run(run("op", op, count=100, concurrency=8))
    assert (result.ops, result.errors, result.bytes) == (100, 0, 1000)


def test_run_counts_failures_and_keeps_the_first() -> None:
    async def op(index: int) -> int:
        if index % 2:
            raise ValueError(f"odd {index}")
        return 0

    result = asyncio.run(run("op", op, count=10, concurrency=1))
    assert (result.ops, result.errors) == (5, 5)
    assert result.first_error == "ValueError: odd 1"


def test_measure_reads_server_and_client_cpu() -> None:
    async def op(_: int) -> int:
        sum(range(20_000))
        return 0

    result = asyncio.run(measure("cloud", "op", op, count=50, concurrency=2,
                                 servers=ProcessTree([])))
    assert result.cloud == "cloud"
    assert result.cpu_ms_per_op == 0
    assert result.client_cpu_ms_per_op is not None and result.client_cpu_ms_per_op >= 0


def test_pool_weights_cpu_by_operations_and_pools_latencies() -> None:
    a = Result("op", 10, 1.0, 0, 0, 0, 100, "c", 2.0, 1.0, latencies=[0.001] * 10)
    b = Result("op", 30, 1.0, 0, 0, 1, 300, "c", 6.0, 1.0, "boom", [0.003] * 30)
    pooled = pool([a, b])
    assert (pooled.ops, pooled.seconds, pooled.bytes, pooled.errors) == (40, 2.0, 400, 1)
    assert pooled.cpu_ms_per_op == 5.0  # (2*10 + 6*30) / 40
    assert pooled.ops_per_s == 20
    assert round(pooled.p50_ms, 3) == 3.0
    assert pooled.first_error == "boom"
