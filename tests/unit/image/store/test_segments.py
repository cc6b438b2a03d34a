"""Cutting a byte stream into segments (``image/store/segments.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pocketstack.image.store.segments import Segmenter


async def chunks(pieces: list[bytes]) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece


async def cut(pieces: list[bytes], size: int) -> list[bytes]:
    segmenter = Segmenter(chunks(pieces), size)
    parts = []
    while await segmenter.more():
        part = segmenter.part()
        parts.append(b"".join([c async for c in part]))
        assert part.size == len(parts[-1])
    return parts


@given(st.lists(st.binary(max_size=20), max_size=8), st.integers(1, 15))
def test_parts_are_the_stream_cut_at_the_segment_size(pieces: list[bytes], size: int
                                                      ) -> None:
    import asyncio

    parts = asyncio.run(cut(pieces, size))
    data = b"".join(pieces)
    assert parts == [data[i:i + size] for i in range(0, len(data), size)]


def test_a_positive_size() -> None:
    with pytest.raises(ValueError):
        Segmenter(chunks([]), 0)
