"""proxy.tee: one body, many writers at their own pace, bounded memory, replay for
handoffs."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import pytest

from pocketstack.objectstore.proxy.tee import Tee, rechunk, replay_window

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def source(pieces: list[bytes], log: list[int] | None = None) -> AsyncIterator[bytes]:
    for index, piece in enumerate(pieces):
        if log is not None:
            log.append(index)
        yield piece
        await asyncio.sleep(0)


async def consume(branch: AsyncIterator[bytes], delay: float = 0.0) -> bytes:
    out = []
    async for chunk in branch:
        out.append(chunk)
        if delay:
            await asyncio.sleep(delay)
    return b"".join(out)


async def test_every_branch_gets_every_byte() -> None:
    pieces = [os.urandom(100) for _ in range(50)]
    tee = Tee(source(pieces), replay_limit=0)
    branches = [tee.branch() for _ in range(3)]
    results = await asyncio.gather(consume(branches[0]), consume(branches[1], 0.001),
                                   consume(branches[2]))
    assert results == [b"".join(pieces)] * 3
    assert tee.bytes_read == 5000


async def test_source_is_read_once_and_memory_stays_bounded() -> None:
    log: list[int] = []
    pieces = [bytes([i % 256]) * 10 for i in range(200)]
    tee = Tee(source(pieces, log), max_lag=4, replay_limit=0)
    fast, slow = tee.branch(), tee.branch()
    seen = []

    async def watch_fast() -> bytes:
        out = []
        async for chunk in fast:
            out.append(chunk)
            seen.append(len(tee._chunks))
        return b"".join(out)

    results = await asyncio.gather(watch_fast(), consume(slow, 0.0005))
    assert results[0] == results[1] == b"".join(pieces)
    assert log == list(range(200))
    assert max(seen) <= 4 + 1  # never more than max_lag chunks held


async def test_replay_until_limit() -> None:
    pieces = [b"a" * 10] * 10
    tee = Tee(source(pieces), replay_limit=30)
    first = tee.branch()
    assert await anext(first) == b"a" * 10
    assert tee.can_replay
    late = tee.branch()  # a handoff starting over from the first byte
    assert await anext(late) == b"a" * 10
    for _ in range(3):
        await anext(first)
    assert not tee.can_replay  # 40 bytes read > 30
    with pytest.raises(ValueError):
        tee.branch()
    rest = await asyncio.gather(consume(first), consume(late))
    assert len(rest[0]) == 60 and len(rest[1]) == 90


async def test_closed_branch_does_not_hold_others_back() -> None:
    pieces = [b"x"] * 100
    tee = Tee(source(pieces), max_lag=2, replay_limit=0)
    dead, alive = tee.branch(), tee.branch()
    await anext(dead)
    await dead.aclose()
    assert await consume(alive) == b"x" * 100
    assert [c async for c in dead] == []


async def test_source_error_reaches_every_branch() -> None:
    async def failing() -> AsyncIterator[bytes]:
        yield b"ok"
        raise ConnectionResetError("client went away")

    tee = Tee(failing(), replay_limit=0)
    branches = [tee.branch(), tee.branch()]
    results = await asyncio.gather(*(consume(b) for b in branches), return_exceptions=True)
    assert all(isinstance(r, ConnectionResetError) for r in results)


async def test_drain_reads_what_nobody_read() -> None:
    log: list[int] = []
    tee = Tee(source([b"1", b"2", b"3"], log), replay_limit=0)
    await tee.drain()
    assert log == [0, 1, 2] and tee.bytes_read == 3


async def test_rechunk_splits_large_pieces_only() -> None:
    pieces = [b"a" * 10, b"b" * 25, b"", b"c" * 3]
    out = [c async for c in rechunk(source(pieces), 8)]
    assert all(len(c) <= 8 for c in out)
    assert b"".join(out) == b"".join(pieces)
    assert out[-1] == b"c" * 3


def test_replay_window_covers_a_first_batch_and_the_lag() -> None:
    assert replay_window(65536) == 10 * 65536
    assert replay_window(1000, max_lag=2) == 4000
