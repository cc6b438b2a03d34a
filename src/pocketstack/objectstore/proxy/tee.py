"""One request body, several replica writers: the proxy's streaming fan-out.

The client's body is read once, chunk by chunk, and each writer consumes the same chunks at
its own pace. Memory stays bounded: a writer that runs ``max_lag`` chunks ahead of the
slowest one waits for it, and chunks every writer has consumed are dropped. So the proxy
never holds a whole object, however large.

A writer that fails early (its device is unavailable) can be replaced by a handoff writer
that starts from the first byte, as long as the body read so far fits in ``replay_limit``
(Swift picks its nodes before streaming for the same reason). `replay_window` sizes that
limit so that a writer failing as it starts can always be replaced.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

MAX_LAG = 8


def replay_window(chunk_size: int, max_lag: int = MAX_LAG) -> int:
    """The ``replay_limit`` that lets a writer failing at its start be replaced.

    A storage node reads a first batch of about one chunk (plus the piece that crosses it)
    before it opens its device and finds it unavailable, and meanwhile the other writers
    run at most ``max_lag`` pieces ahead of it. With pieces of at most ``chunk_size``
    (`rechunk` the source), the body read when it fails is at most
    ``(max_lag + 2) * chunk_size``: keep that much of the head.
    """
    return (max_lag + 2) * chunk_size


async def rechunk(source: AsyncIterator[bytes], size: int) -> AsyncIterator[bytes]:
    """The same bytes in pieces of at most ``size`` (a server may hand over larger ones)."""
    async for chunk in source:
        if len(chunk) <= size:
            yield chunk
            continue
        view = memoryview(chunk)
        for start in range(0, len(chunk), size):
            yield bytes(view[start:start + size])


class Tee:
    def __init__(self, source: AsyncIterator[bytes], *, max_lag: int = MAX_LAG,
                 replay_limit: int = 65536) -> None:
        self._source = source
        self._chunks: list[bytes] = []
        self._base = 0  # absolute index of self._chunks[0]
        self._positions: dict[int, int] = {}
        self._next_id = 0
        self._bytes_read = 0
        self._eof = False
        self._error: BaseException | None = None
        self._read_lock = asyncio.Lock()
        self._progress = asyncio.Condition()
        self.max_lag = max_lag
        self.replay_limit = replay_limit

    @property
    def bytes_read(self) -> int:
        return self._bytes_read

    @property
    def can_replay(self) -> bool:
        """Whether a new writer could still get the whole body from the start."""
        return self._base == 0 and self._bytes_read <= self.replay_limit

    def branch(self) -> _Branch:
        """A new reader starting at the first byte (ValueError if no longer possible)."""
        if not self.can_replay:
            raise ValueError("the body has gone past what a new writer could replay")
        ident = self._next_id
        self._next_id += 1
        self._positions[ident] = 0
        return _Branch(self, ident)

    async def drain(self) -> None:
        """Read the rest of the body (so the client gets an answer after sending it all)."""
        while not self._eof and self._error is None:
            await self._read_more(self._base + len(self._chunks))
            self._trim()

    async def _release(self, ident: int) -> None:
        self._positions.pop(ident, None)
        self._trim()
        async with self._progress:
            self._progress.notify_all()

    async def _next(self, ident: int) -> bytes:
        while True:
            pos = self._positions[ident]
            if pos - self._base < len(self._chunks):
                self._positions[ident] = pos + 1
                chunk = self._chunks[pos - self._base]
                self._trim()
                async with self._progress:
                    self._progress.notify_all()
                return chunk
            if self._error is not None:
                raise self._error
            if self._eof:
                raise StopAsyncIteration
            await self._wait_for_laggards(pos)
            await self._read_more(pos)

    async def _wait_for_laggards(self, pos: int) -> None:
        async with self._progress:
            await self._progress.wait_for(
                lambda: not self._positions or pos - min(self._positions.values())
                < self.max_lag or self._error is not None)

    async def _read_more(self, pos: int) -> None:
        async with self._read_lock:
            if self._eof or self._error is not None:
                return
            if pos < self._base + len(self._chunks):
                return  # another reader fetched it while we waited for the lock
            try:
                chunk = await self._source.__anext__()
            except StopAsyncIteration:
                self._eof = True
            except BaseException as exc:  # the client went away: every writer must see it
                self._error = exc
            else:
                self._chunks.append(chunk)
                self._bytes_read += len(chunk)
        async with self._progress:
            self._progress.notify_all()

    def _trim(self) -> None:
        if self._bytes_read <= self.replay_limit and self._base == 0:
            return  # keep the head so a handoff writer can still start over
        slowest = min(self._positions.values(), default=self._base + len(self._chunks))
        drop = slowest - self._base
        if drop > 0:
            del self._chunks[:drop]
            self._base = slowest


class _Branch:
    def __init__(self, tee: Tee, ident: int) -> None:
        self._tee = tee
        self._ident = ident
        self._closed = False

    def __aiter__(self) -> _Branch:
        return self

    async def __anext__(self) -> bytes:
        if self._closed:
            raise StopAsyncIteration
        return await self._tee._next(self._ident)

    async def aclose(self) -> None:
        """This writer is done (or failed): stop holding chunks for it."""
        if not self._closed:
            self._closed = True
            await self._tee._release(self._ident)
