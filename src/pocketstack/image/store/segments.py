"""Cutting an image's byte stream into segments, one object each, without holding them.

A :class:`Segmenter` hands out the source's bytes as consecutive parts of at most
``segment_size`` bytes, each an async iterator that a PUT streams (a chunk that crosses a
boundary is split, the rest kept for the next part); `more` looks one chunk ahead to tell
whether another part follows. Each part counts its bytes (`Part.size`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator


class Part:
    """One segment's bytes, as they stream from the source."""

    def __init__(self, segmenter: Segmenter, limit: int) -> None:
        self.segmenter = segmenter
        self.limit = limit
        self.size = 0

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        while self.size < self.limit:
            chunk = await self.segmenter.take(self.limit - self.size)
            if not chunk:
                return
            self.size += len(chunk)
            yield chunk


class Segmenter:
    """Parts of at most ``segment_size`` bytes of ``source``, in order."""

    def __init__(self, source: AsyncIterator[bytes], segment_size: int) -> None:
        if segment_size < 1:
            raise ValueError("segment_size must be positive")
        self.source = source
        self.segment_size = segment_size
        self._pending = b""
        self._done = False

    def part(self) -> Part:
        """The next part; iterate it to the end before asking for another."""
        return Part(self, self.segment_size)

    async def more(self) -> bool:
        """Does the source have bytes left (after the parts handed out so far)?"""
        while not self._pending and not self._done:
            try:
                self._pending = await anext(self.source)
            except StopAsyncIteration:
                self._done = True
        return bool(self._pending)

    async def take(self, at_most: int) -> bytes:
        """Up to ``at_most`` bytes of the source (empty: it has ended)."""
        if not await self.more():
            return b""
        chunk, self._pending = self._pending[:at_most], self._pending[at_most:]
        return chunk
